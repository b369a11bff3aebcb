"""The deploy settings the project checks in (samconfig.toml), read once: the stack's name lives there only."""

from __future__ import annotations

import tomllib
from pathlib import Path

SAMCONFIG = Path(__file__).resolve().parents[2] / "samconfig.toml"

STACK_NAME: str = tomllib.loads(SAMCONFIG.read_text())["default"]["global"]["parameters"]["stack_name"]

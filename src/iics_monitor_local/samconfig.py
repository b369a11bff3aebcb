"""The deploy settings: the stack's name, from samconfig.toml (read once, it lives there only), and the
poll timing the laptop's own stack (emulated AWS) is deployed with."""

from __future__ import annotations

import tomllib
from pathlib import Path

from iics_monitor.validation import MonitorSettings

SAMCONFIG = Path(__file__).resolve().parents[2] / "samconfig.toml"

STACK_NAME: str = tomllib.loads(SAMCONFIG.read_text())["default"]["global"]["parameters"]["stack_name"]
# Poll timing for a laptop (emulated AWS): the first re-poll soon, then at most once a minute, for up to 6 hours.
LAPTOP_SETTINGS = MonitorSettings(initial_wait_seconds=5, max_wait_seconds=60, timeout_seconds=21600)

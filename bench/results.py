"""bench/results.json, shared by every bench: each writes only its own keys, so any bench can run alone
(or `make bench` run them all) without losing the others' figures."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results.json"


def merge_results(path: Path, results: Mapping[str, Any]) -> None:
    """Read ``path``, replace the keys ``results`` has, write it back; the other keys stay."""
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(results)
    written = path.with_name(f".{path.name}.{os.getpid()}")
    written.write_text(json.dumps(data, indent=2) + "\n")
    written.replace(path)  # a reader, or a bench interrupted mid-write, never sees half a file

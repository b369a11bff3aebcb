"""Informatica RunAJob's exit codes, which ``watch`` and ``start`` give so that scripts written for
RunAJob read ours the same way (shared/reference: -1 exception, 0 success, 1 warning, 2 no wait,
3 failure, 4 timeout, 5 error, 6 still running, 7 failed to start). docs/cli.md maps every outcome
to its code. RunAJob's 2 means "did not wait", which these commands never do; here it is "bad usage,
nothing started". Its -1 (an exception) is our 5: the command reports its own failures as errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

EXIT_CODES = {
    "SUCCESSFUL": 0,
    "WARNING": 1,
    "USAGE": 2,
    "FAILED": 3,
    "TIMED_OUT": 4,
    "ERROR": 5,
    "STILL_RUNNING": 6,
    "NOT_STARTED": 7,
}


def exit_code(detail: Mapping[str, Any]) -> int:
    """The code for an outcome event's detail. A SUCCESSFUL job that IICS qualified (a warning state)
    or that has failed objects is RunAJob's warning, 1."""
    state = detail.get("state")
    if state == "SUCCESSFUL" and (detail.get("warning") or (detail.get("objects") or {}).get("failed")):
        return EXIT_CODES["WARNING"]
    return EXIT_CODES.get(state, EXIT_CODES["ERROR"])

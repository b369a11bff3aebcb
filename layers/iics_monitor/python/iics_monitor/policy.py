"""How long to wait before the next poll: exponential backoff, capped, never past the deadline."""

from __future__ import annotations

import math

from iics_monitor.validation import MonitorSettings

BACKOFF_FACTOR = 1.5


def next_wait_seconds(
    polls: int,
    settings: MonitorSettings,
    remaining_seconds: float,
    retry_after: float | None = None,
) -> int:
    """Seconds until poll number ``polls + 1``.

    Starts at ``initial_wait_seconds`` and grows by ``BACKOFF_FACTOR`` up to ``max_wait_seconds``.
    A Retry-After from IICS is honoured even above the cap. The wait never runs past the deadline,
    so a job that is still running is declared TIMED_OUT on time.
    """
    backoff = settings.initial_wait_seconds * BACKOFF_FACTOR ** min(max(polls - 1, 0), 64)
    wait = min(settings.max_wait_seconds, math.ceil(backoff))
    if retry_after is not None:
        wait = max(wait, math.ceil(retry_after))
    return max(0, min(wait, math.ceil(remaining_seconds)))

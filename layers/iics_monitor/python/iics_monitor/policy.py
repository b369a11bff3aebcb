"""When to check an export job next, and whether to wait inside the check function or in a Wait state.

Waits grow with the job's age: ``RELATIVE_WAIT`` x the seconds since the job started, rounded down
to whole seconds, between ``initialWaitSeconds`` and ``maxWaitSeconds``. A job that ends after its
first ``initialWaitSeconds / RELATIVE_WAIT`` seconds is then found within ``RELATIVE_WAIT`` of its
duration, whether it takes 30 s or 4 h, and the number of checks grows with the logarithm of the
duration, not linearly as with a fixed interval.

A job name with a history (``expected_seconds``, see ``iics_monitor.history``) is checked densely
where it usually ends and sparsely before: until ``HISTORY_LOW`` x the expected duration each wait
is half the job's age (at least 30 s), so a run that fails early is still found within
max(30 s, half the time it ran); then ``HISTORY_CHECKS`` checks spaced geometrically up to
``HISTORY_HIGH`` x; then the plain policy. The early waits may exceed ``maxWaitSeconds``.

Short waits happen inside the check function (``sleeps_inline``): at 128 MB a Lambda second costs
about a 45th of the three state transitions one trip round the Wait loop costs.
"""

from __future__ import annotations

import math

from iics_monitor.validation import MonitorSettings

RELATIVE_WAIT = 0.104
# With history, before the expected end: a failure at f seconds is found within max(floor, share x f).
EARLY_DELAY_FLOOR_SECONDS = 30
EARLY_DELAY_SHARE = 0.5
HISTORY_LOW = 0.7
HISTORY_HIGH = 1.3
HISTORY_CHECKS = 7


def next_wait_seconds(
    elapsed_seconds: float,
    settings: MonitorSettings,
    remaining_seconds: float,
    *,
    retry_after: float | None = None,
    expected_seconds: float | None = None,
    jitter: float = 0.0,
) -> int:
    """Whole seconds from now until the next check of a job that has run ``elapsed_seconds``.

    A Retry-After from IICS is honoured even above the cap, plus up to about as long again in whole
    seconds (``jitter``, 0 to 1, drawn by the caller; at least 0-2 s), so that executions throttled
    together do not all come back in the same second. The wait never runs past the deadline, so a
    job that is still running is declared TIMED_OUT on time.
    """
    elapsed = max(0.0, elapsed_seconds)
    wait = proportional_wait(elapsed, settings)
    if expected_seconds is not None and expected_seconds > 0:
        wait = _history_wait(elapsed, expected_seconds, wait)
    if retry_after is not None:
        base = math.ceil(retry_after)
        share = min(max(jitter, 0.0), 0.999)
        wait = max(wait, base + int(share * (max(base, 2) + 1)))
    return max(0, min(wait, math.ceil(remaining_seconds)))


def proportional_wait(elapsed_seconds: float, settings: MonitorSettings) -> int:
    """``RELATIVE_WAIT`` x the job's age, rounded down (never past the share), within the settings' bounds."""
    wait = max(settings.initial_wait_seconds, math.floor(round(RELATIVE_WAIT * elapsed_seconds, 6)))
    return min(settings.max_wait_seconds, wait)


def history_window(expected_seconds: float) -> tuple[float, float, float]:
    """(first check, last check, ratio between checks) around a job's expected duration."""
    low, high = HISTORY_LOW * expected_seconds, HISTORY_HIGH * expected_seconds
    ratio = (high / low) ** (1 / HISTORY_CHECKS)
    return low * ratio, high, ratio


def _history_wait(elapsed: float, expected_seconds: float, fallback: int) -> int:
    first, last, ratio = history_window(expected_seconds)
    if elapsed >= last:  # later than it has ever been: back to the plain policy
        return fallback
    if elapsed < first / ratio:  # before the window: sparse checks that still catch an early failure in time
        return max(1, min(_early_wait(elapsed), math.ceil(first - elapsed)))
    return max(1, math.ceil(min(elapsed * ratio, last) - elapsed))


def _early_wait(elapsed: float) -> int:
    """The longest wait after which a failure just after this check is still found within the bound."""
    return math.floor(max(EARLY_DELAY_FLOOR_SECONDS, EARLY_DELAY_SHARE * elapsed))


def sleeps_inline(wait_seconds: int, inline_wait_seconds: int, seconds_left: float, reserve_seconds: float) -> bool:
    """Whether the check function should sleep ``wait_seconds`` and check again itself.

    Only short waits (up to ``inline_wait_seconds``, where a Lambda second is cheaper than a Wait
    loop) and only when the invocation keeps ``reserve_seconds`` for one more check afterwards."""
    return 0 < wait_seconds <= inline_wait_seconds and seconds_left - wait_seconds >= reserve_seconds

"""policy: waits grow with the job's age, are bounded, follow a job's history, honour Retry-After,
never pass the deadline; short waits are slept inline only with time to spare."""

from __future__ import annotations

import math

import pytest

from iics_monitor.policy import (
    EARLY_DELAY_FLOOR_SECONDS,
    EARLY_DELAY_SHARE,
    HISTORY_CHECKS,
    HISTORY_HIGH,
    HISTORY_LOW,
    RELATIVE_WAIT,
    history_window,
    next_wait_seconds,
    sleeps_inline,
)
from iics_monitor.validation import MonitorSettings

SETTINGS = MonitorSettings(initial_wait_seconds=2, max_wait_seconds=600, timeout_seconds=86400)
FAR = 10_000_000.0  # seconds to the deadline, when the deadline is not the point


def test_a_young_job_waits_the_initial_wait():
    assert next_wait_seconds(0, SETTINGS, FAR) == 2
    assert next_wait_seconds(10, SETTINGS, FAR) == 2


def test_the_wait_is_a_fixed_share_of_the_jobs_age_rounded_down():
    assert [next_wait_seconds(age, SETTINGS, FAR) for age in (100, 500, 1000, 4000)] == [10, 52, 104, 416]
    assert RELATIVE_WAIT == 0.104


def test_so_the_relative_delay_is_bounded_at_every_age():
    # a job ending just after a check is found at the next one: delay/duration <= RELATIVE_WAIT, whole
    # seconds included, once RELATIVE_WAIT x age is past the initial wait
    for age in range(20, 6000, 7):
        assert next_wait_seconds(age, SETTINGS, FAR) / age <= RELATIVE_WAIT


def test_the_wait_is_capped_at_max_wait():
    assert next_wait_seconds(100_000, SETTINGS, FAR) == 600


def test_a_negative_age_counts_as_zero():
    assert next_wait_seconds(-50, SETTINGS, FAR) == 2


def test_the_wait_never_runs_past_the_deadline():
    assert next_wait_seconds(4000, SETTINGS, remaining_seconds=42) == 42
    assert next_wait_seconds(4000, SETTINGS, remaining_seconds=0.2) == 1
    assert next_wait_seconds(4000, SETTINGS, remaining_seconds=-5) == 0


def test_retry_after_is_honoured_above_the_cap_but_not_past_the_deadline():
    assert next_wait_seconds(10, SETTINGS, FAR, retry_after=30) == 30
    assert next_wait_seconds(10, SETTINGS, FAR, retry_after=900) == 900
    assert next_wait_seconds(10, SETTINGS, FAR, retry_after=30.2) == 31
    assert next_wait_seconds(4000, SETTINGS, FAR, retry_after=1) == 416  # the policy's own wait is longer
    assert next_wait_seconds(10, SETTINGS, remaining_seconds=45, retry_after=600) == 45


@pytest.mark.parametrize("jitter, expected", [(0.0, 10), (0.5, 15), (0.99, 20), (7.0, 20), (-1.0, 10)])
def test_jitter_stretches_retry_after_by_up_to_double(jitter, expected):
    assert next_wait_seconds(10, SETTINGS, FAR, retry_after=10, jitter=jitter) == expected


def test_a_one_second_retry_after_still_spreads_executions_over_three_seconds():
    # whole seconds only (Wait states): a proportional stretch of 1 s would round to one value
    waits = {next_wait_seconds(0, SETTINGS, FAR, retry_after=1, jitter=j / 100) for j in range(100)}

    assert waits == {2, 3}  # the initial wait (2 s) is the floor here


def test_waits_are_whole_seconds():
    assert all(isinstance(next_wait_seconds(a, SETTINGS, 99.5, retry_after=7.5), int) for a in range(0, 3000, 13))


def test_zero_initial_wait_gives_zero_at_age_zero_only():
    eager = MonitorSettings(initial_wait_seconds=0, max_wait_seconds=0, timeout_seconds=60)
    assert next_wait_seconds(500, eager, FAR) == 0


# --- history -----------------------------------------------------------------------------------


def checks_with_history(expected: float, until: float) -> list[float]:
    """Check times of a job that started at 0 and ends (or fails) at ``until``, with ``expected`` from its history."""
    now, times = 0.0, [0.0]
    while now < until:
        now += next_wait_seconds(now, SETTINGS, FAR, expected_seconds=expected)
        times.append(now)
    return times


def early_failure_bound(failed_at: float) -> float:
    return max(EARLY_DELAY_FLOOR_SECONDS, EARLY_DELAY_SHARE * failed_at)


@pytest.mark.parametrize("expected", [60, 600, 3600, 14_400])
def test_with_history_a_run_that_fails_early_is_seen_within_30_s_or_half_its_age(expected):
    # Given a recurring job whose history says it takes `expected` seconds
    first, _, _ = history_window(expected)
    early = [t for t in checks_with_history(expected, first) if t < first]
    # When it fails at any moment before its usual end, the worst being just after a check
    failures = [t + 0.001 for t in early] + [expected * share / 100 for share in range(2, 77)]
    for failed_at in failures:
        found_at = checks_with_history(expected, failed_at)[-1]
        # Then the next check finds it within max(30 s, half its age), not near the usual end
        assert found_at - failed_at <= early_failure_bound(failed_at), (expected, failed_at)
    assert (EARLY_DELAY_FLOOR_SECONDS, EARLY_DELAY_SHARE) == (30, 0.5)


def test_with_history_early_checks_are_sparse_and_may_wait_past_max_wait():
    # a 4 h job: 0, 30, 60, 90, 135, ... (half the age) until the window opens at 0.77x
    first, _, _ = history_window(14_400)
    early = [t for t in checks_with_history(14_400, first) if t < first]

    assert early[:5] == [0, 30, 60, 90, 135]
    assert len(early) <= 16
    assert next_wait_seconds(4000, SETTINGS, FAR, expected_seconds=14_400) == 2000 > SETTINGS.max_wait_seconds
    assert next_wait_seconds(4000, SETTINGS, FAR) == 416  # without history: the plain policy


def test_with_history_an_early_check_never_jumps_past_the_window():
    first, _, _ = history_window(3600)

    assert next_wait_seconds(2400, SETTINGS, FAR, expected_seconds=3600) == math.ceil(first - 2400)
    assert first > HISTORY_LOW * 3600


@pytest.mark.parametrize("expected", [30, 600, 3600, 14_400])
@pytest.mark.parametrize("share", [0.71, 0.85, 1.0, 1.15, 1.29])
def test_a_job_within_30_percent_of_its_history_is_found_by_the_windows_checks(expected, share):
    duration = expected * share
    first, _, ratio = history_window(expected)
    times = checks_with_history(expected, duration)

    assert len([t for t in times if t >= first - 1]) <= HISTORY_CHECKS
    assert times[-1] >= duration
    assert (times[-1] - duration) / duration <= ratio - 1 + 1 / duration
    assert ratio == (HISTORY_HIGH / HISTORY_LOW) ** (1 / HISTORY_CHECKS)


def test_a_job_running_past_its_window_falls_back_to_the_plain_policy():
    _, last, _ = history_window(1000)

    plain = next_wait_seconds(last + 1, SETTINGS, FAR)

    assert next_wait_seconds(last + 1, SETTINGS, FAR, expected_seconds=1000) == plain == math.floor(0.104 * 1301)


def test_history_waits_still_stop_at_the_deadline():
    assert next_wait_seconds(1000, SETTINGS, remaining_seconds=100, expected_seconds=3600) == 100


# --- inline -------------------------------------------------------------------------------------


def test_short_waits_are_slept_inline_when_time_is_left_for_one_more_check():
    assert sleeps_inline(5, inline_wait_seconds=20, seconds_left=200, reserve_seconds=50)
    assert sleeps_inline(20, inline_wait_seconds=20, seconds_left=70, reserve_seconds=50)


@pytest.mark.parametrize(
    "wait, inline, left",
    [
        (21, 20, 200),  # longer than the inline limit: a Wait state is cheaper
        (5, 0, 200),  # inline checks turned off
        (0, 20, 200),  # nothing to sleep: hand back to the state machine
        (20, 20, 69),  # no time left for the next check
    ],
)
def test_other_waits_go_back_to_the_state_machine(wait, inline, left):
    assert not sleeps_inline(wait, inline_wait_seconds=inline, seconds_left=left, reserve_seconds=50)

"""policy: the wait before the next poll grows, is capped, honours Retry-After and never passes the deadline."""

from __future__ import annotations

import pytest

from iics_monitor.policy import BACKOFF_FACTOR, next_wait_seconds
from iics_monitor.validation import MonitorSettings

SETTINGS = MonitorSettings(initial_wait_seconds=10, max_wait_seconds=120, timeout_seconds=86400)
FAR = 10_000_000.0  # seconds to the deadline, when the deadline is not the point


def test_the_first_poll_waits_the_initial_wait():
    assert next_wait_seconds(1, SETTINGS, FAR) == 10


def test_the_wait_grows_by_the_backoff_factor_rounded_up():
    waits = [next_wait_seconds(polls, SETTINGS, FAR) for polls in range(1, 8)]

    assert BACKOFF_FACTOR == 1.5
    assert waits == [10, 15, 23, 34, 51, 76, 114]


def test_the_wait_stops_growing_at_the_max_wait():
    waits = [next_wait_seconds(polls, SETTINGS, FAR) for polls in range(8, 20)]

    assert set(waits) == {120}


def test_the_wait_never_decreases_as_polls_go_on():
    waits = [next_wait_seconds(polls, SETTINGS, FAR) for polls in range(0, 200)]

    assert waits == sorted(waits)


def test_polls_of_zero_or_less_wait_the_initial_wait():
    assert next_wait_seconds(0, SETTINGS, FAR) == 10
    assert next_wait_seconds(-5, SETTINGS, FAR) == 10


@pytest.mark.parametrize("polls", [64, 65, 1_000, 10**6, 10**18])
def test_huge_poll_counts_do_not_overflow(polls):
    big = MonitorSettings(initial_wait_seconds=3600, max_wait_seconds=3600, timeout_seconds=30 * 24 * 3600)

    assert next_wait_seconds(polls, SETTINGS, FAR) == 120
    assert next_wait_seconds(polls, big, FAR) == 3600


def test_the_wait_never_runs_past_the_deadline():
    assert next_wait_seconds(10, SETTINGS, remaining_seconds=42) == 42


def test_a_fraction_of_a_second_left_rounds_up_to_one_second():
    assert next_wait_seconds(10, SETTINGS, remaining_seconds=0.2) == 1


@pytest.mark.parametrize("remaining", [0, -1, -86400])
def test_no_time_left_means_no_wait(remaining):
    assert next_wait_seconds(3, SETTINGS, remaining_seconds=remaining) == 0


def test_retry_after_is_honoured_when_longer_than_the_backoff():
    assert next_wait_seconds(1, SETTINGS, FAR, retry_after=30) == 30


def test_retry_after_is_honoured_even_above_the_max_wait():
    assert next_wait_seconds(1, SETTINGS, FAR, retry_after=600) == 600


def test_a_fractional_retry_after_rounds_up():
    assert next_wait_seconds(1, SETTINGS, FAR, retry_after=30.2) == 31


def test_a_retry_after_shorter_than_the_backoff_does_not_shorten_it():
    assert next_wait_seconds(5, SETTINGS, FAR, retry_after=1) == 51


def test_retry_after_never_runs_past_the_deadline():
    assert next_wait_seconds(1, SETTINGS, remaining_seconds=45, retry_after=600) == 45


def test_a_zero_initial_wait_polls_again_at_once():
    eager = MonitorSettings(initial_wait_seconds=0, max_wait_seconds=0, timeout_seconds=60)

    assert next_wait_seconds(5, eager, FAR) == 0


def test_the_wait_is_a_whole_number_of_seconds():
    """Step Functions' Wait state takes whole seconds."""
    assert all(isinstance(next_wait_seconds(p, SETTINGS, 99.5, retry_after=7.5), int) for p in range(1, 30))

"""The poll-policy bench itself: its simulation is sane on a small seeded run."""

from __future__ import annotations

import math

import pytest

from bench import poll_policy as bench
from iics_monitor.policy import next_wait_seconds

JOBS = 500


@pytest.fixture(scope="module")
def report():
    return bench.run(jobs=JOBS, seed=7)


@pytest.fixture(scope="module")
def durations():
    return bench.job_durations(JOBS, 7)


def test_durations_are_seeded_and_within_10s_to_4h(durations):
    assert durations == bench.job_durations(JOBS, 7)
    assert all(10 <= d <= 4 * 3600 for d in durations)


def test_the_settings_come_from_the_template():
    deployment = bench.load_deployment()

    assert deployment.settings.initial_wait_seconds == 15
    assert deployment.settings.max_wait_seconds == 300
    assert deployment.check_status_memory_mb > 0


def test_transitions_follow_the_state_machine():
    model = bench.load_transition_model()

    assert model.loop == ("CheckStatus", "IsFinished", "WaitBeforeNextPoll")
    assert model.success_path[0] == "NormaliseInput" and model.success_path[-1] == "Done"
    assert len(model.fixed_states) == 7
    assert model.transitions(1) == 9  # one check: no Wait


def test_every_job_is_detected_with_no_negative_delay(report):
    for result in report["policies"].values():
        assert result.undetected == 0
        assert len(result.delays) == JOBS
        assert min(result.delays) >= 0


def test_the_10s_poller_detects_within_10s(report):
    assert max(report["policies"][bench.BASELINE_CALLS].delays) < 10


@pytest.mark.parametrize("name, interval", bench.FIXED_POLLERS.items())
def test_fixed_pollers_check_once_at_start_and_every_interval(report, durations, name, interval):
    checks = report["policies"][name].checks

    assert list(checks) == [math.ceil(d / interval) + 1 for d in durations]


def test_our_policy_follows_the_policy_code(durations):
    deployment = bench.load_deployment()
    duration = durations[0]
    checks, detected = bench.simulate_job(
        duration, bench.policy_wait(deployment.settings), deployment.settings.timeout_seconds, deployment.max_polls
    )
    now, times = 0, [0]
    for polls in range(1, checks):
        now += next_wait_seconds(polls, deployment.settings, deployment.settings.timeout_seconds - now)
        times.append(now)

    assert detected == times[-1] >= duration
    assert len(times) == 1 or times[-2] < duration


def test_our_policy_makes_fewer_calls_than_the_10s_poller(report):
    ours = report["policies"][bench.OURS]
    ten = report["policies"][bench.BASELINE_CALLS]

    assert ours.iics_calls_per_job < ten.iics_calls_per_job
    assert all(o <= t for o, t in zip(ours.checks, ten.checks, strict=True))


def test_the_report_serialises_and_checks_each_target(report, tmp_path):
    out = tmp_path / "results.json"

    assert bench.main(["--jobs", "50", "--seed", "3", "--output", str(out)]) == 0
    assert set(bench.to_json(report)["policies"][bench.OURS]) >= {"iics_calls_per_job", "usd_per_1000_jobs"}
    assert len(report["targets"]) == 2

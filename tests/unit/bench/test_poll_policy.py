"""The poll-policy bench itself: its simulation is sane on a small seeded run."""

from __future__ import annotations

import json
import math

import pytest

from bench import poll_policy as bench
from iics_monitor.policy import next_wait_seconds, sleeps_inline

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

    assert deployment.settings.initial_wait_seconds == 2
    assert deployment.settings.max_wait_seconds == 600
    assert deployment.config.inline_wait_seconds == 45
    assert deployment.config.history_table is not None  # PollHistory defaults to Enabled
    assert (deployment.check_status_memory_mb, deployment.check_status_timeout_s) == (128, 600)


def test_transitions_follow_the_state_machine():
    model = bench.load_transition_model()

    assert model.loop == ("CheckStatus", "IsFinished", "WaitBeforeNextPoll")
    assert model.success_path[0] == "NormaliseInput" and model.success_path[-1] == "Done"
    assert len(model.fixed_states) == 7  # an announcement arrives validated: no AcceptInput
    assert model.transitions(1) == 9  # one invocation: no Wait


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


@pytest.mark.parametrize("duration", [12.5, 95.0, 1800.0, 14_000.0])
def test_our_policy_follows_the_policy_code(duration):
    deployment = bench.load_deployment()
    config = deployment.config
    run = bench.simulate_ours(duration, deployment)
    now, times, invocations = 0, [0], 1
    while now < duration:
        wait = next_wait_seconds(now, config.defaults, config.defaults.timeout_seconds - now)
        left = deployment.check_status_timeout_s - now
        inline = sleeps_inline(wait, config.inline_wait_seconds, left, config.inline_reserve_seconds)
        invocations += not inline
        now += wait
        times.append(now)

    assert run.detected_at == times[-1] >= duration
    assert run.checks == len(times) and times[-2] < duration
    if duration < 400:  # young jobs: every wait inside the first invocation
        assert run.invocations == invocations == 1
    else:
        assert run.invocations > 1


def test_inline_sleeps_are_billed_and_wait_states_are_not():
    deployment = bench.load_deployment()

    young, old = bench.simulate_ours(60.0, deployment), bench.simulate_ours(7200.0, deployment)

    assert young.invocations == 1 and young.billed_seconds >= young.detected_at
    assert old.billed_seconds < old.detected_at / 10


def test_with_history_every_early_failure_is_found_within_max_30s_half_its_age(report):
    with_history = report["recurring"][bench.OURS_HISTORY]
    without = report["recurring"][bench.OURS_NO_HISTORY]

    assert with_history.early_failures > 0
    assert with_history.failure_max_delay_vs_bound <= 1.0  # every one, not only 95%
    assert with_history.success_p95_relative_delay <= 0.10
    assert with_history.iics_calls_per_job <= 18 < without.iics_calls_per_job
    assert with_history.usd_per_1000_jobs < without.usd_per_1000_jobs


def test_the_recurring_mix_fails_early_one_run_in_five_and_otherwise_ends_near_the_history():
    jobs = bench.recurring_jobs(2000, 7)
    failed = [j for j in jobs if j.failed_early]

    assert 0.17 < len(failed) / len(jobs) < 0.23
    assert {r.state for j in jobs for r in j.history} == {"SUCCESSFUL", "FAILED"}  # the history has failures too
    for job in jobs:
        if job.expected_seconds is None:  # fewer than two successful past runs: no expected end
            continue
        share = job.duration / job.expected_seconds
        assert 0.02 <= share <= 0.5 if job.failed_early else 0.7 <= share <= 1.3


def test_our_policy_makes_fewer_calls_than_the_10s_poller(report):
    ours = report["policies"][bench.OURS]
    ten = report["policies"][bench.BASELINE_CALLS]

    assert ours.iics_calls_per_job < ten.iics_calls_per_job
    # young jobs are checked every 2-4 s (more often than every 10 s); from 8 minutes on, always fewer calls
    pairs = zip(ours.checks, ten.checks, bench.job_durations(JOBS, 7), strict=True)
    assert all(o < t for o, t, d in pairs if d >= 480)


def test_the_report_serialises_and_checks_each_target(report, tmp_path):
    out = tmp_path / "results.json"

    assert bench.main(["--jobs", "50", "--seed", "3", "--output", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written["jobs"] == 50 and set(written["policies"]) >= {bench.OURS, bench.BASELINE_COST}
    assert [t["pass"] in (True, False) for t in written["targets"]] == [True] * 3
    assert set(bench.to_json(report)["policies"][bench.OURS]) >= {"iics_calls_per_job", "usd_per_1000_jobs"}
    assert len(report["targets"]) == 3

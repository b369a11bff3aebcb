"""The scale bench's own arithmetic and its virtual-time model, without the local stack."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bench import scale
from iics_monitor_local.emulator import RecordedRequest
from iics_monitor_local.stack import LambdaInvocation


def request(at: float, status: int = 200, job: str = "a", route: str = "status") -> RecordedRequest:
    return RecordedRequest(
        "GET", f"/na1/saas/public/core/v3/export/{job}", {}, b"", route=route, status=status, time=at
    )


def test_the_plan_is_seeded_short_and_mostly_successful():
    plan = scale.plan_jobs(200, seed=4)

    assert plan == scale.plan_jobs(200, seed=4)
    assert all(scale.MIN_DURATION_S <= job.seconds <= scale.MAX_DURATION_S for job in plan)
    failed = sum(job.final == "FAILED" for job in plan)
    assert 0 < failed < 60 and {job.final for job in plan} == {"SUCCESSFUL", "FAILED"}


def test_rates_count_every_call_in_one_second_buckets_and_sliding_windows():
    # Given 10 calls in the first second (3 refused), then one call a second for 10 s
    requests = [request(0.05 * i, 429 if i >= 7 else 200) for i in range(10)]
    requests += [request(1.5 + i) for i in range(10)]

    rates = scale.rate_report(requests, start=0.0, limit=1)

    assert rates.per_second[:3] == [(10, 3), (1, 0), (1, 0)]
    assert (rates.calls, rates.throttled, rates.peak_1s) == (20, 3, 10)
    assert rates.peak_5s == 14 / 5  # [0, 5): 10 + the calls at 1.5, 2.5, 3.5, 4.5
    assert rates.first_429_s == pytest.approx(0.35)
    assert rates.peak_5s_after_first_429 == 7 / 5  # [0.35, 5.35): the three 429s + 4
    assert rates.over_limit_until_s == pytest.approx(0.40)  # the last window with more than 5 calls
    assert rates.peak_accepted_5s == 11 / 5
    assert not rates.within_limit


def test_a_run_without_429s_is_judged_over_the_whole_run():
    burst = scale.rate_report([request(0.01 * i) for i in range(50)], start=0.0, limit=1)
    steady = scale.rate_report([request(1.0 * i) for i in range(50)], start=0.0, limit=1)

    assert burst.first_429_s is None and burst.peak_5s_after_first_429 is None
    assert not burst.within_limit  # 50 calls in half a second: no 429 does not excuse the rate
    assert steady.within_limit


def test_retry_delays_follow_each_job_from_its_429_to_its_next_call():
    requests = [request(0.0, 429, "a"), request(0.5, 429, "b"), request(2.0, 200, "a"), request(4.5, 200, "b")]

    assert scale.retry_delays_after_429(requests) == [2.0, 4.0]


def test_peak_concurrency_counts_overlapping_executions():
    def execution(start: int, stop: int | None) -> dict:
        dates = {"startDate": datetime.fromtimestamp(start, UTC)}
        return dates | ({"stopDate": datetime.fromtimestamp(stop, UTC)} if stop else {})

    assert scale.peak_concurrency([execution(0, 10), execution(5, 15), execution(12, None), execution(20, 30)]) == 2


def invocation(
    function: str, job: str, started: float, finished: float, ran_ms: float | None, *, init_ms: float = 0.0
) -> LambdaInvocation:
    """An invocation as the stack records it; ``ran_ms`` is the Duration its worker reports (None: killed)."""
    report = "" if ran_ms is None else f"REPORT RequestId: r\tDuration: {ran_ms} ms\tBilled Duration: 1 ms"
    report += f"\tInit Duration: {init_ms} ms" if init_ms else ""
    logs = f"START RequestId: r Version: $LATEST\nEND RequestId: r\n{report}\n"
    return LambdaInvocation(
        f"iics-export-monitor-{function}-ABC123",
        {"request": {"jobId": job}},
        {},
        False,
        logs,
        started,
        finished,
        cold=bool(init_ms),
    )


def test_an_invocation_ran_for_its_reported_duration_up_to_its_answer_not_while_it_queued():
    queued = invocation("CheckStatusFunction", "a", started=10.0, finished=13.0, ran_ms=500)
    cold = invocation("CheckStatusFunction", "a", started=10.0, finished=13.0, ran_ms=500, init_ms=1500)
    killed = invocation("CheckStatusFunction", "a", started=10.0, finished=13.0, ran_ms=None)

    assert scale.ran_interval(queued) == (12.5, 13.0)
    assert scale.ran_interval(cold) == (11.0, 13.0)
    assert scale.ran_interval(killed) == (10.0, 13.0)


def test_peak_at_once_counts_distinct_keys_and_ignores_a_touch_within_the_margin():
    assert scale.peak_at_once([(0, 1, "a"), (0.5, 2, "b"), (1.5, 3, "c")]) == 2
    assert scale.peak_at_once([(0, 1, "a"), (0.995, 2, "b")]) == 1  # 5 ms shared: stamping, not overlap
    assert scale.peak_at_once([(0, 1, "a"), (0.5, 2, "a")]) == 1  # one job checked twice is one job
    assert scale.peak_at_once([(0, 0.004, "a"), (0.001, 0.005, "b")]) == 0  # too short to tell


def test_checks_queued_for_one_worker_do_not_count_as_running_together():
    # Given two checks called at once, one worker: the second waits, then runs after the first answered
    one_worker = [
        invocation("CheckStatusFunction", "a", started=0.0, finished=1.0, ran_ms=1000),
        invocation("CheckStatusFunction", "b", started=0.0, finished=2.0, ran_ms=1005),  # touches a: 5 ms
        invocation("StartMonitorFunction", "c", started=0.2, finished=0.5, ran_ms=300, init_ms=200),
    ]
    # Given the same, with two workers: both run at once
    two_workers = [*one_worker[:1], invocation("CheckStatusFunction", "b", started=0.0, finished=1.1, ran_ms=1100)]

    serial = scale.harness_load(one_worker, wall_seconds=2.0, workers=1)
    parallel = scale.harness_load(two_workers, wall_seconds=2.0, workers=2)

    assert serial["peak_jobs_checked_at_once"] == 1 and parallel["peak_jobs_checked_at_once"] == 2
    assert serial["peak_in_flight_from_intervals"] == 2  # a check and the start monitor
    assert serial["functions"]["CheckStatusFunction"] == {
        "invocations": 2,
        "cold_starts": 0,
        "median_ms": 1002.5,
        "max_s": 1.005,
        "waited_for_worker": 1,
        "longest_wait_s": 0.995,
    }
    assert serial["functions"]["StartMonitorFunction"]["cold_starts"] == 1
    assert serial["mean_in_flight"] == round((1.0 + 1.005 + 0.3) / 2.0, 2)


def test_the_virtual_bucket_allows_a_seconds_burst_then_asks_for_whole_seconds():
    bucket = scale.VirtualBucket(rate=4)

    assert [bucket.take(0.0) for _ in range(5)] == [None, None, None, None, 1]
    assert bucket.take(0.25) is None  # one token back after a quarter of a second
    assert bucket.take(0.25) == 1  # never less than one second


def test_the_model_runs_the_real_check_and_reports_what_iics_saw():
    plan = [scale.PlannedJob("a", 3.0, "SUCCESSFUL"), scale.PlannedJob("b", 6.0, "FAILED")]

    unlimited = scale.model_run(plan, rate_limit=1000, parameters=scale.PARAMETERS, seed=1)

    assert unlimited.correct == 2 and unlimited.outcomes == {"SUCCESSFUL": 1, "FAILED": 1}
    assert unlimited.rates.throttled == 0
    assert unlimited.rates.by_route["log 200"] == unlimited.rates.by_route["package 200"] == 2

    crowded = scale.model_run(plan * 10, rate_limit=1, parameters=scale.PARAMETERS, seed=1)

    assert crowded.rates.throttled > 0 and crowded.rates.first_429_s < 1


def test_the_results_say_which_checks_passed():
    plan = [scale.PlannedJob("a", 3.0, "SUCCESSFUL")]
    report = scale.ScaleReport(jobs=1, rate_limit=5, seed=1, parameters=dict(scale.PARAMETERS))
    report.rates = scale.rate_report([request(0.0)], 0.0, 5)
    report.model = scale.model_run(plan, 5, scale.PARAMETERS, seed=1)

    written = json.loads(json.dumps(report.to_json()))  # as written to bench/results.json under "scale"

    assert written["pass"] == {
        "outcomes": False,  # no outcome was checked
        "rate_within_limit": True,
        "invocations_overlap": False,  # nothing ran
        "model_outcomes": True,
        "model_rate_without_budget": True,
    }
    assert "requests per second" in scale.format_report(report)

"""How the deployed pipeline polls: several checks inside one invocation while a job is young,
recurring job names checked near their usual end, remembered in the template's DynamoDB table, and
never faster than a second however an announcement asks (the floors of its ``monitor`` values).

Real ASL in moto's interpreter, real handlers, the IICS emulator on loopback.
"""

from __future__ import annotations

import time
from contextlib import ExitStack

import pytest

from iics_monitor.history import DurationHistory
from iics_monitor.policy import history_window
from iics_monitor_local.stack import LocalStack
from tests.e2e.conftest import Pipeline, deployed


@pytest.fixture
def deploy(emulator):
    """Deploys the template with these Parameters (the template's own defaults for the rest)."""
    with ExitStack() as stacks:
        yield lambda **parameters: stacks.enter_context(deployed(emulator, parameters))


def run(pipeline: Pipeline, job_id: str) -> tuple[dict, list[str]]:
    """The job watched to its end: its outcome and the states it went through."""
    finished = pipeline.start({"jobId": job_id})
    assert finished.status == "SUCCEEDED"
    return finished.outcome, finished.path


def check_invocations(stack: LocalStack, job_id: str) -> list:
    return [
        i
        for i in stack.lambda_invocations
        if "CheckStatus" in i.function_name and i.event.get("request", {}).get("jobId") == job_id
    ]


def test_a_young_job_is_checked_several_times_inside_one_invocation(deploy, emulator):
    pipeline = deploy(InitialWaitSeconds=1, MaxWaitSeconds=2, InlineWaitSeconds=5, Observability="Full")
    stack = pipeline.stack
    job_id = emulator.add_job(name="adhoc", schedule=[{"state": "IN_PROGRESS", "seconds": 3}, {"state": "SUCCESSFUL"}])

    detail, path = run(pipeline, job_id)

    status_calls = [r for r in emulator.requests if r.route == "status" and job_id in r.path]
    (invocation,) = check_invocations(stack, job_id)
    assert detail["state"] == "SUCCESSFUL"
    assert detail["polls"] == len(status_calls) - 1 >= 3  # 0 s, 1 s, 2 s, 3 s; then the archive step's call
    assert "WaitBeforeNextPoll" not in path  # no trip round the state machine's loop
    assert invocation.seconds >= 1.9  # it slept between its checks (at least two waits of 1 s)
    # and the archive step published how late the end was noticed (inline checks: about a second)
    (delay,) = stack.metric_values("DetectionDelay", "ArchiveLog")
    assert 0 <= delay <= 3
    # and, with Observability=Full, every check is counted as it happened
    assert sum(stack.metric_values("Polls", "CheckStatus")) == detail["polls"]


def test_with_inline_checks_off_every_wait_is_a_wait_state(deploy, emulator):
    pipeline = deploy(InitialWaitSeconds=1, MaxWaitSeconds=1, InlineWaitSeconds=0)
    stack = pipeline.stack
    job_id = emulator.add_job(name="adhoc", states=["IN_PROGRESS", "IN_PROGRESS", "SUCCESSFUL"])

    detail, path = run(pipeline, job_id)

    assert detail["polls"] == 3
    assert path.count("WaitBeforeNextPoll") == 2
    assert len(check_invocations(stack, job_id)) == 3


def test_a_recurring_job_name_is_checked_near_its_usual_end(deploy, emulator):
    # the state machine's Wait loop decides each wait here (inline checks off: their waits are the next test's)
    pipeline = deploy(InitialWaitSeconds=1, MaxWaitSeconds=1, InlineWaitSeconds=0)
    stack = pipeline.stack
    table = stack.resources["DurationHistoryTable"]
    history = DurationHistory(table, stack.client("dynamodb"))
    # Given two earlier runs of "nightly", each recorded by the archive step from IICS's own times
    for _ in range(2):
        job_id = emulator.add_job(
            name="nightly", schedule=[{"state": "IN_PROGRESS", "seconds": 4}, {"state": "SUCCESSFUL"}]
        )
        run(pipeline, job_id)
    runs = history.runs("nightly")
    durations = [r.seconds for r in runs]
    assert [r.state for r in runs] == ["SUCCESSFUL"] * 2 and all(3.9 <= d <= 6 for d in durations)

    # When the third run starts
    job_id = emulator.add_job(
        name="nightly", schedule=[{"state": "IN_PROGRESS", "seconds": 4}, {"state": "SUCCESSFUL"}]
    )
    detail, _ = run(pipeline, job_id)

    # Then its first check read the history and waited for the window to open, past MaxWaitSeconds (1)
    first = check_invocations(stack, job_id)[0].result
    expected = sum(durations) / 2
    assert first["expectedSeconds"] == pytest.approx(expected, abs=0.01)
    assert first["historyChecked"] is True
    assert history_window(expected)[0] - 1 <= first["nextWaitSeconds"] <= history_window(expected)[0] + 1
    assert first["nextWaitSeconds"] >= 3
    assert detail["state"] == "SUCCESSFUL"
    assert len(history.runs("nightly")) == 3


def test_with_poll_history_disabled_there_is_no_table_and_no_lookup(deploy, emulator):
    pipeline = deploy(InitialWaitSeconds=0, MaxWaitSeconds=1, PollHistory="Disabled")
    stack = pipeline.stack
    job_id = emulator.add_job(name="nightly", states=["IN_PROGRESS", "SUCCESSFUL"])

    detail, _ = run(pipeline, job_id)

    assert "DurationHistoryTable" not in stack.resources
    # the only table left is the secret verdicts', which every stack has
    assert stack.client("dynamodb").list_tables()["TableNames"] == [stack.resources["SecretVerdictTable"]]
    assert detail["state"] == "SUCCESSFUL"
    assert check_invocations(stack, job_id)[0].result["historyChecked"] is False


def test_a_request_budget_holds_every_execution_to_n_iics_requests_a_second(deploy, emulator):
    pipeline = deploy(InitialWaitSeconds=0, MaxWaitSeconds=1, IicsRequestsPerSecond=2)
    stack = pipeline.stack
    capture = pipeline.capture
    jobs = [emulator.add_job(name=f"job-{n}", states=["IN_PROGRESS", "IN_PROGRESS", "SUCCESSFUL"]) for n in range(4)]

    arns = [stack.start({"jobId": job_id}) for job_id in jobs]

    assert [stack.wait(arn, timeout=120)["status"] for arn in arns] == ["SUCCEEDED"] * 4
    assert sorted(e["detail"]["jobId"] for e in capture.drain()) == sorted(jobs)
    table = stack.resources["RequestBudgetTable"]
    counted = {
        int(item["second"]["N"]): int(item["requests"]["N"])
        for item in stack.client("dynamodb").scan(TableName=table)["Items"]
    }
    assert max(counted.values()) <= 2  # never more than the budget in any second
    assert sum(counted.values()) == len(emulator.requests)  # and every request to IICS was counted
    assert len(counted) >= len(emulator.requests) / 2  # so the run was spread over the seconds it needed


# --- callers cannot make the monitor hot --------------------------------------------------------------

WINDOW_SECONDS = 5.0


def status_calls(emulator, job_id: str) -> list:
    """The job's status calls at IICS, the archive step's final one (``?expand=objects``) left out."""
    return [r for r in emulator.requests if r.route == "status" and job_id in r.path and "expand" not in r.path]


def settle(stack: LocalStack, seconds: float) -> float:
    """Wait until every execution has ended, or ``seconds`` have passed; the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        executions = stack.executions()
        if executions and all(e["status"] != "RUNNING" for e in executions):
            break
        time.sleep(0.1)
    return time.monotonic() - started


def test_an_announcement_asking_for_0_s_waits_cannot_make_a_burst_of_status_calls(deploy, emulator):
    # Given a stack with the template's own poll defaults, and a job that runs for two minutes
    pipeline = deploy()
    stack = pipeline.stack
    capture = pipeline.capture
    job_id = emulator.add_job(schedule=[{"state": "IN_PROGRESS", "seconds": 120}, {"state": "SUCCESSFUL"}])

    # When anyone who can put events on the bus asks for 0 s waits
    stack.submit({"jobId": job_id, "monitor": {"initialWaitSeconds": 0, "maxWaitSeconds": 0}})
    seconds = settle(stack, WINDOW_SECONDS)

    # Then IICS sees at most one status call a second (without the floors: 381 in 5.2 s, 1,500 in 22 s)
    calls = status_calls(emulator, job_id)
    assert len(calls) <= seconds + 1, f"{len(calls)} status calls in {seconds:.1f} s"
    # because the door refuses it, as any out-of-range monitor value: one ERROR outcome names the job
    (outcome,) = [e["detail"] for e in capture.drain()]
    assert outcome["state"] == "ERROR" and outcome["errorType"] == "InvalidInput"
    assert outcome["jobId"] == job_id and outcome["polls"] == 0
    assert "monitor.initialWaitSeconds must be a whole number from 1 to 3600" in outcome["reason"]
    assert emulator.logins == 0


def test_an_announcement_at_the_floor_is_polled_once_a_second_until_the_poll_budget(deploy, emulator):
    pipeline = deploy(MaxPolls=4)
    stack = pipeline.stack
    capture = pipeline.capture
    job_id = emulator.add_job(schedule=[{"state": "IN_PROGRESS", "seconds": 120}, {"state": "SUCCESSFUL"}])

    stack.submit({"jobId": job_id, "monitor": {"initialWaitSeconds": 1, "maxWaitSeconds": 1}})
    settle(stack, 30)

    # The shortest waits a request may ask for: checks a second apart (inside one invocation) ...
    times = [r.time for r in status_calls(emulator, job_id)]
    assert len(times) == 4
    assert min(later - earlier for earlier, later in zip(times, times[1:], strict=False)) >= 0.95
    # ... and MaxPolls still ends the watch
    (outcome,) = [e["detail"] for e in capture.drain()]
    assert outcome["state"] == "TIMED_OUT" and "poll budget" in outcome["reason"] and outcome["polls"] == 4

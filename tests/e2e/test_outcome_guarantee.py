"""Exactly one correct outcome per job, whatever arrives: announcements of any size, refused
announcements that must not take a job's name, and an outcome that survives EventBridge being down.

Each story goes through the front door (the upstream event on the bus) unless it says otherwise."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from iics_monitor_local.cli import cli, redeliver_outcomes
from iics_monitor_local.samconfig import STACK_NAME
from tests.e2e.conftest import FAST, deployed

# A job whose failed objects fill every bounded field with the widest characters JSON can carry.
WIDE = "\u00e9\U0001f600\u2028"  # 2-, 4- and 3-byte UTF-8; escaped by JSON as 6, 12 and 6 bytes
FAILED_OBJECTS = [
    {
        "id": f"obj{n:019d}",
        "name": WIDE * 400,
        "path": "/" + WIDE * 400,
        "type": "DTEMPLATE" * 30,
        "status": {"state": "FAILED", "message": WIDE * 400},
    }
    for n in range(60)
]


def execution_named(pipeline, name: str) -> dict:
    (execution,) = [e for e in pipeline.stack.executions() if e["name"] == name]
    return pipeline.stack.wait(execution["executionArn"], timeout=60)


def outcomes_of(pipeline, job_id: str | None = None) -> list[dict]:
    return [e["detail"] for e in pipeline.capture.drain() if job_id is None or e["detail"]["jobId"] == job_id]


def test_announcements_with_large_extra_fields_each_end_in_one_correct_outcome(pipeline, emulator):
    for extra in (200_000, 250_000, 900_000):
        job_id = emulator.add_job(states=["IN_PROGRESS", "FAILED"], objects=FAILED_OBJECTS)

        pipeline.stack.submit({"jobId": job_id, "name": "nightly", "upstream": {"blob": "x" * extra}})

        described = execution_named(pipeline, job_id)
        (outcome,) = outcomes_of(pipeline, job_id)
        assert outcome["state"] == "FAILED", (extra, outcome)
        assert outcome["objects"]["failed"] == 60 and len(outcome["failedObjects"]) == 25
        # Only the validated request entered the execution: the extra field was dropped at the door.
        execution_input = json.loads(described["input"])
        assert "upstream" not in json.dumps(execution_input)
        assert len(described["input"]) < 2_000


def test_a_bare_input_with_large_extra_fields_ends_in_one_correct_outcome(pipeline, emulator):
    job_id = emulator.add_job(states=["IN_PROGRESS", "FAILED"], objects=FAILED_OBJECTS)

    run = pipeline.start({"jobId": job_id, "upstream": "x" * 250_000})

    assert run.outcome["state"] == "FAILED" and run.outcome["jobId"] == job_id
    assert run.path[:3] == ["NormaliseInput", "AcceptInput", "WasInputAccepted"]


@pytest.mark.parametrize(
    "refused",
    [
        pytest.param({"export": {"objects": [{"id": "aaaaaaaaaaaaaaaaaaaaaa"}]}}, id="jobId-and-export"),
        pytest.param({"monitor": {"initialWaitSeconds": 99999}}, id="bad-monitor"),
        pytest.param({"monitor": {"maxWaitSeconds": 1, "initialWaitSeconds": 5}}, id="contradictory-monitor"),
    ],
)
def test_a_refused_announcement_gets_one_error_and_never_takes_the_jobs_name(pipeline, emulator, refused):
    job_id = emulator.add_job(states=["IN_PROGRESS", "SUCCESSFUL"])

    # Given an announcement the door refuses, delivered twice (EventBridge is at-least-once)
    event_id = pipeline.stack.submit({"jobId": job_id, **refused})
    pipeline.stack.submit_event_again(event_id)

    # Then exactly one ERROR outcome says why, from an execution named after the event, not the job
    refused_run = execution_named(pipeline, f"invalid-{event_id}")
    assert refused_run["status"] == "FAILED"
    (error,) = outcomes_of(pipeline)
    assert error["state"] == "ERROR" and error["errorType"] == "InvalidInput"
    assert error["jobId"] == job_id and error["polls"] == 0
    assert [e["name"] for e in pipeline.stack.executions()] == [f"invalid-{event_id}"]
    assert emulator.logins == 0  # refused at the door: IICS never asked

    # When the real announcement follows, the job is watched
    pipeline.stack.submit({"jobId": job_id})
    assert execution_named(pipeline, job_id)["status"] == "SUCCEEDED"
    (outcome,) = outcomes_of(pipeline, job_id)[1:]
    assert outcome["state"] == "SUCCESSFUL"


@pytest.fixture
def full_pipeline(emulator):
    """Observability=Full: the functions publish every metric, not only the outcomes."""
    with deployed(emulator, FAST | {"Observability": "Full"}) as pipeline:
        yield pipeline


def test_monitors_started_counts_only_executions_that_started(full_pipeline, emulator):
    pipeline = full_pipeline
    job_id = emulator.add_job(states=["IN_PROGRESS"] * 3 + ["SUCCESSFUL"])

    event_id = pipeline.stack.submit({"jobId": job_id})
    pipeline.stack.submit_event_again(event_id)  # redelivered while the first runs
    execution_named(pipeline, job_id)

    starts = [i for i in pipeline.stack.lambda_invocations if "StartMonitor" in i.function_name]
    assert [s.result["status"] for s in starts] == ["started", "duplicate"]
    assert sum(pipeline.stack.metric_values("MonitorsStarted", "StartMonitor")) == 1
    assert sum(pipeline.stack.metric_values("DuplicateSubmissions", "StartMonitor")) == 1


def test_the_outcome_survives_eventbridge_being_down_and_is_redelivered_once(pipeline, emulator):
    jobs = [emulator.add_job(states=["IN_PROGRESS", state]) for state in ("SUCCESSFUL", "FAILED")]

    # Given EventBridge refuses every PutEvents while two jobs end
    pipeline.stack.fail_aws("events", "PutEvents", times=1_000, error="InternalException")
    arns = [pipeline.stack.start({"jobId": job_id}) for job_id in jobs]
    described = [pipeline.stack.wait(arn, timeout=90) for arn in arns]

    # Then no outcome went out, but both are kept (the queue's alarm is the one message about it)
    assert [d["status"] for d in described] == ["SUCCEEDED", "SUCCEEDED"]
    assert all("KeepUndeliveredOutcome" in pipeline.stack.path(arn) for arn in arns)
    assert outcomes_of(pipeline) == []
    queue_url = pipeline.stack.outputs["UndeliveredOutcomeQueueUrl"]
    assert queued(pipeline, queue_url) == 2

    # When EventBridge recovers and the operator redelivers (twice, by mistake)
    pipeline.stack.clear_aws_faults()
    sqs, events = pipeline.stack.client("sqs"), pipeline.stack.client("events")
    first = CliRunner().invoke(cli, ["redeliver", "--stack-name", STACK_NAME, "--region", "us-east-1"])
    second = redeliver_outcomes(sqs, events, queue_url, pipeline.stack.bus_name)

    # Then each kept outcome is on the bus exactly once, as it would have been
    assert first.exit_code == 0, first.output
    assert "Redelivered 2 kept outcome event(s)" in first.output
    assert (second.redelivered, second.failed) == (0, 0)
    outcomes = outcomes_of(pipeline)
    expected = sorted(zip(jobs, ["SUCCESSFUL", "FAILED"], strict=True))
    assert sorted((o["jobId"], o["state"]) for o in outcomes) == expected
    assert queued(pipeline, queue_url) == 0


def queued(pipeline, queue_url: str) -> int:
    attributes = pipeline.stack.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return sum(int(v) for v in attributes.values())

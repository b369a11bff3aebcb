"""Exactly one outcome per job, whatever EventBridge or users do: duplicates in sequence, while
the first is running, and at the same moment."""

from __future__ import annotations

import threading

import pytest

from iics_monitor.submit import start_monitor
from iics_monitor.validation import MonitorSettings
from iics_monitor_local import template
from tests.e2e.conftest import Pipeline


@pytest.fixture(autouse=True)
def versioned_archive(pipeline):
    """The archive bucket keeps every write of a key as a version, as the template declares: moto's
    CloudFormation leaves versioning off, and an unversioned bucket shows a second archive of a job as
    the same three objects, so ``archived_versions`` could not tell once from twice."""
    declared = template.load()["Resources"]["ArchiveBucket"]["Properties"]["VersioningConfiguration"]
    pipeline.stack.client("s3").put_bucket_versioning(Bucket=pipeline.stack.bucket, VersioningConfiguration=declared)


def archived_versions(pipeline: Pipeline, job_id: str) -> list[str]:
    """Every object version written for the job: a second archive would double them."""
    s3 = pipeline.stack.client("s3")
    versions = s3.list_object_versions(Bucket=pipeline.stack.bucket).get("Versions", [])
    return [v["Key"] for v in versions if f"/{job_id}/" in v["Key"]]


def run_all(pipeline: Pipeline) -> list[dict]:
    for execution in pipeline.stack.executions():
        pipeline.stack.wait(execution["executionArn"], timeout=60)
    return pipeline.capture.drain()


def test_a_duplicate_while_the_job_runs_and_one_after_it_ended_change_nothing(pipeline, emulator):
    job_id = emulator.add_job(states=["IN_PROGRESS", "IN_PROGRESS", "SUCCESSFUL"])

    pipeline.stack.submit({"jobId": job_id})
    pipeline.stack.submit({"jobId": job_id})  # EventBridge delivered twice, or the user clicked twice
    run_all(pipeline)
    pipeline.stack.submit({"jobId": job_id})  # a late duplicate, after the outcome
    events = run_all(pipeline)

    assert [e["detail"]["jobId"] for e in events] == [job_id]
    assert [e["name"] for e in pipeline.stack.executions()] == [job_id]
    assert len(archived_versions(pipeline, job_id)) == 3  # export.log, package.zip and status.json, once each
    starts = [i.result for i in pipeline.stack.lambda_invocations if "StartMonitor" in i.function_name]
    assert [s["status"] for s in starts] == ["started", "duplicate", "duplicate"]  # the 2nd was refused, not joined


def at_the_same_moment(call, times: int = 8) -> list:
    """``call()`` from ``times`` threads released together; their results."""
    barrier = threading.Barrier(times)
    results = []

    def run():
        barrier.wait()
        results.append(call())

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_duplicates_at_the_same_moment_start_one_execution(pipeline, emulator):
    job_id = emulator.add_job(states=["IN_PROGRESS", "SUCCESSFUL"])

    at_the_same_moment(lambda: pipeline.stack.submit({"jobId": job_id}))
    events = run_all(pipeline)

    # the eight StartMonitor invocations really ran at once, each in a container of its own
    starts = [i for i in pipeline.stack.lambda_invocations if "StartMonitor" in i.function_name]
    assert max(sum(a.started_at < b.finished_at and b.started_at < a.finished_at for a in starts) for b in starts) > 1
    assert len(pipeline.stack.executions()) == 1
    assert [e["detail"]["jobId"] for e in events] == [job_id]
    assert len(archived_versions(pipeline, job_id)) == 3


def test_concurrent_starts_race_at_step_functions_and_one_wins(pipeline, emulator):
    # Below the Lambda layer: eight start_monitor calls racing on StartExecution itself.
    job_id = emulator.add_job(states=["IN_PROGRESS", "SUCCESSFUL"])
    defaults = MonitorSettings(initial_wait_seconds=0, max_wait_seconds=1, timeout_seconds=60)
    sfn = pipeline.stack.client("stepfunctions")
    event = {"detail": {"jobId": job_id, "name": "racer"}}

    results = at_the_same_moment(
        lambda: start_monitor(event, sfn=sfn, state_machine_arn=pipeline.stack.state_machine_arn, defaults=defaults)
    )
    events = run_all(pipeline)

    assert len(pipeline.stack.executions()) == 1
    assert {r["executionName"] for r in results} == {job_id}
    assert len(events) == 1


def test_a_new_attempt_watches_the_job_again(pipeline, emulator):
    job_id = emulator.add_job(states=["SUCCESSFUL"])

    pipeline.stack.submit({"jobId": job_id})
    run_all(pipeline)
    pipeline.stack.submit({"jobId": job_id, "attempt": 2})
    events = run_all(pipeline)

    assert sorted(e["name"] for e in pipeline.stack.executions()) == [job_id, f"{job_id}-attempt-2"]
    assert len(events) == 2


def test_an_invalid_submission_still_reports_its_error_once(pipeline, emulator):
    pipeline.stack.submit({"jobId": "../etc/passwd"})

    (event,) = run_all(pipeline)

    assert event["detail"]["state"] == "ERROR" and event["detail"]["errorType"] == "InvalidJobId"
    (execution,) = pipeline.stack.executions()
    assert execution["name"].startswith("invalid-")
    assert emulator.requests == []

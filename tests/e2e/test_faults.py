"""The fault matrix (docs/reliability.md): each fault, driven through the IICS emulator or a fault
hook on the AWS clients, ends in a defined outcome event, exactly once, and loses no log while the
log endpoint is up."""

from __future__ import annotations

import hashlib

import pytest

from iics_monitor_local.emulator import HUGE_BYTES, Fault
from tests.e2e.conftest import FAST, deployed

MIB = 1024 * 1024


def run_job(pipeline, emulator, *faults: Fault, states=("IN_PROGRESS", "IN_PROGRESS", "SUCCESSFUL"), log=None):
    job_id = emulator.add_job(states=list(states), log=log)
    for fault in faults:
        emulator.add_fault(fault)
    run = pipeline.start({"jobId": job_id})
    return job_id, run


def assert_archived_intact(run, emulator, job_id: str) -> dict:
    detail = run.outcome  # exactly one outcome event, valid against the schema
    served = emulator.log_of(job_id)
    assert detail["log"] is not None, detail["logError"]
    assert run.archived(detail["log"]["key"]) == served
    assert detail["log"]["sha256"] == hashlib.sha256(served).hexdigest()
    return detail


def injected(emulator, status: int | None) -> int:
    return sum(1 for r in emulator.requests if r.status == status)


# --- IICS ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        Fault(route="status", status=429, retry_after=0.5, after=1),
        Fault(route="status", status=429, after=1),
        Fault(route="status", status=500, after=1),
        Fault(route="status", status=502, html=True, after=1),
        Fault(route="status", status=503, html=True, after=1),
        Fault(route="status", kind="reset", after=1),
        Fault(route="status", kind="malformed_json", after=1),
        Fault(route="login", status=503),
        Fault(route="status", kind="huge", after=1),
        Fault(route="status", kind="huge", chunked=True, after=1),
        Fault(route="login", kind="huge", chunked=True),
        Fault(route="status", kind="wrong_id", after=1),
    ],
    ids=[
        *["429-retry-after", "429-bare", "500", "502-html", "503-html", "reset", "malformed-json", "login-503"],
        *["status-64-mib", "status-64-mib-chunked", "login-64-mib-chunked", "status-of-another-job"],
    ],
)
def test_transient_iics_faults_are_waited_out(pipeline, emulator, fault):
    job_id, run = run_job(pipeline, emulator, fault)

    detail = assert_archived_intact(run, emulator, job_id)
    assert detail["state"] == "SUCCESSFUL"
    assert run.status == "SUCCEEDED"
    assert len([r for r in emulator.requests if r.route == "status"]) >= 4  # the failed poll was repeated
    if fault.kind == "huge":  # the 64 MiB answer was refused early, never read whole
        assert all(sent < HUGE_BYTES // 2 for sent in emulator.huge_bytes_sent())


def test_a_status_about_another_job_is_asked_again_and_never_reported(pipeline, emulator):
    job_id, run = run_job(pipeline, emulator, Fault(route="status", kind="wrong_id"), states=["SUCCESSFUL"])

    assert assert_archived_intact(run, emulator, job_id)["state"] == "SUCCESSFUL"
    assert run.path.count("CheckStatus") == 2  # the first answer, about another job, was a failed poll


def test_a_slow_answer_within_the_read_timeout_is_just_slow(pipeline, emulator):
    job_id, run = run_job(pipeline, emulator, Fault(route="status", kind="slow", delay_seconds=1.0, after=1))

    assert assert_archived_intact(run, emulator, job_id)["state"] == "SUCCESSFUL"


def test_job_not_found_is_an_error_outcome(pipeline, emulator):
    run = pipeline.start({"jobId": "NoSuchJob0000000000000"})

    detail = run.outcome
    assert (detail["state"], detail["errorType"]) == ("ERROR", "JobNotFound")
    assert "HTTP 404" in detail["reason"]
    assert run.status == "FAILED"


def test_a_log_that_is_not_found_gives_log_error(pipeline, emulator):
    job_id, run = run_job(pipeline, emulator, Fault(route="log", status=404, times=None), states=["SUCCESSFUL"])

    detail = run.outcome
    assert detail["state"] == "SUCCESSFUL" and detail["log"] is None
    assert "HTTP 404" in detail["logError"]
    assert injected(emulator, 404) == 1  # a 404 is not retried


def test_a_log_endpoint_that_fails_for_a_while_loses_nothing(pipeline, emulator):
    faults = [Fault(route="log", status=500, times=2), Fault(route="log", kind="reset")]
    job_id, run = run_job(pipeline, emulator, *faults, states=["SUCCESSFUL"])

    assert assert_archived_intact(run, emulator, job_id)["state"] == "SUCCESSFUL"


# --- AWS -----------------------------------------------------------------------------------------


def test_s3_put_object_failing_once_is_retried(pipeline, emulator):
    pipeline.stack.fail_aws("s3", "PutObject", error="InternalError", times=2)

    job_id, run = run_job(pipeline, emulator, states=["SUCCESSFUL"])

    assert assert_archived_intact(run, emulator, job_id)["state"] == "SUCCESSFUL"
    listed = pipeline.stack.client("s3").list_objects_v2(Bucket=pipeline.stack.bucket)["Contents"]
    assert sorted(o["Key"].rsplit("/", 1)[1] for o in listed) == ["export.log", "package.zip", "status.json"]


def test_a_multipart_upload_failing_once_is_retried(pipeline, emulator):
    log = b"".join(
        b"> OIE_004 INFO 2026-11-28T09:00:00.000Z Successfully exported object [/p/%d]\n" % i for i in range(130_000)
    )
    assert len(log) > 9 * MIB  # past the 8 MiB multipart threshold
    pipeline.stack.fail_aws("s3", "UploadPart", error="SlowDown")

    job_id, run = run_job(pipeline, emulator, states=["SUCCESSFUL"], log=log)

    detail = assert_archived_intact(run, emulator, job_id)
    assert detail["log"]["sizeBytes"] == len(log)


def test_s3_down_for_good_still_announces_the_outcome(pipeline, emulator):
    pipeline.stack.fail_aws("s3", "PutObject", error="ServiceUnavailable", times=100)

    job_id, run = run_job(pipeline, emulator, states=["SUCCESSFUL"])

    detail = run.outcome
    assert detail["state"] == "SUCCESSFUL" and detail["log"] is None
    assert detail["logError"] == "log not stored: S3 did not store the log: ServiceUnavailable"
    assert (detail["package"], detail["packageError"]) == (None, "package not stored: S3 did not store the log either")


def test_eventbridge_failed_entries_are_retried_and_the_outcome_goes_out_once(pipeline, emulator):
    failed = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}]}
    pipeline.stack.fail_aws("events", "PutEvents", response=failed, times=2)

    job_id, run = run_job(pipeline, emulator, states=["SUCCESSFUL"])

    assert assert_archived_intact(run, emulator, job_id)["state"] == "SUCCESSFUL"
    failures = [e for e in pipeline.stack.history(run.execution_arn) if e["type"] == "TaskFailed"]
    assert [e["taskFailedEventDetails"]["error"] for e in failures] == ["EventBridge.FailedEntry"] * 2


def test_an_answer_slower_than_the_read_timeout_is_a_failed_poll_tried_again(emulator):
    with deployed(emulator, FAST | {"IicsReadTimeoutSeconds": 1}) as pipeline:
        job_id, run = run_job(pipeline, emulator, Fault(route="status", kind="slow", delay_seconds=2.5, after=1))

        assert assert_archived_intact(run, emulator, job_id)["state"] == "SUCCESSFUL"
        checks = [i.result for i in pipeline.stack.lambda_invocations if "CheckStatus" in i.function_name]
        errors = [c["lastError"] for c in checks if c.get("lastError")]
        assert [e["type"] for e in errors] == ["AnswerLost"] and "ReadTimeoutError" in errors[0]["message"]


def test_a_dripping_status_and_an_endless_log_still_end_in_one_timely_outcome(emulator):
    # Every step bounds itself (docs/reliability.md): 1 s per IICS request, 1 s for the archive's streams
    with deployed(emulator, FAST | {"IicsReadTimeoutSeconds": 1, "ArchiveMaxSeconds": 1}) as pipeline:
        drip = Fault(route="status", kind="drip", delay_seconds=0.01, after=1)  # ~6 s for one answer
        job_id, run = run_job(pipeline, emulator, drip, Fault(route="log", kind="endless"))

        detail = run.outcome
        assert (detail["state"], detail["jobId"], detail["log"]["truncated"]) == ("SUCCESSFUL", job_id, "time")
        invocations = {i.function_name: i for i in pipeline.stack.lambda_invocations}
        checks = [i for i in pipeline.stack.lambda_invocations if "CheckStatus" in i.function_name]
        assert [c.result["lastError"]["type"] for c in checks if c.result.get("lastError")] == ["AnswerLost"]
        assert max(c.seconds for c in checks) < 3.0  # 1 s budgets, with time to spare on a busy machine
        (archive,) = [i for name, i in invocations.items() if "ArchiveLog" in name]
        assert archive.seconds < 4.0

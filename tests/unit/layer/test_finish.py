"""finish: a finished (or timed-out) job's final status and log go to S3, and the outcome detail comes back.

The real IicsClient talks to the emulator; the real LogArchiver writes to moto's S3.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime

import pytest

from iics_monitor import archive, finish
from iics_monitor.archive import FETCH_ATTEMPTS, LOG_CONTENT_TYPE, LogArchiver
from iics_monitor.client import SESSION_HEADER
from iics_monitor.errors import InvalidInput, InvalidJobId
from iics_monitor.finish import finish_job
from iics_monitor_local import reference
from iics_monitor_local.emulator import REFERENCE_JOB_ID, Fault
from tests.conftest import assert_valid_outcome
from tests.unit.layer.conftest import BUCKET, PREFIX

NOW = datetime(2026, 11, 28, 9, 45, tzinfo=UTC)
ARN = "arn:aws:states:us-east-1:123456789012:execution:IicsExportMonitor:run-1"
LOG_BYTES = reference.LOG_TEXT.encode()


@pytest.fixture(autouse=True)
def retry_sleeps(monkeypatch) -> list[float]:
    """finish_job retries IICS calls with real sleeps of 1 s and 2 s; record them instead."""
    sleeps: list[float] = []
    monkeypatch.setattr(finish, "with_retries", functools.partial(archive.with_retries, sleep=sleeps.append))
    return sleeps


def finish_event(job_id: str, outcome: str, reason: str | None = None, **poll) -> dict:
    """The ArchiveLog task's input: the last check result and the execution ARN."""
    record = {
        "jobId": job_id,
        "jobName": "testJob1",
        "state": "RUNNING" if outcome == "TIMED_OUT" else outcome,
        "iicsState": "IN_PROGRESS" if outcome == "TIMED_OUT" else outcome,
        "message": None,
        "terminal": outcome != "TIMED_OUT",
        "outcome": outcome,
        "reason": reason,
        "nextWaitSeconds": 0,
        "polls": 3,
        "maxPolls": 2000,
        "transientErrors": 0,
        "lastError": None,
    }
    return {"poll": record | poll, "executionArn": ARN}


def run(client, archiver, job_id, outcome, reason=None, **poll) -> dict:
    return finish_job(finish_event(job_id, outcome, reason, **poll), source=client, archiver=archiver, now=NOW)


def folder(job_id: str) -> str:
    return f"{PREFIX}2026/11/28/{job_id}/"


def keys(s3) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def routes(emulator) -> list[tuple[str, int | None]]:
    return [(r.route, r.status) for r in emulator.requests]


def failing_object(n: int) -> dict:
    return {
        "id": f"F{n:021d}",
        "name": f"m_orders_{n}",
        "path": "/Sales",
        "type": "DTEMPLATE",
        "status": {"state": "FAILED", "message": f"Object {n} is locked by another user."},
    }


# --- a successful job -------------------------------------------------------------------------------------------------


def test_a_successful_job_is_archived_byte_for_byte_and_announced(emulator, client, archiver, s3, retry_sleeps):
    emulator.add_reference_job(states=["SUCCESSFUL"])

    detail = run(client, archiver, REFERENCE_JOB_ID, "SUCCESSFUL")

    log_key = folder(REFERENCE_JOB_ID) + "export.log"
    assert s3.get_object(Bucket=BUCKET, Key=log_key)["Body"].read() == LOG_BYTES
    head = s3.head_object(Bucket=BUCKET, Key=log_key)
    assert head["ContentType"] == LOG_CONTENT_TYPE
    assert head["Metadata"] == {
        "job-id": REFERENCE_JOB_ID,
        "state": "SUCCESSFUL",
        "sha256": hashlib.sha256(LOG_BYTES).hexdigest(),
    }
    assert detail == {
        "schemaVersion": "1",
        "schemaMinorVersion": 2,
        "jobId": REFERENCE_JOB_ID,
        "jobName": "testJob1",
        "state": "SUCCESSFUL",
        "iicsState": "SUCCESSFUL",
        "message": "Export completed successfully.",
        "reason": None,
        "warning": None,
        "errorType": None,
        "iicsErrorCode": None,
        "startTime": "2017-10-26T08:15:49.000Z",
        "endTime": "2017-10-26T08:15:50.000Z",
        "durationSeconds": 1.0,
        "objects": {"total": 13, "successful": 13, "failed": 0},
        "failedObjects": [],
        "log": {
            "bucket": BUCKET,
            "key": log_key,
            "sizeBytes": len(LOG_BYTES),
            "sha256": hashlib.sha256(LOG_BYTES).hexdigest(),
        },
        "logError": None,
        "logSummary": detail["logSummary"],
        "package": None,
        "packageError": None,
        "executionArn": ARN,
        "polls": 3,
    }
    assert_valid_outcome(detail)
    assert retry_sleeps == []
    # and what the log says, read on its way to S3
    summary = detail["logSummary"]
    assert (summary["sizeBytes"], summary["footer"]["status"], summary["errors"]["count"]) == (
        len(LOG_BYTES),
        "SUCCESSFUL",
        0,
    )
    assert summary["objects"]["exported"] == 7


def test_the_final_status_with_objects_is_stored_as_status_json(emulator, client, archiver, s3):
    emulator.add_reference_job(states=["SUCCESSFUL"])

    run(client, archiver, REFERENCE_JOB_ID, "SUCCESSFUL")

    assert keys(s3) == [folder(REFERENCE_JOB_ID) + "export.log", folder(REFERENCE_JOB_ID) + "status.json"]
    stored = s3.get_object(Bucket=BUCKET, Key=folder(REFERENCE_JOB_ID) + "status.json")["Body"].read()
    assert json.loads(stored) == reference.STATUS_SUCCESSFUL_WITH_OBJECTS


def test_finishing_makes_one_login_one_expanded_status_call_and_one_log_call(emulator, client, archiver):
    emulator.add_reference_job(states=["SUCCESSFUL"])

    detail = run(client, archiver, REFERENCE_JOB_ID, "SUCCESSFUL")

    assert routes(emulator) == [("login", 200), ("status", 200), ("log", 200)]
    assert emulator.requests[1].path.endswith(f"/export/{REFERENCE_JOB_ID}?expand=objects")
    sessions = {v for r in emulator.requests for k, v in r.headers.items() if k.lower() == SESSION_HEADER.lower()}
    assert sessions and not [s for s in sessions if s in json.dumps(detail)]


# --- an end the check saw -------------------------------------------------------------------------------------------


def test_a_partial_success_is_announced_successful_with_the_checks_warning(emulator, client, archiver, s3):
    job_id = emulator.add_job(name="nightly", states=["PARTIAL_SUCCESS"])
    warning = "IICS reported PARTIAL_SUCCESS: Export completed with errors."

    detail = run(client, archiver, job_id, "SUCCESSFUL", iicsState="PARTIAL_SUCCESS", warning=warning)

    assert (detail["state"], detail["iicsState"], detail["warning"]) == ("SUCCESSFUL", "PARTIAL_SUCCESS", warning)
    assert (detail["schemaMinorVersion"], detail["reason"]) == (2, None)
    assert detail["endTime"] is not None
    assert_valid_outcome(detail)


def test_a_final_status_that_says_running_again_does_not_undo_the_end_the_check_saw(emulator, client, archiver, s3):
    # Given a job the check saw end SUCCESSFUL, and IICS answering IN_PROGRESS to the final re-read
    job_id = emulator.add_job(name="flaky", states=["IN_PROGRESS"])
    ended = "2026-11-28T09:40:00.000Z"

    detail = run(
        client,
        archiver,
        job_id,
        "SUCCESSFUL",
        iicsState="SUCCESSFUL",
        message="Export completed successfully.",
        jobEndTime=ended,
        jobStartTime="2026-11-28T09:39:00.000Z",
    )

    # Then the outcome is the check's: its state, raw state, message and end time
    assert (detail["state"], detail["iicsState"], detail["message"]) == (
        "SUCCESSFUL",
        "SUCCESSFUL",
        "Export completed successfully.",
    )
    assert detail["endTime"] == ended
    # and it says that IICS answered otherwise afterwards
    assert "IN_PROGRESS" in detail["reason"] and "the check's end stands" in detail["reason"]
    assert_valid_outcome(detail)


def test_the_checks_raw_state_is_kept_when_the_final_status_uses_another_word(emulator, client, archiver):
    job_id = emulator.add_job(states=["SUCCESSFUL"])

    detail = run(client, archiver, job_id, "FAILED", iicsState="ERROR", message="Export aborted.")

    assert (detail["state"], detail["iicsState"], detail["message"]) == ("FAILED", "ERROR", "Export aborted.")


# --- a failed job -----------------------------------------------------------------------------------------------------


def test_a_failed_job_lists_its_failed_objects_up_to_25(emulator, client, archiver, s3):
    good = {"name": "m_customers", "path": "/Sales", "type": "DTEMPLATE", "status": {"state": "SUCCESSFUL"}}
    objects = [good, good | {"name": "m_products"}] + [failing_object(n) for n in range(30)]
    job_id = emulator.add_job(job_id="FailedJob0000000000001", name="orders", states=["FAILED"], objects=objects)

    detail = run(client, archiver, job_id, "FAILED", jobName="orders")

    assert (detail["state"], detail["iicsState"]) == ("FAILED", "FAILED")
    assert detail["objects"] == {"total": 32, "successful": 2, "failed": 30}
    assert len(detail["failedObjects"]) == 25
    assert detail["failedObjects"][0] == {
        "id": "F000000000000000000000",
        "name": "m_orders_0",
        "path": "/Sales",
        "type": "DTEMPLATE",
        "message": "Object 0 is locked by another user.",
    }
    assert [o["name"] for o in detail["failedObjects"]] == [f"m_orders_{n}" for n in range(25)]
    assert_valid_outcome(detail)


def test_a_failed_jobs_log_is_archived_with_the_failed_state(emulator, client, archiver, s3):
    log = (
        b"> OIE_002 INFO 2026-11-28T09:00:00.000Z Starting export operation.\n"
        + bytes(range(256))
        + b"\nStatus: FAILED\n"
    )
    job_id = emulator.add_job(job_id="FailedJob0000000000002", states=["FAILED"], objects=[failing_object(1)], log=log)

    detail = run(client, archiver, job_id, "FAILED")

    key = folder(job_id) + "export.log"
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == log
    assert s3.head_object(Bucket=BUCKET, Key=key)["Metadata"]["state"] == "FAILED"
    assert detail["log"]["sha256"] == hashlib.sha256(log).hexdigest()
    assert_valid_outcome(detail)


# --- a log that cannot be archived ------------------------------------------------------------------------------------


def test_a_log_endpoint_failing_forever_gives_log_error_and_a_valid_outcome(
    emulator, client, archiver, s3, retry_sleeps
):
    emulator.add_reference_job(states=["SUCCESSFUL"])
    emulator.add_fault(Fault(route="log", status=500, times=None))

    detail = run(client, archiver, REFERENCE_JOB_ID, "SUCCESSFUL")

    assert detail["log"] is None
    assert detail["logError"].startswith("log not fetched from IICS: ")
    assert "HTTP 500" in detail["logError"]
    assert detail["state"] == "SUCCESSFUL"
    assert detail["objects"] == {"total": 13, "successful": 13, "failed": 0}
    assert_valid_outcome(detail)
    assert [status for route, status in routes(emulator) if route == "log"] == [500] * FETCH_ATTEMPTS
    assert retry_sleeps == [1.0, 2.0, 4.0, 8.0, 10.0]  # six attempts in all
    assert keys(s3) == [folder(REFERENCE_JOB_ID) + "status.json"]


@pytest.mark.parametrize(("route", "field"), [("log", "logError"), ("package", "packageError")])
@pytest.mark.parametrize("body_format", ["json", "text", "html"])
def test_an_answer_that_echoes_the_session_leaves_it_out_of_the_outcome(
    emulator, client, archiver, route, field, body_format
):
    emulator.add_reference_job(states=["SUCCESSFUL"])
    emulator.add_fault(Fault(route=route, kind="echo", status=400, body_format=body_format, times=None))

    detail = finish_job(
        finish_event(REFERENCE_JOB_ID, "SUCCESSFUL"), source=client, archiver=archiver, now=NOW, archive_package=True
    )

    (session_id,) = emulator.issued_session_ids
    assert "INFA-SESSION-ID" in detail[field]  # the echo reached the outcome, scrubbed
    assert session_id not in json.dumps(detail)
    assert_valid_outcome(detail)


def test_a_log_endpoint_failing_once_is_retried_and_archived(emulator, client, archiver, s3, retry_sleeps):
    emulator.add_reference_job(states=["SUCCESSFUL"])
    emulator.add_fault(Fault(route="log", kind="reset"))

    detail = run(client, archiver, REFERENCE_JOB_ID, "SUCCESSFUL")

    assert detail["logError"] is None
    assert s3.get_object(Bucket=BUCKET, Key=detail["log"]["key"])["Body"].read() == LOG_BYTES
    assert retry_sleeps == [1.0]


def test_a_bucket_that_refuses_the_log_gives_log_error_and_a_valid_outcome(emulator, client, s3):
    emulator.add_reference_job(states=["SUCCESSFUL"])
    archiver = LogArchiver("no-such-bucket-here", PREFIX, s3_client=s3)

    detail = run(client, archiver, REFERENCE_JOB_ID, "SUCCESSFUL")

    assert detail["log"] is None
    assert detail["logError"].startswith("log not stored: S3 did not store the log: ")
    assert detail["objects"]["total"] == 13
    assert_valid_outcome(detail)


def test_a_throttled_final_status_is_retried(emulator, client, archiver, retry_sleeps):
    emulator.add_reference_job(states=["SUCCESSFUL"])
    emulator.add_fault(Fault(route="status", status=429, retry_after=3))

    detail = run(client, archiver, REFERENCE_JOB_ID, "SUCCESSFUL")

    assert detail["objects"]["total"] == 13
    assert detail["reason"] is None
    assert retry_sleeps == [3.0]


def test_a_job_iics_no_longer_knows_still_gives_a_valid_outcome_from_the_last_poll(emulator, client, archiver, s3):
    detail = run(client, archiver, "GoneJob000000000000001", "SUCCESSFUL", jobName="gone", iicsState="SUCCESSFUL")

    assert detail["reason"].startswith("final status unavailable: ")
    assert (detail["jobName"], detail["iicsState"]) == ("gone", "SUCCESSFUL")
    assert detail["objects"] == {"total": 0, "successful": 0, "failed": 0}
    assert detail["log"] is None
    assert "HTTP 404" in detail["logError"]
    assert_valid_outcome(detail)
    assert routes(emulator) == [("login", 200), ("status", 404), ("log", 404)]  # not found is not retried
    assert keys(s3) == []


# --- a timed-out job --------------------------------------------------------------------------------------------------


def test_a_timed_out_job_passes_its_reason_through_and_keeps_the_log_so_far(emulator, client, archiver, s3):
    job_id = emulator.add_job(job_id="SlowJob000000000000001", name="slow", states=["IN_PROGRESS"])
    reason = "still IN_PROGRESS at the deadline, 21600s after the monitor started, after 120 polls"

    detail = run(client, archiver, job_id, "TIMED_OUT", reason=reason, polls=120)

    assert (detail["state"], detail["reason"], detail["polls"]) == ("TIMED_OUT", reason, 120)
    assert (detail["iicsState"], detail["endTime"], detail["durationSeconds"]) == ("IN_PROGRESS", None, None)
    assert detail["objects"] == {"total": 1, "successful": 0, "failed": 0}
    key = folder(job_id) + "export.log"
    assert s3.head_object(Bucket=BUCKET, Key=key)["Metadata"]["state"] == "TIMED_OUT"
    assert b"Starting export operation." in s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert_valid_outcome(detail)


def test_the_poll_budget_reason_passes_through(emulator, client, archiver):
    job_id = emulator.add_job(job_id="SlowJob000000000000002", states=["IN_PROGRESS"])
    reason = "the monitor used up its poll budget (MaxPolls) before the job ended"

    detail = run(client, archiver, job_id, "TIMED_OUT", reason=reason)

    assert (detail["state"], detail["reason"]) == ("TIMED_OUT", reason)
    assert_valid_outcome(detail)


# --- bad input --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "error_type"),
    [
        ({}, InvalidInput),
        ({"poll": "SUCCESSFUL"}, InvalidInput),
        (finish_event("../x", "SUCCESSFUL"), InvalidJobId),
        (finish_event(None, "SUCCESSFUL"), InvalidJobId),
        (finish_event(REFERENCE_JOB_ID, None), InvalidInput),
        (finish_event(REFERENCE_JOB_ID, "ERROR"), InvalidInput),
        (finish_event(REFERENCE_JOB_ID, "successful"), InvalidInput),
    ],
)
def test_bad_archive_input_is_raised_before_any_call(emulator, client, archiver, s3, event, error_type):
    with pytest.raises(error_type):
        finish_job(event, source=client, archiver=archiver, now=NOW)

    assert emulator.requests == []
    assert keys(s3) == []


class FakeRecorder:
    def __init__(self) -> None:
        self.recorded: list[tuple[str, float, datetime, str]] = []

    def record(self, job_name: str, seconds: float, now: datetime, *, state: str) -> None:
        self.recorded.append((job_name, seconds, now, state))


def finish_with_history(client, archiver, outcome: str) -> FakeRecorder:
    recorder = FakeRecorder()
    event = finish_event(REFERENCE_JOB_ID, outcome)
    finish_job(event, source=client, archiver=archiver, now=NOW, history=recorder)
    return recorder


def test_a_successful_run_adds_its_iics_duration_to_the_names_history(emulator, client, archiver):
    emulator.add_reference_job(states=["SUCCESSFUL"])

    assert finish_with_history(client, archiver, "SUCCESSFUL").recorded == [("testJob1", 1.0, NOW, "SUCCESSFUL")]


def test_a_failed_run_is_history_too_with_its_state(emulator, client, archiver):
    emulator.add_reference_job(states=["FAILED"])

    assert finish_with_history(client, archiver, "FAILED").recorded == [("testJob1", 1.0, NOW, "FAILED")]


def test_a_run_still_going_at_the_deadline_is_not_history(emulator, client, archiver):
    emulator.add_reference_job(states=["IN_PROGRESS"])

    assert finish_with_history(client, archiver, "TIMED_OUT").recorded == []


# --- the package ------------------------------------------------------------------------------------------------------


def run_with_package(client, archiver, job_id, outcome) -> dict:
    return finish_job(finish_event(job_id, outcome), source=client, archiver=archiver, now=NOW, archive_package=True)


def test_a_successful_jobs_package_is_streamed_beside_its_log(emulator, client, archiver, s3):
    emulator.add_reference_job(states=["SUCCESSFUL"])

    detail = run_with_package(client, archiver, REFERENCE_JOB_ID, "SUCCESSFUL")

    package = detail["package"]
    body = s3.get_object(Bucket=BUCKET, Key=package["key"])["Body"].read()
    archived = {k: package[k] for k in ("bucket", "key", "sizeBytes", "sha256")}  # (issue 16 adds its check)
    assert archived == {
        "bucket": BUCKET,
        "key": folder(REFERENCE_JOB_ID) + "package.zip",
        "sizeBytes": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
    }
    assert package["verified"] is True
    assert "exportMetadata.v2.json" in zipfile.ZipFile(io.BytesIO(body)).namelist()
    assert s3.head_object(Bucket=BUCKET, Key=package["key"])["ContentType"] == "application/zip"
    assert detail["packageError"] is None
    assert_valid_outcome(detail)
    assert ("package", 200) in routes(emulator)


def test_no_package_is_fetched_for_a_failed_job_or_when_turned_off(emulator, client, archiver, s3):
    failed = emulator.add_job(states=["FAILED"])
    emulator.add_reference_job(states=["SUCCESSFUL"])

    assert run_with_package(client, archiver, failed, "FAILED")["package"] is None
    assert run(client, archiver, REFERENCE_JOB_ID, "SUCCESSFUL")["package"] is None  # archive_package off

    assert "package" not in [route for route, _ in routes(emulator)]


def test_a_package_iics_will_not_serve_is_reported_and_the_log_still_archived(emulator, client, archiver, s3):
    emulator.add_reference_job(states=["SUCCESSFUL"])
    emulator.add_fault(Fault(route="package", status=403))

    detail = run_with_package(client, archiver, REFERENCE_JOB_ID, "SUCCESSFUL")

    assert detail["package"] is None
    assert detail["packageError"].startswith("package not fetched from IICS: ")
    assert detail["log"] is not None
    assert_valid_outcome(detail)


def test_a_failed_jobs_log_summary_names_its_error_lines(emulator, client, archiver):
    job_id = emulator.add_job(
        states=["FAILED"],
        objects=[
            {
                "id": "aaaaaaaaaaaaaaaaaaaaa1",
                "name": "m_x",
                "path": "/S",
                "type": "DTEMPLATE",
                "status": {"state": "FAILED", "message": "locked"},
            }
        ],
    )

    summary = run(client, archiver, job_id, "FAILED")["logSummary"]

    assert summary["footer"]["status"] == "FAILED"
    assert summary["errors"]["count"] == 1 and "locked" in summary["errors"]["first"][0]["message"]


def test_a_log_read_twice_after_a_broken_stream_is_summarised_once(emulator, client, archiver, retry_sleeps):
    emulator.add_reference_job(states=["SUCCESSFUL"])
    emulator.add_fault(Fault(route="log", kind="reset"))

    summary = run(client, archiver, REFERENCE_JOB_ID, "SUCCESSFUL")["logSummary"]

    assert retry_sleeps  # the first attempt failed
    assert summary["sizeBytes"] == len(LOG_BYTES) and summary["objects"]["exported"] == 7

"""outcome: the event detail users subscribe to (events/outcome.schema.json)."""

from __future__ import annotations

import pytest

from iics_monitor.archive import ArchivedLog
from iics_monitor.outcome import (
    DETAIL_TYPE,
    MAX_FAILED_OBJECTS,
    SCHEMA_VERSION,
    SOURCE,
    build_outcome,
    failed_objects,
    object_counts,
)
from iics_monitor.status import JobStatus
from iics_monitor_local import reference
from tests.conftest import OUTCOME_SCHEMA, assert_valid_outcome

JOB_ID = "7evG9CokA1whk8ehF3opKM"
ARN = "arn:aws:states:us-east-1:123456789012:execution:IicsExportMonitor:7evG9CokA1whk8ehF3opKM-1"
LOG = ArchivedLog(bucket="logs-bucket", key=f"2026/11/28/{JOB_ID}/export.log", size_bytes=1234, sha256="0f" * 32)
POLL = {"jobId": JOB_ID, "jobName": "from-poll", "iicsState": "IN_PROGRESS", "message": "In Progress.", "polls": 12}


def outcome(state="SUCCESSFUL", status=None, log=LOG, log_error=None, reason=None, poll=POLL) -> dict:
    return build_outcome(
        job_id=JOB_ID,
        state=state,
        poll=poll,
        status=status,
        log=log,
        log_error=log_error,
        reason=reason,
        execution_arn=ARN,
    )


def job_with_objects(failed: int, successful: int, running: int = 0) -> JobStatus:
    def entry(kind: str, n: int) -> dict:
        message = "Object is locked by another user." if kind == "FAILED" else None
        return {
            "id": f"{kind[:4]}{n:018d}",
            "name": f"m_{kind.lower()}_{n}",
            "path": "/Explore/Sales",
            "type": "DTEMPLATE",
            "description": "",
            "status": {"state": kind, "message": message},
        }

    objects = (
        [entry("SUCCESSFUL", n) for n in range(successful)]
        + [entry("FAILED", n) for n in range(failed)]
        + [entry("IN_PROGRESS", n) for n in range(running)]
    )
    return JobStatus.parse(
        {
            "name": "nightly",
            "startTime": "2026-11-28T09:00:00.000Z",
            "endTime": "2026-11-28T09:02:30.500Z",
            "status": {"state": "FAILED", "message": "Export failed."},
            "objects": objects,
        }
    )


def test_the_envelope_and_schema_version_are_fixed():
    assert (SOURCE, DETAIL_TYPE, SCHEMA_VERSION) == ("iics.export.monitor", "IICS Export Job State Change", "1")
    assert OUTCOME_SCHEMA["properties"]["schemaVersion"]["enum"] == [SCHEMA_VERSION]
    assert OUTCOME_SCHEMA["properties"]["failedObjects"]["maxItems"] == MAX_FAILED_OBJECTS


def test_a_successful_job_gives_every_field_from_its_final_status():
    detail = outcome(status=JobStatus.parse(reference.STATUS_SUCCESSFUL_WITH_OBJECTS))

    assert detail == {
        "schemaVersion": "1",
        "schemaMinorVersion": 2,
        "jobId": JOB_ID,
        "jobName": "testJob1",
        "state": "SUCCESSFUL",
        "iicsState": "SUCCESSFUL",
        "message": "Export completed successfully.",
        "reason": None,
        "errorType": None,
        "iicsErrorCode": None,
        "startTime": "2017-10-26T08:15:49.000Z",
        "endTime": "2017-10-26T08:15:50.000Z",
        "durationSeconds": 1.0,
        "objects": {"total": 13, "successful": 13, "failed": 0},
        "failedObjects": [],
        "log": {"bucket": "logs-bucket", "key": LOG.key, "sizeBytes": 1234, "sha256": "0f" * 32},
        "logError": None,
        "logSummary": None,
        "package": None,
        "packageError": None,
        "executionArn": ARN,
        "polls": 12,
    }
    assert_valid_outcome(detail)


def test_failed_objects_are_listed_with_their_messages():
    detail = outcome(state="FAILED", status=job_with_objects(failed=2, successful=3))

    assert detail["objects"] == {"total": 5, "successful": 3, "failed": 2}
    assert detail["failedObjects"] == [
        {
            "id": f"FAIL{n:018d}",
            "name": f"m_failed_{n}",
            "path": "/Explore/Sales",
            "type": "DTEMPLATE",
            "message": "Object is locked by another user.",
        }
        for n in range(2)
    ]
    assert detail["durationSeconds"] == 150.5
    assert_valid_outcome(detail)


def test_failed_objects_are_capped_at_25_but_all_are_counted():
    detail = outcome(state="FAILED", status=job_with_objects(failed=30, successful=4, running=1))

    assert len(detail["failedObjects"]) == MAX_FAILED_OBJECTS == 25
    assert [o["name"] for o in detail["failedObjects"]] == [f"m_failed_{n}" for n in range(25)]
    assert detail["objects"] == {"total": 35, "successful": 4, "failed": 30}
    assert_valid_outcome(detail)


def test_the_failed_object_limit_can_be_lowered():
    assert len(failed_objects(job_with_objects(failed=10, successful=0), limit=3)) == 3


def test_no_status_means_no_objects():
    assert object_counts(None) == {"total": 0, "successful": 0, "failed": 0}
    assert failed_objects(None) == []


def test_without_a_final_status_the_last_poll_fills_in():
    detail = outcome(
        state="TIMED_OUT",
        status=None,
        log=None,
        log_error="log not fetched from IICS: 502 Bad Gateway | HTTP 502",
        reason="still IN_PROGRESS at the deadline",
    )

    assert (detail["jobName"], detail["iicsState"], detail["message"]) == ("from-poll", "IN_PROGRESS", "In Progress.")
    assert (detail["startTime"], detail["endTime"], detail["durationSeconds"]) == (None, None, None)
    assert detail["objects"] == {"total": 0, "successful": 0, "failed": 0}
    assert (detail["log"], detail["logError"]) == (None, "log not fetched from IICS: 502 Bad Gateway | HTTP 502")
    assert detail["reason"] == "still IN_PROGRESS at the deadline"
    assert_valid_outcome(detail)


def test_a_status_without_a_name_takes_the_polls_name():
    status = JobStatus.parse({"status": {"state": "SUCCESSFUL"}})

    assert outcome(status=status)["jobName"] == "from-poll"


def test_a_poll_without_a_count_reports_zero_polls():
    assert outcome(poll={"jobId": JOB_ID})["polls"] == 0


@pytest.mark.parametrize("state", ["SUCCESSFUL", "FAILED", "TIMED_OUT"])
def test_every_outcome_state_validates(state):
    assert_valid_outcome(outcome(state=state, status=job_with_objects(failed=1, successful=1)))


def test_an_end_time_before_the_start_time_still_gives_a_valid_outcome():
    status = JobStatus.parse(
        {
            "status": {"state": "SUCCESSFUL"},
            "startTime": "2026-11-28T09:00:10.000Z",
            "endTime": "2026-11-28T09:00:00.000Z",
        }
    )

    assert_valid_outcome(outcome(status=status))

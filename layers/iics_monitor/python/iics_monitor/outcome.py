"""The outcome event: the contract users subscribe to (events/outcome.schema.json).

Envelope: source ``iics.export.monitor``, detail-type ``IICS Export Job State Change``. The state
machine emits it; ERROR outcomes are built in the state machine itself, with the same fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from iics_monitor.archive import ArchivedLog
from iics_monitor.status import JobState, JobStatus

SCHEMA_VERSION = "1"
SCHEMA_MINOR_VERSION = 2  # fields added without breaking version-1 consumers (see the schema's description)
SOURCE = "iics.export.monitor"
DETAIL_TYPE = "IICS Export Job State Change"
OUTCOMES = ("SUCCESSFUL", "FAILED", "TIMED_OUT", "ERROR")
MAX_FAILED_OBJECTS = 25


def object_counts(status: JobStatus | None) -> dict[str, int]:
    objects = status.objects if status else ()
    return {
        "total": len(objects),
        "successful": sum(o.state is JobState.SUCCESSFUL for o in objects),
        "failed": sum(o.state is JobState.FAILED for o in objects),
    }


def failed_objects(status: JobStatus | None, limit: int = MAX_FAILED_OBJECTS) -> list[dict[str, Any]]:
    objects = status.objects if status else ()
    return [o.to_dict() for o in objects if o.state is JobState.FAILED][:limit]


def build_outcome(
    *,
    job_id: str,
    state: str,
    poll: Mapping[str, Any],
    status: JobStatus | None,
    log: ArchivedLog | None,
    log_error: str | None,
    reason: str | None,
    execution_arn: str | None,
    package: ArchivedLog | None = None,
    package_error: str | None = None,
    log_summary: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The event detail for a job that reached SUCCESSFUL, FAILED or TIMED_OUT."""
    return {
        "schemaVersion": SCHEMA_VERSION,
        "schemaMinorVersion": SCHEMA_MINOR_VERSION,
        "jobId": job_id,
        "jobName": (status and status.name) or poll.get("jobName"),
        "state": state,
        "iicsState": (status and status.raw_state) or poll.get("iicsState"),
        "message": (status and status.message) or poll.get("message"),
        "reason": reason,
        "errorType": None,
        "iicsErrorCode": None,
        "startTime": status.start_time if status else None,
        "endTime": status.end_time if status else None,
        "durationSeconds": status.duration_seconds if status else None,
        "objects": object_counts(status),
        "failedObjects": failed_objects(status),
        "log": log.to_dict() if log else None,
        "logError": log_error,
        "logSummary": log_summary,
        "package": package.to_dict() if package else None,
        "packageError": package_error,
        "executionArn": execution_arn,
        "polls": poll.get("polls", 0),
    }

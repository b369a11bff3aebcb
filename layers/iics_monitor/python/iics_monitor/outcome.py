"""The outcome event: the contract users subscribe to (events/outcome.schema.json).

Envelope: source ``iics.export.monitor``, detail-type ``IICS Export Job State Change`` for an export
and ``IICS Import Job State Change`` for an import. One detail shape for both: an import, or a job of a
further org (docs/orgs.md), adds ``kind``, ``org`` and ``sourceOrgId`` (schemaMinorVersion 3). An
export of the stack's own org has none of them, so what its consumers read is what they always read.
The state machine emits it; ERROR outcomes are built in the state machine itself, with the same fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from iics_monitor.archive import ArchivedLog
from iics_monitor.status import REASON_LIMIT, JobState, JobStatus, text
from iics_monitor.validation import EXPORT, IMPORT

SCHEMA_VERSION = "1"
SCHEMA_MINOR_VERSION = 2  # fields added without breaking version-1 consumers (see the schema's description)
JOB_FIELDS_MINOR_VERSION = 3  # kind, org and sourceOrgId: an import's outcome, or a further org's
SOURCE = "iics.export.monitor"
DETAIL_TYPE = "IICS Export Job State Change"
IMPORT_DETAIL_TYPE = "IICS Import Job State Change"
DETAIL_TYPES = {EXPORT: DETAIL_TYPE, IMPORT: IMPORT_DETAIL_TYPE}
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


def versioned_fields(kind: str, org: str | None, source_org_id: str | None = None) -> dict[str, Any]:
    """The outcome's first fields: its schema version, and what job it is about when that is not an
    export of the stack's own org."""
    if kind == EXPORT and org is None:
        return {"schemaVersion": SCHEMA_VERSION, "schemaMinorVersion": SCHEMA_MINOR_VERSION}
    return {
        "schemaVersion": SCHEMA_VERSION,
        "schemaMinorVersion": JOB_FIELDS_MINOR_VERSION,
        "kind": kind,
        "org": org,
        "sourceOrgId": source_org_id,
    }


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
    package_check: Mapping[str, Any] | None = None,
    log_summary: dict[str, Any] | None = None,
    kind: str = EXPORT,
    org: str | None = None,
) -> dict[str, Any]:
    """The event detail for a job that reached SUCCESSFUL, FAILED or TIMED_OUT. ``package_check``: the
    package's ``verified``, ``verification`` and ``contents`` (``iics_monitor.package.check``)."""
    fields = versioned_fields(kind, org, status.source_org_id if status and kind == IMPORT else None)
    if package and package_check:  # the package's check is a minor version 3 field too
        fields["schemaMinorVersion"] = JOB_FIELDS_MINOR_VERSION
    return fields | {
        "jobId": job_id,
        "jobName": (status and status.name) or poll.get("jobName"),
        "state": state,
        "iicsState": (status and status.raw_state) or poll.get("iicsState"),
        "message": (status and status.message) or poll.get("message"),
        "reason": text(reason, REASON_LIMIT),
        "warning": text(poll.get("warning"), REASON_LIMIT),  # the check's: only an end it saw carries one
        "errorType": None,
        "iicsErrorCode": None,
        "startTime": status.start_time if status else None,
        "endTime": status.end_time if status else None,
        "durationSeconds": status.duration_seconds if status else None,
        "objects": object_counts(status),
        "failedObjects": failed_objects(status),
        "log": log.to_dict() if log else None,
        "logError": text(log_error, REASON_LIMIT),
        "logSummary": log_summary,
        "package": package.to_dict() | dict(package_check or {}) if package else None,
        "packageError": text(package_error, REASON_LIMIT),
        "executionArn": execution_arn,
        "polls": poll.get("polls", 0),
    }

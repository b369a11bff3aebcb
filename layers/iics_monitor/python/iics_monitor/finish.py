"""What happens once a job is terminal (or timed out): the logic behind ``functions/archive_log``.

Fetch the final status with per-object states, archive the log and the status to S3, and return
the outcome event detail. A log that cannot be fetched or stored never fails the run: the outcome
carries ``logError`` instead, so the event still goes out.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit

from iics_monitor.archive import ArchivedLog, LogArchiver, with_retries
from iics_monitor.check import StatusSource
from iics_monitor.client import LogStream
from iics_monitor.errors import IicsError, InvalidInput, StoreUnavailable
from iics_monitor.observability import logger, metrics
from iics_monitor.outcome import build_outcome
from iics_monitor.status import JobStatus
from iics_monitor.validation import parse_job_id

_FINAL_STATES = ("SUCCESSFUL", "FAILED", "TIMED_OUT")


class JobSource(StatusSource, Protocol):
    def open_log(self, job_id: str) -> LogStream: ...


def finish_job(event: Mapping[str, Any], *, source: JobSource, archiver: LogArchiver, now: datetime) -> dict[str, Any]:
    poll = event.get("poll")
    if not isinstance(poll, Mapping):
        raise InvalidInput("archive input has no poll result")
    job_id = parse_job_id(poll.get("jobId"))
    state = poll.get("outcome")
    if state not in _FINAL_STATES:
        raise InvalidInput(f"archive input outcome must be one of {', '.join(_FINAL_STATES)}")
    logger.set_correlation_id(job_id)

    reason = poll.get("reason")
    status = None
    try:
        body = with_retries(lambda: source.get_status(job_id, expand_objects=True))
        status = JobStatus.parse(body)
        with_retries(lambda: archiver.put_status(job_id, body, now))
    except IicsError as error:
        reason = "; ".join(filter(None, [reason, f"final status unavailable: {error}"]))
    except StoreUnavailable as error:
        logger.warning("status.json not stored", extra={"error": str(error)})

    log, log_error = _archive_log(job_id, state, source, archiver, now)
    metrics.add_metric(name=f"Outcome{state.title().replace('_', '')}", unit=MetricUnit.Count, value=1)
    return build_outcome(
        job_id=job_id,
        state=state,
        poll=poll,
        status=status,
        log=log,
        log_error=log_error,
        reason=reason,
        execution_arn=event.get("executionArn"),
    )


def _archive_log(
    job_id: str, state: str, source: JobSource, archiver: LogArchiver, now: datetime
) -> tuple[ArchivedLog | None, str | None]:
    def upload() -> ArchivedLog:
        with source.open_log(job_id) as stream:
            return archiver.put_log(job_id, state, stream, now)

    try:
        log = with_retries(upload)
    except IicsError as error:
        metrics.add_metric(name="LogArchiveFailures", unit=MetricUnit.Count, value=1)
        return None, f"log not fetched from IICS: {error}"
    except StoreUnavailable as error:
        metrics.add_metric(name="LogArchiveFailures", unit=MetricUnit.Count, value=1)
        return None, f"log not stored: {error}"
    metrics.add_metric(name="LogBytes", unit=MetricUnit.Bytes, value=log.size_bytes)
    logger.info("Log archived", extra={"key": log.key, "sizeBytes": log.size_bytes})
    return log, None

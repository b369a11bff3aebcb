"""What happens once a job (an export or an import) is terminal (or timed out): the logic behind
``functions/archive_log``.

Fetch the final status with per-object states, archive the log and the status to S3, and return
the outcome event detail. The end the check saw stands: the outcome's state, raw IICS state,
message and warning are the check's, and a final status that says running again only adds its
objects (and a note in ``reason``). A log that cannot be fetched or stored never fails the run: the outcome
carries ``logError`` instead, so the event still goes out.

The step ends by ``until`` (the ArchiveLog function's time, less what it keeps back to report): no
retry waits past it, and a log or package still arriving then is stored as far as it came, marked
``truncated``. The outcome's state stays IICS's state.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit

from iics_monitor.archive import ArchivedLog, LogArchiver, with_retries
from iics_monitor.check import StatusSource, get_status
from iics_monitor.client import LogStream
from iics_monitor.errors import IicsError, InvalidInput, StoreUnavailable
from iics_monitor.history import history_key
from iics_monitor.loginsight import LogInsight
from iics_monitor.observability import logger, metrics
from iics_monitor.outcome import build_outcome
from iics_monitor.package import LocalCopy, check
from iics_monitor.status import JobState, JobStatus, parse_time
from iics_monitor.validation import EXPORT, parse_job_id, parse_kind, parse_org

_FINAL_STATES = ("SUCCESSFUL", "FAILED", "TIMED_OUT")
# One custom metric per final state (ERROR outcomes are counted by AWS/SQS, see docs/observability.md).
OUTCOME_METRICS = {state: "Outcome" + state.title().replace("_", "") for state in _FINAL_STATES}


class JobSource(StatusSource, Protocol):
    def open_log(self, job_id: str, *, kind: str = EXPORT) -> LogStream: ...

    def open_package(self, job_id: str) -> LogStream: ...


class DurationRecorder(Protocol):
    def record(self, job_name: str, seconds: float, now: datetime, *, state: str) -> None: ...


@dataclass(frozen=True)
class StepTime:
    """When the archive step must be done by: ``until`` on ``clock`` (monotonic seconds)."""

    until: float = math.inf
    clock: Callable[[], float] = time.monotonic

    def seconds_left(self) -> float:
        return self.until - self.clock()


def finish_job(
    event: Mapping[str, Any],
    *,
    source: JobSource | None = None,
    archiver: LogArchiver,
    now: datetime,
    history: DurationRecorder | None = None,
    archive_package: bool = False,
    step: StepTime = StepTime(),
    source_for: Callable[[str | None], JobSource] | None = None,
    orgs: Collection[str] = (),
) -> dict[str, Any]:
    """``event``: ``{"poll", "executionArn"}``. The poll record says what job it is (``kind``, ``org``;
    without them, an export of the stack's own org). ``source_for(org)`` gives the org's IICS client;
    else ``source`` serves all."""
    poll = event.get("poll")
    if not isinstance(poll, Mapping):
        raise InvalidInput("archive input has no poll result")
    job_id = parse_job_id(poll.get("jobId"))
    state = poll.get("outcome")
    if state not in _FINAL_STATES:
        raise InvalidInput(f"archive input outcome must be one of {', '.join(_FINAL_STATES)}")
    logger.set_correlation_id(job_id)
    kind, org = parse_kind(poll.get("kind")), parse_org(poll.get("org"), orgs)
    if source_for is not None:
        source = source_for(org)

    reason = poll.get("reason")
    status = None
    try:
        body = with_retries(
            lambda: get_status(source, job_id, kind, expand_objects=True), seconds_left=step.seconds_left
        )
        status = JobStatus.parse(body)
        with_retries(lambda: archiver.put_status(job_id, body, now, org), seconds_left=step.seconds_left)
    except IicsError as error:
        reason = "; ".join(filter(None, [reason, f"final status unavailable: {error}"]))
    except StoreUnavailable as error:
        logger.warning("status.json not stored", extra={"error": str(error)})
    status, note = _as_the_check_saw_it(status, poll, state)
    reason = "; ".join(filter(None, [reason, note])) or None

    _detection_delay(status, now)
    # Every run IICS ended, failed ones too (with their state), so the history is what really happens.
    if history is not None and status and status.state.terminal and status.name and status.duration_seconds:
        key = history_key(kind, org, status.name)
        history.record(key, status.duration_seconds, now, state=status.state.value)
    log, log_error, log_summary, store_down = _archive_log(job_id, state, source, archiver, now, step, kind, org)
    package, package_check, package_error = None, None, None
    # an import has no package to serve; a promotion's export always keeps its package (it is what gets imported)
    if (archive_package or poll.get("promotion")) and state == "SUCCESSFUL" and kind == EXPORT:
        if store_down:  # S3 just refused the log six times: the event should not wait for six more
            package_error = "package not stored: S3 did not store the log either"
        else:
            package, package_check, package_error = _archive_package(job_id, source, archiver, now, step, org)
    metrics.add_metric(name=OUTCOME_METRICS[state], unit=MetricUnit.Count, value=1, minimal=True)
    return build_outcome(
        job_id=job_id,
        state=state,
        poll=poll,
        status=status,
        log=log,
        log_error=log_error,
        reason=reason,
        execution_arn=event.get("executionArn"),
        package=package,
        package_error=package_error,
        package_check=package_check,
        log_summary=log_summary,
        kind=kind,
        org=org,
    )


def _as_the_check_saw_it(
    status: JobStatus | None, poll: Mapping[str, Any], state: str
) -> tuple[JobStatus | None, str | None]:
    """The final status with the end the check saw kept (state, raw state, message, end time), and a
    note when IICS answered the re-read as if the job were running again."""
    if status is None or not poll.get("terminal") or state not in (JobState.SUCCESSFUL, JobState.FAILED):
        return status, None
    note = None
    if not status.state.terminal:
        logger.warning("Final status says running after the check saw the end", extra={"iicsState": status.raw_state})
        note = f"IICS answered {status.raw_state} after the check saw {poll.get('iicsState')}; the check's end stands"
    kept = replace(
        status,
        raw_state=poll.get("iicsState") or status.raw_state,
        state=JobState(state),
        message=poll.get("message") or status.message,
        end_time=status.end_time or poll.get("jobEndTime"),
    )
    return kept, note


def _detection_delay(status: JobStatus | None, now: datetime) -> None:
    """DetectionDelay: seconds from IICS's endTime to this archive step (how late the monitor noticed)."""
    ended = parse_time(status.end_time) if status else None
    if ended is not None and ended <= now:
        metrics.add_metric(name="DetectionDelay", unit=MetricUnit.Seconds, value=(now - ended).total_seconds())


def _archive_log(
    job_id: str,
    state: str,
    source: JobSource,
    archiver: LogArchiver,
    now: datetime,
    step: StepTime,
    kind: str = EXPORT,
    org: str | None = None,
) -> tuple[ArchivedLog | None, str | None, dict[str, Any] | None, bool]:
    """The log to S3, read for its summary on the way (each attempt starts a fresh reading).
    The last value says whether S3 was the reason the log was not stored."""
    insight = LogInsight()

    def upload() -> ArchivedLog:
        nonlocal insight
        insight = LogInsight()
        with open_log(source, job_id, kind) as stream:
            return archiver.put_log(
                job_id, state, stream, now, observer=insight.feed, until=step.until, kind=kind, org=org
            )

    log, error = _stream_to_s3("log", upload, step)
    if error is not None:
        return None, _failure_text("log", error), None, isinstance(error, StoreUnavailable)
    return log, None, insight.finish(), False


def open_log(source: JobSource, job_id: str, kind: str) -> LogStream:
    """The job's log from ``source``: an export's as always asked, an import's from the import resource."""
    return source.open_log(job_id) if kind == EXPORT else source.open_log(job_id, kind=kind)


def _archive_package(
    job_id: str, source: JobSource, archiver: LogArchiver, now: datetime, step: StepTime, org: str | None
) -> tuple[ArchivedLog | None, dict[str, Any] | None, str | None]:
    """The export package zip beside the log, with its check (``iics_monitor.package``) from a copy
    teed to /tmp on the way, removed at the end whatever happens. Like the log, a failure is reported,
    never fatal."""
    copy = LocalCopy()

    def upload() -> ArchivedLog:
        copy.restart()  # each attempt writes the copy afresh
        with source.open_package(job_id) as stream:
            return archiver.put_package(job_id, stream, now, until=step.until, org=org, observer=copy.write)

    try:
        package, error = _stream_to_s3("package", upload, step)
        if error is not None:
            return None, None, _failure_text("package", error)
        return package, check(copy, package.truncated, until=step.until), None
    finally:
        copy.discard()


def _stream_to_s3(
    what: str, upload: Callable[[], ArchivedLog], step: StepTime
) -> tuple[ArchivedLog | None, IicsError | StoreUnavailable | None]:
    """``upload()`` (the log or the package) with the archive step's retries, and its metrics."""
    log = what == "log"
    try:
        archived = with_retries(upload, seconds_left=step.seconds_left)
    except (IicsError, StoreUnavailable) as error:
        metrics.add_metric(
            name="LogArchiveFailures" if log else "PackageArchiveFailures", unit=MetricUnit.Count, value=1
        )
        return None, error
    metrics.add_metric(name="LogBytes" if log else "PackageBytes", unit=MetricUnit.Bytes, value=archived.size_bytes)
    logger.info(f"{what.capitalize()} archived", extra={"key": archived.key, "sizeBytes": archived.size_bytes})
    return archived, None


def _failure_text(what: str, error: IicsError | StoreUnavailable) -> str:
    """The outcome's ``logError`` / ``packageError``."""
    return f"{what} not {'fetched from IICS' if isinstance(error, IicsError) else 'stored'}: {error}"

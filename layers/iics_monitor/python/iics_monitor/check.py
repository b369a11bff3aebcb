"""One status check of an export job: the logic behind ``functions/check_status``.

The state machine passes back the previous result as ``poll``; the check returns the next one.
A transient IICS failure (throttling, 5xx, network) is not fatal: the loop waits and tries again,
until ``MAX_CONSECUTIVE_TRANSIENT_ERRORS`` in a row or the deadline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit

from iics_monitor.config import CheckConfig
from iics_monitor.errors import IicsError, InvalidInput, MonitorError, Throttled
from iics_monitor.observability import logger, metrics
from iics_monitor.policy import next_wait_seconds
from iics_monitor.status import JobStatus
from iics_monitor.validation import ExportRequest, parse_job_id, parse_request

MAX_CONSECUTIVE_TRANSIENT_ERRORS = 10


class StatusSource(Protocol):
    def get_status(self, job_id: str, *, expand_objects: bool = False) -> dict[str, Any]: ...


@dataclass(frozen=True)
class PreviousPoll:
    """The fields the check reads back from its own previous result."""

    polls: int
    transient_errors: int
    job_name: str | None
    iics_state: str | None
    message: str | None

    @classmethod
    def parse(cls, raw: Any) -> PreviousPoll:
        raw = raw if isinstance(raw, Mapping) else {}
        counts = [raw.get("polls", 0), raw.get("transientErrors", 0)]
        if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in counts):
            raise InvalidInput("poll.polls and poll.transientErrors must be whole numbers")
        return cls(
            polls=counts[0],
            transient_errors=counts[1],
            job_name=raw.get("jobName"),
            iics_state=raw.get("iicsState"),
            message=raw.get("message"),
        )


def parse_started_at(value: Any) -> datetime:
    """The execution's start time ($$.Execution.StartTime), which anchors the deadline."""
    try:
        started = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput("startedAt must be an ISO-8601 timestamp") from None
    if started.tzinfo is None:
        raise InvalidInput("startedAt must carry a time zone")
    return started


def check_job(event: Mapping[str, Any], *, source: StatusSource, config: CheckConfig, now: datetime) -> dict:
    """Poll the job once and say what the state machine should do next."""
    request = parse_request(event.get("request"), config.defaults)
    logger.set_correlation_id(request.job_id)
    previous = PreviousPoll.parse(event.get("poll"))
    deadline = parse_started_at(event.get("startedAt")) + timedelta(seconds=request.settings.timeout_seconds)
    polls = previous.polls + 1
    metrics.add_metric(name="Polls", unit=MetricUnit.Count, value=1)
    try:
        status = JobStatus.parse(source.get_status(request.job_id))
    except IicsError as error:
        if not error.transient or previous.transient_errors + 1 >= MAX_CONSECUTIVE_TRANSIENT_ERRORS:
            raise
        return _after_transient_error(request, previous, polls, deadline, now, error, config)

    result = _result(request, polls, deadline, config, status=status, transient_errors=0)
    if status.state.terminal:
        return result | {"terminal": True, "outcome": status.state.value, "nextWaitSeconds": 0}
    if now >= deadline:
        return result | {
            "outcome": "TIMED_OUT",
            "reason": f"still {status.raw_state} at the deadline, {request.settings.timeout_seconds}s "
            f"after the monitor started, after {polls} polls",
            "nextWaitSeconds": 0,
        }
    remaining = (deadline - now).total_seconds()
    return result | {"nextWaitSeconds": next_wait_seconds(polls, request.settings, remaining)}


def check_or_report(event: Mapping[str, Any], *, source: StatusSource, config: CheckConfig, now: datetime) -> dict:
    """``check_job``, with a monitor error turned into an ERROR decision for the state machine to
    announce. Unlike an error raised to Step Functions, the decision carries the job id whenever the
    request named a valid one."""
    try:
        return check_job(event, source=source, config=config, now=now)
    except MonitorError as error:
        metrics.add_metric(name="CheckErrors", unit=MetricUnit.Count, value=1)
        logger.warning("The check ends the watch with an error", extra={"errorType": type(error).__name__})
        return _error_result(event, error, config)


def _error_result(event: Mapping[str, Any], error: MonitorError, config: CheckConfig) -> dict:
    request = event.get("request") if isinstance(event.get("request"), Mapping) else {}
    poll = event.get("poll") if isinstance(event.get("poll"), Mapping) else {}
    try:
        job_id = parse_job_id(request.get("jobId"))
    except InvalidInput:
        job_id = None
    polls = poll.get("polls") if isinstance(poll.get("polls"), int) and not isinstance(poll.get("polls"), bool) else 0
    return {
        "jobId": job_id,
        "jobName": poll.get("jobName") if job_id else None,
        "state": "RUNNING",
        "iicsState": poll.get("iicsState"),
        "message": poll.get("message"),
        "terminal": False,
        "outcome": "ERROR",
        "reason": str(error),
        "errorType": type(error).__name__,
        "nextWaitSeconds": 0,
        "polls": polls,
        "maxPolls": config.max_polls,
    }


def _after_transient_error(
    request: ExportRequest,
    previous: PreviousPoll,
    polls: int,
    deadline: datetime,
    now: datetime,
    error: IicsError,
    config: CheckConfig,
) -> dict:
    throttled = isinstance(error, Throttled)
    metrics.add_metric(name="IicsThrottled" if throttled else "IicsErrors", unit=MetricUnit.Count, value=1)
    logger.warning("IICS status call failed; will poll again", extra={"error": type(error).__name__})
    result = _result(
        request, polls, deadline, config, previous=previous, transient_errors=previous.transient_errors + 1
    )
    result["lastError"] = {"type": type(error).__name__, "message": str(error)}
    if now >= deadline:
        return result | {"outcome": "TIMED_OUT", "reason": f"IICS unavailable at the deadline: {error}"}
    retry_after = error.retry_after if throttled else None
    remaining = (deadline - now).total_seconds()
    return result | {"nextWaitSeconds": next_wait_seconds(polls, request.settings, remaining, retry_after)}


def _result(
    request: ExportRequest,
    polls: int,
    deadline: datetime,
    config: CheckConfig,
    *,
    transient_errors: int,
    status: JobStatus | None = None,
    previous: PreviousPoll | None = None,
) -> dict:
    """The compact result every path shares; callers add the decision fields."""
    if status is not None:
        name, raw_state, state, message = status.name, status.raw_state, status.state.value, status.message
    else:  # no fresh answer: repeat what the last good poll saw
        name, raw_state, state, message = previous.job_name, previous.iics_state, "RUNNING", previous.message
    return {
        "jobId": request.job_id,
        "jobName": name or request.name,
        "state": state,
        "iicsState": raw_state,
        "message": message,
        "terminal": False,
        "outcome": None,
        "reason": None,
        "nextWaitSeconds": 0,
        "polls": polls,
        "maxPolls": config.max_polls,
        "deadline": deadline.isoformat(),
        "transientErrors": transient_errors,
        "lastError": None,
        "settings": request.settings.to_dict(),
    }

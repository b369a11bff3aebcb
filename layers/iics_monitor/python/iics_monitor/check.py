"""Status checks of an IICS job (an export or an import): the logic behind ``functions/check_status``.

The state machine passes back the previous result as ``poll``; the check returns the next one.
While the waits are short (``CheckConfig.inline_wait_seconds``) one invocation sleeps and checks
again itself, keeping back time for one more check; a longer wait goes back to the state machine.
A transient IICS failure (5xx, network) is not fatal: the loop waits and tries again, until
``MAX_CONSECUTIVE_TRANSIENT_ERRORS`` in a row or the deadline. Throttling waits as asked and never
ends a watch by itself; only the deadline does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit

from iics_monitor.config import CheckConfig
from iics_monitor.errors import IicsError, InvalidInput, MonitorError, Throttled
from iics_monitor.history import history_key
from iics_monitor.observability import logger, metrics
from iics_monitor.policy import next_wait_seconds, sleeps_inline
from iics_monitor.status import REASON_LIMIT, JobStatus, parse_time, text
from iics_monitor.validation import (
    EXPORT,
    ExportRequest,
    job_fields,
    job_fields_as_far_as_valid,
    parse_job_id,
    parse_request,
    parse_track,
)

MAX_CONSECUTIVE_TRANSIENT_ERRORS = 10


class StatusSource(Protocol):
    def get_status(self, job_id: str, *, expand_objects: bool = False, kind: str = EXPORT) -> dict[str, Any]: ...


def get_status(source: StatusSource, job_id: str, kind: str, *, expand_objects: bool = False) -> dict[str, Any]:
    """The job's status from ``source``: an export's as always asked, an import's from the import resource."""
    if kind == EXPORT:
        return source.get_status(job_id, expand_objects=expand_objects)
    return source.get_status(job_id, expand_objects=expand_objects, kind=kind)


# The IICS client for the org a request names (None: the stack's own); the handlers pass one.
SourceFor = Callable[[str | None], Any]


class ExpectedDurations(Protocol):
    def expected_seconds(self, job_name: str) -> float | None: ...


@dataclass(frozen=True)
class Invocation:
    """What checking again inside one invocation needs: the time, a sleep, and the time left."""

    clock: Callable[[], datetime]
    sleep: Callable[[float], None]
    seconds_left: Callable[[], float]


@dataclass(frozen=True)
class PreviousPoll:
    """The fields the check reads back from its own previous result."""

    polls: int
    transient_errors: int
    job_name: str | None
    iics_state: str | None
    message: str | None
    job_start_time: str | None = None
    expected_seconds: float | None = None
    history_checked: bool = False

    @classmethod
    def parse(cls, raw: Any) -> PreviousPoll:
        raw = raw if isinstance(raw, Mapping) else {}
        counts = [raw.get("polls", 0), raw.get("transientErrors", 0)]
        if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in counts):
            raise InvalidInput("poll.polls and poll.transientErrors must be whole numbers")
        expected = raw.get("expectedSeconds")
        if expected is not None and (isinstance(expected, bool) or not isinstance(expected, int | float)):
            raise InvalidInput("poll.expectedSeconds must be a number")
        return cls(
            polls=counts[0],
            transient_errors=counts[1],
            job_name=raw.get("jobName"),
            iics_state=raw.get("iicsState"),
            message=raw.get("message"),
            job_start_time=raw.get("jobStartTime") if isinstance(raw.get("jobStartTime"), str) else None,
            expected_seconds=expected if expected is None or expected > 0 else None,
            history_checked=raw.get("historyChecked") is True,
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


def check_job(
    event: Mapping[str, Any],
    *,
    source: StatusSource | None = None,
    config: CheckConfig,
    now: datetime,
    invocation: Invocation | None = None,
    history: ExpectedDurations | None = None,
    source_for: SourceFor | None = None,
) -> dict:
    """Check the job (more than once if ``invocation`` allows) and say what the state machine does next.
    ``source_for(org)`` gives the IICS client of the org the request names; else ``source`` serves all."""
    request = parse_request(event.get("request"), config.defaults, config.orgs, internal=True)
    logger.set_correlation_id(request.job_id)
    if source_for is not None:
        source = source_for(request.org)
    previous = PreviousPoll.parse(event.get("poll"))
    started_at = parse_started_at(event.get("startedAt"))
    deadline = started_at + timedelta(seconds=request.settings.timeout_seconds)
    polls, expected, history_checked = previous.polls, previous.expected_seconds, previous.history_checked
    while True:
        polls += 1
        metrics.add_metric(name="Polls", unit=MetricUnit.Count, value=1)
        try:
            status = JobStatus.parse(get_status(source, request.job_id, request.kind))
        except IicsError as error:
            # Throttling never ends a watch (the deadline still does); other transient errors, 10 in a row do.
            counted = not isinstance(error, Throttled)
            if not error.transient or (counted and previous.transient_errors + 1 >= MAX_CONSECUTIVE_TRANSIENT_ERRORS):
                raise
            return _after_transient_error(request, previous, polls, started_at, deadline, now, error, config)

        result = _result(request, polls, deadline, config, status=status, transient_errors=0)
        if status.state.terminal:
            return result | {"terminal": True, "outcome": status.state.value, "reason": status.note}
        if now >= deadline:
            return result | {
                "outcome": "TIMED_OUT",
                "reason": f"still {status.raw_state} at the deadline, {request.settings.timeout_seconds}s "
                f"after the monitor started, after {polls} polls",
                "nextWaitSeconds": 0,
            }
        if not history_checked and history is not None and status.name:
            key = history_key(request.kind, request.org, status.name)
            expected, history_checked = history.expected_seconds(key), True
        age = job_age_seconds(status.start_time, started_at, now)
        remaining = (deadline - now).total_seconds()
        wait = next_wait_seconds(age, request.settings, remaining, expected_seconds=expected)
        result |= {"nextWaitSeconds": wait, "expectedSeconds": expected, "historyChecked": history_checked}
        if invocation is None or polls >= config.max_polls or not _sleeps_inline(wait, config, invocation):
            return result
        invocation.sleep(wait)
        now = invocation.clock()
        previous = PreviousPoll.parse(result)  # a failure on the next check reports what this one saw


def _sleeps_inline(wait: int, config: CheckConfig, invocation: Invocation) -> bool:
    left = invocation.seconds_left()
    return sleeps_inline(wait, config.inline_wait_seconds, left, config.inline_reserve_seconds)


def job_age_seconds(job_start_time: str | None, started_at: datetime, now: datetime) -> float:
    """Seconds since IICS started the job; since the monitor started when IICS's time is unusable."""
    job_started = parse_time(job_start_time)
    if job_started is None or job_started > now or job_started < started_at - timedelta(days=30):
        job_started = started_at
    return max(0.0, (now - job_started).total_seconds())


def check_or_report(
    event: Mapping[str, Any],
    *,
    source: StatusSource | None = None,
    config: CheckConfig,
    now: datetime,
    invocation: Invocation | None = None,
    history: ExpectedDurations | None = None,
    source_for: SourceFor | None = None,
) -> dict:
    """``check_job``, with a monitor error turned into an ERROR decision for the state machine to
    announce. Unlike an error raised to Step Functions, the decision carries the job id whenever the
    request named a valid one."""
    try:
        return check_job(
            event,
            source=source,
            config=config,
            now=now,
            invocation=invocation,
            history=history,
            source_for=source_for,
        )
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
    return _job_fields_of(request) | {
        "jobId": job_id,
        "jobName": poll.get("jobName") if job_id else None,
        "state": "RUNNING",
        "iicsState": poll.get("iicsState"),
        "message": poll.get("message"),
        "terminal": False,
        "outcome": "ERROR",
        "reason": text(str(error), REASON_LIMIT),
        "errorType": type(error).__name__,
        "iicsErrorCode": error.code if isinstance(error, IicsError) else None,
        "nextWaitSeconds": 0,
        "polls": polls,
        "maxPolls": config.max_polls,
    }


def _job_fields_of(request: Mapping[str, Any]) -> dict[str, Any]:
    """An unparsable request's kind and org, as far as they are valid: its ERROR outcome still says
    what job it was (an import, a further org's)."""
    fields = job_fields_as_far_as_valid(request)
    try:  # a promotion's job still leads to its promotion outcome
        track = parse_track(request.get("promotion"))
    except InvalidInput:
        track = None
    if track is None:
        return fields
    return {"kind": fields.get("kind", EXPORT), "org": fields.get("org"), "promotion": track}


def _after_transient_error(
    request: ExportRequest,
    previous: PreviousPoll,
    polls: int,
    started_at: datetime,
    deadline: datetime,
    now: datetime,
    error: IicsError,
    config: CheckConfig,
) -> dict:
    throttled = isinstance(error, Throttled)
    metrics.add_metric(name="IicsThrottled" if throttled else "IicsErrors", unit=MetricUnit.Count, value=1)
    logger.warning("IICS status call failed; will poll again", extra={"error": type(error).__name__})
    # Throttling is counted apart: it is IICS asking for patience, not failing.
    errors = previous.transient_errors + (0 if throttled else 1)
    result = _result(request, polls, deadline, config, previous=previous, transient_errors=errors)
    result["lastError"] = {"type": type(error).__name__, "message": text(str(error), REASON_LIMIT)}
    if now >= deadline:
        reason = text(f"IICS unavailable at the deadline: {error}", REASON_LIMIT)
        return result | {"outcome": "TIMED_OUT", "reason": reason}
    retry_after = error.retry_after if throttled else None
    remaining = (deadline - now).total_seconds()
    age = job_age_seconds(previous.job_start_time, started_at, now)
    wait = next_wait_seconds(
        age,
        request.settings,
        remaining,
        retry_after=retry_after,
        expected_seconds=previous.expected_seconds,
        jitter=_spread(request.job_id, polls),
    )
    return result | {"nextWaitSeconds": wait}


def _spread(job_id: str, polls: int) -> float:
    """A repeatable 0-1 share per job and poll: throttled executions come back spread out, not together."""
    digest = hashlib.blake2b(f"{job_id}:{polls}".encode(), digest_size=4).digest()
    return int.from_bytes(digest) / 2**32


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
        job_start_time, job_end_time, warning = status.start_time, status.end_time, status.warning
    else:  # no fresh answer: repeat what the last good poll saw
        name, raw_state, state, message = previous.job_name, previous.iics_state, "RUNNING", previous.message
        job_start_time, job_end_time, warning = previous.job_start_time, None, None
    # a promotion's job says its kind and org even in the stack's own org: its ERROR outcomes keep one shape
    job = {"kind": request.kind, "org": request.org, "promotion": request.promotion} if request.promotion else {}
    return (job or job_fields(request.kind, request.org)) | {
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
        "jobStartTime": job_start_time,
        "jobEndTime": job_end_time,  # with "warning", what finish keeps if a later answer says running again
        "warning": warning,
        "expectedSeconds": previous.expected_seconds if previous else None,
        "historyChecked": previous.history_checked if previous else False,
    }

"""Start one monitor execution per job: the logic behind ``functions/start_monitor``, and the door
every request passes (``accept``), whether it came as an announcement or as a bare input.

An ``IICS Export Job Submitted`` event announces an export, ``IICS Import Job Submitted`` an import
(a bare input says ``"kind": "import"``); either may name the ``org`` whose credentials the watch uses.

Exactly one outcome per job comes from the execution name. It is the job id (plus the attempt,
when a user asks to watch a job again). Step Functions keeps names unique per state machine for
90 days and enforces that atomically, so EventBridge's at-least-once delivery, a user submitting
twice, and two duplicates arriving at the same moment all meet the same execution: one archive,
one outcome event, one alert. No table to run, and the duplicate never polls IICS.

The door validates the whole announcement before any name is taken:
- a valid one is started under its job's name, carrying only the validated request (unknown
  fields never enter the execution, so no announcement is too large for its state);
- a start-export request (``export`` instead of ``jobId``) has no job yet: its execution is named
  after the EventBridge event id, which a redelivered event keeps, so one event starts one export;
- a refused one is started under ``invalid-<event id>``, so a redelivery meets that execution and
  its one ERROR outcome, and the job's own name stays free for the valid announcement that follows.

Every execution input also carries a submission id unique to the call. Step Functions answers a
StartExecution with the name *and input* of a running execution by returning that execution; with
a unique input every duplicate is refused instead (``ExecutionAlreadyExists``), so ``MonitorsStarted``
counts only executions that really started and ``DuplicateSubmissions`` the rest.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Collection, Mapping
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from iics_monitor.errors import InvalidInput
from iics_monitor.observability import logger, metrics
from iics_monitor.status import REASON_LIMIT, text
from iics_monitor.validation import (
    EXPORT,
    IMPORT,
    ExportRequest,
    MonitorSettings,
    PromotionRequest,
    StartExportRequest,
    job_fields_as_far_as_valid,
    parse_announcement,
    parse_job_id,
)

IMPORT_SUBMITTED = "IICS Import Job Submitted"

_EVENT_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
_NO_EVENT_ID = "a start-export event needs an EventBridge event id"
Request = ExportRequest | StartExportRequest | PromotionRequest


def accept(raw: Any, defaults: MonitorSettings, orgs: Collection[str] = ()) -> dict[str, Any]:
    """``{"request": <validated request>}``, or ``{"refused": {"reason", "errorType", "jobId", "kind", "org"}}``.

    ``raw`` is a bare request, or an event-shaped input whose request is its ``detail``."""
    if isinstance(raw, Mapping) and "detail" in raw:
        return _accepted(raw.get("detail"), defaults, orgs, announced_kind(raw))[1]
    return _accepted(raw, defaults, orgs)[1]


def announced_kind(event: Mapping[str, Any]) -> str | None:
    """The kind of job an event's detail-type announces (import for ``IICS Import Job Submitted``, export
    for any other); None for an input without a detail-type (started by hand), which says its own."""
    if "detail-type" not in event:
        return None
    return IMPORT if event.get("detail-type") == IMPORT_SUBMITTED else EXPORT


def _accepted(
    detail: Any, defaults: MonitorSettings, orgs: Collection[str], announced: str | None = None
) -> tuple[Request | None, dict[str, Any]]:
    try:
        request = parse_announcement(detail, defaults, orgs, announced)
    except InvalidInput as error:
        return None, {"refused": _refusal(detail, error, announced)}
    return request, {"request": request.to_dict()}


def _refusal(detail: Any, error: InvalidInput, announced: str | None = None) -> dict[str, Any]:
    """Why, and what of the announcement is valid: a refused announcement of a valid job still names it
    (and its kind and org), so its consumers hear of it on the outcome they listen to."""
    fields = detail if isinstance(detail, Mapping) else {}
    try:
        job_id = parse_job_id(fields.get("jobId")) if "jobId" in fields else None
    except InvalidInput:
        job_id = None
    refusal = {"reason": text(error, REASON_LIMIT), "errorType": type(error).__name__, "jobId": job_id}
    if "promote" in fields:  # a refused promotion is told as one: its promotion outcome says why
        return refusal | {"promotion": True}
    return refusal | job_fields_as_far_as_valid(fields, announced)


def start_monitor(
    event: Mapping[str, Any],
    *,
    sfn: Any,
    state_machine_arn: str,
    defaults: MonitorSettings,
    orgs: Collection[str] = (),
) -> dict[str, Any]:
    """Start (or find) the execution for the job an ``IICS Export Job Submitted`` or ``IICS Import Job
    Submitted`` event announces."""
    event = event if isinstance(event, Mapping) else {}
    request, accepted = _accepted(event.get("detail"), defaults, orgs, announced_kind(event))
    event_id = _event_id(event)
    if isinstance(request, StartExportRequest | PromotionRequest) and event_id is None:
        request, accepted = None, {"refused": _refusal(event.get("detail"), InvalidInput(_NO_EVENT_ID))}
    name = _execution_name(request, event_id or _digest(event))
    if request is None:
        logger.warning("Refused export submission; the monitor will report it", extra=accepted["refused"])
    execution_input = json.dumps(accepted | {"submission": {"eventId": event_id, "id": uuid.uuid4().hex}})
    try:
        started = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=execution_input)
    except sfn.exceptions.ExecutionAlreadyExists:
        metrics.add_metric(name="DuplicateSubmissions", unit=MetricUnit.Count, value=1)
        logger.info("This submission already has its monitor; duplicate ignored", extra={"executionName": name})
        return {"status": "duplicate", "executionName": name}
    metrics.add_metric(name="MonitorsStarted" if request else "SubmissionsRefused", unit=MetricUnit.Count, value=1)
    return {"status": "started", "executionName": name, "executionArn": started["executionArn"]}


def _execution_name(request: Request | None, event_id: str) -> str:
    if request is None:
        return f"invalid-{event_id}"
    if isinstance(request, StartExportRequest):
        return f"export-{event_id}"
    if isinstance(request, PromotionRequest):  # one promotion per event: a redelivery meets this execution
        return f"promote-{event_id}"
    logger.set_correlation_id(request.job_id)
    return request.execution_name


def _event_id(event: Mapping[str, Any]) -> str | None:
    event_id = event.get("id")
    return event_id if isinstance(event_id, str) and _EVENT_ID.fullmatch(event_id) else None


def _digest(event: Mapping[str, Any]) -> str:
    """An event without an EventBridge id (invoked by hand): the same event gets the same name."""
    return hashlib.sha256(json.dumps(event, sort_keys=True, default=str).encode()).hexdigest()[:32]

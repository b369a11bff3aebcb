"""Start one monitor execution per job: the logic behind ``functions/start_monitor``.

Exactly one outcome per job comes from the execution name. It is the job id (plus the attempt,
when a user asks to watch a job again). Step Functions keeps names unique per state machine for
90 days and enforces that atomically, so EventBridge's at-least-once delivery, a user submitting
twice, and two duplicates arriving at the same moment all meet the same execution: one archive,
one outcome event, one alert. No table to run, and the duplicate never polls IICS.

A start-export request (``export`` instead of ``jobId``) has no job yet: its execution is named
after the EventBridge event id, which a redelivered event keeps, so one event starts one export.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from iics_monitor.errors import InvalidInput
from iics_monitor.observability import logger, metrics
from iics_monitor.validation import MonitorSettings, parse_export_request, parse_request

_EVENT_ID = re.compile(r"[A-Za-z0-9-]{1,64}")


def start_monitor(
    event: Mapping[str, Any], *, sfn: Any, state_machine_arn: str, defaults: MonitorSettings
) -> dict[str, Any]:
    """Start (or find) the execution for the job an ``IICS Export Job Submitted`` event announces."""
    detail = event.get("detail") if isinstance(event, Mapping) else None
    try:
        name = _execution_name(event, detail, defaults)
    except InvalidInput as error:
        # Bad input still earns its ERROR outcome: the state machine validates again and says why.
        name = f"invalid-{uuid.uuid4().hex}"
        logger.warning("Invalid export submission; the monitor will report it", extra={"error": str(error)})
    execution_input = json.dumps({"detail": detail}, sort_keys=True)
    try:
        started = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=execution_input)
    except sfn.exceptions.ExecutionAlreadyExists:
        metrics.add_metric(name="DuplicateSubmissions", unit=MetricUnit.Count, value=1)
        logger.info("Job already has its monitor; duplicate ignored", extra={"executionName": name})
        return {"status": "duplicate", "executionName": name}
    metrics.add_metric(name="MonitorsStarted", unit=MetricUnit.Count, value=1)
    return {"status": "started", "executionName": name, "executionArn": started["executionArn"]}


def _execution_name(event: Mapping[str, Any], detail: Any, defaults: MonitorSettings) -> str:
    if isinstance(detail, Mapping) and "export" in detail and "jobId" not in detail:
        parse_export_request(detail, defaults)
        event_id = event.get("id")
        if not isinstance(event_id, str) or not _EVENT_ID.fullmatch(event_id):
            raise InvalidInput("a start-export event needs an EventBridge event id")
        return f"export-{event_id}"
    request = parse_request(detail, defaults)
    logger.set_correlation_id(request.job_id)
    return request.execution_name

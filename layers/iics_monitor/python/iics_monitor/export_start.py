"""Start an export job for the state machine, then let the poll loop watch it: ``functions/start_export``.

The request ``{"export": {"name"?, "objects": [{"id", "includeDependencies"?}]}, "monitor"?, ...}``
becomes the request the poll loop reads, ``{"jobId", "name", "monitor"?, ...}``. A request that
cannot start (bad input, refused login, an IICS error) becomes an ERROR decision that carries the
IICS error code, and the state machine announces it like any other ERROR outcome.

Only throttling is retried here: IICS refused the request, so no job exists. Any other failure
(a timeout, a 5xx) may have started a job, and starting a second copy is worse than reporting it.

The function's time bounds the tries: a POST is begun only with its whole request budget left, and
a throttled one is tried again only when the wait and another POST still fit. Stopping short, the
ERROR decision says whether an export may have started.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit

from iics_monitor.config import ExportConfig
from iics_monitor.errors import IicsError, MonitorError, NotSent, StartUnconfirmed, Throttled
from iics_monitor.observability import logger, metrics
from iics_monitor.status import REASON_LIMIT, text
from iics_monitor.validation import ExportSpec, parse_export_request, parse_job_id

START_ATTEMPTS = 3
MAX_THROTTLE_SLEEP_SECONDS = 10.0


class ExportStarter(Protocol):
    def start_export(self, spec: ExportSpec) -> dict[str, Any]: ...


def start_export(
    event: Mapping[str, Any],
    *,
    source: ExportStarter | None = None,
    config: ExportConfig,
    sleep: Callable[[float], None] = time.sleep,
    seconds_left: Callable[[], float] = lambda: math.inf,
    source_for: Callable[[str | None], ExportStarter] | None = None,
) -> dict[str, Any]:
    """Start the export the request asks for; return the request to watch, or an ERROR decision.
    ``source_for(org)`` gives the IICS client of the org the request names; else ``source`` serves all."""
    raw = event.get("request")
    try:
        request = parse_export_request(raw, config.defaults, config.orgs)
        spec = request.spec
        if source_for is not None:
            source = source_for(request.org)
        body = _start_with_retries(source, spec, sleep, seconds_left, config.read_timeout_seconds)
        job_id = parse_job_id(body.get("id"))
    except MonitorError as error:
        metrics.add_metric(name="ExportStartFailures", unit=MetricUnit.Count, value=1)
        logger.warning("The export start failed", extra={"errorType": type(error).__name__})
        unconfirmed = isinstance(error, StartUnconfirmed)
        return {
            "outcome": "ERROR",
            "errorType": type(error).__name__,
            "reason": text(
                f"the export start is unconfirmed: {error}" if unconfirmed else f"the export did not start: {error}",
                REASON_LIMIT,
            ),
            "iicsErrorCode": error.code if isinstance(error, IicsError) else None,
        }
    logger.set_correlation_id(job_id)
    metrics.add_metric(name="ExportsStarted", unit=MetricUnit.Count, value=1)
    logger.info("Export started", extra={"objects": len(spec.objects)})
    request = {k: v for k, v in raw.items() if k != "export"}
    return {
        "outcome": None,
        "request": request | {"jobId": job_id, "name": text(body.get("name")) or spec.name},
        "export": {"objects": len(spec.objects)},
    }


def _start_with_retries(
    source: ExportStarter,
    spec: ExportSpec,
    sleep: Callable[[float], None],
    seconds_left: Callable[[], float],
    post_seconds: float,
) -> dict[str, Any]:
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            return source.start_export(spec)
        except Throttled as error:
            if attempt == START_ATTEMPTS:
                raise
            wait = min(
                MAX_THROTTLE_SLEEP_SECONDS,
                math.ceil(error.retry_after if error.retry_after is not None else 2**attempt),
            )
            if wait + post_seconds > seconds_left():
                # IICS refused every POST so far, so no export exists; another would not finish in time.
                raise NotSent(f"no time left to try again after IICS throttled the export start: {error}") from None
            logger.warning("IICS throttled the export start; trying again", extra={"waitSeconds": wait})
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover

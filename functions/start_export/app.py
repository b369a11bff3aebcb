"""Start an IICS export job; the state machine then watches it like an announced one."""

import time

from aws_lambda_powertools.utilities.typing import LambdaContext

from iics_monitor import runtime
from iics_monitor.config import REPORT_RESERVE_SECONDS
from iics_monitor.export_start import start_export
from iics_monitor.observability import logger, metrics, tracer


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    config = runtime.export_config()
    until = runtime.deadline(context, REPORT_RESERVE_SECONDS)
    with runtime.iics_clients_within(config, until) as source_for:
        return start_export(event, source_for=source_for, config=config, seconds_left=lambda: until - time.monotonic())

"""Promotions: start the import of a promotion's exported package, and say how the promotion ended.

Called with ``{"startImport": ...}`` between the export and the import; with ``{"promotionOutcome": ...}``
at the end, whatever step it reached (iics_monitor.promotion)."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from iics_monitor import runtime
from iics_monitor.config import REPORT_RESERVE_SECONDS
from iics_monitor.observability import logger, metrics, tracer
from iics_monitor.promotion import promotion_outcome, start_import


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if "promotionOutcome" in event:
        return promotion_outcome(event["promotionOutcome"])
    config = runtime.promote_config()
    with runtime.iics_clients_within(config, runtime.deadline(context, REPORT_RESERVE_SECONDS)) as source_for:
        return start_import(event, source_for=source_for, s3=runtime.s3(), config=config)

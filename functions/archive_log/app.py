"""Archive a finished job's log and status to S3 and return the outcome event detail."""

from datetime import UTC, datetime

from aws_lambda_powertools.utilities.typing import LambdaContext

from iics_monitor import runtime
from iics_monitor.config import ARCHIVE_RESERVE_SECONDS
from iics_monitor.finish import StepTime, finish_job
from iics_monitor.observability import logger, metrics, tracer


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    config = runtime.archive_config()
    until = runtime.deadline(context, ARCHIVE_RESERVE_SECONDS, most_seconds=config.max_seconds)
    with runtime.iics_clients_within(config, until) as source_for:
        return finish_job(
            event,
            source_for=source_for,
            orgs=config.orgs,
            archiver=runtime.log_archiver(config.bucket, config.prefix, config.max_bytes),
            now=datetime.now(UTC),
            history=runtime.duration_history(config.history_table) if config.history_table else None,
            archive_package=config.archive_package,
            step=StepTime(until),
        )

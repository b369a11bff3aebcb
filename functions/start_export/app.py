"""Start an IICS export job; the state machine then watches it like an announced one."""

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
    client = runtime.iics_client_for(config)
    with client.within(runtime.deadline(context, REPORT_RESERVE_SECONDS)):
        return start_export(event, source=client, config=config, seconds_left=client.seconds_left)

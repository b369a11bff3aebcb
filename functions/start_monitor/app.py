"""Start the monitor for an announced export or import job, once per job (the execution is named after it)."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from iics_monitor import runtime
from iics_monitor.observability import logger, metrics, tracer
from iics_monitor.submit import start_monitor


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    config = runtime.start_config()
    return start_monitor(
        event,
        sfn=runtime.stepfunctions(),
        state_machine_arn=config.state_machine_arn,
        defaults=config.defaults,
        orgs=config.orgs,
    )

"""Publish an outcome that needs a person to the alert topic, with a subject and body for people."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from iics_monitor import runtime
from iics_monitor.alert_topic import publish_alert
from iics_monitor.observability import logger, metrics, tracer


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return publish_alert(event, sns=runtime.sns(), config=runtime.topic_config())

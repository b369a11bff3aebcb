"""Check an IICS job's status (an export or an import); the state machine loops on the result.

Called with ``{"accept": <input>}`` it is the door for inputs started by hand (the state machine's
AcceptInput): the validated request, or why it was refused, and nothing else enters the execution."""

import time
from datetime import UTC, datetime

from aws_lambda_powertools.utilities.typing import LambdaContext

from iics_monitor import runtime
from iics_monitor.check import Invocation, check_or_report
from iics_monitor.config import REPORT_RESERVE_SECONDS
from iics_monitor.observability import logger, metrics, tracer
from iics_monitor.submit import accept


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    config = runtime.check_config()
    if "accept" in event:
        return accept(event["accept"], config.defaults, config.orgs)
    with runtime.iics_clients_within(config, runtime.deadline(context, REPORT_RESERVE_SECONDS)) as source_for:
        return check_or_report(
            event,
            source_for=source_for,
            config=config,
            now=datetime.now(UTC),
            invocation=Invocation(
                clock=lambda: datetime.now(UTC),
                sleep=time.sleep,
                seconds_left=lambda: context.get_remaining_time_in_millis() / 1000,
            ),
            history=runtime.duration_history(config.history_table) if config.history_table else None,
        )

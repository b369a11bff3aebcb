"""Post alert-worthy outcome events (SQS messages from the alert queue) to Slack, each event once.

Records are posted one by one, each only if the time left covers its post; the ones that failed or had
no time are reported back (ReportBatchItemFailures), so SQS delivers only those again, and moves them
to the dead-letter queue after maxReceiveCount. iics_monitor.slack_delivery says which failures may
be posted again.
"""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from iics_monitor import runtime
from iics_monitor.observability import logger, metrics, tracer

# A batch in which every record failed is reported like any other, not raised: the outcome for SQS is the
# same, and the failures are already logged and counted (SlackFailures, SlackDeferred) one by one.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    notifier = runtime.slack_notifier()

    def seconds_left() -> float:
        return context.get_remaining_time_in_millis() / 1000

    def post(record: SQSRecord) -> None:
        notifier.send(record.body, seconds_left)

    return process_partial_response(event=event, record_handler=post, processor=processor, context=context)

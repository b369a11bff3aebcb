"""Each alert posted to Slack once: an idempotency record per outcome event, and posts that fit the time left.

The record (Powertools idempotency on DynamoDB, key: the outcome event's EventBridge ``id``) is written
"in progress" before the post and marked done after it, so a redelivered SQS message of the same event,
or a second copy EventBridge sent, is not posted again. By failure kind:

- Slack refused it (429, 5xx, no connection, or no time left to try): nothing was shown, the record is
  deleted, and the message goes back to the queue: at least once.
- Slack took the request but did not answer (read timeout, dropped connection), or the invocation died
  during the post: Slack may show it. The record stays, so it is never posted again: at most once.

The record's in-progress state has no expiry of its own (no ``register_lambda_context``): with one, a
post cut off by a crash would be posted again by the next delivery. Its whole record expires after
``RECORD_SECONDS``, the alert queue's message retention.
"""

from __future__ import annotations

import enum
import json
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

from iics_monitor.alerts import Alert
from iics_monitor.errors import InvalidInput, MonitorError
from iics_monitor.observability import logger, metrics
from iics_monitor.slack import SlackDeferred, SlackUnconfirmed, SlackWebhook, build_message

# The alert queue's MessageRetentionPeriod: no copy of a message outlives its record.
RECORD_SECONDS = 4 * 24 * 3600
KEY_PREFIX = "slack-alert"


class Delivery(enum.StrEnum):
    """What happened to one alert."""

    POSTED = "posted"
    UNCONFIRMED = "unconfirmed"  # sent, no answer: maybe shown; never sent again
    DUPLICATE = "duplicate"  # its record was there: posted, being posted, or cut off by a crash


_LOG_LINES = {
    Delivery.POSTED: "Slack alert posted",
    Delivery.UNCONFIRMED: "Slack alert sent but not confirmed; it is not posted again",
    Delivery.DUPLICATE: "Slack alert already posted or being posted; not posted again",
}


def _replayed(response: Any, record: Any) -> dict[str, str]:
    """Powertools' hook for a result read back from a completed record: this delivery did not post."""
    return {"delivery": Delivery.DUPLICATE}


class SlackNotifier:
    """Posts the alert in an SQS message body (the outcome event) to Slack, once per event id."""

    def __init__(self, webhook: SlackWebhook, region: str, records: BasePersistenceLayer) -> None:
        self._webhook = webhook
        self._region = region
        config = IdempotencyConfig(
            event_key_jmespath="id",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=RECORD_SECONDS,
            response_hook=_replayed,
        )
        self._post_once = idempotent_function(
            self._post, data_keyword_argument="event", config=config, persistence_store=records, key_prefix=KEY_PREFIX
        )

    def send(self, body: str, seconds_left: Callable[[], float]) -> Delivery:
        """Post the alert unless its record says it was; raise (for redelivery) when Slack did not take it."""
        job_id = None
        try:
            event = _event(body)
            alert = Alert.from_event(event)
            job_id = alert.job_id
            if not self._webhook.fits(seconds_left()):
                raise SlackDeferred("no time left in this invocation for a Slack post")
            with warnings.catch_warnings():
                # Powertools warns of every record written without register_lambda_context: here it is the intent.
                warnings.filterwarnings("ignore", "Couldn't determine the remaining time left", UserWarning)
                result = self._post_once(event=event, job_id=job_id, seconds_left=seconds_left)
            delivery = Delivery(result["delivery"])
        except IdempotencyAlreadyInProgressError:
            delivery = Delivery.DUPLICATE
        except (MonitorError, IdempotencyPersistenceLayerError) as error:
            deferred = isinstance(error, SlackDeferred)
            metrics.add_metric(name="SlackDeferred" if deferred else "SlackFailures", unit=MetricUnit.Count, value=1)
            message = "Slack alert left for redelivery" if deferred else "Slack alert not delivered"
            logger.warning(message, extra={"jobId": job_id, "error": type(error).__name__, "reason": str(error)})
            raise
        metrics.add_metric(
            name="SlackPosts"
            if delivery is Delivery.POSTED
            else ("SlackUnconfirmed" if delivery is Delivery.UNCONFIRMED else "SlackDuplicates"),
            unit=MetricUnit.Count,
            value=1,
        )
        logger.info(_LOG_LINES[delivery], extra={"jobId": job_id, "state": alert.state, "delivery": str(delivery)})
        return delivery

    def _post(self, event: Mapping[str, Any], job_id: str | None, seconds_left: Callable[[], float]) -> dict[str, str]:
        """The idempotent part: a result marks the record done, an exception deletes it."""
        try:
            self._webhook.post(build_message(event, self._region), seconds_left=seconds_left)
        except SlackUnconfirmed as error:
            logger.warning("Slack did not answer the post", extra={"jobId": job_id, "reason": str(error)})
            return {"delivery": Delivery.UNCONFIRMED}
        return {"delivery": Delivery.POSTED}


def _event(body: str) -> dict[str, Any]:
    try:
        event = json.loads(body)
    except (TypeError, ValueError):
        raise InvalidInput("the message body is not JSON") from None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not event["id"]:
        raise InvalidInput("an alert must be an EventBridge event with an id")
    return event

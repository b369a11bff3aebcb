"""One IICS request budget for every execution and function of the stack (``IicsRequestsPerSecond``).

Each execution backs off on its own 429s, but it only sees its own: hundreds of young jobs polling at
once still offer IICS more than its limit. With a budget set, every IICS request (login, status, log,
package, start) first takes a slot in a DynamoDB counter for the current clock second, a conditional
``ADD`` that fails once the second is full. A request that finds no slot waits for the next second,
briefly; after ``MAX_WAIT_SECONDS`` it is ``Throttled`` without reaching IICS, and the poll loop waits
as it would for IICS's own 429. Aligned one-second windows of at most N requests keep any sliding
window of a few seconds within 1.2 N, so set N to about 80% of the org's limit.

Each org has its own limit at IICS, so its own budget: the default org counts in the item's ``requests``
attribute, a further org ``dev`` in ``requests@dev`` of the same item (``counter_for``).

The counter is a guard, not a dependency: when DynamoDB cannot answer, the request goes ahead (with a
warning and a ``RequestBudgetUnavailable`` metric) and IICS's own throttling still applies.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from iics_monitor.errors import Throttled
from iics_monitor.observability import logger, metrics

MAX_WAIT_SECONDS = 2.0
KEEP_SECONDS = 3600  # each second's counter expires (TTL) an hour later
_FULL = "ConditionalCheckFailedException"
DEFAULT_COUNTER = "requests"


def counter_for(org: str | None) -> str:
    """The attribute that counts ``org``'s requests (None: the stack's own org)."""
    return DEFAULT_COUNTER if org is None else f"{DEFAULT_COUNTER}@{org}"


class RequestBudget:
    """Takes a slot for one IICS request, or raises ``Throttled`` once none came free in time."""

    def __init__(
        self,
        table_name: str,
        per_second: int,
        client: Any,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        counter: str = DEFAULT_COUNTER,
    ) -> None:
        self._table = table_name
        self._counter = counter
        self._limit = per_second
        self._client = client
        self._clock = clock
        self._sleep = sleep
        self.waited_seconds = 0.0  # for metrics and tests

    def take(self) -> None:
        give_up_at = self._clock() + MAX_WAIT_SECONDS
        attempt = 0
        while True:
            now = self._clock()
            second = int(now)
            if self._took_slot(second):
                return
            attempt += 1
            # the next second, plus a small spread so waiters do not all arrive at its first instant
            wait = second + 1 - now + _spread(second, attempt) * 0.2
            if now + wait > give_up_at:
                metrics.add_metric(name="RequestBudgetExhausted", unit=MetricUnit.Count, value=1)
                raise Throttled(
                    f"the stack's budget of {self._limit} IICS requests a second is used up",
                    retry_after=max(1.0, wait),
                )
            self.waited_seconds += wait
            self._sleep(wait)

    def _took_slot(self, second: int) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"second": {"N": str(second)}},
                UpdateExpression="ADD #requests :one SET expiresAt = :expires",
                ConditionExpression="attribute_not_exists(#requests) OR #requests < :limit",
                ExpressionAttributeNames={"#requests": self._counter},
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(self._limit)},
                    ":expires": {"N": str(second + KEEP_SECONDS)},
                },
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == _FULL:
                return False
            return _unavailable(error)
        except BotoCoreError as error:
            return _unavailable(error)
        return True


def _spread(second: int, attempt: int) -> float:
    return zlib.crc32(f"{time.perf_counter_ns()}:{second}:{attempt}".encode()) / 2**32


def _unavailable(error: Exception) -> bool:
    metrics.add_metric(name="RequestBudgetUnavailable", unit=MetricUnit.Count, value=1)
    logger.warning("IICS request budget unavailable; sending the request anyway", extra={"error": type(error).__name__})
    return True

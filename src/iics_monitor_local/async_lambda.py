"""EventBridge -> Lambda targets, delivered as AWS delivers them (GAP async in stack.py).

moto runs a rule's Lambda target inside ``PutEvents``, once, and forgets a function error. AWS:

- EventBridge hands the event to Lambda's asynchronous invocation and ``PutEvents`` returns. If Lambda
  refuses the invocation (throttling, a service error), EventBridge tries again with backoff, within
  the target's ``RetryPolicy`` (``MaximumRetryAttempts``, ``MaximumEventAgeInSeconds``); then it sends
  the event to the target's ``DeadLetterConfig`` queue, with ``ERROR_CODE`` and ``ERROR_MESSAGE``.
- Lambda runs the function; when it fails, Lambda runs it again twice (its default
  ``MaximumRetryAttempts``), about a minute and then two minutes later; then it sends the event to
  the function's ``DeadLetterConfig`` queue, with ``RequestID``, ``ErrorCode`` and ``ErrorMessage``.
  (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html,
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html)

Waits are scaled by ``time_scale`` (the stack's ``QUEUE_TIME_SCALE``), so a test sees the retries in
seconds. ``wait_for_first_attempts`` lets a caller that announced an event (``LocalStack.submit``)
continue once each function it reached has run once, as a test expects after an announcement.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

LAMBDA_RETRY_DELAYS_SECONDS = (60, 120)  # Lambda's two retries of a failed asynchronous invocation
EVENTBRIDGE_FIRST_BACKOFF_SECONDS = 1.0  # then doubled each try, up to the cap
EVENTBRIDGE_MAX_BACKOFF_SECONDS = 60.0
DEFAULT_RETRY_ATTEMPTS = 185  # EventBridge's defaults for a target without a RetryPolicy
DEFAULT_EVENT_AGE_SECONDS = 86_400
_ONE_TRY = Config(retries={"total_max_attempts": 1})  # the retries are EventBridge's and Lambda's, below
logger = logging.getLogger(__name__)


class AsyncLambda:
    """Delivers events to Lambda targets on threads of its own; ``close`` ends every delivery."""

    def __init__(self, region: str, time_scale: float, workers: int = 8) -> None:
        self._region = region
        self._scale = time_scale
        # function ARN -> its DeadLetterConfig queue ARN (moto's Lambda keeps none: the stack reads the template's)
        self.function_dead_letters: dict[str, str] = {}
        self._lambda = boto3.client("lambda", region_name=region, config=_ONE_TRY)  # one for every delivery
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="async-lambda")
        self._closed = threading.Event()
        self._changed = threading.Condition()
        self._first_attempts_due: Counter[str] = Counter()  # event id -> deliveries not yet run once

    def deliver(self, event_id: str, target: dict[str, Any], payload: str) -> None:
        """Hand ``payload`` to the target's function, as EventBridge does: return at once. After ``close``
        (an execution still emitting while the stack closes) the event is dropped."""
        if self._closed.is_set():
            return
        with self._changed:
            self._first_attempts_due[event_id] += 1
        try:
            self._pool.submit(self._deliver, event_id, target, payload)
        except RuntimeError:  # closed between the check and the submit
            with self._changed:
                self._first_attempts_due[event_id] -= 1

    def wait_for_first_attempts(self, event_id: str, timeout: float = 60.0) -> None:
        """Until every delivery of ``event_id`` has run its function once (or ended without it)."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._first_attempts_due[event_id] == 0, timeout):
                raise TimeoutError(f"event {event_id} was not delivered within {timeout} s")

    def stop_accepting(self) -> None:
        """New events are dropped, waits end at once, and no function is started again."""
        self._closed.set()

    def close(self) -> None:
        """Stop, drop the deliveries not yet started, and wait for the running ones to end."""
        self._closed.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    # --- one delivery ------------------------------------------------------------------------------------------

    def _deliver(self, event_id: str, target: dict[str, Any], payload: str) -> None:
        try:
            self._deliver_and_retry(event_id, target, payload)
        except Exception:  # a delivery thread's failure would vanish in its future: say it
            logger.exception("Asynchronous delivery to %s failed in the local stack", target.get("Arn"))

    def _deliver_and_retry(self, event_id: str, target: dict[str, Any], payload: str) -> None:
        lam = self._lambda
        try:
            answer = self._invoke_as_eventbridge(lam, target, payload)
        finally:
            with self._changed:
                self._first_attempts_due[event_id] -= 1
                self._changed.notify_all()
        if answer is None:
            return
        for delay in LAMBDA_RETRY_DELAYS_SECONDS:
            if not answer.get("FunctionError") or self._pause(delay):
                return
            answer = _invoke(lam, target["Arn"], payload) or {"FunctionError": "Unhandled"}
        if answer.get("FunctionError"):
            self._to_function_dead_letters(target["Arn"], payload, answer)

    def _invoke_as_eventbridge(self, lam: Any, target: dict[str, Any], payload: str) -> dict | None:
        """Lambda's answer to the first invocation, after EventBridge's retries of a refused one; None
        when EventBridge gave up (the event went to the target's dead-letter queue, if it has one)."""
        policy = target.get("RetryPolicy") or {}
        attempts = int(policy.get("MaximumRetryAttempts", DEFAULT_RETRY_ATTEMPTS)) + 1
        max_age = float(policy.get("MaximumEventAgeInSeconds", DEFAULT_EVENT_AGE_SECONDS)) * self._scale
        started, backoff = time.monotonic(), EVENTBRIDGE_FIRST_BACKOFF_SECONDS
        for attempt in range(1, attempts + 1):
            try:
                return lam.invoke(FunctionName=target["Arn"], InvocationType="RequestResponse", Payload=payload)
            except ClientError as error:
                refused = error
            too_old = time.monotonic() - started + backoff * self._scale > max_age
            if attempt == attempts or too_old or self._pause(backoff):
                break
            backoff = min(backoff * 2, EVENTBRIDGE_MAX_BACKOFF_SECONDS)
        self._to_target_dead_letters(target, payload, refused)
        return None

    def _pause(self, seconds: float) -> bool:
        """Wait ``seconds`` scaled; True when the stack closed meanwhile."""
        return self._closed.wait(seconds * self._scale)

    # --- dead-letter queues ------------------------------------------------------------------------------------

    def _to_target_dead_letters(self, target: dict[str, Any], payload: str, error: ClientError) -> None:
        queue_arn = (target.get("DeadLetterConfig") or {}).get("Arn")
        if queue_arn:
            code = error.response.get("Error", {}).get("Code", "Unknown")
            attributes = {"ERROR_CODE": code, "ERROR_MESSAGE": str(error)[:256], "TARGET_ARN": target["Arn"]}
            self._send(queue_arn, payload, attributes)

    def _to_function_dead_letters(self, function_arn: str, payload: str, answer: dict) -> None:
        queue_arn = self.function_dead_letters.get(function_arn)
        if queue_arn:
            stream = answer.get("Payload")
            result = json.loads(stream.read() or b"null") if stream is not None else None
            message = result.get("errorMessage") if isinstance(result, dict) else None
            attributes = {
                "RequestID": answer.get("ResponseMetadata", {}).get("RequestId", "unknown"),
                "ErrorCode": "200",  # the function ran and failed (Lambda's code for a function error)
                "ErrorMessage": str(message or "Unhandled")[:256],
            }
            self._send(queue_arn, payload, attributes)

    def _send(self, queue_arn: str, body: str, attributes: dict[str, str]) -> None:
        sqs = boto3.client("sqs", region_name=self._region)
        url = sqs.get_queue_url(QueueName=queue_arn.rsplit(":", 1)[-1])["QueueUrl"]
        sqs.send_message(
            QueueUrl=url,
            MessageBody=body,
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
        )


def _invoke(lam: Any, function_arn: str, payload: str) -> dict | None:
    try:
        return lam.invoke(FunctionName=function_arn, InvocationType="RequestResponse", Payload=payload)
    except ClientError:
        return None

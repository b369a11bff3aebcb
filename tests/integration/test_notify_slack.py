"""functions/notify_slack as Lambda calls it: an SQS batch from the alert queue, the webhook URL from
Secrets Manager (moto), Slack played by the fake webhook on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import json
import os
import time

import boto3
import pytest
from moto import mock_aws

from iics_monitor.slack import DEFAULT_TIMEOUT, RECORD_RESERVE_SECONDS, build_message
from iics_monitor_local.slack_fake import FakeSlack, Reply
from iics_monitor_local.stack import emf_values
from tests.conftest import FakeLambdaContext
from tests.integration.test_handlers import load_handler
from tests.unit.layer.conftest import create_table_from_template

SECRET = "iics-export-monitor/slack-webhook"
TOKEN = "T0SECRET/B0SECRET/s3cr3tW3bh00kT0k3n"
REGION = "us-east-1"  # the sandbox's AWS_DEFAULT_REGION
IDEMPOTENCY_TABLE = "iics-export-monitor-SlackIdempotencyTable-1A2B3C"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:iics-export-monitor-AlertQueue-1A2B3C4D5E6F"


def outcome_event(job_id: str, state: str = "FAILED") -> dict:
    arn = f"arn:aws:states:us-east-1:123456789012:execution:IicsExportMonitor:{job_id}-1"
    return {
        "version": "0",
        "id": f"event-{job_id}",
        "detail-type": "IICS Export Job State Change",
        "source": "iics.export.monitor",
        "account": "123456789012",
        "time": "2026-11-28T09:42:07Z",
        "region": REGION,
        "resources": [arn],
        "detail": {
            "schemaVersion": "1",
            "jobId": job_id,
            "jobName": f"export-{job_id[:4]}",
            "state": state,
            "iicsState": state,
            "message": "Export failed.",
            "reason": None,
            "errorType": None,
            "startTime": "2026-11-28T09:40:00.000Z",
            "endTime": "2026-11-28T09:42:05.000Z",
            "durationSeconds": 125.0,
            "objects": {"total": 3, "successful": 2, "failed": 1},
            "failedObjects": [{"id": "1", "name": "m_orders", "path": "/Sales", "type": "DTEMPLATE", "message": "x"}],
            "log": None,
            "logError": "IICS log unavailable",
            "executionArn": arn,
            "polls": 3,
        },
    }


def sqs_record(n: int, body: str) -> dict:
    """One record as the SQS event source mapping delivers it to Lambda."""
    return {
        "messageId": f"0e5c7a3d-1b2f-4c8e-9a6d-00000000000{n}",
        "receiptHandle": f"AQEBzWwaftRI0KuVm4tP+/7q1rGgNqicHq{n}==",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1795858927000",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1795858927010",
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": REGION,
    }


EVENTS = [
    outcome_event(job_id) for job_id in ("AAAA0000000000000000a1", "BBBB0000000000000000b2", "CCCC0000000000000000c3")
]
BATCH = {"Records": [sqs_record(n, json.dumps(event)) for n, event in enumerate(EVENTS, start=1)]}


@pytest.fixture
def slack():
    with FakeSlack(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def aws(monkeypatch, slack):
    with mock_aws():
        boto3.client("secretsmanager").create_secret(Name=SECRET, SecretString=json.dumps({"webhookUrl": slack.url}))
        create_table_from_template(boto3.client("dynamodb"), "SlackIdempotencyTable", IDEMPOTENCY_TABLE)
        monkeypatch.setenv("SLACK_WEBHOOK_SECRET_NAME", SECRET)
        monkeypatch.setenv("IDEMPOTENCY_TABLE", IDEMPOTENCY_TABLE)
        monkeypatch.setenv("ALLOW_LOOPBACK_HTTP", "true")  # the fake Slack is on 127.0.0.1, as in the local stack
        yield


class DeadlineContext(FakeLambdaContext):
    """A Lambda context whose invocation ends ``seconds`` after the handler first asks (so the test's own
    cold start, slower than Lambda's, does not count)."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._deadline: float | None = None

    def get_remaining_time_in_millis(self) -> int:
        self._deadline = self._deadline or time.monotonic() + self._seconds
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@pytest.fixture
def output(monkeypatch, capsys):
    """A reader of what the function logged and printed (EMF metrics) so far, as CloudWatch Logs would keep it.

    The shared Logger and Metrics may have been built when test collection first imported the layer,
    before the sandbox's POWERTOOLS_* variables existed: then the log handler holds the stdout of that
    moment and the metrics namespace is unset. Both are pointed at the test here. They are imported now,
    not with this module, because the local stack's tests drop the layer's modules when they finish.
    """
    from iics_monitor.observability import logger, metrics

    monkeypatch.setattr(metrics, "namespace", os.environ["POWERTOOLS_METRICS_NAMESPACE"])
    logged = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", logged)
    printed: list[str] = []

    def read() -> str:
        printed.append(capsys.readouterr().out)
        return logged.getvalue() + "".join(printed)

    return read


def metric_total(output, name: str) -> float:
    return sum(emf_values(output(), name))


@pytest.mark.parametrize(
    "failure",
    [[Reply(404, body="no_service")], [Reply(429, {"Retry-After": "0"})] * 3],
    ids=["permanent-404", "throttled-three-times"],
)
def test_only_the_record_slack_refused_is_reported_for_redelivery(aws, slack, lambda_context, output, failure):
    slack.script(Reply(200, body="ok"), *failure)  # the first record goes through, the second meets the failure
    handler = load_handler("notify_slack")

    response = handler(BATCH, lambda_context)

    assert response == {"batchItemFailures": [{"itemIdentifier": BATCH["Records"][1]["messageId"]}]}
    assert len(slack.requests) == 2 + len(failure)
    assert [r.payload for r in slack.requests if r.status == 200] == [
        build_message(EVENTS[0], REGION),
        build_message(EVENTS[2], REGION),
    ]
    assert (metric_total(output, "SlackPosts"), metric_total(output, "SlackFailures")) == (2, 1)
    assert "s3cr3tW3bh00kT0k3n" not in output() + json.dumps(response)


def test_a_record_that_is_not_an_outcome_event_is_reported_without_a_post(aws, slack, lambda_context, output):
    batch = {"Records": [sqs_record(1, "not json"), sqs_record(2, json.dumps({"detail": {}})), BATCH["Records"][2]]}
    handler = load_handler("notify_slack")

    response = handler(batch, lambda_context)

    assert response == {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in batch["Records"][:2]]}
    assert slack.delivered == [build_message(EVENTS[2], REGION)]
    assert '"error":"InvalidInput"' in output().replace(" ", "")


def test_when_slack_refuses_everything_every_record_is_reported(aws, slack, lambda_context, output):
    slack.fail_always(Reply(403, body="invalid_token"))
    handler = load_handler("notify_slack")

    response = handler(BATCH, lambda_context)

    assert response == {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in BATCH["Records"]]}
    assert [r.status for r in slack.requests] == [403, 403, 403]
    assert metric_total(output, "SlackFailures") == 3


def test_the_webhook_url_may_also_be_stored_as_the_raw_secret_string(aws, slack, lambda_context, output):
    boto3.client("secretsmanager").put_secret_value(SecretId=SECRET, SecretString=slack.url)
    handler = load_handler("notify_slack")

    assert handler({"Records": BATCH["Records"][:1]}, lambda_context) == {"batchItemFailures": []}
    assert slack.delivered == [build_message(EVENTS[0], REGION)]
    assert metric_total(output, "SlackPosts") == 1


def test_a_missing_secret_name_variable_is_a_config_error_naming_it(aws, monkeypatch, slack, lambda_context):
    monkeypatch.delenv("SLACK_WEBHOOK_SECRET_NAME")
    handler = load_handler("notify_slack")

    with pytest.raises(Exception, match="SLACK_WEBHOOK_SECRET_NAME") as raised:
        handler(BATCH, lambda_context)

    assert type(raised.value).__name__ == "ConfigError"
    assert slack.requests == []


def test_a_batch_delivered_again_is_not_posted_again(aws, slack, lambda_context, output):
    handler = load_handler("notify_slack")
    assert handler(BATCH, lambda_context) == {"batchItemFailures": []}

    assert handler(BATCH, lambda_context) == {"batchItemFailures": []}  # e.g. its deletion failed

    assert slack.delivered == [build_message(event, REGION) for event in EVENTS]
    assert (metric_total(output, "SlackPosts"), metric_total(output, "SlackDuplicates")) == (3, 3)


def test_an_alert_slack_took_but_answered_late_is_not_posted_again(aws, monkeypatch, slack, lambda_context, output):
    monkeypatch.setenv("SLACK_READ_TIMEOUT_SECONDS", "1")
    slack.script(Reply(200, body="ok", delay=1.5))
    handler = load_handler("notify_slack")
    one = {"Records": BATCH["Records"][:1]}

    assert handler(one, lambda_context) == {"batchItemFailures": []}  # maybe shown: not worth a second post
    assert handler(one, lambda_context) == {"batchItemFailures": []}

    assert len(slack.requests) == 1
    assert (metric_total(output, "SlackUnconfirmed"), metric_total(output, "SlackDuplicates")) == (1, 1)
    assert "s3cr3tW3bh00kT0k3n" not in output()


def test_records_the_time_left_cannot_cover_go_back_to_the_queue_unposted(aws, slack, output):
    """The first post takes 3 s; after it, less than one attempt's worst case is left (2.5 s of
    slack covers the handler's own start, even on a busy machine)."""
    slack.script(Reply(200, body="ok", delay=3.0))
    one_attempt = DEFAULT_TIMEOUT.connect_timeout + DEFAULT_TIMEOUT.read_timeout + RECORD_RESERVE_SECONDS
    handler = load_handler("notify_slack")

    response = handler(BATCH, DeadlineContext(one_attempt + 2.5))

    assert response == {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in BATCH["Records"][1:]]}
    assert slack.delivered == [build_message(EVENTS[0], REGION)]
    assert (metric_total(output, "SlackDeferred"), metric_total(output, "SlackFailures")) == (2, 0)

"""slack_delivery: each alert posted once, per outcome event id, against a fake Slack on 127.0.0.1 and
the idempotency table of template.yaml in moto."""

from __future__ import annotations

import json

import boto3
import pytest
import urllib3
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from moto import mock_aws

from iics_monitor.errors import InvalidInput
from iics_monitor.slack import DEFAULT_TIMEOUT, RECORD_RESERVE_SECONDS, SlackDeferred, SlackUnavailable, SlackWebhook
from iics_monitor.slack_delivery import Delivery, SlackNotifier
from iics_monitor_local.slack_fake import Reply
from tests.unit.layer.conftest import create_table_from_template
from tests.unit.slack.test_slack import REGION, outcome_event

TABLE = "iics-export-monitor-SlackIdempotencyTable-1AB2C3"
EVENT = outcome_event()
BODY = json.dumps(EVENT)
PLENTY = 60.0  # seconds left in the invocation


def plenty() -> float:
    return PLENTY


class Killed(BaseException):
    """The invocation dying mid-post (timeout, out of memory): no except clause of the code runs."""


class DiesAfterSending:
    """An HTTP pool that sends the request, then dies before the answer is read."""

    def __init__(self) -> None:
        self._pool = urllib3.PoolManager(retries=False)

    def request(self, *args, **kwargs):
        self._pool.request(*args, **kwargs)
        raise Killed


@pytest.fixture(scope="module")
def dynamodb_client():
    return boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="x")


@pytest.fixture
def table(dynamodb_client):
    with mock_aws():
        create_table_from_template(dynamodb_client, "SlackIdempotencyTable", TABLE)
        yield dynamodb_client


@pytest.fixture
def notifier_with(table, fake_slack, sleeps):
    """A notifier posting to the fake Slack through ``http`` (a real pool by default), with a fresh record store:
    each call is a new container, as a redelivery may meet."""

    def make(http=None, timeout: urllib3.Timeout = DEFAULT_TIMEOUT) -> SlackNotifier:
        webhook = SlackWebhook(
            lambda: fake_slack.url, http=http, timeout=timeout, sleep=sleeps.append, loopback_http=True
        )
        return SlackNotifier(webhook, REGION, DynamoDBPersistenceLayer(TABLE, boto3_client=table))

    return make


def records(table) -> list[dict]:
    return table.scan(TableName=TABLE)["Items"]


def test_an_event_delivered_twice_is_posted_once(notifier_with, fake_slack, table):
    assert notifier_with().send(BODY, plenty) == Delivery.POSTED

    assert notifier_with().send(BODY, plenty) == Delivery.DUPLICATE

    assert len(fake_slack.delivered) == 1
    [record] = records(table)
    assert record["status"] == {"S": "COMPLETED"}
    assert "in_progress_expiration" not in record


def test_an_alert_slack_refused_is_posted_on_redelivery(notifier_with, fake_slack, table, sleeps):
    fake_slack.script((500,), (500,), (503,))

    with pytest.raises(SlackUnavailable):
        notifier_with().send(BODY, plenty)

    assert records(table) == []  # nothing was shown, so nothing is remembered
    assert notifier_with().send(BODY, plenty) == Delivery.POSTED
    assert [r.status for r in fake_slack.requests] == [500, 500, 503, 200]


def test_an_alert_slack_took_but_answered_late_is_not_posted_again(notifier_with, fake_slack, table):
    fake_slack.script(Reply(200, body="ok", delay=0.5))
    impatient = urllib3.Timeout(connect=1.0, read=0.2)

    assert notifier_with(timeout=impatient).send(BODY, plenty) == Delivery.UNCONFIRMED

    assert notifier_with().send(BODY, plenty) == Delivery.DUPLICATE
    assert len(fake_slack.requests) == 1


def test_an_alert_whose_invocation_died_mid_post_is_not_posted_again(notifier_with, fake_slack, table):
    with pytest.raises(Killed):
        notifier_with(http=DiesAfterSending()).send(BODY, plenty)
    [record] = records(table)
    assert record["status"] == {"S": "INPROGRESS"}  # and it stays so: no in-progress expiry

    assert notifier_with().send(BODY, plenty) == Delivery.DUPLICATE
    assert len(fake_slack.delivered) == 1


def test_no_post_and_no_record_when_the_time_left_cannot_cover_a_post(notifier_with, fake_slack, table):
    short = DEFAULT_TIMEOUT.connect_timeout + DEFAULT_TIMEOUT.read_timeout + RECORD_RESERVE_SECONDS - 0.5

    with pytest.raises(SlackDeferred):
        notifier_with().send(BODY, lambda: short)

    assert (fake_slack.requests, records(table)) == ([], [])
    assert notifier_with().send(BODY, plenty) == Delivery.POSTED


@pytest.mark.parametrize(
    "body", [json.dumps({k: v for k, v in EVENT.items() if k != "id"}), json.dumps(EVENT | {"id": ""}), "[1]"]
)
def test_an_alert_without_an_event_id_is_refused_before_any_post(notifier_with, fake_slack, table, body):
    with pytest.raises(InvalidInput, match="^an alert must be an EventBridge event with an id$"):
        notifier_with().send(body, plenty)

    assert (fake_slack.requests, records(table)) == ([], [])


def test_the_records_hold_neither_the_webhook_url_nor_the_alert(notifier_with, table):
    notifier_with().send(BODY, plenty)

    stored = json.dumps(records(table))
    assert "s3cr3tW3bh00kT0k3n" not in stored and EVENT["id"] not in stored
    assert EVENT["detail"]["jobId"] not in stored

"""NotifySlackFunction in template.yaml: a Timeout that covers one message's worst case, a queue that
outwaits it, and the idempotency table that keeps each alert to one post."""

from __future__ import annotations

from samtranslator.yaml_helper import yaml_parse

from iics_monitor import slack
from iics_monitor.slack_delivery import RECORD_SECONDS
from tests.conftest import ROOT

RESOURCES = yaml_parse((ROOT / "template.yaml").read_text())["Resources"]
FUNCTION = RESOURCES["NotifySlackFunction"]["Properties"]
QUEUE = RESOURCES["AlertQueue"]["Properties"]
TABLE = RESOURCES["SlackIdempotencyTable"]


def test_the_timeout_covers_one_messages_worst_case():
    assert FUNCTION["Timeout"] >= slack.message_worst_case_seconds() == 61.0


def test_the_queue_hides_a_message_for_six_times_the_timeout():
    """AWS's advice for an SQS event source: a batch is never visible again while it may still run."""
    assert QUEUE["VisibilityTimeout"] >= 6 * FUNCTION["Timeout"]


def test_a_record_lives_as_long_as_any_copy_of_its_message():
    assert RECORD_SECONDS >= QUEUE["MessageRetentionPeriod"]


def test_the_idempotency_table_has_the_key_and_ttl_powertools_writes():
    properties = TABLE["Properties"]
    assert properties["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert properties["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert TABLE["Condition"] == RESOURCES["NotifySlackFunction"]["Condition"] == "HasSlack"


def test_the_function_is_told_its_table():
    assert FUNCTION["Environment"]["Variables"]["IDEMPOTENCY_TABLE"] == {"Ref": "SlackIdempotencyTable"}

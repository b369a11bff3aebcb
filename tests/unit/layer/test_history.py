"""history: recent durations per job name in DynamoDB (moto), the expected duration, and a table
that fails never failing the check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from moto import mock_aws

from iics_monitor import history
from iics_monitor.history import KEEP, TTL_DAYS, DurationHistory, expected_seconds
from iics_monitor_local.stack import LocalStack
from tests.unit.layer.conftest import create_table_from_template

TABLE = "duration-history"
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


@pytest.fixture
def table(dynamodb_client):
    with mock_aws():
        create_table_from_template(dynamodb_client, "DurationHistoryTable", TABLE)
        yield DurationHistory(TABLE, dynamodb_client)


def test_the_expected_duration_is_the_median_once_there_are_two_runs():
    assert expected_seconds([]) is None
    assert expected_seconds([600.0]) is None
    assert expected_seconds([600.0, 700.0]) == 650.0
    assert expected_seconds([100.0, 900.0, 120.0]) == 120.0  # one slow run does not move it
    assert expected_seconds([0.0, -3.0, 50.0]) is None  # nonsense durations do not count


def test_recorded_durations_come_back_and_only_the_last_five_are_kept(table):
    for seconds in (10, 20, 30, 40, 50, 60, 70):
        table.record("nightly-backup", seconds, NOW)

    assert table.durations("nightly-backup") == [30.0, 40.0, 50.0, 60.0, 70.0]
    assert len(table.durations("nightly-backup")) == KEEP
    assert table.expected_seconds("nightly-backup") == 50.0


def test_names_are_kept_apart_and_an_unknown_name_has_no_history(table):
    table.record("a", 100, NOW)
    table.record("a", 110, NOW)

    assert table.expected_seconds("a") == 105.0
    assert table.durations("b") == []
    assert table.expected_seconds("b") is None


def test_each_item_expires_after_the_ttl(table, dynamodb_client):
    table.record("nightly", 100.5, NOW)

    item = dynamodb_client.get_item(TableName=TABLE, Key={"jobName": {"S": "nightly"}})["Item"]
    assert int(item["expiresAt"]["N"]) == int((NOW + timedelta(days=TTL_DAYS)).timestamp())
    assert item["updatedAt"]["S"] == NOW.isoformat()


@pytest.mark.parametrize("name", ["", "x" * 1025])
def test_an_empty_or_oversized_name_is_neither_read_nor_written(table, dynamodb_client, name):
    table.record(name, 100, NOW)

    assert table.durations(name) == []
    assert dynamodb_client.scan(TableName=TABLE)["Count"] == 0


def test_a_missing_table_means_no_history_and_a_warning_not_an_error(dynamodb_client, caplog):
    with mock_aws():
        missing = DurationHistory("no-such-table", dynamodb_client)

        assert missing.durations("nightly") is None
        assert missing.expected_seconds("nightly") is None
        missing.record("nightly", 100, NOW)  # does not raise

    assert "Duration history unavailable" in caplog.text


def test_a_throttled_write_is_a_warning(table, dynamodb_client, monkeypatch, caplog):
    def refuse(**_):
        raise dynamodb_client.exceptions.ProvisionedThroughputExceededException(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "PutItem"
        )

    monkeypatch.setattr(dynamodb_client, "put_item", refuse)
    table.record("nightly", 100, NOW)

    assert table.durations("nightly") == []
    assert "Duration history unavailable" in caplog.text


def test_the_template_table_accepts_what_the_adapter_writes():
    with LocalStack() as stack:
        name = stack.resources["DurationHistoryTable"]
        deployed = DurationHistory(name, stack.client("dynamodb"))
        deployed.record("nightly", 300, NOW)
        deployed.record("nightly", 320, NOW)

        assert deployed.expected_seconds("nightly") == 310.0
        assert history.MIN_SAMPLES == 2

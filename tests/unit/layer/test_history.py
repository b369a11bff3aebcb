"""history: recent runs (duration and end state) per job name in DynamoDB (moto), the expected
duration, and a table that fails never failing the check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from moto import mock_aws

from iics_monitor import history
from iics_monitor.history import KEEP, TTL_DAYS, DurationHistory, Run, expected_seconds
from iics_monitor_local.stack import LocalStack
from tests.unit.layer.conftest import create_table_from_template

TABLE = "duration-history"
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


@pytest.fixture
def table(dynamodb_client):
    with mock_aws():
        create_table_from_template(dynamodb_client, "DurationHistoryTable", TABLE)
        yield DurationHistory(TABLE, dynamodb_client)


def successes(*seconds: float) -> list[Run]:
    return [Run(s, "SUCCESSFUL") for s in seconds]


def test_the_expected_duration_is_the_median_once_there_are_two_successful_runs():
    assert expected_seconds([]) is None
    assert expected_seconds(successes(600.0)) is None
    assert expected_seconds(successes(600.0, 700.0)) == 650.0
    assert expected_seconds(successes(100.0, 900.0, 120.0)) == 120.0  # one slow run does not move it
    assert expected_seconds(successes(0.0, -3.0, 50.0)) is None  # nonsense durations do not count


def test_failed_runs_do_not_move_the_expected_end():
    runs = [Run(600.0, "SUCCESSFUL"), Run(40.0, "FAILED"), Run(620.0, "SUCCESSFUL"), Run(35.0, "FAILED")]

    assert expected_seconds(runs) == 610.0
    assert expected_seconds([Run(600.0, "SUCCESSFUL"), Run(40.0, "FAILED")]) is None  # one success: no pattern


def test_recorded_runs_come_back_and_only_the_last_five_are_kept(table):
    for seconds in (10, 20, 30, 40, 50, 60, 70):
        table.record("nightly-backup", seconds, NOW, state="SUCCESSFUL")

    assert table.runs("nightly-backup") == successes(30.0, 40.0, 50.0, 60.0, 70.0)
    assert len(table.runs("nightly-backup")) == KEEP
    assert table.expected_seconds("nightly-backup") == 50.0


def test_failed_runs_are_recorded_with_their_state_in_the_order_they_ended(table):
    # Given a nightly job that usually takes 10 minutes, and fails now and then after a minute
    for seconds, state in [(600, "SUCCESSFUL"), (61.5, "FAILED"), (640, "SUCCESSFUL"), (58, "FAILED")]:
        table.record("nightly", seconds, NOW, state=state)

    # Then the history holds what really happened, and still expects 10-11 minutes
    assert table.runs("nightly") == [
        Run(600.0, "SUCCESSFUL"),
        Run(61.5, "FAILED"),
        Run(640.0, "SUCCESSFUL"),
        Run(58.0, "FAILED"),
    ]
    assert table.expected_seconds("nightly") == 620.0


def test_the_last_five_runs_are_kept_whatever_their_state(table):
    # a name whose recent runs keep failing loses its expected end: it is polled by the plain policy
    table.record("flaky", 600, NOW, state="SUCCESSFUL")
    table.record("flaky", 620, NOW, state="SUCCESSFUL")
    for _ in range(4):
        table.record("flaky", 30, NOW, state="FAILED")

    assert [r.state for r in table.runs("flaky")] == ["SUCCESSFUL"] + ["FAILED"] * 4
    assert table.expected_seconds("flaky") is None


def test_only_end_states_of_iics_are_recorded(table):
    table.record("nightly", 100, NOW, state="TIMED_OUT")  # the monitor gave up: the run has no duration yet

    assert table.runs("nightly") == []


def test_an_item_written_before_states_were_kept_reads_as_successful_runs(table, dynamodb_client):
    dynamodb_client.put_item(
        TableName=TABLE,
        Item={"jobName": {"S": "nightly"}, "durations": {"L": [{"N": "600"}, {"N": "640.5"}]}},
    )

    assert table.runs("nightly") == successes(600.0, 640.5)
    table.record("nightly", 45, NOW, state="FAILED")
    assert table.runs("nightly") == [*successes(600.0, 640.5), Run(45.0, "FAILED")]
    assert table.expected_seconds("nightly") == 620.25


def test_names_are_kept_apart_and_an_unknown_name_has_no_history(table):
    table.record("a", 100, NOW, state="SUCCESSFUL")
    table.record("a", 110, NOW, state="SUCCESSFUL")

    assert table.expected_seconds("a") == 105.0
    assert table.runs("b") == []
    assert table.expected_seconds("b") is None


def test_each_item_expires_after_the_ttl(table, dynamodb_client):
    table.record("nightly", 100.5, NOW, state="SUCCESSFUL")

    item = dynamodb_client.get_item(TableName=TABLE, Key={"jobName": {"S": "nightly"}})["Item"]
    assert int(item["expiresAt"]["N"]) == int((NOW + timedelta(days=TTL_DAYS)).timestamp())
    assert item["updatedAt"]["S"] == NOW.isoformat()


@pytest.mark.parametrize("name", ["", "x" * 1025])
def test_an_empty_or_oversized_name_is_neither_read_nor_written(table, dynamodb_client, name):
    table.record(name, 100, NOW, state="SUCCESSFUL")

    assert table.runs(name) == []
    assert dynamodb_client.scan(TableName=TABLE)["Count"] == 0


def test_a_missing_table_means_no_history_and_a_warning_not_an_error(dynamodb_client, caplog):
    with mock_aws():
        missing = DurationHistory("no-such-table", dynamodb_client)

        assert missing.runs("nightly") is None
        assert missing.expected_seconds("nightly") is None
        missing.record("nightly", 100, NOW, state="FAILED")  # does not raise

    assert "Duration history unavailable" in caplog.text


def test_a_throttled_write_is_a_warning(table, dynamodb_client, monkeypatch, caplog):
    def refuse(**_):
        raise dynamodb_client.exceptions.ProvisionedThroughputExceededException(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "PutItem"
        )

    monkeypatch.setattr(dynamodb_client, "put_item", refuse)
    table.record("nightly", 100, NOW, state="SUCCESSFUL")

    assert table.runs("nightly") == []
    assert "Duration history unavailable" in caplog.text


def test_the_template_table_accepts_what_the_adapter_writes():
    with LocalStack() as stack:
        name = stack.resources["DurationHistoryTable"]
        deployed = DurationHistory(name, stack.client("dynamodb"))
        deployed.record("nightly", 300, NOW, state="SUCCESSFUL")
        deployed.record("nightly", 20, NOW, state="FAILED")
        deployed.record("nightly", 320, NOW, state="SUCCESSFUL")

        assert deployed.expected_seconds("nightly") == 310.0
        assert history.MIN_SAMPLES == 2

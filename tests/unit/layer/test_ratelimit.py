"""ratelimit: the stack-wide IICS request budget, one DynamoDB counter per clock second (moto)."""

from __future__ import annotations

import pytest
from moto import mock_aws

from iics_monitor.client import IicsClient
from iics_monitor.credentials import Credentials
from iics_monitor.errors import Throttled
from iics_monitor.ratelimit import MAX_WAIT_SECONDS, RequestBudget
from tests.conftest import EMULATOR_HOSTS, PASSWORD, USERNAME
from tests.unit.layer.conftest import create_table_from_template

TABLE = "request-budget"
T0 = 1_795_000_000.25  # a clock second, a quarter in


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now, self.slept = now, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def table(dynamodb_client):
    with mock_aws():
        create_table_from_template(dynamodb_client, "RequestBudgetTable", TABLE)
        yield dynamodb_client


def counters(client) -> dict[int, int]:
    items = client.scan(TableName=TABLE)["Items"]
    return {int(i["second"]["N"]): int(i["requests"]["N"]) for i in items}


def test_requests_within_the_budget_go_at_once(table):
    clock = Clock()
    budget = RequestBudget(TABLE, 3, table, clock=clock, sleep=clock.sleep)

    for _ in range(3):
        budget.take()

    assert clock.slept == [] and counters(table) == {int(T0): 3}


def test_a_request_over_the_budget_waits_for_the_next_second(table):
    clock = Clock()
    budget = RequestBudget(TABLE, 2, table, clock=clock, sleep=clock.sleep)

    for _ in range(5):
        budget.take()

    assert counters(table) == {int(T0): 2, int(T0) + 1: 2, int(T0) + 2: 1}
    assert all(0.75 <= s <= 0.95 + 0.2 for s in clock.slept[:1])  # to the next second, plus a little spread


def test_a_budget_that_stays_full_is_throttled_without_reaching_iics(table):
    clock = Clock()
    budget = RequestBudget(TABLE, 1, table, clock=clock, sleep=clock.sleep)
    other_executions = RequestBudget(TABLE, 1, table, clock=clock, sleep=lambda s: None)
    budget.take()

    def full_every_second(seconds: float) -> None:
        clock.sleep(seconds)
        other_executions._took_slot(int(clock.now))  # someone else always takes the next slot first

    budget._sleep = full_every_second
    with pytest.raises(Throttled) as caught:
        budget.take()

    assert caught.value.retry_after >= 1
    assert sum(clock.slept) <= MAX_WAIT_SECONDS
    assert all(n <= 1 for n in counters(table).values())


def test_a_budget_table_that_cannot_answer_lets_the_request_go(dynamodb_client, caplog):
    with mock_aws():
        RequestBudget("no-such-table", 1, dynamodb_client).take()  # does not raise

    assert "IICS request budget unavailable" in caplog.text


def test_the_client_takes_a_slot_before_every_request_to_iics(emulator):
    emulator.add_reference_job(states=["IN_PROGRESS"])
    taken: list[int] = []
    credentials = Credentials(username=USERNAME, password=PASSWORD, login_url=emulator.url)
    client = IicsClient(
        lambda: credentials, hosts=EMULATOR_HOSTS, before_request=lambda: taken.append(len(emulator.requests))
    )

    client.get_status("7evG9CokA1whk8ehF3opKM")
    client.get_status("7evG9CokA1whk8ehF3opKM")

    assert taken == [0, 1, 2]  # login, status, status: each slot taken before its request


def test_a_throttled_budget_stops_the_request_before_it_is_sent(emulator):
    credentials = Credentials(username=USERNAME, password=PASSWORD, login_url=emulator.url)

    def full() -> None:
        raise Throttled("budget used up", retry_after=1)

    with pytest.raises(Throttled):
        IicsClient(lambda: credentials, hosts=EMULATOR_HOSTS, before_request=full).get_status("7evG9CokA1whk8ehF3opKM")

    assert emulator.requests == []

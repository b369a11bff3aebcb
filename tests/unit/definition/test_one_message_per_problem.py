"""One message on the alert topic per problem, by default: what each problem puts in CloudWatch and on
the bus, played through the deployed template's rules and alarms.

A problem here is what happens within one alarm period: outcome events (each run through every rule's
pattern: the alert rule's target publishes one message to the topic, the ERROR rule's queue counts one
message sent) and execution endings (``AWS/States`` counts). How an ERROR outcome's execution ends is
read from the state machine definition. Each alarm is evaluated on those sums, a metric math alarm on
its expression; one that breaches sends one message to its action.
"""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest
from moto.events.models import EventPattern

from tests.conftest import ROOT, load_event
from tests.unit.definition.test_template_hardening import deploy

ASL = json.loads((ROOT / "statemachine" / "export_monitor.asl.json").read_text())["States"]
ALERT_TOPIC = {"Ref": "AlertTopic"}
ON_CALL = "arn:aws:sns:us-east-1:123456789012:on-call"


def error_execution_status() -> str:
    """How an execution that emitted an ERROR outcome ends, following the definition from EmitOutcome."""
    name = ASL["EmitOutcome"]["Next"]
    while ASL[name]["Type"] == "Choice":
        state = ASL[name]
        name = next((c["Next"] for c in state["Choices"] if c.get("StringEquals") == "ERROR"), state.get("Default"))
    return {"Fail": "FAILED", "Succeed": "SUCCEEDED"}[ASL[name]["Type"]]


def _key(namespace: str, metric: str, dimensions: list[dict]) -> tuple:
    return namespace, metric, json.dumps(sorted((d["Name"], d["Value"]) for d in dimensions), sort_keys=True)


class Account:
    """The deployed stack's rules and alarms, and what reached the alert topic."""

    def __init__(self, parameters: dict[str, str]) -> None:
        self.resources = deploy(parameters)["Resources"]
        self.datapoints: Counter = Counter()
        self.topic_messages = 0

    def outcome(self, sample: str) -> None:
        event = load_event(sample)
        for rule in self._of_type("AWS::Events::Rule"):
            if not EventPattern.load(json.dumps(rule["EventPattern"])).matches_event(event):
                continue
            for target in rule["Targets"]:
                self._deliver(target["Arn"])
        if event["detail"]["state"] == "ERROR":
            self.execution_ended(error_execution_status())

    def execution_ended(self, status: str) -> None:
        if status != "SUCCEEDED":
            metric = {"FAILED": "ExecutionsFailed", "TIMED_OUT": "ExecutionsTimedOut"}[status]
            dimensions = [{"Name": "StateMachineArn", "Value": {"Ref": "ExportMonitorStateMachine"}}]
            self.datapoints[_key("AWS/States", metric, dimensions)] += 1

    def _deliver(self, arn: dict) -> None:
        (logical_id, _attribute) = arn["Fn::GetAtt"]
        kind = self.resources[logical_id]["Type"]
        if logical_id == "NotifyTopicFunction":  # it publishes each alert to the alert topic
            self.topic_messages += 1
        elif kind == "AWS::SQS::Queue":
            queue = {"Fn::GetAtt": [logical_id, "QueueName"]}
            self.datapoints[_key("AWS/SQS", "NumberOfMessagesSent", [{"Name": "QueueName", "Value": queue}])] += 1

    def alarms_to_the_topic(self) -> list[str]:
        fired = [
            logical_id
            for logical_id, resource in self.resources.items()
            if resource["Type"] == "AWS::CloudWatch::Alarm" and self._breaches(resource["Properties"])
        ]
        return [i for i in fired if self.resources[i]["Properties"]["AlarmActions"] == [ALERT_TOPIC]]

    def messages_on_the_alert_topic(self) -> int:
        return self.topic_messages + len(self.alarms_to_the_topic())

    def _of_type(self, kind: str) -> list[dict]:
        return [r["Properties"] for r in self.resources.values() if r["Type"] == kind]

    def _breaches(self, alarm: dict) -> bool:
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["TreatMissingData"] == "notBreaching"
        if "Metrics" in alarm:
            value = self._expression(alarm["Metrics"])
        else:  # Sum of what the problem counted; a metric it does not touch (dead letters) stays at 0
            value = self.datapoints[_key(alarm["Namespace"], alarm["MetricName"], alarm.get("Dimensions", []))]
        return value > alarm["Threshold"]

    def _expression(self, metrics: list[dict]) -> float:
        """A metric math alarm: Sum statistics, combined by FILL(id, 0), + and -."""
        values = {}
        for query in metrics:
            if "MetricStat" in query:
                stat = query["MetricStat"]
                assert stat["Stat"] == "Sum"
                metric = stat["Metric"]
                values[query["Id"]] = self.datapoints[
                    _key(metric["Namespace"], metric["MetricName"], metric.get("Dimensions", []))
                ]
        (returned,) = [q for q in metrics if q.get("ReturnData", True)]
        text = re.sub(r"FILL\((\w+),\s*0\)", r"\1", returned["Expression"])
        assert re.fullmatch(r"\w+( [+-] \w+)*", text), returned["Expression"]
        terms = re.findall(r"([+-]?) ?(\w+)", text)
        return sum(-values[name] if sign == "-" else values[name] for sign, name in terms)


@pytest.fixture
def account() -> Account:
    return Account({})


def test_one_error_outcome_sends_one_message_to_the_alert_topic(account):
    account.outcome("outcome-error.json")

    assert account.alarms_to_the_topic() == []
    assert account.messages_on_the_alert_topic() == 1  # the alert, which says what went wrong


@pytest.mark.parametrize(
    "sample", ["outcome-failed.json", "outcome-timed-out.json", "outcome-successful-with-failed-objects.json"]
)
def test_every_other_alerting_outcome_sends_one_message(account, sample):
    account.outcome(sample)

    assert account.messages_on_the_alert_topic() == 1


def test_a_failed_execution_without_an_outcome_sends_one_message_its_alarm(account):
    account.execution_ended("FAILED")

    assert account.alarms_to_the_topic() == ["ExecutionsFailedAlarm"]
    assert account.messages_on_the_alert_topic() == 1


def test_several_error_outcomes_in_a_period_add_one_alarm_for_the_common_cause(account):
    for _ in range(3):
        account.outcome("outcome-error.json")

    assert account.alarms_to_the_topic() == ["ErrorOutcomeAlarm"]
    assert account.messages_on_the_alert_topic() == 3 + 1


def test_two_error_outcomes_stay_two_alerts(account):
    for _ in range(2):
        account.outcome("outcome-error.json")

    assert account.messages_on_the_alert_topic() == 2


def test_with_an_alarm_topic_the_alarms_leave_the_alert_topic_to_the_alerts():
    account = Account({"AlarmTopicArn": ON_CALL})
    for _ in range(3):
        account.outcome("outcome-error.json")
    account.execution_ended("FAILED")

    assert account.messages_on_the_alert_topic() == 3

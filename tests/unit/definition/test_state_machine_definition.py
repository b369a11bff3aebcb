"""The ASL and the template agree with the code: error names, substitutions, retry policy."""

from __future__ import annotations

import json
import re

from samtranslator.yaml_helper import yaml_parse

from iics_monitor.errors import MONITOR_ERROR_NAMES
from iics_monitor.outcome import SCHEMA_MINOR_VERSION, build_outcome
from tests.conftest import ROOT

ASL_TEXT = (ROOT / "statemachine" / "export_monitor.asl.json").read_text()
ASL = json.loads(ASL_TEXT)
TEMPLATE = yaml_parse((ROOT / "template.yaml").read_text())
LAMBDA_TASKS = ["CheckStatus", "ArchiveLog"]


def test_definition_is_jsonpath_not_jsonata():
    assert "QueryLanguage" not in ASL_TEXT
    assert all(state.get("QueryLanguage", "JSONPath") == "JSONPath" for state in ASL["States"].values())


def test_every_monitor_error_is_caught_and_turned_into_an_error_outcome():
    for name in LAMBDA_TASKS:
        first, last = ASL["States"][name]["Catch"]
        assert sorted(first["ErrorEquals"]) == sorted(MONITOR_ERROR_NAMES)
        assert first["Next"] == "ReadErrorCause"
        assert last["ErrorEquals"] == ["States.ALL"] and last["Next"] == "DescribeUnexpectedError"


def catches(states: dict) -> list[dict]:
    return [catch for state in states.values() for catch in state.get("Catch", [])]


def test_no_stack_trace_or_unexpected_cause_reaches_an_outcomes_reason():
    """A Lambda error's Cause carries the runtime's stackTrace. Only a monitor error's Cause is read,
    and of it only errorMessage (the error's scrubbed text); anything else is named by its Error alone."""
    states = ASL["States"]
    readers = {name for name, state in states.items() if "$.error.Cause" in json.dumps(state)}
    assert readers == {"ReadErrorCause"}
    for catch in catches(states):
        if catch["Next"] == "ReadErrorCause":
            assert set(catch["ErrorEquals"]) <= set(MONITOR_ERROR_NAMES)
    assert states["BuildErrorOutcome"]["Parameters"]["detail"]["reason.$"] == "$.failure.cause.errorMessage"
    unexpected = json.dumps(states["DescribeUnexpectedError"]["Parameters"])
    assert "Cause" not in unexpected and "$.error.Error" in unexpected


def test_lambda_service_errors_are_retried_with_backoff_and_full_jitter():
    for name in LAMBDA_TASKS:
        (retry,) = ASL["States"][name]["Retry"]
        assert "Lambda.ServiceException" in retry["ErrorEquals"]
        assert "Lambda.TooManyRequestsException" in retry["ErrorEquals"]
        assert retry["JitterStrategy"] == "FULL" and retry["BackoffRate"] >= 2 and retry["MaxAttempts"] >= 3


def test_substitutions_in_the_definition_are_exactly_those_the_template_provides():
    placeholders = set(re.findall(r"\$\{(\w+)\}", ASL_TEXT))
    state_machine = TEMPLATE["Resources"]["ExportMonitorStateMachine"]["Properties"]
    assert state_machine["DefinitionUri"] == "statemachine/export_monitor.asl.json"
    assert placeholders == set(state_machine["DefinitionSubstitutions"])


def test_outcome_is_emitted_with_the_direct_putevents_integration():
    emit = ASL["States"]["EmitOutcome"]
    assert emit["Resource"] == "arn:aws:states:::events:putEvents"
    (entry,) = emit["Parameters"]["Entries"]
    assert entry["Source"] == "iics.export.monitor"
    assert entry["DetailType"] == "IICS Export Job State Change"


def test_error_outcome_has_every_field_the_schema_requires():
    schema = json.loads((ROOT / "events" / "outcome.schema.json").read_text())
    built = {key.removesuffix(".$") for key in ASL["States"]["BuildErrorOutcome"]["Parameters"]["detail"]}
    assert set(schema["required"]) <= built
    assert set(built) <= set(schema["properties"])


def test_trigger_rule_matches_the_upstream_event():
    events = TEMPLATE["Resources"]["StartMonitorFunction"]["Properties"]["Events"]
    pattern = events["ExportSubmitted"]["Properties"]["Pattern"]
    trigger = json.loads((ROOT / "events" / "trigger.json").read_text())
    assert pattern == {"source": [trigger["source"]], "detail-type": [trigger["detail-type"]]}


def test_error_outcome_has_the_same_fields_and_minor_version_as_every_other_outcome():
    built = ASL["States"]["BuildErrorOutcome"]["Parameters"]["detail"]
    other = build_outcome(
        job_id="J1", state="FAILED", poll={}, status=None, log=None, log_error="x", reason=None, execution_arn=None
    )
    assert {key.removesuffix(".$") for key in built} == set(other)
    assert built["schemaMinorVersion"] == SCHEMA_MINOR_VERSION
    assert built["warning"] is None


def test_an_outcome_eventbridge_refuses_is_kept_in_the_queue_the_alarm_watches():
    states = ASL["States"]
    (catch,) = states["EmitOutcome"]["Catch"]
    assert catch["ErrorEquals"] == ["States.ALL"] and catch["Next"] == "KeepUndeliveredOutcome"
    keep = states["KeepUndeliveredOutcome"]
    assert keep["Resource"] == "arn:aws:states:::sqs:sendMessage"
    body = keep["Parameters"]["MessageBody"]
    emitted = states["EmitOutcome"]["Parameters"]["Entries"][0]
    assert body == {k: v for k, v in emitted.items() if k != "EventBusName"}  # the entry it would have sent
    queue = keep["Parameters"]["QueueUrl"].removeprefix("${").removesuffix("}")
    resources = TEMPLATE["Resources"]
    substitutions = resources["ExportMonitorStateMachine"]["Properties"]["DefinitionSubstitutions"]
    assert substitutions[queue] == {"Ref": "UndeliveredOutcomeQueue"}
    alarm = resources["UndeliveredOutcomeAlarm"]["Properties"]
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["UndeliveredOutcomeQueue", "QueueName"]}}
    ]
    assert (alarm["MetricName"], alarm["Threshold"]) == ("ApproximateNumberOfMessagesVisible", 0)


def test_the_door_comes_first_and_its_refusal_never_reaches_iics():
    states = ASL["States"]
    # a rule guarded by IsPresent (And) is named by its first variable
    choices = {c.get("Variable") or c["And"][0]["Variable"]: c["Next"] for c in states[ASL["StartAt"]]["Choices"]}
    # a refused import (or a further org's job) is reported as one: its refusal says its kind and org
    assert choices == {
        "$.refused.promotion": "BuildPromotionOutcome",  # a refused promotion: one promotion outcome says why
        "$.refused.kind": "ReportJobRefusal",
        "$.refused": "ReportRefusal",
        "$.request": "StartPolling",
    }
    assert states[ASL["StartAt"]]["Default"] == "AcceptInput"
    assert states["AcceptInput"]["ResultPath"] == "$" and states["AcceptInput"]["OutputPath"] == "$.Payload"
    assert states["ReportRefusal"]["Next"] == "BuildErrorOutcome"
    assert states["ReportJobRefusal"]["Next"] == "BuildJobErrorOutcome"

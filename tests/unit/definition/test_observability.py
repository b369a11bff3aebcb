"""The dashboard and alarms in template.yaml show what the code really emits, and the docs say so.

Metric names come from the source itself (every ``metrics.add_metric(name=...)`` in the layer and
the functions), so a renamed metric cannot leave a widget or an alarm watching nothing; and every
metric the code emits is on the dashboard and in docs/observability.md.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator

import pytest
from moto.events.models import EventPattern
from samtranslator.yaml_helper import yaml_parse

from bench.cost import emitted_metrics
from iics_monitor.finish import _FINAL_STATES
from tests.conftest import ROOT, load_event
from tests.unit.definition.test_template_hardening import deploy

TEMPLATE = yaml_parse((ROOT / "template.yaml").read_text())
RESOURCES = TEMPLATE["Resources"]
GLOBAL_ENV = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
NAMESPACE = GLOBAL_ENV["POWERTOOLS_METRICS_NAMESPACE"]
SERVICE = GLOBAL_ENV["POWERTOOLS_SERVICE_NAME"]
DOC = (ROOT / "docs" / "observability.md").read_text()
SOURCES = sorted([*(ROOT / "layers" / "iics_monitor" / "python").rglob("*.py"), *(ROOT / "functions").rglob("*.py")])
ALARM_ACTIONS = [{"Fn::If": ["HasAlarmTopic", {"Ref": "AlarmTopicArn"}, {"Ref": "AlertTopic"}]}]
STATE_MACHINE = {"Ref": "ExportMonitorStateMachine"}


# --- what the code emits and logs ------------------------------------------------------------------


def _calls(*methods: str) -> Iterator[ast.Call]:
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in methods:
                yield node


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


# The metric names the code can publish, read as the cost bench reads them (bench/cost.py).
EMITTED = {metric.name for metric in emitted_metrics()}


def emitted(name: str) -> bool:
    return name in EMITTED


def logged_extra_keys() -> set[str]:
    """The keys of every ``extra={...}`` a ``logger`` call adds to its log line."""
    return {
        key.value
        for call in _calls("debug", "info", "warning", "error", "exception", "critical")
        if isinstance(call.func.value, ast.Name) and call.func.value.id == "logger"
        for extra in [_keyword(call, "extra")]
        if isinstance(extra, ast.Dict)
        for key in extra.keys
        if isinstance(key, ast.Constant)
    }


# --- the dashboard, with its !Sub resolved ----------------------------------------------------------

DASHBOARD = RESOURCES["ObservabilityDashboard"]["Properties"]
BODY_TEXT, SUB_VARIABLES = DASHBOARD["DashboardBody"]["Fn::Sub"]


def _resolve(match: re.Match) -> str:
    """${AWS::Region}, ${Parameter}, ${Resource} and ${Resource.Attribute}, as CloudFormation would
    resolve them, each to a value that names what it came from; an unknown name fails."""
    name = match.group(1)
    if name.startswith("AWS::"):
        assert name in {"AWS::Region", "AWS::AccountId", "AWS::Partition", "AWS::StackName", "AWS::URLSuffix"}
        return f"pseudo:{name}"
    if name in SUB_VARIABLES:
        return f"variable:{name}"
    logical_id, _, attribute = name.partition(".")
    assert logical_id in RESOURCES or logical_id in TEMPLATE["Parameters"], f"${{{name}}} names nothing"
    return f"getatt:{logical_id}.{attribute}" if attribute else f"ref:{logical_id}"


BODY = json.loads(re.sub(r"\$\{([^}]+)\}", _resolve, BODY_TEXT))
WIDGETS = BODY["widgets"]
METRIC_WIDGETS = {w["properties"]["title"]: w["properties"] for w in WIDGETS if w["type"] == "metric"}


def metric_rows(properties: dict) -> list[tuple[str, str, dict[str, str], dict]]:
    """(namespace, metric, dimensions, options) of every line of a metric widget."""
    rows = []
    for row in properties["metrics"]:
        options = row[-1] if isinstance(row[-1], dict) else {}
        fields = row[:-1] if options else row
        assert "." not in fields, "write every field out: the tests read them"
        namespace, metric, *dimensions = fields
        rows.append((namespace, metric, dict(zip(dimensions[::2], dimensions[1::2], strict=True)), options))
    return rows


ALL_ROWS = [row for properties in METRIC_WIDGETS.values() for row in metric_rows(properties)]


def test_the_dashboard_body_is_json_once_its_names_are_resolved():
    assert BODY["widgets"] and set(SUB_VARIABLES) == {"NotifySlackFunctionName"}
    for widget in WIDGETS:
        assert widget["type"] in {"text", "alarm", "metric"}
        if widget["type"] == "metric":
            assert widget["properties"]["region"] == "pseudo:AWS::Region"


def test_widgets_fit_the_grid_without_overlapping():
    cells = set()
    for widget in WIDGETS:
        assert widget["x"] + widget["width"] <= 24
        columns = range(widget["x"], widget["x"] + widget["width"])
        area = {(x, y) for x in columns for y in range(widget["y"], widget["y"] + widget["height"])}
        assert not cells & area, widget.get("properties", {}).get("title")
        cells |= area


def test_every_monitor_metric_on_the_dashboard_is_one_the_code_emits():
    shown = {metric for namespace, metric, _, _ in ALL_ROWS if namespace == NAMESPACE}
    assert shown, "no metric of the monitor's namespace on the dashboard"
    assert not {metric for metric in shown if not emitted(metric)}


def test_every_metric_the_code_emits_is_on_the_dashboard():
    shown = {metric for namespace, metric, _, _ in ALL_ROWS if namespace == NAMESPACE}
    assert shown >= EMITTED


def test_monitor_metrics_carry_the_service_dimension_powertools_adds():
    for namespace, metric, dimensions, _ in ALL_ROWS:
        if namespace == NAMESPACE:
            assert dimensions == {"service": SERVICE}, metric


def test_jobs_by_outcome_shows_each_final_state_and_error_outcomes():
    rows = metric_rows(METRIC_WIDGETS["Jobs by outcome"])
    labels = {options["label"]: (namespace, metric, dimensions) for namespace, metric, dimensions, options in rows}
    assert set(labels) == {*_FINAL_STATES, "ERROR"}
    for state in _FINAL_STATES:
        assert labels[state] == (NAMESPACE, "Outcome" + state.title().replace("_", ""), {"service": SERVICE})
    assert labels["ERROR"] == ("AWS/SQS", "NumberOfMessagesSent", {"QueueName": "getatt:ErrorOutcomeQueue.QueueName"})


def test_detection_delay_shows_average_p95_and_max():
    rows = metric_rows(METRIC_WIDGETS["Detection delay: job end to archive step (seconds)"])
    assert {metric for _, metric, _, _ in rows} == {"DetectionDelay"}
    assert sorted(options["stat"] for *_, options in rows) == ["Average", "Maximum", "p95"]


def test_step_functions_widget_shows_every_ending_of_the_monitors_executions():
    rows = metric_rows(METRIC_WIDGETS["Step Functions executions"])
    assert {metric for _, metric, _, _ in rows} == {
        f"Executions{kind}" for kind in ("Started", "Succeeded", "Failed", "TimedOut", "Aborted")
    }
    assert all(namespace == "AWS/States" for namespace, *_ in rows)
    assert all(dimensions == {"StateMachineArn": "ref:ExportMonitorStateMachine"} for _, _, dimensions, _ in rows)
    assert RESOURCES["ExportMonitorStateMachine"]["Type"] == "AWS::Serverless::StateMachine"


@pytest.mark.parametrize("metric", ["Errors", "Throttles", "Duration"])
def test_lambda_widgets_show_every_function_of_the_template(metric):
    (properties,) = [p for p in METRIC_WIDGETS.values() if {m for _, m, _, _ in metric_rows(p)} == {metric}]
    shown = [dimensions["FunctionName"] for namespace, _, dimensions, _ in metric_rows(properties)]
    assert all(namespace == "AWS/Lambda" for namespace, *_ in metric_rows(properties))
    functions = {i for i, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"}
    always = {i for i in functions if "Condition" not in RESOURCES[i]}
    assert sorted(shown) == sorted([f"ref:{i}" for i in always] + ["variable:NotifySlackFunctionName"])
    # The Slack notifier exists only with a webhook; without it, the lines name no function.
    assert RESOURCES["NotifySlackFunction"]["Condition"] == "HasSlack"
    assert functions - always == {"NotifySlackFunction"}
    assert SUB_VARIABLES["NotifySlackFunctionName"]["Fn::If"][:2] == ["HasSlack", {"Ref": "NotifySlackFunction"}]


def test_the_alarm_widget_shows_every_alarm():
    (widget,) = [w for w in WIDGETS if w["type"] == "alarm"]
    alarms = {i for i, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    arn = "arn:pseudo:AWS::Partition:cloudwatch:pseudo:AWS::Region:pseudo:AWS::AccountId:alarm:ref:{}"
    assert sorted(widget["properties"]["alarms"]) == sorted(arn.format(i) for i in alarms)


def test_the_dashboard_and_its_url_are_outputs():
    outputs = TEMPLATE["Outputs"]
    assert outputs["DashboardName"]["Value"] == {"Ref": "ObservabilityDashboard"}
    assert "${ObservabilityDashboard}" in outputs["DashboardUrl"]["Value"]["Fn::Sub"]


# --- alarms ---------------------------------------------------------------------------------------

ALARMS = {i: r["Properties"] for i, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
ERROR_OUTCOMES = ("AWS/SQS", "NumberOfMessagesSent", {"QueueName": {"Fn::GetAtt": ["ErrorOutcomeQueue", "QueueName"]}})
# Alarms on one metric; ExecutionsFailedAlarm is metric math (test_failed_executions_alarm_only_without_an_outcome).
OBSERVABILITY_ALARMS = {
    "ExecutionsTimedOutAlarm": ("AWS/States", "ExecutionsTimedOut", {"StateMachineArn": STATE_MACHINE}),
    "ExecutionsAbortedAlarm": ("AWS/States", "ExecutionsAborted", {"StateMachineArn": STATE_MACHINE}),
    "ErrorOutcomeAlarm": ERROR_OUTCOMES,
    "LogArchiveFailuresAlarm": (NAMESPACE, "LogArchiveFailures", {"service": SERVICE}),
    "PackageArchiveFailuresAlarm": (NAMESPACE, "PackageArchiveFailures", {"service": SERVICE}),
    "IicsThrottlingAlarm": (NAMESPACE, "IicsThrottled", {"service": SERVICE}),
}


# The rate alarm: more than this many ERROR outcomes in its period (one ERROR is its job's alert).
THRESHOLDS = {"ErrorOutcomeAlarm": 2}
MONITOR_ALARMS = sorted([*OBSERVABILITY_ALARMS, "ExecutionsFailedAlarm"])


def _watched(query: dict) -> tuple[str, str, dict]:
    metric = query.get("MetricStat", {}).get("Metric", query)
    return metric["Namespace"], metric["MetricName"], {d["Name"]: d["Value"] for d in metric["Dimensions"]}


@pytest.mark.parametrize("logical_id", sorted(OBSERVABILITY_ALARMS))
def test_each_alarm_watches_its_metric(logical_id):
    alarm = ALARMS[logical_id]
    assert _watched(alarm) == OBSERVABILITY_ALARMS[logical_id]
    assert (alarm["Statistic"], alarm["Threshold"]) == ("Sum", THRESHOLDS.get(logical_id, 0))


@pytest.mark.parametrize("logical_id", MONITOR_ALARMS)
def test_each_alarm_notifies_the_alarm_topic_and_says_what_to_do(logical_id):
    alarm = ALARMS[logical_id]
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    # These metrics are published only when something happens: no data means nothing happened.
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == ALARM_ACTIONS
    assert len(alarm["AlarmDescription"].split()) >= 30 and "docs/observability.md" in alarm["AlarmDescription"]
    assert logical_id in DOC


def test_failed_executions_alarm_only_without_an_outcome():
    """Every ERROR outcome fails its execution after it is out (WasItAnError -> MonitorFailed): the alarm
    counts failed executions minus ERROR outcomes, each missing data point as 0."""
    alarm = ALARMS["ExecutionsFailedAlarm"]
    queries = {query["Id"]: query for query in alarm["Metrics"]}
    (returned,) = [q for q in queries.values() if q.get("ReturnData", True)]
    assert returned["Expression"] == "FILL(failed, 0) - FILL(errorOutcomes, 0)"
    assert _watched(queries["failed"]) == ("AWS/States", "ExecutionsFailed", {"StateMachineArn": STATE_MACHINE})
    assert _watched(queries["errorOutcomes"]) == ERROR_OUTCOMES
    assert {queries[i]["MetricStat"]["Stat"] for i in ("failed", "errorOutcomes")} == {"Sum"}
    assert queries["failed"]["MetricStat"]["Period"] == queries["errorOutcomes"]["MetricStat"]["Period"]
    assert alarm["Threshold"] == 0


def test_monitor_metric_alarms_watch_metrics_the_code_emits():
    for logical_id, (namespace, metric, _) in OBSERVABILITY_ALARMS.items():
        if namespace == NAMESPACE:
            assert emitted(metric), logical_id


def test_throttling_alarms_only_when_it_lasts():
    alarm = ALARMS["IicsThrottlingAlarm"]
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] >= 3
    assert alarm["Period"] * alarm["EvaluationPeriods"] >= 900


def test_alarms_notify_the_alert_topic_unless_an_alarm_topic_is_given():
    topic = "arn:aws:sns:eu-west-1:123456789012:on-call"
    for parameters, action in (({}, {"Ref": "AlertTopic"}), ({"AlarmTopicArn": topic}, {"Ref": "AlarmTopicArn"})):
        resources = deploy(parameters | {"Observability": "Full"})["Resources"]
        for logical_id in MONITOR_ALARMS:
            assert resources[logical_id]["Properties"]["AlarmActions"] == [action]


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        ("arn:aws:sns:eu-west-1:123456789012:on-call", True),
        ("arn:aws-us-gov:sns:us-gov-west-1:123456789012:on_call-2", True),
        ("on-call", False),
        ("arn:aws:sns:eu-west-1:123456789012:alerts.fifo", False),  # alarms cannot publish to FIFO topics
        ("arn:aws:sqs:eu-west-1:123456789012:on-call", False),
        ("arn:aws:sns:eu-west-1:123456789012:on-call:4f1c0e52-0b5a-4d5c-9a1e-1c8e6f0f1a2b", False),
    ],
)
def test_the_alarm_topic_parameter_takes_an_sns_topic_arn_or_nothing(value, accepted):
    parameter = TEMPLATE["Parameters"]["AlarmTopicArn"]
    assert parameter["Default"] == ""
    assert bool(re.fullmatch(parameter["AllowedPattern"], value)) is accepted
    assert TEMPLATE["Conditions"]["HasAlarmTopic"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]}


# --- Observability: Minimal (default) and Full -------------------------------------------------------

FULL_ONLY = {"LogArchiveFailuresAlarm", "PackageArchiveFailuresAlarm", "IicsThrottlingAlarm", "ObservabilityDashboard"}


def _custom_metrics_read(resource: dict) -> set[str]:
    """The monitor's own (custom) metrics an alarm reads."""
    queries = resource["Properties"].get("Metrics") or [resource["Properties"]]
    return {n for namespace, n, _ in (_watched(q) for q in queries if "Expression" not in q) if namespace == NAMESPACE}


def test_the_functions_know_the_mode():
    assert GLOBAL_ENV["OBSERVABILITY"] == {"Ref": "Observability"}
    assert TEMPLATE["Parameters"]["Observability"]["AllowedValues"] == ["Minimal", "Full"]
    assert TEMPLATE["Conditions"]["HasFullObservability"] == {"Fn::Equals": [{"Ref": "Observability"}, "Full"]}


def test_minimal_is_the_default_and_keeps_the_systemic_alarms_and_no_dashboard():
    assert TEMPLATE["Parameters"]["Observability"]["Default"] == "Minimal"
    resources = deploy({})["Resources"]
    alarms = {i for i, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}

    assert not FULL_ONLY & set(resources)
    assert alarms == set(ALARMS) - FULL_ONLY
    # What is left reads AWS's own metrics, or the outcome metrics Minimal still publishes.
    kept = {m.name for m in emitted_metrics() if m.minimal}
    assert all(_custom_metrics_read(resources[i]) <= kept for i in alarms)


def test_the_alarms_minimal_leaves_out_read_metrics_only_full_publishes():
    kept = {m.name for m in emitted_metrics() if m.minimal}
    for logical_id in FULL_ONLY - {"ObservabilityDashboard"}:
        assert RESOURCES[logical_id]["Condition"] == "HasFullObservability"
        assert _custom_metrics_read(RESOURCES[logical_id]) - kept


def test_full_deploys_every_alarm_the_dashboard_and_its_outputs():
    resources = deploy({"Observability": "Full"})["Resources"]
    assert FULL_ONLY <= set(resources)
    for output in ("DashboardName", "DashboardUrl"):
        assert TEMPLATE["Outputs"][output]["Condition"] == "HasFullObservability"


# --- counting ERROR outcomes ---------------------------------------------------------------------

ERROR_RULE = RESOURCES["ErrorOutcomeRule"]["Properties"]


@pytest.mark.parametrize(
    "sample",
    sorted(p.name for p in (ROOT / "events").glob("outcome-*.json")),
)
def test_the_error_rule_matches_error_outcomes_and_nothing_else(sample):
    event = load_event(sample)
    matches = EventPattern.load(json.dumps(ERROR_RULE["EventPattern"])).matches_event(event)
    assert matches is (event["detail"]["state"] == "ERROR")


def test_the_error_rule_listens_where_the_state_machine_emits_and_feeds_its_queue():
    asl = json.loads((ROOT / "statemachine" / "export_monitor.asl.json").read_text())
    (entry,) = asl["States"]["EmitOutcome"]["Parameters"]["Entries"]
    substitutions = RESOURCES["ExportMonitorStateMachine"]["Properties"]["DefinitionSubstitutions"]
    assert entry["EventBusName"] == "${EventBusName}"
    assert ERROR_RULE["EventBusName"] == substitutions["EventBusName"] == {"Ref": "EventBusName"}
    assert ERROR_RULE["EventPattern"]["source"] == [entry["Source"]]
    (import_entry,) = asl["States"]["EmitImportOutcome"]["Parameters"]["Entries"]
    assert ERROR_RULE["EventPattern"]["detail-type"] == [entry["DetailType"], import_entry["DetailType"]]
    (target,) = ERROR_RULE["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["ErrorOutcomeQueue", "Arn"]}


def test_only_the_error_rule_may_send_to_the_error_queue():
    policy = RESOURCES["ErrorOutcomeQueuePolicy"]["Properties"]
    assert policy["Queues"] == [{"Ref": "ErrorOutcomeQueue"}]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["ErrorOutcomeRule", "Arn"]}}}


def test_every_error_path_of_the_state_machine_ends_in_an_error_outcome_event():
    """What counting ERROR outcomes on the bus rests on: the state machine builds the ERROR outcome
    itself (no function sees them all), emits it, and only then fails the execution."""
    states = json.loads((ROOT / "statemachine" / "export_monitor.asl.json").read_text())["States"]
    assert states["BuildErrorOutcome"]["Parameters"]["detail"]["state"] == "ERROR"
    assert states["BuildErrorOutcome"]["Next"] == "EmitOutcome"
    assert states["MonitorFailed"]["Type"] == "Fail"
    into_fail = [name for name, state in states.items() if "MonitorFailed" in json.dumps(state)]
    assert into_fail == ["WasItAnError"]


# --- the docs -------------------------------------------------------------------------------------


def test_the_doc_describes_every_metric_the_code_emits():
    metrics_section = DOC.split("## Metrics (EMF)")[1].split("\n## ")[0]
    documented = set(re.findall(r"^\| `(\w+)` \|", metrics_section, re.MULTILINE))
    assert EMITTED <= documented
    assert not {name for name in documented if not emitted(name)}


def test_the_doc_describes_every_field_the_code_logs():
    assert {f"`{key}`" for key in logged_extra_keys()} <= set(re.findall(r"`\w+`", DOC))


def test_the_doc_describes_every_widget():
    for title in METRIC_WIDGETS:
        assert title in DOC, title

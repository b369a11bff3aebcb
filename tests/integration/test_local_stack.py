"""The local stack is the template, deployed: names, handlers, environment, layers, rules and
substitutions all come from template.yaml; events reach every kind of rule target."""

from __future__ import annotations

import json
import sys
import threading
import time

import boto3
import pytest
from samtranslator.yaml_helper import yaml_parse

from iics_monitor_local.stack import LocalStack
from tests.conftest import ROOT

TEMPLATE = yaml_parse((ROOT / "template.yaml").read_text())


@pytest.fixture
def stack():
    with LocalStack({"InitialWaitSeconds": 7, "ArchivePrefix": "audit/"}) as deployed:
        yield deployed


def function_config(stack: LocalStack, logical_id: str) -> dict:
    return stack.client("lambda").get_function(FunctionName=stack.resources[logical_id])["Configuration"]


def test_functions_are_configured_from_the_template_and_its_parameters(stack):
    check = function_config(stack, "CheckStatusFunction")
    archive = function_config(stack, "ArchiveLogFunction")

    template_check = TEMPLATE["Resources"]["CheckStatusFunction"]["Properties"]
    assert check["Handler"] == template_check["Handler"]
    assert check["Runtime"] == TEMPLATE["Globals"]["Function"]["Runtime"]
    variables = {k: str(v) for k, v in check["Environment"]["Variables"].items()}  # moto keeps Numbers as ints
    assert variables["DEFAULT_INITIAL_WAIT_SECONDS"] == "7"  # the override
    assert variables["DEFAULT_MAX_WAIT_SECONDS"] == "600"  # the default
    assert check["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == "iics-export-monitor"
    assert archive["Environment"]["Variables"]["ARCHIVE_BUCKET"] == stack.bucket
    assert archive["Environment"]["Variables"]["ARCHIVE_PREFIX"] == "audit/"
    assert archive["Timeout"] == TEMPLATE["Resources"]["ArchiveLogFunction"]["Properties"]["Timeout"]
    for config in (check, archive):
        (layer,) = config["Layers"]
        assert "MonitorLayer" in layer["Arn"]


def test_state_machine_runs_the_asl_with_the_templates_substitutions(stack):
    definition = stack.client("stepfunctions").describe_state_machine(stateMachineArn=stack.state_machine_arn)[
        "definition"
    ]

    assert "${" not in definition
    states = json.loads(definition)["States"]
    assert (
        states["CheckStatus"]["Parameters"]["FunctionName"]
        == function_config(stack, "CheckStatusFunction")["FunctionArn"]
    )
    assert states["EmitOutcome"]["Parameters"]["Entries"][0]["EventBusName"] == "default"


def test_trigger_rule_starts_one_execution_named_after_the_job(stack):
    stack.submit({"jobId": "abc123", "name": "nightly"})

    (execution,) = stack.executions()
    described = stack.wait(execution["executionArn"])
    assert execution["name"] == "abc123"
    execution_input = json.loads(described["input"])  # the validated request only, resolved settings included
    assert execution_input["request"] | {"monitor": None} == {"jobId": "abc123", "name": "nightly", "monitor": None}
    assert set(execution_input) == {"request", "submission"}


def test_events_reach_sns_and_its_subscribers_sqs_and_lambda_targets(stack):
    sns, sqs, events = stack.client("sns"), stack.client("sqs"), stack.client("events")
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="alert-subscriber")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    function_arn = function_config(stack, "CheckStatusFunction")["FunctionArn"]
    sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=function_arn)
    events.put_rule(Name="fan-out", EventPattern=json.dumps({"source": ["custom.test"]}))
    events.put_targets(Rule="fan-out", Targets=[{"Id": "topic", "Arn": topic}, {"Id": "function", "Arn": function_arn}])

    events.put_events(Entries=[{"Source": "custom.test", "DetailType": "Ping", "Detail": json.dumps({"n": 1})}])

    (message,) = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"]
    delivered = json.loads(json.loads(message["Body"])["Message"])
    assert delivered["detail"] == {"n": 1}
    deadline = time.monotonic() + 10  # the rule's Lambda target is invoked asynchronously, as in AWS
    while len(stack.lambda_invocations) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    from_rule = [i for i in stack.lambda_invocations if "detail" in i.event]
    from_topic = [i for i in stack.lambda_invocations if "Records" in i.event]
    assert [i.event["detail"] for i in from_rule] == [{"n": 1}]
    assert [json.loads(i.event["Records"][0]["Sns"]["Message"])["detail"] for i in from_topic] == [{"n": 1}]
    # the status check refuses events that are not its input, as it should
    assert {i.result["errorType"] for i in stack.lambda_invocations} == {"InvalidInput"}


def test_leaving_the_stack_stops_running_executions(emulator, monkeypatch):
    # An execution left running would go on in moto's threads after the mock is gone, and its
    # AWS calls would leave this machine with whatever credentials the environment holds.
    import botocore.httpsession

    from tests.conftest import PASSWORD, USERNAME

    escaped = []

    def record_instead_of_sending(session, request):
        escaped.append(request.url)
        raise botocore.exceptions.EndpointConnectionError(endpoint_url=request.url)

    job_id = emulator.add_job(states=["IN_PROGRESS"])
    with LocalStack({"InitialWaitSeconds": 1, "MaxWaitSeconds": 1}) as stack:
        stack.put_iics_secret(USERNAME, PASSWORD, emulator.url)
        arn = stack.start({"jobId": job_id})
        deadline = time.monotonic() + 10
        while not any(r.route == "status" for r in emulator.requests) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stack.client("stepfunctions").describe_execution(executionArn=arn)["status"] == "RUNNING"
        monkeypatch.setattr(botocore.httpsession.URLLib3Session, "send", record_instead_of_sending)

    time.sleep(1.5)  # longer than the wait between polls
    assert escaped == []


def test_conditions_on_number_parameters_hold_as_in_cloudformation():
    # GAP conditions: moto reads Number parameters as numbers; CloudFormation compares text
    with LocalStack() as defaults:
        assert "RequestBudgetTable" not in defaults.resources
        assert "DurationHistoryTable" in defaults.resources
    with LocalStack({"IicsRequestsPerSecond": 5}) as budgeted:
        assert "RequestBudgetTable" in budgeted.resources


def test_dynamodb_writes_from_many_containers_at_once_are_atomic_as_in_aws(stack):
    """Functions now run in parallel processes; moto's DynamoDB read-modify-writes without a lock, so
    concurrent UpdateItem ADDs were lost (the request budget counted 29 of 30 requests)."""
    table = stack.resources["SecretVerdictTable"]  # every stack has it
    key = {"secretVersion": {"S": "counter"}}

    def add_many() -> None:
        dynamodb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=stack.endpoint_url)
        for _ in range(100):
            dynamodb.update_item(  # as the request budget takes a slot
                TableName=table,
                Key=key,
                UpdateExpression="ADD requests :one SET expiresAt = :expires",
                ConditionExpression="attribute_not_exists(requests) OR requests < :limit",
                ExpressionAttributeValues={":one": {"N": "1"}, ":limit": {"N": "100000"}, ":expires": {"N": "1"}},
            )

    threads = [threading.Thread(target=add_many) for _ in range(10)]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns far more often: a race shows in one run, not one in fifty
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)

    item = stack.client("dynamodb").get_item(TableName=table, Key=key)["Item"]
    assert int(item["requests"]["N"]) == 1000

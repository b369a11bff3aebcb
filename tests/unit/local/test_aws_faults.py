"""Faults the local stack injects reach a function's boto3 over HTTP as the service's own error answer,
for the operation named and no other (aws_faults.Faults.middleware, in front of moto's server)."""

from __future__ import annotations

import json
import threading

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from werkzeug.serving import make_server

from iics_monitor_local.aws_faults import STATE_DATA_LIMIT_BYTES, Faults

NO_RETRIES = Config(retries={"total_max_attempts": 1})


def passed_through(environ, start_response):
    """Stands for moto: answers every request it is given with an empty success."""
    passed_through.seen.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], environ.get("QUERY_STRING", "")))
    start_response("200 OK", [("Content-Length", "0")])
    return [b""]


@pytest.fixture
def server():
    faults = Faults()
    passed_through.seen = []
    http = make_server("127.0.0.1", 0, faults.middleware(passed_through), threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield faults, f"http://127.0.0.1:{http.server_port}"
    http.shutdown()
    thread.join()


def client(service: str, url: str):
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=NO_RETRIES,
    )


def error_code(call) -> str:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]["Code"]


def test_an_s3_fault_strikes_its_own_operation_only_and_once(server):
    faults, url = server
    s3 = client("s3", url)
    faults.add("s3", "UploadPart", "SlowDown")

    s3.put_object(Bucket="b", Key="k/x", Body=b"1")  # same method and path as UploadPart: not struck
    assert error_code(lambda: s3.upload_part(Bucket="b", Key="k", UploadId="u", PartNumber=1, Body=b"x")) == "SlowDown"
    s3.upload_part(Bucket="b", Key="k", UploadId="u", PartNumber=2, Body=b"x")  # once only
    assert [method for method, _, _ in passed_through.seen] == ["PUT", "PUT"]


@pytest.mark.parametrize(
    ("service", "operation", "call"),
    [
        ("sns", "Publish", lambda c: c.publish(TopicArn="arn:aws:sns:us-east-1:123456789012:t", Message="m")),
        ("lambda", "Invoke", lambda c: c.invoke(FunctionName="f", Payload=b"{}")),
        ("secretsmanager", "GetSecretValue", lambda c: c.get_secret_value(SecretId="s")),
        ("dynamodb", "UpdateItem", lambda c: c.update_item(TableName="t", Key={"id": {"S": "1"}})),
    ],
    ids=["query", "rest-json", "json", "json-dynamodb"],
)
def test_each_protocol_gets_an_error_its_client_reads(server, service, operation, call):
    faults, url = server
    faults.add(service, operation, "AuthorizationError")

    assert error_code(lambda: call(client(service, url))) == "AuthorizationError"
    assert passed_through.seen == []


def test_a_fault_may_be_a_whole_answer(server):
    faults, url = server
    refused = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "no"}]}
    faults.add("events", "PutEvents", refused)

    answer = client("events", url).put_events(Entries=[{"Source": "s", "DetailType": "d", "Detail": "{}"}])

    assert answer["FailedEntryCount"] == 1 and answer["Entries"][0]["ErrorCode"] == "InternalFailure"


def test_an_execution_input_over_256_kib_is_refused_as_aws_refuses_it(server):
    _, url = server
    sfn = client("stepfunctions", url)
    big = json.dumps({"x": "a" * STATE_DATA_LIMIT_BYTES})

    assert error_code(lambda: sfn.start_execution(stateMachineArn="arn:aws:states:us-east-1:1:m", input=big)) == (
        "ValidationException"
    )
    assert passed_through.seen == []

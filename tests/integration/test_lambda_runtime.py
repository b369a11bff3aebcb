"""The local stack runs each function as Lambda runs it: a container (worker process) of its own, with
exactly its environment, its role's credentials, its Timeout, warm reuse, parallel workers and its
own log per invocation. A probe (tests/probe_function) is deployed in place of NotifyTopicFunction's
code; everything else is the real template."""

from __future__ import annotations

import json
import os
import threading

import pytest

from iics_monitor_local import template
from iics_monitor_local.stack import LocalStack
from tests.e2e.conftest import probe_in_place_of

PROBED = "NotifyTopicFunction"
TIMEOUT = 3
# What Lambda itself sets in every function's environment, and what the local stack adds (documented in
# lambda_runtime.py): nothing else may appear beside the template's variables.
LAMBDA_VARIABLES = {
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_EXECUTION_ENV",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "LAMBDA_TASK_ROOT",
    "LANG",
    "TZ",
    "PATH",
}
LOCAL_VARIABLES = {"AWS_ENDPOINT_URL", "ALLOW_LOOPBACK_HTTP", "POWERTOOLS_TRACE_DISABLED"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    path = template.variant(probe_in_place_of(PROBED, TIMEOUT), tmp_path_factory.mktemp("probe") / "template.json")
    with LocalStack(template=path, workers=2) as deployed:
        yield deployed


def invoke(stack: LocalStack, **event) -> tuple[dict, bool]:
    payload = json.dumps({"probe": True, **event}).encode()
    answer = stack.client("lambda").invoke(FunctionName=stack.resources[PROBED], Payload=payload)
    return json.loads(answer["Payload"].read()), bool(answer.get("FunctionError"))


def test_a_function_sees_exactly_its_own_environment(stack):
    result, _ = invoke(stack)

    sam = template.load()
    own = sam["Resources"][PROBED]["Properties"].get("Environment", {}).get("Variables", {})
    globals_ = sam["Globals"]["Function"]["Environment"]["Variables"]
    assert set(result["environment"]) == set(own) | set(globals_) | LAMBDA_VARIABLES | LOCAL_VARIABLES
    # another function's variables are not there (they were, when all functions shared one process)
    assert "ARCHIVE_BUCKET" not in result["environment"] and "MAX_POLLS" not in result["environment"]
    assert result["environment"]["AWS_LAMBDA_FUNCTION_NAME"] == stack.resources[PROBED]
    assert result["pid"] != os.getpid()


def test_its_calls_are_made_as_its_execution_role_and_iam_decides(stack):
    verdicts = stack.resources["SecretVerdictTable"]
    calls = [
        ["s3", "list_buckets", {}],  # rest-xml
        ["dynamodb", "get_item", {"TableName": verdicts, "Key": {"secretVersion": {"S": "x"}}}],  # json
        ["sqs", "list_queues", {}],  # json, query-compatible
        ["lambda", "list_functions", {}],  # rest-json
        ["sns", "publish", {"TopicArn": stack.outputs["AlertTopicArn"], "Message": "probe"}],  # its own right
    ]
    result, _ = invoke(stack, identity=True, calls=calls)

    role = stack.resources[f"{PROBED}Role"]
    assert f":assumed-role/{role}/" in result["identity"]
    # refused as each service refuses (a JSON service's client read moto's XML refusal as code "403")
    assert result["calls"] == [
        "AccessDenied",
        "AccessDeniedException",
        "AccessDenied",
        "AccessDeniedException",
        "allowed",
    ]


def test_the_first_invocation_is_cold_and_the_next_reuses_the_warm_worker(stack):
    first, _ = invoke(stack, marker="one")
    second, _ = invoke(stack, marker="two")

    probes = [i for i in stack.lambda_invocations if i.function_name == stack.resources[PROBED]]
    assert first["pid"] == second["pid"]
    assert probes[-1].cold is False
    assert any(i.cold for i in probes)
    assert "Init Duration" not in probes[-1].logs


def test_invocations_run_in_parallel_workers_up_to_the_limit_each_with_its_own_log(stack):
    results: dict[str, dict] = {}

    def call(marker: str) -> None:
        results[marker] = invoke(stack, marker=marker, sleep=1)[0]

    threads = [threading.Thread(target=call, args=(m,)) for m in ("a", "b", "c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    probes = {i.event.get("marker"): i for i in stack.lambda_invocations if i.function_name == stack.resources[PROBED]}
    a, b, c = (probes[m] for m in "abc")
    # two workers (workers=2): two invocations overlapped, the third waited for a free one
    assert len({results[m]["pid"] for m in "abc"}) == 2
    overlapping = [
        (x, y) for x, y in [(a, b), (a, c), (b, c)] if x.started_at < y.finished_at and y.started_at < x.finished_at
    ]
    assert len(overlapping) >= 1
    for marker in "abc":
        logs = probes[marker].logs
        assert [m for m in "abc" if f"probe {m} " in logs] == [marker]  # its own lines, no one else's
        assert logs.startswith("START RequestId: ") and "\nREPORT RequestId: " in logs


def test_a_worker_still_running_at_its_timeout_is_killed_and_the_invocation_fails_as_lambda_says(stack):
    result, errored = invoke(stack, marker="slow", sleep=TIMEOUT + 5)

    assert errored
    assert result["errorType"] == "Sandbox.Timedout"
    assert f"Task timed out after {TIMEOUT:.2f} seconds" in result["errorMessage"]
    slow = next(i for i in reversed(stack.lambda_invocations) if i.event.get("marker") == "slow")
    assert slow.seconds < TIMEOUT + 2
    pid = int(slow.logs.split("pid=")[1].split()[0])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the container is gone
    assert "Task timed out" in slow.logs
    # and the next invocation starts a new container
    after, _ = invoke(stack, marker="after")
    assert after["pid"] != pid

"""Start-export mode through the whole pipeline: the request names objects, the state machine starts
the export (POST /export), watches it, archives its log and announces it; a start that fails is an
ERROR outcome with the IICS error code. Real ASL in moto, real handlers, the IICS emulator."""

from __future__ import annotations

import json

import pytest

from iics_monitor_local.emulator import _CODE_INJECTED, Fault
from iics_monitor_local.stack import LocalStack
from tests.conftest import PASSWORD, USERNAME, assert_valid_outcome

OBJECT_A, OBJECT_B = "aeOwrk0r6cBkkVz3RuTQ0i", "2cLZX4UWrJ6kpB4oqZp1dP"


@pytest.fixture
def pipeline(emulator):
    with LocalStack({"InitialWaitSeconds": 0, "MaxWaitSeconds": 1}) as stack:
        stack.put_iics_secret(USERNAME, PASSWORD, emulator.url)
        yield stack


def outcome_of(stack: LocalStack, execution_input: dict) -> tuple[dict, str, list[str]]:
    capture = stack.capture_events()
    arn = stack.start(execution_input)
    status = stack.wait(arn, timeout=60)["status"]
    (event,) = capture.drain()
    assert_valid_outcome(event["detail"])
    return event["detail"], status, stack.path(arn)


def test_an_export_is_started_watched_archived_and_announced(pipeline, emulator):
    request = {"export": {"name": "release-42", "objects": [{"id": OBJECT_A}, {"id": OBJECT_B}]}}

    detail, status, path = outcome_of(pipeline, {"detail": request})

    (post,) = [r for r in emulator.requests if r.route == "export"]
    assert json.loads(post.body) == request["export"]
    assert status == "SUCCEEDED"
    assert path[:7] == [
        "NormaliseInput",
        "AcceptInput",  # started by hand: the door first
        "WasInputAccepted",
        "StartPolling",
        "IsExportRequest",
        "StartExport",
        "DidExportStart",
    ]
    assert (detail["state"], detail["jobName"]) == ("SUCCESSFUL", "release-42")
    log = pipeline.client("s3").get_object(Bucket=detail["log"]["bucket"], Key=detail["log"]["key"])["Body"].read()
    assert log == emulator.log_of(detail["jobId"])


def test_a_bare_input_can_start_an_export_too(pipeline, emulator):
    detail, status, _ = outcome_of(pipeline, {"export": {"objects": [{"id": OBJECT_A, "includeDependencies": True}]}})

    assert (status, detail["state"]) == ("SUCCEEDED", "SUCCESSFUL")


def test_a_refused_start_is_an_error_outcome_carrying_the_iics_code(pipeline, emulator):
    emulator.add_fault(Fault(route="export", status=403))

    detail, status, path = outcome_of(pipeline, {"export": {"objects": [{"id": OBJECT_A}]}})

    assert status == "FAILED"  # the execution fails too, so execution alarms see it
    assert "ReportStartError" in path and "CheckStatus" not in path
    assert (detail["state"], detail["errorType"], detail["iicsErrorCode"]) == ("ERROR", "AccessDenied", _CODE_INJECTED)
    assert detail["jobId"] is None
    assert "the export did not start" in detail["reason"]


def test_too_many_objects_are_refused_before_iics_is_called(pipeline, emulator):
    detail, status, _ = outcome_of(pipeline, {"export": {"objects": [{"id": OBJECT_A}] * 1001}})

    assert (status, detail["state"], detail["errorType"]) == ("FAILED", "ERROR", "InvalidInput")
    assert "1 to 1000 objects" in detail["reason"]
    assert [r for r in emulator.requests if r.route == "export"] == []


def test_the_announcing_event_can_start_an_export_once(pipeline, emulator):
    # Through the front door: the trigger rule -> StartMonitor, which names the execution after the event id.
    before = {e["name"] for e in pipeline.executions()}

    pipeline.submit({"export": {"objects": [{"id": OBJECT_A}]}})

    (execution,) = [e for e in pipeline.executions() if e["name"] not in before]
    assert execution["name"].startswith("export-")
    assert pipeline.wait(execution["executionArn"], timeout=60)["status"] == "SUCCEEDED"
    assert len([r for r in emulator.requests if r.route == "export"]) == 1

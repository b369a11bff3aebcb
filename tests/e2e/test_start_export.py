"""Start-export mode through the whole pipeline: the request names objects, the state machine starts
the export (POST /export), watches it, archives its log and announces it; a start that fails is an
ERROR outcome with the IICS error code. Real ASL in moto, real handlers, the IICS emulator."""

from __future__ import annotations

import json

from iics_monitor_local.emulator import _CODE_INJECTED, Fault

OBJECT_A, OBJECT_B = "aeOwrk0r6cBkkVz3RuTQ0i", "2cLZX4UWrJ6kpB4oqZp1dP"


def test_an_export_is_started_watched_archived_and_announced(pipeline, emulator):
    request = {"export": {"name": "release-42", "objects": [{"id": OBJECT_A}, {"id": OBJECT_B}]}}

    run = pipeline.start({"detail": request})
    detail, status, path = run.outcome, run.status, run.path

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
    log = (
        pipeline.stack.client("s3").get_object(Bucket=detail["log"]["bucket"], Key=detail["log"]["key"])["Body"].read()
    )
    assert log == emulator.log_of(detail["jobId"])


def test_a_bare_input_can_start_an_export_too(pipeline, emulator):
    run = pipeline.start({"export": {"objects": [{"id": OBJECT_A, "includeDependencies": True}]}})
    detail, status = run.outcome, run.status

    assert (status, detail["state"]) == ("SUCCEEDED", "SUCCESSFUL")


def test_a_refused_start_is_an_error_outcome_carrying_the_iics_code(pipeline, emulator):
    emulator.add_fault(Fault(route="export", status=403))

    run = pipeline.start({"export": {"objects": [{"id": OBJECT_A}]}})
    detail, status, path = run.outcome, run.status, run.path

    assert status == "FAILED"  # the execution fails too, so execution alarms see it
    assert "ReportStartError" in path and "CheckStatus" not in path
    assert (detail["state"], detail["errorType"], detail["iicsErrorCode"]) == ("ERROR", "AccessDenied", _CODE_INJECTED)
    assert detail["jobId"] is None
    assert "the export did not start" in detail["reason"]


def test_too_many_objects_are_refused_before_iics_is_called(pipeline, emulator):
    run = pipeline.start({"export": {"objects": [{"id": OBJECT_A}] * 1001}})
    detail, status = run.outcome, run.status

    assert (status, detail["state"], detail["errorType"]) == ("FAILED", "ERROR", "InvalidInput")
    assert "1 to 1000 objects" in detail["reason"]
    assert [r for r in emulator.requests if r.route == "export"] == []


def test_the_announcing_event_can_start_an_export_once(pipeline, emulator):
    # Through the front door: the trigger rule -> StartMonitor, which names the execution after the event id.
    run = pipeline.submit({"export": {"objects": [{"id": OBJECT_A}]}})

    assert run.execution_arn.rsplit(":", 1)[1].startswith("export-")
    assert run.status == "SUCCEEDED"
    assert len([r for r in emulator.requests if r.route == "export"]) == 1

"""The pipeline meets what a deployed stack meets: a function that outlives its Timeout, and a role that
lacks one permission. Each runs the real template (changed in one place, in a copy) and the real ASL."""

from __future__ import annotations

import json
import time

from iics_monitor_local import template
from iics_monitor_local.stack import LocalStack
from tests.conftest import PASSWORD, USERNAME, assert_valid_outcome
from tests.e2e.conftest import probe_in_place_of, publish


def run_one(stack: LocalStack, emulator, **job) -> tuple[dict, list[dict]]:
    stack.put_iics_secret(USERNAME, PASSWORD, emulator.url)
    capture = stack.capture_events()
    arn = stack.start({"jobId": emulator.add_job(**job)})
    assert stack.wait(arn, timeout=120)["status"] in ("SUCCEEDED", "FAILED")
    (event,) = capture.drain()
    return event["detail"], stack.history(arn)


hung_check_status = probe_in_place_of("CheckStatusFunction", timeout=2)


def test_a_check_that_outlives_its_timeout_is_killed_and_ends_in_one_error_outcome(tmp_path, emulator):
    with LocalStack(template=template.variant(hung_check_status, tmp_path / "template.json")) as stack:
        detail, history = run_one(stack, emulator, states=["SUCCESSFUL"])

    failures = [e["taskFailedEventDetails"] for e in history if e["type"] == "TaskFailed"]
    assert [f["error"] for f in failures] == ["Sandbox.Timedout"]  # not retried: the ASL retries no timeout
    assert "Task timed out after 2.00 seconds" in failures[0]["cause"]
    assert detail["state"] == "ERROR" and "Sandbox.Timedout" in json.dumps(detail)
    assert_valid_outcome(detail)


def without_action(role: str, sid: str, action: str):
    def edit(sam: dict) -> None:
        statements = sam["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        (statement,) = [s for s in statements if isinstance(s, dict) and s.get("Sid") == sid]
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        statement["Action"] = [a for a in actions if a != action] or ["s3:GetObject"]  # never empty: still valid

    return edit


def test_a_check_whose_role_cannot_read_the_secret_ends_in_error_with_access_denied(tmp_path, emulator):
    edit = without_action("CheckStatusFunctionRole", "ReadIicsCredentials", "secretsmanager:GetSecretValue")
    with LocalStack(template=template.variant(edit, tmp_path / "template.json")) as stack:
        detail, _ = run_one(stack, emulator, states=["SUCCESSFUL"])

    assert detail["state"] == "ERROR"
    assert "AccessDeniedException" in detail["reason"] and "secret" in detail["reason"]
    assert "<" not in detail["reason"]  # the service's refusal, not moto's XML page
    assert emulator.logins == 0


def test_an_archive_whose_role_cannot_put_objects_keeps_no_log_and_says_access_denied(tmp_path, emulator):
    edit = without_action("ArchiveLogFunctionRole", "WriteArchive", "s3:PutObject")
    with LocalStack(template=template.variant(edit, tmp_path / "template.json")) as stack:
        detail, _ = run_one(stack, emulator, states=["SUCCESSFUL"])
        keys = stack.client("s3").list_objects_v2(Bucket=stack.bucket).get("KeyCount", 0)
        archive_seconds = [i.seconds for i in stack.lambda_invocations if "ArchiveLog" in i.function_name]

    assert detail["state"] == "SUCCESSFUL" and detail["log"] is None
    assert detail["logError"] == "log not stored: S3 did not store the log: AccessDenied"
    assert keys == 0
    assert archive_seconds and max(archive_seconds) < 10  # a refusal is not retried for the function's whole budget


def test_a_stack_closes_without_waiting_for_hung_functions_or_their_retries(tmp_path):
    """Closing kills what runs: it used to wait for every queued and running asynchronous delivery, each
    up to its function's Timeout, and for Lambda's retries of each."""
    path = template.variant(probe_in_place_of("NotifyTopicFunction", timeout=30), tmp_path / "template.json")
    with LocalStack(template=path) as stack:
        for _ in range(4):  # failed outcomes: the alert rule delivers each to the (hanging) probe
            publish(stack, "outcome-failed.json")
        time.sleep(1)  # the deliveries have started their functions
        started = time.monotonic()  # the stack closes now

    assert time.monotonic() - started < 10

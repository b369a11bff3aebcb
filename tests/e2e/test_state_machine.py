"""The whole pipeline: statemachine/export_monitor.asl.json run by moto's interpreter, in an account
built from template.yaml, with the real handlers invoked in-process against the IICS emulator.

Each test tells one story: a job is announced, IICS behaves a certain way, and we check what a
user would see: the path through the states, the bytes in S3, and the outcome event on the bus.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from iics_monitor_local.emulator import Fault
from iics_monitor_local.reference import LOG_TEXT, STATUS_SUCCESSFUL_WITH_OBJECTS
from tests.conftest import PASSWORD, USERNAME
from tests.e2e.conftest import FAILED_OBJECTS, FAST, Run, deployed


def polls_in(run: Run) -> int:
    return run.path.count("CheckStatus")


def test_success_after_several_polls_archives_the_log_and_announces_it(pipeline, emulator):
    # Given the reference job, still running for three polls
    job_id = emulator.add_reference_job(states=["IN_PROGRESS"] * 3 + ["SUCCESSFUL"])

    # When the upstream system announces it on the bus
    run = pipeline.submit({"jobId": job_id, "name": "testJob1"})

    # Then the execution polled four times and took the success path
    assert run.status == "SUCCEEDED"
    assert run.path == [
        "NormaliseInput",
        "StartPolling",
        "IsExportRequest",
        *["CheckStatus", "IsFinished", "WaitBeforeNextPoll"] * 3,
        "CheckStatus",
        "IsFinished",
        "ArchiveLog",
        "EmitOutcome",
        "WasItAnError",
        "Done",
    ]
    # and the archived log is the served log, byte for byte
    detail = run.outcome
    assert detail["state"] == "SUCCESSFUL"
    assert detail["iicsState"] == "SUCCESSFUL"
    assert detail["jobId"] == job_id and detail["jobName"] == "testJob1"
    assert detail["polls"] == 4
    assert detail["objects"] == {"total": 13, "successful": 13, "failed": 0}
    assert detail["durationSeconds"] == 1.0
    assert detail["executionArn"] == run.execution_arn
    log = detail["log"]
    assert log["key"].startswith("iics-export-logs/") and log["key"].endswith(f"/{job_id}/export.log")
    body = run.archived(log["key"])
    assert body == LOG_TEXT.encode()
    assert log["sizeBytes"] == len(body)
    assert log["sha256"] == hashlib.sha256(body).hexdigest()
    head = pipeline.stack.client("s3").head_object(Bucket=log["bucket"], Key=log["key"])
    assert head["ContentType"] == "text/plain; charset=utf-8"
    assert head["Metadata"] == {"job-id": job_id, "state": "SUCCESSFUL", "sha256": log["sha256"]}
    # and the final status sits beside it
    status_key = log["key"].rsplit("/", 1)[0] + "/status.json"
    assert json.loads(run.archived(status_key)) == STATUS_SUCCESSFUL_WITH_OBJECTS

    # and the functions published EMF metrics under the template's namespace
    def total(name: str) -> float:
        return sum(pipeline.stack.metric_values(name, namespace="IicsExportMonitor"))

    # (Observability=Minimal, the default: the job outcome metrics only; Full is in test_polling.py)
    assert pipeline.stack.metric_names() == {"OutcomeSuccessful"}
    assert total("OutcomeSuccessful") == 1
    # and IICS saw one login per function container that called it (CheckStatus, then ArchiveLog: each
    # Lambda container keeps its own session), and four status calls
    assert emulator.logins == 2
    assert [r.route for r in emulator.requests].count("status") == 5  # 4 polls + the final expand=objects


def test_failed_job_reports_its_failed_objects(pipeline, emulator):
    job_id = emulator.add_job(name="nightly-export", states=["IN_PROGRESS", "FAILED"], objects=FAILED_OBJECTS)

    run = pipeline.start({"jobId": job_id})

    assert run.status == "SUCCEEDED"  # the monitor did its job; the export failed
    assert "AcceptInput" in run.path  # a bare input passes the door first
    detail = run.outcome
    assert detail["state"] == "FAILED"
    assert detail["objects"] == {"total": 3, "successful": 1, "failed": 2}
    assert [o["id"] for o in detail["failedObjects"]] == ["aaaaaaaaaaaaaaaaaaaaa2", "aaaaaaaaaaaaaaaaaaaaa3"]
    assert detail["failedObjects"][0]["message"] == "Connection conn_sf is missing"
    archived = run.archived(detail["log"]["key"])
    assert b"ERROR" in archived and b"Status: FAILED" in archived


def test_job_that_never_ends_times_out_at_its_deadline(pipeline, emulator):
    job_id = emulator.add_job(states=["IN_PROGRESS"])

    run = pipeline.start(
        {"jobId": job_id, "monitor": {"initialWaitSeconds": 1, "maxWaitSeconds": 1, "timeoutSeconds": 2}}
    )

    assert run.status == "SUCCEEDED"
    detail = run.outcome
    assert detail["state"] == "TIMED_OUT"
    assert detail["iicsState"] == "IN_PROGRESS"
    assert "deadline" in detail["reason"]
    assert 2 <= detail["polls"] <= 4
    assert run.path[-4:] == ["ArchiveLog", "EmitOutcome", "WasItAnError", "Done"]


def test_unknown_state_counts_as_running_and_is_logged_raw(pipeline, emulator):
    job_id = emulator.add_job(states=["WEIRD_STATE", "WEIRD_STATE", "SUCCESSFUL"])

    run = pipeline.start({"jobId": job_id})

    detail = run.outcome
    assert detail["state"] == "SUCCESSFUL"
    assert polls_in(run) == 3
    check_logs = [i.logs for i in pipeline.stack.lambda_invocations if "CheckStatus" in i.function_name]
    warnings = [json.loads(line) for logs in check_logs for line in logs.splitlines() if "WEIRD_STATE" in line]
    assert len(warnings) == 2
    assert warnings[0]["level"] == "WARNING" and warnings[0]["correlation_id"] == job_id


@pytest.mark.parametrize(
    ("end", "state", "warning"),
    [
        ("ERROR", "FAILED", None),
        ("PARTIAL_SUCCESS", "SUCCESSFUL", "IICS reported PARTIAL_SUCCESS: Export completed with errors."),
    ],
)
def test_end_states_beyond_successful_and_failed_end_the_watch_at_once(pipeline, emulator, end, state, warning):
    # Given a job that ends in a state word other IICS clients list, watched with a 5 s deadline
    job_id = emulator.add_job(states=["IN_PROGRESS", end])

    run = pipeline.start({"jobId": job_id, "monitor": {"timeoutSeconds": 5}})

    # Then the second poll ends the watch with that end, not TIMED_OUT at the deadline
    detail = run.outcome
    assert (detail["state"], detail["iicsState"], detail["warning"]) == (state, end, warning)
    assert polls_in(run) <= 2 and detail["endTime"] is not None


def test_a_final_status_that_says_running_again_keeps_the_end_the_check_saw(pipeline, emulator):
    # Given IICS answering IN_PROGRESS again to the final re-read, after a SUCCESSFUL poll
    job_id = emulator.add_job(states=["IN_PROGRESS", "SUCCESSFUL", "IN_PROGRESS"])

    detail = pipeline.start({"jobId": job_id}).outcome

    assert (detail["state"], detail["iicsState"]) == ("SUCCESSFUL", "SUCCESSFUL")
    assert detail["endTime"] is not None and "the check's end stands" in detail["reason"]


@pytest.mark.parametrize("refusal", [401, 403], ids=["401", "403-AUTH_01"])
def test_session_expiry_mid_run_logs_in_again_once(pipeline, emulator, refusal):
    emulator.expired_session_status = refusal  # 403: with code AUTH_01, as another public IICS client expects it
    job_id = emulator.add_job(states=["IN_PROGRESS", "IN_PROGRESS", "SUCCESSFUL"])
    emulator.add_fault(Fault(route="status", kind="invalidate_session", after=1))

    run = pipeline.start({"jobId": job_id})

    assert run.outcome["state"] == "SUCCESSFUL"
    assert emulator.logins == 3  # CheckStatus's first and its one again after the expiry; ArchiveLog's own
    statuses = [r.status for r in emulator.requests if r.route == "status"]
    assert statuses.count(refusal) == 1


def test_failing_log_endpoint_still_announces_the_outcome(pipeline, emulator):
    job_id = emulator.add_job(states=["IN_PROGRESS", "SUCCESSFUL"])
    emulator.add_fault(Fault(route="log", status=500, times=None))

    run = pipeline.start({"jobId": job_id})

    assert run.status == "SUCCEEDED"
    detail = run.outcome
    assert detail["state"] == "SUCCESSFUL"
    assert detail["log"] is None
    assert "log not fetched" in detail["logError"]
    listed = pipeline.stack.client("s3").list_objects_v2(Bucket=pipeline.stack.bucket).get("Contents", [])
    assert [o["Key"].rsplit("/", 1)[-1] for o in listed] == ["package.zip", "status.json"]  # no log


@pytest.mark.parametrize(
    ("execution_input", "error_type"),
    [
        ({"jobId": "../../etc/passwd"}, "InvalidJobId"),
        ({"jobId": "abc%2F..%2F"}, "InvalidJobId"),
        ({"jobId": "x" * 65}, "InvalidJobId"),
        ({"jobId": "jöb"}, "InvalidJobId"),
        ({"name": "no id"}, "InvalidInput"),
        ({"jobId": "abc", "monitor": {"timeoutSeconds": -1}}, "InvalidInput"),
        ({"jobId": "abc", "monitor": {"pollEverySecond": True}}, "InvalidInput"),
        ({"detail": {"jobId": 42}}, "InvalidJobId"),
    ],
)
def test_bad_input_yields_an_error_outcome_and_no_request(pipeline, emulator, execution_input, error_type):
    run = pipeline.start(execution_input)

    assert run.status == "FAILED"
    assert run.path[-4:] == ["BuildErrorOutcome", "EmitOutcome", "WasItAnError", "MonitorFailed"]
    detail = run.outcome
    assert detail["state"] == "ERROR"
    assert detail["errorType"] == error_type
    assert detail["reason"] and len(detail["reason"]) < 200
    assert detail["log"] is None and detail["logError"]
    assert emulator.requests == []


def test_wrong_password_fails_once_without_retrying_the_login(emulator):
    with deployed(emulator) as p:
        p.stack.client("secretsmanager").put_secret_value(
            SecretId=p.stack.stack_parameters["IicsSecretName"],
            SecretString=json.dumps({"username": USERNAME, "password": "wrong", "loginUrl": emulator.url}),
        )
        job_id = emulator.add_job(states=["SUCCESSFUL"])

        run = p.start({"jobId": job_id})

        detail = run.outcome
        assert detail["state"] == "ERROR" and detail["errorType"] == "LoginRefused"
        assert "HTTP 400" in detail["reason"]
        assert emulator.logins == 1


def test_poll_budget_guard_ends_the_loop(emulator):
    with deployed(emulator, FAST | {"MaxPolls": 3}) as p:
        job_id = emulator.add_job(states=["IN_PROGRESS"])

        run = p.start({"jobId": job_id})

        detail = run.outcome
        assert detail["state"] == "TIMED_OUT"
        assert "poll budget" in detail["reason"]
        assert polls_in(run) == 3 and detail["polls"] == 3
        assert "PollBudgetUsedUp" in run.path


def test_no_secret_reaches_history_events_or_s3(pipeline, emulator):
    job_id = emulator.add_reference_job(states=["IN_PROGRESS", "SUCCESSFUL"])
    emulator.add_fault(Fault(route="status", kind="invalidate_session", after=1))

    run = pipeline.submit({"jobId": job_id})

    session_ids = {r.headers.get("INFA-SESSION-ID") for r in emulator.requests} - {None}
    assert session_ids, "the client should have used a session"
    stack = pipeline.stack
    s3 = stack.client("s3")
    stored = [
        s3.get_object(Bucket=stack.bucket, Key=o["Key"]) for o in s3.list_objects_v2(Bucket=stack.bucket)["Contents"]
    ]
    captured = "\n".join(
        [
            json.dumps(stack.history(run.execution_arn), default=str),
            json.dumps(run.events),
            *(json.dumps(o["Metadata"]) + o["Body"].read().decode("latin-1") for o in stored),  # zips too
            *(i.logs + json.dumps(i.result, default=str) for i in stack.lambda_invocations),
        ]
    )
    for secret in [PASSWORD, *session_ids]:
        assert secret not in captured


def test_lambda_service_errors_are_retried(pipeline, emulator):
    job_id = emulator.add_job(states=["IN_PROGRESS", "SUCCESSFUL"])
    pipeline.stack.fail_lambda("CheckStatusFunction", "TooManyRequestsException", 429, times=1)
    pipeline.stack.fail_lambda("ArchiveLogFunction", "ServiceException", 500, times=1)

    run = pipeline.start({"jobId": job_id})

    assert run.status == "SUCCEEDED"
    assert run.outcome["state"] == "SUCCESSFUL"
    failures = [
        e["taskFailedEventDetails"]["error"]
        for e in pipeline.stack.history(run.execution_arn)
        if e["type"] == "TaskFailed"
    ]
    assert failures == ["Lambda.TooManyRequestsException", "Lambda.ServiceException"]

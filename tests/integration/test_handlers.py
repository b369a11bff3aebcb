"""The handlers as Lambda calls them: configuration from the environment, the secret from Secrets
Manager (moto), IICS on loopback (the emulator), S3 (moto)."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from iics_monitor_local.reference import LOG_TEXT
from tests.conftest import PASSWORD, ROOT, USERNAME, assert_valid_outcome

SECRET = "iics-export-monitor/credentials"
BUCKET = "archive-bucket-for-tests"


def load_handler(name: str):
    spec = importlib.util.spec_from_file_location(f"handler_{name}", ROOT / "functions" / name / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lambda_handler


@pytest.fixture
def aws(monkeypatch, emulator):
    with mock_aws():
        boto3.client("secretsmanager").create_secret(
            Name=SECRET,
            SecretString=json.dumps({"username": USERNAME, "password": PASSWORD, "loginUrl": emulator.url}),
        )
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        for name, value in {
            "IICS_SECRET_NAME": SECRET,
            "DEFAULT_INITIAL_WAIT_SECONDS": "10",
            "DEFAULT_MAX_WAIT_SECONDS": "60",
            "DEFAULT_TIMEOUT_SECONDS": "3600",
            "MAX_POLLS": "100",
            "ARCHIVE_BUCKET": BUCKET,
            "ARCHIVE_PREFIX": "logs/",
            "ALLOW_LOOPBACK_HTTP": "true",  # the emulator is on 127.0.0.1, as in the local stack
        }.items():
            monkeypatch.setenv(name, value)
        yield


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def test_check_status_returns_a_compact_result_and_caches_the_session(aws, emulator, lambda_context):
    handler = load_handler("check_status")
    job_id = emulator.add_reference_job(states=["IN_PROGRESS", "SUCCESSFUL"])
    first_poll = {"jobId": None, "polls": 0, "transientErrors": 0}

    first = handler({"request": {"jobId": job_id}, "poll": first_poll, "startedAt": now_iso()}, lambda_context)
    second = handler({"request": {"jobId": job_id}, "poll": first, "startedAt": now_iso()}, lambda_context)

    assert (first["state"], first["terminal"], first["nextWaitSeconds"], first["polls"]) == ("RUNNING", False, 10, 1)
    assert first["iicsState"] == "IN_PROGRESS" and first["message"] == "In Progress."
    assert (second["state"], second["terminal"], second["outcome"], second["polls"]) == (
        "SUCCESSFUL",
        True,
        "SUCCESSFUL",
        2,
    )
    assert emulator.logins == 1  # the warm container kept its session
    session_ids = {r.headers["INFA-SESSION-ID"] for r in emulator.requests if r.route == "status"}
    assert not any(sid in json.dumps([first, second]) for sid in session_ids)


def test_check_status_names_a_missing_environment_variable(aws, monkeypatch, lambda_context):
    monkeypatch.delenv("MAX_POLLS")
    handler = load_handler("check_status")

    with pytest.raises(Exception, match="MAX_POLLS") as raised:
        handler({"request": {"jobId": "abc"}, "poll": {}, "startedAt": now_iso()}, lambda_context)
    assert type(raised.value).__name__ == "ConfigError"


def test_archive_log_streams_the_log_and_returns_the_outcome(aws, emulator, lambda_context):
    handler = load_handler("archive_log")
    job_id = emulator.add_reference_job(states=["SUCCESSFUL"])
    poll = {"jobId": job_id, "outcome": "SUCCESSFUL", "polls": 3, "jobName": "testJob1"}

    detail = handler({"poll": poll, "executionArn": "arn:aws:states:us-east-1:1:execution:m:e"}, lambda_context)

    assert_valid_outcome(detail)
    assert detail["log"]["key"].startswith("logs/") and detail["log"]["key"].endswith(f"/{job_id}/export.log")
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=detail["log"]["key"])["Body"].read()
    assert body == LOG_TEXT.encode()
    assert detail["polls"] == 3 and detail["objects"]["total"] == 13


def test_missing_secret_field_is_named(aws, emulator, lambda_context):
    boto3.client("secretsmanager").put_secret_value(
        SecretId=SECRET, SecretString=json.dumps({"username": USERNAME, "loginUrl": emulator.url})
    )
    handler = load_handler("check_status")

    result = handler({"request": {"jobId": "abc"}, "poll": {}, "startedAt": now_iso()}, lambda_context)

    # the check ends the watch with an ERROR that names the missing field and the job
    assert (result["outcome"], result["errorType"], result["jobId"]) == ("ERROR", "ConfigError", "abc")
    assert "password" in result["reason"] and PASSWORD not in result["reason"]
    assert emulator.requests == []

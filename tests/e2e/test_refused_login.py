"""A refused password is tried once per stack, not once per job (issue 12, item 1).

IICS locks an account after a few refused logins, and every execution used to log in by itself. Here
ten jobs are announced at once with a wrong password in the secret; then the secret is fixed."""

from __future__ import annotations

import json

import pytest

from iics_monitor_local.stack import LocalStack, TopicInbox
from tests.conftest import PASSWORD, USERNAME, assert_valid_outcome
from tests.e2e.conftest import FAILED_OBJECTS, Pipeline, deployed, deployed_with_slack, queue_depth, wait_until

JOBS = 10


def put_password(stack: LocalStack, password: str, emulator) -> str:
    """A new version of the IICS secret; its version id."""
    return stack.client("secretsmanager").put_secret_value(
        SecretId=stack.stack_parameters["IicsSecretName"],
        SecretString=json.dumps({"username": USERNAME, "password": password, "loginUrl": emulator.url}),
    )["VersionId"]


def outcomes(pipeline: Pipeline, count: int) -> list[dict]:
    pipeline.finish_all(timeout=90)
    assert wait_until(lambda: len(pipeline.capture.drain()) >= count)
    return [event["detail"] for event in pipeline.capture.drain()]


@pytest.fixture
def pipeline(emulator):
    """Every invocation runs in a new container (worker process): a function's memory never carries over
    to the next, so only what the stack keeps (the verdicts table) can stop a second refused login."""
    with deployed(emulator, reuse_workers=False) as cold:
        yield cold


def test_ten_jobs_at_once_with_a_wrong_password_make_one_refused_login(pipeline, emulator):
    stack = pipeline.stack
    # Given a wrong password in the secret
    wrong = put_password(stack, "Wr0ng-" + PASSWORD, emulator)
    jobs = [emulator.add_job(states=["IN_PROGRESS", "SUCCESSFUL"]) for _ in range(JOBS)]

    # When ten jobs are announced at once
    for job_id in jobs:
        stack.submit({"jobId": job_id})
    details = outcomes(pipeline, JOBS)

    # Then IICS saw one login, and every job ended ERROR LoginRefused, saying what to do
    assert [r.status for r in emulator.requests if r.route == "login"] == [400]
    assert sorted(d["jobId"] for d in details) == sorted(jobs)
    for detail in details:
        assert_valid_outcome(detail)
        assert detail["state"] == "ERROR" and detail["errorType"] == "LoginRefused"
        assert f"version {wrong[:8]} of secret" in detail["reason"]
        assert "Put the right username and password in the secret" in detail["reason"]

    # When the secret is fixed, the next job is watched at once, with no cache to wait out
    put_password(stack, PASSWORD, emulator)
    fixed = emulator.add_job(states=["IN_PROGRESS", "SUCCESSFUL"])
    stack.submit({"jobId": fixed})
    (after,) = [d for d in outcomes(pipeline, 1) if d["jobId"] == fixed]

    assert after["state"] == "SUCCESSFUL"
    statuses = [r.status for r in emulator.requests if r.route == "login"]
    assert statuses[0] == 400 and set(statuses[1:]) == {200}  # each new container logs in with the fixed secret


def test_a_revoked_slack_webhook_is_posted_to_once_not_once_per_alert(emulator, slack):
    with deployed_with_slack(emulator, slack) as setup:
        stack = setup.stack
        stack.reuse_workers = False  # every invocation in a new container, as in the fixture above
        # Given a webhook Slack answers as gone (the app was removed)
        slack.fail_always((404,))
        inbox = TopicInbox(stack, stack.outputs["AlertTopicArn"])
        jobs = [emulator.add_job(states=["FAILED"], objects=FAILED_OBJECTS) for _ in range(3)]

        # When three jobs fail, each with an alert
        for job_id in jobs:
            stack.submit({"jobId": job_id})

        # Then Slack was asked once; every alert is kept in the dead-letter queue; e-mail got all three
        assert wait_until(lambda: queue_depth(stack, "AlertDeadLetterQueue") == 3, timeout=60)
        assert len(slack.requests) == 1
        assert len(inbox.messages(expected=3)) == 3

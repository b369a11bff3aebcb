"""Secrets stay secret: run the scenarios that touch every secret (logins, a session expiring, a
refused password, an alert to Slack), then scan everything the system kept or said for them."""

from __future__ import annotations

import json

from iics_monitor_local.emulator import Fault
from iics_monitor_local.slack_fake import FakeSlack
from iics_monitor_local.stack import LocalStack, TopicInbox
from tests.conftest import PASSWORD
from tests.e2e.secret_scan import everything_kept
from tests.e2e.test_alerts import SlackPipeline, wait_until
from tests.e2e.test_state_machine import FAILED_OBJECTS


def finish_all(stack: LocalStack) -> None:
    for execution in stack.executions():
        stack.wait(execution["executionArn"], timeout=60)


def test_no_password_session_id_or_webhook_url_is_kept_anywhere(emulator):
    with FakeSlack() as slack:
        setup = SlackPipeline(emulator, slack)
        stack = setup.stack
        try:
            inbox = TopicInbox(stack, stack.outputs["AlertTopicArn"])
            events = stack.capture_events("iics.export.monitor")
            # a session that expires mid-run, a failed job that alerts, a throttled and a broken answer
            ok = emulator.add_job(states=["IN_PROGRESS", "IN_PROGRESS", "SUCCESSFUL"])
            emulator.add_fault(Fault(route="status", kind="invalidate_session", after=1, job_id=ok))
            failed = emulator.add_job(name="leaky", states=["IN_PROGRESS", "FAILED"], objects=FAILED_OBJECTS)
            emulator.add_fault(Fault(route="status", status=429, job_id=failed))
            emulator.add_fault(Fault(route="status", status=502, html=True, job_id=failed, after=1))
            for job_id in (ok, failed):
                stack.submit({"jobId": job_id})
            finish_all(stack)
            assert wait_until(lambda: len(slack.delivered) == 1)
            # then a refused password
            stack.client("secretsmanager").put_secret_value(
                SecretId=stack.stack_parameters["IicsSecretName"],
                SecretString=json.dumps(
                    {"username": "alice@example.com", "password": "Wr0ng-" + PASSWORD, "loginUrl": emulator.url}
                ),
            )
            stack.submit({"jobId": emulator.add_job(states=["SUCCESSFUL"])})
            finish_all(stack)

            kept = everything_kept(stack, inbox, slack) + json.dumps(events.drain())
            webhook = slack.url
        finally:
            stack.__exit__(None, None, None)

    session_ids = {r.headers.get("INFA-SESSION-ID") for r in emulator.requests} - {None}
    assert len(session_ids) >= 2, "the scenarios should have used more than one session"
    assert "LoginFailed" in kept and "leaky" in kept  # the scan sees the scenarios' traces
    secrets = [PASSWORD, "Wr0ng-" + PASSWORD, webhook, webhook.split("/services/")[1], *session_ids]
    leaked = [s[:6] + "..." for s in secrets if s in kept]
    assert leaked == []

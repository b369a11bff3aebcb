"""Secrets stay secret: run the scenarios that touch every secret (logins, a session expiring, a
refused password, an alert to Slack), check that each really happened, then scan everything the
system kept or said for them (tests/e2e/secret_scan.py: the deployed code is not scanned)."""

from __future__ import annotations

import json

from iics_monitor_local.emulator import Fault
from iics_monitor_local.stack import TopicInbox
from tests.conftest import PASSWORD, USERNAME
from tests.e2e.conftest import FAILED_OBJECTS, deployed_with_slack, wait_until
from tests.e2e.secret_scan import everything_kept, leaked

WRONG = "Wr0ng-" + PASSWORD


def logins(emulator) -> list[int]:
    return [r.status for r in emulator.requests if r.route == "login"]


def test_no_password_session_id_or_webhook_url_is_kept_anywhere(emulator, slack):
    with deployed_with_slack(emulator, slack) as pipeline:
        stack, capture = pipeline.stack, pipeline.capture
        inbox = TopicInbox(stack, stack.outputs["AlertTopicArn"])
        # a session that expires mid-run, a failed job that alerts, a throttled and a broken answer
        ok = emulator.add_job(states=["IN_PROGRESS", "IN_PROGRESS", "SUCCESSFUL"])
        emulator.add_fault(Fault(route="status", kind="invalidate_session", after=1, job_id=ok))
        failed = emulator.add_job(name="leaky", states=["IN_PROGRESS", "FAILED"], objects=FAILED_OBJECTS)
        emulator.add_fault(Fault(route="status", status=429, job_id=failed))
        emulator.add_fault(Fault(route="status", status=502, html=True, job_id=failed, after=1))
        for job_id in (ok, failed):
            stack.submit({"jobId": job_id})
        pipeline.finish_all()
        assert wait_until(lambda: len(slack.delivered) == 1)
        # the first logins (one per function container: the two jobs ran at once), one after the expiry
        good = logins(emulator)
        assert len(good) >= 3 and set(good) == {200}

        # then a refused password: a new version of the secret, and IICS ends every session, so the
        # next job really logs in with it
        stack.client("secretsmanager").put_secret_value(
            SecretId=stack.stack_parameters["IicsSecretName"],
            SecretString=json.dumps({"username": USERNAME, "password": WRONG, "loginUrl": emulator.url}),
        )
        emulator.invalidate_sessions()
        refused = emulator.add_job(states=["SUCCESSFUL"])
        stack.submit({"jobId": refused})
        pipeline.finish_all()

        # each leg happened: two good jobs' outcomes, the refused login (once), its ERROR outcome, both alerts
        assert logins(emulator) == [*good, 400]
        assert wait_until(lambda: len(capture.drain()) == 3)
        outcomes = {event["detail"]["jobId"]: event["detail"] for event in capture.events}
        assert outcomes[ok]["state"] == "SUCCESSFUL" and outcomes[failed]["state"] == "FAILED"
        assert outcomes[refused]["state"] == "ERROR" and outcomes[refused]["errorType"] == "LoginRefused"
        assert wait_until(lambda: len(slack.delivered) == 2)
        mails = inbox.messages(expected=2)
        assert sorted(m["Subject"].split()[2] for m in mails) == ["ERROR:", "FAILED:"]
        assert "LoginRefused" in json.dumps(slack.delivered[1])

        kept = everything_kept(stack, inbox, slack, capture.events, mails)
        webhook = slack.url

    session_ids = {r.headers.get("INFA-SESSION-ID") for r in emulator.requests} - {None}
    assert len(session_ids) >= 2, "the scenarios should have used more than one session"
    assert refused in kept and "leaky" in kept  # the scan sees the scenarios' traces
    secrets = [PASSWORD, WRONG, webhook, webhook.split("/services/")[1], *session_ids]
    assert leaked(secrets, kept) == []

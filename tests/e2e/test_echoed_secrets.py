"""IICS (or a proxy in front of it) echoes the request in its error answers: the password of a login,
the session id of a status, log or package call, in JSON, plain text and HTML. Every such answer
is served through the real state machine, and then everything the stack kept or said is scanned:
no password, no session id (a 16,000-character JWT among them), no webhook URL."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import pytest

from iics_monitor.scrub import MARK
from iics_monitor_local.emulator import Fault, IicsEmulator
from iics_monitor_local.slack_fake import FakeSlack
from iics_monitor_local.stack import LocalStack, TopicInbox
from tests.conftest import USERNAME
from tests.e2e.conftest import FAILED_OBJECTS, deployed_with_slack, queue_depth, wait_until
from tests.e2e.secret_scan import everything_kept, leaked

# Escaping changes it in JSON, HTML and URLs alike; "Zq7Kx9Wv" survives every escaping, so a scan
# that finds no spelling of the whole still finds the password in any form.
PASSWORD = 'Zq7Kx9Wv "quoted" back\\slash <b>&amp; 100%'
JWT_LENGTH = 16_000


@dataclass
class Echo:
    """One job and the echoing answer it meets."""

    name: str
    route: str
    status: int
    body_format: str
    states: tuple[str, ...] = ("IN_PROGRESS", "SUCCESSFUL")
    fresh_login: bool = False  # drop every session first, so the job's check logs in again
    after: int = 0  # requests about the job that pass before the echo (a 401 and its re-login)


# In order: the login faults match the next login, whichever job makes it.
SCENARIOS = [
    Echo("login-json", "login", 502, "json"),  # transient: the check logs in again on its next poll
    Echo("login-text", "login", 500, "text", fresh_login=True),
    Echo("login-html", "login", 502, "html", fresh_login=True),
    Echo("status-text", "status", 403, "text"),
    Echo("status-json", "status", 400, "json"),
    Echo("log-json", "log", 400, "json", states=("IN_PROGRESS", "FAILED")),
    Echo("log-html", "log", 400, "html"),
    Echo("package-text", "package", 400, "text"),
    Echo("package-html", "package", 400, "html"),
    # JWT sessions from here: the first status call meets a 401, the re-login's JWT meets the echo
    Echo("status-html-jwt", "status", 400, "html", fresh_login=True, after=1),
    Echo("log-text-jwt", "log", 400, "text"),
    Echo("login-refused", "login", 400, "json", fresh_login=True),  # last: a refused login ends the run
]
EXPECTED = {
    "login-json": ("SUCCESSFUL", None),
    "login-text": ("SUCCESSFUL", None),
    "login-html": ("SUCCESSFUL", None),
    "status-text": ("ERROR", "AccessDenied"),
    "status-json": ("ERROR", "BadRequest"),
    "log-json": ("FAILED", None),
    "log-html": ("SUCCESSFUL", None),
    "package-text": ("SUCCESSFUL", None),
    "package-html": ("SUCCESSFUL", None),
    "status-html-jwt": ("ERROR", "BadRequest"),
    "log-text-jwt": ("SUCCESSFUL", None),
    "login-refused": ("ERROR", "LoginRefused"),
}
ALERTED = {name for name, (state, _) in EXPECTED.items() if state != "SUCCESSFUL"}


@pytest.fixture
def world():
    """The stack with Slack, an IICS that echoes, a fake Slack whose webhook path is random."""
    with (
        IicsEmulator(username=USERNAME, password=PASSWORD) as emulator,
        FakeSlack(token=f"T0SCRUB00/B0SCRUB00/{secrets.token_hex(12)}") as slack,
        deployed_with_slack(emulator, slack) as pipeline,
    ):
        yield pipeline.stack, emulator, slack


def run_scenario(stack: LocalStack, emulator: IicsEmulator, echo: Echo) -> str:
    if echo.name == "status-html-jwt":
        emulator.session_jwt_length = JWT_LENGTH
    if echo.fresh_login:
        emulator.invalidate_sessions()
    objects = FAILED_OBJECTS if "FAILED" in echo.states else None
    job_id = emulator.add_job(name=echo.name, states=list(echo.states), objects=objects)
    fault = Fault(route=echo.route, kind="echo", status=echo.status, body_format=echo.body_format, after=echo.after)
    emulator.add_fault(fault if echo.route == "login" else Fault(**vars(fault) | {"job_id": job_id, "times": None}))
    before = {e["executionArn"] for e in stack.executions()}
    stack.submit({"jobId": job_id})
    assert wait_until(lambda: len(stack.executions()) > len(before))
    (execution,) = [e for e in stack.executions() if e["executionArn"] not in before]
    stack.wait(execution["executionArn"], timeout=60)
    return job_id


def test_echoed_requests_leave_no_secret_in_anything_the_stack_keeps_or_says(world):
    stack, emulator, slack = world
    inbox = TopicInbox(stack, stack.outputs["AlertTopicArn"])
    bus = stack.capture_events()

    jobs = {echo.name: run_scenario(stack, emulator, echo) for echo in SCENARIOS}

    # Every echo was served: the login statuses in order, and each job's own echoing answer.
    login_statuses = [r.status for r in emulator.requests if r.route == "login"]
    assert [s for s in login_statuses if s != 200] == [502, 500, 502, 400]
    for echo in SCENARIOS[3:-1]:
        answered = [r.status for r in emulator.requests if r.route == echo.route and jobs[echo.name] in r.path]
        assert echo.status in answered, echo.name
    issued = emulator.issued_session_ids
    # (at least one session per scenario that logged in; concurrent containers each log in too)
    assert len(issued) >= 4 and any(len(s) == JWT_LENGTH and s.count(".") == 2 for s in issued)
    # The jobs ended as each answer means, and the echo reached the outcome scrubbed.
    names = {job_id: name for name, job_id in jobs.items()}
    outcomes = {names[e["detail"]["jobId"]]: e["detail"] for e in bus.drain()}
    assert {name: (o["state"], o["errorType"]) for name, o in outcomes.items()} == EXPECTED
    # (the echo itself, as far as its first 300 characters reach)
    for name, field in [("status-text", "reason"), ("status-json", "reason"), ("status-html-jwt", "reason")]:
        assert "INFA-SESSION-ID" in outcomes[name][field], name
    for name, field in [("log-json", "logError"), ("log-html", "logError"), ("log-text-jwt", "logError")]:
        assert outcomes[name]["log"] is None and "INFA-SESSION-ID" in outcomes[name][field], name
    for name, field in [("package-text", "packageError"), ("package-html", "packageError")]:
        assert outcomes[name]["package"] is None and "INFA-SESSION-ID" in outcomes[name][field], name
    assert "password" in outcomes["login-refused"]["reason"] and MARK in outcomes["login-refused"]["reason"]
    assert not any("Traceback" in (o["reason"] or "") or 'File "' in (o["reason"] or "") for o in outcomes.values())
    # The alerts went out: an e-mail and a Slack message for each, the ERROR outcomes to the error queue.
    notifications = inbox.messages(expected=len(ALERTED))
    assert sorted(names[n["Subject"].rsplit("(", 1)[1].rstrip(")")] for n in notifications) == sorted(ALERTED)
    assert wait_until(lambda: len(slack.delivered) == len(ALERTED))
    assert queue_depth(stack, "ErrorOutcomeQueue") == 4

    kept = everything_kept(stack, inbox, slack, outcomes, notifications)

    assert MARK in kept and "status-html-jwt" in kept and "AccessDenied" in kept  # the scan sees the scenarios
    webhook = slack.url
    assert leaked([PASSWORD, "Zq7Kx9Wv", webhook, slack.path, *issued], kept) == []

"""`make demo`: the whole pipeline on this machine, in under a minute.

Starts the IICS emulator on 127.0.0.1 and an AWS account (moto) built from template.yaml, then
announces three export jobs through the upstream EventBridge event:
- nightly-backup succeeds after a few polls;
- promote-to-prod fails, with failed objects;
- ci-export meets a 401 (session expired) and a 429 (throttled) on the way, and still succeeds.

It prints one line per poll per job as the functions return, then a summary per job, with the
alert e-mail (SNS) and Slack message (to a fake Slack on 127.0.0.1) for the job that needs a
person. The exit code is 0 only if every job ended as scripted, alerts included.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from iics_monitor_local.emulator import Fault, IicsEmulator
from iics_monitor_local.progress import Progress
from iics_monitor_local.slack_fake import FakeSlack
from iics_monitor_local.stack import LocalStack, OutcomeCapture, TopicInbox, quiet_moto

USERNAME = "demo@example.com"
PASSWORD = "demo-password-never-printed"  # noqa: S105 - the emulator's made-up user
SLACK_SECRET = "iics-export-monitor/slack"  # noqa: S105 - a secret name, not a secret
# Short waits so the demo fits in a minute; production defaults are 15 s growing to 300 s.
# Warm workers per function before the jobs start, as on a stack in use (three jobs at once).
WARM = {"StartMonitorFunction": 1, "CheckStatusFunction": 3, "ArchiveLogFunction": 3, "NotifyTopicFunction": 1}
PARAMETERS = {"InitialWaitSeconds": 1, "MaxWaitSeconds": 2, "SlackWebhookSecretName": SLACK_SECRET}
LOG_LINES_SHOWN = 4


@dataclass(frozen=True)
class DemoJob:
    name: str
    expected: str
    seconds: float  # how long IICS takes before the final state
    final_state: str
    objects: list[dict] = field(default_factory=list)
    faults: list[dict] = field(default_factory=list)
    expected_errors: tuple[int, ...] = ()  # HTTP statuses the monitor must meet and survive

    @property
    def needs_a_person(self) -> bool:
        return self.expected != "SUCCESSFUL" or any(o.get("status", {}).get("state") == "FAILED" for o in self.objects)


JOBS = [
    DemoJob(
        name="nightly-backup",
        expected="SUCCESSFUL",
        seconds=3,
        final_state="SUCCESSFUL",
        objects=[
            {"name": "Sales", "path": "/", "type": "Project"},
            {"name": "m_load_orders", "path": "/Sales", "type": "DTEMPLATE"},
            {"name": "mt_load_orders", "path": "/Sales", "type": "MTT"},
        ],
    ),
    DemoJob(
        name="promote-to-prod",
        expected="FAILED",
        seconds=2,
        final_state="FAILED",
        objects=[
            {"name": "Finance", "path": "/", "type": "Project", "status": {"state": "SUCCESSFUL"}},
            {
                "name": "tf_month_end",
                "path": "/Finance",
                "type": "TASKFLOW",
                "status": {"state": "FAILED", "message": "Referenced object mt_close_books not found"},
            },
            {
                "name": "conn_sap",
                "path": None,
                "type": "Connection",
                "status": {"state": "FAILED", "message": "Connection password is not exportable"},
            },
        ],
    ),
    DemoJob(
        name="ci-export",
        expected="SUCCESSFUL",
        seconds=4,
        final_state="SUCCESSFUL",
        objects=[{"name": "m_ci_smoke", "path": "/CI", "type": "DTEMPLATE"}],
        faults=[
            {"route": "status", "status": 401, "after": 1},  # the session expired between polls
            {"route": "status", "status": 429, "retry_after": 1, "after": 1},  # then IICS throttles
        ],
        expected_errors=(401, 429),
    ),
]


@dataclass
class JobReport:
    job: DemoJob
    job_id: str
    detail: dict | None = None
    log_head: list[str] = field(default_factory=list)
    detection_delay: float | None = None
    errors_met: list[int] = field(default_factory=list)
    email: dict | None = None  # the alert topic's notification
    slack: dict | None = None  # the Slack message

    @property
    def as_scripted(self) -> bool:
        return (
            self.detail is not None
            and self.detail["state"] == self.job.expected
            and all(code in self.errors_met for code in self.job.expected_errors)
            and (self.email is not None and self.slack is not None) == self.job.needs_a_person
        )


def run(out: TextIO = sys.stdout) -> int:
    """Run the demo; return the exit code (0: every job ended as scripted)."""
    with (
        IicsEmulator(username=USERNAME, password=PASSWORD) as emulator,
        FakeSlack() as slack,
        LocalStack(PARAMETERS) as stack,
    ):
        stack.put_iics_secret(USERNAME, PASSWORD, emulator.url)
        stack.client("secretsmanager").create_secret(Name=SLACK_SECRET, SecretString=slack.url)
        stack.warm(WARM)  # a stack that has run before: the seconds-long jobs do not wait for cold starts
        capture = stack.capture_events()
        inbox = TopicInbox(stack, stack.outputs["AlertTopicArn"])
        reports = [_add_job(emulator, job) for job in JOBS]
        progress = Progress(out, labels={r.job_id: r.job.name for r in reports})
        stack.on_invocation(progress)
        _say(out, f"IICS emulator at {emulator.url}; state machine '{stack.state_machine_arn.rsplit(':', 1)[-1]}'")
        _say(out, "Announcing three export jobs on EventBridge (source iics.export) ...\n")
        for report in reports:
            stack.submit({"jobId": report.job_id, "name": report.job.name})
        for execution in stack.executions():
            stack.wait(execution["executionArn"], timeout=45)
        _collect(stack, capture, emulator, progress, reports)
        _collect_alerts(inbox, slack, reports)
    for report in reports:
        _summarise(out, report)
    passed = all(r.as_scripted for r in reports)
    _say(out, "All three jobs ended as scripted." if passed else "Some jobs did NOT end as scripted.")
    return 0 if passed else 1


def _add_job(emulator: IicsEmulator, job: DemoJob) -> JobReport:
    job_id = emulator.add_job(
        name=job.name,
        schedule=[{"state": "IN_PROGRESS", "seconds": job.seconds}, {"state": job.final_state}],
        objects=job.objects,
    )
    for fault in job.faults:
        emulator.add_fault(Fault(job_id=job_id, **fault))
    return JobReport(job=job, job_id=job_id)


def _collect(
    stack: LocalStack, capture: OutcomeCapture, emulator: IicsEmulator, progress: Progress, reports: list[JobReport]
) -> None:
    events = {e["detail"]["jobId"]: e for e in capture.drain()}
    s3 = stack.client("s3")
    for report in reports:
        event = events.get(report.job_id)
        report.detail = event["detail"] if event else None
        report.errors_met = [
            r.status for r in emulator.requests if report.job_id in r.path and r.status and r.status >= 400
        ]
        if not report.detail:
            continue
        if report.detail.get("log"):
            body = s3.get_object(Bucket=report.detail["log"]["bucket"], Key=report.detail["log"]["key"])["Body"]
            report.log_head = body.read().decode("utf-8", "replace").splitlines()[:LOG_LINES_SHOWN]
        ended = report.detail.get("endTime")
        if ended and report.job_id in progress.detected_at:
            end = datetime.fromisoformat(ended.replace("Z", "+00:00")).timestamp()
            report.detection_delay = progress.detected_at[report.job_id] - end


def _collect_alerts(inbox: TopicInbox, slack: FakeSlack, reports: list[JobReport]) -> None:
    """Alerts travel asynchronously (rule -> notifier -> SNS; rule -> queue -> Slack): wait for them."""
    expected = sum(r.job.needs_a_person for r in reports)
    notifications = inbox.messages(expected=expected, timeout=15)
    deadline = time.monotonic() + 15
    while len(slack.delivered) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    for report in reports:
        report.email = next((n for n in notifications if report.job_id in n.get("Subject", "")), None)
        report.slack = next((p for p in slack.delivered if report.job_id in p.get("text", "")), None)


def _summarise(out: TextIO, report: JobReport) -> None:
    detail = report.detail
    mark = "ok " if report.as_scripted else "!! "
    _say(out, f"\n{mark}{report.job.name} ({report.job_id}): expected {report.job.expected}")
    if detail is None:
        _say(out, "    no outcome event arrived")
        return
    delay = f"{report.detection_delay:.1f}s" if report.detection_delay is not None else "n/a"
    _say(out, f"    outcome {detail['state']}, detected {delay} after the job ended, {detail['polls']} polls")
    if report.job.expected_errors:
        _say(out, f"    IICS errors met and survived: {', '.join(map(str, report.errors_met)) or 'none'}")
    if detail.get("log"):
        _say(
            out, f"    log: s3://{detail['log']['bucket']}/{detail['log']['key']} ({detail['log']['sizeBytes']} bytes)"
        )
        for line in report.log_head:
            _say(out, f"      | {line[:110]}")
    else:
        _say(out, f"    log: not archived ({detail.get('logError')})")
    _say(out, "    event: " + json.dumps(_event_digest(detail)))
    if report.email is None and report.slack is None:
        _say(out, "    alert: none (nothing here needs a person)")
        return
    if report.email:
        _say(out, f"    alert e-mail: {report.email['Subject']}")
        for line in report.email["Message"].splitlines()[2:5]:
            _say(out, f"      | {line}")
    if report.slack:
        _say(out, f"    alert Slack: {report.slack['text']}")


def _event_digest(detail: dict) -> dict:
    """The fields a reader checks first; the whole detail is in events/outcome.schema.json's shape."""
    keys = ("state", "jobId", "jobName", "iicsState", "message", "objects", "durationSeconds")
    digest = {k: detail.get(k) for k in keys}
    if detail.get("failedObjects"):
        digest["failedObjects"] = [f"{o['name']}: {o['message']}" for o in detail["failedObjects"]]
    return digest


def _say(out: TextIO, text: str) -> None:
    print(text, file=out, flush=True)


if __name__ == "__main__":
    quiet_moto()
    sys.exit(run())

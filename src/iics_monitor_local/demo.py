"""`make demo`: the whole pipeline on this machine, in under a minute.

Starts the IICS emulator on 127.0.0.1 and an AWS account (moto) built from template.yaml, then
announces three export jobs through the upstream EventBridge event:
- nightly-backup succeeds after a few polls;
- promote-to-prod fails, with failed objects;
- ci-export meets a 401 (session expired) and a 429 (throttled) on the way, and still succeeds.
and, at the same time, one promotion (release-42) from the emulated org dev to the org prod: the
export succeeds, its package is uploaded to prod and imported, and one object fails to import because
prod lacks the connection it uses, which the import log says. The promotion ends FAILED at step import.

It prints one line per poll per job as the functions return, then a summary per job, with the
alert e-mail (SNS) and Slack message (to a fake Slack on 127.0.0.1) for the job that needs a
person, then the promotion's outcome and the import log's error lines. The exit code is 0 only if
every job and the promotion ended as scripted, alerts included.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from iics_monitor_local.emulator import Fault, IicsEmulator
from iics_monitor_local.progress import Progress, promotion_line
from iics_monitor_local.slack_fake import FakeSlack
from iics_monitor_local.stack import LocalStack, TopicInbox, quiet_moto

USERNAME = "demo@example.com"
PASSWORD = "demo-password-never-printed"  # noqa: S105 - the emulator's made-up user
SLACK_SECRET = "iics-export-monitor/slack"  # noqa: S105 - a secret name, not a secret
# Short waits so the demo fits in a minute; production defaults are 15 s growing to 300 s.
# Warm workers per function before the jobs start, as on a stack in use (three jobs at once).
# The promotion's start steps (StartExportFunction, PromoteFunction) run once each, one at a time.
WARM = {
    "StartMonitorFunction": 1,
    "CheckStatusFunction": 3,
    "ArchiveLogFunction": 3,
    "NotifyTopicFunction": 1,
    "StartExportFunction": 1,
    "PromoteFunction": 1,
}
PARAMETERS = {"InitialWaitSeconds": 1, "MaxWaitSeconds": 2, "SlackWebhookSecretName": SLACK_SECRET}
LOG_LINES_SHOWN = 4
PROMOTION_DETAIL_TYPE = "IICS Promotion State Change"
IMPORT_DETAIL_TYPE = "IICS Import Job State Change"


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


@dataclass(frozen=True)
class DemoPromotion:
    """A promotion between two emulated orgs, each with its own user, in which one object fails to import."""

    name: str
    from_org: str
    to_org: str
    objects: tuple[str, ...]  # object ids exported from ``from_org``
    failing_object: str  # the one whose import fails in ``to_org``
    why: str  # what the import log says of it
    expected: tuple[str, str | None] = ("FAILED", "import")  # the promotion's state and failed step
    logins: dict[str, tuple[str, str]] = field(default_factory=dict)  # org -> (username, password)

    def request(self) -> dict:
        # Packages are not verified yet: allowUnverified lets the scripted import happen.
        return {
            "promote": {
                "from": self.from_org,
                "to": self.to_org,
                "objects": [{"id": object_id} for object_id in self.objects],
                "name": self.name,
                "conflictResolution": "OVERWRITE",
                "allowUnverified": True,
            }
        }


PROMOTION = DemoPromotion(
    name="release-42",
    from_org="dev",
    to_org="prod",
    objects=("DemoFinanceProject00001", "DemoCloseMapping0000001"),
    failing_object="DemoCloseMapping0000001",
    why="Connection conn_erp does not exist in the target org",
    logins={
        "dev": ("dev-deployer@example.com", "dev-password-never-printed"),
        "prod": ("prod-deployer@example.com", "prod-password-never-printed"),
    },
)


@dataclass
class PromotionReport:
    promotion: DemoPromotion
    detail: dict | None = None  # the IICS Promotion State Change
    imported: dict | None = None  # the import job's own outcome (its log summary)
    import_log: str = ""

    @property
    def log_errors(self) -> list[dict]:
        return (((self.imported or {}).get("logSummary") or {}).get("errors") or {}).get("first") or []

    @property
    def as_scripted(self) -> bool:
        """Ended at the scripted step, and the import log (archived, and its summary) says why."""
        return (
            self.detail is not None
            and (self.detail["state"], self.detail["failedStep"]) == self.promotion.expected
            and any(self.promotion.why in e.get("message", "") for e in self.log_errors)
            and self.promotion.why in self.import_log
        )


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
    """Run the demo; return the exit code (0: every job and the promotion ended as scripted)."""
    promotion = PromotionReport(PROMOTION)
    with (
        IicsEmulator(username=USERNAME, password=PASSWORD) as emulator,
        FakeSlack() as slack,
        LocalStack(PARAMETERS, orgs=_add_orgs(emulator, PROMOTION)) as stack,
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
        _say(
            out,
            f"Announcing {len(reports)} export jobs and promotion {PROMOTION.name} ({PROMOTION.from_org} -> "
            f"{PROMOTION.to_org}) on EventBridge (source iics.export) ...\n",
        )
        stack.submit(PROMOTION.request())
        for report in reports:
            stack.submit({"jobId": report.job_id, "name": report.job.name})
        for execution in stack.executions():
            stack.wait(execution["executionArn"], timeout=45)
        events = capture.drain()
        _collect(stack, events, emulator, progress, reports)
        _collect_promotion(stack, events, promotion)
        # the failed import needs a person too: its alerts are waited for, so none is cut off at the end
        _collect_alerts(inbox, slack, reports, also_expected=int(bool(promotion.imported)))
    for report in reports:
        _summarise(out, report)
    _summarise_promotion(out, promotion)
    passed = all(r.as_scripted for r in reports) and promotion.as_scripted
    _say(
        out,
        "All three jobs and the promotion ended as scripted."
        if passed
        else "Some jobs or the promotion did NOT end as scripted.",
    )
    return 0 if passed else 1


def _add_orgs(emulator: IicsEmulator, promotion: DemoPromotion) -> dict[str, dict[str, str]]:
    """The promotion's two orgs in the emulator, each with its own user; their logins, as the stack's
    org secrets take them. The target org lacks what one object needs: its import fails."""
    logins = {}
    for org, (username, password) in promotion.logins.items():
        emulated = emulator.add_org(username, password, name=org.capitalize())
        logins[org] = {"username": username, "password": password, "loginUrl": emulator.url}
        if org == promotion.to_org:
            emulator.fail_imports(emulated.org_id, {promotion.failing_object: promotion.why})
    return logins


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
    stack: LocalStack, captured: list[dict], emulator: IicsEmulator, progress: Progress, reports: list[JobReport]
) -> None:
    events = {e["detail"]["jobId"]: e for e in captured if e["detail-type"] != PROMOTION_DETAIL_TYPE}
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


def _collect_promotion(stack: LocalStack, captured: list[dict], report: PromotionReport) -> None:
    """The promotion's outcome, its import job's own outcome, and the archived import log."""
    promotions = [e["detail"] for e in captured if e["detail-type"] == PROMOTION_DETAIL_TYPE]
    report.detail = promotions[0] if len(promotions) == 1 else None
    imported = ((report.detail or {}).get("import") or {}).get("jobId")
    report.imported = next(
        (e["detail"] for e in captured if e["detail-type"] == IMPORT_DETAIL_TYPE and e["detail"]["jobId"] == imported),
        None,
    )
    log = (report.imported or {}).get("log")
    if log:
        body = stack.client("s3").get_object(Bucket=log["bucket"], Key=log["key"])["Body"]
        report.import_log = body.read().decode("utf-8", "replace")


def _collect_alerts(inbox: TopicInbox, slack: FakeSlack, reports: list[JobReport], also_expected: int = 0) -> None:
    """Alerts travel asynchronously (rule -> notifier -> SNS; rule -> queue -> Slack): wait for them
    (``also_expected``: alerts of jobs that are not ``reports``', the promotion's)."""
    expected = sum(r.job.needs_a_person for r in reports) + also_expected
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


def _summarise_promotion(out: TextIO, report: PromotionReport) -> None:
    promotion, detail = report.promotion, report.detail
    mark = "ok " if report.as_scripted else "!! "
    state, step = promotion.expected
    expected = f"{state} at step {step}" if step else state
    _say(out, f"\n{mark}promotion {promotion.name} ({promotion.from_org} -> {promotion.to_org}): expected {expected}")
    if detail is None:
        _say(out, "    no promotion outcome arrived")
        return
    _say(out, f"    outcome {promotion_line(detail)} ({detail['promotionId']})")
    for name in ("export", "import"):
        job = detail.get(name) or {}
        if job.get("jobId"):
            objects = job.get("objects") or {}
            _say(
                out,
                f"    {name} {job['jobId']}: {job.get('state')}, {objects.get('successful', 0)} of "
                f"{objects.get('total', 0)} objects" + (f", log {job['log']['key']}" if job.get("log") else ""),
            )
    if detail["export"] and detail["export"].get("package"):
        _say(
            out, f"    package: {detail['export']['package']['key']} ({detail['export']['package']['sizeBytes']} bytes)"
        )
    for error in report.log_errors:
        _say(out, f"    import log says: {error.get('code')} {error.get('message')}")


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

"""Alerts for outcomes that need a person: the facts they show, and the alert-topic message.

``Alert`` reads an outcome event (events/outcome.schema.json) defensively, tolerating fields added in
later versions, and scrubs every text it takes (``iics_monitor.scrub``): the e-mail, the Amazon Q
notification and the Slack message are all worded from an ``Alert``, and anyone allowed to put events
on the bus can send one. ``subject`` and ``text_body`` word it for people (e-mail, SMS); Slack's message and
the Amazon Q Developer custom notification are built in ``iics_monitor.slack``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from iics_monitor.errors import InvalidInput
from iics_monitor.loginsight import format_for_slack
from iics_monitor.outcome import DETAIL_TYPES, OUTCOMES, SOURCE
from iics_monitor.scrub import scrub
from iics_monitor.validation import EXPORT, IMPORT, ORG_NAME

LISTED_FAILED_OBJECTS = 10
SUBJECT_LIMIT = 100  # SNS: ASCII, no line breaks, under 100 characters
QUOTED_ERRORS = 3  # first error lines of an import's log an alert quotes (the outcome keeps up to 5)
_KIND_OF = {detail_type: kind for kind, detail_type in DETAIL_TYPES.items()}


@dataclass(frozen=True)
class FailedObject:
    name: str | None
    type: str | None
    path: str | None
    message: str | None


@dataclass(frozen=True)
class Alert:
    """The facts an alert shows, read from an outcome event. Tolerates fields added in later versions."""

    job_id: str | None
    job_name: str | None
    state: str
    iics_state: str | None
    message: str | None
    reason: str | None
    error_type: str | None
    start_time: str | None
    end_time: str | None
    duration_seconds: float | None
    total: int
    successful: int
    failed: int
    failed_objects: tuple[FailedObject, ...]
    log_bucket: str | None
    log_key: str | None
    log_error: str | None
    execution_arn: str | None
    polls: int
    iics_error_code: str | None = None
    log_summary: str | None = None  # the log insight, as one line of text (iics_monitor.loginsight)
    warning: str | None = None  # a success IICS qualified (schemaMinorVersion 2)
    kind: str = EXPORT  # schemaMinorVersion 3: an import's alert says so, and names its org
    org: str | None = None
    first_errors: tuple[str, ...] = ()  # "CODE message" of the log's first errors

    @classmethod
    def from_event(cls, event: Any) -> Alert:
        if not isinstance(event, Mapping) or not isinstance(event.get("detail"), Mapping):
            raise InvalidInput("an alert must be an EventBridge event with a detail object")
        if event.get("source") != SOURCE or event.get("detail-type") not in _KIND_OF:
            raise InvalidInput(f"an alert must be a {' or '.join(map(repr, _KIND_OF))} event from {SOURCE}")
        detail = event["detail"]
        if detail.get("state") not in OUTCOMES:
            raise InvalidInput(f"the outcome state must be one of {', '.join(OUTCOMES)}")
        objects = _mapping(detail.get("objects"))
        log = _mapping(detail.get("log"))
        listed = detail.get("failedObjects") if isinstance(detail.get("failedObjects"), list) else []
        return cls(
            job_id=_text(detail.get("jobId")),
            job_name=_text(detail.get("jobName")),
            state=detail["state"],
            iics_state=_text(detail.get("iicsState")),
            message=_text(detail.get("message")),
            reason=_text(detail.get("reason")),
            error_type=_text(detail.get("errorType")),
            start_time=_text(detail.get("startTime")),
            end_time=_text(detail.get("endTime")),
            duration_seconds=_seconds(detail.get("durationSeconds")),
            total=_count(objects.get("total")),
            successful=_count(objects.get("successful")),
            failed=_count(objects.get("failed")),
            failed_objects=tuple(
                FailedObject(*(_text(o.get(k)) for k in ("name", "type", "path", "message")))
                for o in listed
                if isinstance(o, Mapping)
            ),
            log_bucket=_text(log.get("bucket")),
            log_key=_text(log.get("key")),
            log_error=_text(detail.get("logError")),
            execution_arn=_text(detail.get("executionArn")),
            polls=_count(detail.get("polls")),
            iics_error_code=_text(detail.get("iicsErrorCode")),
            log_summary=_text(format_for_slack(detail["logSummary"]))
            if isinstance(detail.get("logSummary"), Mapping)
            else None,
            warning=_text(detail.get("warning")),
            kind=_KIND_OF[event["detail-type"]],
            org=detail["org"] if isinstance(detail.get("org"), str) and ORG_NAME.fullmatch(detail["org"]) else None,
            first_errors=_first_errors(detail.get("logSummary")),
        )

    @property
    def marker(self) -> str:
        if self.state in ("FAILED", "ERROR"):
            return ":red_circle:"
        if self.state == "TIMED_OUT" or self.failed or self.warning:
            return ":warning:"
        return ":large_green_circle:"

    @property
    def label(self) -> str:
        if self.state == "SUCCESSFUL" and self.failed:
            return f"SUCCESSFUL with {self.failed} failed object{'s' if self.failed != 1 else ''}"
        if self.state == "SUCCESSFUL" and self.warning:
            return "SUCCESSFUL with a warning"
        return self.state

    @property
    def quoted_errors(self) -> tuple[str, ...]:
        """The log lines an alert quotes: an import's first errors, the first thing people read of it."""
        return self.first_errors if self.kind == IMPORT else ()

    @property
    def unlisted_failures(self) -> int:
        """Failed objects the alert does not name (the event lists up to 25, the alert up to 10)."""
        return max(self.failed, len(self.failed_objects)) - min(len(self.failed_objects), LISTED_FAILED_OBJECTS)


def _first_errors(summary: Any) -> tuple[str, ...]:
    """The log's first error lines, "CODE message", as the log insight kept them (scrubbed, bounded)."""
    errors = _mapping(_mapping(summary).get("errors")).get("first")
    entries = [e for e in errors if isinstance(e, Mapping)] if isinstance(errors, list) else []
    lines = (" ".join(filter(None, (_text(e.get("code")), _text(e.get("message"))))) for e in entries)
    return tuple(line[:300] for line in lines if line)[:QUOTED_ERRORS]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else scrub(value) or None


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _seconds(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    return float(value) if ok else None


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def log_console_url(alert: Alert, region: str) -> str:
    return (
        f"https://{region}.console.aws.amazon.com/s3/object/{quote(alert.log_bucket or '', safe='')}"
        f"?region={region}&prefix={quote(alert.log_key or '', safe='/')}"
    )


def execution_console_url(alert: Alert, region: str) -> str:
    return (
        f"https://{region}.console.aws.amazon.com/states/home?region={region}"
        f"#/v2/executions/details/{quote(alert.execution_arn or '', safe=':')}"
    )


def subject(alert: Alert) -> str:
    """ "IICS export FAILED: promote-to-prod (k7A7...)", as SNS allows: ASCII, one line, < 100 chars."""
    job = " ".join(filter(None, [alert.job_name, f"({alert.job_id})" if alert.job_id else None])) or "unknown job"
    text = f"IICS {alert.kind} {alert.label}: {job}"
    text = "".join(c if " " <= c <= "~" else "?" for c in text)
    return text if len(text) < SUBJECT_LIMIT else text[: SUBJECT_LIMIT - 4] + "..."


def text_body(alert: Alert, region: str) -> str:
    """The plain-text alert: what happened, why, what failed, where the log is."""
    job = " ".join(filter(None, [alert.job_name, f"({alert.job_id})" if alert.job_id else None])) or "An IICS job"
    lines = [f"IICS {alert.kind} job {job} ended {alert.label}.", ""]
    facts = [
        ("State", alert.state + (f" (IICS: {alert.iics_state})" if alert.iics_state else "")),
        ("Org", alert.org),
        ("Duration", duration_text(alert.duration_seconds)),
        ("Objects", f"{alert.total} total, {alert.successful} successful, {alert.failed} failed"),
        ("Warning", alert.warning),
        ("Reason", alert.reason),
        ("Error type", alert.error_type),
        ("Message", alert.message),
        ("Polls", str(alert.polls)),
    ]
    lines += [f"{name + ':':<12}{value}" for name, value in facts if value]
    if alert.failed_objects:
        lines += ["", "Failed objects:"]
        for item in alert.failed_objects[:LISTED_FAILED_OBJECTS]:
            where = ", ".join(filter(None, [item.type, item.path]))
            lines.append(f"- {item.name or '(unnamed)'}" + (f" ({where})" if where else "") + f": {item.message or ''}")
        if alert.unlisted_failures:
            lines.append(f"...and {alert.unlisted_failures} more")
    if alert.quoted_errors:
        lines += ["", "First errors in the log:", *(f"> {line}" for line in alert.quoted_errors)]
    lines.append("")
    if alert.log_bucket and alert.log_key:
        lines += [
            f"Log:        s3://{alert.log_bucket}/{alert.log_key}",
            f"            {log_console_url(alert, region)}",
        ]
    else:
        lines.append(f"Log:        not archived ({alert.log_error or 'no reason given'})")
    if alert.execution_arn:
        lines.append(f"Execution:  {execution_console_url(alert, region)}")
    return "\n".join(lines) + "\n"

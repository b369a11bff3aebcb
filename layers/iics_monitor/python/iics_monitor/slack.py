"""Slack alerts for outcome events: the Block Kit message, its Amazon Q twin, and the webhook adapter
(iics_monitor.slack_delivery posts each alert once).

An alert is the whole EventBridge outcome event (detail: events/outcome.schema.json). Every value
taken from the event is escaped for Slack (&, <, >), so a job or object name can neither break the
message nor mention @channel. The webhook URL is a secret (its path is the credential): it reaches
no log line, exception, metric, trace or return value.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3

from iics_monitor.alerts import (
    LISTED_FAILED_OBJECTS,
    Alert,
    duration_text,
    execution_console_url,
    log_console_url,
)
from iics_monitor.client import parse_retry_after
from iics_monitor.config import loopback_http, optional_seconds, require_env, required_table, secret_verdict_table
from iics_monitor.credentials import SecretText, read_secret
from iics_monitor.errors import ConfigError, MonitorError
from iics_monitor.hosts import is_loopback
from iics_monitor.observability import logger, tracer
from iics_monitor.scrub import remember
from iics_monitor.validation import EXPORT
from iics_monitor.verdicts import SecretVerdicts

SLACK_HOST = "hooks.slack.com"
DEFAULT_TIMEOUT = urllib3.Timeout(connect=3.0, read=10.0)
POST_ATTEMPTS = 3
FIRST_BACKOFF_SECONDS = 1.0
# A longer Retry-After is not waited out in this invocation: the post fails and SQS delivers it again later.
MAX_RETRY_AFTER_SECONDS = 10.0
# Kept back after each attempt, for the idempotency record's update and the batch's answer.
RECORD_RESERVE_SECONDS = 2.0
# Slack's answers for a webhook that no longer exists (revoked, app removed, channel archived): the
# webhook's secret version is refused for the whole stack (iics_monitor.verdicts), not tried per alert.
REVOKED_STATUSES = frozenset({403, 404, 410})

# Block Kit limits (https://api.slack.com/reference/block-kit/blocks): header text, section text, one field.
HEADER_LIMIT = 150
SECTION_TEXT_LIMIT = 3000
FIELD_TEXT_LIMIT = 2000
# Amazon Q Developer in chat applications: the longest custom notification description.
Q_DESCRIPTION_LIMIT = 8000

_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
_SLACK_ERROR = re.compile(r"[A-Za-z0-9_.:\- ]{1,100}")  # Slack answers errors as short snake_case words
_PARTIAL_ENTITY = re.compile(r"&[a-z]*$")
_HEADERS = {"Content-Type": "application/json; charset=utf-8"}

# The webhook URL must reach no trace or log: X-Ray records the URL of every HTTP call it sees, and
# urllib3 logs request paths at DEBUG.
tracer.ignore_endpoint(hostname=SLACK_HOST)
logging.getLogger("urllib3.connectionpool").setLevel(logging.INFO)


# --- errors --------------------------------------------------------------------------------------------------------


class SlackError(MonitorError):
    """Slack did not take the message. The text names the HTTP status and Slack's error, never the URL."""

    #: Worth another try (in this invocation with backoff, later through SQS redelivery).
    transient = False

    def __init__(self, message: str, *, status: int | None = None, error: str | None = None) -> None:
        super().__init__(message)
        self.message: str = self.args[0]  # scrubbed by MonitorError
        self.status = status
        self.error = error

    def __str__(self) -> str:
        parts = [self.message]
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.error:
            parts.append(f"error {self.error}")
        return " | ".join(parts)


class SlackRejected(SlackError):
    """Slack refused the request (4xx other than 429): a revoked webhook or a bad payload. Not retried here."""


class SlackUnavailable(SlackError):
    """Slack answered 5xx, or could not be reached, or timed out."""

    transient = True


class SlackDeferred(SlackUnavailable):
    """The time left in this invocation cannot cover another attempt: nothing was sent, SQS delivers it again."""


class SlackUnconfirmed(SlackError):
    """The request went out but no answer came in time (read timeout, dropped connection): Slack may have
    posted it. Never sent again, here or on redelivery: an alert shown twice is avoided at the cost of one
    that may be missing (docs/reliability.md)."""


class SlackThrottled(SlackUnavailable):
    """Slack answered 429; ``retry_after`` is its Retry-After in seconds, if it sent one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


def message_worst_case_seconds(timeout: urllib3.Timeout = DEFAULT_TIMEOUT) -> float:
    """The longest one message can take: every attempt at its timeouts, the longest wait between two,
    and the record reserve. NotifySlackFunction's Timeout must cover it (template.yaml says so)."""
    attempts = POST_ATTEMPTS * _attempt_seconds(timeout)
    return attempts + (POST_ATTEMPTS - 1) * MAX_RETRY_AFTER_SECONDS + RECORD_RESERVE_SECONDS


def _attempt_seconds(timeout: urllib3.Timeout) -> float:
    return float(timeout.connect_timeout) + float(timeout.read_timeout)


def error_from_response(status: int, headers: Any, body: bytes) -> SlackError:
    """The typed error for a non-2xx webhook answer. The one place HTTP answers become error types."""
    text = " ".join(body[:200].decode("utf-8", "replace").split())
    error = text if _SLACK_ERROR.fullmatch(text) else None  # anything else (an HTML page, an echo) is dropped
    if status == 429:
        retry_after = parse_retry_after(headers.get("Retry-After"))
        return SlackThrottled(
            "Slack is rate limiting this webhook", status=status, error=error, retry_after=retry_after
        )
    if status >= 500:
        return SlackUnavailable("Slack could not take the message", status=status, error=error)
    return SlackRejected("Slack refused the message", status=status, error=error)


# --- configuration ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlackConfig:
    """What functions/notify_slack needs.

    SLACK_READ_TIMEOUT_SECONDS (optional, 1 to 10, default 10) shortens the wait for Slack's answer; the
    function's Timeout is set for the default (``message_worst_case_seconds``). ALLOW_LOOPBACK_HTTP (the
    local stack's, never the template's) lets the webhook be a fake Slack on this machine.
    """

    secret_name: str
    region: str
    idempotency_table: str
    read_timeout_seconds: float = float(DEFAULT_TIMEOUT.read_timeout)
    verdict_table: str | None = None
    loopback_http: bool = False

    @property
    def timeout(self) -> urllib3.Timeout:
        return urllib3.Timeout(connect=DEFAULT_TIMEOUT.connect_timeout, read=self.read_timeout_seconds)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SlackConfig:
        secret_name = require_env(env, "SLACK_WEBHOOK_SECRET_NAME")
        region = env.get("AWS_REGION", "").strip() or env.get("AWS_DEFAULT_REGION", "").strip()
        if not _REGION.fullmatch(region):
            raise ConfigError("environment variable AWS_REGION (or AWS_DEFAULT_REGION) must be a region name")
        longest = int(DEFAULT_TIMEOUT.read_timeout)
        return cls(
            secret_name=secret_name,
            region=region,
            idempotency_table=required_table(env, "IDEMPOTENCY_TABLE"),
            read_timeout_seconds=optional_seconds(env, "SLACK_READ_TIMEOUT_SECONDS", 1, longest, longest),
            verdict_table=secret_verdict_table(env),
            loopback_http=loopback_http(env),
        )


def check_webhook_url(url: Any, source: str, *, loopback_http: bool = False) -> str:
    """Return ``url`` if it is a Slack incoming webhook (or, with ``loopback_http``, which only the local
    harness turns on, a fake Slack over http on this machine).

    The error names ``source``, never the value: the URL is the credential.
    """
    try:
        parts = urlsplit(url) if isinstance(url, str) and url.isprintable() and " " not in url else None
        port = parts.port if parts else None
    except ValueError:
        parts = port = None
    official = (
        parts is not None
        and parts.scheme == "https"
        and parts.hostname == SLACK_HOST
        and port is None
        and parts.path.startswith("/services/")
    )
    local = loopback_http and parts is not None and parts.scheme == "http" and is_loopback(parts.hostname)
    if not (official or local) or parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(f"{source} must be a Slack incoming-webhook URL (https://{SLACK_HOST}/services/...)")
    return url


def secret_webhook_url(
    secret_name: str, client: Any = None, *, loopback_http: bool = False
) -> Callable[[], SecretText]:
    """A provider of the webhook URL kept in Secrets Manager, as the raw URL or as JSON {"webhookUrl": "..."},
    with the secret's version. Read on every post, so a new URL is used at once."""
    source = f"secret {secret_name}"

    def provide() -> SecretText:
        secret = read_secret(secret_name, client)
        text = secret.text
        if text.startswith("{"):
            try:
                text = json.loads(text).get("webhookUrl")
            except (ValueError, AttributeError):
                raise ConfigError(f'{source} must hold the webhook URL or JSON {{"webhookUrl": "..."}}') from None
        return SecretText(check_webhook_url(text, source, loopback_http=loopback_http), secret.version)

    return provide


# --- the webhook -----------------------------------------------------------------------------------------------------


class SlackWebhook:
    """Posts messages to one Slack incoming webhook.

    ``webhook_url`` is called for every post, so a rotated secret is used at once. With ``verdicts``, a webhook
    Slack answered as gone (``REVOKED_STATUSES``) is not posted to again, by any function of the stack,
    until its secret has a new version.
    Failures where Slack did not take the message (429, 5xx, no connection) are tried again up to
    ``POST_ATTEMPTS`` times in all, honouring Retry-After up to ``MAX_RETRY_AFTER_SECONDS``; anything
    else raises at once, and so does a request that got no answer in time (``SlackUnconfirmed``).
    Each attempt starts only if ``seconds_left()`` covers it (connect + read timeout) and the record
    reserve, and each wait only if the attempt after it still fits.
    """

    def __init__(
        self,
        webhook_url: Callable[[], str | SecretText],
        http: urllib3.PoolManager | None = None,
        timeout: urllib3.Timeout = DEFAULT_TIMEOUT,
        sleep: Callable[[float], None] = time.sleep,
        verdicts: SecretVerdicts | None = None,
        loopback_http: bool = False,  # the local harness's fake Slack over http on this machine
    ) -> None:
        self._webhook_url = webhook_url
        self._verdicts = verdicts
        self._loopback_http = loopback_http
        self._http = http or urllib3.PoolManager(retries=False, timeout=timeout)
        self._timeout = timeout
        self._sleep = sleep

    def fits(self, seconds: float) -> bool:
        """Whether ``seconds`` cover one more attempt at its timeouts and the record reserve."""
        return seconds >= _attempt_seconds(self._timeout) + RECORD_RESERVE_SECONDS

    def post(self, payload: Mapping[str, Any], seconds_left: Callable[[], float] = lambda: math.inf) -> None:
        webhook = self._webhook_url()
        version = webhook.version if isinstance(webhook, SecretText) else None
        url = check_webhook_url(
            webhook.text if isinstance(webhook, SecretText) else webhook,
            "the Slack webhook URL",
            loopback_http=self._loopback_http,
        )
        remember(url, urlsplit(url).path)  # the path is the credential: a proxy's error page may echo it
        if self._verdicts is not None and version is not None:
            refusal = self._verdicts.refusal(version)
            if refusal is not None:
                raise SlackRejected(
                    f"Slack answered {version} as gone at {refusal.at}; no alert is posted with it again. Put a "
                    f"working webhook URL in the secret: its new version is used at once",
                    status=refusal.status,
                )
        body = json.dumps(payload, ensure_ascii=False).encode()
        if not self.fits(seconds_left()):
            raise SlackDeferred("no time left in this invocation for a Slack post")
        for attempt in range(1, POST_ATTEMPTS + 1):
            failure = self._send(url, body)
            if failure is None:
                return
            if failure.status in REVOKED_STATUSES and self._verdicts is not None and version is not None:
                self._verdicts.record_refusal(version, failure.status, failure.error)
            wait = _wait_before_retry(failure, attempt)
            last = attempt == POST_ATTEMPTS or wait > MAX_RETRY_AFTER_SECONDS or not self.fits(seconds_left() - wait)
            if not failure.transient or last:
                raise failure
            logger.warning(
                "Slack post failed; trying again",
                extra={"error": type(failure).__name__, "status": failure.status, "waitSeconds": wait},
            )
            self._sleep(wait)

    def _send(self, url: str, body: bytes) -> SlackError | None:
        try:
            response = self._http.request(
                "POST", url, body=body, headers=_HEADERS, timeout=self._timeout, retries=False, redirect=False
            )
        except (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ProtocolError) as error:
            # The request went out: Slack may have posted it. Only the error's type, as below.
            return SlackUnconfirmed(f"Slack did not answer the request: {type(error).__name__}")
        except urllib3.exceptions.HTTPError as error:
            # Only the error's type: urllib3's messages carry the host and sometimes the path.
            return SlackUnavailable(f"could not reach Slack: {type(error).__name__}")
        if 200 <= response.status < 300:
            return None
        return error_from_response(response.status, response.headers, response.data)


def _wait_before_retry(failure: SlackError, attempt: int) -> float:
    if isinstance(failure, SlackThrottled) and failure.retry_after is not None:
        return failure.retry_after
    return FIRST_BACKOFF_SECONDS * 2 ** (attempt - 1)


# --- rendering -------------------------------------------------------------------------------------------------------


def escape(text: str) -> str:
    """Slack's control characters as entities: the only escaping Slack decodes."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis, never inside an entity such as ``&amp;``."""
    if len(text) <= limit:
        return text
    return _PARTIAL_ENTITY.sub("", text[: limit - 1]) + "…"


def _value(text: str | None, limit: int, default: str = "") -> str:
    """An event value, escaped and clipped; ``default`` when absent."""
    return clip(escape(text), limit) if text else default


def _title(alert: Alert) -> str:
    name, job_id = _value(alert.job_name, 50), _value(alert.job_id, 64)
    job = f"{name} ({job_id})" if name and job_id else name or job_id or "unknown job"
    return clip(f"{alert.marker} {alert.label}: {job}", HEADER_LIMIT)


def _facts(alert: Alert) -> list[tuple[str, str]]:
    state = alert.state + (f" (IICS: {_value(alert.iics_state, 100)})" if alert.iics_state else "")
    facts = [
        ("State", state),
        ("Duration", duration_text(alert.duration_seconds)),
        ("Objects", f"{alert.total} total, {alert.successful} successful, {alert.failed} failed"),
        ("Polls", str(alert.polls)),
    ]
    if alert.kind != EXPORT or alert.org is not None:  # an export of the stack's own org: as it always was
        facts.insert(1, ("Job", alert.kind + (f" in org {_value(alert.org, 64)}" if alert.org else "")))
    return facts


def _notes(alert: Alert) -> list[str]:
    return [
        f"*{name}:* {_value(value, limit)}"
        for name, value, limit in (
            ("Warning", alert.warning, 600),
            ("Reason", alert.reason, 1200),
            ("Error type", alert.error_type, 100),
            ("IICS error code", alert.iics_error_code, 100),
            ("Message", alert.message, 1200),
            ("Log says", alert.log_summary, 600),
        )
        if value
    ] + [f"> {_value(line, 300)}" for line in alert.quoted_errors]


def _failed_object_lines(alert: Alert) -> list[str]:
    lines = []
    for item in alert.failed_objects[:LISTED_FAILED_OBJECTS]:
        line = f"• *{_value(item.name, 100, '(unnamed)')}*"
        line += "".join(f" · {_value(v, n)}" for v, n in ((item.type, 40), (item.path, 200)) if v)
        if item.message:
            line += f"\n      {_value(item.message, 300)}"
        lines.append(line)
    if alert.unlisted_failures:
        lines.append(f"…and {alert.unlisted_failures} more")
    return lines


def _link(url: str, label: str) -> str:
    return f"<{escape(url)}|{label}>"


def _log_line(alert: Alert, region: str) -> str:
    if alert.log_bucket and alert.log_key:
        url = log_console_url(alert, region)
        return f"*Log:* {_link(url, _value(f's3://{alert.log_bucket}/{alert.log_key}', 300))}"
    return f"*Log:* {_value(alert.log_error, 500, 'not archived')}"


def _execution_line(alert: Alert, region: str) -> str:
    if not alert.execution_arn:
        return "*Execution:* unknown"
    url = execution_console_url(alert, region)
    return f"*Execution:* {_link(url, _value(alert.execution_arn.rsplit(':', 1)[-1], 80))}"


def _pack(lines: Iterable[str], limit: int) -> list[str]:
    """``lines`` joined by newlines into as few texts of at most ``limit`` characters as possible."""
    texts: list[str] = []
    for line in lines:
        if texts and len(texts[-1]) + 1 + len(line) <= limit:
            texts[-1] += "\n" + line
        else:
            texts.append(clip(line, limit))
    return texts


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _slack_message(alert: Alert, region: str) -> dict[str, Any]:
    title = _title(alert)
    fields = [{"type": "mrkdwn", "text": clip(f"*{name}*\n{value}", FIELD_TEXT_LIMIT)} for name, value in _facts(alert)]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title, "emoji": True}},
        {"type": "section", "fields": fields},
    ]
    notes = _notes(alert)
    if notes:
        blocks.append(_section(clip("\n".join(notes), SECTION_TEXT_LIMIT)))
    failures = _failed_object_lines(alert)
    if failures:
        blocks.extend(_section(text) for text in _pack(["*Failed objects*", *failures], SECTION_TEXT_LIMIT))
    blocks.append(_section(f"{_log_line(alert, region)}\n{_execution_line(alert, region)}"))
    times = [
        f"{name} {_value(value, 40)}"
        for name, value in (("Started", alert.start_time), ("Ended", alert.end_time))
        if value
    ]
    if times:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(times)}]})
    return {"text": title, "blocks": blocks}


def build_message(event: Mapping[str, Any], region: str) -> dict[str, Any]:
    """The Block Kit message for an outcome event. Deterministic: the same event gives the same bytes."""
    return _slack_message(Alert.from_event(event), region)


def amazon_q_message(event: Mapping[str, Any], region: str) -> dict[str, Any]:
    """The same facts as an Amazon Q Developer in chat applications custom notification (for SNS).

    ``client-markdown`` is rendered in the chat platform's own markup, so Slack mrkdwn and its escaping
    apply. The title is the Slack header (at most 150 characters).
    """
    alert = Alert.from_event(event)
    lines = [f"*{name}:* {value}" for name, value in _facts(alert)]
    lines += [*_notes(alert), _log_line(alert, region), _execution_line(alert, region)]
    failures = _failed_object_lines(alert)
    if failures:
        lines += ["*Failed objects:*", *failures]
    description = _pack(lines, Q_DESCRIPTION_LIMIT)[0]  # whole lines only, so a link is never cut
    return {
        "version": "1.0",
        "source": "custom",
        "content": {"textType": "client-markdown", "title": _title(alert), "description": description},
    }

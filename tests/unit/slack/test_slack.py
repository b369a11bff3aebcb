"""slack: the alert message (checked against golden files), its Amazon Q twin, the webhook adapter against
a fake Slack on 127.0.0.1, and the rule that the webhook URL never leaks.

Regenerate the golden files after an intended change of the message with ``UPDATE_GOLDEN=1``, and read
the diff before committing it.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re

import boto3
import pytest
import urllib3
from moto import mock_aws

from iics_monitor import slack
from iics_monitor.errors import ConfigError, InvalidInput
from iics_monitor.observability import logger
from iics_monitor.slack import (
    DEFAULT_TIMEOUT,
    MAX_RETRY_AFTER_SECONDS,
    RECORD_RESERVE_SECONDS,
    SlackConfig,
    SlackDeferred,
    SlackRejected,
    SlackThrottled,
    SlackUnavailable,
    SlackUnconfirmed,
    SlackWebhook,
    amazon_q_message,
    build_message,
    secret_webhook_url,
)
from iics_monitor_local.slack_fake import FakeSlack, Reply
from tests.conftest import ROOT, assert_valid_outcome
from tests.unit.slack.conftest import TOKEN

GOLDEN = ROOT / "tests" / "golden" / "slack"
REGION = "eu-west-1"
ARN_PREFIX = "arn:aws:states:eu-west-1:123456789012:execution:IicsExportMonitor:"
ARN = ARN_PREFIX + "k7A75aikpuMNj4otBBZWnz-1"
BUCKET = "iics-export-monitor-archivebucket-1a2b3c"
# Block Kit limits not already named in slack.py.
MAX_FIELDS = 10
MAX_BLOCKS = 50
Q_TITLE_LIMIT = 250


# --- sample outcomes -------------------------------------------------------------------------------------------------


def failed_object(n: int, path: str = "/Sales/Orders") -> dict:
    return {
        "id": f"F{n:021d}",
        "name": f"m_orders_{n}",
        "path": path,
        "type": "DTEMPLATE",
        "message": f"Object {n} is locked by another user.",
    }


def log(job_id: str) -> dict:
    return {
        "bucket": BUCKET,
        "key": f"iics-export-logs/2026/11/28/{job_id}/export.log",
        "sizeBytes": 2048,
        "sha256": "5" * 64,
    }


def outcome_event(**detail) -> dict:
    """An outcome event as EventBridge delivers it; ``detail`` overrides a FAILED outcome's fields."""
    job_id = detail.get("jobId", "k7A75aikpuMNj4otBBZWnz")
    base = {
        "schemaVersion": "1",
        "jobId": job_id,
        "jobName": "promote-to-prod",
        "state": "FAILED",
        "iicsState": "FAILED",
        "message": "Export failed.",
        "reason": None,
        "errorType": None,
        "startTime": "2026-11-28T09:40:00.000Z",
        "endTime": "2026-11-28T09:42:05.000Z",
        "durationSeconds": 125.0,
        "objects": {"total": 14, "successful": 2, "failed": 12},
        "failedObjects": [
            failed_object(n, "/Sales & Marketing/Orders" if n == 0 else "/Sales/Orders") for n in range(12)
        ],
        "log": log(job_id),
        "logError": None,
        "executionArn": f"{ARN_PREFIX}{job_id}-1",
        "polls": 3,
    }
    return {
        "version": "0",
        "id": "6f5b7d3c-0b2a-4c1e-9d8f-1a2b3c4d5e6f",
        "detail-type": "IICS Export Job State Change",
        "source": "iics.export.monitor",
        "account": "123456789012",
        "time": "2026-11-28T09:42:07Z",
        "region": REGION,
        "resources": [(base | detail)["executionArn"]],
        "detail": base | detail,
    }


SAMPLES = {
    "successful_with_failed_objects": outcome_event(
        jobId="7evG9CokA1whk8ehF3opKM",
        jobName="nightly-backup",
        state="SUCCESSFUL",
        iicsState="SUCCESSFUL",
        message="Export completed with errors.",
        startTime="2026-11-28T02:00:00.000Z",
        endTime="2026-11-28T03:02:05.400Z",
        durationSeconds=3725.4,
        objects={"total": 13, "successful": 11, "failed": 2},
        failedObjects=[failed_object(1), failed_object(2) | {"path": None, "message": None}],
        log=log("7evG9CokA1whk8ehF3opKM"),
        polls=42,
    ),
    "successful_with_warning": outcome_event(
        jobId="7evG9CokA1whk8ehF3opKM",
        jobName="nightly-backup",
        state="SUCCESSFUL",
        iicsState="PARTIAL_SUCCESS",
        message="Export completed with errors.",
        warning="IICS reported PARTIAL_SUCCESS: Export completed with errors.",
        schemaMinorVersion=2,
        startTime="2026-11-28T02:00:00.000Z",
        endTime="2026-11-28T02:04:10.000Z",
        durationSeconds=250.0,
        objects={"total": 13, "successful": 13, "failed": 0},
        failedObjects=[],
        log=log("7evG9CokA1whk8ehF3opKM"),
        polls=9,
    ),
    "failed_with_12_failed_objects": outcome_event(),
    "timed_out": outcome_event(
        jobId="Qx3TimedOut00000000001",
        jobName="ci-export",
        state="TIMED_OUT",
        iicsState="IN_PROGRESS",
        message="In Progress.",
        reason="the job was still running 21600 seconds after the monitor started",
        startTime="2026-11-28T03:40:00.000Z",
        endTime=None,
        durationSeconds=None,
        objects={"total": 0, "successful": 0, "failed": 0},
        failedObjects=[],
        log=log("Qx3TimedOut00000000001"),
        polls=96,
    ),
    "error_without_job_id": outcome_event(
        jobId=None,
        jobName=None,
        state="ERROR",
        iicsState=None,
        message=None,
        reason="jobId must be 1-64 letters and digits, got 'not a job id!'",
        errorType="InvalidJobId",
        startTime=None,
        endTime=None,
        durationSeconds=None,
        objects={"total": 0, "successful": 0, "failed": 0},
        failedObjects=[],
        log=None,
        logError="no log archived: the monitor stopped with an error",
        executionArn=ARN_PREFIX + "0b6a1c52-4e0f-4f7a-9a51-3d2c1b0a9f8e",
        polls=0,
    ),
}


def golden(name: str, payload: dict) -> tuple[str, str]:
    """(the payload as stored, the golden file's text); UPDATE_GOLDEN=1 rewrites the file first."""
    text = json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    path = GOLDEN / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return text, path.read_text(encoding="utf-8")


def all_texts(payload: dict) -> list[str]:
    """Every text a block carries: header, sections, fields, context elements."""
    texts = []
    for block in payload["blocks"]:
        texts += [block["text"]["text"]] if "text" in block else []
        texts += [f["text"] for f in block.get("fields", [])]
        texts += [e["text"] for e in block.get("elements", [])]
    return texts


def section_texts(payload: dict) -> list[str]:
    return [b["text"]["text"] for b in payload["blocks"] if b["type"] == "section" and "text" in b]


# --- the message -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_message_for_each_sample_outcome_matches_its_golden_file(name):
    event = SAMPLES[name]
    assert_valid_outcome(event["detail"])

    produced, expected = golden(name, build_message(event, REGION))

    assert produced == expected
    assert build_message(json.loads(json.dumps(event)), REGION) == json.loads(expected)  # deterministic


def test_a_failed_job_names_ten_failed_objects_and_counts_the_rest():
    message = build_message(SAMPLES["failed_with_12_failed_objects"], REGION)

    failures = "\n".join(t for t in section_texts(message) if "Failed objects" in t)
    assert re.findall(r"• \*(m_orders_\d+)\*", failures) == [f"m_orders_{n}" for n in range(10)]
    assert failures.endswith("\n…and 2 more")
    assert message["blocks"][0]["text"]["text"].startswith(":red_circle: FAILED: promote-to-prod")


def test_the_count_of_unnamed_failures_comes_from_the_object_counts_when_the_event_lists_fewer():
    event = outcome_event(
        objects={"total": 40, "successful": 2, "failed": 38}, failedObjects=[failed_object(n) for n in range(25)]
    )

    failures = "\n".join(section_texts(build_message(event, REGION)))

    assert "…and 28 more" in failures


@pytest.mark.parametrize(
    ("state", "failed", "marker", "label"),
    [
        ("SUCCESSFUL", 0, ":large_green_circle:", "SUCCESSFUL"),
        ("SUCCESSFUL", 1, ":warning:", "SUCCESSFUL with 1 failed object"),
        ("SUCCESSFUL", 2, ":warning:", "SUCCESSFUL with 2 failed objects"),
        ("SUCCESSFUL with a warning", 0, ":warning:", "SUCCESSFUL with a warning"),
        ("TIMED_OUT", 0, ":warning:", "TIMED_OUT"),
        ("FAILED", 3, ":red_circle:", "FAILED"),
        ("ERROR", 0, ":red_circle:", "ERROR"),
    ],
)
def test_the_header_shows_a_marker_for_the_state(state, failed, marker, label):
    warning = "IICS reported WARNING" if state.endswith("with a warning") else None
    state = state.removesuffix(" with a warning")
    event = outcome_event(
        state=state, objects={"total": 5, "successful": 5 - failed, "failed": failed}, warning=warning
    )

    header = build_message(event, REGION)["blocks"][0]

    assert header == {
        "type": "header",
        "text": {
            "type": "plain_text",
            "text": f"{marker} {label}: promote-to-prod (k7A75aikpuMNj4otBBZWnz)",
            "emoji": True,
        },
    }


def test_the_log_and_the_execution_are_linked_in_the_aws_console():
    links = section_texts(build_message(outcome_event(), "ap-southeast-2"))[-1]

    assert links.splitlines() == [
        "*Log:* <https://ap-southeast-2.console.aws.amazon.com/s3/object/iics-export-monitor-archivebucket-1a2b3c"
        "?region=ap-southeast-2&amp;prefix=iics-export-logs/2026/11/28/k7A75aikpuMNj4otBBZWnz/export.log"
        "|s3://iics-export-monitor-archivebucket-1a2b3c/iics-export-logs/2026/11/28/k7A75aikpuMNj4otBBZWnz/export.log>",
        "*Execution:* <https://ap-southeast-2.console.aws.amazon.com/states/home?region=ap-southeast-2"
        f"#/v2/executions/details/{ARN}|k7A75aikpuMNj4otBBZWnz-1>",
    ]


def test_a_log_that_was_not_archived_shows_why():
    event = outcome_event(log=None, logError="IICS log unavailable: HTTP 503", executionArn=None)

    links = section_texts(build_message(event, REGION))[-1]

    assert links == "*Log:* IICS log unavailable: HTTP 503\n*Execution:* unknown"


def test_values_from_iics_are_escaped_so_they_cannot_format_or_mention():
    nasty = "<!channel> R&D <https://evil.example|click>"
    event = outcome_event(
        jobName=nasty,
        iicsState=nasty,
        message=nasty,
        reason=nasty,
        errorType=nasty,
        failedObjects=[{"id": "1", "name": nasty, "path": nasty, "type": "A&B<C>", "message": nasty}],
        logError=nasty,
        log=None,
    )
    escaped = "&lt;!channel&gt; R&amp;D &lt;https://evil.example|click&gt;"

    message = build_message(event, REGION)
    notification = amazon_q_message(event, REGION)["content"]

    texts = [message["text"], *all_texts(message), notification["title"], notification["description"]]
    assert not [t for t in texts if "<!channel>" in t or "<https://evil" in t or "R&D" in t]
    assert "&amp;lt;" not in json.dumps(message)  # escaped once, not twice
    assert message["text"].startswith(":red_circle: FAILED: &lt;!channel&gt; R&amp;D &lt;https://evil.")
    for name in ("Reason", "Error type", "Message"):
        assert f"*{name}:* {escaped}" in section_texts(message)[0]
    assert f"• *{escaped}* · A&amp;B&lt;C&gt; · {escaped}\n      {escaped}" in "\n".join(section_texts(message))
    assert f"*Log:* {escaped}" in section_texts(message)[-1]
    assert f"*State:* FAILED (IICS: {escaped})" in notification["description"]


def test_the_message_stays_within_block_kit_limits_however_long_the_values():
    long = "x&<" * 2000
    event = outcome_event(
        jobName=long,
        iicsState=long,
        message=long,
        reason=long,
        errorType=long,
        startTime=long,
        endTime=long,
        failedObjects=[{"id": "1", "name": long, "path": long, "type": long, "message": long}] * 25,
        objects={"total": 10**9, "successful": 0, "failed": 10**9},
        log=log("k7A75aikpuMNj4otBBZWnz") | {"key": "k/" * 512},
        executionArn=ARN + "x" * 80,
    )

    message = build_message(event, REGION)

    blocks = message["blocks"]
    assert len(blocks) <= MAX_BLOCKS
    assert len(blocks[0]["text"]["text"]) <= slack.HEADER_LIMIT
    assert len(message["text"]) <= slack.HEADER_LIMIT
    assert all(len(t) <= slack.SECTION_TEXT_LIMIT for t in section_texts(message))
    assert all(len(b.get("fields", [])) <= MAX_FIELDS for b in blocks)
    assert all(len(f["text"]) <= slack.FIELD_TEXT_LIMIT for b in blocks for f in b.get("fields", []))
    assert not [t for t in all_texts(message) if re.search(r"&[a-z]*…", t)]  # no entity cut in half
    assert len(re.findall(r"^• ", "\n".join(section_texts(message)), re.MULTILINE)) == 10
    assert "…and 999999990 more" in "\n".join(section_texts(message))
    assert section_texts(message)[-1].startswith("*Log:* <https://")  # the links survive whole
    notification = amazon_q_message(event, REGION)["content"]
    assert len(notification["title"]) <= Q_TITLE_LIMIT
    assert len(notification["description"]) <= slack.Q_DESCRIPTION_LIMIT


@pytest.mark.parametrize(
    "event",
    [
        "not an event",
        {"detail": "FAILED"},
        outcome_event() | {"source": "aws.states"},
        outcome_event() | {"detail-type": "Step Functions Execution Status Change"},
        outcome_event(state="RUNNING"),
    ],
)
def test_anything_but_an_outcome_event_is_refused(event):
    with pytest.raises(InvalidInput):
        build_message(event, REGION)


def test_unknown_fields_and_odd_types_from_a_later_schema_are_tolerated():
    event = outcome_event(
        futureField={"x": 1}, durationSeconds="125", polls=-1, objects=None, failedObjects=[None, {"name": 7}]
    )

    facts = [f["text"] for f in build_message(event, REGION)["blocks"][1]["fields"]]

    assert facts == [
        "*State*\nFAILED (IICS: FAILED)",
        "*Duration*\nunknown",
        "*Objects*\n0 total, 0 successful, 0 failed",
        "*Polls*\n0",
    ]
    assert "• *7*" in "\n".join(section_texts(build_message(event, REGION)))


# --- the Amazon Q notification ---------------------------------------------------------------------------------------


def test_the_amazon_q_notification_carries_the_same_facts_in_the_custom_format():
    event = SAMPLES["failed_with_12_failed_objects"]

    produced, expected = golden("amazon_q_failed_with_12_failed_objects", amazon_q_message(event, REGION))

    assert produced == expected
    notification = json.loads(produced)
    assert set(notification) == {"version", "source", "content"}
    assert (notification["version"], notification["source"]) == ("1.0", "custom")
    content = notification["content"]
    assert set(content) == {"textType", "title", "description"}
    assert content["textType"] == "client-markdown"
    assert content["title"] == build_message(event, REGION)["text"]
    slack_lines = "\n".join(section_texts(build_message(event, REGION)))
    for line in ["*Objects:* 14 total, 2 successful, 12 failed", "*Polls:* 3", "…and 2 more"]:
        assert line in content["description"]
    for link in re.findall(r"<https://[^>]+>", slack_lines):
        assert link in content["description"]


# --- the webhook -----------------------------------------------------------------------------------------------------

PAYLOAD = {"text": "hello", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hello & bye"}}]}


@pytest.fixture
def webhook(fake_slack, sleeps) -> SlackWebhook:
    return SlackWebhook(lambda: fake_slack.url, sleep=sleeps.append, loopback_http=True)


def statuses(fake: FakeSlack) -> list[int]:
    return [r.status for r in fake.requests]


def test_a_post_sends_the_payload_as_json_to_the_webhook_path(webhook, fake_slack, sleeps):
    webhook.post(PAYLOAD)

    [request] = fake_slack.requests
    assert (request.path, request.status) == (f"/services/{TOKEN}", 200)
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert request.body == json.dumps(PAYLOAD).encode()
    assert fake_slack.delivered == [PAYLOAD]
    assert sleeps == []


def test_a_429_is_retried_after_the_retry_after_slack_asked_for(webhook, fake_slack, sleeps):
    fake_slack.script((429, {"Retry-After": "1"}))

    webhook.post(PAYLOAD)

    assert statuses(fake_slack) == [429, 200]
    assert sleeps == [1.0]
    assert fake_slack.delivered == [PAYLOAD]


def test_a_429_without_retry_after_backs_off_like_a_5xx(webhook, fake_slack, sleeps):
    fake_slack.script((429,), (429,))

    webhook.post(PAYLOAD)

    assert statuses(fake_slack) == [429, 429, 200]
    assert sleeps == [1.0, 2.0]


def test_two_5xx_then_success_backs_off_exponentially(webhook, fake_slack, sleeps):
    fake_slack.script((500,), (503, "service_unavailable"))

    webhook.post(PAYLOAD)

    assert statuses(fake_slack) == [500, 503, 200]
    assert sleeps == [1.0, 2.0]
    assert fake_slack.delivered == [PAYLOAD]


def test_a_persistent_5xx_raises_after_three_attempts(webhook, fake_slack, sleeps):
    fake_slack.fail_always((500,))

    with pytest.raises(SlackUnavailable) as raised:
        webhook.post(PAYLOAD)

    assert statuses(fake_slack) == [500, 500, 500]
    assert sleeps == [1.0, 2.0]
    assert str(raised.value) == "Slack could not take the message | HTTP 500 | error rollup_error"
    assert fake_slack.delivered == []


def test_a_404_is_a_permanent_error_after_one_attempt(webhook, fake_slack, sleeps):
    fake_slack.script(Reply(404, body="no_service"))

    with pytest.raises(SlackRejected) as raised:
        webhook.post(PAYLOAD)

    assert statuses(fake_slack) == [404]
    assert sleeps == []
    assert (raised.value.status, raised.value.error, raised.value.transient) == (404, "no_service", False)


def test_a_retry_after_longer_than_the_bound_is_left_to_sqs_redelivery(webhook, fake_slack, sleeps):
    fake_slack.script((429, {"Retry-After": str(int(MAX_RETRY_AFTER_SECONDS) + 20)}))

    with pytest.raises(SlackThrottled) as raised:
        webhook.post(PAYLOAD)

    assert statuses(fake_slack) == [429]
    assert sleeps == []
    assert raised.value.retry_after == MAX_RETRY_AFTER_SECONDS + 20
    assert raised.value.transient


def test_an_unreachable_slack_is_tried_three_times(sleeps):
    with FakeSlack(token=TOKEN) as gone:
        url = gone.url  # the port is closed once the fake stops
    webhook = SlackWebhook(lambda: url, sleep=sleeps.append, loopback_http=True)

    with pytest.raises(SlackUnavailable, match="^could not reach Slack: NewConnectionError$"):
        webhook.post(PAYLOAD)

    assert sleeps == [1.0, 2.0]


def test_an_error_body_that_is_not_a_slack_error_word_is_not_repeated(webhook, fake_slack):
    fake_slack.script(Reply(403, body=f"<html>forbidden: POST /services/{TOKEN}</html>"))

    with pytest.raises(SlackRejected) as raised:
        webhook.post(PAYLOAD)

    assert str(raised.value) == "Slack refused the message | HTTP 403"


# One attempt's worst case (connect + read timeout) and the reserve for the record after it.
ATTEMPT_BUDGET = DEFAULT_TIMEOUT.connect_timeout + DEFAULT_TIMEOUT.read_timeout + RECORD_RESERVE_SECONDS


def test_a_post_slack_took_but_answered_after_the_read_timeout_is_not_sent_again(fake_slack, sleeps):
    fake_slack.script(Reply(200, body="ok", delay=0.5))
    timeout = urllib3.Timeout(connect=1.0, read=0.2)
    webhook = SlackWebhook(lambda: fake_slack.url, timeout=timeout, sleep=sleeps.append, loopback_http=True)

    with pytest.raises(SlackUnconfirmed) as raised:
        webhook.post(PAYLOAD)

    assert fake_slack.delivered == [PAYLOAD]  # Slack shows it once, though the poster never heard back
    assert sleeps == []
    assert (str(raised.value), raised.value.transient) == ("Slack did not answer the request: ReadTimeoutError", False)


def test_no_post_starts_that_the_time_left_cannot_finish(webhook, fake_slack, sleeps):
    with pytest.raises(SlackDeferred) as raised:
        webhook.post(PAYLOAD, seconds_left=lambda: ATTEMPT_BUDGET - 0.1)

    assert fake_slack.requests == []
    assert raised.value.transient  # left for SQS to deliver again


def test_a_retry_whose_wait_and_attempt_do_not_fit_is_left_to_redelivery(webhook, fake_slack, sleeps):
    fake_slack.script((500,))

    with pytest.raises(SlackUnavailable) as raised:  # the 1 s backoff and a second attempt would not fit
        webhook.post(PAYLOAD, seconds_left=lambda: ATTEMPT_BUDGET + 0.5)

    assert (statuses(fake_slack), sleeps, raised.value.status) == ([500], [], 500)


def test_a_retry_after_that_fits_the_time_left_is_waited_out(webhook, fake_slack, sleeps):
    fake_slack.script((429, {"Retry-After": "3"}))

    webhook.post(PAYLOAD, seconds_left=lambda: ATTEMPT_BUDGET + 3.0)

    assert (statuses(fake_slack), sleeps) == ([429, 200], [3.0])


def test_one_messages_worst_case_is_its_attempts_its_longest_waits_and_the_record_reserve():
    attempts = slack.POST_ATTEMPTS * (DEFAULT_TIMEOUT.connect_timeout + DEFAULT_TIMEOUT.read_timeout)
    waits = (slack.POST_ATTEMPTS - 1) * MAX_RETRY_AFTER_SECONDS
    assert slack.message_worst_case_seconds() == attempts + waits + RECORD_RESERVE_SECONDS == 61.0


@pytest.fixture
def everything_logged(monkeypatch, capsys):
    """A reader of all output so far: Powertools' JSON lines, any library's log records down to DEBUG,
    stdout and stderr."""
    logged = io.StringIO()
    root, handler = logging.getLogger(), logging.StreamHandler(logged)
    root.addHandler(handler)
    monkeypatch.setattr(root, "level", logging.DEBUG)
    monkeypatch.setattr(logger.registered_handler, "stream", logged)
    previous_level = logger.log_level
    logger.setLevel(logging.DEBUG)
    printed: list[str] = []

    def read() -> str:
        printed.extend(capsys.readouterr())
        return logged.getvalue() + "".join(printed)

    yield read
    logger.setLevel(previous_level)
    root.removeHandler(handler)


def exception_texts(error: BaseException | None) -> list[str]:
    texts = []
    while error is not None:
        texts += [str(error), repr(error), *map(str, error.args)]
        error = error.__cause__ or error.__context__
    return texts


@pytest.mark.parametrize(
    "replies",
    [[(200, "ok")], [(404,)], [(429, {"Retry-After": "60"})], [(500,)] * 3, [(400, f"invalid_payload {TOKEN}")]],
    ids=["ok", "404", "long-retry-after", "persistent-500", "echoing-400"],
)
def test_the_webhook_url_appears_in_no_exception_and_no_log_output(replies, fake_slack, sleeps, everything_logged):
    fake_slack.script(*replies)
    webhook = SlackWebhook(lambda: fake_slack.url, sleep=sleeps.append, loopback_http=True)

    error = None
    try:
        webhook.post(PAYLOAD)
    except (SlackRejected, SlackUnavailable) as raised:
        error = raised

    assert fake_slack.requests  # the URL was used
    output = everything_logged() + "\n".join(exception_texts(error))
    assert "s3cr3tW3bh00kT0k3n" not in output
    assert len(fake_slack.requests) == len(replies)
    assert (error is None) == (replies[0][0] == 200)
    if len(replies) == 3:  # the retries were logged, by type and status only
        assert '"status":500' in everything_logged().replace(" ", "")


def test_the_webhook_url_appears_in_no_exception_when_slack_is_unreachable(sleeps, everything_logged):
    with FakeSlack(token=TOKEN) as gone:
        url = gone.url

    with pytest.raises(SlackUnavailable) as raised:
        SlackWebhook(lambda: url, sleep=sleeps.append, loopback_http=True).post(PAYLOAD)

    assert "s3cr3tW3bh00kT0k3n" not in everything_logged() + "\n".join(exception_texts(raised.value))


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.slack.com/services/T/B/X",
        "https://hooks.slack.com.evil.example/services/T/B/X",
        "https://hooks.slack.com/triggers/T/1/X",
        "https://hooks.slack.com:8443/services/T/B/X",
        "https://hooks.slack.com/services/T/B/X?token=1",
        "https://user@hooks.slack.com/services/T/B/X",
        "http://10.0.0.1/services/T/B/X",
        "https://hooks.slack.com/services/T/B/X\n",
        "not a url s3cr3t",
        "",
        None,
    ],
)
def test_only_slack_webhook_urls_are_accepted_and_the_refusal_does_not_repeat_them(url, sleeps):
    webhook = SlackWebhook(lambda: url, sleep=sleeps.append)

    with pytest.raises(ConfigError) as raised:
        webhook.post(PAYLOAD)

    assert (
        str(raised.value)
        == "the Slack webhook URL must be a Slack incoming-webhook URL (https://hooks.slack.com/services/...)"
    )


def test_a_slack_webhook_url_is_accepted():
    url = "https://hooks.slack.com/services/T000/B000/XXXX"

    assert slack.check_webhook_url(url, "the URL") == url


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/x", "http://localhost/x", "http://[::1]:9/services/T/B/X"])
def test_http_on_loopback_is_accepted_only_when_the_local_harness_turns_it_on(url):
    with pytest.raises(ConfigError, match="must be a Slack incoming-webhook URL"):
        slack.check_webhook_url(url, "the URL")

    assert slack.check_webhook_url(url, "the URL", loopback_http=True) == url


def test_a_webhook_as_deployed_posts_nothing_to_a_fake_slack_on_loopback(fake_slack, sleeps):
    with pytest.raises(ConfigError, match="must be a Slack incoming-webhook URL"):
        SlackWebhook(lambda: fake_slack.url, sleep=sleeps.append).post(PAYLOAD)

    assert fake_slack.requests == []


def test_the_fake_answers_like_slack():
    with FakeSlack() as fake:
        http = urllib3.PoolManager()
        wrong_path = http.request("POST", fake.url + "x", body=b"{}")
        not_json = http.request("POST", fake.url, body=b"text=hello")
        too_long = http.request("POST", fake.url, json={"blocks": [{"type": "header", "text": {"text": "x" * 151}}]})
        fine = http.request("POST", fake.url, json={"text": "hello"})
        url = fake.url

    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/services/T000/B000/XXXX", url)
    answers = [(r.status, r.data) for r in (wrong_path, not_json, too_long, fine)]
    assert answers == [(404, b"no_service"), (400, b"invalid_payload"), (400, b"invalid_blocks"), (200, b"ok")]
    assert fake.delivered == [{"text": "hello"}]


# --- the secret and the configuration ------------------------------------------------------------------------------

SECRET = "iics-export-monitor/slack-webhook"
WEBHOOK_URL = f"https://hooks.slack.com/services/{TOKEN}"


@pytest.fixture
def secrets():
    with mock_aws():
        yield boto3.client("secretsmanager")


@pytest.mark.parametrize("secret_string", [WEBHOOK_URL, f" {WEBHOOK_URL}\n", json.dumps({"webhookUrl": WEBHOOK_URL})])
def test_the_secret_holds_the_url_raw_or_as_json(secrets, secret_string):
    secrets.create_secret(Name=SECRET, SecretString=secret_string)

    assert secret_webhook_url(SECRET)().text == WEBHOOK_URL


@pytest.mark.parametrize(
    ("secret_string", "problem"),
    [
        (json.dumps({"url": WEBHOOK_URL}), "must be a Slack incoming-webhook URL"),
        (json.dumps({"webhookUrl": WEBHOOK_URL.replace("https", "http")}), "must be a Slack incoming-webhook URL"),
        ('{"webhookUrl": ', 'must hold the webhook URL or JSON {"webhookUrl": "..."}'),
        (json.dumps([WEBHOOK_URL]), "must be a Slack incoming-webhook URL"),
    ],
)
def test_a_bad_secret_is_named_without_its_value(secrets, secret_string, problem):
    secrets.create_secret(Name=SECRET, SecretString=secret_string)

    with pytest.raises(ConfigError) as raised:
        secret_webhook_url(SECRET)()

    assert str(raised.value).startswith(f"secret {SECRET} ")
    assert problem in str(raised.value)
    assert "s3cr3tW3bh00kT0k3n" not in str(raised.value)


def test_a_missing_secret_is_a_config_error_naming_it(secrets):
    with pytest.raises(ConfigError, match=f"^secret {SECRET} could not be read: .*ResourceNotFoundException"):
        secret_webhook_url(SECRET)()


def test_a_secret_naming_a_fake_slack_on_loopback_is_refused_unless_the_harness_allows_it(secrets):
    secrets.create_secret(Name=SECRET, SecretString=f"http://127.0.0.1:8080/services/{TOKEN}")

    with pytest.raises(ConfigError, match=f"^secret {SECRET} must be a Slack incoming-webhook URL"):
        secret_webhook_url(SECRET)()
    assert secret_webhook_url(SECRET, loopback_http=True)().text == f"http://127.0.0.1:8080/services/{TOKEN}"


NOTIFIER_ENV = {"SLACK_WEBHOOK_SECRET_NAME": SECRET, "IDEMPOTENCY_TABLE": "stack-Idempotency-1AB"}


def test_the_config_names_a_missing_secret_variable():
    with pytest.raises(ConfigError, match="^environment variable SLACK_WEBHOOK_SECRET_NAME is not set$"):
        SlackConfig.from_env({"AWS_REGION": REGION})


@pytest.mark.parametrize(
    ("env", "region"),
    [
        ({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-1"}, "eu-west-1"),
        ({"AWS_DEFAULT_REGION": "us-gov-west-1"}, "us-gov-west-1"),
    ],
)
def test_the_config_reads_the_region_lambda_sets(env, region):
    config = SlackConfig.from_env(NOTIFIER_ENV | env)

    assert (config.secret_name, config.region, config.idempotency_table) == (SECRET, region, "stack-Idempotency-1AB")
    assert config.timeout.read_timeout == DEFAULT_TIMEOUT.read_timeout == 10.0
    assert config.loopback_http is False


def test_the_config_allows_http_on_loopback_only_when_the_local_stack_says_so():
    env = NOTIFIER_ENV | {"AWS_REGION": REGION}

    assert SlackConfig.from_env(env | {"ALLOW_LOOPBACK_HTTP": "true"}).loopback_http is True
    with pytest.raises(ConfigError, match="^environment variable ALLOW_LOOPBACK_HTTP must be true, false or unset$"):
        SlackConfig.from_env(env | {"ALLOW_LOOPBACK_HTTP": "1"})


@pytest.mark.parametrize("env", [{}, {"AWS_REGION": "eu-west-1/../x"}])
def test_the_config_refuses_a_missing_or_odd_region(env):
    with pytest.raises(ConfigError, match="AWS_REGION"):
        SlackConfig.from_env(NOTIFIER_ENV | env)


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"IDEMPOTENCY_TABLE": ""}, "^environment variable IDEMPOTENCY_TABLE is not set$"),
        ({"IDEMPOTENCY_TABLE": "a b"}, "^environment variable IDEMPOTENCY_TABLE is not a DynamoDB table name$"),
        ({"SLACK_READ_TIMEOUT_SECONDS": "11"}, "^environment variable SLACK_READ_TIMEOUT_SECONDS must be from 1 to 10"),
        ({"SLACK_READ_TIMEOUT_SECONDS": "0.5"}, "SLACK_READ_TIMEOUT_SECONDS must be a whole number"),
    ],
)
def test_the_config_names_a_missing_or_bad_notifier_variable(env, problem):
    with pytest.raises(ConfigError, match=problem):
        SlackConfig.from_env(NOTIFIER_ENV | {"AWS_REGION": REGION} | env)


def test_a_shorter_read_timeout_may_be_set_for_the_webhook():
    config = SlackConfig.from_env(NOTIFIER_ENV | {"AWS_REGION": REGION, "SLACK_READ_TIMEOUT_SECONDS": "1"})

    assert (config.timeout.connect_timeout, config.timeout.read_timeout) == (DEFAULT_TIMEOUT.connect_timeout, 1.0)


def test_the_log_summary_and_the_iics_error_code_are_in_the_message():
    from iics_monitor.loginsight import summarise_log

    failed_log = (
        b"> OIE_002 INFO 2026-11-28T09:40:00.000Z Starting export operation.\n"
        b"> OIE_005 ERROR 2026-11-28T09:40:01.000Z Failed to export object [/Explore/S/m_x] of type [DTEMPLATE]"
        b" id [aaaaaaaaaaaaaaaaaaaaa1]: m_x is <locked>.\n"
        b"> OIE_003 INFO 2026-11-28T09:40:02.000Z Finished export operation.\nStatus: FAILED\n"
    )
    event = outcome_event(logSummary=summarise_log(failed_log), iicsErrorCode="EXPORT_409")

    texts = "\n".join(section_texts(build_message(event, "eu-west-1")))

    assert "*Log says:* " in texts and "1 error: OIE_005" in texts and "log status FAILED" in texts
    assert "&lt;locked&gt;" in texts  # escaped like every value from IICS
    assert "*IICS error code:* EXPORT_409" in texts


# --- no secret in a message or a log line -----------------------------------------------------------------------------

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXBhcnQtb25l"
ECHO = f'IICS login refused: could not process {{"username": "a", "password": "Pw-echoed-9"}}; session {JWT}'


def test_no_message_repeats_a_token_or_password_an_outcome_carries():
    event = outcome_event(
        state="ERROR", reason=ECHO, message=ECHO, logError=ECHO, failedObjects=[failed_object(1) | {"message": ECHO}]
    )

    for payload in (build_message(event, REGION), amazon_q_message(event, REGION)):
        sent = json.dumps(payload)
        assert "Pw-echoed-9" not in sent and "eyJzdWIi" not in sent and "password" in sent


def test_once_used_the_webhook_url_is_scrubbed_from_every_later_log_line(sleeps, monkeypatch):
    # the layer as loaded now: a local stack earlier in this process may have loaded it afresh, and the
    # Logger scrubs with the scrubber loaded now
    from iics_monitor.slack import SlackWebhook as CurrentWebhook

    written = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", written)
    with FakeSlack(token="hook/0paque-k3y-of-any-shape") as fake:  # no Slack shape: only remembering finds it
        CurrentWebhook(lambda: fake.url, sleep=sleeps.append, loopback_http=True).post(PAYLOAD)

        logger.warning(f"a proxy answered POST {fake.path} for {fake.url}")

    assert "a proxy answered POST [redacted] for [redacted]" in written.getvalue()

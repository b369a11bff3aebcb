"""Everything a stack kept or said, as one text to scan for secrets, and the scan itself.

Shared by the e2e secret tests. What is kept: every Lambda invocation's logs, result and event, every
execution's history and description, every S3 object with its metadata (not the deployed code in
the artifact bucket: the layer's own source names the errors and fields a scan looks for), every
message left in the stack's queues (the error queue, the undelivered-outcome queue, the dead-letter
queues), every item of its DynamoDB tables (refused secret versions, Slack idempotency records, the
duration history, the request budget), the alert e-mails of the SNS topic, the Slack payloads, and
whatever the test read already (``seen``: outcome events drained from the bus, notifications taken
from the inbox).

The scan (``leaked``) is written apart from ``iics_monitor.scrub``: it looks for each secret whole, in
the spellings an echo may use (JSON once and twice, URL and HTML escaping, and the escapes of servers in
other languages: Java's &#39;, XML's &apos;, escaped slashes, Gson's \\u0027, lower-case percent-encoding),
and, for a long one (a JWT session id), for any piece of ``PIECE`` characters of it. The scrubber
removes those same spellings, so the pieces are what it may miss and the scan may not; test_echoed_secrets
also looks for a plain piece of its password.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

from iics_monitor_local.slack_fake import FakeSlack
from iics_monitor_local.stack import ARTIFACT_BUCKET, LocalStack, TopicInbox

PIECE = 40  # a secret longer than this is also looked for piece by piece
_QUEUE_ROUNDS = 100


def everything_kept(stack: LocalStack, inbox: TopicInbox, slack: FakeSlack, *seen: Any) -> str:
    """What the stack kept and said (see the module's text), as one text."""
    parts = [json.dumps(item, default=str) for item in seen]
    parts += [json.dumps(n) for n in inbox.messages(expected=0)]
    parts += [json.dumps(p) for p in slack.delivered]
    parts += [i.logs + json.dumps(i.result, default=str) + json.dumps(i.event) for i in stack.lambda_invocations]
    parts += _executions(stack)
    parts += _stored_objects(stack)
    parts += _queued_messages(stack)
    parts += _table_items(stack)
    return "\n".join(parts)


def leaked(secrets: Iterable[str], kept: str) -> list[str]:
    """The secrets ``kept`` shows in any spelling or piece, each named by its first 6 characters only."""
    return [secret[:6] + "..." for secret in secrets if any(form in kept for form in _forms(secret))]


def _forms(secret: str) -> set[str]:
    json_once = json.dumps(secret)[1:-1]
    spellings = {
        secret,
        json_once,
        json.dumps(json_once)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret, safe=""),
        quote_plus(secret),
        html.escape(secret),
        html.escape(json_once),
        html.escape(secret).replace("&#x27;", "&#39;"),
        html.escape(secret).replace("&#x27;", "&apos;"),
        json_once.replace("/", "\\/"),
        json_once.translate(str.maketrans({c: f"\\u{ord(c):04x}" for c in "'=<>&"})),
        quote(secret, safe="").lower(),
    }
    if len(secret) <= PIECE:
        return spellings
    return spellings | {secret[start : start + PIECE] for start in range(0, len(secret) - PIECE + 1, PIECE // 2)}


def _executions(stack: LocalStack) -> list[str]:
    sfn = stack.client("stepfunctions")
    parts = []
    for execution in stack.executions():
        arn = execution["executionArn"]
        parts.append(json.dumps(stack.history(arn), default=str))
        parts.append(json.dumps(sfn.describe_execution(executionArn=arn), default=str))
    return parts


def _stored_objects(stack: LocalStack) -> list[str]:
    s3 = stack.client("s3")
    parts = []
    for bucket in s3.list_buckets()["Buckets"]:
        if bucket["Name"] == ARTIFACT_BUCKET:  # the deployed code, not something the system kept
            continue
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"]):
            for item in page.get("Contents", []):
                stored = s3.get_object(Bucket=bucket["Name"], Key=item["Key"])
                body = stored["Body"].read().decode("utf-8", "replace")
                parts.append(json.dumps(stored["Metadata"]) + body)
    return parts


def _queued_messages(stack: LocalStack) -> list[str]:
    """Every message left in every queue of the account; read at the end, so hiding them does no harm."""
    sqs = stack.client("sqs")
    parts = []
    for url in sqs.list_queues().get("QueueUrls", []):
        for _ in range(_QUEUE_ROUNDS):
            batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600).get("Messages", [])
            if not batch:
                break
            parts += [json.dumps(message, default=str) for message in batch]
    return parts


def _table_items(stack: LocalStack) -> list[str]:
    dynamodb = stack.client("dynamodb")
    parts = []
    for table in dynamodb.list_tables()["TableNames"]:
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            parts += [json.dumps(item, default=str) for item in page["Items"]]
    return parts

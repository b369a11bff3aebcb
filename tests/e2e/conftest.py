"""What the e2e tests share: the template deployed with the IICS secret in place (``deployed``, and the
``pipeline`` fixture), a run read back as its path and outcome (``Pipeline.start``/``submit``), the
Slack-notifying deployment, and a few waits.

Every stack is entered with ``with``: a setup step that fails still closes it, and only one LocalStack
may run in a process, so a leaked one would fail every test after it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from iics_monitor_local.slack_fake import FakeSlack
from iics_monitor_local.stack import LocalStack
from tests.conftest import assert_valid_outcome, load_event

PROBE = Path(__file__).resolve().parents[1] / "probe_function"  # a function that answers what it sees
FAST = {"InitialWaitSeconds": 0, "MaxWaitSeconds": 1}
SLACK_SECRET_NAME = "iics-export-monitor/slack"
FAILED_OBJECTS = [
    {
        "id": "aaaaaaaaaaaaaaaaaaaaa1",
        "name": "m_orders",
        "path": "/Sales",
        "type": "DTEMPLATE",
        "status": {"state": "SUCCESSFUL"},
    },
    {
        "id": "aaaaaaaaaaaaaaaaaaaaa2",
        "name": "mt_orders",
        "path": "/Sales",
        "type": "MTT",
        "status": {"state": "FAILED", "message": "Connection conn_sf is missing"},
    },
    {
        "id": "aaaaaaaaaaaaaaaaaaaaa3",
        "name": "tf_nightly",
        "path": "/Sales",
        "type": "TASKFLOW",
        "status": {"state": "FAILED", "message": "Dependency not found"},
    },
]


@dataclass
class Run:
    stack: LocalStack
    execution_arn: str
    status: str
    path: list[str]
    events: list[dict]  # the outcome events that arrived while this run was awaited

    @property
    def outcome(self) -> dict:
        assert len(self.events) == 1, f"expected exactly one outcome event, got {len(self.events)}"
        event = self.events[0]
        assert event["source"] == "iics.export.monitor"
        assert event["detail-type"] == "IICS Export Job State Change"
        assert_valid_outcome(event["detail"])
        return event["detail"]

    @property
    def import_outcome(self) -> dict:
        """The one outcome of an import: detail-type IICS Import Job State Change, the same detail shape."""
        assert len(self.events) == 1, f"expected exactly one outcome event, got {len(self.events)}"
        event = self.events[0]
        assert (event["source"], event["detail-type"]) == ("iics.export.monitor", "IICS Import Job State Change")
        assert_valid_outcome(event["detail"])
        return event["detail"]

    def archived(self, key: str) -> bytes:
        return self.stack.client("s3").get_object(Bucket=self.stack.bucket, Key=key)["Body"].read()


class Pipeline:
    """A deployed stack with a consumer's rule capturing its outcome events."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.capture = stack.capture_events()

    def start(self, execution_input: Any) -> Run:
        """Start an execution directly and wait for it to end."""
        seen = len(self.capture.drain())
        return self._finish(self.stack.start(execution_input), seen)

    def submit(self, detail: dict, detail_type: str = "IICS Export Job Submitted") -> Run:
        """Through the front door: the upstream event on the bus, routed by the template's rule."""
        seen, before = len(self.capture.drain()), {e["executionArn"] for e in self.stack.executions()}
        self.stack.submit(detail, detail_type)
        (execution,) = [e for e in self.stack.executions() if e["executionArn"] not in before]
        return self._finish(execution["executionArn"], seen)

    def finish_all(self, timeout: float = 60) -> list[dict]:
        """Wait for every execution to end; every outcome event captured so far."""
        for execution in self.stack.executions():
            self.stack.wait(execution["executionArn"], timeout=timeout)
        return self.capture.drain()

    def _finish(self, execution_arn: str, seen: int) -> Run:
        described = self.stack.wait(execution_arn, timeout=60)
        return Run(
            stack=self.stack,
            execution_arn=execution_arn,
            status=described["status"],
            path=self.stack.path(execution_arn),
            events=self.capture.drain()[seen:],
        )


@contextmanager
def deployed(emulator, parameters: Mapping[str, Any] = FAST, **options: Any) -> Iterator[Pipeline]:
    """The template deployed (``options`` as LocalStack takes them), its IICS secret holding the emulator's
    user and address."""
    with LocalStack(parameters, **options) as stack:
        stack.put_iics_secret(emulator.username, emulator.password, emulator.url)
        yield Pipeline(stack)


@contextmanager
def deployed_with_slack(emulator, slack: FakeSlack, parameters: Mapping[str, Any] = FAST) -> Iterator[Pipeline]:
    """The pipeline with the Slack notifier deployed, posting to a fake Slack on 127.0.0.1."""
    with deployed(emulator, {**parameters, "SlackWebhookSecretName": SLACK_SECRET_NAME}) as pipeline:
        pipeline.stack.client("secretsmanager").create_secret(
            Name=SLACK_SECRET_NAME, SecretString=json.dumps({"webhookUrl": slack.url})
        )
        yield pipeline


@pytest.fixture
def pipeline(emulator):
    with deployed(emulator) as p:
        yield p


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        yield fake


def queue_depth(stack: LocalStack, logical_id: str) -> int:
    """How many messages wait in one of the template's queues."""
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.resources[logical_id], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def wait_until(condition, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def publish(stack: LocalStack, sample: str) -> dict:
    event = load_event(sample)
    stack.client("events").put_events(
        Entries=[
            {
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Detail": json.dumps(event["detail"]),
                "EventBusName": stack.bus_name,
            }
        ]
    )
    return event["detail"]


def probe_in_place_of(logical_id: str, timeout: int):
    """The function's code replaced by the probe, which hangs on anything but a probe request (as a
    function stuck on a peer would)."""

    def edit(sam: dict) -> None:
        properties = sam["Resources"][logical_id]["Properties"]
        properties.update(CodeUri=str(PROBE), Handler="app.lambda_handler", Timeout=timeout)

    return edit

"""Shared fixtures: AWS credentials that can reach nothing, events from events/, the IICS emulator,
the local stack built from template.yaml, and a reset of Powertools state between tests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from iics_monitor.hosts import HostPolicy
from iics_monitor_local.emulator import IicsEmulator

# Set before any test module imports the layer: Powertools reads these when Metrics is created.
for _name, _value in {
    "POWERTOOLS_METRICS_NAMESPACE": "IicsExportMonitorTests",
    "POWERTOOLS_SERVICE_NAME": "iics-export-monitor",
    "POWERTOOLS_TRACE_DISABLED": "true",
}.items():
    os.environ.setdefault(_name, _value)

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
USERNAME = "alice@example.com"
PASSWORD = "correct-horse-battery-staple"
# What the local harness gives a client it points at the emulator: plain http to this machine.
EMULATOR_HOSTS = HostPolicy(loopback_http=True)


def load_event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


OUTCOME_SCHEMA = load_event("outcome.schema.json")


def assert_valid_outcome(detail: dict) -> None:
    jsonschema.validate(detail, OUTCOME_SCHEMA, format_checker=jsonschema.FormatChecker())


@pytest.fixture(autouse=True)
def aws_sandbox(monkeypatch):
    """Fake credentials and a fixed region, so nothing can reach a real AWS account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "IicsExportMonitorTests",
        "POWERTOOLS_SERVICE_NAME": "iics-export-monitor",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(autouse=True)
def reset_powertools():
    """Each test starts cold: no cached config or client, no pending metrics, no remembered secret to
    scrub. (Secrets are read afresh at each use: there is no secret cache to clear.)"""
    from iics_monitor import runtime, scrub
    from iics_monitor.observability import metrics

    runtime.reset()
    scrub.forget()
    metrics.clear_metrics()
    yield
    scrub.forget()
    metrics.clear_metrics()


@pytest.fixture
def emulator():
    """IICS on 127.0.0.1, with one user."""
    with IicsEmulator(username=USERNAME, password=PASSWORD) as emu:
        yield emu


class FakeLambdaContext:
    function_name = "test-function"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    memory_limit_in_mb = 256
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/test-function"
    log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture
def lambda_context():
    return FakeLambdaContext()

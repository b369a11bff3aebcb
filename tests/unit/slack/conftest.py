"""Fixtures the Slack tests share: a fake Slack webhook on 127.0.0.1, and a record of the waits a poster slept."""

from __future__ import annotations

import pytest

from iics_monitor_local.slack_fake import FakeSlack

TOKEN = "T0SECRET/B0SECRET/s3cr3tW3bh00kT0k3n"  # the fake webhook's path: the part of a URL that is the secret


@pytest.fixture
def fake_slack():
    with FakeSlack(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def sleeps() -> list[float]:
    return []

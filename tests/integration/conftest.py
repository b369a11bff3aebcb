"""Fixtures the command-line tests share: the user's shell, and a stack "deployed" in their account."""

from __future__ import annotations

import pytest

from iics_monitor_local.stack import LocalStack
from tests.conftest import PASSWORD, USERNAME


@pytest.fixture
def iics_env(monkeypatch, emulator):
    """The user's shell: credentials for the org in IICS_* variables."""
    monkeypatch.setenv("IICS_USERNAME", USERNAME)
    monkeypatch.setenv("IICS_PASSWORD", PASSWORD)
    monkeypatch.setenv("IICS_LOGIN_URL", emulator.url)


@pytest.fixture
def deployed(emulator):
    """A stack deployed "in the user's account": moto, active in this process, so boto3 reaches it."""
    with LocalStack({"InitialWaitSeconds": 0, "MaxWaitSeconds": 1}) as stack:
        stack.put_iics_secret(USERNAME, PASSWORD, emulator.url)
        yield stack

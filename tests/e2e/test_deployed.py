"""The shared deployment (tests/e2e/conftest.py) closes its stack even when its own setup fails: only one
LocalStack may run in a process, so a stack left running would fail every test after it."""

from __future__ import annotations

import pytest

from iics_monitor_local.stack import LocalStack
from tests.e2e.conftest import FAST, deployed


class SetupFailed(Exception):
    pass


def test_a_deployment_whose_setup_fails_leaves_no_stack_running(emulator, monkeypatch):
    def refuse(*_: object) -> None:
        raise SetupFailed

    # Given a step after the stack is up that fails (here: storing the IICS secret)
    monkeypatch.setattr(LocalStack, "put_iics_secret", refuse)
    with pytest.raises(SetupFailed), deployed(emulator):
        pass

    # Then the next stack starts: the failed one was closed
    with LocalStack(FAST) as stack:
        assert stack.state_machine_arn

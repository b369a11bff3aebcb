"""Deadlines and limits: no execution gets near Step Functions' 25,000-event history limit.

The poll loop's cost in history events is measured on real executions, then extrapolated to the
largest poll budget the template allows."""

from __future__ import annotations

from samtranslator.yaml_helper import yaml_parse

from iics_monitor.config import MAX_POLLS_CEILING
from tests.conftest import ROOT
from tests.e2e.conftest import FAST, deployed

HISTORY_LIMIT = 25_000


def history_length(emulator, max_polls: int) -> int:
    with deployed(emulator, FAST | {"MaxPolls": max_polls}) as pipeline:
        run = pipeline.start({"jobId": emulator.add_job(states=["IN_PROGRESS"])})
        assert run.outcome["state"] == "TIMED_OUT" and run.outcome["polls"] == max_polls
        return len(pipeline.stack.history(run.execution_arn))


def test_the_largest_poll_budget_stays_far_below_the_history_limit(emulator):
    short, long = history_length(emulator, 3), history_length(emulator, 8)

    per_poll = (long - short) / 5
    fixed = short - 3 * per_poll
    worst = fixed + MAX_POLLS_CEILING * per_poll
    assert per_poll <= 10, f"a poll costs {per_poll} history events"
    assert worst < 0.85 * HISTORY_LIMIT, f"{worst:.0f} events at {MAX_POLLS_CEILING} polls"


def test_the_template_cannot_raise_the_poll_budget_past_the_ceiling():
    parameter = yaml_parse((ROOT / "template.yaml").read_text())["Parameters"]["MaxPolls"]
    assert parameter["MaxValue"] == MAX_POLLS_CEILING

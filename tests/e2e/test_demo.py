"""`make demo`'s scenario passes: three jobs through the front door, each ending as scripted."""

from __future__ import annotations

import io
import re

from iics_monitor_local import demo


def test_demo_scenario_ends_as_scripted_and_shows_every_check():
    out = io.StringIO()

    exit_code = demo.run(out)

    text = out.getvalue()
    assert exit_code == 0, text
    for job in demo.JOBS:
        summary = re.search(rf"^ok {job.name} \((\w+)\): expected {job.expected}$", text, re.MULTILINE)
        assert summary, f"no passing summary for {job.name}:\n{text}"
        polls = int(re.search(rf"{job.name} \(\w+\): .*?outcome {job.expected}, .*?, (\d+) polls", text, re.S)[1])
        # one line per check; a check may poll several times inline (InlineWaitSeconds), so the count grows
        counts = [int(n) for n in re.findall(rf"^\s+[\d.]+s  {job.name}\s+poll\s+(\d+)", text, re.MULTILINE)]
        assert counts == sorted(counts) and counts[-1] == polls
    assert "IICS errors met and survived: 401, 429" in text
    assert "tf_month_end: Referenced object mt_close_books not found" in text
    assert "| > OIE_002 INFO" in text  # the first lines of an archived log
    assert re.search(r"alert e-mail: IICS export FAILED: promote-to-prod \(\w+\)", text)
    assert re.search(r"alert Slack: :red_circle: FAILED: promote-to-prod \(\w+\)", text)
    assert text.count("alert: none (nothing here needs a person)") == 2
    assert demo.PASSWORD not in text


def test_demo_fails_when_a_job_does_not_end_as_scripted(monkeypatch):
    wrong = [demo.DemoJob(name="surprise", expected="SUCCESSFUL", seconds=0.5, final_state="FAILED")]
    monkeypatch.setattr(demo, "JOBS", wrong)
    out = io.StringIO()

    assert demo.run(out) == 1
    assert "!! surprise" in out.getvalue()

"""`make demo`'s scenario passes: three jobs through the front door and one promotion between two
emulated orgs, each ending as scripted."""

from __future__ import annotations

import dataclasses
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
    # the promotion: exported in dev, imported into prod, one object failed, and the import log says why
    promotion = demo.PROMOTION
    assert f"ok promotion {promotion.name} (dev -> prod): expected FAILED at step import" in text
    assert re.search(r"^\s+[\d.]+s  export dev\s+archived -> SUCCESSFUL .*package\.zip", text, re.MULTILINE)
    assert re.search(r"^\s+[\d.]+s  import prod\s+uploaded the package to org prod, started import job", text, re.M)
    assert "outcome FAILED at step import: the import ended FAILED" in text
    assert re.search(rf"import log says: \w+ .*{promotion.failing_object}.*: {promotion.why}$", text, re.MULTILINE)
    assert all(password not in text for _, password in promotion.logins.values())
    assert text.rstrip().endswith("All three jobs and the promotion ended as scripted.")


def test_demo_fails_when_a_job_does_not_end_as_scripted(monkeypatch):
    wrong = [demo.DemoJob(name="surprise", expected="SUCCESSFUL", seconds=0.5, final_state="FAILED")]
    monkeypatch.setattr(demo, "JOBS", wrong)
    out = io.StringIO()

    assert demo.run(out) == 1
    assert "!! surprise" in out.getvalue()


def test_demo_fails_when_the_promotion_does_not_end_as_scripted(monkeypatch):
    monkeypatch.setattr(demo, "JOBS", [])
    monkeypatch.setattr(demo, "PROMOTION", dataclasses.replace(demo.PROMOTION, expected=("SUCCESSFUL", None)))
    out = io.StringIO()

    assert demo.run(out) == 1
    assert "!! promotion release-42 (dev -> prod): expected SUCCESSFUL" in out.getvalue()

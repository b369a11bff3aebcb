"""The chaos run, small enough for every `make test`: 20 jobs, 20% of IICS calls failing at random
(seeded). `make chaos` runs the full 100."""

from __future__ import annotations

import io

from iics_monitor_local import chaos


def test_every_job_reaches_its_outcome_once_with_its_log_intact_despite_random_faults():
    out = io.StringIO()

    report = chaos.run(jobs=20, fault_rate=0.2, seed=7, out=out)

    assert report.problems == [], out.getvalue()
    assert (report.correct, report.duplicates, report.logs_identical) == (20, 0, 20)
    assert sum(report.faults.values()) >= 10  # the faults really happened
    assert chaos.PASSWORD not in out.getvalue()


def test_the_run_reports_failure_when_a_job_goes_wrong(monkeypatch):
    # When the archived log is not what IICS served, the run must say so.
    monkeypatch.setattr(chaos.IicsEmulator, "log_of", lambda self, job_id: b"not what was served")

    report = chaos.run(jobs=2, fault_rate=0.0, seed=1, out=io.StringIO())

    assert not report.passed and report.logs_identical == 0

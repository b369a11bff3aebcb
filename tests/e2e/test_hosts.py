"""The stack as deployed speaks to Informatica only: run the template in moto without the local
harness's loopback switch, and the IICS emulator on 127.0.0.1 (plain http) gets nothing, not even the
login: the job ends ERROR at once, saying which host was refused and why."""

from __future__ import annotations

from tests.e2e.conftest import deployed


def test_a_deployment_sends_no_password_over_plain_http_even_to_this_machine(emulator):
    job_id = emulator.add_job(states=["IN_PROGRESS", "SUCCESSFUL"])
    with deployed(emulator, loopback_http=False) as pipeline:  # as deployed: the template never turns loopback on
        run = pipeline.start({"jobId": job_id})

    detail = run.outcome
    assert (detail["state"], detail["errorType"]) == ("ERROR", "ConfigError")
    assert detail["reason"].startswith("refused plain http to 127.0.0.1: IICS is reached over https only")
    assert run.path.count("CheckStatus") == 1  # not a transient error: no second try
    assert emulator.requests == []

"""The emulator's generated log of a given size (``log_size``): exact, realistic, and sent without being built."""

from __future__ import annotations

import re
import tracemalloc

import pytest
import urllib3

from iics_monitor_local.emulator import IicsEmulator

MIB = 1024 * 1024
PASSWORD = "s3cret"
FILLER_LINE = re.compile(
    r"> OIE_004 INFO \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z Successfully exported object "
    r"\[/Explore/Default/m_generated_\d{5}\] of type \[DTEMPLATE\] id \[gen\d{19}\]"
)

http = urllib3.PoolManager(retries=False, timeout=10.0)


@pytest.fixture
def emu():
    with IicsEmulator(username="alice", password=PASSWORD) as emulator:
        yield emulator


def open_log(emu, job_id) -> urllib3.BaseHTTPResponse:
    login = http.request(
        "POST", f"{emu.url}/saas/public/core/v3/login", json={"username": "alice", "password": PASSWORD}
    )
    session = {"INFA-SESSION-ID": login.json()["userInfo"]["sessionId"]}
    url = f"{emu.base_api_url}/public/core/v3/export/{job_id}/log"
    return http.request("GET", url, headers=session, preload_content=False)


def test_a_finished_job_serves_a_log_of_exactly_the_size_asked_in_the_observed_format(emu):
    size = 3 * MIB + 17  # several filler blocks and a cut line
    job_id = emu.add_job(name="nightly", states=["SUCCESSFUL"], log_size=size)

    response = open_log(emu, job_id)
    body = response.read()

    assert response.status == 200 and response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert int(response.headers["Content-Length"]) == len(body) == size
    assert body == emu.log_of(job_id)
    lines = body.decode().splitlines()
    assert lines[0].startswith("> OIE_002 INFO ") and lines[0].endswith(" Starting export operation.")
    assert lines[1:6] == [
        "Execution Client: API",
        "Job Name: nightly",
        "Organization: iics-emulator-org",
        f"RequestId: {job_id}",
        "User: alice",
    ]
    assert "Successfully exported object [/Explore/Default/m_example] of type [DTEMPLATE]" in lines[6]
    assert lines[-8].startswith("> OIE_003 INFO ") and lines[-8].endswith(" Finished export operation.")
    assert lines[-7] == "Job Name: nightly" and lines[-1] == "Status: SUCCESSFUL"
    filler = lines[7:-8]
    assert len(filler) > 20_000 and all(FILLER_LINE.fullmatch(line) for line in filler[:-1])
    assert filler[-1].startswith("> OIE_004 INFO ")  # cut short to make the size exact


def test_while_the_job_runs_only_the_header_exists(emu):
    job_id = emu.add_job(states=["IN_PROGRESS", "SUCCESSFUL"], log_size=MIB)

    log = open_log(emu, job_id).read().decode()

    assert log.startswith("> OIE_002 INFO ") and "OIE_003" not in log and len(log) < 1000


def test_a_size_below_the_plain_log_gives_the_plain_log(emu):
    job_id = emu.add_job(states=["SUCCESSFUL"], log_size=10)

    log = open_log(emu, job_id).read()

    assert len(log) > 10 and log.count(b"OIE_004") == 1 and log.rstrip().endswith(b"Status: SUCCESSFUL")


def test_a_big_log_is_sent_without_being_built_in_memory(emu):
    job_id = emu.add_job(states=["SUCCESSFUL"], log_size=64 * MIB)
    received = 0

    tracemalloc.start()  # before the request: the server thread makes the body while answering it
    try:
        response = open_log(emu, job_id)
        while chunk := response.read(256 * 1024):
            received += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert received == 64 * MIB
    assert peak < 8 * MIB  # a filler block and the client's read buffer, not the log


def test_log_size_is_a_scenario_key_and_refuses_bad_values(emu):
    emu.load_scenario({"jobs": [{"id": "BigLog0000000000000000", "states": ["SUCCESSFUL"], "log_size": 4096}]})
    assert len(emu.log_of("BigLog0000000000000000")) == 4096

    for bad in ({"log_size": -1}, {"log_size": 1.5}, {"log_size": 100, "log": "given"}):
        with pytest.raises(ValueError, match="log_size"):
            emu.add_job(states=["SUCCESSFUL"], **bad)

"""The IICS emulator, exercised over real HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
import urllib3

import iics_monitor_local
from iics_monitor_local import reference
from iics_monitor_local.emulator import Fault, IicsEmulator

REF_ID = "7evG9CokA1whk8ehF3opKM"
PASSWORD = "s3cret"
ISO_MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ID_22 = re.compile(r"^[A-Za-z0-9]{22}$")

http = urllib3.PoolManager(retries=False, timeout=5.0)


@pytest.fixture
def emu():
    with IicsEmulator(username="alice", password=PASSWORD) as emulator:
        yield emulator


def call(method, url, *, body=None, headers=None):
    encoded = None if body is None else json.dumps(body).encode()
    return http.request(method, url, body=encoded, headers={"Content-Type": "application/json", **(headers or {})})


def login(emu, password=PASSWORD):
    return call("POST", f"{emu.url}/saas/public/core/v3/login", body={"username": "alice", "password": password})


def session_of(emu):
    return {"INFA-SESSION-ID": login(emu).json()["userInfo"]["sessionId"]}


def job_url(emu, job_id, suffix=""):
    return f"{emu.base_api_url}/public/core/v3/export/{job_id}{suffix}"


def status(emu, session, job_id, *, expand=False):
    return call("GET", job_url(emu, job_id, "?expand=objects" if expand else ""), headers=session)


def states_seen(emu, session, job_id, polls):
    return [status(emu, session, job_id).json()["status"]["state"] for _ in range(polls)]


def assert_v3_error(response, http_status, code=None):
    assert response.status == http_status
    error = response.json()["error"]
    assert set(error) == {"code", "message", "requestId", "details"}
    assert error["details"] is None and error["message"]
    if code:
        assert error["code"] == code
    return error


# --- Login and sessions --------------------------------------------------------------------------


def test_v3_login_returns_the_documented_shape_with_the_pod_base_url(emu):
    body = login(emu).json()

    assert body["products"] == [{"name": "Integration Cloud", "baseApiUrl": emu.base_api_url}]
    assert emu.base_api_url == f"{emu.url}/na1/saas"
    info = body["userInfo"]
    assert set(info) == {"sessionId", "id", "name", "parentOrgId", "orgId", "orgName", "groups", "status"}
    assert ID_22.match(info["orgId"]) and info["name"] == "alice" and info["status"] == "Active"


def test_wrong_password_is_a_400_with_a_v3_error_body(emu):
    error = assert_v3_error(login(emu, password="nope"), 400)

    assert error["message"] == "Invalid username or password."
    assert emu.logins == 1


def test_v2_login_session_works_on_v3_resources_under_either_header(emu):
    emu.add_job(job_id="j1", states=["IN_PROGRESS"])
    reply = call(
        "POST", f"{emu.url}/ma/api/v2/user/login", body={"@type": "login", "username": "alice", "password": "s3cret"}
    ).json()

    assert reply["serverUrl"] == emu.base_api_url
    assert status(emu, {"icSessionId": reply["icSessionId"]}, "j1").status == 200
    assert status(emu, {"INFA-SESSION-ID": reply["icSessionId"]}, "j1").status == 200


def test_v2_wrong_password_is_a_flat_v2_error(emu):
    reply = call(
        "POST", f"{emu.url}/ma/api/v2/user/login", body={"@type": "login", "username": "alice", "password": "x"}
    )

    body = reply.json()
    assert reply.status == 403
    assert body["@type"] == "error" and body["code"] == "UI_10000" and body["statusCode"] == 403
    assert body["description"]


@pytest.mark.parametrize("headers", [{}, {"INFA-SESSION-ID": "unknownunknownunknown0"}])
def test_missing_or_unknown_session_is_a_401(emu, headers):
    emu.add_job(job_id="j1")

    assert_v3_error(status(emu, headers, "j1"), 401)


def test_session_expires_after_idle_time_but_use_keeps_it_alive():
    with IicsEmulator(session_idle_seconds=0.2) as emu:
        emu.add_job(job_id="j1", states=["IN_PROGRESS"])
        session = session_of(emu)
        for _ in range(3):
            time.sleep(0.1)
            assert status(emu, session, "j1").status == 200

        time.sleep(0.3)

        assert_v3_error(status(emu, session, "j1"), 401)


def test_invalidated_and_logged_out_sessions_are_rejected(emu):
    emu.add_job(job_id="j1")
    first, second = session_of(emu), session_of(emu)

    emu.invalidate_sessions()
    assert status(emu, first, "j1").status == 401

    second = session_of(emu)
    assert call("POST", f"{emu.url}/saas/public/core/v3/logout", headers=second).status == 200
    assert status(emu, second, "j1").status == 401


# --- Errors --------------------------------------------------------------------------------------


def test_unknown_job_is_a_404_with_a_v3_error_body(emu):
    error = assert_v3_error(status(emu, session_of(emu), "NoSuchJob0000000000000"), 404)

    assert error["code"].startswith("MigrationSvc_")


def test_the_api_is_not_served_from_the_login_path(emu):
    emu.add_job(job_id="j1")

    reply = call("GET", f"{emu.url}/saas/public/core/v3/export/j1", headers=session_of(emu))

    assert_v3_error(reply, 404)


# --- Schedules and bodies ------------------------------------------------------------------------


def test_the_nth_poll_sees_the_nth_state_and_the_last_repeats(emu):
    emu.add_job(job_id="j1", states=["IN_PROGRESS", "IN_PROGRESS", "SUCCESSFUL"])

    assert states_seen(emu, session_of(emu), "j1", 4) == ["IN_PROGRESS", "IN_PROGRESS", "SUCCESSFUL", "SUCCESSFUL"]


def test_status_has_the_page_field_set_and_formats(emu):
    emu.add_job(job_id="j1", name="nightly", states=["IN_PROGRESS", "SUCCESSFUL"])
    session = session_of(emu)

    running, done = status(emu, session, "j1").json(), status(emu, session, "j1").json()

    assert list(running) == list(reference.STATUS_IN_PROGRESS)
    assert running["endTime"] is None and running["objects"] is None
    assert running["status"] == {"state": "IN_PROGRESS", "message": "In Progress."}
    assert done["status"] == {"state": "SUCCESSFUL", "message": "Export completed successfully."}
    for field in ("createTime", "updateTime", "startTime", "endTime"):
        assert ISO_MILLIS.match(done[field]), field
    assert done["updateTime"] >= running["updateTime"]


def test_a_time_based_schedule_follows_the_clock_not_the_polls(emu):
    emu.add_job(job_id="j1", schedule=[{"state": "IN_PROGRESS", "seconds": 0.3}, {"state": "FAILED"}])
    session = session_of(emu)

    assert states_seen(emu, session, "j1", 3) == ["IN_PROGRESS"] * 3
    time.sleep(0.35)

    done = status(emu, session, "j1").json()
    assert done["status"] == {"state": "FAILED", "message": "Export failed."}
    assert done["endTime"] is not None


def test_objects_run_while_the_job_runs_then_show_their_final_states(emu):
    objects = [
        {"id": "o1", "name": "m_ok", "path": "/Default", "type": "DTEMPLATE"},
        {"id": "o2", "name": "bad", "path": "/Default", "type": "MTT", "status": {"state": "FAILED", "message": "x"}},
    ]
    emu.add_job(job_id="j1", states=["IN_PROGRESS", "FAILED"], objects=objects)
    session = session_of(emu)

    running = status(emu, session, "j1", expand=True).json()["objects"]
    done = status(emu, session, "j1", expand=True).json()["objects"]

    assert [o["status"] for o in running] == [{"state": "IN_PROGRESS", "message": None}] * 2
    assert [o["status"] for o in done] == [{"state": "FAILED", "message": None}, {"state": "FAILED", "message": "x"}]
    assert list(done[0]) == ["id", "name", "path", "type", "description", "status"]


def test_an_unknown_state_is_passed_through_as_still_running(emu):
    emu.add_job(job_id="j1", states=["WEIRD_STATE"])

    body = status(emu, session_of(emu), "j1").json()

    assert body["status"]["state"] == "WEIRD_STATE" and body["endTime"] is None


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ("ERROR", "Export failed with an error."),
        ("CANCELLED", "Export cancelled."),
        ("WARNING", "Export completed with warnings."),
        ("PARTIAL_SUCCESS", "Export completed with errors."),
    ],
)
def test_the_end_words_other_iics_clients_list_set_the_end_time(emu, state, message):
    emu.add_job(job_id="j1", states=["IN_PROGRESS", state])
    session = session_of(emu)

    running, ended = status(emu, session, "j1").json(), status(emu, session, "j1").json()

    assert running["endTime"] is None
    assert ended["status"] == {"state": state, "message": message} and ISO_MILLIS.match(ended["endTime"])


@pytest.mark.parametrize("state", ["ARCHIVED", "IN_PROGRESS"])
def test_a_job_can_set_its_end_time_with_any_state_word(emu, state):
    emu.add_job(job_id="j1", states=["NOT_STARTED", state], ended_states=[state])
    session = session_of(emu)

    first, ended = status(emu, session, "j1", expand=True).json(), status(emu, session, "j1", expand=True).json()

    assert first["endTime"] is None
    assert ended["status"]["state"] == state and ISO_MILLIS.match(ended["endTime"])
    assert b"Finished export operation." in call("GET", job_url(emu, "j1", "/log"), headers=session).data
    assert call("GET", job_url(emu, "j1", "/package"), headers=session).status == 400  # no success, no package


def test_starting_an_export_replies_with_the_running_job(emu):
    session = session_of(emu)

    reply = call("POST", f"{emu.base_api_url}/public/core/v3/export", body={"objects": [{"id": "a1"}]}, headers=session)

    job = reply.json()
    assert reply.status == 200 and ID_22.match(job["id"])
    assert re.fullmatch(r"job-\d{13}", job["name"])
    assert job["status"]["state"] == "IN_PROGRESS" and job["endTime"] is None and job["objects"] is None
    assert states_seen(emu, session, job["id"], 2) == ["IN_PROGRESS", "SUCCESSFUL"]


def test_an_export_without_objects_is_a_400(emu):
    reply = call("POST", f"{emu.base_api_url}/public/core/v3/export", body={"name": "x"}, headers=session_of(emu))

    assert_v3_error(reply, 400)


# --- Log and package -----------------------------------------------------------------------------


def test_generated_log_of_a_failed_job_has_error_lines_and_a_failed_footer(emu):
    objects = [
        {"id": "p1", "name": "Sales", "path": "/", "type": "Project", "status": {"state": "SUCCESSFUL"}},
        {"id": "m1", "name": "m_bad", "path": "/Sales", "type": "DTEMPLATE", "status": {"state": "FAILED"}},
    ]
    emu.add_job(job_id="j1", name="nightly", states=["FAILED"], objects=objects)

    lines = call("GET", job_url(emu, "j1", "/log"), headers=session_of(emu)).data.decode().splitlines()

    assert re.match(r"> OIE_002 INFO \S+Z Starting export operation\.$", lines[0])
    assert lines[1:6] == ["Execution Client: API", "Job Name: nightly", f"Organization: {emu.org_name}",
                          "RequestId: j1", "User: alice"]  # fmt: skip
    assert lines[6].endswith("Successfully exported object [/Explore/Sales] of type [Project] id [p1]")
    assert re.match(r"> \w+ ERROR \S+Z .*\[/Explore/Sales/m_bad\] of type \[DTEMPLATE\] id \[m1\]", lines[7])
    assert lines[-1] == "Status: FAILED"


def test_generated_log_lists_successful_objects_and_the_footer(emu):
    objects = [
        {"id": "p1", "name": "Sales", "path": "/", "type": "Project"},
        {"id": "c1", "name": "ff", "type": "SAAS_CONNECTION"},
    ]
    emu.add_job(job_id="j1", states=["SUCCESSFUL"], objects=objects)

    lines = call("GET", job_url(emu, "j1", "/log"), headers=session_of(emu)).data.decode().splitlines()

    exported = [line for line in lines if line.startswith("> OIE_004 INFO ")]
    assert [line.split(" Successfully exported ")[1] for line in exported] == [
        "object [/Explore/Sales] of type [Project] id [p1]",
        "object [/SYS/ff] of type [SAAS_CONNECTION] id [c1]",
    ]
    assert re.match(r"> OIE_003 INFO \S+Z Finished export operation\.$", lines[-8])
    assert re.fullmatch(r"Start Time: \d{1,2}/\d{1,2}/\d\d \d{1,2}:\d\d [AP]M", lines[-6])
    assert lines[-1] == "Status: SUCCESSFUL"


def test_package_is_a_zip_of_asset_zips_metadata_checksums_and_contents(emu):
    objects = [
        {"id": "p1", "name": "Sales", "path": "/", "type": "Project"},
        {"id": "m1", "name": "m_load", "path": "/Sales", "type": "DTEMPLATE"},
        {"id": "c1", "name": "ff", "path": None, "type": "SAAS_CONNECTION"},
        {"id": "r1", "name": "Linux", "type": "SAAS_RUNTIME_ENVIRONMENT"},
    ]
    emu.add_job(job_id="j1", name="nightly", states=["SUCCESSFUL"], objects=objects)

    reply = call("GET", job_url(emu, "j1", "/package"), headers=session_of(emu))

    assert reply.status == 200 and reply.headers["Content-Type"] == "application/zip"
    package = zipfile.ZipFile(io.BytesIO(reply.data))
    assert set(package.namelist()) == {
        "Explore/Sales.Project.json",  # a project is JSON, not a zip (the real package, issue 15)
        "Explore/Sales/m_load.DTEMPLATE.zip",
        "SYS/ff.SAAS_CONNECTION.zip",
        "SYS/Linux.SAAS_RUNTIME_ENVIRONMENT.zip",
        "exportMetadata.v2.json",
        "exportPackage.chksum",
        "ContentsofExportPackage_nightly.csv",
    }
    assert zipfile.ZipFile(io.BytesIO(package.read("SYS/ff.SAAS_CONNECTION.zip"))).namelist() == ["ff.json"]
    metadata = json.loads(package.read("exportMetadata.v2.json"))
    assert [o["objectGuid"] for o in metadata["exportedObjects"]] == ["p1", "m1", "c1", "r1"]


def test_package_of_a_running_job_is_refused(emu):
    emu.add_job(job_id="j1", states=["IN_PROGRESS"])

    assert_v3_error(call("GET", job_url(emu, "j1", "/package"), headers=session_of(emu)), 400)


# --- The reference job ---------------------------------------------------------------------------


def test_reference_job_serves_the_page_examples_byte_for_byte(emu):
    emu.add_reference_job(states=["IN_PROGRESS", "SUCCESSFUL"])
    session = session_of(emu)

    running = status(emu, session, REF_ID)
    done = status(emu, session, REF_ID, expand=True)
    done_plain = status(emu, session, REF_ID)
    log = call("GET", job_url(emu, REF_ID, "/log"), headers=session)

    assert running.json() == reference.STATUS_IN_PROGRESS
    assert running.data == reference.STATUS_IN_PROGRESS_TEXT.encode()
    assert done.json() == reference.STATUS_SUCCESSFUL_WITH_OBJECTS
    assert done.data == reference.STATUS_SUCCESSFUL_WITH_OBJECTS_TEXT.encode()
    assert done_plain.json() == {**reference.STATUS_SUCCESSFUL_WITH_OBJECTS, "objects": None}
    assert log.data == reference.LOG_TEXT.encode()
    assert log.headers["Content-Type"].startswith("text/plain")


def test_reference_job_lists_its_objects_as_running_while_it_runs(emu):
    emu.add_reference_job(states=["IN_PROGRESS"])

    body = status(emu, session_of(emu), REF_ID, expand=True).json()

    assert {**body, "objects": None} == reference.STATUS_IN_PROGRESS
    assert [o["id"] for o in body["objects"]] == [o["id"] for o in reference.STATUS_SUCCESSFUL_WITH_OBJECTS["objects"]]
    assert {o["status"]["state"] for o in body["objects"]} == {"IN_PROGRESS"}


# --- Faults and throttling -----------------------------------------------------------------------


def test_a_401_fault_after_one_request_hits_once_and_does_not_advance_the_schedule(emu):
    emu.add_job(job_id="j1", states=["IN_PROGRESS", "SUCCESSFUL"])
    emu.add_fault(Fault(route="status", status=401, times=1, after=1))
    session = session_of(emu)

    codes = [status(emu, session, "j1").status for _ in range(3)]

    assert codes == [200, 401, 200]
    assert status(emu, session, "j1").json()["status"]["state"] == "SUCCESSFUL"


def test_a_429_fault_carries_retry_after_and_says_too_many_requests(emu):
    emu.add_job(job_id="j1")
    emu.add_fault(Fault(route="status", status=429, retry_after=2, times=1))

    reply = status(emu, session_of(emu), "j1")

    assert reply.headers["Retry-After"] == "2"
    assert "too many requests" in assert_v3_error(reply, 429)["message"]


def test_a_502_html_fault_looks_like_a_proxy_page(emu):
    emu.add_job(job_id="j1")
    emu.add_fault(Fault(route="status", status=502, html=True))

    reply = status(emu, session_of(emu), "j1")

    assert reply.status == 502 and reply.headers["Content-Type"] == "text/html"
    assert b"<title>502 Bad Gateway</title>" in reply.data


def test_a_fault_with_times_none_lasts_forever_and_only_on_its_route(emu):
    emu.add_job(job_id="j1")
    emu.add_fault(Fault(route="log", status=500, times=None))
    session = session_of(emu)

    assert [call("GET", job_url(emu, "j1", "/log"), headers=session).status for _ in range(3)] == [500] * 3
    assert status(emu, session, "j1").status == 200


def test_a_reset_fault_closes_the_connection_without_a_reply(emu):
    emu.add_job(job_id="j1")
    emu.add_fault(Fault(route="status", kind="reset"))
    session = session_of(emu)

    with pytest.raises(urllib3.exceptions.ProtocolError):
        status(emu, session, "j1")

    assert status(emu, session, "j1").status == 200
    assert [r.status for r in emu.requests if r.route == "status"] == [None, 200]


def test_a_slow_fault_delays_a_normal_reply(emu):
    emu.add_job(job_id="j1")
    emu.add_fault(Fault(route="status", kind="slow", delay_seconds=0.3))
    session = session_of(emu)

    started = time.monotonic()
    reply = status(emu, session, "j1")

    assert time.monotonic() - started >= 0.3 and reply.status == 200


def test_a_malformed_json_fault_sends_a_truncated_body(emu):
    emu.add_job(job_id="j1")
    emu.add_fault(Fault(route="status", kind="malformed_json"))

    reply = status(emu, session_of(emu), "j1")

    assert reply.status == 200
    with pytest.raises(ValueError):
        json.loads(reply.data)


def test_an_invalidate_session_fault_drops_every_session(emu):
    emu.add_job(job_id="j1")
    session = session_of(emu)
    emu.add_fault(Fault(route="status", kind="invalidate_session"))

    assert_v3_error(status(emu, session, "j1"), 401)
    assert status(emu, session, "j1").status == 401
    assert status(emu, session_of(emu), "j1").status == 200


def test_an_expired_session_may_be_refused_as_a_403_auth_01(emu):
    emu.expired_session_status = 403
    emu.add_job(job_id="j1")
    session = session_of(emu)
    emu.add_fault(Fault(route="status", kind="invalidate_session"))

    assert_v3_error(status(emu, session, "j1"), 403, "AUTH_01")
    assert_v3_error(status(emu, {"INFA-SESSION-ID": "unknown"}, "j1"), 403, "AUTH_01")
    assert status(emu, session_of(emu), "j1").status == 200


def test_an_expired_session_status_other_than_401_or_403_is_refused(emu):
    with pytest.raises(ValueError, match="expired_session_status must be one of"):
        emu.expired_session_status = 500
    with pytest.raises(ValueError, match="expired_session_status must be one of"):
        emu.load_scenario({"expired_session_status": 302})


@pytest.mark.parametrize("chunked", [False, True])
def test_a_huge_fault_pads_the_answer_to_its_size_and_counts_what_got_out(emu, chunked):
    emu.add_job(job_id="j1")
    session = session_of(emu)
    emu.add_fault(Fault(route="status", kind="huge", size_bytes=3 * 65536 + 7, chunked=chunked))

    answer = status(emu, session, "j1")

    assert len(answer.data) == 3 * 65536 + 7
    assert answer.json()["id"] == "j1"  # leading spaces: still the same JSON
    assert ("Content-Length" in answer.headers) is not chunked
    assert emu.huge_bytes_sent() == [3 * 65536 + 7]


def test_a_huge_answer_stops_when_the_client_goes_away(emu):
    emu.add_job(job_id="j1")
    session = session_of(emu)
    emu.add_fault(Fault(route="status", kind="huge"))  # 64 MiB

    answer = http.request("GET", job_url(emu, "j1"), headers=session, preload_content=False)
    answer.read(1024)
    answer.close()  # the client hangs up with the rest unread

    (sent,) = emu.huge_bytes_sent()
    assert sent < 16 * 1024 * 1024


def test_a_wrong_id_fault_answers_the_status_of_another_job(emu):
    emu.add_job(job_id="j1", states=["IN_PROGRESS", "SUCCESSFUL"])
    session = session_of(emu)
    emu.add_fault(Fault(route="status", kind="wrong_id"))

    other = status(emu, session, "j1").json()

    assert ID_22.match(other["id"]) and other["status"]["state"] == "IN_PROGRESS"
    assert status(emu, session, "j1").json()["id"] == "j1"


def test_a_fault_on_login_counts_as_a_login_attempt(emu):
    emu.add_fault(Fault(route="login", status=503))

    assert login(emu).status == 503
    assert login(emu).status == 200
    assert emu.logins == 2


# --- echoing error answers and JWT sessions ---------------------------------------------------------------------------

ECHO_PASSWORD = 'pa"ss\\w<o>rd&'


def echoed(emu, route, session, job_id):
    """The route's request, answered by an echo fault."""
    if route == "login":
        return login(emu, password=ECHO_PASSWORD)
    suffix = {"status": "", "log": "/log", "package": "/package"}[route]
    return call("GET", job_url(emu, job_id, suffix), headers=session)


@pytest.mark.parametrize("route", ["login", "status", "log", "package"])
@pytest.mark.parametrize("body_format", ["json", "text", "html"])
def test_an_echo_fault_repeats_the_request_body_and_headers_in_the_chosen_format(route, body_format):
    with IicsEmulator(username="alice", password=ECHO_PASSWORD) as emu:
        job_id = emu.add_job(states=["SUCCESSFUL"])
        session = {"INFA-SESSION-ID": login(emu, password=ECHO_PASSWORD).json()["userInfo"]["sessionId"]}
        emu.add_fault(Fault(route=route, kind="echo", status=502, body_format=body_format))

        response = echoed(emu, route, session, job_id)

    page = response.data.decode()
    secret = (
        json.dumps({"username": "alice", "password": ECHO_PASSWORD}) if route == "login" else session["INFA-SESSION-ID"]
    )
    assert response.status == 502 and emu.requests[-1].status == 502
    if body_format == "json":
        error = response.json()["error"]
        assert error["code"] == "APP_400" and secret in error["message"]
        assert error["details"]["headers"]["Accept-Encoding"] == "identity"
    elif body_format == "text":
        assert response.headers["Content-Type"].startswith("text/plain") and secret in page
        assert page.startswith("502 Bad Gateway\n\n") and "Accept-Encoding: identity" in page
    else:
        assert response.headers["Content-Type"].startswith("text/html")
        title = re.search(r"<title>(.*)</title>", page).group(1)
        assert title.startswith("502 Bad Gateway: could not process") and html.escape(secret) in title


def test_an_echo_fault_answers_400_unless_told_otherwise(emu):
    emu.add_fault(Fault(route="login", kind="echo"))

    assert login(emu).status == 400


def test_login_can_issue_jwt_session_ids_of_a_given_length_that_work_like_any_other():
    with IicsEmulator(username="alice", password=PASSWORD, session_jwt_length=16_000) as emu:
        job_id = emu.add_job(states=["SUCCESSFUL"])

        session_id = login(emu).json()["userInfo"]["sessionId"]

        assert status(emu, {"INFA-SESSION-ID": session_id}, job_id).status == 200
    header, payload, signature = session_id.split(".")
    assert len(session_id) == 16_000 and emu.issued_session_ids == [session_id]
    assert json.loads(base64.urlsafe_b64decode(header + "==")) | {"kid": None} == {
        "alg": "RS256",
        "typ": "JWT",
        "kid": None,
    }
    assert json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"] == "alice"


def test_every_issued_session_id_is_listed_live_or_not(emu):
    first, second = session_of(emu), session_of(emu)
    emu.invalidate_sessions()

    assert emu.issued_session_ids == [first["INFA-SESSION-ID"], second["INFA-SESSION-ID"]]


@pytest.mark.parametrize(
    "arguments",
    [
        {"route": "nowhere", "status": 500},
        {"route": "status"},
        {"kind": "explode"},
        {"status": 500, "times": 0},
        {"kind": "huge", "size_bytes": -1},
        {"kind": "echo", "body_format": "xml"},
    ],
)
def test_an_impossible_fault_is_refused(arguments):
    with pytest.raises(ValueError):
        Fault(**arguments)


def test_the_rate_limit_answers_429_with_retry_after_beyond_the_burst(emu):
    emu.add_job(job_id="j1")
    session = session_of(emu)
    emu.rate_limit_per_second = 2  # a burst of two, then one more every half second

    codes = [status(emu, session, "j1").status for _ in range(6)]

    # The burst passes; beyond it, requests faster than the rate are refused. (Not exact counts: a
    # slow machine may earn a token back between two requests.)
    assert codes[:2] == [200, 200]
    assert codes[2:].count(429) >= 2
    throttled = status(emu, session, "j1")
    assert throttled.headers["Retry-After"] == "1"
    assert assert_v3_error(throttled, 429)["message"] == "too many requests"


# --- Recording and scenarios ---------------------------------------------------------------------


def test_requests_are_recorded_with_path_query_headers_route_and_status(emu):
    emu.add_job(job_id="j1")
    session = session_of(emu)

    status(emu, session, "j1", expand=True)

    recorded = emu.requests[-1]
    assert (recorded.method, recorded.route, recorded.status) == ("GET", "status", 200)
    assert recorded.path == "/na1/saas/public/core/v3/export/j1?expand=objects"
    assert recorded.headers["INFA-SESSION-ID"] == session["INFA-SESSION-ID"]
    assert recorded.time <= time.time()


SCENARIO = {
    "password": "other",
    "reference_job": {"states": ["IN_PROGRESS", "SUCCESSFUL"]},
    "jobs": [
        {"id": "j1", "name": "nightly", "schedule": [{"state": "IN_PROGRESS", "seconds": 60}, {"state": "FAILED"}]}
    ],
    "faults": [{"route": "status", "status": 401, "after": 2}],
}


def test_a_json_scenario_file_sets_credentials_jobs_and_faults(tmp_path):
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps(SCENARIO))
    with IicsEmulator() as emu:
        emu.load_scenario(scenario)
        assert login(emu, password="s3cret").status == 400
        session = {"INFA-SESSION-ID": login(emu, password="other").json()["userInfo"]["sessionId"]}

        codes = [status(emu, session, job).status for job in ("j1", REF_ID, "j1")]

        assert codes == [200, 200, 401]


def test_a_yaml_scenario_file_is_read_when_pyyaml_is_installed(tmp_path):
    yaml = pytest.importorskip("yaml")
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(SCENARIO))
    with IicsEmulator() as emu:
        emu.load_scenario(scenario)
        assert status(emu, {"INFA-SESSION-ID": "x"}, "j1").status == 401  # known job, no session


def test_a_scenario_with_an_unknown_key_is_refused(emu):
    with pytest.raises(ValueError, match="jobz"):
        emu.load_scenario({"jobz": []})


def test_the_command_line_serves_until_interrupted(tmp_path):
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps({"reference_job": True}))
    env = {**os.environ, "PYTHONPATH": str(Path(iics_monitor_local.__file__).parents[1])}
    command = [sys.executable, "-m", "iics_monitor_local.emulator", "--port", "0", "--scenario", str(scenario)]
    # This interpreter running this package: no untrusted input reaches the command line.
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env) as server:  # noqa: S603
        try:
            url = server.stdout.readline().split()[-1]
            reply = call("POST", f"{url}/saas/public/core/v3/login", body={"username": "alice", "password": "s3cret"})
            assert reply.status == 200
        finally:
            server.send_signal(signal.SIGINT)
        assert server.wait(timeout=5) == 0


def test_a_fault_for_one_job_leaves_other_jobs_alone(emu):
    emu.add_job(job_id="j1")
    emu.add_job(job_id="j2")
    emu.add_fault(Fault(route="status", status=429, job_id="j2", times=None))
    session = session_of(emu)

    assert status(emu, session, "j1").status == 200
    assert status(emu, session, "j2").status == 429
    assert status(emu, session, "j1").status == 200


def test_a_timed_job_ends_when_its_schedule_says_not_when_it_is_first_seen(emu):
    emu.add_job(job_id="j1", schedule=[{"state": "IN_PROGRESS", "seconds": 0.2}, {"state": "SUCCESSFUL"}])
    session = session_of(emu)
    time.sleep(0.6)

    body = json.loads(status(emu, session, "j1").data)

    ended = datetime.fromisoformat(body["endTime"].replace("Z", "+00:00"))
    created = datetime.fromisoformat(body["createTime"].replace("Z", "+00:00"))
    assert body["status"]["state"] == "SUCCESSFUL"
    assert 0.15 <= (ended - created).total_seconds() <= 0.35

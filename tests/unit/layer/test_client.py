"""client: the IICS REST client against the emulator on 127.0.0.1 (and a scripted pool where the emulator
cannot misbehave the way a test needs). Also the credentials it logs in with."""

from __future__ import annotations

import io
import json
import re
import socket
import threading
import time
import tracemalloc
from datetime import UTC, datetime

import boto3
import pytest
import urllib3
from moto import mock_aws

from iics_monitor.client import (
    MAX_ANSWER_BYTES,
    MAX_RETRY_AFTER_SECONDS,
    SESSION_HEADER,
    IicsClient,
    LogStream,
    Session,
    error_from_response,
    parse_retry_after,
)
from iics_monitor.credentials import Credentials, check_service_url, secret_credentials
from iics_monitor.errors import (
    AccessDenied,
    AnswerLost,
    BadRequest,
    ConfigError,
    IicsError,
    IicsUnavailable,
    InvalidJobId,
    JobNotFound,
    LoginFailed,
    LoginRefused,
    NotSent,
    SessionExpired,
    StartUnconfirmed,
    Throttled,
)
from iics_monitor.scrub import remember
from iics_monitor.validation import parse_export_spec
from iics_monitor_local import reference
from iics_monitor_local.emulator import API_PREFIX, HUGE_BYTES, REFERENCE_JOB_ID, Fault, IicsEmulator
from tests.conftest import EMULATOR_HOSTS, PASSWORD, USERNAME
from tests.e2e.secret_scan import leaked
from tests.unit.layer.conftest import client_for, credentials_for

JOB_PATH = f"{API_PREFIX}/public/core/v3/export/{REFERENCE_JOB_ID}"
LOG_BYTES = reference.LOG_TEXT.encode()
EXPORT_SPEC = parse_export_spec({"objects": [{"id": "aeOwrk0r6cBkkVz3RuTQ0i"}]})


@pytest.fixture
def ref_job(emulator):
    return emulator.add_reference_job(states=["IN_PROGRESS", "SUCCESSFUL"])


def header(recorded, name: str) -> str | None:
    return next((v for k, v in recorded.headers.items() if k.lower() == name.lower()), None)


def calls(emulator, route: str | None = None) -> list[tuple[str, int | None]]:
    """(route, status) of each request the emulator answered, optionally on one route only."""
    return [(r.route, r.status) for r in emulator.requests if route in (None, r.route)]


def session_ids(emulator) -> set[str]:
    return {header(r, SESSION_HEADER) for r in emulator.requests} - {None}


def assert_no_secrets(emulator, *things) -> None:
    """No password or session id the emulator saw appears in the str/repr of anything given."""
    secrets = {PASSWORD, *session_ids(emulator)}
    for thing in things:
        text = f"{thing!s} {thing!r} {getattr(thing, 'args', '')}"
        if isinstance(thing, BaseException):
            text += f" {vars(thing)}"
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"{type(thing).__name__} shows a secret"


def prime(client: IicsClient, emulator) -> None:
    """One successful status call, so the client holds a session when a fault is armed."""
    client.get_status(REFERENCE_JOB_ID)
    assert emulator.logins == 1


# --- login and routing ------------------------------------------------------------------------------------------------


def test_login_posts_v3_credentials_and_later_calls_use_the_returned_base_api_url(emulator, client, ref_job):
    client.get_status(REFERENCE_JOB_ID)

    login, status = emulator.requests
    assert (login.method, login.path, login.route, login.status) == ("POST", "/saas/public/core/v3/login", "login", 200)
    assert json.loads(login.body) == {"username": USERNAME, "password": PASSWORD}
    assert header(login, "Content-Type") == "application/json"
    assert header(login, SESSION_HEADER) is None
    assert (status.method, status.path, status.status) == ("GET", JOB_PATH, 200)
    assert re.fullmatch(r"[A-Za-z0-9]{22}", header(status, SESSION_HEADER))


def test_only_the_login_request_carries_the_password(emulator, client, ref_job):
    client.get_status(REFERENCE_JOB_ID)
    with client.open_log(REFERENCE_JOB_ID) as log:
        log.read()

    later = [r for r in emulator.requests if r.route != "login"]
    assert [r.route for r in later] == ["status", "log"]
    assert all(PASSWORD not in f"{r.path} {r.headers} {r.body!r}" for r in later)


def test_the_status_bodies_equal_the_reference_pages_examples(emulator, client, ref_job):
    running = client.get_status(REFERENCE_JOB_ID)
    finished = client.get_status(REFERENCE_JOB_ID, expand_objects=True)

    assert running == reference.STATUS_IN_PROGRESS
    assert finished == reference.STATUS_SUCCESSFUL_WITH_OBJECTS
    assert [r.path for r in emulator.requests[1:]] == [JOB_PATH, JOB_PATH + "?expand=objects"]


def test_the_log_streams_the_reference_log_byte_for_byte(emulator, client, ref_job):
    with client.open_log(REFERENCE_JOB_ID) as log:
        pieces = iter(lambda: log.read(100), b"")
        received = b"".join(pieces)

    assert received == LOG_BYTES
    assert emulator.requests[-1].path == JOB_PATH + "/log"


def test_the_log_can_be_read_whole(emulator, client, ref_job):
    with client.open_log(REFERENCE_JOB_ID) as log:
        assert log.read() == LOG_BYTES
        assert log.read() == b""


def test_the_session_is_kept_between_calls(emulator, client, ref_job):
    client.get_status(REFERENCE_JOB_ID)
    client.get_status(REFERENCE_JOB_ID, expand_objects=True)
    with client.open_log(REFERENCE_JOB_ID) as log:
        log.read()

    assert emulator.logins == 1
    assert client.logins == 1
    assert len(session_ids(emulator)) == 1


def test_credentials_are_asked_for_only_when_a_login_is_needed(emulator, ref_job):
    asked = []
    credentials = credentials_for(emulator.url)

    def provide() -> Credentials:
        asked.append(1)
        return credentials

    client = IicsClient(provide, hosts=EMULATOR_HOSTS)
    assert asked == []

    client.get_status(REFERENCE_JOB_ID)
    client.get_status(REFERENCE_JOB_ID)

    assert len(asked) == 1


def test_logout_ends_the_session_and_the_next_call_logs_in_again(emulator, client, ref_job):
    prime(client, emulator)

    client.logout()
    client.logout()  # nothing to end the second time
    client.get_status(REFERENCE_JOB_ID)

    assert [route for route, _ in calls(emulator)] == ["login", "status", "logout", "login", "status"]
    logout = next(r for r in emulator.requests if r.route == "logout")
    assert logout.path == "/saas/public/core/v3/logout"
    assert header(logout, SESSION_HEADER) == header(emulator.requests[1], SESSION_HEADER)


# --- 401: one fresh login, one retry ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "refusal"),
    [
        pytest.param(Fault(route="status", kind="invalidate_session"), 401, id="session-invalidated"),
        pytest.param(Fault(route="status", status=401), 401, id="http-401"),
        # IICS refusing an expired session as 403 with code AUTH_01, as another public IICS client expects it
        pytest.param(Fault(route="status", kind="invalidate_session"), 403, id="403-AUTH_01"),
    ],
)
def test_a_401_mid_run_means_exactly_one_relogin_and_one_retry(emulator, client, ref_job, fault, refusal):
    emulator.expired_session_status = refusal
    prime(client, emulator)
    emulator.add_fault(fault)

    body = client.get_status(REFERENCE_JOB_ID, expand_objects=True)

    assert body == reference.STATUS_SUCCESSFUL_WITH_OBJECTS
    assert calls(emulator) == [("login", 200), ("status", 200), ("status", refusal), ("login", 200), ("status", 200)]
    assert client.logins == 2
    first, refused, retried = (r for r in emulator.requests if r.route == "status")
    assert header(refused, SESSION_HEADER) == header(first, SESSION_HEADER) != header(retried, SESSION_HEADER)


@pytest.mark.parametrize("refusal", [401, 403], ids=["401", "403-AUTH_01"])
def test_a_401_on_the_log_also_means_one_relogin_and_one_retry(emulator, client, ref_job, refusal):
    emulator.expired_session_status = refusal
    prime(client, emulator)
    emulator.add_fault(Fault(route="log", kind="invalidate_session"))

    with client.open_log(REFERENCE_JOB_ID) as log:
        assert log.read() == LOG_BYTES

    assert calls(emulator)[2:] == [("log", refusal), ("login", 200), ("log", 200)]


@pytest.mark.parametrize("refusal", [401, 403], ids=["401", "403-AUTH_01"])
def test_a_session_that_idles_out_is_renewed_once(refusal):
    idle = {"session_idle_seconds": 0.2, "expired_session_status": refusal}
    with IicsEmulator(username=USERNAME, password=PASSWORD, **idle) as emulator:
        emulator.add_reference_job()
        client = client_for(emulator)
        client.get_status(REFERENCE_JOB_ID)
        time.sleep(0.3)

        client.get_status(REFERENCE_JOB_ID)

        assert calls(emulator) == [
            ("login", 200),
            ("status", 200),
            ("status", refusal),
            ("login", 200),
            ("status", 200),
        ]


def test_a_401_that_persists_raises_session_expired_without_looping(emulator, client, ref_job):
    prime(client, emulator)
    emulator.add_fault(Fault(route="status", status=401, times=None))

    with pytest.raises(SessionExpired) as caught:
        client.get_status(REFERENCE_JOB_ID)

    assert calls(emulator)[2:] == [("status", 401), ("login", 200), ("status", 401)]
    assert caught.value.status == 401
    assert caught.value.code == "AUTH_01"
    assert_no_secrets(emulator, caught.value)


def test_after_session_expired_the_next_call_starts_with_one_fresh_login_and_no_retry(emulator, client, ref_job):
    prime(client, emulator)
    emulator.add_fault(Fault(route="status", status=401, times=None))
    with pytest.raises(SessionExpired):
        client.get_status(REFERENCE_JOB_ID)
    before = len(emulator.requests)

    with pytest.raises(SessionExpired):
        client.get_status(REFERENCE_JOB_ID)

    assert calls(emulator)[before:] == [("login", 200), ("status", 401)]


def test_a_fresh_session_refused_at_once_is_not_retried(emulator, client, ref_job):
    emulator.add_fault(Fault(route="status", status=401))

    with pytest.raises(SessionExpired):
        client.get_status(REFERENCE_JOB_ID)

    assert calls(emulator) == [("login", 200), ("status", 401)]


# --- 403 AUTH_01: an expired session, as another public IICS client sees it ------------------------------------------


@pytest.fixture
def forbidding(emulator):
    """The emulator refusing an expired or unknown session with 403 and code AUTH_01, not 401."""
    emulator.expired_session_status = 403
    return emulator


def test_a_403_auth_01_that_persists_is_session_expired_and_the_next_call_logs_in_afresh(forbidding, client, ref_job):
    prime(client, forbidding)
    forbidding.add_fault(Fault(route="status", kind="invalidate_session", times=None))

    with pytest.raises(SessionExpired) as caught:
        client.get_status(REFERENCE_JOB_ID)
    before = len(forbidding.requests)
    with pytest.raises(SessionExpired):
        client.get_status(REFERENCE_JOB_ID)

    assert calls(forbidding)[2:before] == [("status", 403), ("login", 200), ("status", 403)]
    assert (caught.value.status, caught.value.code) == (403, "AUTH_01")
    assert calls(forbidding)[before:] == [("login", 200), ("status", 403)]  # no cached session was kept
    assert_no_secrets(forbidding, caught.value)


@pytest.mark.parametrize("route", ["status", "log"])
def test_a_plain_403_is_still_access_denied_without_a_relogin(emulator, client, ref_job, route):
    prime(client, emulator)
    emulator.add_fault(Fault(route=route, status=403))

    with pytest.raises(AccessDenied) as caught:
        if route == "status":
            client.get_status(REFERENCE_JOB_ID)
        else:
            client.open_log(REFERENCE_JOB_ID)

    assert calls(emulator)[2:] == [(route, 403)]
    assert (caught.value.status, caught.value.code) == (403, "APP_500")
    assert client.get_status(REFERENCE_JOB_ID)["id"] == REFERENCE_JOB_ID  # the session was kept
    assert emulator.logins == 1


def test_a_403_auth_01_on_a_fresh_session_is_not_retried(forbidding, client, ref_job):
    forbidding.add_fault(Fault(route="status", kind="invalidate_session"))

    with pytest.raises(SessionExpired):
        client.get_status(REFERENCE_JOB_ID)

    assert calls(forbidding) == [("login", 200), ("status", 403)]


# --- login refused ----------------------------------------------------------------------------------------------------


def test_a_wrong_password_raises_login_refused_after_exactly_one_attempt(emulator, ref_job):
    wrong = "not-the-password-at-all"
    client = client_for(emulator, password=wrong)

    with pytest.raises(LoginRefused) as caught:
        client.get_status(REFERENCE_JOB_ID)

    error = caught.value
    assert (error.status, error.code) == (400, "IDS_085")
    assert "Invalid username or password." in error.message
    assert re.fullmatch(r"[A-Za-z0-9]{22}", error.request_id)
    assert emulator.logins == 1
    assert calls(emulator) == [("login", 400)]
    assert client.logins == 0
    assert wrong not in f"{error} {error!r} {error.args}"


def test_a_refused_login_is_not_an_error_to_retry():
    assert LoginFailed("x").transient is False and LoginRefused("x").transient is False


def test_a_client_never_sends_credentials_iics_refused_again(emulator, ref_job):
    client = client_for(emulator, password="wrong")

    for _ in range(3):
        with pytest.raises(LoginRefused):
            client.get_status(REFERENCE_JOB_ID)

    assert emulator.logins == 1


def test_a_login_resource_that_is_not_there_is_a_failed_login_not_a_refused_password():
    error = error_from_response(404, NO_HEADERS, v3_body(), during_login=True)

    assert type(error) is LoginFailed and error.message.startswith("IICS login failed")


@pytest.mark.parametrize(
    ("fault", "error_type"),
    [
        (Fault(route="login", kind="reset"), IicsUnavailable),
        (Fault(route="login", status=502, html=True), IicsUnavailable),
        (Fault(route="login", status=429, retry_after=5), Throttled),
        (Fault(route="login", kind="malformed_json"), IicsUnavailable),
    ],
)
def test_a_login_that_fails_on_the_way_is_transient_and_tried_once(emulator, client, ref_job, fault, error_type):
    emulator.add_fault(fault)

    with pytest.raises(error_type) as caught:
        client.get_status(REFERENCE_JOB_ID)

    assert caught.value.transient is True
    assert emulator.logins == 1
    assert [route for route, _ in calls(emulator)] == ["login"]


# --- IICS errors become typed errors ----------------------------------------------------------------------------------


def test_an_unknown_job_raises_job_not_found_with_the_v3_error_fields(emulator, client):
    with pytest.raises(JobNotFound) as caught:
        client.get_status("NoSuchJob0000000000000")

    error = caught.value
    assert error.status == 404
    assert error.code == "MigrationSvc_004"
    assert re.fullmatch(r"Export job .*\[NoSuchJob0000000000000\] was not found\.", error.message)
    assert re.fullmatch(r"[A-Za-z0-9]{22}", error.request_id)
    assert str(error) == f"{error.message} | HTTP 404 | code MigrationSvc_004 | requestId {error.request_id}"


def test_an_unknown_jobs_log_raises_job_not_found(emulator, client):
    with pytest.raises(JobNotFound):
        client.open_log("NoSuchJob0000000000000")


def test_a_proxys_html_502_raises_iics_unavailable_with_the_page_title(emulator, client, ref_job):
    emulator.add_fault(Fault(route="status", status=502, html=True))

    with pytest.raises(IicsUnavailable) as caught:
        client.get_status(REFERENCE_JOB_ID)

    assert (caught.value.message, caught.value.status, caught.value.code) == ("502 Bad Gateway", 502, None)


def test_a_429_with_retry_after_raises_throttled_carrying_the_wait(emulator, client, ref_job):
    emulator.add_fault(Fault(route="status", status=429, retry_after=7))

    with pytest.raises(Throttled) as caught:
        client.get_status(REFERENCE_JOB_ID)

    assert caught.value.retry_after == 7.0
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        429,
        "MigrationSvc_429",
        "too many requests",
    )


@pytest.mark.parametrize("html", [False, True])
def test_a_503_raises_throttled(emulator, client, ref_job, html):
    emulator.add_fault(Fault(route="status", status=503, html=html))

    with pytest.raises(Throttled) as caught:
        client.get_status(REFERENCE_JOB_ID)

    assert (caught.value.status, caught.value.retry_after) == (503, None)


def test_a_500_raises_iics_unavailable(emulator, client, ref_job):
    emulator.add_fault(Fault(route="status", status=500))

    with pytest.raises(IicsUnavailable) as caught:
        client.get_status(REFERENCE_JOB_ID)

    assert (caught.value.status, caught.value.code) == (500, "APP_500")


def test_a_403_raises_access_denied(emulator, client, ref_job):
    emulator.add_fault(Fault(route="status", status=403))

    with pytest.raises(AccessDenied):
        client.get_status(REFERENCE_JOB_ID)


def test_a_connection_reset_raises_iics_unavailable(emulator, client, ref_job):
    prime(client, emulator)
    emulator.add_fault(Fault(route="status", kind="reset"))

    with pytest.raises(IicsUnavailable) as caught:
        client.get_status(REFERENCE_JOB_ID)

    assert "could not reach IICS" in str(caught.value)
    assert client.get_status(REFERENCE_JOB_ID)["id"] == REFERENCE_JOB_ID  # the pool recovers


def test_a_malformed_json_body_raises_iics_unavailable(emulator, client, ref_job):
    emulator.add_fault(Fault(route="status", kind="malformed_json"))

    with pytest.raises(IicsUnavailable, match="not a JSON object") as caught:
        client.get_status(REFERENCE_JOB_ID)

    assert caught.value.status == 200


# --- bounded answers: login and status bodies of at most MAX_ANSWER_BYTES ---------------------------------------------


def test_the_answer_limit_is_16_mib_and_the_emulators_huge_body_is_four_times_that():
    assert (MAX_ANSWER_BYTES, HUGE_BYTES) == (16 * 1024 * 1024, 64 * 1024 * 1024)


@pytest.mark.parametrize("route", ["login", "status"])
def test_a_body_declared_larger_than_the_limit_is_refused_unread(emulator, ref_job, route):
    client = client_for(emulator)
    if route == "status":
        prime(client, emulator)
    emulator.add_fault(Fault(route=route, kind="huge"))  # 64 MiB of valid JSON, with its Content-Length

    started = time.monotonic()
    with pytest.raises(IicsUnavailable) as caught:
        client.get_status(REFERENCE_JOB_ID)
    seconds = time.monotonic() - started

    assert caught.value.transient is True
    assert str(caught.value).startswith(f"IICS answered {HUGE_BYTES} bytes, more than the 16 MiB limit; refused unread")
    (sent,) = emulator.huge_bytes_sent()
    assert sent < MAX_ANSWER_BYTES  # what the socket buffers took before the client hung up: none of it was read
    assert seconds < 2


def test_an_html_title_is_read_as_its_reader_sees_it_so_an_echoed_password_is_found():
    """A Java server's error page: the login body echoed in its <title>, HTML-escaped the way Spring does."""
    remember("Sup3r'Secret")
    page = (
        b"<title>Bad credentials for {&quot;username&quot;:&quot;u&quot;,"
        b"&quot;password&quot;:&quot;Sup3r&#39;Secret&quot;}</title>"
    )

    error = error_from_response(401, NO_HEADERS, page, during_login=True)

    assert isinstance(error, LoginRefused) and "Sup3r" not in str(error)
    assert str(error).startswith('IICS login refused: Bad credentials for {"username":"u","password":"[redacted]"}')


def test_a_garbled_content_length_is_no_crash(emulator):
    """A login answer whose Content-Length is a digit Python's int() refuses ("²"): read as any answer
    without a length, then judged by its body (here one that is not JSON: a transient error)."""
    listener = socket.create_server(("127.0.0.1", 0))
    answer = "HTTP/1.1 200 OK\r\nContent-Length: \u00b2\r\nConnection: close\r\n\r\nnot json".encode("latin-1")

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    credentials = Credentials(
        username=USERNAME, password=PASSWORD, login_url=f"http://127.0.0.1:{listener.getsockname()[1]}"
    )
    with listener, pytest.raises(IicsUnavailable):
        IicsClient(lambda: credentials, hosts=EMULATOR_HOSTS).login()


@pytest.mark.parametrize("route", ["login", "status"])
def test_a_body_without_a_length_is_read_no_further_than_the_limit(emulator, ref_job, route):
    client = client_for(emulator)
    if route == "status":
        prime(client, emulator)
    emulator.add_fault(Fault(route=route, kind="huge", chunked=True))  # 64 MiB, chunked: no length declared

    tracemalloc.start()
    try:
        with pytest.raises(IicsUnavailable) as caught:
            client.get_status(REFERENCE_JOB_ID)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert caught.value.transient is True
    assert str(caught.value).startswith("IICS answered more than the 16 MiB limit; refused after reading 16 MiB")
    (sent,) = emulator.huge_bytes_sent()
    assert sent < HUGE_BYTES // 2  # the client stopped reading at the limit (plus what the socket buffers held)
    assert peak < 3 * MAX_ANSWER_BYTES  # at most the limit was held (and joined once), never the 64 MiB


def test_a_body_of_exactly_the_limit_is_read(emulator, ref_job):
    client = client_for(emulator)
    prime(client, emulator)
    emulator.add_fault(Fault(route="status", kind="huge", size_bytes=MAX_ANSWER_BYTES, chunked=True))

    assert client.get_status(REFERENCE_JOB_ID)["id"] == REFERENCE_JOB_ID
    assert emulator.huge_bytes_sent() == [MAX_ANSWER_BYTES]


def test_an_error_answer_is_read_only_as_far_as_its_code_and_message(emulator, client):
    emulator.add_fault(Fault(route="status", kind="huge", chunked=True))  # the 404 for an unknown job, padded

    with pytest.raises(JobNotFound):
        client.get_status("NoSuchJob0000000000000")

    (sent,) = emulator.huge_bytes_sent()
    assert sent < MAX_ANSWER_BYTES  # an error's first 64 KiB were read, then the connection was dropped


# --- the status is the job's ------------------------------------------------------------------------------------------


def test_a_status_about_another_job_is_a_transient_error_naming_both_ids(emulator, client, ref_job):
    prime(client, emulator)
    emulator.add_fault(Fault(route="status", kind="wrong_id"))

    with pytest.raises(IicsUnavailable) as caught:
        client.get_status(REFERENCE_JOB_ID)

    assert caught.value.transient is True
    other = re.fullmatch(
        rf"IICS answered the status of job ([A-Za-z0-9]{{22}}) when asked for job {REFERENCE_JOB_ID} \| HTTP 200",
        str(caught.value),
    )
    assert other and other.group(1) != REFERENCE_JOB_ID
    assert client.get_status(REFERENCE_JOB_ID)["id"] == REFERENCE_JOB_ID  # the next poll is the job's again


@pytest.mark.parametrize(
    ("other_id", "shown"),
    [
        (None, "no id"),
        (42, "job 42"),
        ("x" * 10_000, "job " + "x" * 64 + "..."),
        ("a\nb\u2603", "job 'a\\nb\\u2603'"),
    ],
)
def test_a_status_with_a_missing_or_odd_id_is_refused_with_the_id_bounded(other_id, shown):
    client, http = scripted_client(answer(200, login_answer()), answer(200, {"id": other_id, "status": {}}))

    with pytest.raises(IicsUnavailable) as caught:
        client.get_status("abc")

    assert shown in caught.value.message
    assert len(caught.value.message) < 200


def test_a_read_timeout_raises_iics_unavailable_quickly(emulator, ref_job):
    client = client_for(emulator, timeout=urllib3.Timeout(connect=1, read=0.2))
    prime(client, emulator)
    emulator.add_fault(Fault(route="status", kind="slow", delay_seconds=1.0))

    started = time.monotonic()
    with pytest.raises(IicsUnavailable, match="ReadTimeoutError"):
        client.get_status(REFERENCE_JOB_ID)

    assert time.monotonic() - started < 0.9


def test_a_slow_answer_inside_the_timeout_is_served(emulator, ref_job):
    client = client_for(emulator, timeout=urllib3.Timeout(connect=1, read=1.0))
    emulator.add_fault(Fault(route="status", kind="slow", delay_seconds=0.1))

    assert client.get_status(REFERENCE_JOB_ID) == reference.STATUS_IN_PROGRESS


# --- deadlines: each request ends by its total budget, whatever the socket reads do -----------------------------------


def test_a_status_that_drips_ends_at_the_request_deadline_as_a_transient_error(emulator, ref_job):
    # Given a status answer that drips a byte every 20 ms (about 12 s for its 600 bytes; no socket read waits long)
    client = client_for(emulator, timeout=urllib3.Timeout(connect=1, read=5.0), request_seconds=1.0)
    prime(client, emulator)
    emulator.add_fault(Fault(route="status", kind="drip", delay_seconds=0.02))

    started = time.monotonic()
    with pytest.raises(AnswerLost, match="not over by its deadline") as caught:
        client.get_status(REFERENCE_JOB_ID)

    assert caught.value.transient
    assert 0.9 < time.monotonic() - started < 1.5
    assert client.get_status(REFERENCE_JOB_ID)["id"] == REFERENCE_JOB_ID  # the next request is served


def test_the_invocation_deadline_cuts_a_request_shorter_than_its_budget(emulator, ref_job):
    client = client_for(emulator, request_seconds=30.0)
    prime(client, emulator)
    emulator.add_fault(Fault(route="status", kind="slow", delay_seconds=3.0))

    started = time.monotonic()
    with client.within(time.monotonic() + 0.5), pytest.raises(AnswerLost):
        client.get_status(REFERENCE_JOB_ID)

    assert time.monotonic() - started < 1.0
    assert client.seconds_left() == float("inf")  # the deadline ends with the invocation


def test_no_request_begins_after_the_invocation_deadline(emulator, ref_job):
    client = client_for(emulator)
    prime(client, emulator)
    before = len(emulator.requests)

    with client.within(time.monotonic() - 0.1), pytest.raises(NotSent):
        client.get_status(REFERENCE_JOB_ID)

    assert len(emulator.requests) == before


def test_an_endless_log_stream_ends_at_the_invocation_deadline(emulator, ref_job):
    client = client_for(emulator)
    emulator.add_fault(Fault(route="log", kind="endless"))

    started, received = time.monotonic(), 0
    with client.within(time.monotonic() + 0.5), client.open_log(REFERENCE_JOB_ID) as stream:
        with pytest.raises(AnswerLost):
            while stream.read(1024 * 1024):
                received += 1

    assert received > 0 and time.monotonic() - started < 1.0


def test_an_export_start_is_not_begun_without_its_whole_budget_left(emulator):
    client = client_for(emulator, request_seconds=2.0)
    client.login()

    with client.within(time.monotonic() + 1.0), pytest.raises(NotSent, match="too little"):
        client.start_export(EXPORT_SPEC)

    assert calls(emulator, "export") == []


def test_an_export_start_whose_answer_is_lost_may_have_started_an_export(emulator):
    client = client_for(emulator, request_seconds=0.5)
    emulator.add_fault(Fault(route="export", kind="drip", delay_seconds=0.05))

    with pytest.raises(StartUnconfirmed, match="an export may have started; check IICS before retrying") as caught:
        client.start_export(EXPORT_SPEC)

    assert not caught.value.transient
    assert [route for route, _ in calls(emulator, "export")] == ["export"]


def test_a_log_stream_that_breaks_off_raises_iics_unavailable():
    class BreakingResponse:
        def read1(self, amount=None):
            raise urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead")

    with pytest.raises(IicsUnavailable, match="the log stream broke off: ProtocolError"):
        LogStream(BreakingResponse()).read(1024)


# --- error_from_response: the one place answers become error types ----------------------------------------------------


def v3_body(code="IDS_085", message="Invalid username or password.", request_id="3Rl2D4BZR4vjHHAJSmcUqg") -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "requestId": request_id, "details": None}}).encode()


NO_HEADERS = urllib3.HTTPHeaderDict()


def test_a_v3_nested_error_body_is_parsed():
    error = error_from_response(404, NO_HEADERS, v3_body("MigrationSvc_004", "Not here.", "abc123"))

    assert isinstance(error, JobNotFound)
    assert (error.status, error.code, error.message, error.request_id) == (
        404,
        "MigrationSvc_004",
        "Not here.",
        "abc123",
    )


def test_a_v2_flat_error_body_is_parsed():
    body = b'{"@type": "error", "code": "UI_10000", "description": "Invalid user name or password.", "statusCode": 403}'

    error = error_from_response(403, NO_HEADERS, body)

    assert isinstance(error, AccessDenied)
    assert (error.code, error.message, error.request_id) == ("UI_10000", "Invalid user name or password.", None)


def test_a_v2_flat_error_during_login_is_a_refused_login():
    body = b'{"@type": "error", "code": "UI_10000", "description": "Invalid user name or password.", "statusCode": 403}'

    error = error_from_response(403, NO_HEADERS, body, during_login=True)

    assert isinstance(error, LoginRefused)
    assert error.message == "IICS login refused: Invalid user name or password."


@pytest.mark.parametrize(
    ("status", "during_login", "error_type"),
    [
        (400, False, BadRequest),
        (409, False, BadRequest),
        (401, False, SessionExpired),
        (403, False, AccessDenied),
        (404, False, JobNotFound),
        (500, False, IicsUnavailable),
        (502, False, IicsUnavailable),
        (504, False, IicsUnavailable),
        (429, False, Throttled),
        (503, False, Throttled),
        (400, True, LoginRefused),
        (401, True, LoginRefused),
        (403, True, LoginRefused),
        (404, True, LoginFailed),
        (500, True, IicsUnavailable),
        (429, True, Throttled),
    ],
)
def test_each_http_status_maps_to_one_error_type(status, during_login, error_type):
    error = error_from_response(status, NO_HEADERS, v3_body(), during_login=during_login)

    assert type(error) is error_type
    assert error.status == status


@pytest.mark.parametrize("status", [400, 403, 404, 500])
@pytest.mark.parametrize(
    "body",
    [
        v3_body("X_1", "Too Many Requests. Try again later."),
        b"too many requests",
        b"<html><head><title>Error</title></head><body>Too many requests</body></html>",
    ],
)
def test_a_body_saying_too_many_requests_is_throttling_whatever_the_status(status, body):
    assert isinstance(error_from_response(status, NO_HEADERS, body), Throttled)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html><head><title>504 Gateway Time-out</title></head><body>...</body></html>", "504 Gateway Time-out"),
        (b"<HTML><TITLE>\n  Bad\n  Gateway\n</TITLE></HTML>", "Bad Gateway"),
        (
            b"upstream connect error or disconnect/reset before headers",
            "upstream connect error or disconnect/reset before headers",
        ),
        (b"", "IICS answered HTTP 502"),
        (b"<html><body>no title</body></html>", "IICS answered HTTP 502"),
        (b'{"unexpected": "shape"}', '{"unexpected": "shape"}'),
        (b"\xff\xfe garbage", "\ufffd\ufffd garbage"),
    ],
)
def test_an_error_body_that_is_not_iics_json_still_gives_a_readable_message(body, message):
    error = error_from_response(502, NO_HEADERS, body)

    assert isinstance(error, IicsUnavailable)
    assert error.message == message
    assert error.code is None


def test_an_error_message_is_bounded_and_on_one_line():
    error = error_from_response(400, NO_HEADERS, v3_body(message="line one\n\tline two " + "x" * 10_000))

    assert error.message.startswith("line one line two xxx")
    assert len(error.message) == 300


def test_retry_after_is_read_from_a_throttling_answer():
    headers = urllib3.HTTPHeaderDict({"Retry-After": "120"})

    assert error_from_response(429, headers, b"").retry_after == 120.0


# --- Retry-After ------------------------------------------------------------------------------------------------------

NOW = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0.0),
        ("30", 30.0),
        (" 30 ", 30.0),
        (str(10**12), float(MAX_RETRY_AFTER_SECONDS)),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        ("Thu, 22 Oct 2015 07:28:00 GMT", float(MAX_RETRY_AFTER_SECONDS)),
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
    ],
)
def test_retry_after_is_seconds_or_an_http_date_bounded_to_an_hour(value, seconds):
    assert parse_retry_after(value, now=NOW) == seconds


def test_an_http_date_retry_after_with_an_unknown_zone_does_not_crash():
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 -0000", now=NOW) in (None, 30.0)


# --- nothing unvalidated reaches a URL --------------------------------------------------------------------------------


@pytest.mark.parametrize("job_id", ["../x", "a/b", "%2e%2e", "x?expand=objects", "Z" * 65, "jöb", "", None])
def test_an_invalid_job_id_never_produces_a_request(emulator, client, job_id):
    with pytest.raises(InvalidJobId):
        client.get_status(job_id)
    with pytest.raises(InvalidJobId):
        client.open_log(job_id)

    assert emulator.requests == []
    assert emulator.logins == 0


# --- secrets stay secret ----------------------------------------------------------------------------------------------


def test_the_session_id_and_password_never_show_in_errors(emulator, client, ref_job):
    raised = []
    faults = [
        Fault(route="status", status=401, times=2),
        Fault(route="status", status=404),
        Fault(route="status", status=429, retry_after=3),
        Fault(route="status", status=502, html=True),
        Fault(route="status", kind="reset"),
        Fault(route="status", kind="malformed_json"),
    ]
    prime(client, emulator)
    for fault in faults:
        emulator.add_fault(fault)
        with pytest.raises(IicsError) as caught:
            client.get_status(REFERENCE_JOB_ID)
        raised.append(caught.value)
    with pytest.raises(LoginRefused) as refused:
        client_for(emulator, password=PASSWORD + "-old").get_status(REFERENCE_JOB_ID)
    raised.append(refused.value)

    assert [type(e).__name__ for e in raised] == [
        "SessionExpired",
        "JobNotFound",
        "Throttled",
        "IicsUnavailable",
        "AnswerLost",  # the reset came after the request went out
        "IicsUnavailable",
        "LoginRefused",
    ]
    assert len(session_ids(emulator)) >= 2
    assert_no_secrets(emulator, *raised)


def test_the_session_id_and_password_never_show_in_the_client_session_or_credentials(emulator, client, ref_job):
    session = client.login()
    client.get_status(REFERENCE_JOB_ID)

    assert session.session_id in session_ids(emulator)
    assert session.session_id not in f"{session!r} {session!s} {client!r} {client!s}"
    credentials = credentials_for(emulator.url)
    assert PASSWORD not in f"{credentials!r} {credentials!s}"
    assert_no_secrets(emulator, session, credentials)


# --- login answers and service URLs -----------------------------------------------------------------------------------


class ScriptedHttp:
    """A stand-in for urllib3.PoolManager that answers from a script and records what was asked."""

    def __init__(self, *answers: urllib3.HTTPResponse) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[str, str]] = []

    def request(self, method, url, **kwargs):
        self.asked.append((method, url))
        return self.answers.pop(0)


def answer(status: int, document) -> urllib3.HTTPResponse:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return urllib3.HTTPResponse(body=io.BytesIO(body), status=status, preload_content=False)


def login_answer(base_api_url="https://na1.dm-us.informaticacloud.com/saas", session_id="S" * 22) -> dict:
    return {
        "products": [{"name": "Integration Cloud", "baseApiUrl": base_api_url}],
        "userInfo": {"sessionId": session_id},
    }


def scripted_client(*answers) -> tuple[IicsClient, ScriptedHttp]:
    http = ScriptedHttp(*answers)
    credentials = credentials_for("https://dm-us.informaticacloud.com")
    return IicsClient(lambda: credentials, http=http), http


def test_the_login_goes_to_the_login_host_and_status_to_the_pod_host():
    client, http = scripted_client(answer(200, login_answer()), answer(200, {"id": "abc", "status": {}}))

    client.get_status("abc")

    assert http.asked == [
        ("POST", "https://dm-us.informaticacloud.com/saas/public/core/v3/login"),
        ("GET", "https://na1.dm-us.informaticacloud.com/saas/public/core/v3/export/abc"),
    ]


@pytest.mark.parametrize(
    "base_api_url",
    [
        "ftp://na1.dm-us.informaticacloud.com/saas",
        "https://user:pw@na1.dm-us.informaticacloud.com/saas",
        "https://na1.dm-us.informaticacloud.com/saas?x=1",
        "",
        None,
        42,
    ],
)
def test_a_base_api_url_that_is_not_https_gets_no_session_id(base_api_url):
    client, http = scripted_client(answer(200, login_answer(base_api_url=base_api_url)))

    with pytest.raises(IicsUnavailable, match="unusable baseApiUrl"):
        client.get_status("abc")

    assert len(http.asked) == 1  # the login only


@pytest.mark.parametrize(
    "document",
    [
        {"products": [], "userInfo": {"sessionId": "S"}},
        {"products": [{"baseApiUrl": "https://x.example.com"}]},
        {"products": [{"baseApiUrl": "https://x.example.com"}], "userInfo": None},
        [],
        b"not json",
    ],
)
def test_a_login_answer_without_session_or_base_url_raises_iics_unavailable(document):
    client, http = scripted_client(answer(200, document))

    with pytest.raises(IicsUnavailable):
        client.get_status("abc")

    assert len(http.asked) == 1


def test_a_jwt_sized_session_id_is_accepted_and_a_larger_one_is_not():
    jwt = "e" * 16_000
    client, http = scripted_client(answer(200, login_answer(session_id=jwt)))
    assert client.login().session_id == jwt

    client, http = scripted_client(answer(200, login_answer(session_id=jwt + "e")))
    with pytest.raises(IicsUnavailable, match="unusable session id"):
        client.login()


def test_a_redirect_instead_of_the_log_is_an_error_not_a_log():
    moved = urllib3.HTTPResponse(
        body=io.BytesIO(b"<html>Moved</html>"),
        status=302,
        headers={"Location": "https://elsewhere.example.com/log"},
        preload_content=False,
    )
    client, http = scripted_client(answer(200, login_answer()), moved)

    with pytest.raises(IicsError):
        client.open_log("abc").read()


def test_a_session_repr_shows_the_base_url_only():
    session = Session(session_id="very-secret-session", base_api_url="https://na1.dm-us.informaticacloud.com/saas")

    assert repr(session) == "Session(base_api_url='https://na1.dm-us.informaticacloud.com/saas')"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://dm-us.informaticacloud.com", "https://dm-us.informaticacloud.com"),
        ("https://dm-us.informaticacloud.com/", "https://dm-us.informaticacloud.com"),
        ("https://dm1-apse.informaticacloud.com:443", "https://dm1-apse.informaticacloud.com:443"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost:8080/", "http://localhost:8080"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_a_login_url_must_be_https_unless_loopback(url, expected):
    assert credentials_for(url).login_url == expected
    assert check_service_url(url, "loginUrl") == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://dm-us.informaticacloud.com",
        "http://10.0.0.5:8080",
        "http://127.0.0.1.nip.io",
        "http://localhost.example.com",
        "ftp://dm-us.informaticacloud.com",
        "dm-us.informaticacloud.com",
        "https://",
        "https://alice:pw@dm-us.informaticacloud.com",
        "https://dm-us.informaticacloud.com?next=x",
        "https://dm-us.informaticacloud.com#x",
    ],
)
def test_a_login_url_that_is_not_https_or_is_odd_is_a_config_error(url):
    with pytest.raises(ConfigError, match="field loginUrl must be"):
        credentials_for(url)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"password": "p", "loginUrl": "https://x.example.com"}, "username"),
        ({"username": "", "password": "p", "loginUrl": "https://x.example.com"}, "username"),
        ({"username": "u", "password": 7, "loginUrl": "https://x.example.com"}, "password"),
        ({"username": "u", "password": "p" * 256, "loginUrl": "https://x.example.com"}, "password"),
        ({"username": "u", "password": "p"}, "loginUrl"),
    ],
)
def test_a_credential_field_missing_or_too_long_is_named(data, field):
    with pytest.raises(ConfigError, match=f"field {field} is missing, empty or longer than 255") as caught:
        Credentials.from_mapping(data)

    assert "p" * 20 not in str(caught.value)


# --- credentials from Secrets Manager (moto) --------------------------------------------------------------------------


@pytest.fixture
def secrets():
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


def test_the_client_logs_in_with_the_secrets_credentials(emulator, ref_job, secrets):
    secret = {"username": USERNAME, "password": PASSWORD, "loginUrl": emulator.url}
    secrets.create_secret(Name="iics/export-monitor", SecretString=json.dumps(secret))

    client = IicsClient(secret_credentials("iics/export-monitor"), hosts=EMULATOR_HOSTS)

    assert client.get_status(REFERENCE_JOB_ID) == reference.STATUS_IN_PROGRESS
    assert json.loads(emulator.requests[0].body) == {"username": USERNAME, "password": PASSWORD}


def test_a_secret_that_is_not_json_is_a_config_error_naming_it(secrets):
    secrets.create_secret(Name="iics/plain", SecretString=f"{USERNAME}:{PASSWORD}")

    with pytest.raises(ConfigError, match="secret iics/plain is not valid JSON") as caught:
        secret_credentials("iics/plain")()

    assert PASSWORD not in str(caught.value)


def test_a_missing_secret_is_a_config_error_naming_it_and_the_cause(secrets):
    with pytest.raises(ConfigError, match=r"secret iics/missing could not be read: .*ResourceNotFoundException"):
        secret_credentials("iics/missing")()


def test_a_missing_secret_is_a_config_error_naming_it(secrets):
    with pytest.raises(ConfigError, match="secret iics/missing could not be read"):
        secret_credentials("iics/missing")()


def test_a_secret_with_an_http_login_url_is_a_config_error(secrets):
    secret = {"username": USERNAME, "password": PASSWORD, "loginUrl": "http://dm-us.informaticacloud.com"}
    secrets.create_secret(Name="iics/http", SecretString=json.dumps(secret))

    with pytest.raises(ConfigError, match="secret iics/http field loginUrl must be an https URL"):
        secret_credentials("iics/http")()


@pytest.mark.parametrize(
    ("header", "seconds"), [("0.5", 0.5), ("2", 2.0), ("99999999", 3600.0), ("-1", None), ("", None)]
)
def test_retry_after_accepts_fractions_and_is_bounded(header, seconds):
    assert parse_retry_after(header) == seconds


# --- an IICS that echoes the request: the error's text keeps no secret -----------------------------------------------

ECHOING_PASSWORD = 'Zq7Kx9Wv "quoted" back\\slash <b>&amp; 100%'  # "Zq7Kx9Wv" survives any escaping


def error_texts(error: BaseException) -> str:
    return f"{error!s} {error!r} {error.args} {vars(error)}"


@pytest.mark.parametrize("body_format", ["json", "text", "html"])
def test_a_login_answer_that_echoes_the_request_leaves_no_password_in_the_error(body_format):
    with IicsEmulator(username=USERNAME, password=ECHOING_PASSWORD) as emu:
        emu.add_fault(Fault(route="login", kind="echo", status=400, body_format=body_format))

        with pytest.raises(LoginFailed) as caught:
            client_for(emu, ECHOING_PASSWORD).login()

    assert "/saas/public/core/v3/login" in caught.value.message  # the echo is there, scrubbed
    assert "Zq7Kx9Wv" not in error_texts(caught.value)


@pytest.mark.parametrize("route", ["status", "log", "package"])
@pytest.mark.parametrize("body_format", ["json", "text", "html"])
def test_an_answer_that_echoes_the_session_header_leaves_no_session_id_in_the_error(emulator, route, body_format):
    job_id = emulator.add_job(states=["SUCCESSFUL"])
    client = client_for(emulator)
    client.get_status(job_id)
    emulator.add_fault(Fault(route=route, kind="echo", status=403, body_format=body_format))

    with pytest.raises(AccessDenied) as caught:
        if route == "status":
            client.get_status(job_id)
        else:
            (client.open_log if route == "log" else client.open_package)(job_id)

    (session_id,) = emulator.issued_session_ids
    assert "INFA-SESSION-ID" in caught.value.message
    assert session_id not in error_texts(caught.value)


def test_an_echoed_jwt_session_id_of_16000_characters_leaves_no_piece_of_itself():
    with IicsEmulator(username=USERNAME, password=PASSWORD, session_jwt_length=16_000) as emu:
        job_id = emu.add_job(states=["SUCCESSFUL"])
        client = client_for(emu)
        client.get_status(job_id)
        emu.add_fault(Fault(route="status", kind="echo", status=500, body_format="text"))

        with pytest.raises(IicsUnavailable) as caught:
            client.get_status(job_id)

    (jwt,) = emu.issued_session_ids
    assert len(jwt) == 16_000 and "INFA-SESSION-ID" in caught.value.message
    assert leaked([jwt], error_texts(caught.value)) == []  # not whole, and no piece of 40 characters

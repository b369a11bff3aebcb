"""Bad input, by property (issue 5, item 3): the trigger event, the state machine input, the
``monitor`` overrides and IICS response bodies, drawn by hypothesis.

Every malformed input must end in a clear outcome: an ``InvalidInput``/``IicsError`` that the state
machine turns into one ERROR outcome event with a reason, or a refused start. Never an unhandled
exception, a retry storm, a crash loop, or a request to an unexpected URL or path.

The story goes from the edge inwards and then through the whole stack:
1. ``validation``: any JSON-like value, adversarial job ids and ``monitor`` objects.
2. ``submit`` and ``check``: the handlers' logic never starts badly named executions and never
   asks IICS about an invalid id.
3. ``client`` and ``status``: the real IICS client against a scripted server on 127.0.0.1 that
   answers with generated bodies, behind a guard that records (and keeps on loopback) every URL.
4. End to end: the template's stack in moto with the emulator; few examples, one stack per test.

Known bugs have their own ``xfail(strict=True)`` tests at the end of their section. The general
properties leave exactly those inputs out (session ids outside a token alphabet, baseApiUrls ending
in "?" or "#", JSON nested deeper than the interpreter's recursion limit, a valid job id in an
ERROR outcome), so they keep guarding everything else.
"""

from __future__ import annotations

import ipaddress
import json
import re
import string
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

import hypothesis
import pytest
import urllib3
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from iics_monitor import check, client, errors, policy, status, submit, validation
from iics_monitor.config import CheckConfig
from iics_monitor.credentials import Credentials
from iics_monitor.observability import metrics
from iics_monitor.status import text
from iics_monitor_local.emulator import API_PREFIX, LOGIN_PATH
from iics_monitor_local.loopback import LoopbackServer
from iics_monitor_local.stack import LocalStack
from tests.conftest import EMULATOR_HOSTS, PASSWORD, USERNAME, assert_valid_outcome

# Deterministic in CI: the same examples every run, and no example database written to the tree.
# Large generated strings and the per-test fixtures are deliberate, so their health checks are off.
PROFILE = settings(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
MANY = settings(PROFILE, max_examples=400)
SOME = settings(PROFILE, max_examples=120)
# Each end-to-end example runs an execution; the unit properties above shrink the same inputs in
# milliseconds, so a failure here is reported as found rather than shrunk for minutes.
FEW = settings(PROFILE, max_examples=10, phases=[Phase.explicit, Phase.reuse, Phase.generate])

DEFAULTS = validation.MonitorSettings(initial_wait_seconds=10, max_wait_seconds=120, timeout_seconds=3600)
CONFIG = CheckConfig(secret_name="iics/export-monitor", defaults=DEFAULTS, max_polls=500)
STARTED_AT = "2026-11-28T09:00:00Z"
NOW = datetime(2026, 11, 28, 9, 0, 30, tzinfo=UTC)
# A reason repeats at most a few 40-character excerpts of the input, whatever its size: five unknown
# monitor fields with long names make the longest, 256 characters.
MAX_REASON = 300
MAX_IICS_ERROR_TEXT = 1_000  # message, code and requestId are each cut at 300 characters
ASCII_ID = re.compile(r"[A-Za-z0-9]{1,64}")
EXECUTION_NAME = re.compile(r"[A-Za-z0-9-]{1,80}")
STATUS_ROUTE = "/public/core/v3/export/"


def is_valid_job_id(value: Any) -> bool:
    """The README's rule, stated independently of the regex: 1-64 ASCII letters and digits."""
    return isinstance(value, str) and 1 <= len(value) <= 64 and value.isascii() and value.isalnum()


def oracle(raw: Any, defaults: validation.MonitorSettings) -> validation.ExportRequest | errors.InvalidInput:
    """What the edge makes of ``raw``: the request, or the InvalidInput it raises."""
    try:
        return validation.parse_announcement(raw, defaults)
    except errors.InvalidInput as error:
        return error


# --- strategies -------------------------------------------------------------------------------------------------------

ID_ALPHABET = string.ascii_letters + string.digits


def repeated(pieces: list[str], low: int, high: int) -> st.SearchStrategy[str]:
    """Long strings cheaply: a short piece repeated to a length in [low, high]."""
    return st.builds(lambda piece, n: (piece * n)[:n], st.sampled_from(pieces), st.integers(low, high))


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64),  # JSON numbers; Python's 4,300-digit limit is not an input anyone sends
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)

valid_job_ids = st.text(alphabet=ID_ALPHABET, min_size=1, max_size=64)
TRICKS = [
    "../", "..%2F", "..%2f", "%2e%2e", "%2E%2E%2F", "..\\", "/", "\\", "?", "#", "&", "%", "%00", "%2F",
    "\x00", " ", "\t", "\n", "\r\n", "\u00a0", "\u2028", "\u200b", "\ufeff", ".", ";", "@", ":", "*", "~", "+",
]  # fmt: skip
traversal_job_ids = st.lists(
    st.one_of(st.sampled_from(TRICKS), st.text(alphabet=ID_ALPHABET, min_size=1, max_size=6)), min_size=1, max_size=8
).map("".join)
over_long_job_ids = st.one_of(
    repeated(["a", "7", "Z", "aB3", "x../"], 65, 10_000),
    st.text(alphabet=ID_ALPHABET, min_size=65, max_size=120),
)
UNICODE_LOOKALIKES = [
    "\u0660\u0661\u0662\u0663",  # Arabic-Indic digits: str.isalnum() and str.isdigit() say yes
    "\uff21\uff22\uff23\uff11\uff12\uff13",  # fullwidth ABC123
    "\u212a",  # Kelvin sign, lowercases to ASCII k
    "\u017f",  # long s, uppercases to ASCII S
    "\u0131",  # dotless i
    "\u00b2\u00b3",  # superscript digits
    "\u216b",  # Roman numeral twelve
    "\U0001d7d8",  # mathematical double-struck zero
    "\ufb01",  # fi ligature
    "e\u0301",  # e + combining acute
    "j\u00f6b",
]
unicode_job_ids = st.one_of(
    st.text(
        alphabet=st.characters(categories=["Lu", "Ll", "Lt", "Lm", "Lo", "Nd", "Nl", "No", "Mn"]),
        min_size=1,
        max_size=64,
    ).filter(lambda text: not text.isascii()),
    st.builds(
        lambda head, odd, tail: head + odd + tail,
        st.text(alphabet=ID_ALPHABET, max_size=20),
        st.sampled_from(UNICODE_LOOKALIKES),
        st.text(alphabet=ID_ALPHABET, max_size=20),
    ),
)
job_ids = st.one_of(valid_job_ids, traversal_job_ids, over_long_job_ids, unicode_job_ids, json_values)
invalid_job_ids = st.one_of(traversal_job_ids, over_long_job_ids, unicode_job_ids, json_values).filter(
    lambda value: not is_valid_job_id(value)
)

BOUNDARIES = [-1, 0, 1, 2, 3599, 3600, 3601, 2_592_000, 2_592_001, 10**12]
override_values = st.one_of(
    st.sampled_from(BOUNDARIES),
    st.integers(-10, 4_000),
    st.integers(-(2**63), 2**63),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1.0, 15.0, 15.5, "15", "0x10", "", None, [15], {"value": 15}]),
    st.text(max_size=10),
)
FIELD_NAMES = list(validation.MonitorSettings.FIELDS)
monitors = st.one_of(
    st.dictionaries(st.sampled_from(FIELD_NAMES), override_values, max_size=3),
    st.dictionaries(  # unknown, near-miss and over-long field names
        st.one_of(
            st.sampled_from([*FIELD_NAMES, "initialwaitseconds", "timeoutSeconds ", "pollEverySecond", "__proto__"]),
            st.text(max_size=20),
            repeated(["k", "\u00e9", "../"], 41, 500),
        ),
        override_values,
        max_size=8,
    ),
    json_values,
)
names = st.one_of(
    st.none(),
    st.text(max_size=300),
    repeated(["n", "\u00e9"], 250, 2_000),
    st.text(alphabet=st.characters(categories=["Cc", "Cf", "Zl", "Zp"]), min_size=1, max_size=5),
    json_values,
)
attempts = st.one_of(st.none(), st.integers(-3, 120), st.booleans(), st.floats(), st.sampled_from(["2", 2.0, [2]]))
request_objects = st.fixed_dictionaries(
    {"jobId": job_ids},
    optional={"name": names, "monitor": monitors, "attempt": attempts, "upstream": json_values},
)
well_formed_requests = st.fixed_dictionaries(  # so the accepting side of each property gets its share too
    {"jobId": valid_job_ids},
    optional={
        "name": st.text(alphabet=st.characters(categories=["L", "N", "P", "Zs"]), max_size=255),
        "monitor": st.fixed_dictionaries(
            {},
            optional={
                "initialWaitSeconds": st.integers(1, 10),
                "maxWaitSeconds": st.integers(120, 3600),
                "timeoutSeconds": st.integers(1, 2_592_000),
            },
        ),
        "attempt": st.integers(1, validation.MAX_ATTEMPT),
    },
)
requests = st.one_of(
    request_objects,
    well_formed_requests,
    st.fixed_dictionaries({}, optional={"name": names, "monitor": monitors, "attempt": attempts}),  # no jobId
    json_values,
)


# --- 1. validation: the edge ------------------------------------------------------------------------------------------


@MANY
@given(value=job_ids)
def test_a_job_id_is_accepted_only_if_it_is_ascii_letters_and_digits(value):
    try:
        job_id = validation.parse_job_id(value)
    except errors.InvalidJobId as error:
        hypothesis.event("refused")
        assert not is_valid_job_id(value)
        assert isinstance(error, errors.MonitorError)
        assert 0 < len(str(error)) < MAX_REASON
        return
    hypothesis.event("accepted")
    assert is_valid_job_id(value), f"accepted {value!r}"
    assert job_id == value and ASCII_ID.fullmatch(job_id) and job_id.isascii()


@MANY
@given(raw=requests)
def test_any_request_parses_into_a_bounded_request_or_a_short_invalid_input(raw):
    try:
        request = validation.parse_request(raw, DEFAULTS)
    except errors.InvalidInput as error:
        hypothesis.event(type(error).__name__)
        assert isinstance(error, errors.MonitorError)
        assert 0 < len(str(error)) < MAX_REASON, str(error)
        if isinstance(raw, dict) and "jobId" in raw and not is_valid_job_id(raw["jobId"]):
            assert isinstance(error, errors.InvalidJobId)  # the id is checked first, and named as such
        return

    # Then everything past the edge is within the documented bounds
    hypothesis.event("ExportRequest")
    assert isinstance(raw, dict) and request.job_id == raw["jobId"]
    assert ASCII_ID.fullmatch(request.job_id)
    for name, (attribute, low, high) in validation.MonitorSettings.FIELDS.items():
        value = getattr(request.settings, attribute)
        assert type(value) is int and low <= value <= high, (name, value)
    assert request.settings.max_wait_seconds >= request.settings.initial_wait_seconds
    overrides = raw.get("monitor") or {}
    assert all(request.settings.to_dict()[k] == v for k, v in overrides.items())
    assert all(v >= 1 for k, v in overrides.items() if k.endswith("WaitSeconds"))  # no request makes it hot
    assert request.name is None or (len(request.name) <= 255 and request.name.isprintable())
    assert type(request.attempt) is int and 1 <= request.attempt <= validation.MAX_ATTEMPT
    assert EXECUTION_NAME.fullmatch(request.execution_name)


@MANY
@given(
    raw=st.one_of(requests, st.fixed_dictionaries({"jobId": valid_job_ids, "monitor": monitors})),
    elapsed=st.floats(0, 40 * 24 * 3600),
    remaining=st.floats(0.001, 40 * 24 * 3600),
    expected=st.one_of(st.none(), st.floats(0.001, 10**6)),
)
@example(
    raw={"jobId": "abc", "monitor": {"initialWaitSeconds": 0, "maxWaitSeconds": 0}},
    elapsed=0,
    remaining=9,
    expected=None,
)
def test_no_request_the_edge_accepts_makes_a_wait_under_1_s_before_its_deadline(raw, elapsed, remaining, expected):
    try:
        request = validation.parse_request(raw, DEFAULTS)
    except errors.InvalidInput:
        return
    assert policy.next_wait_seconds(elapsed, request.settings, remaining, expected_seconds=expected) >= 1


# --- 2. the handlers' logic: start_monitor and check_job -------------------------------------------------------------


class FakeStepFunctions:
    """Records start_execution calls; each example starts from a fresh one, so no name repeats."""

    class exceptions:  # boto3's client.exceptions namespace, which start_monitor's except clause names
        class ExecutionAlreadyExists(Exception):
            pass

    def __init__(self) -> None:
        self.started: list[dict] = []

    def start_execution(self, *, stateMachineArn: str, name: str, input: str) -> dict:
        self.started.append({"name": name, "input": input})
        return {"executionArn": f"{stateMachineArn.replace(':stateMachine:', ':execution:')}:{name}"}


STATE_MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:iics-export-monitor"


@MANY
@given(
    event=st.one_of(
        st.fixed_dictionaries(
            {"detail": requests}, optional={"source": st.just("iics.export"), "detail-type": json_values}
        ),
        json_values,
    )
)
def test_any_trigger_event_starts_one_safely_named_execution(event):
    sfn = FakeStepFunctions()

    result = submit.start_monitor(event, sfn=sfn, state_machine_arn=STATE_MACHINE_ARN, defaults=DEFAULTS)

    (started,) = sfn.started
    assert result["status"] == "started" and result["executionName"] == started["name"]
    assert EXECUTION_NAME.fullmatch(started["name"])
    detail = event.get("detail") if isinstance(event, dict) else None
    execution_input = json.loads(started["input"])
    expected = oracle(detail, DEFAULTS)
    hypothesis.event(type(expected).__name__)
    if isinstance(expected, validation.StartExportRequest):  # these events carry no EventBridge id
        expected = errors.InvalidInput(submit._NO_EVENT_ID)
    if isinstance(expected, errors.InvalidInput):
        assert re.fullmatch(r"invalid-[0-9a-f]{32}", started["name"])  # never the malformed id
        assert execution_input["refused"]["reason"] == text(str(expected), status.REASON_LIMIT)
        assert "request" not in execution_input
    else:  # the validated request only: nothing else the event carried
        assert started["name"] == expected.execution_name
        assert execution_input["request"] == expected.to_dict() and "refused" not in execution_input


class RecordingStatusSource:
    """A StatusSource that records each call and answers from a script (a body or an error)."""

    def __init__(self, answer: dict | errors.IicsError) -> None:
        self.answer = answer
        self.calls: list[tuple[str, bool]] = []

    def get_status(self, job_id: str, *, expand_objects: bool = False) -> dict:
        self.calls.append((job_id, expand_objects))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


KNOWN_STATES = ["SUCCESSFUL", "SUCCESS", "Success", "FAILED", "Failed", "IN_PROGRESS", "In Progress", "QUEUED"]
huge_texts = repeated(["x", "\u00e9", "<b>", "\u202e"], 501, 100_000)
status_fields = st.one_of(json_values, huge_texts)
status_bodies = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "id": status_fields,
            "name": status_fields,
            "status": st.one_of(
                json_values,
                st.fixed_dictionaries(
                    {},
                    optional={
                        "state": st.one_of(st.sampled_from(KNOWN_STATES), status_fields),
                        "message": status_fields,
                    },
                ),
            ),
            "startTime": st.one_of(status_fields, st.datetimes().map(lambda d: d.isoformat() + "Z")),
            "endTime": st.one_of(status_fields, st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat)),
            "objects": st.one_of(
                json_values,
                st.lists(
                    st.one_of(
                        json_values,
                        st.fixed_dictionaries(
                            {},
                            optional={
                                "id": status_fields,
                                "name": status_fields,
                                "path": status_fields,
                                "type": status_fields,
                                "status": st.one_of(
                                    json_values, st.fixed_dictionaries({"state": st.sampled_from(KNOWN_STATES)})
                                ),
                            },
                        ),
                    ),
                    max_size=5,
                ),
            ),
        },
    ),
    st.dictionaries(st.text(max_size=10), json_values, max_size=6),
)
iics_errors = st.sampled_from(
    [
        errors.JobNotFound("Export job not found", status=404),
        errors.LoginFailed("IICS login refused", status=400),
        errors.SessionExpired("Invalid or expired session id.", status=401),
        errors.AccessDenied("no", status=403),
        errors.BadRequest("bad", status=400),
        errors.Throttled("too many requests", status=429, retry_after=3600.0),
        errors.IicsUnavailable("could not reach IICS: ProtocolError"),
    ]
)


@SOME
@given(request=requests, answer=st.one_of(status_bodies, iics_errors))
def test_check_asks_iics_only_about_a_valid_job_and_raises_only_monitor_errors(request, answer):
    metrics.clear_metrics()  # one example's metrics must not pile up into the next
    source = RecordingStatusSource(answer)
    event = {"request": request, "poll": {"polls": 0, "transientErrors": 0}, "startedAt": STARTED_AT}

    try:
        result = check.check_job(event, source=source, config=CONFIG, now=NOW)
    except errors.MonitorError as error:
        raised = error
    else:
        raised = None

    expected = oracle(request, CONFIG.defaults)
    hypothesis.event(f"{type(expected).__name__} -> {type(raised).__name__ if raised else 'result'}")
    if isinstance(expected, errors.InvalidInput):
        assert source.calls == [], "IICS was asked about an invalid request"
        assert type(raised) is type(expected) and str(raised) == str(expected)
        return
    assert source.calls == [(expected.job_id, False)]
    if raised is not None:  # only what IICS itself said, and never a transient error on the first poll
        assert raised is answer and not answer.transient
        return
    assert json.loads(json.dumps(result, allow_nan=False)) == result  # a valid Step Functions payload
    assert result["jobId"] == expected.job_id
    assert result["state"] in {s.value for s in status.JobState}
    assert result["polls"] == 1 and result["settings"] == expected.settings.to_dict()
    # a Retry-After (at most MAX_RETRY_AFTER_SECONDS) is honoured plus a spread of up to as long again + 1 s
    # (policy.next_wait_seconds), so a 3,600 s one with a late draw waits up to 7,201 s within the deadline
    longest = max(expected.settings.max_wait_seconds, 2 * client.MAX_RETRY_AFTER_SECONDS + 1)
    assert 0 <= result["nextWaitSeconds"] <= longest
    for text_field in ("jobName", "iicsState", "message"):
        assert result[text_field] is None or len(result[text_field]) <= 500


@MANY
@given(body=status_bodies)
def test_any_status_body_parses_into_a_known_state_and_bounded_text(body):
    parsed = status.JobStatus.parse(body)

    assert parsed.state in status.JobState
    assert parsed.raw_state is None or len(parsed.raw_state) <= 100
    assert all(v is None or len(v) <= 500 for v in (parsed.name, parsed.message))
    assert all(v is None or len(v) <= 40 for v in (parsed.start_time, parsed.end_time))
    assert parsed.duration_seconds is None or parsed.duration_seconds >= 0
    for item in parsed.objects:
        assert item.state in status.JobState
        assert all(v is None or len(v) <= 500 for v in item.to_dict().values())


# --- 3. the IICS client against a scripted server ---------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Seen:
    method: str
    path: str  # with the query string


class _ScriptedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self) -> None:
        owner: ScriptedIics = self.server.owner
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        answer = owner.record(Seen(self.command, self.path))
        self.send_response(answer.status)
        for name, value in answer.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.send_header("Connection", "close")  # each request on its own connection: no leftovers between examples
        self.end_headers()
        self.wfile.write(answer.body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer


class ScriptedIics(LoopbackServer):
    """Answers the login path with ``login`` and anything else with the next of ``statuses`` (the last
    repeats), and records every request it sees."""

    handler = _ScriptedHandler
    label = "the scripted IICS"

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.script(login=Answer(500), statuses=[Answer(500)])

    def script(self, *, login: Answer, statuses: list[Answer]) -> None:
        with self._lock:
            self.login, self.statuses, self.seen = login, list(statuses), []

    def record(self, seen: Seen) -> Answer:
        with self._lock:
            self.seen.append(seen)
            if seen.method == "POST" and seen.path == LOGIN_PATH:
                return self.login
            return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]


class GuardedPool(urllib3.PoolManager):
    """Records every URL the client asks for, and lets through only those on the scripted server,
    so a client that followed a hostile baseApiUrl shows it here instead of reaching the network."""

    def __init__(self, origin: str) -> None:
        super().__init__(retries=False)
        allowed = urllib3.util.parse_url(origin)
        self._allowed = (allowed.scheme, allowed.host, allowed.port)
        self.urls: list[tuple[str, str]] = []

    def urlopen(self, method: str, url: str, redirect: bool = True, **kw: Any):
        self.urls.append((method, url))
        try:
            target = urllib3.util.parse_url(url)
        except urllib3.exceptions.LocationParseError:
            target = None
        if target is None or (target.scheme, target.host, target.port) != self._allowed:
            raise urllib3.exceptions.HTTPError("blocked by the test: not the scripted server on 127.0.0.1")
        return super().urlopen(method, url, redirect=redirect, **kw)


@pytest.fixture(scope="module")
def scripted():
    with ScriptedIics() as server:
        yield server


def client_on(server: ScriptedIics) -> tuple[client.IicsClient, GuardedPool]:
    credentials = Credentials(username=USERNAME, password=PASSWORD, login_url=server.origin)
    pool = GuardedPool(server.origin)
    timeout = urllib3.Timeout(connect=2, read=5)
    return client.IicsClient(lambda: credentials, http=pool, timeout=timeout, hosts=EMULATOR_HOSTS), pool


def login_answer(session_id: Any = "s3ss10nId", base_api_url: Any = None, **extra: Any) -> dict:
    return {"userInfo": {"sessionId": session_id}, "products": [{"baseApiUrl": base_api_url}], **extra}


def json_bytes(document: Any) -> bytes:
    return json.dumps(document).encode()


def may_follow(url: Any) -> bool:
    """Independently of the client: https on port 443 to a host under informaticacloud.com, or (the
    harness turns loopback on here) this machine over http or https."""
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return False
    try:
        if parts.hostname == "localhost" or ipaddress.ip_address(parts.hostname or "").is_loopback:
            return True
    except ValueError:
        pass
    informatica = (parts.hostname or "").endswith(".informaticacloud.com") and parts.port in (None, 443)
    return parts.scheme == "https" and informatica


STATUSES = [200, 201, 202, 204, 206, 301, 302, 303, 307, 308, 400, 401, 403, 404, 405, 409, 410, 418, 422, 429]
STATUSES += [500, 501, 502, 503, 504, 599]
statuses = st.one_of(st.just(200), st.sampled_from(STATUSES))  # half of them 200, where the body must be parsed
header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
answer_headers = st.lists(
    st.tuples(
        st.sampled_from(["Retry-After", "Location", "Content-Type", "Set-Cookie"]),
        st.one_of(
            header_text,
            st.sampled_from(
                [
                    "http://evil.example/steal",
                    "file:///etc/passwd",
                    "//evil.example/",
                    "9" * 40,
                    "-5",
                    "1e309",
                    "Wed, 21 Oct 2015 07:28:00 GMT",
                    "Fri, 31 Dec 9999 23:59:59 GMT",
                    "application/json",
                    "text/html",
                ]
            ),
        ),
    ),
    max_size=3,
)
response_bodies = st.one_of(
    st.binary(max_size=512),
    json_values.map(json_bytes),
    status_bodies.map(json_bytes),
    st.floats().map(json_bytes),  # NaN and Infinity too, as a sloppy proxy might
    st.sampled_from(
        [
            b"",
            b"null",
            b"[]",
            b'"x"',
            b"\xef\xbb\xbf{}",
            b'{ "id": "7evG9CokA1whk8ehF3opKM", "status": { "state": "IN_PRO',
            b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
            b"<title>" * 200,
            b"Too Many Requests",
            b'{"error": {"code": "AUTH_01", "message": "Invalid or expired session id.", "requestId": "r"}}',
            b'{"@type": "error", "code": "UI_10000", "description": "' + b"d" * 5_000 + b'"}',
            b'{"error": {"code": ["x"], "message": {"a": 1}, "requestId": 5}}',
        ]
    ),
)
answers = st.builds(Answer, status=statuses, body=response_bodies, headers=answer_headers)


def about_job(answer: Answer, job_id: str) -> Answer:
    """``answer`` with ``job_id`` as the id of its body, if that is a JSON object (the client refuses a
    status about another job, or about none; tests/unit/layer/test_client.py shows that)."""
    try:
        document = json.loads(answer.body)
    except (ValueError, RecursionError):
        return answer
    if not isinstance(document, dict):
        return answer
    return Answer(answer.status, json_bytes(document | {"id": job_id}), answer.headers)


@SOME
@given(job_id=valid_job_ids, script=st.lists(answers, min_size=1, max_size=3))
def test_any_status_answer_is_a_parsable_body_or_a_typed_error(scripted, job_id, script):
    base = scripted.origin + API_PREFIX
    script = [about_job(answer, job_id) for answer in script]
    scripted.script(login=Answer(200, json_bytes(login_answer(base_api_url=base))), statuses=script)
    iics, pool = client_on(scripted)
    login_call, status_call = ("POST", scripted.origin + LOGIN_PATH), ("GET", base + STATUS_ROUTE + job_id)

    for attempt in range(2):  # a fresh session, then the cached one (with its one re-login on a 401)
        before = len(pool.urls)
        try:
            body = iics.get_status(job_id)
        except errors.IicsError as error:
            hypothesis.event(type(error).__name__)
            assert 0 < len(str(error)) <= MAX_IICS_ERROR_TEXT
            if isinstance(error, errors.Throttled) and error.retry_after is not None:
                assert 0 <= error.retry_after <= client.MAX_RETRY_AFTER_SECONDS
        else:
            hypothesis.event("status body")
            assert isinstance(body, dict)
            assert status.JobStatus.parse(body).state in status.JobState

        # Then the client went nowhere else: no redirect followed, at most one re-login and one retry
        calls = pool.urls[before:]
        fresh_call = [login_call, status_call]
        allowed = [fresh_call] if attempt == 0 else [[status_call], fresh_call, [status_call, *fresh_call]]
        assert calls in allowed, calls
    assert {(s.method, s.path) for s in scripted.seen} <= {("POST", LOGIN_PATH), ("GET", urlsplit(status_call[1]).path)}


FOLLOWABLE = [
    "https://na1.dm-us.informaticacloud.com/saas",
    "https://127.0.0.1:1/saas",
    "http://[::1]:9/saas",
    "http://localhost:9/saas",
]
HOSTILE = [  # not Informatica's, plain http off this machine, or not a URL at all: never followed
    "https://evil.example/saas",
    "https://evilinformaticacloud.com/saas",
    "https://informaticacloud.com.evil.net/saas",
    "https://informaticacloud.com/saas",
    "https://na1.dm-us.informaticacloud.com:8443/saas",
    "http://na1.dm-us.informaticacloud.com/saas",
    "http://evil.example",
    "http://evil.example/saas",
    "HTTP://EVIL.EXAMPLE/saas",
    "http://169.254.169.254/latest/meta-data",
    "http://10.0.0.1/saas",
    "http://0x7f000001/saas",
    "http://2130706433/saas",
    "http://127.1/saas",
    "http://127.0.0.1.evil.example/saas",
    "http://127.0.0.1@evil.example/saas",
    "http://evil.example#@127.0.0.1",
    "http://evil.example?@127.0.0.1",
    "http://evil.example\\@127.0.0.1/",
    "http://user:pw@127.0.0.1/saas",
    "{origin}/saas?x=1",
    "{origin}/saas#frag",
    "file:///etc/passwd",
    "file://127.0.0.1/etc/passwd",
    "javascript:alert(1)",
    "data:text/plain,hello",
    "ftp://127.0.0.1/saas",
    "gopher://127.0.0.1:70/_",
    "ws://127.0.0.1/saas",
    "//evil.example/saas",
    "evil.example/saas",
    "/na1/saas",
    "../../saas",
    "",
    " ",
    "http://",
    "https://",
    "http:///saas",
]
ORIGIN = "{origin}"
URL_SEGMENTS = st.text(alphabet=ID_ALPHABET + "-_~", min_size=1, max_size=8)
loopback_base_api_urls = st.builds(  # the scripted server itself, under some path
    lambda segments, slash: ORIGIN + "".join("/" + s for s in segments) + slash,
    st.lists(URL_SEGMENTS, max_size=3),
    st.sampled_from(["", "/"]),
)
base_api_urls = st.one_of(
    loopback_base_api_urls,
    st.sampled_from(HOSTILE),
    st.sampled_from(FOLLOWABLE),
    st.text(max_size=40),
    json_values,
)
token_session_ids = st.text(alphabet=ID_ALPHABET + "-._~+/=", min_size=1, max_size=40)
session_ids = st.one_of(
    token_session_ids,
    st.sampled_from(["", "x" * 16_000, "x" * 16_001]),
    json_values,
)
good_login_answers = st.builds(login_answer, session_id=token_session_ids, base_api_url=loopback_base_api_urls)
login_bodies = st.one_of(  # a JSON document (with {origin} placeholders), or raw bytes
    good_login_answers,
    good_login_answers,  # twice: the following side of the property gets its share
    st.builds(login_answer, session_id=session_ids, base_api_url=base_api_urls),
    st.builds(  # the right fields in the wrong shapes
        lambda user_info, products: {"userInfo": user_info, "products": products},
        st.one_of(json_values, st.fixed_dictionaries({"sessionId": session_ids})),
        st.one_of(json_values, st.lists(st.fixed_dictionaries({"baseApiUrl": base_api_urls}), max_size=2)),
    ),
    json_values,
    response_bodies,
)


def resolved(document: Any, origin: str) -> Any:
    """The document with the scripted server's origin in place of ``{origin}``."""
    return json.loads(json.dumps(document).replace(ORIGIN, origin))


@SOME
@given(
    job_id=valid_job_ids,
    login_status=st.one_of(st.just(200), st.sampled_from([400, 401, 403, 429, 500, 302])),
    login_body=login_bodies,
)
@example(job_id="abc", login_status=200, login_body=login_answer(base_api_url="https://evilinformaticacloud.com/saas"))
@example(job_id="abc", login_status=200, login_body=login_answer(base_api_url="https://na1.dm-us.informaticacloud.com"))
def test_login_follows_only_a_valid_base_api_url_and_is_never_retried(scripted, job_id, login_status, login_body):
    body = login_body if isinstance(login_body, bytes) else json_bytes(resolved(login_body, scripted.origin))
    scripted.script(
        login=Answer(login_status, body, (("Location", "http://evil.example/login"),)),
        statuses=[Answer(200, json_bytes({"status": {"state": "IN_PROGRESS"}}))],
    )
    iics, pool = client_on(scripted)

    try:
        iics.get_status(job_id)
    except (errors.IicsError, errors.ConfigError) as error:  # ConfigError: a baseApiUrl to a host not allowed
        hypothesis.event(type(error).__name__)
        assert 0 < len(str(error)) <= MAX_IICS_ERROR_TEXT
        if login_status in (400, 401, 403) and b"too many requests" not in body.lower():
            assert isinstance(error, errors.LoginFailed)

    # Then the login went to the configured URL, once
    assert pool.urls[0] == ("POST", scripted.origin + LOGIN_PATH)
    followed = pool.urls[1:]
    hypothesis.event("followed" if followed else "not followed")
    if not followed:
        return
    # and the one further request went to the baseApiUrl the login answer gave, which may be followed
    base = json.loads(body)["products"][0]["baseApiUrl"]
    assert may_follow(base) and base not in {h.replace(ORIGIN, scripted.origin) for h in HOSTILE}, base
    assert followed == [("GET", base.rstrip("/") + STATUS_ROUTE + job_id)]
    prefix = urlsplit(base).path.rstrip("/")
    assert [(s.method, s.path) for s in scripted.seen][1:] in ([], [("GET", prefix + STATUS_ROUTE + job_id)])


@MANY
@given(job_id=invalid_job_ids)
def test_the_client_refuses_an_invalid_job_id_before_any_request(scripted, job_id):
    scripted.script(login=Answer(200, json_bytes(login_answer(base_api_url=scripted.origin))), statuses=[Answer(200)])
    iics, pool = client_on(scripted)

    with pytest.raises(errors.InvalidJobId):
        iics.get_status(job_id)
    with pytest.raises(errors.InvalidJobId):
        iics.open_log(job_id)
    assert pool.urls == [] and scripted.seen == []


@pytest.mark.parametrize("session_id", ["s3ss\u2603n", "s3ss10n\r\nX-Injected: 1", "s3ss\n10n"])
def test_a_session_id_that_cannot_be_sent_is_an_unusable_login_answer(scripted, session_id):
    base = scripted.origin + API_PREFIX
    scripted.script(login=Answer(200, json_bytes(login_answer(session_id, base))), statuses=[Answer(200, b"{}")])
    iics, _ = client_on(scripted)

    with pytest.raises(errors.IicsUnavailable) as raised:
        iics.get_status("7evG9CokA1whk8ehF3opKM")

    assert session_id not in str(raised.value)
    assert [s.path for s in scripted.seen] == [LOGIN_PATH]


@pytest.mark.parametrize("suffix", ["#", "?", f"{API_PREFIX}#", f"{API_PREFIX}?"])
def test_a_base_api_url_with_an_empty_query_or_fragment_is_refused(scripted, suffix):
    status_body = json_bytes({"status": {"state": "SUCCESSFUL"}})
    scripted.script(
        login=Answer(200, json_bytes(login_answer(base_api_url=scripted.origin + suffix))),
        statuses=[Answer(200, status_body)],
    )
    iics, _ = client_on(scripted)

    with pytest.raises(errors.IicsUnavailable):
        iics.get_status("7evG9CokA1whk8ehF3opKM")

    assert [s.path for s in scripted.seen] == [LOGIN_PATH]


@pytest.mark.parametrize(
    ("where", "answer", "expected"),
    [
        ("status", Answer(200, b"[" * 100_000), errors.IicsUnavailable),
        ("status", Answer(200, b'{"status": ' + b"[" * 100_000), errors.IicsUnavailable),
        ("status", Answer(404, b'{"error": ' + b"[" * 100_000), errors.JobNotFound),
        ("login", Answer(200, b"{" + b'"a":{' * 50_000), errors.IicsUnavailable),
    ],
)
def test_a_deeply_nested_body_is_a_typed_error(scripted, where, answer, expected):
    good_login = Answer(200, json_bytes(login_answer(base_api_url=scripted.origin + API_PREFIX)))
    if where == "login":
        scripted.script(login=answer, statuses=[Answer(200, b"{}")])
    else:
        scripted.script(login=good_login, statuses=[answer])
    iics, _ = client_on(scripted)

    with pytest.raises(expected):
        iics.get_status("7evG9CokA1whk8ehF3opKM")


# --- 4. end to end: the template's stack in moto, the emulator as IICS ------------------------------------------------

FAST = {"InitialWaitSeconds": 0, "MaxWaitSeconds": 1}
MONITOR_FUNCTIONS = ("StartMonitorFunction", "CheckStatusFunction", "ArchiveLogFunction")
ERROR_TAIL = ["BuildErrorOutcome", "EmitOutcome", "WasItAnError", "MonitorFailed"]


@dataclass
class Observed:
    """What one submission or start led to, and nothing from the examples before it."""

    refused: bool  # EventBridge or StartMonitor turned it away: no execution
    execution_arn: str | None
    status: str | None
    path: list[str]
    outcomes: list[dict]  # every outcome event that arrived, whichever execution sent it
    invocations: dict[str, list] = field(default_factory=dict)  # template function -> its invocations
    iics_requests: list = field(default_factory=list)


class Monitor:
    """One deployed stack shared by a test's examples; each observation is sliced out of the logs."""

    def __init__(self, stack: LocalStack, emulator) -> None:
        self.stack, self.emulator = stack, emulator
        self.capture = stack.capture_events()
        env = stack.client("lambda").get_function_configuration(FunctionName=stack.resources["CheckStatusFunction"])
        variables = {name: str(value) for name, value in env["Environment"]["Variables"].items()}
        self.defaults = CheckConfig.from_env(variables).defaults
        self._names = {stack.resources[logical]: logical for logical in MONITOR_FUNCTIONS}

    def start(self, execution_input: Any) -> Observed:
        """Start the state machine directly with any input (Step Functions accepts any JSON)."""
        mark = self._mark()
        return self._observe(mark, self.stack.start(execution_input))

    def submit(self, detail: Any) -> Observed:
        """Put the upstream event on the bus; the template's rule and StartMonitor do the rest."""
        mark = self._mark()
        try:
            self.stack.submit(detail)
        except RuntimeError:  # put_events refused the entry
            return self._observe(mark, None)
        started = [i.result for i in self.stack.lambda_invocations[mark[0] :] if self._is("StartMonitorFunction", i)]
        assert len(started) == 1, started
        return self._observe(mark, started[0].get("executionArn"))

    def _is(self, logical: str, invocation) -> bool:
        return self._names.get(invocation.function_name) == logical

    def _mark(self) -> tuple[int, int, int]:
        return len(self.stack.lambda_invocations), len(self.capture.drain()), len(self.emulator.requests)

    def _observe(self, mark: tuple[int, int, int], execution_arn: str | None) -> Observed:
        described = self.stack.wait(execution_arn, timeout=30) if execution_arn else None  # it ends: no hang
        invocations = self.stack.lambda_invocations[mark[0] :]
        return Observed(
            refused=execution_arn is None,
            execution_arn=execution_arn,
            status=described["status"] if described else None,
            path=self.stack.path(execution_arn) if execution_arn else [],
            outcomes=self.capture.drain()[mark[1] :],
            invocations={logical: [i for i in invocations if self._is(logical, i)] for logical in MONITOR_FUNCTIONS},
            iics_requests=self.emulator.requests[mark[2] :],
        )


@pytest.fixture
def monitor(emulator):
    with LocalStack(FAST) as stack:
        stack.put_iics_secret(USERNAME, PASSWORD, emulator.url)
        yield Monitor(stack, emulator)


def assert_one_clear_error_outcome(run: Observed, request: Any, defaults: validation.MonitorSettings) -> None:
    """The execution ended with exactly one ERROR outcome that says what was wrong, after one check,
    and IICS heard nothing about an invalid request."""
    expected = oracle(request, defaults)
    hypothesis.event(type(expected).__name__)
    assert run.status == "FAILED" and run.path[-len(ERROR_TAIL) :] == ERROR_TAIL, run.path
    refused_at_the_door = isinstance(expected, errors.InvalidInput)
    assert run.path[-len(ERROR_TAIL) - 1] == ("ReportRefusal" if refused_at_the_door else "ReportCheckError")
    (event,) = run.outcomes
    detail = event["detail"]
    assert_valid_outcome(detail)
    assert detail["executionArn"] == run.execution_arn
    assert detail["state"] == "ERROR" and detail["log"] is None
    assert isinstance(detail["reason"], str) and 0 < len(detail["reason"]) < MAX_REASON
    # No retry storm, no crash loop: the door refused it (no check), or one check decided ERROR; no archive
    assert not any(i.errored for i in run.invocations["CheckStatusFunction"])
    checks = [i for i in run.invocations["CheckStatusFunction"] if "accept" not in i.event]
    assert run.invocations["ArchiveLogFunction"] == [] and run.path.count("CheckStatus") == len(checks)
    if refused_at_the_door:
        assert checks == []
        assert detail["errorType"] == type(expected).__name__ and detail["reason"] == text(str(expected), MAX_REASON)
        assert run.iics_requests == []
        if not is_valid_job_id(request.get("jobId") if isinstance(request, dict) else None):
            assert detail["jobId"] is None  # a malformed id is never echoed as the job's id
    else:  # a well-formed request about a job IICS does not know
        (checked,) = checks
        assert checked.result["outcome"] == "ERROR" and checked.result["errorType"] in errors.MONITOR_ERROR_NAMES
        assert detail["errorType"] == "JobNotFound"
        job_path = f"{API_PREFIX}{STATUS_ROUTE}{expected.job_id}"
        assert {r.path for r in run.iics_requests} <= {LOGIN_PATH, job_path}
        assert [r.path for r in run.iics_requests].count(job_path) == 1


execution_inputs = st.one_of(
    request_objects,  # a bare input
    st.fixed_dictionaries({"detail": requests}),  # an input shaped like the trigger event
    json_values,  # anything at all: arrays, strings, numbers, null
)


@FEW
@given(execution_input=execution_inputs)
@example({"jobId": "../../etc/passwd"})
@example({"jobId": "..%2F..%2Fetc%2Fpasswd"})
@example({"jobId": "%2e%2e%2f%2e%2e%2fetc"})
@example({"jobId": "x" * 10_000})
@example({"jobId": "\u0661\u0662\u0663"})  # Arabic-Indic digits
@example({"jobId": "\uff21\uff22\uff23\uff11\uff12\uff13"})  # fullwidth ABC123
@example({"jobId": "abc\x00def"})
@example({"jobId": "abc", "monitor": {"timeoutSeconds": 2_592_001}})
@example({"jobId": "abc", "monitor": {"initialWaitSeconds": "15"}})
@example({"jobId": "abc", "monitor": "fast"})
@example(["jobId", "abc"])
def test_starting_the_state_machine_with_any_input_ends_in_one_error_outcome(monitor, execution_input):
    run = monitor.start(execution_input)

    is_event = isinstance(execution_input, dict) and "detail" in execution_input
    request = execution_input["detail"] if is_event else execution_input
    assert run.invocations["StartMonitorFunction"] == []
    assert_one_clear_error_outcome(run, request, monitor.defaults)


@FEW
@given(detail=st.one_of(request_objects, request_objects, json_values))
@example({"jobId": "abc/../../def"})
@example({"jobId": "abc?x=1#y"})
@example({"jobId": "a" * 65})
@example({"jobId": "\u0663" * 22})
@example({"jobId": "abc", "monitor": {"initialWaitSeconds": 5, "maxWaitSeconds": 0}})
@example({"jobId": "abc", "monitor": {"timeoutSeconds": True}})
@example("not an object")
@example(None)
def test_any_announced_export_is_refused_or_ends_in_one_error_outcome(monitor, detail):
    run = monitor.submit(detail)

    if run.refused:  # EventBridge refused the entry, or the job already has its monitor
        hypothesis.event("refused start")
        assert run.outcomes == [] and run.iics_requests == []
        assert run.invocations["CheckStatusFunction"] == []
        assert all(i.result["status"] == "duplicate" for i in run.invocations["StartMonitorFunction"])
        return
    (started,) = run.invocations["StartMonitorFunction"]
    assert not started.errored
    assert EXECUTION_NAME.fullmatch(started.result["executionName"])
    as_passed_on = json.loads(json.dumps(detail))  # as EventBridge hands it to StartMonitor
    assert_one_clear_error_outcome(run, as_passed_on, monitor.defaults)


def test_an_error_outcome_for_a_valid_job_id_names_the_job(monitor):
    run = monitor.start({"jobId": "7evG9CokA1whk8ehF3opKM", "monitor": {"timeoutSeconds": 0}})

    (event,) = run.outcomes
    assert event["detail"]["errorType"] == "InvalidInput"
    assert event["detail"]["jobId"] == "7evG9CokA1whk8ehF3opKM"

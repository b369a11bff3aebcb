"""A local HTTP server that plays Informatica IICS for the export and import resources.

It speaks the v3 (and v2) login for several orgs, the export start, status, log and package resources
and the import upload, start, status and log resources with the field sets,
value formats and error bodies described in /work/shared/reference, so the monitor's client can be
exercised end to end without the internet: schedules drive job states, faults inject the failures
the real service and its proxies produce, and every request is recorded for assertions.

    with IicsEmulator(username="alice", password="s3cret") as emu:
        emu.add_job(job_id="7evG9CokA1whk8ehF3opKM", states=["IN_PROGRESS", "SUCCESSFUL"])
        emu.add_fault(Fault(route="status", status=429, retry_after=1))
        ...  # point the client at emu.url

Command line: ``python -m iics_monitor_local.emulator --port 0 [--scenario FILE]``.
The scenario format is documented in docs/emulator.md.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
import logging
import math
import random
import re
import secrets
import socket
import string
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

from iics_monitor_local import reference
from iics_monitor_local.loopback import LoopbackServer
from iics_monitor_local.packages import PackageError, PackageObject, build_package, form_field, read_package

logger = logging.getLogger(__name__)

LOGIN_PATH = "/saas/public/core/v3/login"
LOGOUT_PATH = "/saas/public/core/v3/logout"
V2_LOGIN_PATH = "/ma/api/v2/user/login"
# A real pod serves the API from another host than the login host. A different path prefix on the
# same port plays that role, so a client that ignores the returned baseApiUrl gets 404s here too.
API_PREFIX = "/na1/saas"
EXPORT_PATH = "/public/core/v3/export"
IMPORT_PATH = "/public/core/v3/import"
JOB_KINDS = ("export", "import")
CONFLICT_RESOLUTIONS = ("OVERWRITE", "REUSE")

REFERENCE_JOB_ID = reference.STATUS_IN_PROGRESS["id"]

# States after which a job no longer changes: endTime is set, objects show their final states and
# (unless it failed) the package can be downloaded. Anything else (NOT_STARTED, made-up states)
# counts as running, unless the job was added with it in ``ended_states``.
FAILURE_STATES = frozenset({"FAILED", "ERROR", "CANCELLED", "CANCELED", "ABORTED", "STOPPED"})
TERMINAL_STATES = FAILURE_STATES | {
    "SUCCESSFUL",
    "SUCCESS",
    "PARTIAL_SUCCESS",
    "WARNING",
    "WARNINGS",
    "COMPLETED_WITH_WARNINGS",
}
_STATE_MESSAGES = {
    "NOT_STARTED": "Not Started.",
    "IN_PROGRESS": "In Progress.",
    "SUCCESSFUL": "Export completed successfully.",
    "SUCCESS": "Export completed successfully.",
    "PARTIAL_SUCCESS": "Export completed with errors.",
    "WARNING": "Export completed with warnings.",
    "WARNINGS": "Export completed with warnings.",
    "COMPLETED_WITH_WARNINGS": "Export completed with warnings.",
    "FAILED": "Export failed.",
    "ERROR": "Export failed with an error.",
    "CANCELLED": "Export cancelled.",
    "CANCELED": "Export cancelled.",
    "ABORTED": "Export aborted.",
    "STOPPED": "Export stopped.",
}
# The export reply carries this message without the trailing period (observed).
_EXPORT_STARTED_MESSAGE = "In Progress"

# Asset types a package keeps under SYS/ rather than under the project tree in Explore/.
_SYS_TYPES = frozenset({"SAAS_CONNECTION", "Connection", "SAAS_RUNTIME_ENVIRONMENT", "AgentGroup"})

# Informatica publishes few error codes. IDS_085 and UI_10000 appear in the sample bodies of
# iics-api-notes.md; the rest are unverified or the emulator's own. Clients must branch on the HTTP
# status, never on codes.
_CODE_BAD_CREDENTIALS = "IDS_085"
_CODE_BAD_SESSION = "AUTH_01"  # unverified; another public IICS client re-logs in on a 403 with this code
_CODE_V2_LOGIN = "UI_10000"
_CODE_BAD_REQUEST = "MigrationSvc_001"  # invented
_CODE_JOB_NOT_FOUND = "MigrationSvc_004"  # invented
_CODE_NO_PACKAGE = "MigrationSvc_005"  # invented
_CODE_BAD_PACKAGE = "MigrationSvc_010"  # invented: an upload that is not a valid package
_CODE_ALREADY_STARTED = "MigrationSvc_011"  # invented: an import started twice
_CODE_THROTTLED = "MigrationSvc_429"  # invented
_CODE_NOT_FOUND = "APP_404"  # invented: a path the emulator does not serve
_CODE_INJECTED = "APP_500"  # invented: an injected HTTP fault without a more specific meaning
_CODE_ECHO = "APP_400"  # invented: an echo fault's error code

# A reply cut off mid-body, as a dropped proxy connection leaves it.
_TRUNCATED_JSON = b'{ "id": "7evG9CokA1whk8ehF3opKM", "status": { "state": "IN_PRO'

_ID_ALPHABET = string.ascii_letters + string.digits
_ID_LENGTH = 22
_MAX_CREDENTIAL_LENGTH = 255

FAULT_ROUTES = frozenset({"login", "logout", "export", "status", "log", "package", "upload", "import", "any"})
FAULT_KINDS = frozenset(
    {"http", "echo", "reset", "slow", "drip", "endless", "malformed_json", "invalidate_session", "huge", "wrong_id"}
)
# How an expired or unknown session is refused: 401 (what the monitor has always seen), or 403 with
# AUTH_01, as another public IICS client expects it.
EXPIRED_SESSION_STATUSES = frozenset({401, 403})
HUGE_BYTES = 64 * 1024 * 1024
BODY_FORMATS = ("json", "text", "html")
# A JWT session id's signature part: RS256 signs with 2048-bit keys, 256 bytes in base64url.
_JWT_SIGNATURE_CHARS = 342


# --- Public value types -------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """One injected failure, matched against requests on `route` in the order faults were added.

    `after` matching requests pass untouched, then the next `times` (None: all) get the fault.
    Kinds: "http" answers `status` (a v3 error body, or a proxy's HTML page when `html`), after
    `delay_seconds` (slow throttling, for a 429); "reset" closes the socket without a reply; "slow"
    waits `delay_seconds` and then serves normally; "drip" serves normally but sends the body one
    byte every `delay_seconds`; "endless" answers 200 with a chunked body of log lines that never
    ends, a chunk every `delay_seconds`; "malformed_json" answers a truncated JSON body;
    "invalidate_session" drops every session and refuses the request as an expired session (401, or
    403 AUTH_01 with ``expired_session_status`` 403); "huge" serves normally but pads the JSON body with
    leading spaces to `size_bytes` (still valid JSON), made while it is sent, with a Content-Length, or
    chunked without one when `chunked` (``huge_bytes_sent`` says how much got out); "wrong_id" serves
    normally but puts another job's id in the body; "echo" answers `status` (400 if not given) with an
    error body that repeats the request (method, path, every header, the body), as a debug error page
    or a misconfigured proxy does, in `body_format` "json" (a v3 error whose message holds the echo),
    "text" or "html" (the echo in the title and the page). `retry_after` adds a Retry-After header
    (fractions allowed, to keep tests fast).
    `job_id` limits the fault to requests about that job, so concurrent jobs keep their own faults.
    """

    route: str = "any"
    status: int | None = None
    kind: str = "http"
    times: int | None = 1
    after: int = 0
    retry_after: float | None = None
    html: bool = False
    delay_seconds: float = 0.0
    job_id: str | None = None
    size_bytes: int = HUGE_BYTES
    chunked: bool = False
    body_format: str = "json"

    def __post_init__(self) -> None:
        if self.route not in FAULT_ROUTES:
            raise ValueError(f"Fault route {self.route!r} is not one of {sorted(FAULT_ROUTES)}")
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"Fault kind {self.kind!r} is not one of {sorted(FAULT_KINDS)}")
        if self.body_format not in BODY_FORMATS:
            raise ValueError(f"Fault body_format {self.body_format!r} is not one of {list(BODY_FORMATS)}")
        if self.kind == "http" and self.status is None:
            raise ValueError("An http fault needs a status")
        if (self.times is not None and self.times < 1) or self.after < 0:
            raise ValueError("Fault times must be None or at least 1, and after at least 0")
        if not isinstance(self.size_bytes, int) or self.size_bytes < 0:
            raise ValueError("Fault size_bytes must be a whole number of bytes, at least 0")


@dataclass(frozen=True)
class _Request:
    method: str
    path: str  # with the query string
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class RecordedRequest(_Request):
    """A request as the emulator saw it. `status` is None when the connection was reset."""

    route: str
    status: int | None
    time: float
    org_id: str | None = None  # the org it acted in: the logging-in user's, or the session's


# --- Small helpers ------------------------------------------------------------------------------


def _new_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))


def _base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _new_jwt(length: int, subject: str) -> str:
    """A JWT-shaped session id of exactly ``length`` characters: header.payload.signature, base64url.
    Its payload is JSON padded to size; the signature is random (nothing checks it)."""
    header = _base64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": _new_id()}).encode())
    claims = {"sub": subject, "sid": _new_id(), "iat": int(time.time()), "pad": ""}
    room = length - len(header) - _JWT_SIGNATURE_CHARS - 2
    empty = len(_base64url(json.dumps(claims).encode()))
    claims["pad"] = "".join(secrets.choice(_ID_ALPHABET) for _ in range(max(0, (room - empty) * 3 // 4)))
    payload = _base64url(json.dumps(claims).encode())
    signature_chars = length - len(header) - len(payload) - 2
    if signature_chars < 1:
        raise ValueError(f"a JWT session id needs at least {len(header) + len(payload) + 3} characters")
    signature = _base64url(secrets.token_bytes(signature_chars))[:signature_chars]
    return f"{header}.{payload}.{signature}"


def _iso_millis(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def _log_footer_time(epoch: float) -> str:
    """The footer's observed clock format, e.g. "9/26/21 9:06 AM"."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return f"{moment.month}/{moment.day}/{moment:%y} {moment.hour % 12 or 12}:{moment:%M %p}"


def _page_json(document: Any) -> bytes:
    """Serialise as the reference page prints JSON, `{ "id": "x", "objects": null }`.

    The page's examples are pretty-printed JSON flattened onto one line; doing the same here makes
    the reference job's replies equal to the page's text byte for byte. Raw newlines only occur
    between tokens (json escapes them inside strings), so collapsing them is safe.
    """
    return re.sub(r"\n *", " ", json.dumps(document, indent=1)).encode()


def _state_message(state: str, kind: str = "export") -> str:
    message = _STATE_MESSAGES.get(state, f"Export state {state}.")
    return message.replace("Export", "Import", 1) if kind == "import" else message


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Look a header up case-insensitively, as HTTP requires."""
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def _session_id(headers: Mapping[str, str]) -> str:
    """The session id a request carries: v3 and v2 header names are both accepted, as by IICS."""
    return _header(headers, "INFA-SESSION-ID") or _header(headers, "icSessionId") or ""


def _reject_unknown_keys(spec: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    unknown = set(spec) - set(allowed)
    if unknown:
        raise ValueError(f"Unknown {where} keys {sorted(unknown)}; allowed: {sorted(allowed)}")


# --- Responses ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes | _GeneratedLog | _EndlessLog | _PaddedBody = b""
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    byte_seconds: float = 0.0  # > 0: the body drips, one byte at a time


# Returned instead of a response when the connection must be reset without a reply.
_RESET = object()


def _json_response(status: int, document: Any, headers: tuple[tuple[str, str], ...] = ()) -> _Response:
    return _Response(status, _page_json(document), "application/json", headers)


def _v3_error(status: int, code: str, message: str, headers: tuple[tuple[str, str], ...] = ()) -> _Response:
    body = {"error": {"code": code, "message": message, "requestId": _new_id(), "details": None}}
    return _json_response(status, body, headers)


def _v2_error(status: int, description: str) -> _Response:
    body = {"@type": "error", "code": _CODE_V2_LOGIN, "description": description, "statusCode": status}
    return _json_response(status, body)


def _session_rejected(headers: tuple[tuple[str, str], ...] = (), status: int = HTTPStatus.UNAUTHORIZED) -> _Response:
    return _v3_error(status, _CODE_BAD_SESSION, "Invalid or expired session id.", headers)


def _throttled(headers: tuple[tuple[str, str], ...]) -> _Response:
    # Informatica documents only the words "too many requests" for its dynamic rate limit.
    return _v3_error(HTTPStatus.TOO_MANY_REQUESTS, _CODE_THROTTLED, "too many requests", headers)


def _status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _proxy_html_error(status: int, headers: tuple[tuple[str, str], ...]) -> _Response:
    """The kind of page a load balancer answers with when the service behind it fails."""
    title = f"{status} {_status_phrase(status)}"
    page = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
        "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
    return _Response(status, page.encode(), "text/html", headers)


def _request_text(request: _Request) -> str:
    """The request as it went over the wire: request line, headers, blank line, body."""
    lines = [f"{request.method} {request.path} HTTP/1.1", *(f"{k}: {v}" for k, v in request.headers.items())]
    return "\n".join(lines) + "\n\n" + request.body.decode("utf-8", "replace")


def _echo_error(status: int, body_format: str, request: _Request, headers: tuple[tuple[str, str], ...]) -> _Response:
    """An error answer that repeats the request (the password of a login, the session id of a call),
    as a debug error page or a misconfigured proxy in front of IICS does."""
    title = f"{status} {_status_phrase(status)}"
    body = request.body.decode("utf-8", "replace")
    headers_line = "; ".join(f"{name}: {value}" for name, value in request.headers.items())
    summary = f"could not process {request.method} {request.path}{' ' + body if body else ''}; {headers_line}"
    if body_format == "json":
        echo = {"method": request.method, "path": request.path, "headers": request.headers, "body": body}
        error = {"error": {"code": _CODE_ECHO, "message": summary, "requestId": _new_id(), "details": echo}}
        return _json_response(status, error, headers)
    if body_format == "text":
        return _Response(status, f"{title}\n\n{_request_text(request)}".encode(), "text/plain; charset=utf-8", headers)
    page = (
        f"<html><head><title>{html.escape(f'{title}: {summary}')}</title></head>\r\n"
        f"<body><h1>{title}</h1><pre>{html.escape(_request_text(request))}</pre></body></html>\r\n"
    )
    return _Response(status, page.encode(), "text/html; charset=utf-8", headers)


def _retry_after_header(seconds: float | None) -> tuple[tuple[str, str], ...]:
    return () if seconds is None else (("Retry-After", f"{seconds:g}"),)


def _injected_http_error(fault: Fault) -> _Response:
    assert fault.status is not None  # guaranteed by Fault.__post_init__ for kind "http"
    headers = _retry_after_header(fault.retry_after)
    if fault.html:
        return _proxy_html_error(fault.status, headers)
    if fault.status == HTTPStatus.TOO_MANY_REQUESTS:
        return _throttled(headers)
    if fault.status == HTTPStatus.UNAUTHORIZED:
        return _session_rejected(headers)
    return _v3_error(fault.status, _CODE_INJECTED, _status_phrase(fault.status), headers)


# --- Faults, throttling -------------------------------------------------------------------------


@dataclass
class _ArmedFault:
    fault: Fault
    seen: int = 0
    fired: int = 0

    def claims(self, route: str, job_id: str | None) -> bool:
        """Count a request if it is on this fault's route (and job), and say whether the fault takes it."""
        if self.fault.route not in ("any", route) or self.fault.job_id not in (None, job_id):
            return False
        self.seen += 1
        exhausted = self.fault.times is not None and self.fired >= self.fault.times
        if self.seen <= self.fault.after or exhausted:
            return False
        self.fired += 1
        return True


# Transient faults only: a real org does not refuse a password or a fresh session at random.
_CHAOS_FAULTS = {
    "429 Retry-After": Fault(status=429, retry_after=0.2),
    "429": Fault(status=429),
    "500": Fault(status=500),
    "502 html": Fault(status=502, html=True),
    "503 html": Fault(status=503, html=True),
    "reset": Fault(kind="reset"),
    "slow": Fault(kind="slow", delay_seconds=0.05),
    "malformed json": Fault(kind="malformed_json"),
}
_CHAOS_ROUTES = {
    "login": [k for k in _CHAOS_FAULTS if k != "malformed json"],
    "status": list(_CHAOS_FAULTS),
    "log": [k for k in _CHAOS_FAULTS if k != "malformed json"],  # a log is text: truncated JSON is a valid log
}


class _Chaos:
    """Random transient faults at a given rate, from a seeded generator (call under the emulator's lock)."""

    def __init__(self, rate: float, seed: int) -> None:
        if not 0 <= rate <= 1:
            raise ValueError("chaos rate must be between 0 and 1")
        self.rate = rate
        self.random = random.Random(seed)
        self.injected: dict[str, int] = {}

    def pick(self, route: str) -> Fault | None:
        kinds = _CHAOS_ROUTES.get(route)
        if not kinds or self.random.random() >= self.rate:
            return None
        kind = self.random.choice(kinds)
        self.injected[kind] = self.injected.get(kind, 0) + 1
        return _CHAOS_FAULTS[kind]


class _TokenBucket:
    """Allows `rate` requests per second with bursts of one second's worth."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(rate, 1.0)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def take(self) -> float:
        """Spend a token. Returns 0 on success, else the seconds until a token is available."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


# --- Jobs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _PollSchedule:
    """The Nth status poll sees states[N-1]; the last state repeats."""

    states: tuple[str, ...]

    def state_at(self, polls: int, elapsed: float) -> str:
        return self.states[min(max(polls, 1), len(self.states)) - 1]

    def step_began(self, elapsed: float) -> float | None:
        """Poll-count steps begin when a poll sees them: no earlier moment is known."""
        return None


@dataclass(frozen=True)
class _TimedSchedule:
    """Each step lasts its seconds from job creation; the last step lasts forever."""

    steps: tuple[tuple[str, float], ...]

    def state_at(self, polls: int, elapsed: float) -> str:
        for state, seconds in self.steps:
            if elapsed < seconds:
                return state
            elapsed -= seconds
        return self.steps[-1][0]

    def step_began(self, elapsed: float) -> float | None:
        """Seconds after creation at which the step in force at ``elapsed`` began."""
        began = 0.0
        for _, seconds in self.steps:
            if elapsed < began + seconds:
                return began
            began += seconds
        return began


def _states_list(states: Sequence[str], what: str) -> tuple[str, ...]:
    if isinstance(states, str) or not all(isinstance(s, str) for s in states):
        raise ValueError(f"{what} must be a list of strings, got {states!r}")
    return tuple(states)


def _poll_schedule(states: Sequence[str]) -> _PollSchedule:
    if not states:
        raise ValueError(f"states must be a non-empty list of strings, got {states!r}")
    return _PollSchedule(_states_list(states, "states"))


def _timed_schedule(steps: Sequence[Mapping[str, Any]]) -> _TimedSchedule:
    if not steps:
        raise ValueError("schedule must list at least one step")
    parsed = []
    for index, step in enumerate(steps):
        _reject_unknown_keys(step, ("state", "seconds"), "schedule step")
        is_last = index == len(steps) - 1
        seconds = step.get("seconds", math.inf if is_last else None)
        if not isinstance(step.get("state"), str) or not isinstance(seconds, int | float):
            raise ValueError(f"schedule step {step!r} needs a state and (unless last) seconds")
        parsed.append((step["state"], math.inf if is_last else float(seconds)))
    return _TimedSchedule(tuple(parsed))


class _JobTimes(NamedTuple):
    create_time: str
    update_time: str
    start_time: str
    end_time: str | None

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> _JobTimes:
        return cls(body["createTime"], body["updateTime"], body["startTime"], body["endTime"])


@dataclass(frozen=True)
class _ExportObject:
    id: str
    name: str
    path: str | None
    type: str
    description: str | None
    final_status: Mapping[str, Any] | None  # None: the object ends in the job's own final state
    folder: str | None = None  # an uploaded object's package folder (/Explore/Sales, /SYS); None: from path

    def status_in(self, job_state: str) -> dict[str, Any]:
        if job_state not in TERMINAL_STATES:
            return {"state": "IN_PROGRESS", "message": None}
        if self.final_status is None:
            return {"state": job_state, "message": None}
        return {"state": self.final_status["state"], "message": self.final_status.get("message")}

    def status_entry(self, job_state: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "path": self.path,
            "type": self.type,
            "description": self.description,
            "status": self.status_in(job_state),
        }

    @property
    def asset_path(self) -> str:
        """Where the asset sits in a package and in log lines: SYS/<name> or Explore/<path>/<name>."""
        if self.folder is not None:
            return "/".join(part for part in (self.folder.strip("/"), self.name) if part)
        if self.type in _SYS_TYPES:
            return f"SYS/{self.name}"
        folder = (self.path or "/").strip("/")
        return "/".join(part for part in ("Explore", folder, self.name) if part)

    def failed_in(self, job_state: str) -> bool:
        return self.status_in(job_state)["state"] == "FAILED"

    def in_package(self) -> PackageObject:
        folder = "/" + self.asset_path.rpartition("/")[0]  # the package folder: /Explore/Sales, /SYS
        return PackageObject(self.id, self.name, self.type, folder, self.description)


def _export_object(spec: Mapping[str, Any]) -> _ExportObject:
    _reject_unknown_keys(spec, ("id", "name", "path", "type", "description", "status"), "object")
    if not isinstance(spec.get("name"), str) or not isinstance(spec.get("type"), str):
        raise ValueError(f"object {spec!r} needs a name and a type")
    status = spec.get("status")
    if status is not None and not isinstance(status.get("state"), str):
        raise ValueError(f"object status {status!r} needs a state")
    return _ExportObject(
        id=spec.get("id") or _new_id(),
        name=spec["name"],
        path=spec.get("path"),
        type=spec["type"],
        description=spec.get("description"),
        final_status=status,
    )


_DEFAULT_OBJECT = {"name": "m_example", "path": "/Default", "type": "DTEMPLATE", "description": ""}


class _Job:
    """One export job: its schedule, and the timestamps of the state changes clients observed."""

    def __init__(
        self,
        job_id: str,
        name: str,
        schedule: _PollSchedule | _TimedSchedule,
        objects: list[_ExportObject],
        log: bytes | None,
        pinned_times: tuple[_JobTimes, _JobTimes] | None = None,
        log_size: int | None = None,
        ended_states: Sequence[str] = (),
        *,
        org_id: str,
        kind: str = "export",
        source_org_id: str | None = None,
        corrupt_package: bool = False,
        started: bool = True,
    ) -> None:
        self.id = job_id
        self.org_id = org_id
        self.kind = kind
        self.source_org_id = source_org_id  # imports: the org the package came from
        self.corrupt_package = corrupt_package  # its package has an entry that no longer matches its manifest
        self.started = started  # an uploaded import waits in NOT_STARTED until it is started
        self._end_states = TERMINAL_STATES | set(ended_states)
        self.name = name
        self.schedule = schedule
        self.objects = objects
        self.log = log
        self.log_size = log_size  # a generated log padded to this many bytes once the job ends
        # (while running, once terminal): lets the reference job reproduce the page's timestamps.
        self.pinned_times = pinned_times
        self._begin(schedule)

    def _begin(self, schedule: _PollSchedule | _TimedSchedule) -> None:
        self.schedule = schedule
        self.created_at = time.time()
        self._created_monotonic = time.monotonic()
        self.polls = 0
        self.state = schedule.state_at(0, 0.0)
        self.updated_at = self.created_at
        self.ended_at = self.created_at if self.ends_with(self.state) else None

    def start(self, name: str, schedule: _PollSchedule, objects: list[_ExportObject]) -> None:
        """Start an uploaded import: its schedule runs from now, as an export's from its POST."""
        self.name, self.objects, self.started = name, objects, True
        self._begin(schedule)

    def ends_with(self, state: str) -> bool:
        """Whether ``state`` sets the job's endTime: an end word, or one of its ``ended_states``."""
        return state in self._end_states

    def observe(self, *, poll: bool) -> str:
        """The job's state now. Only status GETs count as polls for a poll-count schedule."""
        if poll:
            self.polls += 1
        elapsed = time.monotonic() - self._created_monotonic
        state = self.schedule.state_at(self.polls, elapsed)
        if state != self.state:
            self.state = state
            # A timed job changed state when its schedule says, however late a client looks.
            began = self.schedule.step_began(elapsed)
            self.updated_at = time.time() if began is None else self.created_at + began
            self.ended_at = self.updated_at if self.ends_with(state) else None
        return state

    def times(self, state: str) -> _JobTimes:
        if self.pinned_times is not None:
            return self.pinned_times[self.ends_with(state)]
        created = _iso_millis(self.created_at)
        ended = None if self.ended_at is None else _iso_millis(self.ended_at)
        return _JobTimes(created, _iso_millis(self.updated_at), created, ended)

    def status_body(self, state: str, *, expand: bool) -> dict[str, Any]:
        times = self.times(state)
        body = {
            "id": self.id,
            "createTime": times.create_time,
            "updateTime": times.update_time,
            "name": self.name,
            "startTime": times.start_time,
            "endTime": times.end_time,
            "status": {"state": state, "message": _state_message(state, self.kind)},
            "objects": [o.status_entry(state) for o in self.objects] if expand else None,
        }
        return body | {"sourceOrgId": self.source_org_id} if self.kind == "import" else body


# --- Generated log and package ------------------------------------------------------------------


def _generated_log(job: _Job, state: str, org_name: str, user: str) -> bytes:
    """A log in the observed format: OIE_002 header, a line per object, OIE_003 footer.

    No public sample of a failed export or import log exists; failed objects get an ERROR line with
    the emulator's own code (OIE_005 export, OIE_007 import). While the job runs only the header exists.
    """
    started = _iso_millis(job.created_at)
    lines = [
        f"> OIE_002 INFO {started} Starting {job.kind} operation.",
        "Execution Client: API",
        f"Job Name: {job.name}",
        f"Organization: {org_name}",
        f"RequestId: {job.id}",
        f"User: {user}",
    ]
    if job.ends_with(state):
        ended_at = job.ended_at
        assert ended_at is not None  # observe() sets it whenever the state is terminal
        lines += [_object_log_line(o, state, _iso_millis(ended_at), job.kind) for o in job.objects]
        lines += [
            f"> OIE_003 INFO {_iso_millis(ended_at)} Finished {job.kind} operation.",
            f"Job Name: {job.name}",
            f"Start Time: {_log_footer_time(job.created_at)}",
            f"End Time: {_log_footer_time(ended_at)}",
            f"Started by: {user}",
            "Start Method: API",
            f"Source Organization: {org_name}",
            f"Status: {state}",
        ]
    return ("\n".join(lines) + "\n").encode()


# Log codes per job kind: (object done, object failed). OIE_004 and OIE_006 are observed; the failure
# codes are the emulator's own.
_OBJECT_CODES = {"export": ("OIE_004", "OIE_005"), "import": ("OIE_006", "OIE_007")}


def _object_log_line(obj: _ExportObject, job_state: str, stamp: str, kind: str = "export") -> str:
    subject = f"object [/{obj.asset_path}] of type [{obj.type}] id [{obj.id}]"
    done, failed = _OBJECT_CODES[kind]
    if obj.failed_in(job_state):
        reason = obj.status_in(job_state)["message"] or f"{kind.capitalize()} failed."
        return f"> {failed} ERROR {stamp} Failed to {kind} {subject}: {reason}"
    return f"> {done} INFO {stamp} Successfully {kind}ed {subject}"


# A big log repeats one block of this many filler lines (about 1 MiB), so it costs the emulator
# about that much memory whatever its size.
_FILLER_BLOCK_LINES = 8192


class _GeneratedLog:
    """A finished job's generated log padded to exactly ``size`` bytes, made while it is sent.

    Filler OIE_004 lines go between the object lines and the OIE_003 footer; the last one is cut
    short (ending in a newline) to make the size exact. A log longer than ``size`` without filler
    is sent as it is.
    """

    def __init__(self, log: bytes, size: int, stamp: str) -> None:
        footer = log.rindex(b"\n> OIE_003 ") + 1
        self._head, self._tail = log[:footer], log[footer:]
        self._filler_size = max(size - len(log), 0)
        lines = (
            f"> OIE_004 INFO {stamp} Successfully exported object [/Explore/Default/m_generated_{n:05d}]"
            f" of type [DTEMPLATE] id [gen{n:019d}]\n"
            for n in range(_FILLER_BLOCK_LINES)
        )
        self._block = "".join(lines).encode()

    def __len__(self) -> int:
        return len(self._head) + self._filler_size + len(self._tail)

    def __bytes__(self) -> bytes:
        return b"".join(self.chunks())

    def chunks(self) -> Iterator[bytes]:
        yield self._head
        whole_blocks, rest = divmod(self._filler_size, len(self._block))
        for _ in range(whole_blocks):
            yield self._block
        if rest:
            yield self._block[: rest - 1] + b"\n"
        yield self._tail


class _EndlessLog:
    """A log that never ends (sent chunked, with no length): the same block of lines again and again,
    one block every ``pause_seconds``. Sending stops when the client goes away."""

    chunked = True

    def __init__(self, pause_seconds: float) -> None:
        self.pause_seconds = pause_seconds
        stamp = _iso_millis(time.time())
        line = f"> OIE_004 INFO {stamp} Successfully exported object [/Explore/Default/m_endless] of type [DTEMPLATE]\n"
        self._block = line.encode() * 512  # about 64 KiB

    def chunks(self) -> Iterator[bytes]:
        while True:
            yield self._block
            if self.pause_seconds:
                time.sleep(self.pause_seconds)


class _PaddedBody:
    """A JSON answer padded with leading spaces to ``size`` bytes (still the same JSON), made while it
    is sent; ``sent`` counts the bytes that got into the socket, ``finished`` is set once sending ends."""

    def __init__(self, body: bytes, size: int, chunked: bool) -> None:
        self._body = body
        self._padding = max(size - len(body), 0)
        self.chunked = chunked  # sent with Transfer-Encoding: chunked and no Content-Length
        self.sent = 0
        self.finished = threading.Event()

    def __len__(self) -> int:
        return self._padding + len(self._body)

    def chunks(self) -> Iterator[bytes]:
        block = b" " * 65536
        whole_blocks, rest = divmod(self._padding, len(block))
        yield from (block for _ in range(whole_blocks))
        yield block[:rest] + self._body

    def send(self, write: Callable[[bytes], object]) -> None:
        try:
            for chunk in self.chunks():
                write(chunk)
                self.sent += len(chunk)
        finally:
            self.finished.set()


def _with_other_id(response: _Response) -> _Response:
    """``response`` with another (new) job id in its JSON body, as if IICS answered for another job."""
    document = json.loads(bytes(response.body)) if response.status == HTTPStatus.OK else None
    if not isinstance(document, dict) or "id" not in document:
        return response
    return dataclasses.replace(response, body=_page_json(document | {"id": _new_id()}))


def _package(job: _Job, state: str, org: EmulatedOrg) -> bytes:
    """The export zip in the real layout (iics_monitor_local.packages), of the objects not failed."""
    exported = [o.in_package() for o in job.objects if not o.failed_in(state)]
    return build_package(job.name, org.org_id, org.name, exported, corrupt=job.corrupt_package)


# --- Routing ------------------------------------------------------------------------------------


# A resource: the emulator, the request, the job its path names and the org of the request's session
# (None on public routes). Job resources are only called with an existing job of that org and of the
# route's kind (the pipeline answers 404 otherwise), so they take a `_Job`.
Handler = Callable[["IicsEmulator", _Request, "_Job | None", "str | None"], _Response]


@dataclass(frozen=True)
class _Route:
    name: str
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    needs_session: bool
    rate_limited: bool
    kind: str = "export"  # the kind of job a job id in its path names


# --- Orgs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmulatedOrg:
    """An org of the pod, with its one user. Each has its own sessions, jobs and (with a rate limit) budget."""

    org_id: str
    name: str
    username: str
    password: str


@dataclass
class _OrgSettings:
    user_id: str = field(default_factory=_new_id)
    parent_org_id: str = field(default_factory=_new_id)
    # Poll-count states of jobs created by POST (None: the emulator's export_states / import_states).
    states: dict[str, list[str]] = field(default_factory=dict)
    # Object id or name -> why importing it fails in this org (a dependency it lacks, say).
    failing_imports: dict[str, str] = field(default_factory=dict)
    corrupt_packages: bool = False  # exports created by POST serve a package that fails its manifest


# --- The emulator -------------------------------------------------------------------------------


class IicsEmulator(LoopbackServer):
    """IICS on 127.0.0.1: create it, add jobs and faults, start() it, point a client at `url`."""

    label = "the IICS emulator"

    @property
    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _RequestHandler

    def __init__(
        self,
        username: str = "alice",
        password: str = "s3cret",  # noqa: S107 - a made-up credential for a local test server
        session_idle_seconds: float = 1800,
        port: int = 0,
        expired_session_status: int = HTTPStatus.UNAUTHORIZED,
        session_jwt_length: int | None = None,
    ) -> None:
        super().__init__(port)
        self.username = username
        self.password = password
        self.session_idle_seconds = session_idle_seconds
        self.expired_session_status = expired_session_status
        # None: 22-character session ids; a number: JWT-shaped ones of that many characters, as an org
        # that switched to JWT sessions issues (up to 16,000).
        self.session_jwt_length = session_jwt_length
        # Poll-count states of jobs created through POST /export.
        self.export_states: list[str] = ["IN_PROGRESS", "SUCCESSFUL"]
        # Poll-count states of imports once started (POST /import/<id>); an org may have its own.
        self.import_states: list[str] = ["IN_PROGRESS", "SUCCESSFUL"]
        self.org_id = _new_id()
        self.org_name = "iics-emulator-org"
        self._orgs: dict[str, EmulatedOrg] = {}  # the orgs add_org added; the default org is the constructor's user
        self._org_settings: dict[str, _OrgSettings] = {self.org_id: _OrgSettings()}
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        self._faults: list[_ArmedFault] = []
        self._sessions: dict[str, float] = {}  # session id -> monotonic time of last use
        self._session_orgs: dict[str, str] = {}  # session id -> its user's org
        self._issued: list[str] = []  # every session id login gave out, live or not
        self._requests: list[RecordedRequest] = []
        self._logins = 0
        self._rate: float | None = None
        self._buckets: dict[str, _TokenBucket] = {}  # per org, as IICS limits each org
        self._chaos: _Chaos | None = None
        self._huge_answers: list[_PaddedBody] = []

    @property
    def url(self) -> str:
        """The login URL clients configure."""
        return self.origin

    @property
    def base_api_url(self) -> str:
        return f"{self.url}{API_PREFIX}"

    # Jobs and faults

    def add_job(
        self,
        job_id: str | None = None,
        name: str | None = None,
        states: Sequence[str] | None = None,
        schedule: Sequence[Mapping[str, Any]] | None = None,
        objects: Sequence[Mapping[str, Any]] | None = None,
        log: bytes | str | None = None,
        log_size: int | None = None,
        ended_states: Sequence[str] = (),
        *,
        kind: str = "export",
        org: str | None = None,
        source_org_id: str | None = None,
        corrupt_package: bool = False,
    ) -> str:
        """Add an export job and return its id. Give `states` (per poll) or `schedule` (timed).

        `kind="import"` adds an import job instead, already started, served by the import resources
        (status, log) with `source_org_id` (default: a new id) as its sourceOrgId. `org`: the id of the
        org the job belongs to (None: the default org); other orgs' sessions do not see it.
        `corrupt_package`: its package has one entry that no longer matches the manifest.

        `ended_states`: states that set this job's endTime besides the end words (TERMINAL_STATES),
        such as a word IICS might add or `IN_PROGRESS`, as a status whose word lags its endTime.

        `log_size`: the generated log of the finished job is padded to this many bytes with
        object lines, made while it is sent, so a log of gigabytes costs no memory.
        """
        if log_size is not None and (log is not None or not isinstance(log_size, int) or log_size < 0):
            raise ValueError("log_size must be a whole number of bytes (at least 0), and not given with log")
        if kind not in JOB_KINDS:
            raise ValueError(f"kind must be one of {list(JOB_KINDS)}, got {kind!r}")
        job = _Job(
            job_id=job_id or _new_id(),
            name=name or _default_job_name(),
            schedule=_schedule(states, schedule),
            objects=[_export_object(o) for o in (objects if objects is not None else [_DEFAULT_OBJECT])],
            log=log.encode() if isinstance(log, str) else log,
            log_size=log_size,
            ended_states=_states_list(ended_states, "ended_states"),
            org_id=self._known_org(org),
            kind=kind,
            source_org_id=(source_org_id or _new_id()) if kind == "import" else None,
            corrupt_package=corrupt_package,
        )
        self._register(job)
        return job.id

    def add_reference_job(
        self,
        states: Sequence[str] | None = None,
        schedule: Sequence[Mapping[str, Any]] | None = None,
    ) -> str:
        """Add job 7evG9CokA1whk8ehF3opKM ("testJob1"), which answers exactly the page's examples."""
        finished = reference.STATUS_SUCCESSFUL_WITH_OBJECTS
        job = _Job(
            job_id=REFERENCE_JOB_ID,
            name=finished["name"],
            schedule=_schedule(states, schedule),
            objects=[_export_object(o) for o in finished["objects"]],
            log=reference.LOG_TEXT.encode(),
            pinned_times=(_JobTimes.of(reference.STATUS_IN_PROGRESS), _JobTimes.of(finished)),
            org_id=self.org_id,
        )
        self._register(job)
        return job.id

    # Orgs

    def add_org(
        self, username: str, password: str, name: str | None = None, *, org_id: str | None = None
    ) -> EmulatedOrg:
        """Add an org of the same pod with its one user, and return it. Its sessions see only its jobs."""
        org = EmulatedOrg(org_id or _new_id(), name or f"iics-emulator-org-{len(self._orgs) + 2}", username, password)
        with self._lock:
            if org.org_id in self._org_settings:
                raise ValueError(f"An org with id {org.org_id} already exists")
            if any(other.username == username for other in self.orgs):
                raise ValueError(f"An org already has the user {username!r}")
            self._orgs[org.org_id] = org
            self._org_settings[org.org_id] = _OrgSettings()
        return org

    @property
    def orgs(self) -> list[EmulatedOrg]:
        """Every org, the default one (the constructor's user) first."""
        default = EmulatedOrg(self.org_id, self.org_name, self.username, self.password)
        return [default, *self._orgs.values()]

    def org(self, org_id: str | None = None) -> EmulatedOrg:
        """The org with this id (None: the default org)."""
        return next(org for org in self.orgs if org.org_id == self._known_org(org_id))

    def set_org_states(
        self,
        org_id: str,
        *,
        export_states: Sequence[str] | None = None,
        import_states: Sequence[str] | None = None,
        corrupt_packages: bool | None = None,
    ) -> None:
        """The poll-count states of that org's jobs created by POST from now on (instead of
        ``export_states`` / ``import_states``); ``corrupt_packages``: their packages have an entry
        that no longer matches the manifest (``add_job(corrupt_package=True)`` for one job)."""
        settings = self._org_settings[self._known_org(org_id)]
        if corrupt_packages is not None:
            settings.corrupt_packages = corrupt_packages
        for kind, states in (("export", export_states), ("import", import_states)):
            if states is not None:
                settings.states[kind] = list(_poll_schedule(states).states)

    def fail_imports(self, org_id: str, failures: Mapping[str, str]) -> None:
        """Objects (by id or name) whose import fails in that org, with the reason its log and status give,
        as a package whose dependencies the target org lacks. An import with a failed object ends FAILED."""
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in failures.items()):
            raise ValueError("fail_imports takes {object id or name: reason}, all strings")
        with self._lock:
            self._org_settings[self._known_org(org_id)].failing_imports.update(failures)

    def _known_org(self, org_id: str | None) -> str:
        if org_id is None:
            return self.org_id
        if org_id not in self._org_settings:
            raise ValueError(f"No org with id {org_id!r}; add it with add_org first")
        return org_id

    def _states_of(self, org_id: str, kind: str) -> list[str]:
        default = self.export_states if kind == "export" else self.import_states
        return self._org_settings[org_id].states.get(kind, default)

    def _org_of_credentials(self, credentials: tuple[str, str]) -> EmulatedOrg | None:
        return next((org for org in self.orgs if (org.username, org.password) == credentials), None)

    def _register(self, job: _Job) -> None:
        with self._lock:
            if job.id in self._jobs:
                raise ValueError(f"A job with id {job.id} already exists")
            self._jobs[job.id] = job

    def chaos(self, rate: float, seed: int) -> None:
        """From now on, give a random ``rate`` of login, status and log requests a transient fault
        (429 with or without Retry-After, 500, 502 and 503 pages, resets, slow answers, and for
        status, malformed JSON), reproducibly from ``seed``. ``chaos_faults`` counts them by kind."""
        with self._lock:
            self._chaos = _Chaos(rate, seed)

    @property
    def chaos_faults(self) -> dict[str, int]:
        with self._lock:
            return dict(self._chaos.injected) if self._chaos else {}

    def log_of(self, job_id: str) -> bytes:
        """The log the job serves now: its own, or one generated in the observed format."""
        with self._lock:
            job = self._jobs[job_id]
            return bytes(self._log_body(job, job.state))

    def _log_body(self, job: _Job, state: str) -> bytes | _GeneratedLog:
        if job.log is not None:
            return job.log
        org = self.org(job.org_id)
        log = _generated_log(job, state, org.name, org.username)
        if job.log_size is None or job.ended_at is None:  # while the job runs, only the header exists
            return log
        return _GeneratedLog(log, job.log_size, _iso_millis(job.ended_at))

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(_ArmedFault(fault))

    def invalidate_sessions(self) -> None:
        with self._lock:
            self._sessions.clear()
            self._session_orgs.clear()

    @property
    def expired_session_status(self) -> int:
        """How a missing, unknown or expired session is refused: 401, or 403 with code AUTH_01."""
        return self._expired_session_status

    @expired_session_status.setter
    def expired_session_status(self, status: int) -> None:
        if status not in EXPIRED_SESSION_STATUSES:
            raise ValueError(f"expired_session_status must be one of {sorted(EXPIRED_SESSION_STATUSES)}")
        self._expired_session_status = status

    @property
    def rate_limit_per_second(self) -> float | None:
        """Requests per second the org may make to the API (None: unlimited)."""
        with self._lock:
            return self._rate

    @rate_limit_per_second.setter
    def rate_limit_per_second(self, rate: float | None) -> None:
        with self._lock:
            self._rate = rate
            self._buckets = {}

    # Observations

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request answered so far, in the order they were answered."""
        with self._lock:
            return list(self._requests)

    def huge_bytes_sent(self, timeout: float = 10.0) -> list[int]:
        """Body bytes each "huge" fault's answer got into its socket (the client's buffers included),
        in order, once each has finished sending: the client read it all, or went away. A client that
        neither reads nor closes keeps one sending: then TimeoutError after ``timeout`` seconds."""
        with self._lock:
            answers = list(self._huge_answers)
        deadline = time.monotonic() + timeout
        for answer in answers:
            if not answer.finished.wait(max(deadline - time.monotonic(), 0)):
                raise TimeoutError(f"a huge answer was still sending after {timeout} s ({answer.sent} bytes out)")
        return [answer.sent for answer in answers]

    @property
    def issued_session_ids(self) -> list[str]:
        """Every session id a login gave out (v2 and v3), in order, whether still live or not."""
        with self._lock:
            return list(self._issued)

    @property
    def logins(self) -> int:
        """Login attempts (v2 and v3), whether they succeeded, failed or met a fault."""
        with self._lock:
            return self._logins

    # Scenarios

    def load_scenario(self, source: str | Path | Mapping[str, Any]) -> None:
        """Apply a scenario (a dict, or a JSON or YAML file); the format is in docs/emulator.md."""
        spec = source if isinstance(source, Mapping) else _read_scenario_file(Path(source))
        _reject_unknown_keys(spec, _SCENARIO_KEYS, "scenario")
        for setting in (
            "username",
            "password",
            "session_idle_seconds",
            "session_jwt_length",
            "rate_limit_per_second",
            "expired_session_status",
        ):
            if setting in spec:
                setattr(self, setting, spec[setting])
        if "export_states" in spec:
            self.export_states = list(_poll_schedule(spec["export_states"]).states)
        if "import_states" in spec:
            self.import_states = list(_poll_schedule(spec["import_states"]).states)
        for org in spec.get("orgs", []):
            self._load_org(org)
        reference_job = spec.get("reference_job")
        if reference_job:
            reference_spec = {} if reference_job is True else reference_job
            _reject_unknown_keys(reference_spec, ("states", "schedule"), "reference_job")
            self.add_reference_job(**reference_spec)
        for job in spec.get("jobs", []):
            _reject_unknown_keys(job, _JOB_KEYS, "job")
            self.add_job(job_id=job.get("id"), **{k: v for k, v in job.items() if k != "id"})
        for fault in spec.get("faults", []):
            _reject_unknown_keys(fault, [f.name for f in fields(Fault)], "fault")
            self.add_fault(Fault(**fault))

    def _load_org(self, spec: Mapping[str, Any]) -> None:
        _reject_unknown_keys(spec, _ORG_KEYS, "org")
        org = self.add_org(spec["username"], spec["password"], spec.get("name"), org_id=spec.get("id"))
        states = {kind: spec.get(kind) for kind in ("export_states", "import_states")}
        self.set_org_states(org.org_id, **states)
        self.fail_imports(org.org_id, spec.get("fail_imports", {}))

    # Request pipeline: route, fault, session, rate limit, resource. Called from server threads.

    def _handle(self, request: _Request) -> _Response | object:
        received = time.time()
        route, job_id = _match_route(request.method, request.path)
        with self._lock:
            if route.name == "login":
                self._logins += 1
            fault = next((armed.fault for armed in self._faults if armed.claims(route.name, job_id)), None)
            if fault is None and self._chaos is not None:
                fault = self._chaos.pick(route.name)
        if fault is None:
            outcome = self._serve(route, request, job_id)
        else:
            outcome = self._inject(fault, route, request, job_id)
        status = outcome.status if isinstance(outcome, _Response) else None
        org_id = self._org_of_request(request, route.name)
        recorded = RecordedRequest(**vars(request), route=route.name, status=status, time=received, org_id=org_id)
        with self._lock:
            self._requests.append(recorded)
        return outcome

    def _inject(self, fault: Fault, route: _Route, request: _Request, job_id: str | None) -> _Response | object:
        if fault.kind == "reset":
            return _RESET
        if fault.kind == "slow":
            time.sleep(fault.delay_seconds)
            return self._serve(route, request, job_id)
        if fault.kind == "drip":
            served = self._serve(route, request, job_id)
            return dataclasses.replace(served, byte_seconds=max(fault.delay_seconds, 0.001))
        if fault.kind == "endless":
            return _Response(HTTPStatus.OK, _EndlessLog(fault.delay_seconds), "text/plain; charset=utf-8")
        if fault.kind == "malformed_json":
            return _Response(fault.status or HTTPStatus.OK, _TRUNCATED_JSON, "application/json")
        if fault.kind == "invalidate_session":
            self.invalidate_sessions()
            return self._expired_session()
        if fault.kind == "huge":
            return self._padded(self._serve(route, request, job_id), fault)
        if fault.kind == "wrong_id":
            return _with_other_id(self._serve(route, request, job_id))
        if fault.kind == "echo":
            status = fault.status or HTTPStatus.BAD_REQUEST
            return _echo_error(status, fault.body_format, request, _retry_after_header(fault.retry_after))
        time.sleep(fault.delay_seconds)  # a slow refusal: throttling that takes its time to say so
        return _injected_http_error(fault)

    def _serve(self, route: _Route, request: _Request, job_id: str | None) -> _Response:
        with self._lock:
            org_id = self._touch_session(request.headers) if route.needs_session else None
            if route.needs_session and org_id is None:
                return self._expired_session()
            if route.rate_limited and self._rate is not None:
                assert org_id is not None  # every rate-limited route needs a session
                wait = self._buckets.setdefault(org_id, _TokenBucket(self._rate)).take()
                if wait:
                    # Retry-After takes whole seconds; never advertise 0, which invites a hot loop.
                    return _throttled(_retry_after_header(max(1, math.ceil(wait))))
            job = None if job_id is None else self._jobs.get(job_id)
            if job_id is not None and (job is None or (job.org_id, job.kind) != (org_id, route.kind)):
                # Another org's job, or an export asked for as an import: as if it did not exist.
                message = f"{route.kind.capitalize()} job [{job_id}] was not found."
                return _v3_error(HTTPStatus.NOT_FOUND, _CODE_JOB_NOT_FOUND, message)
            return route.handler(self, request, job, org_id)

    def _expired_session(self) -> _Response:
        return _session_rejected(status=self.expired_session_status)

    def _padded(self, served: _Response, fault: Fault) -> _Response:
        body = _PaddedBody(bytes(served.body), fault.size_bytes, fault.chunked)
        with self._lock:
            self._huge_answers.append(body)
        return dataclasses.replace(served, body=body)

    def _touch_session(self, headers: Mapping[str, str]) -> str | None:
        """The org of the live session the request carries (None: none); using a session keeps it alive."""
        session_id = _session_id(headers)
        last_used = self._sessions.get(session_id)
        now = time.monotonic()
        if last_used is None or now - last_used > self.session_idle_seconds:
            self._sessions.pop(session_id, None)
            return None
        self._sessions[session_id] = now
        return self._session_orgs[session_id]

    def _org_of_request(self, request: _Request, route: str) -> str | None:
        """The org a recorded request acted in: a login's user's (any password), else its session's."""
        if route == "login":
            credentials = _credentials(request.body)
            user = credentials[0] if credentials else None
            return next((org.org_id for org in self.orgs if org.username == user), None)
        with self._lock:
            return self._session_orgs.get(_session_id(request.headers))

    def _open_session(self, org: EmulatedOrg) -> str:
        length = self.session_jwt_length
        session_id = _new_id() if length is None else _new_jwt(length, org.username)
        self._sessions[session_id] = time.monotonic()
        self._session_orgs[session_id] = org.org_id
        self._issued.append(session_id)
        return session_id

    # Resources. Each runs with the lock held.

    def _login_v3(self, request: _Request, job: _Job | None, org_id: str | None) -> _Response:
        credentials = _credentials(request.body)
        if credentials is None:
            return _v3_error(HTTPStatus.BAD_REQUEST, _CODE_BAD_REQUEST, "Body must be JSON with username, password.")
        org = self._org_of_credentials(credentials)
        if org is None:
            return _v3_error(HTTPStatus.BAD_REQUEST, _CODE_BAD_CREDENTIALS, "Invalid username or password.")
        settings = self._org_settings[org.org_id]
        user_info = {
            "sessionId": self._open_session(org),
            "id": settings.user_id,
            "name": org.username,
            "parentOrgId": settings.parent_org_id,
            "orgId": org.org_id,
            "orgName": org.name,
            "groups": {},
            "status": "Active",
        }
        products = [{"name": "Integration Cloud", "baseApiUrl": self.base_api_url}]
        return _json_response(HTTPStatus.OK, {"products": products, "userInfo": user_info})

    def _login_v2(self, request: _Request, job: _Job | None, org_id: str | None) -> _Response:
        credentials = _credentials(request.body, login_type="login")
        if credentials is None:
            return _v2_error(HTTPStatus.BAD_REQUEST, 'Body must be JSON with "@type": "login", username, password.')
        org = self._org_of_credentials(credentials)
        if org is None:
            return _v2_error(HTTPStatus.FORBIDDEN, "Invalid user name or password.")
        user = {
            "@type": "user",
            "id": self._org_settings[org.org_id].user_id,
            "orgId": org.org_id,
            "name": org.username,
            "icSessionId": self._open_session(org),
            "serverUrl": self.base_api_url,
        }
        return _json_response(HTTPStatus.OK, user)

    def _logout(self, request: _Request, job: _Job | None, org_id: str | None) -> _Response:
        self._sessions.pop(_session_id(request.headers), None)
        return _Response(HTTPStatus.OK)

    def _start_export(self, request: _Request, job: _Job | None, org_id: str | None) -> _Response:
        assert org_id is not None  # the route needs a session
        spec = _export_request(request.body)
        if spec is None:
            return _v3_error(HTTPStatus.BAD_REQUEST, _CODE_BAD_REQUEST, 'Body must be JSON with "objects": [{"id"}].')
        name, object_ids = spec
        objects = [_ExportObject(i, i, "/Default", "DTEMPLATE", "", None) for i in object_ids]
        schedule = _poll_schedule(self._states_of(org_id, "export"))
        corrupt = self._org_settings[org_id].corrupt_packages
        job = _Job(
            _new_id(), name or _default_job_name(), schedule, objects, log=None, org_id=org_id, corrupt_package=corrupt
        )
        self._jobs[job.id] = job
        body = job.status_body("IN_PROGRESS", expand=False)
        body["status"]["message"] = _EXPORT_STARTED_MESSAGE
        return _json_response(HTTPStatus.OK, body)

    def _job_status(self, request: _Request, job: _Job, org_id: str | None) -> _Response:
        expand = "objects" in parse_qs(urlsplit(request.path).query).get("expand", [])
        return _json_response(HTTPStatus.OK, job.status_body(job.observe(poll=True), expand=expand))

    def _job_log(self, request: _Request, job: _Job, org_id: str | None) -> _Response:
        log = self._log_body(job, job.observe(poll=False))
        return _Response(HTTPStatus.OK, log, "text/plain; charset=utf-8")

    def _export_package(self, request: _Request, job: _Job, org_id: str | None) -> _Response:
        state = job.observe(poll=False)
        if state not in TERMINAL_STATES or state in FAILURE_STATES:
            message = f"Export job [{job.id}] has no package: its state is {state}."
            return _v3_error(HTTPStatus.BAD_REQUEST, _CODE_NO_PACKAGE, message)
        disposition = (("Content-Disposition", f'attachment; filename="{job.name}.zip"'),)
        return _Response(HTTPStatus.OK, _package(job, state, self.org(job.org_id)), "application/zip", disposition)

    def _upload_package(self, request: _Request, job: _Job | None, org_id: str | None) -> _Response:
        """POST import/package: check the zip against its manifest; the import job waits, NOT_STARTED."""
        assert org_id is not None  # the route needs a session
        data = form_field(_header(request.headers, "Content-Type"), request.body, "package")
        if data is None:
            message = 'Body must be multipart/form-data with the package zip in the form field "package".'
            return _v3_error(HTTPStatus.BAD_REQUEST, _CODE_BAD_REQUEST, message)
        try:
            package = read_package(data)
        except PackageError as error:
            return _v3_error(HTTPStatus.BAD_REQUEST, _CODE_BAD_PACKAGE, str(error))
        relax = parse_qs(urlsplit(request.path).query).get("relaxChecksum", [""])[-1].lower() == "true"
        if package.mismatched and not relax:
            message = f"Checksum validation failed for [{package.mismatched[0]}]: the package was changed after export."
            return _v3_error(HTTPStatus.BAD_REQUEST, _CODE_BAD_PACKAGE, message)
        objects = [
            _ExportObject(o.id, o.name, o.folder, o.type, o.description, None, folder=o.folder) for o in package.objects
        ]
        job = _Job(
            _new_id(),
            package.name or _default_job_name(),
            _poll_schedule(["NOT_STARTED"]),
            objects,
            log=None,
            org_id=org_id,
            kind="import",
            source_org_id=package.source_org_id,
            started=False,
        )
        self._jobs[job.id] = job
        status = {"state": "NOT_STARTED", "message": _state_message("NOT_STARTED", "import")}
        return _json_response(
            HTTPStatus.OK, {"jobId": job.id, "jobStatus": status, "checksumValid": package.checksum_valid}
        )

    def _start_import(self, request: _Request, job: _Job, org_id: str | None) -> _Response:
        """POST import/<id>: start an uploaded import; its objects fail where the org says they do."""
        assert org_id is not None  # the route needs a session
        spec = _import_request(request.body)
        if isinstance(spec, str):
            return _v3_error(HTTPStatus.BAD_REQUEST, _CODE_BAD_REQUEST, spec)
        if job.started:
            message = f"Import job [{job.id}] was already started."
            return _v3_error(HTTPStatus.BAD_REQUEST, _CODE_ALREADY_STARTED, message)
        name, include = spec
        known = {o.id for o in job.objects}
        if include is not None and not set(include) <= known:
            missing = sorted(set(include) - known)
            return _v3_error(HTTPStatus.BAD_REQUEST, _CODE_BAD_REQUEST, f"includeObjects not in the package: {missing}")
        failing = self._org_settings[org_id].failing_imports
        objects = [_failing(o, failing) for o in job.objects if include is None or o.id in include]
        states = self._states_of(org_id, "import")
        if any(o.final_status is not None for o in objects):  # a failed object fails the import; the rest import
            states = ["FAILED" if s in TERMINAL_STATES and s not in FAILURE_STATES else s for s in states]
            imported = {"state": "SUCCESSFUL", "message": None}
            objects = [o if o.final_status else dataclasses.replace(o, final_status=imported) for o in objects]
        job.start(name, _poll_schedule(states), objects)
        return _json_response(HTTPStatus.OK, job.status_body(job.state, expand=False))

    def _not_found(self, request: _Request, job: _Job | None, org_id: str | None) -> _Response:
        return _v3_error(HTTPStatus.NOT_FOUND, _CODE_NOT_FOUND, f"No resource at {request.method} {request.path}.")


def _schedule(
    states: Sequence[str] | None, schedule: Sequence[Mapping[str, Any]] | None
) -> _PollSchedule | _TimedSchedule:
    if states is not None and schedule is not None:
        raise ValueError("Give a job either states (per poll) or schedule (timed), not both")
    if schedule is not None:
        return _timed_schedule(schedule)
    return _poll_schedule(states if states is not None else ["IN_PROGRESS", "SUCCESSFUL"])


def _default_job_name() -> str:
    return f"job-{int(time.time() * 1000)}"


def _credentials(body: bytes, login_type: str | None = None) -> tuple[str, str] | None:
    """(username, password) from a login body, or None when the body is not a valid login."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if not isinstance(document, dict) or (login_type and document.get("@type") != login_type):
        return None
    username, password = document.get("username"), document.get("password")
    valid = all(isinstance(v, str) and len(v) <= _MAX_CREDENTIAL_LENGTH for v in (username, password))
    return (username, password) if valid else None


def _export_request(body: bytes) -> tuple[str | None, list[str]] | None:
    """(name, object ids) from an export body, or None when the body is not a valid export."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    objects = document.get("objects") if isinstance(document, dict) else None
    if not objects or not isinstance(objects, list):
        return None
    ids = [o.get("id") for o in objects if isinstance(o, dict)]
    if len(ids) != len(objects) or not all(isinstance(i, str) and i for i in ids):
        return None
    name = document.get("name")
    return (name if isinstance(name, str) else None), ids


def _import_request(body: bytes) -> tuple[str, list[str] | None] | str:
    """(name, includeObjects or None) from an import start body, or why it is not a valid one."""
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, dict) or not isinstance(document.get("name"), str) or not document["name"]:
        return 'Body must be JSON with "name" and "importSpecification".'
    spec = document.get("importSpecification")
    if not isinstance(spec, dict) or spec.get("defaultConflictResolution") not in CONFLICT_RESOLUTIONS:
        return f"importSpecification.defaultConflictResolution must be one of {list(CONFLICT_RESOLUTIONS)}."
    include = spec.get("includeObjects")
    if include is not None and (not isinstance(include, list) or not all(isinstance(i, str) and i for i in include)):
        return "importSpecification.includeObjects must be a list of object ids."
    rules = spec.get("objectSpecification")
    if rules is not None and (not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules)):
        return "importSpecification.objectSpecification must be a list of objects."
    return document["name"], include


def _failing(obj: _ExportObject, failing: Mapping[str, str]) -> _ExportObject:
    """``obj`` as an import into an org where it fails (by id or name) ends: FAILED, with the reason."""
    reason = failing.get(obj.id, failing.get(obj.name))
    if reason is None:
        return obj
    return dataclasses.replace(obj, final_status={"state": "FAILED", "message": reason})


def _pattern(path_regex: str) -> re.Pattern[str]:
    return re.compile(path_regex + r"(?:\?.*)?")  # any query string; only status reads one


_EXPORT = re.escape(API_PREFIX + EXPORT_PATH)
_JOB = _EXPORT + "/(?P<job_id>[^/?]+)"
_IMPORT = re.escape(API_PREFIX + IMPORT_PATH)
_IMPORT_JOB = _IMPORT + "/(?P<job_id>[^/?]+)"
_PUBLIC = {"needs_session": False, "rate_limited": False}
# The export resource is the one Informatica rate-limits, per org; the import resource is assumed to
# be limited the same way (iics-import-and-packages.md).
_API = {"needs_session": True, "rate_limited": True}
_IMPORTS = _API | {"kind": "import"}
_ROUTES = (
    _Route("login", "POST", _pattern(re.escape(LOGIN_PATH)), IicsEmulator._login_v3, **_PUBLIC),
    _Route("login", "POST", _pattern(re.escape(V2_LOGIN_PATH)), IicsEmulator._login_v2, **_PUBLIC),
    _Route("logout", "POST", _pattern(re.escape(LOGOUT_PATH)), IicsEmulator._logout, True, False),
    _Route("export", "POST", _pattern(_EXPORT), IicsEmulator._start_export, **_API),
    _Route("status", "GET", _pattern(_JOB), IicsEmulator._job_status, **_API),
    _Route("log", "GET", _pattern(_JOB + "/log"), IicsEmulator._job_log, **_API),
    _Route("package", "GET", _pattern(_JOB + "/package"), IicsEmulator._export_package, **_API),
    # Before "import": "package" is not a job id.
    _Route("upload", "POST", _pattern(_IMPORT + "/package"), IicsEmulator._upload_package, **_IMPORTS),
    _Route("import", "POST", _pattern(_IMPORT_JOB), IicsEmulator._start_import, **_IMPORTS),
    _Route("status", "GET", _pattern(_IMPORT_JOB), IicsEmulator._job_status, **_IMPORTS),
    _Route("log", "GET", _pattern(_IMPORT_JOB + "/log"), IicsEmulator._job_log, **_IMPORTS),
)
_UNKNOWN_ROUTE = _Route("unknown", "*", re.compile(".*"), IicsEmulator._not_found, **_PUBLIC)


def _match_route(method: str, path: str) -> tuple[_Route, str | None]:
    """The route serving a request, and the job id its path names (if any)."""
    for route in _ROUTES:
        match = route.pattern.fullmatch(path)
        if match and route.method == method:
            return route, match.groupdict().get("job_id")
    return _UNKNOWN_ROUTE, None


_SCENARIO_KEYS = (
    "username", "password", "session_idle_seconds", "session_jwt_length", "rate_limit_per_second",
    "expired_session_status",
    "export_states", "import_states", "orgs", "reference_job", "jobs", "faults",
)  # fmt: skip
_JOB_KEYS = (
    "id", "name", "states", "schedule", "objects", "log", "log_size", "ended_states",
    "kind", "org", "source_org_id", "corrupt_package",
)  # fmt: skip
_ORG_KEYS = ("id", "username", "password", "name", "export_states", "import_states", "fail_imports")


def _read_scenario_file(path: Path) -> Mapping[str, Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() not in (".yaml", ".yml"):
        return json.loads(text)
    try:
        import yaml  # imported here: PyYAML is optional and JSON scenarios must work without it
    except ImportError as error:
        raise RuntimeError(f"{path} is YAML but PyYAML is not installed; use a JSON scenario") from error
    return yaml.safe_load(text)


# --- HTTP plumbing ------------------------------------------------------------------------------


class _RequestHandler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections alive, as clients with connection pools expect from the service.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm the second one waits for
    # the client's delayed ACK, adding ~40 ms to every reply.
    disable_nagle_algorithm = True
    server: Any  # the loopback server; its owner is the emulator

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = _Request(self.command, self.path, dict(self.headers.items()), body)
        outcome = self.server.owner._handle(request)
        if isinstance(outcome, _Response):
            try:
                self._send(outcome)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client stopped reading (gave up): as a real server, let go
        else:
            self._reset_connection()

    def _send(self, response: _Response) -> None:
        self.send_response(response.status)
        if response.content_type:
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers:
            self.send_header(name, value)
        body = response.body
        chunked = getattr(body, "chunked", False)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        write = self._write_chunk if chunked else self.wfile.write
        if response.byte_seconds:
            self._drip(bytes(body), response.byte_seconds)
        elif isinstance(body, _PaddedBody):
            body.send(write)
        else:
            for chunk in body.chunks() if isinstance(body, _GeneratedLog | _EndlessLog) else (body,):
                write(chunk)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _write_chunk(self, chunk: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    def _drip(self, body: bytes, byte_seconds: float) -> None:
        for index in range(len(body)):
            self.wfile.write(body[index : index + 1])
            self.wfile.flush()
            time.sleep(byte_seconds)

    def _reset_connection(self) -> None:
        # A zero linger time makes close() send RST instead of FIN: the client sees a reset.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def log_message(self, format: str, *args: Any) -> None:
        logger.info("%s %s", self.address_string(), format % args)


# --- Command line -------------------------------------------------------------------------------


if __name__ == "__main__":  # run as a script, this is its own module: the CLI imports the package's emulator
    from iics_monitor_local.cli import emulator_command

    emulator_command.main(sys.argv[1:], prog_name="python -m iics_monitor_local.emulator")

"""IICS REST client on urllib3: v3 login; export and import jobs' status and log; export start and
package; import upload and start.

One client lives per warm Lambda container and keeps its session. When IICS refuses the session (401,
or 403 with code AUTH_01) it logs in again once and retries once. A refused login is never retried:
repeated failures lock the IICS account. Every request goes only where its ``HostPolicy`` allows
(iics_monitor.hosts): the password and the session id go to Informatica's hosts, nowhere else.

Every request has a total deadline, not only a timeout per socket read (an answer that drips one
byte a second never trips one): ``request_seconds``, or less when the invocation's own deadline
(``within``) comes first. Bodies are read one socket read at a time, each read's timeout capped at
the time left. A log or package stream's body is bounded by the invocation's deadline only; any other
answer by size too: at most ``MAX_ANSWER_BYTES`` is read (an error's first ``_MAX_ERROR_BODY`` bytes).
"""

from __future__ import annotations

import contextlib
import html
import json
import math
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import urllib3

from iics_monitor.credentials import Credentials
from iics_monitor.errors import (
    AccessDenied,
    AnswerLost,
    BadRequest,
    IicsError,
    IicsUnavailable,
    InvalidInput,
    JobNotFound,
    LoginFailed,
    LoginRefused,
    NotSent,
    SessionExpired,
    StartUnconfirmed,
    Throttled,
)
from iics_monitor.hosts import INFORMATICA_ONLY, HostPolicy, service_url_parts
from iics_monitor.scrub import remember, scrub
from iics_monitor.validation import CONFLICT_RESOLUTIONS, ExportSpec, parse_job_id
from iics_monitor.verdicts import SecretVerdicts

CONNECT_TIMEOUT_SECONDS = 5.0
DEFAULT_TIMEOUT = urllib3.Timeout(connect=CONNECT_TIMEOUT_SECONDS, read=30.0)
DEFAULT_REQUEST_SECONDS = 30.0
_READ_BYTES = 64 * 1024
SESSION_HEADER = "INFA-SESSION-ID"
MAX_RETRY_AFTER_SECONDS = 3600
_MAX_ERROR_BODY = 64 * 1024
# A login or status answer is a few KiB (a status with 1,000 objects, ~0.5 MiB): one past this is refused
# unread (by its Content-Length) or as soon as the limit is read, never held whole.
MAX_ANSWER_BYTES = 16 * 1024 * 1024
_MIB = MAX_ANSWER_BYTES // (1024 * 1024)
_SHOWN_ID = 64  # characters of another job's id in a reason
_SESSION_REFUSED_CODE = "AUTH_01"  # with a 403, an expired session: another public IICS client re-logs in on it
_SESSION_ID = re.compile(r"[!-~]{1,16000}")  # visible ASCII, as a header must be; JWT ids reach 16,000
_SECONDS = re.compile(r"\d{1,30}(\.\d{1,6})?")
_TITLE = re.compile(rb"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)
# Where each kind of job lives: the import resources mirror the export ones (iics-import-and-packages.md).
JOB_PATHS = {"export": "/public/core/v3/export", "import": "/public/core/v3/import"}
_FILENAME = re.compile(r"[\w .()+-]{1,200}")  # what may stand in the upload's Content-Disposition unquoted

# A body sent as it is made: bytes, or a function that makes its chunks (called once per attempt).
Body = bytes | Callable[[], Iterable[bytes]]


@dataclass(frozen=True)
class Session:
    session_id: str
    base_api_url: str

    def __repr__(self) -> str:  # the session id never reaches a log line
        return f"Session(base_api_url={self.base_api_url!r})"


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or HTTP date), bounded; None if absent."""
    if not value:
        return None
    value = value.strip()
    if _SECONDS.fullmatch(value):  # RFC 9110 says whole seconds; proxies and emulators send fractions
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # "-0000" means UTC with no zone claimed
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _error_fields(body: bytes) -> tuple[str | None, str | None, str | None]:
    """(code, message, requestId) from a v3 nested body, a v2 flat body, or an HTML/text page."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested past what a reply needs
        data = None
    if isinstance(data, dict):
        nested = data.get("error")
        if isinstance(nested, dict):  # v3: {"error": {"code", "message", "requestId", "details"}}
            return _text(nested.get("code")), _text(nested.get("message")), _text(nested.get("requestId"))
        if "code" in data or data.get("@type") == "error":  # v2: {"@type": "error", "code", "description"}
            return _text(data.get("code")), _text(data.get("description") or data.get("message")), None
    title = _TITLE.search(body)
    if title:
        # as a reader sees it: entities decoded, so the scrubber meets what a page spells as &#39; or &quot;
        return None, _text(html.unescape(title.group(1).decode("utf-8", "replace"))), None
    text = body.decode("utf-8", "replace").strip()
    return None, _text(text) if text and not text.startswith("<") else None, None


def _text(value: Any, limit: int = 300) -> str | None:
    """An IICS error field as one bounded line, scrubbed first: IICS or a proxy may echo the request
    (the password, the session id), and neither a cut nor a collapsed space may split a secret."""
    if value is None:
        return None
    text = " ".join(scrub(value, _MAX_ERROR_BODY).split())
    return text[:limit] or None


def error_from_response(status: int, headers: Any, body: bytes, *, during_login: bool = False) -> IicsError:
    """The typed error for an IICS error answer. The one place HTTP answers become error types.
    Its text is the body's scrubbed and bounded fields (``_text``), never the body itself."""
    code, message, request_id = _error_fields(body)
    fields = {"status": status, "code": code, "request_id": request_id}
    text = message or f"IICS answered HTTP {status}"
    if status in (429, 503) or b"too many requests" in body.lower():
        retry_after = parse_retry_after(headers.get("Retry-After"))
        return Throttled(text, retry_after=retry_after, **fields)
    if status >= 500:
        return IicsUnavailable(text, **fields)
    if during_login:  # a refusal of the credentials, or the login resource not being where it was said to be
        if status in (400, 401, 403):
            return LoginRefused(f"IICS login refused: {text}", **fields)
        return LoginFailed(f"IICS login failed: {text}", **fields)
    if _session_refused(status, code):
        return SessionExpired(text, **fields)
    if status == 403:
        return AccessDenied(text, **fields)
    if status == 404:
        return JobNotFound(text, **fields)
    return BadRequest(text, **fields)


class IicsClient:
    """Talks to one IICS org. ``credentials`` is called only when a login is needed."""

    def __init__(
        self,
        credentials: Callable[[], Credentials],
        http: urllib3.PoolManager | None = None,
        timeout: urllib3.Timeout = DEFAULT_TIMEOUT,
        before_request: Callable[[], None] | None = None,
        request_seconds: float = DEFAULT_REQUEST_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        verdicts: SecretVerdicts | None = None,
        hosts: HostPolicy = INFORMATICA_ONLY,  # where requests may go; the local harness adds loopback http
    ) -> None:
        self._credentials = credentials
        self._verdicts = verdicts  # the stack's record of refused passwords; None: this client's refusals only
        self._refused: tuple[Credentials, LoginRefused] | None = None
        self._hosts = hosts
        self._before_request = before_request  # e.g. RequestBudget.take: may raise Throttled
        self._http = http or urllib3.PoolManager(retries=False, timeout=timeout)
        self._timeout = timeout
        self.request_seconds = request_seconds  # the most one request (connect, send, whole answer) may take
        self._clock = clock
        self._until = math.inf  # the invocation's deadline on ``clock`` (see ``within``)
        self._session: Session | None = None
        self.logins = 0  # successful logins; visible to metrics and tests

    @contextlib.contextmanager
    def within(self, until: float) -> Iterator[IicsClient]:
        """Requests made inside end by ``until`` (a ``clock`` time): the invocation's deadline, less what
        it keeps back to report. The client outlives invocations; the deadline does not."""
        saved, self._until = self._until, until
        try:
            yield self
        finally:
            self._until = saved

    def seconds_left(self) -> float:
        """Seconds until the invocation's deadline (infinite outside ``within``)."""
        return self._until - self._clock()

    # --- public calls ---------------------------------------------------------------------

    def get_status(self, job_id: str, *, expand_objects: bool = False, kind: str = "export") -> dict[str, Any]:
        """The status body of the export (or, with ``kind="import"``, import) job, optionally with
        per-object status."""
        query = "?expand=objects" if expand_objects else ""
        response = self._call("GET", _job_path(kind, job_id, query))
        return _of_job(_json_object(response), job_id, response.status)

    def open_log(self, job_id: str, *, kind: str = "export") -> LogStream:
        """The export (or import) log as an unread stream; use it as a context manager."""
        return self._open_stream(_job_path(kind, job_id, "/log"))

    def open_package(self, job_id: str) -> LogStream:
        """The export package (a zip) as an unread stream; use it as a context manager."""
        return self._open_stream(f"/public/core/v3/export/{parse_job_id(job_id)}/package")

    def start_export(self, spec: ExportSpec) -> dict[str, Any]:
        """POST /export: start an export job; the answer is the new job's status body (with its id).

        Not retried here: a request that failed on the way may still have started a job. The POST is
        only begun with its whole ``request_seconds`` left (``NotSent`` otherwise). Once it went out,
        a failure that is not IICS refusing it raises ``StartUnconfirmed``."""
        return self._start(JOB_PATHS["export"], json.dumps(spec.to_body()).encode(), "an export may have started")

    def _start(self, path: str, body: bytes, unconfirmed: str) -> dict[str, Any]:
        """POST a job start once: ``NotSent`` if it never went out, ``StartUnconfirmed`` if no answer
        confirmed or refused it."""
        if self._session is None:
            self.login()  # a failure here cannot have started a job
        try:
            return _json_object(self._call("POST", path, body=body, whole_budget=True))
        except IicsUnavailable as error:
            if isinstance(error, NotSent):
                raise
            raise StartUnconfirmed(
                f"{unconfirmed}; check IICS before retrying ({error.message})",
                status=error.status,
                code=error.code,
                request_id=error.request_id,
            ) from None

    def upload_package(
        self, stream: BinaryStream, size: int, *, relax_checksum: bool = False, filename: str = "package.zip"
    ) -> dict[str, Any]:
        """POST import/package: upload ``size`` bytes of ``stream`` (a zip) as the form field ``package``;
        the answer ``{"jobId", "jobStatus": {"state": "NOT_STARTED", ...}, "checksumValid"}``, its jobId valid.

        The zip is sent as it is read, 64 KiB at a time, with an exact Content-Length: never whole in
        memory. IICS refusing it (not a zip, a checksum mismatch without ``relax_checksum``) is a
        ``BadRequest`` with IICS's message. Not retried, but safe to repeat: an upload whose answer was
        lost may have left an import job NOT_STARTED, which imports nothing until started; the error
        says so. A refused cached session is retried once after a fresh login only when ``stream`` can
        seek back to where it was."""
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidInput(f"the package size must be a whole number of bytes, got {size!r}")
        if not isinstance(filename, str) or not _FILENAME.fullmatch(filename):
            raise InvalidInput("the package file name must be 1-200 letters, digits, spaces or ._-()+")
        boundary = secrets.token_hex(16)
        head, tail = _multipart_frame(boundary, filename)
        headers = {
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(head) + size + len(tail)),
        }
        query = "?relaxChecksum=true" if relax_checksum else ""
        body = _replayable(stream, lambda: _framed(head, stream, size, tail))
        if self._session is None:
            self.login()  # a failure here cannot have uploaded anything
        try:
            response = self._call(
                "POST",
                f"{JOB_PATHS['import']}/package{query}",
                body=body,
                headers=headers,
                whole_budget=True,
                seconds=upload_seconds(self.request_seconds, size),
            )
        except IicsUnavailable as error:
            if isinstance(error, NotSent):
                raise
            raise type(error)(
                f"the upload may have created an import job, NOT_STARTED (nothing imported); uploading again is "
                f"safe ({error.message})",
                status=error.status,
                code=error.code,
                request_id=error.request_id,
            ) from None
        answer = _json_object(response)
        try:
            parse_job_id(answer.get("jobId"))
        except InvalidInput:
            raise IicsUnavailable("IICS answered the upload without a usable jobId", status=response.status) from None
        return answer

    def start_import(
        self, job_id: str, name: str, conflict_resolution: str, include_objects: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """POST import/<jobId>: start an uploaded import; the answer is the job's status body.

        Checked before anything is sent: the ids, a name, and ``conflict_resolution`` OVERWRITE or REUSE.
        Not retried, like ``start_export``: once the POST went out, a failure that is not IICS refusing it
        raises ``StartUnconfirmed`` (the import may be running; check its status before starting again)."""
        if conflict_resolution not in CONFLICT_RESOLUTIONS:
            raise InvalidInput(f"conflict resolution must be one of {', '.join(CONFLICT_RESOLUTIONS)}")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise InvalidInput("an import needs a name of 1-255 characters")
        spec: dict[str, Any] = {"defaultConflictResolution": conflict_resolution}
        if include_objects is not None:
            spec["includeObjects"] = [parse_job_id(i) for i in include_objects]
        body = json.dumps({"name": name, "importSpecification": spec}).encode()
        return self._start(_job_path("import", job_id), body, "an import may have started")

    def login(self) -> Session:
        """v3 login. Raises ``LoginRefused`` on a refusal, and never tries that version of the secret again:
        with ``verdicts``, no function of the stack does."""
        creds = self._credentials()
        remember(creds.password)  # before it is sent: an answer may echo it
        self._session = None
        if self._verdicts is None or creds.version is None:
            session = self._log_in_once(creds)
        else:
            session = self._verdicts.log_in(
                creds.version,
                lambda: self._log_in(creds),
                login_seconds=self.request_seconds,
                seconds_left=self.seconds_left,
            )
        self._session = session
        self.logins += 1
        return session

    def _log_in_once(self, creds: Credentials) -> Session:
        """Without the stack's verdicts (the command line), this client still never repeats refused credentials."""
        if self._refused is not None and self._refused[0] == creds:
            raise self._refused[1]
        try:
            return self._log_in(creds)
        except LoginRefused as error:
            self._refused = (creds, error)
            raise

    def _log_in(self, creds: Credentials) -> Session:
        response = self._send(
            "POST",
            f"{creds.login_url}/saas/public/core/v3/login",
            body=json.dumps({"username": creds.username, "password": creds.password}).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        if response.status != 200:
            raise error_from_response(response.status, response.headers, response.data, during_login=True)
        return _session_from_login(_json_object(response))

    def logout(self) -> None:
        """End the session (the CLI does this; Lambda keeps its session for the next poll)."""
        if self._session is None:
            return
        session, self._session = self._session, None
        creds = self._credentials()
        self._send("POST", f"{creds.login_url}/saas/public/core/v3/logout", headers=_auth(session))

    # --- plumbing ---------------------------------------------------------------------------

    def _open_stream(self, path: str) -> LogStream:
        response = self._call("GET", path, stream=True)
        return LogStream(response, until=self._until, read_seconds=self._read_seconds(), clock=self._clock)

    def _call(
        self,
        method: str,
        path: str,
        *,
        stream: bool = False,
        body: Body | None = None,
        headers: dict[str, str] | None = None,
        whole_budget: bool = False,
        seconds: float | None = None,
    ) -> Answer | urllib3.BaseHTTPResponse:
        """The answer (read whole), or for ``stream`` the response with its body unread. A body is JSON
        unless ``headers`` say otherwise. ``seconds``: what this request may take in all, when it is not
        ``request_seconds`` (an upload, whose body takes its own time to send)."""
        fresh = self._session is None
        session = self._session or self.login()
        body_headers = ({"Content-Type": "application/json"} if body is not None else {}) | (headers or {})

        def send(session: Session) -> Answer | urllib3.BaseHTTPResponse:
            payload = body() if callable(body) else body
            url = session.base_api_url + path
            return self._send(
                method,
                url,
                body=payload,
                headers=_auth(session) | body_headers,
                stream=stream,
                whole_budget=whole_budget,
                seconds=seconds,
            )

        response = send(session)
        error = self._error_of(response)
        if isinstance(error, SessionExpired) and not fresh:
            # The cached session expired (IICS refused the call, so nothing was started): one fresh login, one retry.
            response = send(self.login())
            error = self._error_of(response)
        if error is not None:  # redirects are not followed: a 3xx is not the resource
            if isinstance(error, SessionExpired):
                self._session = None
            raise error
        return response

    def _error_of(self, response: Answer | urllib3.BaseHTTPResponse) -> IicsError | None:
        """The typed error of an error answer (its body read bounded, its connection given back); None for a
        success."""
        if response.status < 300:
            return None
        if isinstance(response, Answer):
            body = response.data
        else:
            with LogStream(response, self._request_deadline(), self._read_seconds(), self._clock) as stream:
                body = stream.read(_MAX_ERROR_BODY)
        return error_from_response(response.status, response.headers, body)

    def _send(
        self,
        method: str,
        url: str,
        *,
        body: bytes | Iterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
        stream: bool = False,
        whole_budget: bool = False,
        seconds: float | None = None,
    ) -> Answer | urllib3.BaseHTTPResponse:
        self._hosts.check(url)  # before anything is sent: no password or session id to a stranger
        allowed = self.request_seconds if seconds is None else seconds
        left = self._until - self._clock()
        if left <= 0 or (whole_budget and left < allowed):
            raise NotSent(f"{left:.1f} s left: too little for an IICS request that may take {allowed:g} s")
        if self._before_request is not None:
            self._before_request()
        deadline = self._request_deadline(allowed)
        seconds = max(deadline - self._clock(), 0.001)
        timeout = urllib3.Timeout(
            total=seconds,
            connect=min(_seconds(self._timeout.connect_timeout, seconds), seconds),
            read=min(self._read_seconds(), seconds),
        )
        try:
            response = self._http.request(
                method,
                url,
                body=body,
                headers=headers,
                preload_content=False,
                timeout=timeout,
                retries=False,
                redirect=False,
            )
        except urllib3.exceptions.HTTPError as error:
            raise _network_error(error) from None
        if stream:
            return response
        with LogStream(response, deadline, self._read_seconds(), self._clock, what="the answer") as body_stream:
            return Answer(response.status, response.headers, _bounded_body(response, body_stream))

    def _request_deadline(self, seconds: float | None = None) -> float:
        return min(self._clock() + (self.request_seconds if seconds is None else seconds), self._until)

    def _read_seconds(self) -> float:
        return _seconds(self._timeout.read_timeout, self.request_seconds)


# The slowest upload an IICS pod is expected to take: the zip's bytes at this rate, on top of
# request_seconds for IICS to check it and answer. A package that cannot go up within the invocation's
# time at this rate is not begun (NotSent).
MIN_UPLOAD_BYTES_PER_SECOND = 1024 * 1024


def upload_seconds(request_seconds: float, size: int) -> float:
    """What an upload of ``size`` bytes may take in all: sending it at the slowest expected rate, then
    ``request_seconds`` for the answer (a package of tens of MiB has as long as it needs; one request's
    ``IicsReadTimeoutSeconds`` alone would cut a large one off mid-send)."""
    return request_seconds + size / MIN_UPLOAD_BYTES_PER_SECOND


class BinaryStream(Protocol):
    """What ``upload_package`` reads the zip from: an open binary file, an S3 body, a BytesIO."""

    def read(self, size: int = -1, /) -> bytes: ...


def _job_path(kind: str, job_id: str, suffix: str = "") -> str:
    base = JOB_PATHS.get(kind)
    if base is None:
        raise ValueError(f"kind must be one of {', '.join(JOB_PATHS)}, got {kind!r}")
    return f"{base}/{parse_job_id(job_id)}{suffix}"


def _multipart_frame(boundary: str, filename: str) -> tuple[bytes, bytes]:
    """What goes before and after the zip in a multipart/form-data body with the one field ``package``."""
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="package"; filename="{filename}"\r\n'
        "Content-Type: application/zip\r\n\r\n"
    )
    return head.encode(), f"\r\n--{boundary}--\r\n".encode()


def _framed(head: bytes, stream: BinaryStream, size: int, tail: bytes) -> Iterator[bytes]:
    """``head``, then exactly ``size`` bytes of ``stream`` read 64 KiB at a time, then ``tail``."""
    yield head
    left = size
    while left:
        chunk = stream.read(min(left, _READ_BYTES))
        if not chunk:
            raise InvalidInput(f"the package stream ended {left} bytes short of the {size} bytes announced")
        left -= len(chunk)
        yield chunk
    yield tail


def _replayable(stream: Any, chunks: Callable[[], Iterator[bytes]]) -> Callable[[], Iterator[bytes]]:
    """``chunks`` for the first attempt; for another (after a refused session), the same from where the
    stream began, when it can seek back there. A stream that cannot was not sent twice: ``NotSent``."""
    start = stream.tell() if callable(getattr(stream, "seekable", None)) and stream.seekable() else None
    attempts = 0

    def attempt() -> Iterator[bytes]:
        nonlocal attempts
        attempts += 1
        if attempts > 1:
            if start is None:
                raise NotSent("the package stream cannot be read again to retry the upload after a new login")
            stream.seek(start)
        return chunks()

    return attempt


def _seconds(timeout: Any, default: float) -> float:
    """A urllib3 timeout value as seconds (it may be unset, a sentinel)."""
    return float(timeout) if isinstance(timeout, int | float) else default


@dataclass(frozen=True)
class Answer:
    """A whole (non-stream) answer: read within the request's deadline, at most ``MAX_ANSWER_BYTES``
    of it (an error's first ``_MAX_ERROR_BODY`` bytes)."""

    status: int
    headers: Any
    data: bytes


def _bounded_body(response: urllib3.BaseHTTPResponse, body: LogStream) -> bytes:
    """The answer's body, never more than ``MAX_ANSWER_BYTES`` of it. An error's text is read only as far
    as its code and message need. A larger success is refused, before any of it is read when its
    Content-Length says so, else once the limit is read; its connection is then closed, not drained.
    Transient: a proxy's page or a garbled answer, like a body that is not JSON."""
    if response.status >= 300:
        return body.read(_MAX_ERROR_BODY)
    declared = response.headers.get("Content-Length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:  # "²" is a digit too
        raise IicsUnavailable(
            f"IICS answered {int(declared)} bytes, more than the {_MIB} MiB limit; refused unread",
            status=response.status,
        )
    data = body.read(MAX_ANSWER_BYTES + 1)
    if len(data) > MAX_ANSWER_BYTES:
        raise IicsUnavailable(
            f"IICS answered more than the {_MIB} MiB limit; refused after reading {_MIB} MiB", status=response.status
        )
    return data


def _session_refused(status: int, code: str | None) -> bool:
    """IICS refusing the session id: 401, or 403 with AUTH_01 (a plain 403 is AccessDenied)."""
    return status == 401 or (status == 403 and code == _SESSION_REFUSED_CODE)


def _of_job(body: dict[str, Any], job_id: str, status: int) -> dict[str, Any]:
    """``body`` if it is the status of ``job_id``. One about another job (or none) says nothing of this
    one: a transient error, like a garbled answer, so the watch asks again (ten in a row end it ERROR);
    the reason names both ids, bounded."""
    other = body.get("id")
    if other == job_id:
        return body
    shown = "with no id" if other is None else f"of job {_shown_id(other)}"
    raise IicsUnavailable(f"IICS answered the status {shown} when asked for job {job_id}", status=status)


def _shown_id(value: Any) -> str:
    text = value if isinstance(value, str) and value.isascii() and value.isprintable() else ascii(value)
    return text if len(text) <= _SHOWN_ID else text[:_SHOWN_ID] + "..."


def _network_error(error: urllib3.exceptions.HTTPError) -> IicsUnavailable:
    """Nothing sent (no connection) or an answer lost on the way; the message names the failure,
    never the URL's query or any header."""
    if isinstance(error, urllib3.exceptions.ConnectTimeoutError | urllib3.exceptions.NewConnectionError):
        return NotSent(f"could not reach IICS: {type(error).__name__}")
    if isinstance(error, urllib3.exceptions.ReadTimeoutError | urllib3.exceptions.ProtocolError):
        return AnswerLost(f"could not reach IICS: {type(error).__name__}")
    return IicsUnavailable(f"could not reach IICS: {type(error).__name__}")


class LogStream:
    """A response body read in pieces, one socket read at a time, by a deadline (a ``clock`` time).

    Each socket read waits at most ``read_seconds``, and never past the deadline. A network failure
    mid-read becomes ``IicsUnavailable``; the deadline passing, ``AnswerLost``."""

    def __init__(
        self,
        response: urllib3.BaseHTTPResponse,
        until: float = math.inf,
        read_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        what: str = "the log stream",
    ) -> None:
        self._response = response
        self._until = until
        self._read_seconds = read_seconds
        self._clock = clock
        self._what = what

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (all of the rest when ``size`` is None or negative); fewer only at the end."""
        wanted = math.inf if size is None or size < 0 else size
        pieces, count = [], 0
        while count < wanted:
            piece = self.read1(int(min(wanted - count, _READ_BYTES)))
            if not piece:
                break
            pieces.append(piece)
            count += len(piece)
        return b"".join(pieces)

    def read1(self, size: int = _READ_BYTES) -> bytes:
        """What one socket read brings, at most ``size`` bytes (b"" at the end)."""
        left = self._until - self._clock()
        if left <= 0:
            raise AnswerLost(f"{self._what} was not over by its deadline")
        self._cap_socket_timeout(left)
        try:
            return self._response.read1(size)
        except urllib3.exceptions.HTTPError as error:
            if self._until - self._clock() <= 0:
                raise AnswerLost(f"{self._what} was not over by its deadline") from None
            raise IicsUnavailable(f"{self._what} broke off: {type(error).__name__}") from None

    def _cap_socket_timeout(self, left: float) -> None:
        connection = getattr(self._response, "connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            sock.settimeout(min(left, self._read_seconds or left))

    def close(self) -> None:
        _discard(self._response)

    def __enter__(self) -> LogStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _auth(session: Session) -> dict[str, str]:
    return {SESSION_HEADER: session.session_id, "Accept": "application/json"}


def _discard(response: Answer | urllib3.BaseHTTPResponse) -> None:
    """Give the connection back to the pool; one whose body is not over is closed, not drained."""
    if isinstance(response, Answer):
        return
    if not response.closed:
        response.close()  # draining a body that drips or never ends would take as long as reading it
    response.release_conn()


def _json_object(response: Answer) -> dict[str, Any]:
    try:
        data = json.loads(response.data)
    except (ValueError, RecursionError):  # not JSON, or nested past what a reply needs
        data = None
    if not isinstance(data, dict):
        raise IicsUnavailable("IICS sent a body that is not a JSON object", status=response.status)
    return data


def _session_from_login(body: dict[str, Any]) -> Session:
    try:
        session_id = body["userInfo"]["sessionId"]
        base_api_url = body["products"][0]["baseApiUrl"]
    except (KeyError, IndexError, TypeError):
        raise IicsUnavailable("IICS login answer lacks userInfo.sessionId or products[0].baseApiUrl") from None
    remember(session_id)  # before any request carries it: an answer may echo it
    if not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id):
        raise IicsUnavailable("IICS login answer has an unusable session id")  # never repeat it
    if service_url_parts(base_api_url) is None:  # garbled; a URL to a host not allowed is the HostPolicy's to refuse
        raise IicsUnavailable("IICS login answer has an unusable baseApiUrl")
    return Session(session_id=session_id, base_api_url=base_api_url.rstrip("/"))

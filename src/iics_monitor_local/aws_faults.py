"""AWS faults and limits in the local AWS, for every caller: the functions' worker processes (over HTTP)
and this process's own clients (the state machine interpreter, the command line, tests).

``Faults.add("s3", "UploadPart", "SlowDown")`` makes the next call of that operation, whoever makes it,
fail the way the service fails: a function's boto3 meets a real error answer over HTTP (and retries it
as boto3 does), this process's clients a ``ClientError``. A fault may also be a whole answer (e.g. a
PutEvents answer with ``FailedEntryCount > 0``), for JSON services.

Limits: moto accepts what AWS refuses. ``check_limits`` refuses, as AWS does, what the monitor depends
on being refused (GAP limits in stack.py).
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Callable, Iterable
from functools import cache
from html import escape
from typing import Any

import botocore.session
from botocore.client import BaseClient
from botocore.exceptions import ClientError

STATE_DATA_LIMIT_BYTES = 262_144  # Step Functions: an execution's input (and any state's data), UTF-8
# HTTP status of an injected error, as the services answer it (others: 400)
_STATUS = {
    "InternalError": 500,
    "InternalException": 500,
    "InternalFailure": 500,
    "InternalServerError": 500,
    "ServiceException": 500,
    "ServiceUnavailable": 503,
    "SlowDown": 503,
    "TooManyRequestsException": 429,
}
_SIGNING_TO_SERVICE = {"states": "stepfunctions"}  # SigV4 scope name -> botocore service name
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


class LimitExceeded(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def check_limits(service: str, operation: str, params: dict) -> None:
    if service == "stepfunctions" and operation == "StartExecution":
        size = len(str(params.get("input", "")).encode())
        if size > STATE_DATA_LIMIT_BYTES:
            message = f"input of {size} bytes: Member must have length less than or equal to {STATE_DATA_LIMIT_BYTES}"
            raise LimitExceeded("ValidationException", message)


class Faults:
    """(service, operation) -> what the next calls get instead of the service's answer."""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, str], list[dict | str]] = {}
        self._lock = threading.Lock()

    def add(self, service: str, operation: str, fault: dict | str, times: int = 1) -> None:
        with self._lock:
            self._pending.setdefault((service, operation), []).extend([fault] * times)

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()

    def take(self, service: str, operation: str) -> dict | str | None:
        with self._lock:
            pending = self._pending.get((service, operation))
            return pending.pop(0) if pending else None

    # --- this process's clients ----------------------------------------------------------------

    def client_hook(self, original: Callable) -> Callable:
        """A replacement for ``BaseClient._make_api_call``."""

        def make_api_call(client: BaseClient, operation: str, params: dict) -> dict:
            service = client.meta.service_model.service_name
            try:
                check_limits(service, operation, params)
            except LimitExceeded as error:
                raise _client_error(error.code, str(error), operation) from None
            fault = self.take(service, operation)
            if isinstance(fault, dict):
                return fault
            if fault is not None:
                raise _client_error(fault, "injected by the local stack", operation)
            return original(client, operation, params)

        return make_api_call

    # --- the functions' requests, over HTTP ----------------------------------------------------

    def middleware(self, app: Callable) -> Callable:
        """WSGI middleware in front of moto's server."""

        def serve(environ: dict, start_response: Callable) -> Iterable[bytes]:
            found = _operation(environ)
            if found is not None:
                service, operation, protocol, params = found
                try:
                    check_limits(service, operation, params)
                except LimitExceeded as error:
                    return _error_answer(start_response, protocol, error.code, str(error))
                fault = self.take(service, operation)
                if isinstance(fault, dict):
                    return _json_answer(start_response, fault)
                if fault is not None:
                    return _error_answer(start_response, protocol, fault, "injected by the local stack")
            return app(environ, start_response)

        return serve


def _client_error(code: str, message: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {}}, operation)


@cache
def _model(service: str) -> Any:
    return botocore.session.get_session().get_service_model(service)


def protocol_of(signing_name: str) -> str | None:
    """The wire protocol of a service named as in a SigV4 credential scope ("json", "query", ...)."""
    try:
        return _model(_SIGNING_TO_SERVICE.get(signing_name, signing_name)).protocol
    except Exception:  # noqa: BLE001 - a service botocore does not know
        return None


def _body(environ: dict) -> bytes:
    """The request's body, read once and put back for moto. Only JSON and query requests are read (they
    are small); an S3 upload streams through untouched."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    body = stream.read(int(length)) if length else stream.read()  # no length: chunked, ends at its end
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _operation(environ: dict) -> tuple[str, str, str, dict] | None:
    """(service, operation, protocol, params) of a signed request; params only for JSON protocols."""
    scope = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if not scope:
        return None
    service = _SIGNING_TO_SERVICE.get(scope.group(1), scope.group(1))
    protocol = protocol_of(scope.group(1))
    if protocol is None:  # a service botocore does not know: no faults for it
        return None
    model = _model(service)
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        try:
            params = json.loads(_body(environ) or b"{}")
        except ValueError:
            params = {}
        return service, target.rsplit(".", 1)[-1], "json", params
    if protocol == "query":
        action = _form(_body(environ)).get("Action")
        return (service, action, "query", {}) if action else None
    operation = _rest_operation(model, environ)
    return (service, operation, protocol, {}) if operation else None


def _form(body: bytes) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(body.decode("utf-8", "replace")))


def _rest_operation(model: Any, environ: dict) -> str | None:
    """The REST operation whose method and path template match, and whose required query and header
    members are present; the most specific one (PUT /b/k?partNumber&uploadId is UploadPart)."""
    from urllib.parse import parse_qs

    method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
    query = set(parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    headers = {k[5:].replace("_", "-").lower() for k in environ if k.startswith("HTTP_")}
    best, best_score = None, -1
    for name in model.operation_names:
        operation = model.operation_model(name)
        if operation.http.get("method") != method:
            continue
        uri, _, literal_query = operation.http.get("requestUri", "/").partition("?")
        if not _path_matches(uri, path):
            continue
        needed_query = {q.split("=")[0] for q in literal_query.split("&") if q}
        needed_headers = set()
        shape = operation.input_shape
        for member in shape.required_members if shape else []:
            location = shape.members[member].serialization
            if location.get("location") == "querystring":
                needed_query.add(location["name"])
            elif location.get("location") == "header":
                needed_headers.add(location["name"].lower())
        if needed_query <= query and needed_headers <= headers:
            score = len(needed_query) + len(needed_headers)
            if score > best_score:
                best, best_score = name, score
    return best


@cache
def _path_pattern(uri: str) -> re.Pattern:
    pattern = re.sub(r"\\\{[^}]+\\\+\\\}", ".+", re.escape(uri))  # {Key+}: one or more segments
    pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", pattern)
    return re.compile(f"^{pattern}/?$")


def _path_matches(uri: str, path: str) -> bool:
    return bool(_path_pattern(uri).match(path))


def _json_answer(start_response: Callable, answer: dict) -> list[bytes]:
    body = json.dumps({k: v for k, v in answer.items() if k != "ResponseMetadata"}).encode()
    start_response("200 OK", [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body)))])
    return [body]


def _error_answer(start_response: Callable, protocol: str, code: str, message: str) -> list[bytes]:
    status = _STATUS.get(code, 400)
    headers = [("x-amzn-RequestId", "local-fault")]
    if protocol in ("json", "rest-json"):
        body = json.dumps({"__type": code, "message": message}).encode()
        headers += [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code)]
    elif protocol == "query":
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{escape(code)}</Code>"
            f"<Message>{escape(message)}</Message></Error><RequestId>local-fault</RequestId></ErrorResponse>"
        ).encode()
        headers.append(("Content-Type", "text/xml"))
    else:  # rest-xml (S3)
        body = f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>".encode()
        headers.append(("Content-Type", "application/xml"))
    headers.append(("Content-Length", str(len(body))))
    start_response(f"{status} Injected", headers)
    return [body]

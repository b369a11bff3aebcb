"""Typed errors. Raised where they happen; their class names reach Step Functions as error names.

The state machine catches ``MONITOR_ERROR_NAMES`` and turns them into an ERROR outcome; no code
matches on message text. Messages never carry a password, session id or webhook URL: every
error's text is scrubbed (``iics_monitor.scrub``) where the error is made, since it reaches Lambda's
``errorMessage``, the logs, the traces and the outcome's ``reason``.
"""

from __future__ import annotations

from iics_monitor.scrub import scrub


class MonitorError(Exception):
    """Base of every error the monitor raises on purpose."""

    #: Worth another try later in the same run (the poll loop backs off; the archive step retries).
    transient = False

    def __init__(self, message: object = "", *args: object) -> None:
        super().__init__(scrub(message), *args)


class ConfigError(MonitorError):
    """A configuration value (environment variable or secret field) is missing or invalid."""


class InvalidInput(MonitorError):
    """The trigger event or state machine input is malformed."""


class InvalidJobId(InvalidInput):
    """The job id is not a short alphanumeric IICS id."""


class IicsError(MonitorError):
    """IICS answered with an error, or did not answer usefully."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message: str = self.args[0]
        self.status = status
        self.code = scrub(code, 100) if code is not None else None
        self.request_id = scrub(request_id, 100) if request_id is not None else None

    def __str__(self) -> str:
        parts = [self.message]
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.code:
            parts.append(f"code {self.code}")
        if self.request_id:
            parts.append(f"requestId {self.request_id}")
        return " | ".join(parts)


class LoginFailed(IicsError):
    """IICS answered the login with an error that is neither throttling nor a 5xx (a wrong login URL's
    404, say). Never retried."""


class LoginRefused(LoginFailed):
    """IICS refused the credentials (400, 401 or 403 at the login resource), now or earlier with the same
    version of the secret. Never retried with that version anywhere in the stack: repeated refusals
    lock the IICS account (IDS_086)."""


class SessionExpired(IicsError):
    """IICS refused the session id (401) even after one fresh login."""


class AccessDenied(IicsError):
    """IICS answered 403: the user may not read this job."""


class JobNotFound(IicsError):
    """IICS does not know the job (404)."""


class BadRequest(IicsError):
    """IICS rejected the request (400 or another 4xx not covered above)."""


class Throttled(IicsError):
    """IICS or a proxy asked us to slow down (429, 503 or "too many requests")."""

    transient = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class IicsUnavailable(IicsError):
    """A 5xx answer, a network failure, a timeout or a body that is not what IICS sends."""

    transient = True


class NotSent(IicsUnavailable):
    """Nothing reached IICS: the connection failed, or too little time was left to make the request."""


class AnswerLost(IicsUnavailable):
    """The request went out but its whole answer did not come back in time (the request's deadline, a
    stalled read, a reset): IICS may have acted on it."""


class StartUnconfirmed(IicsError):
    """POST /export went out and no answer confirmed or refused it: an export may have started.
    Never retried: a second POST could start a second export."""


class StoreUnavailable(MonitorError):
    """S3 did not take an archive object (after boto3's own retries)."""

    transient = True


def _all_subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_all_subclasses(sub))
    return found


#: Every error name the state machine must turn into an ERROR outcome with a readable message.
MONITOR_ERROR_NAMES = tuple(sorted(c.__name__ for c in [MonitorError, *_all_subclasses(MonitorError)]))

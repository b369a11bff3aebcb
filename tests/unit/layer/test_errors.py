"""errors: every error's text is scrubbed where the error is made, so Lambda's errorMessage, the logs
and an outcome's reason never carry what it quoted."""

from __future__ import annotations

import json
import traceback

import pytest

from iics_monitor.errors import ConfigError, IicsError, InvalidInput, LoginRefused, MonitorError, Throttled

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXBhcnQtb25l"
ECHO = f'could not process: {{"username": "a", "password": "Pw-echoed-9"}}; INFA-SESSION-ID: {JWT}'


def runtime_error_payload(error: Exception) -> dict:
    """What the Lambda runtime makes of an unhandled error: the state machine's Cause."""
    return {
        "errorMessage": str(error),
        "errorType": type(error).__name__,
        "stackTrace": traceback.format_tb(error.__traceback__),
    }


@pytest.mark.parametrize("kind", [MonitorError, ConfigError, InvalidInput, IicsError, LoginRefused, Throttled])
def test_an_errors_message_is_scrubbed_where_it_is_made(kind):
    with pytest.raises(MonitorError) as caught:
        raise kind(ECHO)
    error = caught.value

    for text in (json.dumps(runtime_error_payload(error)), "".join(traceback.format_exception(error)), repr(error)):
        assert "Pw-echoed-9" not in text and "eyJzdWIi" not in text
    assert "could not process" in str(error)


def test_the_iics_fields_of_an_error_are_scrubbed_and_bounded_too():
    error = IicsError(ECHO, status=400, code=f"X {JWT}", request_id="r" * 500)

    assert (error.message, error.code) == (str(error.args[0]), "X [redacted]")
    assert "Pw-echoed-9" not in error.message and len(error.request_id) == 100
    assert "eyJzdWIi" not in str(error)


def test_an_errors_text_is_bounded():
    assert len(str(ConfigError("x" * 50_000))) == 1000

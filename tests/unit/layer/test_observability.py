"""observability: the one Logger scrubs every record it writes: message, extra keys and exceptions."""

from __future__ import annotations

import json

from iics_monitor.observability import logger

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXBhcnQtb25l"
PASSWORD = 'Pw "with" \\ quotes'


def test_a_token_in_a_log_records_keys_is_removed(warnings_logged):
    logger.warning("IICS answered", extra={"answer": f"session {JWT}", "body": {"INFA-SESSION-ID": JWT}})

    (line,) = warnings_logged()
    assert "eyJzdWIi" not in json.dumps(line) and line["answer"] == "session [redacted]"


def test_a_log_record_keeps_no_secret_in_its_message_or_its_keys(warnings_logged):
    from iics_monitor.scrub import remember  # here: the other tests need no registry

    remember(PASSWORD)

    logger.warning(f"refused {PASSWORD}", extra={"answer": f"session {JWT}", "body": {"password": PASSWORD}})

    (line,) = warnings_logged()
    written = json.dumps(line)
    assert "eyJzdWIi" not in written and "with" not in written
    assert line["message"] == "refused [redacted]" and line["answer"] == "session [redacted]"


def test_a_logged_exception_keeps_no_secret(warnings_logged):
    try:
        raise ValueError(f"not a monitor error: Authorization: Bearer {JWT}")
    except ValueError:
        logger.exception("unexpected")

    (line,) = warnings_logged()
    assert "eyJzdWIi" not in json.dumps(line) and "ValueError" in line["exception"]


def test_a_log_line_stays_json_when_a_secret_ends_in_a_backslash(warnings_logged):
    from iics_monitor.scrub import remember

    remember("ends-in-\\")

    logger.info("tried ends-in-\\ once")

    (line,) = warnings_logged()
    assert line["message"] == "tried [redacted] once"

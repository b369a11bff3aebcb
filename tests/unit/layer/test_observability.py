"""observability: the one Logger scrubs every record it writes: message, extra keys and exceptions."""

from __future__ import annotations

import json

import pytest

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


# --- Observability=Minimal: the functions publish the outcome metrics only ---------------------------


def published(monkeypatch, mode: str | None) -> set[str]:
    from iics_monitor.observability import metrics

    if mode is None:
        monkeypatch.delenv("OBSERVABILITY", raising=False)
    else:
        monkeypatch.setenv("OBSERVABILITY", mode)
    metrics.add_metric(name="Polls", unit="Count", value=1)
    metrics.add_metric(name="OutcomeFailed", unit="Count", value=1, minimal=True)
    (directive,) = metrics.serialize_metric_set()["_aws"]["CloudWatchMetrics"]
    return {m["Name"] for m in directive["Metrics"]}


def test_minimal_publishes_only_the_metrics_marked_minimal(monkeypatch):
    assert published(monkeypatch, "Minimal") == {"OutcomeFailed"}


def test_full_publishes_every_metric(monkeypatch):
    assert published(monkeypatch, "Full") == {"Polls", "OutcomeFailed"}


def test_without_the_variable_every_metric_is_published(monkeypatch):
    # Outside the stack (the handlers run by hand, the integration tests) nothing is held back.
    assert published(monkeypatch, None) == {"Polls", "OutcomeFailed"}


def test_an_unknown_mode_names_the_variable(monkeypatch):
    with pytest.raises(ValueError, match="OBSERVABILITY must be Full or Minimal, not 'Some'"):
        published(monkeypatch, "Some")

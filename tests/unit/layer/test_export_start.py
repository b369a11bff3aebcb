"""export_start: a start-export request becomes a started IICS job to watch, or an ERROR decision
with the IICS error code; bad input never reaches IICS. The real client talks to the emulator."""

from __future__ import annotations

import json

import pytest

from iics_monitor.config import ExportConfig
from iics_monitor.errors import BadRequest, InvalidInput, Throttled
from iics_monitor.export_start import START_ATTEMPTS, start_export
from iics_monitor.status import REASON_LIMIT
from iics_monitor.validation import MAX_EXPORT_OBJECTS, MonitorSettings, parse_export_spec
from iics_monitor_local.emulator import _CODE_INJECTED, Fault

CONFIG = ExportConfig(
    secret_name="iics/export-monitor",
    defaults=MonitorSettings(initial_wait_seconds=2, max_wait_seconds=600, timeout_seconds=3600),
)
OBJECT_A, OBJECT_B = "aeOwrk0r6cBkkVz3RuTQ0i", "2cLZX4UWrJ6kpB4oqZp1dP"


def started(client, request: dict, sleeps: list | None = None) -> dict:
    return start_export(
        {"request": request}, source=client, config=CONFIG, sleep=(sleeps if sleeps is not None else []).append
    )


# --- the request ------------------------------------------------------------------------------------------------------


def test_an_export_spec_is_parsed_into_the_body_iics_takes():
    spec = parse_export_spec({"name": "nightly", "objects": [{"id": OBJECT_A, "includeDependencies": False}]})

    assert spec.to_body() == {"name": "nightly", "objects": [{"id": OBJECT_A, "includeDependencies": False}]}
    assert parse_export_spec({"objects": [{"id": OBJECT_B}]}).to_body() == {"objects": [{"id": OBJECT_B}]}


@pytest.mark.parametrize(
    "export",
    [
        None,
        [],
        {"objects": []},
        {"objects": [{"id": OBJECT_A}] * (MAX_EXPORT_OBJECTS + 1)},
        {"objects": [{"id": "../../login"}]},
        {"objects": [{"id": OBJECT_A, "includeDependencies": "yes"}]},
        {"objects": [{"id": OBJECT_A, "path": "/x"}]},
        {"objects": [OBJECT_A]},
        {"objects": [{"id": OBJECT_A}], "name": "bad\nname"},
        {"objects": [{"id": OBJECT_A}], "format": "zip"},
    ],
)
def test_a_bad_export_spec_is_invalid_input(export):
    with pytest.raises(InvalidInput):
        parse_export_spec(export)


def test_a_thousand_objects_are_accepted():
    assert len(parse_export_spec({"objects": [{"id": OBJECT_A}] * MAX_EXPORT_OBJECTS}).objects) == 1000


# --- starting ---------------------------------------------------------------------------------------------------------


def test_an_export_is_started_and_the_request_becomes_the_job_to_watch(emulator, client):
    request = {
        "export": {"name": "nightly", "objects": [{"id": OBJECT_A}, {"id": OBJECT_B}]},
        "monitor": {"timeoutSeconds": 60},
        "ticket": "CHG-1",
    }

    result = started(client, request)

    (post,) = [r for r in emulator.requests if r.route == "export"]
    assert json.loads(post.body) == {"name": "nightly", "objects": [{"id": OBJECT_A}, {"id": OBJECT_B}]}
    job_id = result["request"]["jobId"]
    assert result == {
        "outcome": None,
        "request": {"jobId": job_id, "name": "nightly", "monitor": {"timeoutSeconds": 60}, "ticket": "CHG-1"},
        "export": {"objects": 2},
    }
    assert client.get_status(job_id)["name"] == "nightly"  # IICS knows the new job


@pytest.mark.parametrize(
    "request_",
    [
        {"export": {"objects": [{"id": OBJECT_A}] * (MAX_EXPORT_OBJECTS + 1)}},
        {"export": {"objects": [{"id": "a/b"}]}},
        {"export": {"objects": [{"id": OBJECT_A}]}, "monitor": {"timeoutSeconds": -1}},
        {"export": {"objects": [{"id": OBJECT_A}]}, "jobId": OBJECT_B},
        "not an object",
    ],
)
def test_bad_input_is_an_error_decision_and_iics_sees_nothing(emulator, client, request_):
    result = started(client, request_)

    assert (result["outcome"], result["errorType"], result["iicsErrorCode"]) == ("ERROR", "InvalidInput", None)
    assert result["reason"].startswith("the export did not start: ")
    assert emulator.requests == []


def test_an_iics_refusal_is_an_error_decision_with_the_iics_error_code(emulator, client):
    emulator.add_fault(Fault(route="export", status=403))

    result = started(client, {"export": {"objects": [{"id": OBJECT_A}]}})

    assert (result["outcome"], result["errorType"], result["iicsErrorCode"]) == (
        "ERROR",
        "AccessDenied",
        _CODE_INJECTED,
    )
    assert f"code {_CODE_INJECTED}" in result["reason"]


def test_throttling_is_retried_because_no_job_was_started(emulator, client):
    emulator.add_fault(Fault(route="export", status=429, retry_after=3, times=2))
    sleeps: list[float] = []

    result = started(client, {"export": {"objects": [{"id": OBJECT_A}]}}, sleeps)

    assert result["outcome"] is None
    assert sleeps == [3, 3]
    assert [r.status for r in emulator.requests if r.route == "export"] == [429, 429, 200]


def test_throttling_that_does_not_stop_ends_in_an_error_decision(emulator, client):
    emulator.add_fault(Fault(route="export", status=429, times=None))

    result = started(client, {"export": {"objects": [{"id": OBJECT_A}]}})

    assert result["errorType"] == Throttled.__name__
    assert len([r for r in emulator.requests if r.route == "export"]) == START_ATTEMPTS


def test_a_server_error_is_not_retried_since_a_job_may_exist(emulator, client):
    emulator.add_fault(Fault(route="export", status=502, html=True))

    result = started(client, {"export": {"objects": [{"id": OBJECT_A}]}})

    assert result["errorType"] == "StartUnconfirmed"
    assert "an export may have started; check IICS before retrying" in result["reason"]
    assert len([r for r in emulator.requests if r.route == "export"]) == 1


class RefusingStarter:
    """IICS refusing the export with the longest error text the client keeps, and every field besides."""

    def start_export(self, spec):
        raise BadRequest("x" * 1000, status=400, code="MigrationSvc_001", request_id="r" * 300)


def test_a_refusal_reason_is_bounded_like_every_other_reason():
    decision = start_export(
        {"request": {"export": {"objects": [{"id": OBJECT_A}]}}}, source=RefusingStarter(), config=CONFIG
    )

    assert decision["outcome"] == "ERROR" and decision["reason"].startswith("the export did not start: xxx")
    assert len(json.dumps(decision["reason"])) - 2 <= REASON_LIMIT

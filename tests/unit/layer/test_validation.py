"""validation: untrusted job ids, trigger events and monitor overrides become typed values or typed errors."""

from __future__ import annotations

import pytest

from iics_monitor.errors import InvalidInput, InvalidJobId
from iics_monitor.validation import ExportRequest, MonitorSettings, parse_announcement, parse_job_id, parse_request
from tests.conftest import load_event

DEFAULTS = MonitorSettings(initial_wait_seconds=10, max_wait_seconds=120, timeout_seconds=3600)
JOB_ID = "7evG9CokA1whk8ehF3opKM"
HUGE = "A" * 100_000


# --- job ids ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("job_id", [JOB_ID, "a", "0", "Z" * 64, "abcXYZ0189"])
def test_an_alphanumeric_job_id_of_1_to_64_characters_is_accepted(job_id):
    assert parse_job_id(job_id) == job_id


@pytest.mark.parametrize(
    "job_id",
    [
        pytest.param("../x", id="path-traversal"),
        pytest.param("..", id="dot-dot"),
        pytest.param("a/b", id="slash"),
        pytest.param("a\\b", id="backslash"),
        pytest.param("%2e%2e", id="url-encoded-dot-dot"),
        pytest.param("abc%2Fdef", id="url-encoded-slash"),
        pytest.param("abc?expand=objects", id="query"),
        pytest.param("abc#frag", id="fragment"),
        pytest.param("Z" * 65, id="65-characters"),
        pytest.param(HUGE, id="100k-characters"),
        pytest.param("jöb", id="latin-unicode"),
        pytest.param("ｊｏｂ１", id="fullwidth-unicode"),
        pytest.param("١٢٣", id="arabic-indic-digits"),
        pytest.param("abc\n", id="trailing-newline"),
        pytest.param(" abc", id="leading-space"),
        pytest.param("abc def", id="inner-space"),
        pytest.param("", id="empty"),
    ],
)
def test_a_job_id_that_is_not_plain_ascii_letters_and_digits_is_rejected(job_id):
    with pytest.raises(InvalidJobId, match="jobId must be 1-64 letters and digits"):
        parse_job_id(job_id)


@pytest.mark.parametrize("value", [None, 123, 1.5, True, b"abc", ["abc"], {"id": "abc"}])
def test_a_job_id_that_is_not_a_string_is_rejected(value):
    with pytest.raises(InvalidJobId):
        parse_job_id(value)


def test_an_invalid_job_id_is_an_invalid_input_too():
    """The state machine may catch the broader InvalidInput; InvalidJobId must be one."""
    with pytest.raises(InvalidInput):
        parse_job_id("../x")


def test_the_error_for_a_huge_job_id_does_not_echo_it():
    with pytest.raises(InvalidJobId) as caught:
        parse_job_id(HUGE)

    message = str(caught.value)
    assert len(message) < 120
    assert "AAAA" in message  # enough of the value to recognise it


def test_the_error_for_a_bad_job_id_shows_the_value():
    with pytest.raises(InvalidJobId) as caught:
        parse_job_id("../x")

    assert "'../x'" in str(caught.value)


# --- requests ---------------------------------------------------------------------------------------------------------


def test_a_bare_input_gets_the_default_settings():
    request = parse_request(load_event("bare-input.json"), DEFAULTS)

    assert request == ExportRequest(job_id=JOB_ID, name=None, settings=DEFAULTS)


def test_the_trigger_events_detail_overrides_every_monitor_setting():
    request = parse_request(load_event("trigger.json")["detail"], DEFAULTS)

    assert request.job_id == JOB_ID
    assert request.name == "testJob1"
    assert request.settings == MonitorSettings(initial_wait_seconds=15, max_wait_seconds=300, timeout_seconds=21600)


def test_a_partial_monitor_override_keeps_the_other_defaults():
    request = parse_request({"jobId": JOB_ID, "monitor": {"timeoutSeconds": 60}}, DEFAULTS)

    assert request.settings == MonitorSettings(initial_wait_seconds=10, max_wait_seconds=120, timeout_seconds=60)


def test_a_null_monitor_means_the_defaults():
    assert parse_request({"jobId": JOB_ID, "monitor": None}, DEFAULTS).settings == DEFAULTS


def test_settings_serialise_with_the_event_field_names():
    assert DEFAULTS.to_dict() == {"initialWaitSeconds": 10, "maxWaitSeconds": 120, "timeoutSeconds": 3600}


@pytest.mark.parametrize("raw", [None, "7evG9CokA1whk8ehF3opKM", ["jobId"], 42])
def test_an_input_that_is_not_an_object_is_rejected(raw):
    with pytest.raises(InvalidInput, match="input must be an object with a jobId"):
        parse_request(raw, DEFAULTS)


def test_an_input_without_a_job_id_is_rejected():
    with pytest.raises(InvalidInput, match="input has no jobId"):
        parse_request({"name": "x"}, DEFAULTS)


def test_an_input_with_a_bad_job_id_is_rejected_as_invalid_job_id():
    with pytest.raises(InvalidJobId):
        parse_request({"jobId": "../../etc/passwd"}, DEFAULTS)


@pytest.mark.parametrize("name", ["x" * 256, 42, "tab\there", "new\nline"])
def test_a_name_that_is_long_not_text_or_unprintable_is_rejected(name):
    with pytest.raises(InvalidInput, match="name must be printable text of at most 255 characters"):
        parse_request({"jobId": JOB_ID, "name": name}, DEFAULTS)


def test_a_name_of_255_printable_characters_is_accepted():
    assert parse_request({"jobId": JOB_ID, "name": "é" * 255}, DEFAULTS).name == "é" * 255


# --- monitor overrides: bounds and types ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("initialWaitSeconds", 1),
        ("maxWaitSeconds", 3600),
        ("timeoutSeconds", 1),
        ("timeoutSeconds", 30 * 24 * 3600),
    ],
)
def test_values_on_the_bounds_are_accepted(field, value):
    overrides = {"initialWaitSeconds": 1, field: value}

    settings = parse_request({"jobId": JOB_ID, "monitor": overrides}, DEFAULTS).settings

    assert settings.to_dict()[field] == value


@pytest.mark.parametrize(
    ("field", "value", "bounds"),
    [
        ("initialWaitSeconds", -1, "from 1 to 3600"),
        ("initialWaitSeconds", 3601, "from 1 to 3600"),
        ("maxWaitSeconds", 3601, "from 1 to 3600"),
        ("timeoutSeconds", 0, "from 1 to 2592000"),
        ("timeoutSeconds", 30 * 24 * 3600 + 1, "from 1 to 2592000"),
        ("timeoutSeconds", 10**100, "from 1 to 2592000"),
    ],
)
def test_values_outside_the_bounds_are_rejected_with_the_field_and_bounds(field, value, bounds):
    with pytest.raises(InvalidInput) as caught:
        parse_request({"jobId": JOB_ID, "monitor": {field: value}}, DEFAULTS)

    assert str(caught.value) == f"monitor.{field} must be a whole number {bounds}"


# --- monitor overrides: a request cannot make the monitor hot ---------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"initialWaitSeconds": 0, "maxWaitSeconds": 0}, "initialWaitSeconds"),
        ({"initialWaitSeconds": 0}, "initialWaitSeconds"),
        ({"maxWaitSeconds": 0}, "maxWaitSeconds"),
    ],
)
def test_a_request_asking_for_waits_under_1_s_is_refused_with_the_field_and_range(overrides, field):
    with pytest.raises(InvalidInput) as caught:
        parse_request({"jobId": JOB_ID, "monitor": overrides}, DEFAULTS)

    assert str(caught.value) == f"monitor.{field} must be a whole number from 1 to 3600"


def test_a_start_export_request_has_the_same_floors():
    export = {"objects": [{"id": JOB_ID}]}

    with pytest.raises(InvalidInput, match="monitor.maxWaitSeconds must be a whole number from 1 to 3600"):
        parse_announcement({"export": export, "monitor": {"maxWaitSeconds": 0}}, DEFAULTS)


def test_a_short_timeout_has_no_floor_above_its_range_it_only_ends_the_watch_sooner():
    assert parse_request({"jobId": JOB_ID, "monitor": {"timeoutSeconds": 1}}, DEFAULTS).settings.timeout_seconds == 1


def test_the_operators_own_0_s_waits_hold_and_read_back_from_the_execution_unchanged():
    # Given a stack deployed with InitialWaitSeconds=0 (tests do, for speed)
    fast = MonitorSettings(initial_wait_seconds=0, max_wait_seconds=1, timeout_seconds=60)

    # the execution carries the resolved settings, and each function parses them again
    request = parse_request({"jobId": JOB_ID}, fast)
    assert parse_request(request.to_dict(), fast) == request
    assert request.settings.initial_wait_seconds == 0
    # but a request still cannot ask for a 0 s wait the operator did not set
    with pytest.raises(InvalidInput, match="monitor.maxWaitSeconds must be a whole number from 1 to 3600"):
        parse_request({"jobId": JOB_ID, "monitor": {"maxWaitSeconds": 0}}, fast)


def test_the_operators_parameters_keep_their_ranges_without_the_floors():
    assert DEFAULTS.configured({"initialWaitSeconds": 0, "maxWaitSeconds": 0}).to_dict() == {
        "initialWaitSeconds": 0,
        "maxWaitSeconds": 0,
        "timeoutSeconds": 3600,
    }


@pytest.mark.parametrize("value", [True, False, 1.5, 10.0, "10", None, [10]])
def test_a_wait_that_is_not_a_whole_number_is_rejected_bools_included(value):
    with pytest.raises(InvalidInput, match=r"monitor\.initialWaitSeconds must be a whole number"):
        parse_request({"jobId": JOB_ID, "monitor": {"initialWaitSeconds": value}}, DEFAULTS)


def test_max_wait_below_initial_wait_is_rejected():
    overrides = {"initialWaitSeconds": 60, "maxWaitSeconds": 30}

    with pytest.raises(InvalidInput, match="maxWaitSeconds must not be less than monitor.initialWaitSeconds"):
        parse_request({"jobId": JOB_ID, "monitor": overrides}, DEFAULTS)


def test_an_initial_wait_above_the_default_max_wait_is_rejected():
    with pytest.raises(InvalidInput, match="must not be less than"):
        parse_request({"jobId": JOB_ID, "monitor": {"initialWaitSeconds": DEFAULTS.max_wait_seconds + 1}}, DEFAULTS)


def test_unknown_monitor_fields_are_rejected_by_name():
    with pytest.raises(InvalidInput) as caught:
        parse_request({"jobId": JOB_ID, "monitor": {"pollEvery": 5, "timeoutSeconds": 60}}, DEFAULTS)

    assert str(caught.value) == "monitor has unknown fields: 'pollEvery'"


def test_the_error_for_many_huge_unknown_fields_stays_short():
    overrides = {f"{i}{HUGE}": 1 for i in range(50)}

    with pytest.raises(InvalidInput) as caught:
        parse_request({"jobId": JOB_ID, "monitor": overrides}, DEFAULTS)

    assert len(str(caught.value)) < 400


@pytest.mark.parametrize("monitor", ["fast", 5, ["timeoutSeconds"]])
def test_a_monitor_that_is_not_an_object_is_rejected(monitor):
    with pytest.raises(InvalidInput, match="monitor must be an object"):
        parse_request({"jobId": JOB_ID, "monitor": monitor}, DEFAULTS)


def test_the_error_for_a_huge_bad_wait_does_not_echo_it():
    with pytest.raises(InvalidInput) as caught:
        parse_request({"jobId": JOB_ID, "monitor": {"initialWaitSeconds": HUGE}}, DEFAULTS)

    assert HUGE[:100] not in str(caught.value)

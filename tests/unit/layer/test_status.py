"""status: IICS state values normalised, and the export status body parsed (the page's own examples)."""

from __future__ import annotations

import pytest

from iics_monitor.status import ExportObject, JobState, JobStatus, StateReading, read_state, text
from iics_monitor_local import reference

# --- state values -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("SUCCESSFUL", JobState.SUCCESSFUL),
        ("SUCCESS", JobState.SUCCESSFUL),
        ("Success", JobState.SUCCESSFUL),
        ("successful", JobState.SUCCESSFUL),
        ("FAILED", JobState.FAILED),
        ("Failed", JobState.FAILED),
        (" FAILED ", JobState.FAILED),
        ("ERROR", JobState.FAILED),
        ("CANCELLED", JobState.FAILED),
        ("Canceled", JobState.FAILED),
        ("ABORTED", JobState.FAILED),
        ("STOPPED", JobState.FAILED),
        ("IN_PROGRESS", JobState.RUNNING),
        ("In Progress", JobState.RUNNING),
        ("IN PROGRESS", JobState.RUNNING),
        ("NOT_STARTED", JobState.RUNNING),
        ("QUEUED", JobState.RUNNING),
        ("STARTING", JobState.RUNNING),
    ],
)
def test_known_state_values_are_normalised_without_a_warning(raw, expected, warnings_logged):
    assert read_state(raw, "a message", end_time=None) == StateReading(expected)
    assert warnings_logged() == []


@pytest.mark.parametrize(
    "raw", ["WARNING", "WARNINGS", "PARTIAL_SUCCESS", "Partial Success", "COMPLETED_WITH_WARNINGS"]
)
def test_a_success_with_warnings_is_successful_and_says_what_iics_reported(raw, warnings_logged):
    reading = read_state(raw, "Export completed with errors.", end_time="2026-11-28T09:00:00.000Z")

    assert reading == StateReading(JobState.SUCCESSFUL, warning=f"IICS reported {raw}: Export completed with errors.")
    assert warnings_logged() == []


def test_a_warning_without_a_message_names_the_state_alone():
    assert read_state("WARNING", None, end_time=None).warning == "IICS reported WARNING"


@pytest.mark.parametrize("raw", ["PAUSED", "Exploding", "", None, 7, {"state": "SUCCESSFUL"}])
def test_an_unknown_state_without_an_end_time_counts_as_running_and_is_logged_raw(raw, warnings_logged):
    assert read_state(raw, None, end_time=None) == StateReading(JobState.RUNNING)

    [line] = warnings_logged()
    assert line["level"] == "WARNING"
    assert line["message"] == "Unknown IICS state; treating it as running"
    assert line["iicsState"] == repr(raw)


@pytest.mark.parametrize("raw", ["PAUSED", "", None])
def test_an_unknown_state_with_an_end_time_is_a_failure_that_names_the_raw_state(raw, warnings_logged):
    reading = read_state(raw, None, end_time="2026-11-28T09:00:00.000Z")

    assert reading.state is JobState.FAILED and reading.warning is None
    assert repr(raw) in reading.note and "endTime" in reading.note
    [line] = warnings_logged()
    assert line["message"] == "Unknown IICS state with endTime set; reporting FAILED"


@pytest.mark.parametrize("raw", ["IN_PROGRESS", "QUEUED", "NOT_STARTED"])
def test_a_running_state_with_an_end_time_has_ended_and_is_a_failure(raw):
    reading = read_state(raw, "In Progress.", end_time="2026-11-28T09:00:00.000Z")

    assert reading.state is JobState.FAILED
    assert raw in reading.note and "endTime" in reading.note


@pytest.mark.parametrize("raw", ["SUCCESSFUL", "FAILED", "PARTIAL_SUCCESS"])
def test_an_end_time_does_not_change_a_known_end(raw):
    ended = read_state(raw, "m", end_time="2026-11-28T09:00:00.000Z")

    assert ended == read_state(raw, "m", end_time=None)
    assert ended.note is None


@pytest.mark.parametrize("end_time", [None, ""])
def test_an_empty_end_time_is_no_end(end_time):
    assert read_state("IN_PROGRESS", None, end_time=end_time).state is JobState.RUNNING


def test_a_huge_unknown_state_is_logged_bounded(warnings_logged):
    read_state("X" * 100_000, None, end_time=None)

    [line] = warnings_logged()
    assert line["iicsState"].startswith("'XXX")
    assert len(line["iicsState"]) <= 100


@pytest.mark.parametrize(
    ("state", "terminal"),
    [(JobState.SUCCESSFUL, True), (JobState.FAILED, True), (JobState.RUNNING, False)],
)
def test_only_successful_and_failed_are_terminal(state, terminal):
    assert state.terminal is terminal


# --- the reference page's examples ------------------------------------------------------------------------------------


def test_the_pages_in_progress_example_parses_as_running():
    status = JobStatus.parse(reference.STATUS_IN_PROGRESS)

    assert status == JobStatus(
        name="testJob1",
        raw_state="IN_PROGRESS",
        state=JobState.RUNNING,
        message="In Progress.",
        start_time="2017-10-26T08:15:48.501Z",
        end_time=None,
        objects=(),
    )
    assert status.duration_seconds is None


def test_the_pages_expanded_example_parses_as_successful_with_thirteen_objects():
    status = JobStatus.parse(reference.STATUS_SUCCESSFUL_WITH_OBJECTS)

    assert (status.name, status.raw_state, status.state) == ("testJob1", "SUCCESSFUL", JobState.SUCCESSFUL)
    assert status.message == "Export completed successfully."
    assert (status.start_time, status.end_time) == ("2017-10-26T08:15:49.000Z", "2017-10-26T08:15:50.000Z")
    assert status.duration_seconds == 1.0
    assert len(status.objects) == 13
    assert {o.state for o in status.objects} == {JobState.SUCCESSFUL}
    assert [o.id for o in status.objects] == [o["id"] for o in reference.STATUS_SUCCESSFUL_WITH_OBJECTS["objects"]]


def test_a_status_whose_end_time_is_set_has_ended_whatever_its_state_word():
    body = reference.STATUS_SUCCESSFUL_WITH_OBJECTS | {"status": {"state": "ARCHIVED", "message": "Done."}}

    status = JobStatus.parse(body)

    assert (status.state, status.raw_state, status.warning) == (JobState.FAILED, "ARCHIVED", None)
    assert "'ARCHIVED'" in status.note


def test_a_partial_success_parses_as_successful_with_its_warning():
    body = reference.STATUS_SUCCESSFUL_WITH_OBJECTS | {
        "status": {"state": "PARTIAL_SUCCESS", "message": "Export completed with errors."}
    }

    status = JobStatus.parse(body)

    assert (status.state, status.raw_state) == (JobState.SUCCESSFUL, "PARTIAL_SUCCESS")
    assert status.warning == "IICS reported PARTIAL_SUCCESS: Export completed with errors."
    assert status.note is None


def test_an_object_keeps_its_id_name_path_type_and_message():
    status = JobStatus.parse(reference.STATUS_SUCCESSFUL_WITH_OBJECTS)

    assert status.objects[0] == ExportObject(
        id="1MW0GDAE1sFgnvWkvom7mK",
        name="Linear Taskflow",
        path="/ICS Taskflow",
        type="SAAS_LINEAR_TASKFLOW",
        state=JobState.SUCCESSFUL,
        message=None,
    )
    connection = next(o for o in status.objects if o.type == "SAAS_CONNECTION")
    assert connection.to_dict() == {
        "id": "hGrgtrajWMUjNIsnLKQCAi",
        "name": "SQL Server Linux",
        "path": None,
        "type": "SAAS_CONNECTION",
        "message": None,
    }


def test_per_object_states_use_the_same_vocabulary_without_a_warning_each(warnings_logged):
    body = {
        "status": {"state": "FAILED"},
        "objects": [
            {"id": "a", "status": {"state": "Success"}},
            {"id": "b", "status": {"state": "FAILED", "message": "Object is locked."}},
            {"id": "c", "status": {"state": "IN PROGRESS"}},
            {"id": "d", "status": {"state": "WEIRD"}},
            {"id": "e"},
            {"id": "f", "status": {"state": "ERROR"}},
            {"id": "g", "status": {"state": "WARNING"}},
        ],
    }

    status = JobStatus.parse(body)

    assert [o.state for o in status.objects] == [
        JobState.SUCCESSFUL,
        JobState.FAILED,
        JobState.RUNNING,
        JobState.RUNNING,
        JobState.RUNNING,
        JobState.FAILED,
        JobState.SUCCESSFUL,
    ]
    assert status.objects[1].message == "Object is locked."
    assert warnings_logged() == []


# --- defensive parsing ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"status": None, "objects": None},
        {"status": "SUCCESSFUL", "objects": "lots"},
        {"status": [], "objects": {"id": "x"}},
    ],
)
def test_a_body_without_usable_status_or_objects_parses_as_running_with_no_objects(body):
    status = JobStatus.parse(body)

    assert status.state is JobState.RUNNING
    assert status.raw_state is None
    assert status.objects == ()


def test_objects_that_are_not_objects_are_skipped():
    status = JobStatus.parse({"status": {"state": "SUCCESSFUL"}, "objects": [None, "x", 3, {"id": "ok"}]})

    assert [o.id for o in status.objects] == ["ok"]


def test_long_iics_strings_are_bounded():
    body = {
        "name": "n" * 10_000,
        "status": {"state": "S" * 10_000, "message": "m" * 10_000},
        "startTime": "t" * 10_000,
        "objects": [{"id": "i" * 10_000, "name": "o" * 10_000, "type": "T" * 10_000}],
    }

    status = JobStatus.parse(body)

    assert (len(status.name), len(status.raw_state), len(status.message), len(status.start_time)) == (500, 100, 500, 40)
    assert (len(status.objects[0].id), len(status.objects[0].name), len(status.objects[0].type)) == (100, 500, 100)


@pytest.mark.parametrize(
    ("start", "end", "seconds"),
    [
        ("2021-09-26T09:06:39.017Z", "2021-09-26T09:06:40.101Z", 1.084),
        ("2021-09-26T09:06:39.898Z", "2021-09-26T09:16:39.000Z", 599.102),  # precision varies (observed)
        ("2021-09-26T09:06:39Z", "2021-09-26T10:06:39Z", 3600.0),
        ("2021-09-26T09:06:39.000Z", None, None),
        (None, "2021-09-26T09:06:39.000Z", None),
        ("yesterday", "2021-09-26T09:06:39.000Z", None),
        (12345, 12346, None),
    ],
)
def test_duration_comes_from_start_and_end_time(start, end, seconds):
    status = JobStatus.parse({"status": {"state": "SUCCESSFUL"}, "startTime": start, "endTime": end})

    assert status.duration_seconds == seconds


def test_a_timestamp_without_a_zone_does_not_crash_the_duration():
    status = JobStatus.parse(
        {"status": {"state": "SUCCESSFUL"}, "startTime": "2017-10-26T08:15:49.000Z", "endTime": "2017-10-26T08:15:50"}
    )

    assert status.duration_seconds in (None, 1.0)


def test_text_removes_a_token_before_it_bounds_the_length():
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9." + "s" * 600

    assert text(f"session {jwt} expired", 30) == "session [redacted] expired"

"""check: one poll of an export job, and what the state machine should do next."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from iics_monitor.check import MAX_CONSECUTIVE_TRANSIENT_ERRORS, Invocation, check_job, check_or_report
from iics_monitor.client import SESSION_HEADER
from iics_monitor.config import CheckConfig
from iics_monitor.errors import (
    IicsUnavailable,
    InvalidInput,
    InvalidJobId,
    JobNotFound,
    LoginFailed,
    SessionExpired,
    Throttled,
)
from iics_monitor.validation import MonitorSettings
from iics_monitor_local import reference
from iics_monitor_local.emulator import REFERENCE_JOB_ID, Fault

JOB_ID = REFERENCE_JOB_ID
CONFIG = CheckConfig(
    secret_name="iics/export-monitor",
    defaults=MonitorSettings(initial_wait_seconds=10, max_wait_seconds=120, timeout_seconds=3600),
    max_polls=500,
)
STARTED = datetime(2026, 11, 28, 9, 0, 0, tzinfo=UTC)
SOON = STARTED + timedelta(seconds=30)
DEADLINE = STARTED + timedelta(seconds=3600)
RUNNING = reference.STATUS_IN_PROGRESS
SUCCESSFUL = reference.STATUS_SUCCESSFUL_WITH_OBJECTS | {"objects": None}
FAILED = RUNNING | {"endTime": "2017-10-26T08:16:00.000Z", "status": {"state": "FAILED", "message": "Export failed."}}


class FakeStatusSource:
    """Answers get_status from a script of bodies and errors, and records each call."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, bool]] = []

    def get_status(self, job_id: str, *, expand_objects: bool = False) -> dict:
        self.calls.append((job_id, expand_objects))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def event(poll: dict | None = None, request: dict | None = None, started_at: str = "2026-11-28T09:00:00Z") -> dict:
    return {
        "request": request if request is not None else {"jobId": JOB_ID},
        "poll": poll if poll is not None else {"polls": 0, "transientErrors": 0},
        "startedAt": started_at,
    }


def check(source, now=SOON, **kwargs) -> dict:
    return check_job(event(**kwargs), source=source, config=CONFIG, now=now)


# --- the job is running -----------------------------------------------------------------------------------------------


def test_a_running_job_means_wait_and_poll_again():
    source = FakeStatusSource(RUNNING)

    result = check(source)

    assert source.calls == [(JOB_ID, False)]
    assert result == {
        "jobId": JOB_ID,
        "jobName": "testJob1",
        "state": "RUNNING",
        "iicsState": "IN_PROGRESS",
        "message": "In Progress.",
        "terminal": False,
        "outcome": None,
        "reason": None,
        "nextWaitSeconds": 10,
        "polls": 1,
        "maxPolls": 500,
        "deadline": "2026-11-28T10:00:00+00:00",
        "transientErrors": 0,
        "lastError": None,
        "settings": {"initialWaitSeconds": 10, "maxWaitSeconds": 120, "timeoutSeconds": 3600},
        "jobStartTime": "2017-10-26T08:15:48.501Z",
        "jobEndTime": None,
        "warning": None,
        "expectedSeconds": None,
        "historyChecked": False,
    }


@pytest.mark.parametrize(("age", "wait"), [(30, 10), (500, 52), (800, 83), (2000, 120)])
def test_the_wait_grows_with_the_jobs_age_up_to_the_cap(age, wait):
    result = check(
        FakeStatusSource(RUNNING), now=STARTED + timedelta(seconds=age), poll={"polls": 4, "transientErrors": 0}
    )

    assert (result["polls"], result["nextWaitSeconds"]) == (5, wait)


def test_the_jobs_own_start_time_gives_its_age_when_iics_reports_one():
    started_earlier = RUNNING | {"startTime": "2026-11-28T08:52:10.000Z"}  # 500 s before SOON

    assert check(FakeStatusSource(started_earlier))["nextWaitSeconds"] == 52


@pytest.mark.parametrize("start_time", ["2026-11-28T10:00:00Z", "2017-10-26T08:15:48.501Z", "not a time", None])
def test_an_unusable_job_start_time_falls_back_to_the_monitors_start(start_time):
    # in the future (clock skew), far older than the monitor, unreadable or absent
    assert check(FakeStatusSource(RUNNING | {"startTime": start_time}))["nextWaitSeconds"] == 10


def test_the_wait_stops_at_the_deadline():
    result = check(FakeStatusSource(RUNNING), now=DEADLINE - timedelta(seconds=4))

    assert result["nextWaitSeconds"] == 4
    assert result["outcome"] is None


def test_the_requests_monitor_settings_drive_the_wait_and_the_deadline():
    request = {"jobId": JOB_ID, "name": "nightly", "monitor": {"initialWaitSeconds": 45, "timeoutSeconds": 600}}

    result = check(FakeStatusSource(RUNNING | {"name": None}), request=request)

    assert result["nextWaitSeconds"] == 45
    assert result["deadline"] == "2026-11-28T09:10:00+00:00"
    assert result["jobName"] == "nightly"  # IICS gave no name: the request's
    assert result["settings"] == {"initialWaitSeconds": 45, "maxWaitSeconds": 120, "timeoutSeconds": 600}


def test_the_trigger_events_start_time_anchors_the_deadline_in_any_zone():
    result = check(FakeStatusSource(RUNNING), started_at="2026-11-28T10:00:00+01:00")

    assert result["deadline"] == "2026-11-28T11:00:00+01:00"
    assert result["nextWaitSeconds"] == 10


def test_an_unknown_state_is_polled_again_and_reported_raw():
    result = check(FakeStatusSource(RUNNING | {"status": {"state": "PAUSED", "message": None}}))

    assert (result["state"], result["iicsState"], result["outcome"]) == ("RUNNING", "PAUSED", None)
    assert result["nextWaitSeconds"] == 10


# --- the job ended ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "outcome", "raw"),
    [(SUCCESSFUL, "SUCCESSFUL", "SUCCESSFUL"), (FAILED, "FAILED", "FAILED")],
)
def test_a_terminal_job_ends_the_loop_with_its_outcome(body, outcome, raw):
    result = check(FakeStatusSource(body), poll={"polls": 7, "transientErrors": 0})

    assert result["terminal"] is True
    assert (result["outcome"], result["state"], result["iicsState"]) == (outcome, outcome, raw)
    assert (result["nextWaitSeconds"], result["polls"], result["reason"]) == (0, 8, None)


@pytest.mark.parametrize("raw", ["SUCCESS", "Success", "Failed"])
def test_state_variants_end_the_loop_too(raw):
    result = check(FakeStatusSource(RUNNING | {"status": {"state": raw, "message": None}}))

    assert result["terminal"] is True
    assert result["iicsState"] == raw


ENDED = "2017-10-26T08:16:00.000Z"


@pytest.mark.parametrize("raw", ["ERROR", "CANCELLED", "CANCELED", "ABORTED", "STOPPED"])
def test_failure_words_end_the_loop_as_failed_with_the_raw_state_kept(raw):
    result = check(FakeStatusSource(RUNNING | {"endTime": ENDED, "status": {"state": raw, "message": "Stopped."}}))

    assert (result["terminal"], result["outcome"], result["iicsState"]) == (True, "FAILED", raw)
    assert (result["jobEndTime"], result["warning"], result["reason"]) == (ENDED, None, None)


@pytest.mark.parametrize("raw", ["WARNING", "WARNINGS", "PARTIAL_SUCCESS", "COMPLETED_WITH_WARNINGS"])
def test_a_success_with_warnings_ends_the_loop_as_successful_with_its_warning(raw):
    body = RUNNING | {"endTime": ENDED, "status": {"state": raw, "message": "Export completed with errors."}}

    result = check(FakeStatusSource(body))

    assert (result["terminal"], result["outcome"], result["iicsState"]) == (True, "SUCCESSFUL", raw)
    assert result["warning"] == f"IICS reported {raw}: Export completed with errors."


@pytest.mark.parametrize("raw", ["QUEUED", "STARTING", "NOT_STARTED"])
def test_waiting_words_are_polled_again_without_a_deadline_surprise(raw):
    result = check(FakeStatusSource(RUNNING | {"status": {"state": raw, "message": None}}))

    assert (result["terminal"], result["state"], result["outcome"]) == (False, "RUNNING", None)


@pytest.mark.parametrize("raw", ["ARCHIVED", "IN_PROGRESS"])
def test_a_status_with_its_end_time_set_ends_the_loop_as_failed_and_says_why(raw):
    result = check(FakeStatusSource(RUNNING | {"endTime": ENDED, "status": {"state": raw, "message": None}}))

    assert (result["terminal"], result["outcome"], result["iicsState"], result["jobEndTime"]) == (
        True,
        "FAILED",
        raw,
        ENDED,
    )
    assert raw in result["reason"] and "endTime" in result["reason"]


def test_a_job_that_ends_after_the_deadline_still_reports_its_own_outcome():
    result = check(FakeStatusSource(SUCCESSFUL), now=DEADLINE + timedelta(hours=1))

    assert (result["terminal"], result["outcome"]) == (True, "SUCCESSFUL")


# --- the deadline -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("now", [DEADLINE, DEADLINE + timedelta(days=3)])
def test_a_job_still_running_at_the_deadline_is_timed_out_with_a_reason(now):
    result = check(FakeStatusSource(RUNNING), now=now, poll={"polls": 41, "transientErrors": 0})

    assert result["outcome"] == "TIMED_OUT"
    assert result["nextWaitSeconds"] == 0
    assert result["state"] == "RUNNING"
    assert "IN_PROGRESS" in result["reason"]
    assert "3600s" in result["reason"]
    assert "42 polls" in result["reason"]


# --- transient IICS errors --------------------------------------------------------------------------------------------


def test_a_transient_error_is_not_raised_but_counted_and_described():
    previous = {"polls": 3, "transientErrors": 0, "jobName": "testJob1", "iicsState": "IN_PROGRESS", "message": "x"}

    result = check(FakeStatusSource(IicsUnavailable("502 Bad Gateway", status=502)), poll=previous)

    assert result["transientErrors"] == 1
    assert result["lastError"] == {"type": "IicsUnavailable", "message": "502 Bad Gateway | HTTP 502"}
    assert (result["outcome"], result["terminal"], result["polls"]) == (None, False, 4)
    assert (result["state"], result["jobName"], result["iicsState"], result["message"]) == (
        "RUNNING",
        "testJob1",
        "IN_PROGRESS",
        "x",
    )
    assert result["nextWaitSeconds"] == 10


def test_consecutive_transient_errors_add_up():
    result = check(FakeStatusSource(IicsUnavailable("down", status=503)), poll={"polls": 5, "transientErrors": 4})

    assert result["transientErrors"] == 5
    assert result["lastError"]["type"] == "IicsUnavailable"


def test_throttling_is_waited_out_and_never_ends_a_watch_by_itself():
    # IICS asking for patience is not IICS failing: any number of 429s in a row, until the deadline
    result = check(
        FakeStatusSource(Throttled("too many requests", status=429)), poll={"polls": 60, "transientErrors": 9}
    )

    assert (result["outcome"], result["transientErrors"], result["lastError"]["type"]) == (None, 9, "Throttled")


def test_a_good_answer_resets_the_transient_error_count():
    result = check(FakeStatusSource(RUNNING), poll={"polls": 5, "transientErrors": 6})

    assert (result["transientErrors"], result["lastError"]) == (0, None)


def test_retry_after_from_throttling_is_honoured_above_the_policy_and_the_cap_with_jitter():
    def throttled_wait(job_id: str, polls: int) -> int:
        source = FakeStatusSource(Throttled("too many requests", status=429, retry_after=300))
        return check(source, request={"jobId": job_id}, poll={"polls": polls, "transientErrors": 0})["nextWaitSeconds"]

    waits = {throttled_wait(f"job{n}", 3) for n in range(20)}

    assert all(300 <= w <= 600 for w in waits)
    assert len(waits) >= 15  # executions throttled together come back spread out
    assert throttled_wait("job1", 3) == throttled_wait("job1", 3)  # repeatable


def test_retry_after_does_not_run_past_the_deadline():
    throttled = Throttled("too many requests", status=429, retry_after=3000)

    result = check(FakeStatusSource(throttled), now=DEADLINE - timedelta(seconds=20))

    assert result["nextWaitSeconds"] == 20


def test_a_transient_error_at_the_deadline_times_out_with_the_error_as_reason():
    result = check(FakeStatusSource(IicsUnavailable("could not reach IICS: ProtocolError")), now=DEADLINE)

    assert result["outcome"] == "TIMED_OUT"
    assert result["reason"] == "IICS unavailable at the deadline: could not reach IICS: ProtocolError"
    assert result["nextWaitSeconds"] == 0


def test_the_ninth_consecutive_transient_error_is_still_absorbed():
    previous = {"polls": 20, "transientErrors": MAX_CONSECUTIVE_TRANSIENT_ERRORS - 2}

    result = check(FakeStatusSource(IicsUnavailable("down")), poll=previous)

    assert result["transientErrors"] == MAX_CONSECUTIVE_TRANSIENT_ERRORS - 1


@pytest.mark.parametrize("error", [IicsUnavailable("down", status=500), IicsUnavailable("reset")])
def test_the_tenth_consecutive_transient_error_is_raised(error):
    assert MAX_CONSECUTIVE_TRANSIENT_ERRORS == 10
    previous = {"polls": 20, "transientErrors": 9}

    with pytest.raises(type(error)) as caught:
        check(FakeStatusSource(error), poll=previous)

    assert caught.value is error


# --- permanent errors and bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        JobNotFound("Export job [x] was not found.", status=404),
        LoginFailed("IICS login refused", status=400),
        SessionExpired("Invalid or expired session id.", status=401),
    ],
)
def test_a_permanent_error_is_raised_at_once(error):
    with pytest.raises(type(error)) as caught:
        check(FakeStatusSource(error))

    assert caught.value is error


@pytest.mark.parametrize(
    ("kwargs", "error_type"),
    [
        ({"request": {"jobId": "../x"}}, InvalidJobId),
        ({"request": {"jobId": "%2e%2e"}}, InvalidJobId),
        ({"request": {"jobId": None}}, InvalidJobId),
        ({"request": {"name": "no id"}}, InvalidInput),
        ({"request": {"jobId": JOB_ID, "monitor": {"initialWaitSeconds": True}}}, InvalidInput),
        ({"request": {"jobId": JOB_ID, "monitor": {"pollEvery": 1}}}, InvalidInput),
        # an execution started by hand with a ``request`` skips AcceptInput; the check holds the floors
        ({"request": {"jobId": JOB_ID, "monitor": {"initialWaitSeconds": 0, "maxWaitSeconds": 0}}}, InvalidInput),
        ({"poll": {"polls": -1, "transientErrors": 0}}, InvalidInput),
        ({"poll": {"polls": "3", "transientErrors": 0}}, InvalidInput),
        ({"poll": {"polls": 3, "transientErrors": True}}, InvalidInput),
        ({"started_at": "yesterday"}, InvalidInput),
        ({"started_at": "2026-11-28T09:00:00"}, InvalidInput),
    ],
)
def test_invalid_input_is_raised_before_any_call_to_iics(kwargs, error_type):
    source = FakeStatusSource(RUNNING)

    with pytest.raises(error_type):
        check(source, **kwargs)

    assert source.calls == []


def test_an_event_without_a_request_is_invalid_input():
    source = FakeStatusSource(RUNNING)

    with pytest.raises(InvalidInput):
        check_job({"startedAt": "2026-11-28T09:00:00Z"}, source=source, config=CONFIG, now=SOON)

    assert source.calls == []


def test_the_state_machines_first_poll_record_is_accepted():
    """StartPolling in the ASL seeds the poll record with nulls."""
    first = {"jobId": None, "jobName": None, "iicsState": None, "message": None, "outcome": None}

    result = check(FakeStatusSource(RUNNING), poll=first | {"polls": 0, "transientErrors": 0})

    assert result["polls"] == 1


# --- against the emulator ---------------------------------------------------------------------------------------------


def session_ids(emulator) -> set[str]:
    return {v for r in emulator.requests for k, v in r.headers.items() if k.lower() == SESSION_HEADER.lower()}


def test_polling_the_reference_job_to_its_end(emulator, client):
    emulator.add_reference_job(states=["IN_PROGRESS", "IN_PROGRESS", "SUCCESSFUL"])
    poll = {"polls": 0, "transientErrors": 0}
    results = []

    for minute in (0, 5, 10):
        poll = check(client, now=STARTED + timedelta(minutes=minute), poll=poll)
        results.append(poll)

    assert [(r["iicsState"], r["outcome"], r["nextWaitSeconds"]) for r in results] == [
        ("IN_PROGRESS", None, 10),
        ("IN_PROGRESS", None, 31),
        ("SUCCESSFUL", "SUCCESSFUL", 0),
    ]
    assert [(r.route, r.status) for r in emulator.requests] == [("login", 200)] + [("status", 200)] * 3


def test_a_throttled_poll_against_the_emulator_waits_as_asked(emulator, client):
    emulator.add_reference_job()
    emulator.add_fault(Fault(route="status", status=429, retry_after=90))

    result = check(client)

    assert result["transientErrors"] == 0  # throttling is not counted as an error
    assert 90 <= result["nextWaitSeconds"] <= 181
    assert result["lastError"]["type"] == "Throttled"


def test_invalid_input_reaches_no_iics_endpoint(emulator, client):
    with pytest.raises(InvalidJobId):
        check(client, request={"jobId": "../../saas/public/core/v3/login"})

    assert emulator.requests == []


def test_no_result_carries_the_session_id(emulator, client):
    emulator.add_reference_job(states=["IN_PROGRESS", "SUCCESSFUL"])
    # The second poll's session is dropped, and its retry after a fresh login meets a proxy's 502.
    emulator.add_fault(Fault(route="status", kind="invalidate_session", after=1))
    emulator.add_fault(Fault(route="status", status=502, html=True, after=1))
    results = [check(client, poll={"polls": n, "transientErrors": 0}) for n in range(4)]
    emulator.add_fault(Fault(route="status", status=401, times=None))
    with pytest.raises(SessionExpired) as caught:
        check(client)

    seen = session_ids(emulator)
    assert len(seen) >= 2
    text = json.dumps(results) + str(caught.value)
    assert [r["transientErrors"] for r in results] == [0, 1, 0, 0]
    assert not [s for s in seen if s in text]


# --- several checks in one invocation ---------------------------------------------------------------------------------


class FakeInvocation:
    """A Lambda invocation in virtual time: sleeping moves the clock and uses up the time left."""

    def __init__(self, now: datetime = SOON, seconds_left: float = 240) -> None:
        self.now, self.left, self.slept = now, seconds_left, []
        self.invocation = Invocation(clock=lambda: self.now, sleep=self.sleep, seconds_left=lambda: self.left)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)
        self.left -= seconds


INLINE = CheckConfig(
    secret_name="iics/export-monitor",
    defaults=MonitorSettings(initial_wait_seconds=2, max_wait_seconds=600, timeout_seconds=3600),
    max_polls=500,
    read_timeout_seconds=10,
    inline_wait_seconds=20,
)


def check_inline(source, runtime: FakeInvocation, config: CheckConfig = INLINE, history=None, **kwargs) -> dict:
    return check_job(
        event(**kwargs), source=source, config=config, now=runtime.now, invocation=runtime.invocation, history=history
    )


def test_a_young_job_is_checked_again_inside_the_same_invocation_until_it_ends():
    source, runtime = FakeStatusSource(RUNNING, RUNNING, RUNNING, SUCCESSFUL), FakeInvocation()

    result = check_inline(source, runtime)

    assert (result["outcome"], result["polls"]) == ("SUCCESSFUL", 4)
    assert len(source.calls) == 4
    assert runtime.slept == [3, 3, 3]  # 10.4% of the age, rounded down: 30 s, 33 s, 36 s


def test_a_wait_longer_than_the_inline_limit_goes_back_to_the_state_machine():
    source, runtime = FakeStatusSource(RUNNING), FakeInvocation(now=STARTED + timedelta(seconds=250))

    result = check_inline(source, runtime)

    assert (result["nextWaitSeconds"], result["polls"], runtime.slept) == (26, 1, [])


def test_inline_checks_stop_while_there_is_still_time_for_one_more_check():
    # reserve = 2 x (5 s connect + 10 s read) = 30 s; each wait is 3 s or 4 s
    source, runtime = FakeStatusSource(*[RUNNING] * 10), FakeInvocation(seconds_left=45)

    result = check_inline(source, runtime)

    assert runtime.slept == [3, 3, 3, 4]
    assert runtime.left >= INLINE.inline_reserve_seconds
    assert (result["polls"], result["nextWaitSeconds"], result["outcome"]) == (5, 4, None)


def test_inline_checks_stop_at_the_poll_budget():
    config = CheckConfig(**{**INLINE.__dict__, "max_polls": 3})
    source, runtime = FakeStatusSource(*[RUNNING] * 10), FakeInvocation()

    result = check_inline(source, runtime, config=config)

    assert (result["polls"], len(source.calls)) == (3, 3)


def test_a_transient_error_inside_the_invocation_hands_the_wait_back():
    source, runtime = FakeStatusSource(RUNNING, IicsUnavailable("down", status=503), RUNNING), FakeInvocation()

    result = check_inline(source, runtime)

    assert (result["polls"], result["transientErrors"], len(source.calls)) == (2, 1, 2)
    assert result["nextWaitSeconds"] > 0


def test_without_an_invocation_or_with_inline_off_the_check_polls_once():
    off = CheckConfig(**{**INLINE.__dict__, "inline_wait_seconds": 0})
    source, runtime = FakeStatusSource(RUNNING, SUCCESSFUL), FakeInvocation()

    assert check_inline(source, runtime, config=off)["polls"] == 1
    assert check_job(event(), source=FakeStatusSource(RUNNING), config=INLINE, now=SOON)["polls"] == 1


def test_with_the_shortest_waits_a_request_may_ask_for_one_invocation_checks_at_most_once_a_second():
    source, runtime = FakeStatusSource(*[RUNNING] * 300), FakeInvocation(seconds_left=240)
    request = {"jobId": JOB_ID, "monitor": {"initialWaitSeconds": 1, "maxWaitSeconds": 1}}

    result = check_inline(source, runtime, request=request)

    assert runtime.slept and min(runtime.slept) >= 1
    assert result["polls"] == len(source.calls) <= 1 + sum(runtime.slept)


# --- the job name's history -----------------------------------------------------------------------------------------


class FakeHistory:
    def __init__(self, expected: float | None) -> None:
        self.expected, self.asked = expected, []

    def expected_seconds(self, job_name: str) -> float | None:
        self.asked.append(job_name)
        return self.expected


def test_a_job_with_history_is_checked_sparsely_but_still_early_in_its_run():
    history = FakeHistory(3600.0)

    result = check_job(event(), source=FakeStatusSource(RUNNING), config=INLINE, now=SOON, history=history)

    assert history.asked == ["testJob1"]
    assert (result["expectedSeconds"], result["historyChecked"]) == (3600.0, True)
    # 30 s old, usually 1 h: next check in 30 s (the plain policy: 3 s), not near the usual end
    assert result["nextWaitSeconds"] == 30


def check_twice(history: FakeHistory, second_at_seconds: int) -> dict:
    """A first check soon after the start, then a second one ``second_at_seconds`` in; the second's result."""
    first = check_job(event(), source=FakeStatusSource(RUNNING), config=INLINE, now=SOON, history=history)
    later = STARTED + timedelta(seconds=second_at_seconds)
    return check_job(event(poll=first), source=FakeStatusSource(RUNNING), config=INLINE, now=later, history=history)


def test_later_in_its_run_a_job_with_history_waits_half_its_age_past_max_wait():
    later = check_twice(FakeHistory(14_400.0), second_at_seconds=2000)

    assert later["nextWaitSeconds"] == 1000 > INLINE.defaults.max_wait_seconds


def test_the_history_is_read_once_per_execution_and_carried_in_the_poll_record():
    history = FakeHistory(3600.0)

    second = check_twice(history, second_at_seconds=2600)

    assert history.asked == ["testJob1"]
    assert second["expectedSeconds"] == 3600.0
    assert second["nextWaitSeconds"] < 600  # inside the window: close checks


@pytest.mark.parametrize("expected", [None])
def test_no_history_or_an_unreadable_table_means_the_plain_policy(expected):
    result = check_job(
        event(), source=FakeStatusSource(RUNNING), config=INLINE, now=SOON, history=FakeHistory(expected)
    )

    assert (result["expectedSeconds"], result["historyChecked"], result["nextWaitSeconds"]) == (None, True, 3)


def test_a_job_without_a_name_has_no_history_to_read():
    history = FakeHistory(3600.0)

    result = check_job(
        event(), source=FakeStatusSource(RUNNING | {"name": None}), config=INLINE, now=SOON, history=history
    )

    assert history.asked == [] and result["historyChecked"] is False


def test_a_finished_job_does_not_read_the_history():
    history = FakeHistory(3600.0)

    check_job(event(), source=FakeStatusSource(SUCCESSFUL), config=INLINE, now=SOON, history=history)

    assert history.asked == []


@pytest.mark.parametrize("value", ["3600", True, [1]])
def test_a_malformed_expected_duration_in_the_poll_record_is_invalid_input(value):
    with pytest.raises(InvalidInput):
        check(FakeStatusSource(RUNNING), poll={"polls": 1, "transientErrors": 0, "expectedSeconds": value})


def test_a_failure_after_an_inline_check_keeps_what_that_check_saw():
    # The first check reads the history and the job's state; the second fails. The poll record must
    # carry the first one's findings, or the next invocation would read the history again.
    history, runtime = FakeHistory(40.0), FakeInvocation()
    source = FakeStatusSource(RUNNING, IicsUnavailable("down", status=503))
    first = {"polls": 0, "transientErrors": 0, "jobName": None, "iicsState": None, "message": None}

    result = check_inline(source, runtime, history=history, poll=first)

    assert runtime.slept  # the second check happened inside the invocation
    assert (result["polls"], result["transientErrors"]) == (2, 1)
    assert (result["expectedSeconds"], result["historyChecked"]) == (40.0, True)
    assert (result["jobName"], result["iicsState"]) == ("testJob1", "IN_PROGRESS")
    assert history.asked == ["testJob1"]


@pytest.mark.parametrize(("status", "field"), [(403, "reason"), (500, "lastError")])
@pytest.mark.parametrize("body_format", ["json", "text", "html"])
def test_an_answer_that_echoes_the_session_leaves_it_out_of_the_decision(emulator, client, status, field, body_format):
    emulator.add_reference_job(states=["IN_PROGRESS"])
    check(client)  # the client holds a session
    emulator.add_fault(Fault(route="status", kind="echo", status=status, body_format=body_format))

    result = check_or_report(event(), source=client, config=CONFIG, now=SOON)

    (session_id,) = emulator.issued_session_ids
    assert "INFA-SESSION-ID" in json.dumps(result[field])  # the echo reached the decision, scrubbed
    assert session_id not in json.dumps(result)


def test_a_status_whose_message_carries_a_token_gives_it_to_no_one():
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXBhcnQtb25l"
    body = RUNNING | {"name": f"job {jwt}", "status": {"state": "IN_PROGRESS", "message": f"token {jwt}"}}

    result = check(FakeStatusSource(body))

    assert "eyJzdWIi" not in json.dumps(result) and result["message"] == "token [redacted]"

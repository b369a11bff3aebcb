"""Every step has a time budget: the handlers as Lambda calls them, with a short remaining time, against
IICS faults that never trip a socket timeout (a dripping answer, an endless log, slow throttling).
Each ends by itself inside its budget, with the right decision or outcome."""

from __future__ import annotations

import time

import boto3
import pytest

from iics_monitor.config import ARCHIVE_RESERVE_SECONDS, REPORT_RESERVE_SECONDS
from iics_monitor_local.emulator import Fault
from tests.conftest import FakeLambdaContext, assert_valid_outcome
from tests.integration.test_handlers import BUCKET, aws, load_handler, now_iso  # noqa: F401 - aws: the fixture

pytestmark = pytest.mark.usefixtures("aws")

OBJECT = "aeOwrk0r6cBkkVz3RuTQ0i"


class ShortContext(FakeLambdaContext):
    """A Lambda context whose invocation ends ``seconds`` after it is made."""

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._end - time.monotonic()) * 1000))


@pytest.fixture
def one_second_requests(monkeypatch):
    monkeypatch.setenv("IICS_READ_TIMEOUT_SECONDS", "1")


def timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


# --- CheckStatus -----------------------------------------------------------------------------------------------------


def test_a_dripping_status_is_a_failed_poll_tried_again_not_a_check_that_runs_out(emulator, one_second_requests):
    # Given a status answer that drips a byte every 20 ms: seconds for its body, and no read ever waits 1 s
    job_id = emulator.add_job(states=["IN_PROGRESS", "SUCCESSFUL"])
    emulator.add_fault(Fault(route="status", kind="drip", delay_seconds=0.02))
    handler = load_handler("check_status")
    event = {"request": {"jobId": job_id}, "poll": {"polls": 0, "transientErrors": 0}, "startedAt": now_iso()}

    result, seconds = timed(lambda: handler(event, ShortContext(60)))

    # Then the check ends after its 1 s request budget with a transient error, and the loop will poll again
    assert seconds < 3.0  # 1 s, and time to spare on a busy machine
    assert (result["outcome"], result["transientErrors"]) == (None, 1)
    assert result["lastError"]["type"] == "AnswerLost" and result["nextWaitSeconds"] > 0


def test_a_check_keeps_back_time_to_report_when_its_lambda_is_nearly_out(emulator):
    job_id = emulator.add_job(states=["IN_PROGRESS"])
    emulator.add_fault(Fault(route="status", kind="slow", delay_seconds=5))
    handler = load_handler("check_status")
    event = {"request": {"jobId": job_id}, "poll": {"polls": 0, "transientErrors": 0}, "startedAt": now_iso()}
    lambda_seconds = REPORT_RESERVE_SECONDS + 1.0

    result, seconds = timed(lambda: handler(event, ShortContext(lambda_seconds)))

    assert seconds < lambda_seconds - REPORT_RESERVE_SECONDS / 2  # its deadline came before the Lambda's
    assert result["outcome"] is None and result["lastError"]["type"] == "AnswerLost"


# --- StartExport -----------------------------------------------------------------------------------------------------


def test_slow_throttling_stops_the_export_start_short_saying_no_export_started(emulator, one_second_requests):
    # Given IICS that takes 0.6 s to throttle each POST and asks for 1 s; the function has 2.5 s of work time
    emulator.add_fault(Fault(route="export", status=429, retry_after=1, delay_seconds=0.6, times=None))
    handler = load_handler("start_export")
    lambda_seconds = REPORT_RESERVE_SECONDS + 2.5

    result, seconds = timed(
        lambda: handler({"request": {"export": {"objects": [{"id": OBJECT}]}}}, ShortContext(lambda_seconds))
    )

    # Then it does not wait 1 s for a POST it could not finish: it stops, in time, and says nothing started
    assert seconds < lambda_seconds - REPORT_RESERVE_SECONDS
    assert (result["outcome"], result["errorType"]) == ("ERROR", "NotSent")
    assert result["reason"].startswith("the export did not start: no time left to try again")
    assert [r.status for r in emulator.requests if r.route == "export"] == [429]


def test_a_post_whose_answer_outlasts_its_budget_may_have_started_an_export(emulator, one_second_requests):
    emulator.add_fault(Fault(route="export", status=429, retry_after=1, delay_seconds=1.5))
    handler = load_handler("start_export")

    result, seconds = timed(lambda: handler({"request": {"export": {"objects": [{"id": OBJECT}]}}}, ShortContext(60)))

    assert seconds < 3.0
    assert (result["outcome"], result["errorType"]) == ("ERROR", "StartUnconfirmed")
    assert "an export may have started; check IICS before retrying" in result["reason"]
    time.sleep(1.0)  # the emulator records the POST once its slow answer is out
    assert len([r for r in emulator.requests if r.route == "export"]) == 1  # never a second POST


def test_no_export_post_begins_without_its_whole_budget_left(emulator, one_second_requests):
    handler = load_handler("start_export")

    result = handler({"request": {"export": {"objects": [{"id": OBJECT}]}}}, ShortContext(REPORT_RESERVE_SECONDS + 0.5))

    assert (result["errorType"], result["reason"].split(":")[0]) == ("NotSent", "the export did not start")
    assert [r for r in emulator.requests if r.route == "export"] == []


# --- ArchiveLog ------------------------------------------------------------------------------------------------------


def archive(emulator, monkeypatch, lambda_seconds: float = 120, **env: str) -> tuple[dict, float, dict]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    job_id = emulator.add_job(states=["SUCCESSFUL"])
    emulator.add_fault(Fault(route="log", kind="endless"))
    poll = {"jobId": job_id, "outcome": "SUCCESSFUL", "polls": 2}
    handler = load_handler("archive_log")
    detail, seconds = timed(lambda: handler({"poll": poll}, ShortContext(lambda_seconds)))
    assert_valid_outcome(detail)
    assert detail["log"] is not None, detail["logError"]
    head = boto3.client("s3").head_object(Bucket=BUCKET, Key=detail["log"]["key"])
    return detail, seconds, head


def test_an_endless_log_is_stored_as_far_as_it_came_when_the_archive_time_is_up(emulator, monkeypatch):
    detail, seconds, head = archive(emulator, monkeypatch, ARCHIVE_MAX_SECONDS="1")

    assert 1.0 <= seconds < 5.0  # 1 s, and room for a busy machine
    assert (detail["state"], detail["iicsState"]) == ("SUCCESSFUL", "SUCCESSFUL")  # IICS's state, not ours
    assert detail["log"]["truncated"] == "time" and detail["log"]["sizeBytes"] > 0
    assert detail["logError"] is None
    if detail["log"]["sizeBytes"] <= 8 * 1024 * 1024:
        assert head["Metadata"]["truncated"] == "time"
    else:  # a multipart upload: the sha256 object carries the marks
        sidecar = boto3.client("s3").head_object(Bucket=BUCKET, Key=detail["log"]["key"] + ".sha256")
        assert sidecar["Metadata"]["truncated"] == "time"


def test_the_archive_time_is_bounded_by_the_lambda_time_left(emulator, monkeypatch):
    # 2.5 s past the reserve: room for a cold handler and the status call on a busy machine
    detail, seconds, _ = archive(emulator, monkeypatch, lambda_seconds=ARCHIVE_RESERVE_SECONDS + 2.5)

    # it stopped reading at the time-up (2.5 s in), far inside the function's 32.5 s; the rest is its finish
    # (upload, status), which a machine busy with the suite's other workers slows (5.3 s measured once)
    assert seconds < 8.0 and detail["log"]["truncated"] == "time"


def test_an_endless_log_is_cut_at_the_size_cap(emulator, monkeypatch):
    detail, _, head = archive(emulator, monkeypatch, ARCHIVE_MAX_BYTES="100000")

    assert (detail["log"]["sizeBytes"], detail["log"]["truncated"]) == (100000, "size")
    assert head["ContentLength"] == 100000 and head["Metadata"]["truncated"] == "size"
    assert detail["state"] == "SUCCESSFUL"


def test_a_log_cut_at_a_cap_above_one_chunk_is_marked_on_its_sha256_object(emulator, monkeypatch):
    cap = 9 * 1024 * 1024  # over the 8 MiB single-put chunk: a multipart upload
    detail, _, head = archive(emulator, monkeypatch, ARCHIVE_MAX_BYTES=str(cap))

    sidecar = boto3.client("s3").head_object(Bucket=BUCKET, Key=detail["log"]["key"] + ".sha256")
    assert (detail["log"]["sizeBytes"], detail["log"]["truncated"], head["ContentLength"]) == (cap, "size", cap)
    assert sidecar["Metadata"]["truncated"] == "size"


def test_a_whole_log_is_not_marked_truncated(emulator, monkeypatch):
    monkeypatch.setenv("ARCHIVE_MAX_BYTES", "100000")
    job_id = emulator.add_job(states=["SUCCESSFUL"], log_size=100000)  # exactly at the cap: nothing cut
    handler = load_handler("archive_log")

    detail = handler({"poll": {"jobId": job_id, "outcome": "SUCCESSFUL", "polls": 1}}, ShortContext(60))

    head = boto3.client("s3").head_object(Bucket=BUCKET, Key=detail["log"]["key"])
    assert detail["log"]["sizeBytes"] == 100000 and "truncated" not in detail["log"]
    assert "truncated" not in head["Metadata"]

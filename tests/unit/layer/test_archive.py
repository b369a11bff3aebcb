"""archive: the log streamed to S3 (moto) byte for byte, hashed on the way, with status.json beside it."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from iics_monitor.archive import (
    CHUNK_BYTES,
    FETCH_ATTEMPTS,
    LOG_CONTENT_TYPE,
    MIB,
    ArchivedLog,
    LogArchiver,
    with_retries,
)
from iics_monitor.errors import (
    AccessDenied,
    BadRequest,
    IicsUnavailable,
    InvalidJobId,
    JobNotFound,
    LoginFailed,
    SessionExpired,
    StoreUnavailable,
    Throttled,
)
from iics_monitor_local import reference
from tests.unit.layer.conftest import BUCKET, PREFIX

JOB_ID = "7evG9CokA1whk8ehF3opKM"
WHEN = datetime(2026, 11, 28, 9, 30, 15, tzinfo=UTC)
FOLDER = f"{PREFIX}2026/11/28/{JOB_ID}/"
LOG_BYTES = reference.LOG_TEXT.encode()


def log_lines(size: int) -> Iterator[bytes]:
    """``size`` bytes of export log, line by line (the last line cut to fit)."""
    produced = 0
    number = 0
    while produced < size:
        line = (
            f"> OIE_004 INFO 2026-11-28T09:{number // 60 % 60:02d}:{number % 60:02d}.{number % 1000:03d}Z "
            f"Successfully exported object [/Explore/Project{number}/m_{number}] of type [DTEMPLATE] "
            f"id [{number:022d}]\n"
        ).encode()[: size - produced]
        produced += len(line)
        number += 1
        yield line


class GeneratedLog:
    """A log made on demand and handed out through ``read(n)`` like an HTTP body: never whole in memory."""

    def __init__(self, size: int) -> None:
        self._lines = log_lines(size)
        self._buffer = bytearray()
        self.reads: list[int] = []

    def read(self, size: int = -1) -> bytes:
        self.reads.append(size)
        if size is None or size < 0:
            raise AssertionError("the archiver asked for the whole log at once")
        while len(self._buffer) < size:
            line = next(self._lines, None)
            if line is None:
                break
            self._buffer += line
        piece = bytes(self._buffer[:size])
        del self._buffer[:size]
        return piece


class BreakingLog(GeneratedLog):
    """A log whose connection drops after ``limit`` bytes."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(size)
        self._left = limit

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            raise IicsUnavailable("the log stream broke off: ProtocolError")
        piece = super().read(min(size, self._left))
        self._left -= len(piece)
        return piece


def digest_of_lines(size: int) -> str:
    digest = hashlib.sha256()
    for line in log_lines(size):
        digest.update(line)
    return digest.hexdigest()


def digest_of_object(s3, key: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    for chunk in s3.get_object(Bucket=BUCKET, Key=key)["Body"].iter_chunks(MIB):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def keys(s3) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


# --- put_log ----------------------------------------------------------------------------------------------------------


def test_the_log_is_stored_byte_for_byte_under_the_dated_job_folder(s3, archiver):
    archived = archiver.put_log(JOB_ID, "SUCCESSFUL", io.BytesIO(LOG_BYTES), WHEN)

    stored = s3.get_object(Bucket=BUCKET, Key=FOLDER + "export.log")
    assert stored["Body"].read() == LOG_BYTES
    assert stored["ContentType"] == LOG_CONTENT_TYPE == "text/plain; charset=utf-8"
    assert archived == ArchivedLog(
        bucket=BUCKET,
        key="iics/exports/2026/11/28/7evG9CokA1whk8ehF3opKM/export.log",
        size_bytes=len(LOG_BYTES),
        sha256=hashlib.sha256(LOG_BYTES).hexdigest(),
    )


def test_the_log_carries_job_id_state_and_sha256_metadata(s3, archiver):
    archiver.put_log(JOB_ID, "FAILED", io.BytesIO(LOG_BYTES), WHEN)

    head = s3.head_object(Bucket=BUCKET, Key=FOLDER + "export.log")
    assert head["Metadata"] == {"job-id": JOB_ID, "state": "FAILED", "sha256": hashlib.sha256(LOG_BYTES).hexdigest()}
    assert head["ContentType"] == LOG_CONTENT_TYPE


def test_only_the_log_is_written(s3, archiver):
    archiver.put_log(JOB_ID, "SUCCESSFUL", io.BytesIO(LOG_BYTES), WHEN)

    assert keys(s3) == [FOLDER + "export.log"]


def test_the_archived_log_serialises_for_the_outcome_event():
    archived = ArchivedLog(bucket=BUCKET, key="k", size_bytes=3, sha256="ab" * 32)

    assert archived.to_dict() == {"bucket": BUCKET, "key": "k", "sizeBytes": 3, "sha256": "ab" * 32}


@pytest.mark.parametrize(
    ("prefix", "when", "key"),
    [
        ("", WHEN, f"2026/11/28/{JOB_ID}/export.log"),
        ("a/b/", datetime(2027, 1, 2, 23, 59, tzinfo=UTC), f"a/b/2027/01/02/{JOB_ID}/export.log"),
    ],
)
def test_the_key_is_prefix_then_date_then_job_id(s3, prefix, when, key):
    archived = LogArchiver(BUCKET, prefix, s3_client=s3).put_log(JOB_ID, "SUCCESSFUL", io.BytesIO(b"x"), when)

    assert archived.key == key
    assert keys(s3) == [key]


@pytest.mark.parametrize("job_id", ["../x", "a/b", "%2e%2e", ""])
def test_an_invalid_job_id_writes_nothing(s3, archiver, job_id):
    with pytest.raises(InvalidJobId):
        archiver.put_log(job_id, "SUCCESSFUL", io.BytesIO(LOG_BYTES), WHEN)
    with pytest.raises(InvalidJobId):
        archiver.put_status(job_id, {}, WHEN)

    assert keys(s3) == []


def test_an_empty_log_is_stored_as_an_empty_object(s3, archiver):
    archived = archiver.put_log(JOB_ID, "SUCCESSFUL", io.BytesIO(b""), WHEN)

    assert (archived.size_bytes, archived.sha256) == (0, hashlib.sha256(b"").hexdigest())
    assert s3.get_object(Bucket=BUCKET, Key=archived.key)["Body"].read() == b""


def test_a_20_mib_log_goes_up_in_parts_and_matches_byte_for_byte(s3, archiver):
    size = 20 * MIB + 12_345
    log = GeneratedLog(size)

    archived = archiver.put_log(JOB_ID, "SUCCESSFUL", log, WHEN)

    expected = digest_of_lines(size)
    assert (archived.size_bytes, archived.sha256) == (size, expected)
    assert digest_of_object(s3, archived.key) == (expected, size)
    head = s3.head_object(Bucket=BUCKET, Key=archived.key)
    assert head["ETag"].strip('"').endswith("-3")  # three parts of at most 8 MiB
    assert head["Metadata"] == {"job-id": JOB_ID, "state": "SUCCESSFUL"}  # fixed before the hash is known
    assert head["ContentType"] == LOG_CONTENT_TYPE
    # so the sha256 sits beside it, in sha256sum's format, and the log is never copied or read back
    sidecar = s3.get_object(Bucket=BUCKET, Key=archived.key + ".sha256")["Body"].read().decode()
    assert sidecar == f"{expected}  export.log\n"


def test_a_log_of_one_chunk_is_one_put_carrying_its_sha256_which_s3_checks(s3, archiver, request):
    log = GeneratedLog(CHUNK_BYTES)
    puts: list[dict] = []

    def record(params, **_):
        puts.append(params)

    # the s3 client outlives this test: take the hook off again
    s3.meta.events.register("provide-client-params.s3.PutObject", record)
    request.addfinalizer(lambda: s3.meta.events.unregister("provide-client-params.s3.PutObject", record))

    archived = archiver.put_log(JOB_ID, "SUCCESSFUL", log, WHEN)

    head = s3.head_object(Bucket=BUCKET, Key=archived.key)
    assert head["Metadata"]["sha256"] == archived.sha256 == digest_of_lines(CHUNK_BYTES)
    (put,) = puts  # S3 recomputes ChecksumSHA256 and refuses the object if a byte differs (moto does not)
    assert base64.b64decode(put["ChecksumSHA256"]).hex() == archived.sha256
    assert "-" not in head["ETag"]  # not multipart
    assert keys(s3) == [archived.key]  # no sidecar needed


def test_a_big_log_is_read_in_bounded_pieces(s3, archiver):
    log = GeneratedLog(9 * MIB)

    archiver.put_log(JOB_ID, "SUCCESSFUL", log, WHEN)

    assert 0 < max(log.reads) <= CHUNK_BYTES + 1  # one byte more tells a one-chunk log from a bigger one


@pytest.mark.parametrize("limit", [MIB, 10 * MIB], ids=["before-the-first-part", "mid-multipart"])
def test_a_log_stream_that_breaks_off_raises_and_leaves_nothing_behind(s3, archiver, limit):
    with pytest.raises(IicsUnavailable):
        archiver.put_log(JOB_ID, "SUCCESSFUL", BreakingLog(20 * MIB, limit), WHEN)

    assert keys(s3) == []
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_a_missing_bucket_is_a_transient_store_error_naming_the_code(s3):
    with pytest.raises(StoreUnavailable, match="NoSuchBucket") as raised:
        LogArchiver("no-such-bucket-here", PREFIX, s3_client=s3).put_log(JOB_ID, "SUCCESSFUL", io.BytesIO(b"x"), WHEN)
    assert raised.value.transient


@pytest.mark.parametrize("code", ["AccessDenied", "InvalidAccessKeyId", "KMS.AccessDeniedException"])
def test_a_refused_write_is_a_permanent_store_error_not_retried(code):
    """A role without s3:PutObject (or the bucket key's kms rights) is refused every time: retrying it
    only spent the function's time (50 s in the local stack with IAM enforced)."""
    refused = ClientError({"Error": {"Code": code, "Message": "no"}}, "PutObject")

    class RefusingS3:
        def put_object(self, **_):
            raise refused

        def create_multipart_upload(self, **_):
            raise refused

    archiver = LogArchiver(BUCKET, PREFIX, s3_client=RefusingS3())
    sleeps: list[float] = []
    with pytest.raises(StoreUnavailable, match=code) as raised:
        with_retries(lambda: archiver.put_log(JOB_ID, "SUCCESSFUL", io.BytesIO(b"x"), WHEN), sleep=sleeps.append)
    assert not raised.value.transient
    assert sleeps == []


# --- put_status -------------------------------------------------------------------------------------------------------


def test_the_final_status_is_stored_as_status_json_beside_the_log(s3, archiver):
    key = archiver.put_status(JOB_ID, reference.STATUS_SUCCESSFUL_WITH_OBJECTS, WHEN)

    assert key == FOLDER + "status.json"
    stored = s3.get_object(Bucket=BUCKET, Key=key)
    assert json.loads(stored["Body"].read()) == reference.STATUS_SUCCESSFUL_WITH_OBJECTS
    assert stored["ContentType"] == "application/json"
    assert stored["Metadata"] == {"job-id": JOB_ID}


# --- with_retries -----------------------------------------------------------------------------------------------------


class Flaky:
    """A call that raises the given errors in turn, then returns "done"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def test_a_call_that_works_is_made_once_without_sleeping():
    sleeps: list[float] = []
    call = Flaky()

    assert with_retries(call, sleep=sleeps.append) == "done"
    assert (call.calls, sleeps) == (1, [])


def test_transient_errors_are_retried_with_growing_sleeps():
    sleeps: list[float] = []
    call = Flaky(IicsUnavailable("reset"), Throttled("429"))

    assert with_retries(call, sleep=sleeps.append) == "done"
    assert (call.calls, sleeps) == (3, [1.0, 2.0])


def test_retry_after_sets_the_sleep_up_to_ten_seconds():
    sleeps: list[float] = []
    call = Flaky(Throttled("429", retry_after=4), Throttled("429", retry_after=600))

    with_retries(call, sleep=sleeps.append)

    assert sleeps == [4, 10.0]


def test_transient_errors_that_persist_raise_the_last_after_fetch_attempts():
    sleeps: list[float] = []
    errors = [IicsUnavailable("down") for _ in range(FETCH_ATTEMPTS - 1)]
    last = IicsUnavailable("still down", status=500)
    call = Flaky(*errors, last, IicsUnavailable("never reached"))

    with pytest.raises(IicsUnavailable) as caught:
        with_retries(call, sleep=sleeps.append)

    assert caught.value is last
    assert call.calls == FETCH_ATTEMPTS
    assert sleeps == [1.0, 2.0, 4.0, 8.0, 10.0][: FETCH_ATTEMPTS - 1]  # doubling, capped at 10 s


def test_s3_failures_are_retried_like_iics_ones():
    sleeps: list[float] = []
    call = Flaky(StoreUnavailable("S3 did not store the log: SlowDown"))

    assert with_retries(call, sleep=sleeps.append) == "done"
    assert sleeps == [1.0]


@pytest.mark.parametrize(
    "error",
    [JobNotFound("gone"), LoginFailed("refused"), SessionExpired("401"), AccessDenied("403"), BadRequest("400")],
)
def test_permanent_errors_are_not_retried(error):
    sleeps: list[float] = []
    call = Flaky(error)

    with pytest.raises(type(error)):
        with_retries(call, sleep=sleeps.append)

    assert (call.calls, sleeps) == (1, [])


def test_errors_that_are_not_from_iics_are_not_retried():
    sleeps: list[float] = []
    call = Flaky(ValueError("a bug"))

    with pytest.raises(ValueError):
        with_retries(call, sleep=sleeps.append)

    assert call.calls == 1


def test_the_number_of_attempts_can_be_set():
    sleeps: list[float] = []
    call = Flaky(*[IicsUnavailable("down")] * 5)

    assert with_retries(call, attempts=6, sleep=sleeps.append) == "done"
    assert sleeps == [1.0, 2.0, 4.0, 8.0, 10.0]

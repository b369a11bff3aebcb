"""Stream an export log (and package) from IICS to S3 with bounded memory, with the status beside it.

An object that fits in one chunk (8 MiB, nearly every log) is read whole, hashed, and stored with
one ``put_object`` that carries its sha256 as metadata and as ``ChecksumSHA256``, so S3 checks the
bytes. A bigger one goes up through boto3's transfer manager (multipart) straight from the HTTP
response, hashed on the way; S3 metadata is fixed when an upload starts, so its sha256 is written
beside it as ``<name>.sha256`` (``sha256sum`` format). No object is ever copied or read back.

A stream is read up to a size cap (ArchiveMaxBytes) and a deadline (the archive step's time). Past
either, what arrived is stored and marked ``truncated`` ("size" or "time") in the metadata that
carries its sha256: the object's own, or its ``.sha256`` object's after a multipart upload.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, TypeVar

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from iics_monitor.errors import AnswerLost, MonitorError, StoreUnavailable
from iics_monitor.observability import logger
from iics_monitor.validation import EXPORT, IMPORT, parse_job_id, parse_org_name

MIB = 1024 * 1024
LOG_CONTENT_TYPE = "text/plain; charset=utf-8"
PACKAGE_CONTENT_TYPE = "application/zip"
# Memory stays near (in-memory chunks + concurrency) x chunk size = 32 MiB, whatever the log size.
CHUNK_BYTES = 8 * MIB
FETCH_ATTEMPTS = 6  # a 20% failure rate leaves a 1-in-15,000 chance of losing a log
MAX_RETRY_SLEEP_SECONDS = 10.0
DEFAULT_MAX_BYTES = 1024 * MIB  # 1 GiB: the template's ArchiveMaxBytes
TRUNCATED_BY_SIZE, TRUNCATED_BY_TIME = "size", "time"

T = TypeVar("T")


def transfer_config() -> TransferConfig:
    config = TransferConfig(
        multipart_threshold=CHUNK_BYTES,
        multipart_chunksize=CHUNK_BYTES,
        max_concurrency=2,
        use_threads=True,
    )
    # s3transfer's default buffers 10 chunks of a non-seekable stream; two keep memory flat.
    config.max_in_memory_upload_chunks = 2
    return config


class HashingReader:
    """A read-only stream that counts and hashes what passes through it (and shows it to ``observer``)."""

    def __init__(self, stream: BinaryIO, observer: Callable[[bytes], None] | None = None) -> None:
        self._stream = stream
        self._observer = observer
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.sha256.update(data)
        self.size += len(data)
        if self._observer is not None and data:
            self._observer(data)
        return data

    def read_up_to(self, size: int) -> bytes:
        """Up to ``size`` bytes, fewer only at the end of the stream (an HTTP body arrives in pieces)."""
        pieces, wanted = [], size
        while wanted > 0:
            piece = self.read(wanted)
            if not piece:
                break
            pieces.append(piece)
            wanted -= len(piece)
        return b"".join(pieces)


class CappedReader:
    """A stream read up to ``max_bytes`` and until ``until`` (a ``clock`` time); then it ends early and
    ``truncated`` says why. The deadline is the stream's own (a read past it raises ``AnswerLost``)."""

    def __init__(
        self, stream: BinaryIO, max_bytes: int, until: float = math.inf, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._stream, self._left, self._until, self._clock = stream, max_bytes, until, clock
        self.truncated: str | None = None

    def read(self, size: int = -1) -> bytes:
        if self.truncated:
            return b""
        if self._clock() >= self._until:
            self.truncated = TRUNCATED_BY_TIME
            return b""
        wanted = self._left + 1 if size is None or size < 0 else min(size, self._left + 1)
        try:
            data = self._stream.read(wanted)
        except AnswerLost:
            if self._clock() < self._until:
                raise  # not our deadline: the stream failed, and is tried again
            self.truncated = TRUNCATED_BY_TIME
            return b""
        if len(data) > self._left:  # one byte past the cap shows there is more
            data, self.truncated = data[: self._left], TRUNCATED_BY_SIZE
        self._left -= len(data)
        return data


class _Prefixed:
    """``head`` (already read and hashed), then the rest of ``reader``: what the multipart upload reads."""

    def __init__(self, head: bytes, reader: HashingReader) -> None:
        self._head, self._reader = head, reader

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size is None or size < 0:
                data, self._head = self._head + self._reader.read(), b""
                return data
            data, self._head = self._head[:size], self._head[size:]
            # A short read would end a part early; parts but the last must be 5 MiB or more.
            return data + self._reader.read_up_to(size - len(data))
        return self._reader.read(size)


@dataclass(frozen=True)
class ArchivedLog:
    """Where an archived object (the log, or the package) is, with its size and sha256."""

    bucket: str
    key: str
    size_bytes: int
    sha256: str
    truncated: str | None = None  # "size" or "time": the object holds what arrived before the cap

    def to_dict(self) -> dict[str, Any]:
        fields = {"bucket": self.bucket, "key": self.key, "sizeBytes": self.size_bytes, "sha256": self.sha256}
        return fields | ({"truncated": self.truncated} if self.truncated else {})


def with_retries(
    call: Callable[[], T],
    *,
    attempts: int = FETCH_ATTEMPTS,
    sleep=time.sleep,
    seconds_left: Callable[[], float] = lambda: math.inf,
) -> T:
    """``call()``, tried again on a transient error of IICS or S3 (honouring Retry-After, briefly),
    while a wait and another try fit in ``seconds_left()``."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except MonitorError as error:
            delay = getattr(error, "retry_after", None) or float(2 ** (attempt - 1))
            if not error.transient or attempt == attempts or min(delay, MAX_RETRY_SLEEP_SECONDS) >= seconds_left():
                raise
            logger.warning("Archive step failed; trying again", extra={"error": type(error).__name__})
            sleep(min(delay, MAX_RETRY_SLEEP_SECONDS))
    raise AssertionError("unreachable")


class LogArchiver:
    """Writes ``<prefix>[org=<org>/]YYYY/MM/DD/<jobId>/`` ``export.log`` (an import's: ``import.log``),
    ``status.json`` and ``package.zip`` to one bucket. The stack's own org has no ``org=`` folder, so
    its exports keep the keys they always had; a further org's jobs are under ``org=<name>/`` (a
    Hive-style partition: Athena and S3 permissions can address one org)."""

    def __init__(
        self, bucket: str, prefix: str, s3_client: Any | None = None, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.max_bytes = max_bytes
        self._s3 = s3_client or boto3.client("s3")
        self._config = transfer_config()

    def folder(self, job_id: str, when: datetime, org: str | None = None) -> str:
        org_folder = "" if org is None else f"org={parse_org_name(org)}/"
        return f"{self.prefix}{org_folder}{when:%Y/%m/%d}/{parse_job_id(job_id)}/"

    def put_log(
        self,
        job_id: str,
        state: str,
        stream: BinaryIO,
        when: datetime,
        observer: Callable[[bytes], None] | None = None,
        until: float = math.inf,
        kind: str = EXPORT,
        org: str | None = None,
    ) -> ArchivedLog:
        key = self.folder(job_id, when, org) + ("import.log" if kind == IMPORT else "export.log")
        metadata = {"job-id": job_id, "state": state} | ({"kind": kind} if kind != EXPORT else {})
        metadata |= {"org": org} if org is not None else {}
        with _s3_errors_as_store_unavailable("the log"):
            return self._put_stream(key, self._capped(stream, until), LOG_CONTENT_TYPE, metadata, observer)

    def put_package(
        self,
        job_id: str,
        stream: BinaryIO,
        when: datetime,
        until: float = math.inf,
        org: str | None = None,
        observer: Callable[[bytes], None] | None = None,
    ) -> ArchivedLog:
        key = self.folder(job_id, when, org) + "package.zip"
        metadata = {"job-id": job_id}
        with _s3_errors_as_store_unavailable("the package"):
            return self._put_stream(key, self._capped(stream, until), PACKAGE_CONTENT_TYPE, metadata, observer)

    def _capped(self, stream: BinaryIO, until: float) -> CappedReader:
        return CappedReader(stream, self.max_bytes, until)

    def put_status(self, job_id: str, body: dict[str, Any], when: datetime, org: str | None = None) -> str:
        with _s3_errors_as_store_unavailable("status.json"):
            return self._put_status(job_id, body, when, org)

    def _put_stream(
        self,
        key: str,
        stream: CappedReader,
        content_type: str,
        metadata: dict[str, str],
        observer: Callable[[bytes], None] | None = None,
    ) -> ArchivedLog:
        reader = HashingReader(stream, observer)
        head = reader.read_up_to(CHUNK_BYTES + 1)
        if len(head) <= CHUNK_BYTES:  # the whole object: one request, checked by S3
            digest = reader.sha256.digest()
            self._s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=head,
                ContentType=content_type,
                Metadata=metadata | {"sha256": digest.hex()} | _truncated(stream),
                ChecksumSHA256=base64.b64encode(digest).decode(),
            )
        else:
            extra = {"ContentType": content_type, "Metadata": metadata}
            self._s3.upload_fileobj(_Prefixed(head, reader), self.bucket, key, ExtraArgs=extra, Config=self._config)
            name = key.rsplit("/", 1)[-1]
            self._s3.put_object(
                Bucket=self.bucket,
                Key=f"{key}.sha256",
                Body=f"{reader.sha256.hexdigest()}  {name}\n".encode(),
                ContentType=LOG_CONTENT_TYPE,
                Metadata={"job-id": metadata["job-id"]} | _truncated(stream),
            )
        if stream.truncated:
            logger.warning("Archived object truncated", extra={"key": key, "truncated": stream.truncated})
        return ArchivedLog(self.bucket, key, reader.size, reader.sha256.hexdigest(), stream.truncated)

    def _put_status(self, job_id: str, body: dict[str, Any], when: datetime, org: str | None = None) -> str:
        key = self.folder(job_id, when, org) + "status.json"
        self._s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=json.dumps(body, indent=2).encode(),
            ContentType="application/json",
            Metadata={"job-id": job_id},
        )
        return key


def _truncated(stream: CappedReader) -> dict[str, str]:
    return {"truncated": stream.truncated} if stream.truncated else {}


# S3 refusals another try cannot change: the function's role or the bucket's key does not allow the write.
REFUSALS = frozenset(
    {"AccessDenied", "AllAccessDisabled", "AccountProblem", "InvalidAccessKeyId", "KMS.AccessDeniedException"}
)


@contextlib.contextmanager
def _s3_errors_as_store_unavailable(what: str) -> Iterator[None]:
    """S3 failures (after boto3's own retries) as one type; the text names the error code only. It is
    transient, unless S3 refused the write (REFUSALS): retrying that would only spend the function's time."""
    try:
        yield
    except (BotoCoreError, ClientError, Boto3Error) as error:
        code = error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else type(error).__name__
        failure = StoreUnavailable(f"S3 did not store {what}: {code}")
        failure.transient = code not in REFUSALS
        raise failure from None

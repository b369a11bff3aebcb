"""The IICS client's import calls against the emulator over loopback: upload, start, status and log of
an import, each org seeing only its own jobs, refusals as typed errors, and an upload streamed in
bounded memory."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

import iics_monitor_local
from iics_monitor.client import IicsClient
from iics_monitor.credentials import Credentials
from iics_monitor.errors import BadRequest, InvalidInput, InvalidJobId, JobNotFound, NotSent, StartUnconfirmed
from iics_monitor_local.emulator import Fault
from tests.conftest import EMULATOR_HOSTS, PASSWORD, USERNAME

REAL_PACKAGE = Path(__file__).resolve().parents[1] / "golden/real-export-package-2021.zip"
MIB = 1024 * 1024


def client_for(emulator, username=USERNAME, password=PASSWORD) -> IicsClient:
    credentials = Credentials(username=username, password=password, login_url=emulator.url)
    return IicsClient(lambda: credentials, hosts=EMULATOR_HOSTS)


@pytest.fixture
def client(emulator):
    return client_for(emulator)


def upload_real(client, **options) -> dict:
    with REAL_PACKAGE.open("rb") as stream:
        return client.upload_package(stream, REAL_PACKAGE.stat().st_size, **options)


def test_an_import_is_uploaded_started_watched_and_its_log_read(emulator, client):
    uploaded = upload_real(client, filename="release.zip")
    job_id = uploaded["jobId"]
    assert uploaded["jobStatus"]["state"] == "NOT_STARTED" and uploaded["checksumValid"] is True

    started = client.start_import(job_id, "release-to-prod", "OVERWRITE")
    assert (started["id"], started["status"]["state"]) == (job_id, "IN_PROGRESS")
    assert client.get_status(job_id, kind="import")["status"]["state"] == "IN_PROGRESS"
    finished = client.get_status(job_id, kind="import", expand_objects=True)
    assert finished["status"]["state"] == "SUCCESSFUL" and len(finished["objects"]) == 5
    assert finished["sourceOrgId"] == "fg1dzqDZ1K3lbHp8uq5vQB"
    with client.open_log(job_id, kind="import") as log:
        assert log.read().decode().count("> OIE_006 INFO ") == 5

    upload = next(r for r in emulator.requests if r.route == "upload")
    assert upload.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert int(upload.headers["Content-Length"]) == len(upload.body)
    assert b'name="package"; filename="release.zip"' in upload.body
    start = next(r for r in emulator.requests if r.route == "import")
    assert json.loads(start.body) == {
        "name": "release-to-prod",
        "importSpecification": {"defaultConflictResolution": "OVERWRITE"},
    }


def test_start_import_sends_include_objects_and_reuse(emulator, client):
    job_id = upload_real(client)["jobId"]

    client.start_import(job_id, "only-the-project", "REUSE", include_objects=["aeOwF2U4Uauf5fdiFwaLCz"])

    objects = client.get_status(job_id, kind="import", expand_objects=True)["objects"]
    assert [o["name"] for o in objects] == ["infapy"]
    start = json.loads(next(r for r in emulator.requests if r.route == "import").body)
    assert start["importSpecification"] == {
        "defaultConflictResolution": "REUSE",
        "includeObjects": ["aeOwF2U4Uauf5fdiFwaLCz"],
    }


def test_an_orgs_session_cannot_see_another_orgs_job(emulator, client):
    emulator.add_org("bob@example.com", "prod-password", "prod-org")
    prod = client_for(emulator, "bob@example.com", "prod-password")
    theirs = upload_real(prod)["jobId"]

    with pytest.raises(JobNotFound, match=f"Import job \\[{theirs}\\] was not found"):
        client.get_status(theirs, kind="import")
    with pytest.raises(JobNotFound):
        client.start_import(theirs, "not-mine", "OVERWRITE")
    assert prod.start_import(theirs, "mine", "OVERWRITE")["status"]["state"] == "IN_PROGRESS"


def test_a_zip_that_is_not_a_package_is_a_bad_request_with_the_emulators_message(client):
    not_a_zip = b"this is not a zip"

    with pytest.raises(BadRequest) as refused:
        client.upload_package(io.BytesIO(not_a_zip), len(not_a_zip))

    assert refused.value.message == "The uploaded file is not a valid zip file."
    assert refused.value.status == 400


def changed_real_package() -> bytes:
    source, data = zipfile.ZipFile(REAL_PACKAGE), io.BytesIO()
    with zipfile.ZipFile(data, "w") as copy:
        for name in source.namelist():
            copy.writestr(name, source.read(name) + (b"!" if name == "SYS/__ff.Connection.zip" else b""))
    return data.getvalue()


def test_a_changed_package_is_refused_unless_relax_checksum(client):
    package = changed_real_package()

    with pytest.raises(BadRequest, match=r"SYS/__ff\.Connection\.zip"):
        client.upload_package(io.BytesIO(package), len(package))
    relaxed = client.upload_package(io.BytesIO(package), len(package), relax_checksum=True)
    assert relaxed["checksumValid"] is False


@pytest.fixture
def emulator_process(tmp_path):
    """The emulator in a process of its own, so that tracemalloc here counts only the client's memory."""
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps({"username": USERNAME, "password": PASSWORD}))
    env = {**os.environ, "PYTHONPATH": str(Path(iics_monitor_local.__file__).parents[1])}
    command = [sys.executable, "-m", "iics_monitor_local.emulator", "--port", "0", "--scenario", str(scenario)]
    # This interpreter running this package: no untrusted input reaches the command line.
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env) as server:  # noqa: S603
        try:
            yield SimpleNamespace(url=server.stdout.readline().split()[-1])
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=10)


def test_a_tens_of_mib_package_streams_without_the_client_holding_it(emulator_process, tmp_path):
    """The zip is read 64 KiB at a time: the client's peak allocation stays a small fraction of its size."""
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:  # stored: the file is as big as its data
        archive.writestr("exportMetadata.v2.json", b'{"name": "big", "exportedObjects": []}')
        archive.writestr("exportPackage.chksum", b"#\n")
        archive.writestr("SYS/blob.Connection.zip", os.urandom(40 * MIB))
    size = path.stat().st_size
    client = client_for(emulator_process)
    client.login()

    with path.open("rb") as stream:
        tracemalloc.start()
        try:
            answer = client.upload_package(stream, size)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert answer["checksumValid"] is True and answer["jobStatus"]["state"] == "NOT_STARTED"
    print(f"uploaded {size / MIB:.1f} MiB; client peak traced allocation {peak / 1024:.0f} KiB")
    assert peak < 1 * MIB


def test_a_stream_shorter_than_announced_is_not_passed_off_as_the_package(client):
    with pytest.raises(InvalidInput, match="ended 10 bytes short"):
        client.upload_package(io.BytesIO(b"PK"), 12)


def test_the_upload_is_resent_from_the_start_after_a_refused_session(emulator, client):
    client.login()
    emulator.invalidate_sessions()

    answer = upload_real(client)

    assert answer["checksumValid"] is True and client.logins == 2
    uploads = [r for r in emulator.requests if r.route == "upload"]
    assert [r.status for r in uploads] == [401, 200] and uploads[0].body == uploads[1].body


def test_a_stream_that_cannot_seek_back_is_not_sent_twice(emulator, client):
    class OneWay(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            return self._data.readinto(buffer)

    client.login()
    emulator.invalidate_sessions()
    data = REAL_PACKAGE.read_bytes()

    with pytest.raises(NotSent, match="cannot be read again"):
        client.upload_package(OneWay(data), len(data))


def test_an_upload_whose_answer_is_lost_says_a_job_may_wait_not_started(emulator, client):
    client.login()
    emulator.add_fault(Fault(route="upload", kind="reset"))

    with pytest.raises(Exception, match="may have created an import job, NOT_STARTED") as lost:
        upload_real(client)

    assert not isinstance(lost.value, StartUnconfirmed)


def test_a_start_whose_answer_is_lost_is_unconfirmed_and_not_retried(emulator, client):
    job_id = upload_real(client)["jobId"]
    emulator.add_fault(Fault(route="import", kind="reset"))

    with pytest.raises(StartUnconfirmed, match="an import may have started"):
        client.start_import(job_id, "deploy", "OVERWRITE")

    assert [r.route for r in emulator.requests].count("import") == 1


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.start_import("job1", "deploy", "MERGE"), InvalidInput),
        (lambda c: c.start_import("job1", " ", "OVERWRITE"), InvalidInput),
        (lambda c: c.start_import("bad/id", "deploy", "OVERWRITE"), InvalidJobId),
        (lambda c: c.start_import("job1", "deploy", "REUSE", include_objects=["ok", "../etc"]), InvalidJobId),
        (lambda c: c.upload_package(io.BytesIO(b""), -1), InvalidInput),
        (lambda c: c.upload_package(io.BytesIO(b""), 0, filename='a"; name="x'), InvalidInput),
        (lambda c: c.get_status("job1", kind="metering"), ValueError),
        (lambda c: c.open_log("job1", kind="imports"), ValueError),
    ],
    ids=["resolution", "name", "job id", "include id", "size", "filename", "status kind", "log kind"],
)
def test_bad_arguments_are_refused_before_anything_is_sent(emulator, client, call, error):
    with pytest.raises(error):
        call(client)

    assert emulator.requests == []


def test_exports_are_still_the_default(emulator, client):
    job_id = emulator.add_job(states=["SUCCESSFUL"])

    assert client.get_status(job_id)["status"]["state"] == "SUCCESSFUL"
    with client.open_log(job_id) as log:
        assert b"Starting export operation." in log.read()
    assert all("/public/core/v3/export/" in r.path for r in emulator.requests if r.route != "login")


class SlowZip:
    """A package's bytes handed over slowly, over ``seconds`` in all, as a far-away pod takes them."""

    def __init__(self, data: bytes, seconds: float) -> None:
        self._stream = io.BytesIO(data)
        self._pause = seconds / max(1, len(data) // (64 * 1024))

    def read(self, size: int = -1) -> bytes:
        import time

        time.sleep(self._pause)
        return self._stream.read(size)


def big_package(size: int) -> bytes:
    """A real-layout package with one stored entry of ``size`` bytes, its manifest right."""
    import hashlib

    entry = os.urandom(size)
    metadata = json.dumps({"name": "big", "sourceOrgId": "fg1dzqDZ1K3lbHp8uq5vQB", "exportedObjects": []}).encode()
    manifest = "#\n#Sat Dec 05 00:00:00 UTC 2026\n" + "".join(
        f"{name}={hashlib.sha256(data).hexdigest().upper()}\n"
        for name, data in (("Explore/big.DTEMPLATE.zip", entry), ("exportMetadata.v2.json", metadata))
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("Explore/big.DTEMPLATE.zip", entry)
        archive.writestr("exportMetadata.v2.json", metadata)
        archive.writestr("exportPackage.chksum", manifest)
    return out.getvalue()


def test_an_upload_slower_than_one_requests_time_still_goes_up(emulator):
    """One IICS request may take request_seconds in all; an upload has that plus its bytes at 1 MiB/s,
    so a package that takes longer to send than request_seconds is not cut off mid-send."""
    credentials = Credentials(username=USERNAME, password=PASSWORD, login_url=emulator.url)
    client = IicsClient(lambda: credentials, hosts=EMULATOR_HOSTS, request_seconds=1.0)
    data = big_package(2 * MIB)

    uploaded = client.upload_package(SlowZip(data, seconds=1.5), len(data))  # 1.5 s to send; allowed 1 + 2 s

    assert uploaded["checksumValid"] is True

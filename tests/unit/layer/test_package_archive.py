"""finish: the package is verified and described while it is archived, from a copy under /tmp that is
removed afterwards. The real IicsClient talks to the emulator; the real LogArchiver writes to moto's S3."""

from __future__ import annotations

import tempfile

import pytest

from iics_monitor import package
from iics_monitor.finish import finish_job
from iics_monitor_local.emulator import Fault
from tests.conftest import assert_valid_outcome
from tests.unit.layer.test_finish import NOW, finish_event

OBJECTS = [
    {"id": f"{letter * 21}1", "name": f"m_{letter}", "path": f"/Sales/m_{letter}", "type": "DTEMPLATE"}
    for letter in "abc"
] + [{"id": "c" * 21 + "9", "name": "ff", "path": "/SYS/ff", "type": "Connection"}]


@pytest.fixture(autouse=True)
def tmp_dir(tmp_path, monkeypatch):
    """The function's /tmp: the copy goes where tempfile puts files."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def archive_package(client, archiver, job_id: str) -> dict:
    detail = finish_job(
        finish_event(job_id, "SUCCESSFUL"), source=client, archiver=archiver, now=NOW, archive_package=True
    )
    assert_valid_outcome(detail)
    return detail["package"]


def test_a_normal_exports_package_is_verified_and_described(emulator, client, archiver, tmp_dir):
    job_id = emulator.add_job(name="promote_sales", states=["SUCCESSFUL"], objects=OBJECTS)

    archived = archive_package(client, archiver, job_id)

    assert archived["verified"] is True
    verification = archived["verification"]
    assert verification["error"] is None and verification["mismatches"]["count"] == 0
    assert verification["entries"] == 7 and verification["listed"] == 5  # 4 assets and the metadata; + manifest, CSV
    contents = archived["contents"]
    assert contents["source"] == "metadata" and contents["name"] == "promote_sales" and contents["objects"] == 4
    assert contents["byType"] == {"DTEMPLATE": 3, "Connection": 1}
    assert list(tmp_dir.iterdir()) == []


def test_a_corrupt_package_is_archived_verified_false_naming_the_entry(emulator, client, archiver, s3, tmp_dir):
    job_id = emulator.add_job(states=["SUCCESSFUL"], objects=OBJECTS, corrupt_package=True)

    archived = archive_package(client, archiver, job_id)

    assert archived["verified"] is False
    [mismatch] = archived["verification"]["mismatches"]["shown"]
    assert mismatch["entry"].endswith(".zip") and mismatch["expected"] != mismatch["actual"]
    assert s3.head_object(Bucket=archived["bucket"], Key=archived["key"])["ContentLength"] == archived["sizeBytes"]
    assert list(tmp_dir.iterdir()) == []


def test_a_package_read_twice_after_a_broken_stream_is_verified_from_the_second_copy(
    emulator, client, archiver, tmp_dir
):
    job_id = emulator.add_job(states=["SUCCESSFUL"], objects=OBJECTS)
    emulator.add_fault(Fault(route="package", kind="reset"))

    archived = archive_package(client, archiver, job_id)

    assert archived["verified"] is True
    assert list(tmp_dir.iterdir()) == []


def test_a_package_past_the_copys_cap_is_archived_unverified(emulator, client, archiver, tmp_dir, monkeypatch):
    monkeypatch.setattr(package.LocalCopy.__init__, "__defaults__", (1_000, None))
    job_id = emulator.add_job(states=["SUCCESSFUL"], objects=OBJECTS)

    archived = archive_package(client, archiver, job_id)

    assert archived["verified"] is None and "larger than the 1000 bytes" in archived["verification"]["error"]
    assert archived["contents"] is None and archived["sha256"]
    assert list(tmp_dir.iterdir()) == []


def test_a_verifier_that_raises_leaves_the_archive_and_outcome_whole(emulator, client, archiver, tmp_dir, monkeypatch):
    def broken(*_args, **_kwargs):
        raise MemoryError

    monkeypatch.setattr(package, "describe", broken)
    job_id = emulator.add_job(states=["SUCCESSFUL"], objects=OBJECTS)

    archived = archive_package(client, archiver, job_id)

    assert archived["verified"] is None and archived["verification"]["error"] == "verification failed: MemoryError"
    assert list(tmp_dir.iterdir()) == []

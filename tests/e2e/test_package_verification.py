"""Through the real state machine: the package of a finished export is verified against its manifest and
described in the outcome, and a corrupt one says which entry no longer matches. The ArchiveLog function
runs in its worker process and leaves no copy in /tmp."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

from iics_monitor_local.emulator import Fault
from tests.e2e.conftest import Pipeline

OBJECTS = [
    {"id": "aaaaaaaaaaaaaaaaaaaaa1", "name": "m_orders", "path": "/Sales", "type": "DTEMPLATE"},
    {"id": "aaaaaaaaaaaaaaaaaaaaa2", "name": "mt_orders", "path": "/Sales", "type": "MTT"},
    {"id": "aaaaaaaaaaaaaaaaaaaaa3", "name": "conn_sf", "path": "/SYS", "type": "Connection"},
]


def copies_in_tmp() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("package-*.zip"))


def test_a_package_is_verified_and_described_and_a_corrupt_one_names_its_entry(pipeline: Pipeline, emulator):
    before = copies_in_tmp()
    good = emulator.add_job(name="nightly_sales", states=["IN_PROGRESS", "SUCCESSFUL"], objects=OBJECTS)
    corrupt = emulator.add_job(states=["SUCCESSFUL"], objects=OBJECTS, corrupt_package=True)
    emulator.add_fault(Fault(route="package", kind="reset"))  # the first download breaks: the copy starts again

    verified = pipeline.start({"jobId": good}).outcome["package"]
    refused = pipeline.start({"jobId": corrupt}).outcome["package"]

    assert verified["verified"] is True and verified["verification"]["mismatches"]["count"] == 0
    assert verified["contents"]["name"] == "nightly_sales" and verified["contents"]["objects"] == 3
    assert verified["contents"]["byFolder"] == {"/Explore/Sales": 2, "/SYS": 1}
    assert refused["verified"] is False
    [mismatch] = refused["verification"]["mismatches"]["shown"]
    body = pipeline.stack.client("s3").get_object(Bucket=refused["bucket"], Key=refused["key"])["Body"].read()
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert mismatch["entry"] in archive.namelist()  # the archived package holds the entry it names
    assert copies_in_tmp() <= before

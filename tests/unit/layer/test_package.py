"""package: an export package checked against its manifest and described, read from a local file.

The real package captured from IICS in 2021 (tests/golden) is the reference; the others are it, edited.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from iics_monitor import package
from iics_monitor.package import LOCAL_COPY_MAX_BYTES, LocalCopy, check, describe, parse_manifest, verify
from iics_monitor_local import template
from tests.conftest import ROOT

REAL = ROOT / "tests" / "golden" / "real-export-package-2021.zip"
ASSET = "Explore/infapy/m_infapy_test.DTEMPLATE.zip"


def real_entries() -> dict[str, bytes]:
    with zipfile.ZipFile(REAL) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def manifest_of(entries: dict[str, bytes], extra: str = "") -> bytes:
    lines = ["#", "#Sun Sep 26 09:06:39 UTC 2021"]
    lines += [f"{name}={hashlib.sha256(data).hexdigest().upper()}" for name, data in entries.items()]
    return ("\n".join(lines) + "\n" + extra).encode()


def json_size(value) -> int:
    return len(json.dumps(value))


# --- verify -------------------------------------------------------------------------------------------------------


def test_the_real_package_verifies_with_its_two_object_ids_reported_as_other_keys():
    report = verify(REAL)

    assert report["verified"] is True and report["error"] is None
    assert (report["entries"], report["listed"]) == (8, 8)
    assert report["otherKeys"] == {"count": 2, "shown": ["cfvpgEOpQmhlh1qOwkFkkc", "hrRCl2TfTa1jvmKBfGC4Il"]}
    assert report["mismatches"]["count"] == report["missing"]["count"] == report["unlisted"]["count"] == 0


def test_a_changed_entry_is_named_as_a_mismatch(tmp_path):
    entries = real_entries()
    original = hashlib.sha256(entries[ASSET]).hexdigest().upper()
    entries[ASSET] += b"\n"

    report = verify(write_zip(tmp_path / "p.zip", entries))

    assert report["verified"] is False
    assert report["mismatches"] == {
        "count": 1,
        "shown": [{"entry": ASSET, "expected": original, "actual": hashlib.sha256(entries[ASSET]).hexdigest().upper()}],
    }


def test_a_listed_entry_missing_from_the_zip_and_an_unlisted_one_are_named(tmp_path):
    entries = real_entries()
    del entries[ASSET]
    entries["Explore/infapy/extra.MTT.zip"] = b"added after export"

    report = verify(write_zip(tmp_path / "p.zip", entries))

    assert report["verified"] is False
    assert report["missing"] == {"count": 1, "shown": [ASSET]}
    assert report["unlisted"] == {"count": 1, "shown": ["Explore/infapy/extra.MTT.zip"]}
    assert report["otherKeys"]["count"] == 2  # the object ids are still not "missing"


@pytest.mark.parametrize(
    ("content", "error"),
    [(b"not a zip at all", "not a zip"), (REAL.read_bytes().replace(b"PK\x01\x02", b"XXXX"), "not a readable zip")],
)
def test_a_file_that_is_not_a_zip_is_not_verified_and_says_why(tmp_path, content, error):
    path = tmp_path / "p.zip"
    path.write_bytes(content)

    report = verify(path)

    assert report["verified"] is False and error in report["error"]
    assert describe(path)["error"] is not None


def test_a_package_without_its_manifest_is_not_verified(tmp_path):
    entries = real_entries()
    del entries["exportPackage.chksum"]

    report = verify(write_zip(tmp_path / "p.zip", entries))

    assert report["verified"] is False and "no exportPackage.chksum" in report["error"]


def test_the_manifest_is_read_leniently_escapes_and_case_and_a_bad_line_is_counted():
    text = b"#\n! a comment\n\nSYS/a\\:b.Connection.zip = " + b"ab" * 32 + b"\nSYS/caf\\u00e9.zip:" + b"CD" * 32
    smile = b"\\uD83D\\uDE00.zip=" + b"EF" * 32 + "\ngrüße.zip=".encode() + b"01" * 32
    manifest, bad = parse_manifest(text + b"\nno separator here\nx=not-a-digest\n" + smile)

    assert manifest["SYS/a:b.Connection.zip"] == "AB" * 32
    assert manifest["SYS/café.zip"] == "CD" * 32
    assert manifest["x"] == "NOT-A-DIGEST"
    assert manifest["\U0001f600.zip"] == "EF" * 32 and manifest["grüße.zip"] == "01" * 32
    assert bad == 2


def test_a_hostile_manifest_gives_a_report_of_bounded_size(tmp_path):
    entries = real_entries()
    long = "K" * 1_000  # 2,000 lines of it: half the manifest's 4 MiB cap
    junk = "".join(f"Explore/{long}{n}.MTT.zip={'0' * 64}\n" for n in range(2_000))
    entries["exportPackage.chksum"] = manifest_of({}, junk + f"{'x' * 50_000}={'1' * 64}\n")
    for n in range(300):
        entries[f"Explore/{long}/{n}.zip"] = b""

    report = verify(write_zip(tmp_path / "p.zip", entries))

    assert report["verified"] is False
    assert report["missing"]["count"] == 2_001 and len(report["missing"]["shown"]) == 5
    assert report["unlisted"]["count"] == 306  # 300 added, 6 real (not the manifest, not the CSV)
    assert json_size(report) < 6_000


def test_a_manifest_past_its_cap_is_not_read(tmp_path, monkeypatch):
    monkeypatch.setattr(package, "MAX_MANIFEST_BYTES", 100)

    report = verify(REAL)

    assert report["verified"] is False and "larger than 100 bytes" in report["error"]


def test_too_many_entries_are_refused_before_the_directory_is_parsed(tmp_path, monkeypatch):
    monkeypatch.setattr(package, "MAX_ENTRIES", 5)

    report = verify(REAL)

    assert report["verified"] is None and "8 entries" in report["error"]


def test_hashing_stops_at_the_deadline():
    report = verify(REAL, until=0.0, clock=lambda: 1.0)

    assert report["verified"] is None and "out of time" in report["error"]


# --- describe -----------------------------------------------------------------------------------------------------


def test_the_real_package_is_described_from_its_metadata():
    assert describe(REAL) == {
        "source": "metadata",
        "name": "MyTestJobFromPython",
        "sourceOrgId": "fg1dzqDZ1K3lbHp8uq5vQB",
        "sourceOrgName": "GCS IICS",
        "objects": 5,
        "byType": {"AgentGroup": 1, "Connection": 1, "DTEMPLATE": 1, "MTT": 1, "Project": 1},
        "otherTypes": 0,
        "byFolder": {"/Explore/infapy": 2, "/SYS": 2, "/Explore": 1},
        "otherFolders": 0,
        "error": None,
    }


def test_without_metadata_the_contents_csv_describes_the_package(tmp_path):
    entries = real_entries()
    del entries["exportMetadata.v2.json"]

    contents = describe(write_zip(tmp_path / "p.zip", entries))

    assert contents["source"] == "csv" and contents["objects"] == 5
    assert contents["byFolder"] == {"/Explore/infapy": 2, "/SYS": 2, "/Explore": 1}
    assert contents["name"] is None


def test_a_hostile_metadata_of_100000_objects_with_huge_strings_is_described_in_a_few_kib(tmp_path):
    huge = "T" * 10_000
    objects = [{"objectType": f"{huge}{n % 500}", "path": f"/{huge}/{n}", "objectGuid": "x"} for n in range(100)]
    objects += [{"objectType": f"type{n % 40}", "path": f"/f/{n}"} for n in range(100_000)]
    metadata = {"name": huge, "sourceOrgId": "not an id!", "sourceOrgName": huge, "exportedObjects": objects}
    entries = real_entries() | {"exportMetadata.v2.json": json.dumps(metadata).encode()}

    contents = describe(write_zip(tmp_path / "p.zip", entries))

    assert contents["objects"] == 100_100 and contents["source"] == "metadata"
    assert len(contents["byType"]) == 20 and sum(contents["byType"].values()) + contents["otherTypes"] == 100_100
    assert len(contents["byFolder"]) == 20 and sum(contents["byFolder"].values()) + contents["otherFolders"] == 100_100
    assert contents["sourceOrgId"] is None
    assert json_size(contents) < 5_000


def test_metadata_too_big_to_parse_falls_back_to_the_csv(tmp_path, monkeypatch):
    monkeypatch.setattr(package, "MAX_METADATA_BYTES", 1_000)  # the metadata is 2,980 bytes, the CSV 300

    contents = describe(REAL)

    assert contents["source"] == "csv" and contents["objects"] == 5


# --- the local copy -----------------------------------------------------------------------------------------------


def test_the_copy_fits_the_archive_functions_ephemeral_storage():
    size_mib = template.load()["Resources"]["ArchiveLogFunction"]["Properties"]["EphemeralStorage"]["Size"]
    assert LOCAL_COPY_MAX_BYTES <= (size_mib - 64) * 1024 * 1024  # room for what else is in /tmp


def test_a_copy_past_its_cap_is_dropped_and_not_verified(tmp_path):
    copy = LocalCopy(max_bytes=10, directory=str(tmp_path))
    copy.restart()
    copy.write(b"0123456789")
    copy.write(b"a")

    checked = check(copy, None)

    assert checked["verified"] is None and "larger than the 10 bytes" in checked["verification"]["error"]
    assert list(tmp_path.iterdir()) == []


def test_a_truncated_package_is_not_verified_and_says_so(tmp_path):
    copy = LocalCopy(directory=str(tmp_path))
    copy.restart()
    copy.write(REAL.read_bytes()[:100])

    checked = check(copy, "size")

    assert checked["verified"] is False and "cut short (size)" in checked["verification"]["error"]
    copy.discard()
    assert list(tmp_path.iterdir()) == []


def test_a_fault_in_the_verifier_leaves_verified_null(tmp_path, monkeypatch):
    def broken(*_args, **_kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(package, "verify", broken)
    copy = LocalCopy(directory=str(tmp_path))
    copy.restart()
    copy.write(REAL.read_bytes())

    checked = check(copy, None)

    assert checked == {
        "verified": None,
        "verification": checked["verification"] | {"error": "verification failed: KeyError"},
        "contents": None,
    }

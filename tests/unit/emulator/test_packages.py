"""Export packages in the real layout, compared with the package IICS produced in 2021, and the checks an
upload goes through (iics_monitor_local.packages)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile

import pytest

from iics_monitor_local.packages import PackageError, read_package
from tests.unit.emulator.conftest import REAL_PACKAGE

OBJECTS = [
    {"id": "p1", "name": "Sales", "path": "/", "type": "Project"},
    {"id": "m1", "name": "m_load", "path": "/Sales", "type": "DTEMPLATE"},
    {"id": "t1", "name": "mt_load", "path": "/Sales", "type": "MTT"},
    {"id": "c1", "name": "ff", "type": "Connection"},
    {"id": "r1", "name": "linux", "type": "AgentGroup"},
]


def real() -> zipfile.ZipFile:
    return zipfile.ZipFile(REAL_PACKAGE)


def exported(dev, **job) -> zipfile.ZipFile:
    job_id = dev.emu.add_job(name="nightly", states=["SUCCESSFUL"], objects=OBJECTS, **job)
    reply = dev.get(f"export/{job_id}/package")
    assert reply.status == 200
    return zipfile.ZipFile(io.BytesIO(reply.data))


def entry_shapes(names) -> set[str]:
    """Entry names with the asset and job names taken out: what the layout alone decides."""
    shapes = set()
    for name in names:
        name = re.sub(r"^ContentsofExportPackage_.*\.csv$", "ContentsofExportPackage_<job>.csv", name)
        shapes.add(re.sub(r"^(Explore|SYS)/(?:[^/]+/)*[^/]+\.", r"\1/.../<name>.", name))
    return shapes


def test_entries_follow_the_real_layout(dev):
    package = exported(dev)

    assert set(package.namelist()) == {
        "Explore/Sales.Project.json",
        "Explore/Sales/m_load.DTEMPLATE.zip",
        "Explore/Sales/mt_load.MTT.zip",
        "SYS/ff.Connection.zip",
        "SYS/linux.AgentGroup.zip",
        "exportMetadata.v2.json",
        "exportPackage.chksum",
        "ContentsofExportPackage_nightly.csv",
    }
    assert entry_shapes(package.namelist()) == entry_shapes(real().namelist())


def test_metadata_has_the_real_keys_and_package_folders_as_paths(dev, emu):
    metadata = json.loads(exported(dev).read("exportMetadata.v2.json"))
    real_metadata = json.loads(real().read("exportMetadata.v2.json"))

    assert list(metadata) == list(real_metadata) == ["name", "sourceOrgId", "sourceOrgName", "exportedObjects"]
    assert (metadata["name"], metadata["sourceOrgId"], metadata["sourceOrgName"]) == (
        "nightly",
        emu.org_id,
        emu.org_name,
    )
    ours, theirs = metadata["exportedObjects"][0], real_metadata["exportedObjects"][0]
    assert list(ours) == list(theirs)
    assert list(ours["metadata"]) == list(theirs["metadata"])
    assert list(ours["metadata"]["additionalInfo"]) == list(theirs["metadata"]["additionalInfo"])
    assert [(o["objectGuid"], o["path"]) for o in metadata["exportedObjects"]] == [
        ("p1", "/Explore"),
        ("m1", "/Explore/Sales"),
        ("t1", "/Explore/Sales"),
        ("c1", "/SYS"),
        ("r1", "/SYS"),
    ]


def test_contents_csv_has_the_real_header_and_a_row_per_object(dev):
    package = exported(dev)
    rows = list(csv.reader(io.StringIO(package.read("ContentsofExportPackage_nightly.csv").decode())))
    real_csv = next(n for n in real().namelist() if n.endswith(".csv"))

    assert rows[0] == next(csv.reader(io.StringIO(real().read(real_csv).decode()))) == [
        "objectPath", "objectName", "objectType", "id"
    ]  # fmt: skip
    assert rows[1:3] == [["/Explore", "Sales", "Project", "p1"], ["/Explore/Sales", "m_load", "DTEMPLATE", "m1"]]
    assert len(rows) == 1 + len(OBJECTS)


def test_manifest_is_a_properties_file_of_upper_case_sha256_for_every_entry_but_itself_and_the_csv(dev):
    package = exported(dev)
    lines = package.read("exportPackage.chksum").decode().splitlines()

    assert lines[0] == "#" and re.fullmatch(r"#\w{3} \w{3} \d\d \d\d:\d\d:\d\d UTC \d{4}", lines[1])
    assert re.fullmatch(
        r"#\w{3} \w{3} \d\d \d\d:\d\d:\d\d UTC \d{4}", real().read("exportPackage.chksum").decode().splitlines()[1]
    )
    listed = dict(line.split("=", 1) for line in lines[2:])
    assert set(listed) == set(package.namelist()) - {"exportPackage.chksum", "ContentsofExportPackage_nightly.csv"}
    for entry, digest in listed.items():
        assert digest == hashlib.sha256(package.read(entry)).hexdigest().upper()


def test_a_corrupt_package_has_one_entry_that_no_longer_matches(dev):
    package = exported(dev, corrupt_package=True)
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as copy:
        for name in package.namelist():
            copy.writestr(name, package.read(name))

    assert read_package(data.getvalue()).mismatched == ("Explore/Sales.Project.json",)


def test_the_real_package_checks_out_and_its_two_stray_manifest_keys_are_reported():
    package = read_package(REAL_PACKAGE.read_bytes())

    assert package.checksum_valid and package.mismatched == ()
    assert package.unknown_keys == ("cfvpgEOpQmhlh1qOwkFkkc", "hrRCl2TfTa1jvmKBfGC4Il")
    assert (package.name, package.source_org_id) == ("MyTestJobFromPython", "fg1dzqDZ1K3lbHp8uq5vQB")
    assert [o.entry for o in package.objects] == [
        "SYS/__ff.Connection.zip",
        "Explore/infapy.Project.json",
        "Explore/infapy/mt_infapy_test.MTT.zip",
        "Explore/infapy/m_infapy_test.DTEMPLATE.zip",
        "SYS/prashanth-sbx.AgentGroup.zip",
    ]


def rezipped(drop: str = "", replace: dict | None = None) -> bytes:
    source, data = real(), io.BytesIO()
    with zipfile.ZipFile(data, "w") as copy:
        for name in source.namelist():
            if name != drop:
                copy.writestr(name, (replace or {}).get(name, source.read(name)))
    return data.getvalue()


@pytest.mark.parametrize(
    ("package", "message"),
    [
        (b"PK\x03\x04 not really a zip", "not a valid zip"),
        (rezipped(drop="exportPackage.chksum"), "no exportPackage.chksum"),
        (rezipped(drop="exportMetadata.v2.json"), "no exportMetadata.v2.json"),
        (rezipped(replace={"exportMetadata.v2.json": b"{not json"}), "exportMetadata.v2.json is not"),
    ],
    ids=["not a zip", "no manifest", "no metadata", "metadata not json"],
)
def test_what_is_not_a_package_is_refused_with_the_reason(package, message):
    with pytest.raises(PackageError, match=message):
        read_package(package)


def test_digests_compare_case_insensitively_and_a_changed_entry_is_named():
    manifest = real().read("exportPackage.chksum").decode()
    lower = re.sub(r"=([0-9A-F]+)", lambda m: "=" + m.group(1).lower(), manifest).encode()
    changed = {"SYS/__ff.Connection.zip": b"edited after export"}

    assert read_package(rezipped(replace={"exportPackage.chksum": lower})).checksum_valid
    assert read_package(rezipped(replace=changed)).mismatched == ("SYS/__ff.Connection.zip",)

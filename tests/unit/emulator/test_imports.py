"""Import jobs over real HTTP: upload (with the manifest check), start, status, log, faults and the
round trip of a package from one org to another."""

from __future__ import annotations

import io
import re
import zipfile

import pytest

from iics_monitor_local.emulator import Fault
from tests.unit.emulator.conftest import REAL_PACKAGE, v3_error

REAL_IDS = [
    "848Au1yuOzAcdxJMgPkdqy",
    "aeOwF2U4Uauf5fdiFwaLCz",
    "1QcjcQ9hXwwcqW1P93354V",
    "3vVj4xdOpKsgAqwRSyhQM3",
    "95OeUg6sjYVhH6zxQUB76k",
]


def uploaded(caller, package: bytes | None = None) -> str:
    reply = caller.upload(REAL_PACKAGE.read_bytes() if package is None else package)
    assert reply.status == 200, reply.data
    return reply.json()["jobId"]


def tampered_real_package() -> bytes:
    source, data = zipfile.ZipFile(REAL_PACKAGE), io.BytesIO()
    with zipfile.ZipFile(data, "w") as copy:
        for name in source.namelist():
            edited = name == "Explore/infapy/mt_infapy_test.MTT.zip"
            copy.writestr(name, source.read(name) + (b"edited" if edited else b""))
    return data.getvalue()


# --- Upload ------------------------------------------------------------------------------------


def test_the_real_package_uploads_with_a_valid_checksum_and_waits_not_started(dev):
    reply = dev.upload(REAL_PACKAGE.read_bytes())

    body = reply.json()
    assert reply.status == 200 and set(body) == {"jobId", "jobStatus", "checksumValid"}
    assert re.fullmatch(r"[A-Za-z0-9]{22}", body["jobId"]) and body["checksumValid"] is True
    assert body["jobStatus"] == {"state": "NOT_STARTED", "message": "Not Started."}
    status = dev.get(f"import/{body['jobId']}").json()
    assert status["status"]["state"] == "NOT_STARTED" and status["endTime"] is None
    assert status["sourceOrgId"] == "fg1dzqDZ1K3lbHp8uq5vQB"
    assert dev.state("import", body["jobId"]) == "NOT_STARTED"  # polling does not start it


@pytest.mark.parametrize(
    ("package", "message"),
    [
        (b"not a zip at all", "The uploaded file is not a valid zip file."),
        (zipfile.ZipFile(REAL_PACKAGE).read("exportMetadata.v2.json"), "The uploaded file is not a valid zip file."),
    ],
    ids=["text", "json"],
)
def test_what_is_not_a_zip_is_a_400_v3_error(dev, package, message):
    assert v3_error(dev.upload(package), 400) == message


def test_a_changed_entry_is_refused_by_name_unless_relax_checksum(dev):
    message = v3_error(dev.upload(tampered_real_package()), 400)

    assert "Explore/infapy/mt_infapy_test.MTT.zip" in message
    relaxed = dev.upload(tampered_real_package(), relax=True)
    assert relaxed.status == 200 and relaxed.json()["checksumValid"] is False


def test_an_upload_without_the_package_field_is_a_400(dev):
    assert "form field" in v3_error(dev.upload(REAL_PACKAGE.read_bytes(), field="file"), 400)


# --- Start, status, log ------------------------------------------------------------------------


def test_an_import_runs_from_its_start_and_lists_the_packages_objects(dev):
    job_id = uploaded(dev)

    started = dev.start(job_id, name="to-prod")
    assert started.status == 200
    assert started.json()["status"] == {"state": "IN_PROGRESS", "message": "In Progress."}
    assert started.json()["name"] == "to-prod" and started.json()["id"] == job_id
    assert [dev.state("import", job_id) for _ in range(2)] == ["IN_PROGRESS", "SUCCESSFUL"]
    status = dev.get(f"import/{job_id}?expand=objects").json()
    assert status["status"] == {"state": "SUCCESSFUL", "message": "Import completed successfully."}
    assert status["endTime"] is not None and status["sourceOrgId"] == "fg1dzqDZ1K3lbHp8uq5vQB"
    assert [(o["id"], o["status"]["state"]) for o in status["objects"]] == [(i, "SUCCESSFUL") for i in REAL_IDS]
    assert status["objects"][2] | {"status": None} == {
        "id": "1QcjcQ9hXwwcqW1P93354V",
        "name": "mt_infapy_test",
        "path": "/Explore/infapy",
        "type": "MTT",
        "description": "",
        "status": None,
    }


def test_the_log_names_each_imported_object_with_oie_006(dev):
    job_id = uploaded(dev)
    dev.start(job_id, name="to-prod")
    assert dev.get(f"import/{job_id}/log").data.decode().splitlines()[0].endswith("Starting import operation.")
    for _ in range(2):
        dev.state("import", job_id)

    lines = dev.get(f"import/{job_id}/log").data.decode().splitlines()
    assert re.fullmatch(r"> OIE_002 INFO \S+Z Starting import operation\.", lines[0])
    assert lines[2] == "Job Name: to-prod"
    imported = [line for line in lines if line.startswith("> OIE_006 INFO ")]
    assert [line.split(" Successfully imported ")[1] for line in imported][:2] == [
        "object [/SYS/__ff] of type [Connection] id [848Au1yuOzAcdxJMgPkdqy]",
        "object [/Explore/infapy] of type [Project] id [aeOwF2U4Uauf5fdiFwaLCz]",
    ]
    assert len(imported) == 5
    assert re.fullmatch(r"> OIE_003 INFO \S+Z Finished import operation\.", lines[-8])
    assert lines[-1] == "Status: SUCCESSFUL"


def test_include_objects_imports_only_those(dev):
    job_id = uploaded(dev)
    dev.start(job_id, includeObjects=REAL_IDS[:2], resolution="REUSE")

    assert [o["id"] for o in dev.get(f"import/{job_id}?expand=objects").json()["objects"]] == REAL_IDS[:2]
    assert "not in the package" in v3_error(dev.start(uploaded(dev), includeObjects=["Nope"]), 400)


def test_objects_the_target_org_cannot_take_fail_the_import(emu, dev):
    emu.fail_imports(emu.org_id, {"mt_infapy_test": "Connection [__ff] is missing in the target org"})
    job_id = uploaded(dev)
    dev.start(job_id)

    assert [dev.state("import", job_id) for _ in range(2)] == ["IN_PROGRESS", "FAILED"]
    objects = dev.get(f"import/{job_id}?expand=objects").json()["objects"]
    assert [o["status"]["state"] for o in objects] == ["SUCCESSFUL", "SUCCESSFUL", "FAILED", "SUCCESSFUL", "SUCCESSFUL"]
    assert objects[2]["status"]["message"] == "Connection [__ff] is missing in the target org"
    lines = dev.get(f"import/{job_id}/log").data.decode().splitlines()
    assert (
        "Failed to import object [/Explore/infapy/mt_infapy_test] of type [MTT] id [1QcjcQ9hXwwcqW1P93354V]: "
        "Connection [__ff] is missing in the target org"
    ) in next(line for line in lines if line.startswith("> OIE_007 ERROR "))
    assert lines[-1] == "Status: FAILED"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"importSpecification": {"defaultConflictResolution": "OVERWRITE"}}, '"name"'),
        ({"name": "x"}, "defaultConflictResolution"),
        ({"name": "x", "importSpecification": {"defaultConflictResolution": "MERGE"}}, "OVERWRITE"),
        ({"name": "x", "importSpecification": {"defaultConflictResolution": "REUSE", "includeObjects": "a"}}, "list"),
    ],
    ids=["no name", "no specification", "unknown resolution", "include not a list"],
)
def test_a_bad_start_body_is_a_400(dev, body, message):
    assert message in v3_error(dev.post(f"import/{uploaded(dev)}", body), 400)


def test_starting_twice_or_an_unknown_job_is_refused(dev):
    job_id = uploaded(dev)
    dev.start(job_id)

    assert v3_error(dev.start(job_id), 400) == f"Import job [{job_id}] was already started."
    assert v3_error(dev.start("NoSuchJob0000000000000"), 404) == "Import job [NoSuchJob0000000000000] was not found."


def test_import_and_export_ids_do_not_mix(emu, dev):
    export_id = emu.add_job(states=["SUCCESSFUL"])
    import_id = uploaded(dev)

    assert dev.get(f"import/{export_id}").status == 404
    assert dev.get(f"export/{import_id}").status == 404
    assert dev.get(f"export/{import_id}/package").status == 404


def test_another_org_cannot_see_start_or_read_an_import(dev, prod):
    job_id = uploaded(prod)

    for reply in (dev.get(f"import/{job_id}"), dev.get(f"import/{job_id}/log"), dev.start(job_id)):
        assert v3_error(reply, 404) == f"Import job [{job_id}] was not found."
    assert prod.start(job_id).status == 200


# --- Round trip ------------------------------------------------------------------------------------


def test_what_one_org_exported_another_imports_cleanly(emu, dev, prod):
    objects = [
        {"id": "p1", "name": "Sales", "path": "/", "type": "Project"},
        {"id": "m1", "name": "m_load", "path": "/Sales", "type": "DTEMPLATE"},
        {"id": "c1", "name": "ff", "type": "Connection"},
    ]
    export_id = emu.add_job(name="release-7", states=["SUCCESSFUL"], objects=objects)
    package = dev.get(f"export/{export_id}/package").data

    reply = prod.upload(package)
    assert reply.status == 200 and reply.json()["checksumValid"] is True
    job_id = reply.json()["jobId"]
    assert prod.start(job_id, name="release-7-to-prod").status == 200
    assert [prod.state("import", job_id) for _ in range(2)] == ["IN_PROGRESS", "SUCCESSFUL"]
    status = prod.get(f"import/{job_id}?expand=objects").json()
    assert status["sourceOrgId"] == emu.org_id
    assert [(o["id"], o["path"], o["status"]["state"]) for o in status["objects"]] == [
        ("p1", "/Explore", "SUCCESSFUL"),
        ("m1", "/Explore/Sales", "SUCCESSFUL"),
        ("c1", "/SYS", "SUCCESSFUL"),
    ]
    log = prod.get(f"import/{job_id}/log").data.decode()
    assert "Successfully imported object [/Explore/Sales/m_load] of type [DTEMPLATE] id [m1]" in log


def test_a_corrupt_export_package_is_refused_on_upload(emu, dev, prod):
    export_id = emu.add_job(states=["SUCCESSFUL"], corrupt_package=True)

    assert "Checksum validation failed" in v3_error(prod.upload(dev.get(f"export/{export_id}/package").data), 400)


# --- Scripted import jobs, faults, rate limit --------------------------------------------------


def test_a_scripted_import_job_follows_its_states_in_its_org(emu, dev, prod):
    job_id = emu.add_job(
        kind="import",
        org=prod.org.org_id,
        source_org_id=emu.org_id,
        states=["IN_PROGRESS", "FAILED"],
        objects=[{"id": "m1", "name": "m_load", "path": "/Sales", "type": "DTEMPLATE"}],
    )

    assert [prod.state("import", job_id) for _ in range(2)] == ["IN_PROGRESS", "FAILED"]
    assert prod.get(f"import/{job_id}").json()["sourceOrgId"] == emu.org_id
    assert "> OIE_007 ERROR " in prod.get(f"import/{job_id}/log").data.decode()
    assert dev.get(f"import/{job_id}").status == 404
    assert v3_error(prod.start(job_id), 400) == f"Import job [{job_id}] was already started."


def test_upload_and_start_faults(emu, dev):
    emu.add_fault(Fault(route="upload", status=503))
    emu.add_fault(Fault(route="import", kind="reset"))

    assert dev.upload(REAL_PACKAGE.read_bytes()).status == 503
    job_id = uploaded(dev)
    with pytest.raises(Exception, match="reset|closed|aborted|Connection"):
        dev.start(job_id)
    assert dev.start(job_id).status == 200
    assert [r.route for r in emu.requests if r.route in ("upload", "import")] == [
        "upload",
        "upload",
        "import",
        "import",
    ]


def test_status_and_log_faults_claim_only_their_import_job(emu, dev):
    job_id, other = uploaded(dev), uploaded(dev)
    emu.add_fault(Fault(route="status", status=429, job_id=job_id, times=None))
    emu.add_fault(Fault(route="log", status=500, job_id=job_id))

    assert dev.get(f"import/{job_id}").status == 429
    assert dev.get(f"import/{other}").status == 200
    assert dev.get(f"import/{job_id}/log").status == 500
    assert dev.get(f"import/{job_id}/log").status == 200


def test_the_import_resources_are_rate_limited_like_the_export_ones(emu, dev):
    assert dev.session  # log in before the limit: login is not throttled
    emu.rate_limit_per_second = 1

    assert dev.upload(REAL_PACKAGE.read_bytes()).status == 200
    throttled = dev.upload(REAL_PACKAGE.read_bytes())
    assert v3_error(throttled, 429) == "too many requests" and throttled.headers["Retry-After"] == "1"


def test_a_scenario_sets_the_default_orgs_import_states(emu, dev):
    emu.load_scenario({"import_states": ["IN_PROGRESS", "WARNING"]})
    job_id = uploaded(dev)
    dev.start(job_id)

    assert [dev.state("import", job_id) for _ in range(2)] == ["IN_PROGRESS", "WARNING"]

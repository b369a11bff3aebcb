"""Several orgs on one pod: each has its own user, sessions and jobs; the login host is shared."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
import urllib3

from iics_monitor_local.emulator import EmulatedOrg, Fault
from tests.unit.emulator.conftest import REAL_PACKAGE, Caller, v3_error


def test_each_user_logs_in_to_its_own_org_on_the_same_host(emu, dev, prod):
    dev_user, prod_user = dev.login()["userInfo"], prod.login()["userInfo"]

    assert (dev_user["orgId"], dev_user["orgName"]) == (emu.org_id, emu.org_name)
    assert (prod_user["orgId"], prod_user["orgName"]) == (prod.org.org_id, "prod-org")
    assert dev_user["id"] != prod_user["id"] and dev_user["sessionId"] != prod_user["sessionId"]
    assert prod.org == EmulatedOrg(prod.org.org_id, "prod-org", "bob", "hunter2")
    assert emu.orgs == [dev.org, prod.org]


def test_v2_login_answers_for_the_users_org(emu, prod):
    body = json.dumps({"@type": "login", "username": "bob", "password": "hunter2"}).encode()
    user = urllib3.request("POST", f"{emu.url}/ma/api/v2/user/login", body=body).json()

    assert (user["orgId"], user["name"]) == (prod.org.org_id, "bob")


def test_a_user_with_another_orgs_password_is_refused(emu, prod):
    body = json.dumps({"username": "bob", "password": "s3cret"}).encode()

    assert urllib3.request("POST", f"{emu.url}/saas/public/core/v3/login", body=body).status == 400


@pytest.mark.parametrize("suffix", ["", "?expand=objects", "/log", "/package"])
def test_another_orgs_job_answers_404_as_if_it_did_not_exist(emu, dev, prod, suffix):
    theirs = emu.add_job(states=["SUCCESSFUL"], org=prod.org.org_id)

    assert prod.get(f"export/{theirs}{suffix}").status == 200
    assert v3_error(dev.get(f"export/{theirs}{suffix}"), 404) == f"Export job [{theirs}] was not found."


def test_a_job_started_by_post_belongs_to_the_sessions_org_and_follows_its_states(emu, dev, prod):
    emu.set_org_states(prod.org.org_id, export_states=["IN_PROGRESS", "IN_PROGRESS", "FAILED"])
    job_id = prod.post("export", {"objects": [{"id": "m1"}]}).json()["id"]

    assert dev.get(f"export/{job_id}").status == 404
    assert [prod.state("export", job_id) for _ in range(3)] == ["IN_PROGRESS", "IN_PROGRESS", "FAILED"]
    default_org_job = dev.post("export", {"objects": [{"id": "m1"}]}).json()["id"]
    assert [dev.state("export", default_org_job) for _ in range(2)] == ["IN_PROGRESS", "SUCCESSFUL"]


def test_the_log_and_package_name_the_jobs_own_org(emu, prod):
    job_id = emu.add_job(name="nightly", states=["SUCCESSFUL"], org=prod.org.org_id)
    prod.get(f"export/{job_id}")

    package = zipfile.ZipFile(io.BytesIO(prod.get(f"export/{job_id}/package").data))

    assert "Organization: prod-org\n" in prod.get(f"export/{job_id}/log").data.decode()
    metadata = json.loads(package.read("exportMetadata.v2.json"))
    assert (metadata["sourceOrgId"], metadata["sourceOrgName"]) == (prod.org.org_id, "prod-org")


def test_each_org_has_its_own_rate_limit(emu, dev, prod):
    emu.rate_limit_per_second = 1
    job_id = emu.add_job(states=["IN_PROGRESS"])
    theirs = emu.add_job(states=["IN_PROGRESS"], org=prod.org.org_id)

    assert dev.get(f"export/{job_id}").status == 200
    assert dev.get(f"export/{job_id}").status == 429
    assert prod.get(f"export/{theirs}").status == 200  # the other org's budget is untouched


def test_org_mistakes_are_refused(emu, prod):
    with pytest.raises(ValueError, match="already has the user"):
        emu.add_org("bob", "other")
    with pytest.raises(ValueError, match="No org with id"):
        emu.add_job(org="NoSuchOrg0000000000000")
    with pytest.raises(ValueError, match="No org with id"):
        emu.fail_imports("NoSuchOrg0000000000000", {"m1": "no"})


def test_a_scenario_declares_orgs_with_their_states_failures_and_jobs(emu):
    emu.load_scenario(
        {
            "orgs": [
                {
                    "id": "ProdOrg000000000000000",
                    "username": "bob",
                    "password": "hunter2",
                    "name": "prod-org",
                    "import_states": ["IN_PROGRESS", "IN_PROGRESS", "SUCCESSFUL"],
                    "fail_imports": {"mt_infapy_test": "Connection __ff is missing"},
                }
            ],
            "jobs": [
                {
                    "id": "ImportJob0000000000000",
                    "kind": "import",
                    "org": "ProdOrg000000000000000",
                    "states": ["FAILED"],
                }
            ],
            "faults": [{"route": "upload", "status": 503}],
        }
    )
    prod = Caller(emu, emu.org("ProdOrg000000000000000"))

    assert (prod.org.name, prod.org.username) == ("prod-org", "bob")
    assert prod.state("import", "ImportJob0000000000000") == "FAILED"
    assert prod.upload(REAL_PACKAGE.read_bytes()).status == 503
    job_id = prod.upload(REAL_PACKAGE.read_bytes()).json()["jobId"]
    assert prod.start(job_id).status == 200
    assert [prod.state("import", job_id) for _ in range(3)] == ["IN_PROGRESS", "IN_PROGRESS", "FAILED"]


def test_faults_still_apply_before_the_org_is_known(emu, dev, prod):
    emu.add_fault(Fault(route="status", status=500))
    theirs = emu.add_job(org=prod.org.org_id)

    assert prod.get(f"export/{theirs}").status == 500
    assert prod.get(f"export/{theirs}").status == 200

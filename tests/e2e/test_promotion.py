"""Promotions end to end: an export in one org, its archived package uploaded to another org and
imported, each job watched, archived and announced, and one IICS Promotion State Change that names
both. The emulator plays the two orgs; the stack has both org secrets (LocalStack(orgs=...))."""

from __future__ import annotations

import json

import jsonschema
import pytest

from tests.conftest import EVENTS, load_event
from tests.e2e.conftest import FAST, deployed

PROMOTION_SCHEMA = json.loads((EVENTS / "promotion-outcome.schema.json").read_text())
DEV = {"username": "dev-deployer", "password": "dev-s3cret"}
PROD = {"username": "prod-deployer", "password": "prod-s3cret"}
OBJECTS = [
    {"id": "aaaaaaaaaaaaaaaaaaaaa1", "name": "Finance", "path": "/Explore", "type": "Project"},
    {"id": "aaaaaaaaaaaaaaaaaaaaa2", "name": "m_close", "path": "/Explore/Finance", "type": "DTEMPLATE"},
]


@pytest.fixture
def orgs(emulator):
    return emulator.add_org(DEV["username"], DEV["password"], name="Dev"), emulator.add_org(
        PROD["username"], PROD["password"], name="Prod"
    )


@pytest.fixture
def stack(emulator, orgs):
    logins = {"dev": DEV | {"loginUrl": emulator.url}, "prod": PROD | {"loginUrl": emulator.url}}
    with deployed(emulator, FAST, orgs=logins) as pipeline:
        pipeline.promotions = pipeline.stack.capture_events()
        yield pipeline


def promote(pipeline, **fields) -> tuple[dict, list[dict], dict]:
    """Announce a promotion; its one promotion outcome, the jobs' own outcomes, and the execution."""
    request = {"from": "dev", "to": "prod", "objects": [{"id": o["id"]} for o in OBJECTS]}
    request |= {"conflictResolution": "OVERWRITE", "name": "release-42"} | fields
    before, seen = {e["executionArn"] for e in pipeline.stack.executions()}, len(pipeline.capture.drain())
    pipeline.stack.submit({"promote": request})
    (execution,) = [e for e in pipeline.stack.executions() if e["executionArn"] not in before]
    described = pipeline.stack.wait(execution["executionArn"], timeout=90)
    events = pipeline.capture.drain()[seen:]  # the capture keeps every event so far
    promotions = [e for e in events if e["detail-type"] == "IICS Promotion State Change"]
    jobs = [e for e in events if e["detail-type"] != "IICS Promotion State Change"]
    assert len(promotions) == 1, [e["detail-type"] for e in events]
    jsonschema.validate(promotions[0]["detail"], PROMOTION_SCHEMA)
    return promotions[0]["detail"], jobs, described | {"path": pipeline.stack.path(execution["executionArn"])}


def test_a_promotion_exports_imports_and_announces_one_outcome_naming_both_jobs(stack, emulator, orgs):
    dev, prod = orgs
    emulator.set_org_states(dev.org_id, export_states=["IN_PROGRESS", "SUCCESSFUL"])
    emulator.set_org_states(prod.org_id, import_states=["IN_PROGRESS", "SUCCESSFUL"])

    detail, jobs, execution = promote(stack, allowUnverified=True)

    assert [e["detail-type"] for e in jobs] == ["IICS Export Job State Change", "IICS Import Job State Change"]
    exported, imported = (e["detail"] for e in jobs)
    assert (exported["org"], imported["org"], imported["sourceOrgId"]) == ("dev", "prod", dev.org_id)
    assert (detail["state"], detail["failedStep"], detail["from"], detail["to"]) == ("SUCCESSFUL", None, "dev", "prod")
    assert detail["export"]["jobId"] == exported["jobId"] and detail["import"]["jobId"] == imported["jobId"]
    assert detail["export"]["package"]["key"] == exported["package"]["key"]
    assert detail["import"]["log"]["key"].endswith(f"org=prod/{imported['log']['key'].split('org=prod/')[1]}")
    assert detail["promotionId"] == execution["name"] and execution["name"].startswith("promote-")
    assert execution["status"] == "SUCCEEDED"
    uploads = [r for r in emulator.requests if r.route == "upload"]
    assert len(uploads) == 1 and uploads[0].org_id == prod.org_id


def test_a_verified_package_is_imported_without_being_told_to(stack, emulator, orgs):
    detail, jobs, _ = promote(stack)  # no allowUnverified

    assert jobs[0]["detail"]["package"]["verified"] is True
    assert (detail["state"], detail["export"]["package"]["verified"]) == ("SUCCESSFUL", True)


def test_a_corrupt_package_is_not_imported_unless_the_request_says_so(stack, emulator, orgs):
    dev, _ = orgs
    emulator.set_org_states(dev.org_id, corrupt_packages=True)

    detail, jobs, _ = promote(stack)

    package = jobs[0]["detail"]["package"]
    assert package["verified"] is False and package["verification"]["mismatches"]["count"] == 1
    assert (detail["state"], detail["failedStep"], detail["import"]) == ("FAILED", "verify", None)
    assert "failed verification" in detail["reason"] and "allowUnverified" in detail["reason"]
    assert not [r for r in emulator.requests if r.route == "upload"]

    forced, jobs, _ = promote(stack, allowUnverified=True)  # said explicitly: imported all the same
    assert forced["state"] in ("SUCCESSFUL", "FAILED") and forced["failedStep"] != "verify"
    assert [r.route for r in emulator.requests if r.route == "upload"] == ["upload"]


def test_a_failed_import_ends_the_promotion_failed_at_the_import_with_the_log_saying_why(stack, emulator, orgs):
    _, prod = orgs
    emulator.fail_imports(prod.org_id, {OBJECTS[1]["id"]: "Connection conn_erp does not exist in the target org"})

    detail, jobs, execution = promote(stack, allowUnverified=True)

    imported = jobs[-1]["detail"]
    assert (imported["state"], detail["state"], detail["failedStep"]) == ("FAILED", "FAILED", "import")
    assert imported["logSummary"]["errors"]["count"] >= 1
    assert "conn_erp" in imported["logSummary"]["errors"]["first"][0]["message"]
    assert execution["status"] == "SUCCEEDED"  # the outcome says FAILED; the execution itself did its work


def test_a_failed_export_ends_the_promotion_without_an_import(stack, emulator, orgs):
    dev, _ = orgs
    emulator.set_org_states(dev.org_id, export_states=["IN_PROGRESS", "FAILED"])

    detail, jobs, _ = promote(stack, allowUnverified=True)

    assert [e["detail"]["state"] for e in jobs] == ["FAILED"]
    assert (detail["state"], detail["failedStep"], detail["import"]) == ("FAILED", "export", None)
    assert not [r for r in emulator.requests if r.route in ("upload", "import")]


def test_a_refused_promotion_is_one_error_promotion_outcome_and_nothing_runs(stack, emulator):
    detail, jobs, _ = promote(stack, to="staging")

    assert (detail["state"], detail["failedStep"], jobs) == ("ERROR", "request", [])
    assert "org staging is not configured" in detail["reason"]
    assert not [r for r in emulator.requests if r.route != "login"]


def test_a_redelivered_promotion_does_not_promote_twice(stack, emulator, orgs):
    request = {"from": "dev", "to": "prod", "objects": [{"id": OBJECTS[0]["id"]}], "conflictResolution": "REUSE"}
    event_id = stack.stack.submit({"promote": request | {"allowUnverified": True}})
    stack.stack.submit_event_again(event_id)
    stack.finish_all(timeout=90)

    promotions = [e for e in stack.capture.drain() if e["detail-type"] == "IICS Promotion State Change"]
    assert len(promotions) == 1 and len(stack.stack.executions()) == 1
    assert len([r for r in emulator.requests if r.route == "upload"]) == 1


def test_the_promotion_sample_is_what_a_promotion_announces(stack, emulator, orgs):
    sample = load_event("promotion-outcome-failed.json")["detail"]
    detail, _, _ = promote(stack, allowUnverified=True)
    assert set(detail) == set(sample)


def test_a_package_the_target_org_refuses_ends_the_promotion_at_the_upload(stack, emulator, orgs):
    from iics_monitor_local.emulator import Fault

    emulator.add_fault(Fault(route="upload", status=400, times=1))

    detail, jobs, _ = promote(stack)

    assert [e["detail-type"] for e in jobs] == ["IICS Export Job State Change"]
    assert (detail["state"], detail["failedStep"], detail["import"]) == ("FAILED", "upload", None)
    assert "IICS refused the package" in detail["reason"]
    assert not [r for r in emulator.requests if r.route == "import"]  # nothing was started


def test_a_successful_promotion_runs_these_states(stack, emulator, orgs):
    """What a promotion costs in Step Functions: the states of its execution (docs/promotion.md)."""
    dev, prod = orgs
    emulator.set_org_states(dev.org_id, export_states=["SUCCESSFUL"])
    emulator.set_org_states(prod.org_id, import_states=["SUCCESSFUL"])

    detail, _, execution = promote(stack)

    assert detail["state"] == "SUCCESSFUL"
    assert len(execution["path"]) == 28, execution["path"]


def test_a_promotions_two_watches_share_one_poll_budget(emulator, orgs):
    """Two watches in one execution: MaxPolls bounds them together, so the execution stays far below
    Step Functions' 25,000 history events whatever each job does."""
    dev, prod = orgs
    emulator.set_org_states(dev.org_id, export_states=["IN_PROGRESS", "SUCCESSFUL"])
    emulator.set_org_states(prod.org_id, import_states=["IN_PROGRESS"])  # never ends
    logins = {"dev": DEV | {"loginUrl": emulator.url}, "prod": PROD | {"loginUrl": emulator.url}}
    with deployed(emulator, FAST | {"MaxPolls": 4, "InlineWaitSeconds": 0}, orgs=logins) as pipeline:
        detail, jobs, _ = promote(pipeline)

    exported, imported = (e["detail"] for e in jobs)
    assert (exported["polls"], imported["state"], imported["polls"]) == (2, "TIMED_OUT", 4)  # 2 + 2 of 4
    assert (detail["state"], detail["failedStep"]) == ("FAILED", "import")
    assert "poll budget" in imported["reason"]
    import_polls = [r for r in emulator.requests if r.route == "status" and imported["jobId"] in r.path]
    assert len([r for r in import_polls if "expand" not in r.path]) == 2  # the import had what the export left

"""Import jobs and a second org, end to end: announced on the bus (or started by hand), watched by the
real state machine with the org's own secret, archived, announced as IICS Import Job State Change and
alerted on. The emulator plays two orgs on one pod; the stack is deployed with the second org's secret
in IicsOrgSecretArns (LocalStack(orgs=...)), as docs/orgs.md says."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from iics_monitor.client import IicsClient
from iics_monitor.credentials import Credentials
from iics_monitor.history import DurationHistory, history_key
from iics_monitor_local import template
from iics_monitor_local.stack import TopicInbox
from tests.conftest import EMULATOR_HOSTS
from tests.e2e.conftest import FAST, Pipeline, deployed, probe_in_place_of, queue_depth

IMPORT_SUBMITTED = "IICS Import Job Submitted"
REAL_PACKAGE = Path(__file__).resolve().parents[1] / "golden" / "real-export-package-2021.zip"
PROD = {"username": "prod-deployer", "password": "prod-s3cret"}


@pytest.fixture
def prod(emulator):
    """The second org on the emulator's pod, with its own user."""
    return emulator.add_org(PROD["username"], PROD["password"], name="Finance Prod")


@pytest.fixture
def two_orgs(emulator, prod):
    """The stack deployed with its own org (the emulator's first user) and org "prod"."""
    login = PROD | {"loginUrl": emulator.url}
    with deployed(emulator, FAST, orgs={"prod": login}) as pipeline:
        yield pipeline


def prod_client(emulator) -> IicsClient:
    creds = Credentials.from_mapping(PROD | {"loginUrl": emulator.url})
    return IicsClient(lambda: creds, hosts=EMULATOR_HOSTS)


def test_an_announced_import_in_the_second_org_is_watched_with_its_secret_and_announced_as_an_import(
    two_orgs: Pipeline, emulator, prod
):
    job = emulator.add_job(
        kind="import",
        org=prod.org_id,
        name="promote-finance",
        states=["IN_PROGRESS", "SUCCESSFUL"],
        source_org_id=emulator.org_id,
    )

    run = two_orgs.submit({"jobId": job, "org": "prod"}, IMPORT_SUBMITTED)

    detail = run.import_outcome
    assert (detail["state"], detail["kind"], detail["org"]) == ("SUCCESSFUL", "import", "prod")
    assert detail["sourceOrgId"] == emulator.org_id
    key = detail["log"]["key"]
    assert key.startswith(f"{two_orgs.stack.stack_parameters['ArchivePrefix']}org=prod/") and key.endswith(
        f"/{job}/import.log"
    )
    assert run.archived(key) == emulator.log_of(job)
    assert detail["logSummary"]["objects"]["imported"] >= 1
    assert run.path[-1] == "Done" and "EmitImportOutcome" in run.path
    assert {r.org_id for r in emulator.requests} == {prod.org_id}  # only the prod org's user, and its sessions


def test_an_import_started_by_hand_with_kind_import_is_watched_the_same_way(two_orgs: Pipeline, emulator, prod):
    job = emulator.add_job(kind="import", org=prod.org_id, states=["SUCCESSFUL"])

    run = two_orgs.start({"jobId": job, "kind": "import", "org": "prod"})

    assert run.import_outcome["state"] == "SUCCESSFUL"
    assert run.stack.history(run.execution_arn)  # a real execution


def test_what_one_org_exported_the_other_imports(two_orgs: Pipeline, emulator, prod):
    # the stack's own org exports, and the monitor archives the package
    exported = emulator.add_job(
        name="finance-release",
        states=["SUCCESSFUL"],
        objects=[
            {"id": "aaaaaaaaaaaaaaaaaaaaa1", "name": "Finance", "path": "/Explore", "type": "Project"},
            {"id": "aaaaaaaaaaaaaaaaaaaaa2", "name": "m_close", "path": "/Explore/Finance", "type": "DTEMPLATE"},
        ],
    )
    export = two_orgs.submit({"jobId": exported}).outcome
    package = two_orgs.stack.client("s3").get_object(Bucket=export["package"]["bucket"], Key=export["package"]["key"])
    body = package["Body"].read()

    # the prod org uploads and starts it, then announces it
    client = prod_client(emulator)
    uploaded = client.upload_package(io.BytesIO(body), len(body))
    assert uploaded["checksumValid"] is True
    client.start_import(uploaded["jobId"], "finance-release", "OVERWRITE")
    detail = two_orgs.submit({"jobId": uploaded["jobId"], "org": "prod"}, IMPORT_SUBMITTED).import_outcome

    assert (detail["state"], detail["objects"]["total"], detail["objects"]["failed"]) == ("SUCCESSFUL", 2, 0)
    assert detail["sourceOrgId"] == emulator.org_id


def test_the_real_2021_package_imports_cleanly_through_the_stack(two_orgs: Pipeline, emulator):
    client = prod_client(emulator)
    body = REAL_PACKAGE.read_bytes()
    uploaded = client.upload_package(io.BytesIO(body), len(body))
    client.start_import(uploaded["jobId"], "MyTestJobFromPython", "REUSE")

    detail = two_orgs.submit({"jobId": uploaded["jobId"], "org": "prod"}, IMPORT_SUBMITTED).import_outcome

    assert (detail["state"], detail["objects"]["total"]) == ("SUCCESSFUL", 5)
    assert detail["sourceOrgId"] == "fg1dzqDZ1K3lbHp8uq5vQB"  # the package's own exportMetadata


def test_a_failed_import_archives_its_log_and_alerts_quoting_its_first_errors(two_orgs: Pipeline, emulator, prod):
    inbox = TopicInbox(two_orgs.stack, two_orgs.stack.outputs["AlertTopicArn"])
    emulator.fail_imports(prod.org_id, {"m_infapy_test": "Connection __ff does not exist in the target org"})
    client = prod_client(emulator)
    body = REAL_PACKAGE.read_bytes()
    uploaded = client.upload_package(io.BytesIO(body), len(body))
    client.start_import(uploaded["jobId"], "MyTestJobFromPython", "OVERWRITE")

    run = two_orgs.submit({"jobId": uploaded["jobId"], "org": "prod"}, IMPORT_SUBMITTED)

    detail = run.import_outcome
    assert (detail["state"], detail["objects"]["failed"]) == ("FAILED", 1)
    assert b"does not exist in the target org" in run.archived(detail["log"]["key"])
    assert detail["logSummary"]["errors"]["count"] >= 1
    (message,) = inbox.messages()
    assert message["Subject"].startswith("IICS import FAILED: MyTestJobFromPython")
    assert "Org:        prod" in message["Message"]
    assert "First errors in the log:" in message["Message"]
    assert "Connection __ff does not exist in the target org" in message["Message"]
    assert queue_depth(run.stack, "ErrorOutcomeQueue") == 0  # a FAILED import is not an ERROR


def test_an_import_naming_an_org_the_stack_does_not_have_is_one_error_import_outcome(two_orgs: Pipeline, emulator):
    run = two_orgs.submit({"jobId": "Qm3vT8kXw2LpN5rYb7HcZd", "org": "staging"}, IMPORT_SUBMITTED)

    detail = run.import_outcome
    assert (detail["state"], detail["kind"], detail["org"]) == ("ERROR", "import", "staging")  # as announced
    assert "org staging is not configured" in detail["reason"]
    assert detail["jobId"] == "Qm3vT8kXw2LpN5rYb7HcZd"
    assert not [r for r in emulator.requests if r.route != "login"]  # IICS was never asked


def test_a_wrong_password_in_one_org_does_not_stop_the_others(emulator, prod):
    wrong = {"username": PROD["username"], "password": "not-it", "loginUrl": emulator.url}
    with deployed(emulator, FAST, orgs={"prod": wrong}) as pipeline:
        in_prod = emulator.add_job(kind="import", org=prod.org_id, states=["SUCCESSFUL"])
        at_home = emulator.add_job(states=["SUCCESSFUL"])

        refused = pipeline.submit({"jobId": in_prod, "org": "prod"}, IMPORT_SUBMITTED).import_outcome
        fine = pipeline.submit({"jobId": at_home}).outcome

    assert (refused["state"], refused["errorType"], refused["org"]) == ("ERROR", "LoginRefused", "prod")
    assert fine["state"] == "SUCCESSFUL" and "kind" not in fine  # the stack's own export: as it always was


def test_each_org_has_its_own_request_budget_and_history(emulator, prod):
    login = PROD | {"loginUrl": emulator.url}
    with deployed(emulator, FAST | {"IicsRequestsPerSecond": 5}, orgs={"prod": login}) as pipeline:
        stack = pipeline.stack
        job = emulator.add_job(kind="import", org=prod.org_id, name="promote", states=["IN_PROGRESS", "SUCCESSFUL"])
        at_home = emulator.add_job(name="promote", states=["IN_PROGRESS", "SUCCESSFUL"])
        pipeline.submit({"jobId": job, "org": "prod"}, IMPORT_SUBMITTED)
        pipeline.submit({"jobId": at_home})

        items = stack.client("dynamodb").scan(TableName=stack.resources["RequestBudgetTable"])["Items"]
        counted = {name: sum(int(i[name]["N"]) for i in items if name in i) for name in ("requests", "requests@prod")}
        history = DurationHistory(stack.resources["DurationHistoryTable"], stack.client("dynamodb"))
        imports, exports = history.runs(history_key("import", "prod", "promote")), history.runs("promote")

    prod_requests = sum(1 for r in emulator.requests if r.org_id == prod.org_id)
    assert counted["requests@prod"] == prod_requests and counted["requests"] == len(emulator.requests) - prod_requests
    assert len(imports) == 1 and len(exports) == 1  # one run each, kept apart


def test_an_import_that_outlasts_the_poll_budget_is_archived_and_announced_as_an_import(emulator, prod):
    login = PROD | {"loginUrl": emulator.url}
    with deployed(emulator, FAST | {"MaxPolls": 2, "InlineWaitSeconds": 0}, orgs={"prod": login}) as pipeline:
        job = emulator.add_job(kind="import", org=prod.org_id, states=["IN_PROGRESS"])

        run = pipeline.submit({"jobId": job, "org": "prod"}, IMPORT_SUBMITTED)

    detail = run.import_outcome
    assert (detail["state"], detail["polls"]) == ("TIMED_OUT", 2)
    assert "poll budget" in detail["reason"] and detail["log"]["key"].endswith(f"/{job}/import.log")
    assert run.path[-5:] == ["ExplainImportPollBudget", "ArchiveImportLog", "EmitImportOutcome", "WasItAnError", "Done"]


hung_check_status = probe_in_place_of("CheckStatusFunction", timeout=2)


def test_an_import_whose_check_dies_ends_in_one_error_import_outcome(tmp_path, emulator, prod):
    login = PROD | {"loginUrl": emulator.url}
    variant = template.variant(hung_check_status, tmp_path / "template.json")
    with deployed(emulator, FAST, template=variant, orgs={"prod": login}) as pipeline:
        job = emulator.add_job(kind="import", org=prod.org_id, states=["SUCCESSFUL"])

        run = pipeline.submit({"jobId": job, "org": "prod"}, IMPORT_SUBMITTED)

    detail = run.import_outcome  # not an export's: the poll record said what job it was before the check ran
    # jobId is null, as for an export whose first check dies: the poll record has no answer of IICS yet
    assert (detail["state"], detail["kind"], detail["org"], detail["jobId"]) == ("ERROR", "import", "prod", None)
    assert "Sandbox.Timedout" in detail["reason"]
    assert run.path[-5:] == [
        "BuildJobErrorOutcome",
        "WhichDetailType",
        "EmitImportOutcome",
        "WasItAnError",
        "MonitorFailed",
    ]


def test_an_export_of_a_further_org_goes_out_as_an_export_naming_its_org(two_orgs: Pipeline, emulator, prod):
    job = emulator.add_job(org=prod.org_id, states=["IN_PROGRESS", "SUCCESSFUL"])

    run = two_orgs.submit({"jobId": job, "org": "prod"})

    detail = run.outcome  # IICS Export Job State Change
    assert (detail["state"], detail["kind"], detail["org"], detail["schemaMinorVersion"]) == (
        "SUCCESSFUL",
        "export",
        "prod",
        3,
    )
    assert "/org=prod/" in detail["log"]["key"] and "/org=prod/" in detail["package"]["key"]


def test_an_export_of_the_stacks_own_org_runs_the_states_it_always_ran(two_orgs: Pipeline, emulator):
    job = emulator.add_job(states=["SUCCESSFUL"])

    run = two_orgs.submit({"jobId": job})

    assert "RememberJob" not in run.path and "kind" not in run.outcome and "org" not in run.outcome
    assert run.path[:3] == ["NormaliseInput", "StartPolling", "IsExportRequest"]

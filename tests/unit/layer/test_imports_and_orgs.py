"""Imports and orgs in the layer: the door reads ``kind`` and ``org``, the check and the archive step ask
the import resources with the named org's client, and the outcome says what job it was.

The real IicsClient talks to the emulator (two orgs); the real LogArchiver writes to moto's S3.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime

import pytest

from iics_monitor import archive, finish
from iics_monitor.alerts import Alert, subject, text_body
from iics_monitor.check import check_job
from iics_monitor.config import CheckConfig, ConfigError, StartConfig, org_secrets
from iics_monitor.errors import InvalidInput
from iics_monitor.finish import finish_job
from iics_monitor.history import history_key
from iics_monitor.outcome import DETAIL_TYPES, IMPORT_DETAIL_TYPE, SCHEMA_MINOR_VERSION
from iics_monitor.ratelimit import counter_for
from iics_monitor.slack import build_message
from iics_monitor.submit import accept
from iics_monitor.validation import MonitorSettings, parse_announcement
from tests.conftest import EMULATOR_HOSTS, assert_valid_outcome
from tests.unit.layer.conftest import BUCKET, PREFIX

NOW = datetime(2026, 11, 28, 9, 45, tzinfo=UTC)
SETTINGS = MonitorSettings(initial_wait_seconds=0, max_wait_seconds=1, timeout_seconds=600)
DEV_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:iics-export-monitor/orgs/dev-a1B2c3"
PROD_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:team/iics/prod-x9Y8z7"
ORGS = {"dev": DEV_ARN, "prod": PROD_ARN}
CONFIG = CheckConfig(secret_name="iics", defaults=SETTINGS, max_polls=100, org_secrets=ORGS)  # noqa: S106
JOB = "Qm3vT8kXw2LpN5rYb7HcZd"


# --- the door -----------------------------------------------------------------------------------


def test_an_import_announcement_becomes_an_import_request_with_its_org():
    event = {"detail-type": "IICS Import Job Submitted", "detail": {"jobId": JOB, "org": "prod"}}
    request = accept(event, SETTINGS, ORGS)["request"]
    assert (request["kind"], request["org"], request["jobId"]) == ("import", "prod", JOB)


def test_a_bare_input_says_kind_import_and_an_export_stays_the_default():
    assert parse_announcement({"jobId": JOB, "kind": "import"}, SETTINGS).kind == "import"
    export = parse_announcement({"jobId": JOB}, SETTINGS)
    assert (export.kind, export.org, export.execution_name) == ("export", None, JOB)


def test_an_import_and_an_export_of_the_same_id_have_different_executions():
    imported = parse_announcement({"jobId": JOB, "kind": "import"}, SETTINGS)
    assert imported.execution_name == f"import-{JOB}"
    longest = parse_announcement({"jobId": "a" * 64, "kind": "import", "attempt": 99}, SETTINGS)
    assert len(longest.execution_name) <= 80 and longest.execution_name.startswith("import-")


@pytest.mark.parametrize(
    "detail, announced, says",
    [
        ({"jobId": JOB, "org": "staging"}, None, "org staging is not configured"),
        ({"jobId": JOB, "org": "../x"}, None, "org must be"),
        ({"jobId": JOB, "kind": "copy"}, None, "kind must be export or import"),
        ({"export": {"objects": [{"id": JOB}]}, "kind": "import"}, None, "an import cannot be started with export"),
    ],
)
def test_a_bad_kind_or_org_is_refused_at_the_door_naming_it(detail, announced, says):
    with pytest.raises(InvalidInput, match=says):
        parse_announcement(detail, SETTINGS, ORGS, announced)


def test_an_announcements_detail_type_decides_its_kind_and_its_own_kind_field_is_context():
    """An upstream system's own "kind" in an export announcement was ignored before imports existed; it
    still is: only a bare input says its kind with the field."""
    export = {"detail-type": "IICS Export Job Submitted", "detail": {"jobId": JOB, "kind": "full"}}
    assert "kind" not in accept(export, SETTINGS, ORGS)["request"]
    imported = {"detail-type": "IICS Import Job Submitted", "detail": {"jobId": JOB, "kind": "export"}}
    assert accept(imported, SETTINGS, ORGS)["request"]["kind"] == "import"
    with pytest.raises(InvalidInput, match="kind must be export or import"):
        parse_announcement({"jobId": JOB, "kind": "full"}, SETTINGS, ORGS)  # a bare input


def test_the_door_never_takes_a_promotion_record_from_outside():
    event = {"detail-type": "IICS Export Job Submitted", "detail": {"jobId": JOB, "promotion": "r-42"}}
    assert "promotion" not in accept(event, SETTINGS)["request"]


def test_a_refused_import_still_says_it_is_an_import_of_its_org():
    event = {"detail-type": "IICS Import Job Submitted", "detail": {"jobId": JOB, "org": "prod", "monitor": 5}}
    refused = accept(event, SETTINGS, ORGS)["refused"]
    assert (refused["kind"], refused["org"], refused["jobId"]) == ("import", "prod", JOB)


# --- configuration --------------------------------------------------------------------------------


def test_each_org_is_its_secrets_last_name_segment():
    assert org_secrets({"IICS_ORGS": f" {DEV_ARN},{PROD_ARN} "}) == ORGS
    assert org_secrets({}) == {} and org_secrets({"IICS_ORGS": ""}) == {}
    assert StartConfig.from_env(
        {
            "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:m",
            "DEFAULT_INITIAL_WAIT_SECONDS": "2",
            "DEFAULT_MAX_WAIT_SECONDS": "600",
            "DEFAULT_TIMEOUT_SECONDS": "600",
            "IICS_ORGS": DEV_ARN,
        }
    ).orgs == {"dev"}


@pytest.mark.parametrize(
    "value, says",
    [
        ("iics-export-monitor/orgs/dev", "is not a secret's ARN"),
        (f"{DEV_ARN},{DEV_ARN.replace('a1B2c3', 'zzzzzz')}", "names org dev twice"),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:orgs/d+v-a1B2c3", "does not end in an org name"),
    ],
)
def test_a_bad_org_list_fails_at_cold_start_naming_the_variable(value, says):
    with pytest.raises(ConfigError, match=says):
        org_secrets({"IICS_ORGS": value})


def test_each_org_reads_its_own_secret_and_counts_its_own_budget():
    assert (CONFIG.secret_for(None), CONFIG.secret_for("prod")) == ("iics", PROD_ARN)
    assert (counter_for(None), counter_for("prod")) == ("requests", "requests@prod")
    assert history_key("export", None, "nightly") == "nightly"  # the histories kept so far still count
    assert len({history_key(k, o, "nightly") for k in ("export", "import") for o in (None, "prod")}) == 4


# --- the check and the archive step against two orgs ---------------------------------------------


@pytest.fixture
def orgs(emulator):
    """The emulator's own org ("default") and a second one, "prod", each with its own user."""
    prod = emulator.add_org("prod-user", "prod-pass", name="Prod")
    return {None: (emulator.username, emulator.password), "prod": (prod.username, prod.password), "_prod": prod}


@pytest.fixture
def source_for(emulator, orgs):
    from iics_monitor.client import IicsClient
    from iics_monitor.credentials import Credentials

    clients = {}

    def source(org):
        if org not in clients:
            user, password = orgs[org]
            creds = Credentials.from_mapping({"username": user, "password": password, "loginUrl": emulator.url})
            clients[org] = IicsClient(lambda c=creds: c, hosts=EMULATOR_HOSTS)
        return clients[org]

    return source


def test_the_check_asks_the_import_resource_with_the_named_orgs_session(emulator, orgs, source_for):
    job = emulator.add_job(kind="import", org=orgs["_prod"].org_id, states=["IN_PROGRESS", "SUCCESSFUL"])
    event = {"request": {"jobId": job, "kind": "import", "org": "prod"}, "startedAt": NOW.isoformat()}
    first = check_job(event, config=CONFIG, now=NOW, source_for=source_for)
    second = check_job(event | {"poll": first}, config=CONFIG, now=NOW, source_for=source_for)
    assert (first["state"], second["outcome"]) == ("RUNNING", "SUCCESSFUL")
    statuses = [r for r in emulator.requests if r.route == "status"]
    assert statuses and all("/import/" in r.path for r in statuses)


def test_another_orgs_session_does_not_find_the_import(emulator, orgs, source_for):
    job = emulator.add_job(kind="import", org=orgs["_prod"].org_id)
    event = {"request": {"jobId": job, "kind": "import"}, "startedAt": NOW.isoformat()}  # no org: the stack's
    with pytest.raises(Exception, match="not found|404") as raised:
        check_job(event, config=CONFIG, now=NOW, source_for=source_for)
    assert type(raised.value).__name__ == "JobNotFound"


@pytest.fixture
def no_retry_sleeps(monkeypatch):
    monkeypatch.setattr(finish, "with_retries", functools.partial(archive.with_retries, sleep=lambda _: None))


def finish_import(job, org, archiver, source_for, outcome="SUCCESSFUL", kind="import"):
    poll = {"jobId": job, "jobName": "promote", "outcome": outcome, "terminal": True, "polls": 2, "iicsState": outcome}
    event = {"poll": poll | {"kind": kind, "org": org}, "executionArn": "arn:x"}
    return finish_job(event, archiver=archiver, now=NOW, source_for=source_for, orgs=ORGS, archive_package=True)


def test_an_imports_log_is_archived_as_import_log_under_its_org(
    emulator, orgs, source_for, archiver, s3, no_retry_sleeps
):
    job = emulator.add_job(
        kind="import", org=orgs["_prod"].org_id, states=["SUCCESSFUL"], source_org_id="fg1dzqDZ1K3lbHp8uq5vQB"
    )
    detail = finish_import(job, "prod", archiver, source_for)
    assert_valid_outcome(detail)
    assert detail["log"]["key"] == f"{PREFIX}org=prod/2026/11/28/{job}/import.log"
    assert (detail["kind"], detail["org"], detail["sourceOrgId"]) == ("import", "prod", "fg1dzqDZ1K3lbHp8uq5vQB")
    assert detail["schemaMinorVersion"] == SCHEMA_MINOR_VERSION + 1
    assert detail["package"] is None and detail["packageError"] is None  # an import has no package to keep
    assert detail["logSummary"]["objects"]["imported"] >= 1
    head = s3.head_object(Bucket=BUCKET, Key=detail["log"]["key"])
    assert head["Metadata"]["kind"] == "import" and head["Metadata"]["org"] == "prod"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert f"{PREFIX}org=prod/2026/11/28/{job}/status.json" in keys


def test_an_export_of_a_further_org_keeps_its_package_under_its_org(
    emulator, orgs, source_for, archiver, no_retry_sleeps
):
    job = emulator.add_job(org=orgs["_prod"].org_id, states=["SUCCESSFUL"])
    detail = finish_import(job, "prod", archiver, source_for, kind="export")
    assert detail["log"]["key"].endswith(f"org=prod/2026/11/28/{job}/export.log")
    assert detail["package"]["key"].endswith(f"org=prod/2026/11/28/{job}/package.zip")
    assert (detail["kind"], detail["org"], detail["sourceOrgId"]) == ("export", "prod", None)


def test_a_failed_imports_alert_quotes_the_first_error_lines_of_its_log(
    emulator, orgs, source_for, archiver, no_retry_sleeps
):
    failed = {"state": "FAILED", "message": "Connection conn_sf does not exist in the target org"}
    job = emulator.add_job(
        kind="import",
        org=orgs["_prod"].org_id,
        states=["FAILED"],
        objects=[
            {
                "id": "aaaaaaaaaaaaaaaaaaaaa1",
                "name": "m_orders",
                "path": "/Sales",
                "type": "DTEMPLATE",
                "status": failed,
            }
        ],
    )
    detail = finish_import(job, "prod", archiver, source_for, outcome="FAILED")
    event = {"source": "iics.export.monitor", "detail-type": IMPORT_DETAIL_TYPE, "detail": detail}
    alert = Alert.from_event(event)
    assert alert.quoted_errors, detail["logSummary"]
    body = text_body(alert, "us-east-1")
    assert subject(alert).startswith("IICS import FAILED")
    assert "Org:        prod" in body and "First errors in the log:" in body
    assert "conn_sf does not exist in the target org" in body
    slack = str(build_message(event, "us-east-1"))
    assert "import in org prod" in slack and "conn_sf does not exist" in slack


def test_an_alert_is_refused_for_an_event_of_another_detail_type():
    with pytest.raises(InvalidInput):
        Alert.from_event({"source": "iics.export.monitor", "detail-type": "Other", "detail": {"state": "FAILED"}})
    assert set(DETAIL_TYPES) == {"export", "import"}

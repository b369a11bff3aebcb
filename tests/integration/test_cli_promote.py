"""`iics-export-monitor promote`: an export in one org, its package imported into another, through the
real state machine, each step shown as it happens, both logs kept, RunAJob's exit codes.

The emulator plays two orgs of one pod, dev and prod, each with its own user; the command deploys
template.yaml into moto with both logins as the orgs' secrets (emulated AWS, short waits). With
--aws real it is pointed at a stack this test deploys "in the user's account" (moto, active in this
process) with both orgs in IicsOrgSecretArns, so boto3's real-AWS code path runs without one. Packages
are not verified yet, so the promotions that must import pass --allow-unverified.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from iics_monitor_local.cli import cli
from iics_monitor_local.emulator import Fault
from iics_monitor_local.runajob import EXIT_CODES
from iics_monitor_local.stack import STACK_NAME, LocalStack

FAST = ["--initial-wait", "0", "--max-wait", "1"]
DEV = {"username": "dev-deployer", "password": "dev-password-1234"}
PROD = {"username": "prod-deployer", "password": "prod-password-5678"}
FINANCE, CLOSE = "aaaaaaaaaaaaaaaaaaaaa1", "aaaaaaaaaaaaaaaaaaaaa2"
PROMOTION_ID = re.compile(r"Promotion (promote-[0-9a-f-]+)")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), prog_name="iics-export-monitor", catch_exceptions=False)


@pytest.fixture
def orgs(emulator):
    return emulator.add_org(DEV["username"], DEV["password"], "Dev"), emulator.add_org(
        PROD["username"], PROD["password"], "Prod"
    )


@pytest.fixture
def logins(emulator, tmp_path, orgs) -> list[str]:
    """Each org's login in a file of its own, the deployed secret's format."""
    paths = []
    for name, login in (("dev", DEV), ("prod", PROD)):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(login | {"loginUrl": emulator.url}))
        paths.append(str(path))
    return ["--from-credentials", paths[0], "--to-credentials", paths[1]]


def promote(logins: list[str], out: Path, *args: str) -> Result:
    base = ["promote", "--from", "dev", "--to", "prod", "--object", FINANCE, "--object", CLOSE, "--name", "release-42"]
    return invoke(*base, *logins, *FAST, "--out", str(out), *args)


def test_a_promotion_that_succeeds_shows_each_step_keeps_both_logs_and_exits_0(emulator, orgs, logins, tmp_path):
    dev, prod = orgs
    emulator.set_org_states(dev.org_id, export_states=["IN_PROGRESS", "SUCCESSFUL"])
    emulator.set_org_states(prod.org_id, import_states=["IN_PROGRESS", "SUCCESSFUL"])

    result = promote(logins, tmp_path, "--allow-unverified")

    assert result.exit_code == EXIT_CODES["SUCCESSFUL"], result.stdout + result.stderr
    text = result.stdout
    for step in (
        r"export dev\s+started export job \w+",
        r"export dev\s+poll\s+\d+\s+SUCCESSFUL",
        r"export dev\s+archived -> SUCCESSFUL .*export\.log, package .*package\.zip",
        r"import prod\s+uploaded the package to org prod, started import job \w+",
        r"import prod\s+poll\s+\d+\s+SUCCESSFUL",
        r"import prod\s+archived -> SUCCESSFUL .*import\.log",
        r"promotion\s+SUCCESSFUL",
    ):
        assert re.search(step, text), f"no line for {step!r}:\n{text}"
    promotion_id = PROMOTION_ID.search(text).group(1)
    kept = tmp_path / promotion_id
    assert sorted(p.name for p in kept.iterdir()) == ["export.log", "import.log", "package.zip", "promotion.json"]
    assert json.loads((kept / "promotion.json").read_text())["state"] == "SUCCESSFUL"
    assert "exit code 0" in text
    assert DEV["password"] not in text + result.stderr and PROD["password"] not in text + result.stderr
    assert [r.org_id for r in emulator.requests if r.route == "upload"] == [prod.org_id]


def test_a_failed_import_exits_3_and_prints_the_import_logs_first_error_line(emulator, orgs, logins, tmp_path):
    _, prod = orgs
    emulator.fail_imports(prod.org_id, {CLOSE: "Connection conn_erp does not exist in the target org"})

    result = promote(logins, tmp_path, "--allow-unverified", "--conflict", "REUSE")

    assert result.exit_code == EXIT_CODES["FAILED"], result.stdout + result.stderr
    assert re.search(r"FAILED at step import", result.stdout), result.stdout
    assert re.search(r"log errors \(\d+\):\n\s+\S+ .*conn_erp does not exist in the target org", result.stdout)
    kept = tmp_path / PROMOTION_ID.search(result.stdout).group(1)
    assert "conn_erp" in (kept / "import.log").read_text()


def test_an_unverified_package_is_not_imported_without_allow_unverified(emulator, orgs, logins, tmp_path):
    emulator.set_org_states(orgs[0].org_id, corrupt_packages=True)  # the export's package fails its manifest

    result = promote(logins, tmp_path)

    assert result.exit_code == EXIT_CODES["FAILED"], result.stdout + result.stderr
    assert "FAILED at step verify" in result.stdout and "allowUnverified" in result.stdout
    assert not [r for r in emulator.requests if r.route == "upload"]


def test_an_export_iics_refuses_to_start_exits_7(emulator, orgs, logins, tmp_path):
    emulator.add_fault(Fault(route="export", status=400))

    result = promote(logins, tmp_path, "--allow-unverified")

    assert result.exit_code == EXIT_CODES["NOT_STARTED"], result.stdout + result.stderr
    assert "could not start" in result.stdout
    assert not [r for r in emulator.requests if r.route in ("upload", "import")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "dev"], "the same org"),
        (["--object", "not an id"], "objects[2].id"),
        (["--conflict", "MERGE"], "'MERGE' is not one of"),
        (["--include-object", "bad id!"], "includeObjects"),
    ],
)
def test_bad_usage_exits_2_and_sends_nothing(emulator, orgs, logins, tmp_path, args, message):
    result = promote(logins, tmp_path, *args)

    assert result.exit_code == EXIT_CODES["USAGE"], result.stdout + result.stderr
    assert message in result.stderr, result.stderr
    assert not [r for r in emulator.requests if r.route != "login"]


def test_promote_without_the_targets_login_exits_2(emulator, orgs, logins, tmp_path):
    result = invoke(
        "promote", "--from", "dev", "--to", "prod", "--object", FINANCE, *logins[:2], "--out", str(tmp_path)
    )

    assert result.exit_code == EXIT_CODES["USAGE"]
    assert "--to-credentials" in result.stderr
    assert not emulator.requests


# --- --aws real ------------------------------------------------------------------------------------


@pytest.fixture
def deployed_with_orgs(emulator, orgs):
    """The user's deployed stack, with dev and prod among its orgs (IicsOrgSecretArns)."""
    logins = {"dev": DEV | {"loginUrl": emulator.url}, "prod": PROD | {"loginUrl": emulator.url}}
    with LocalStack({"InitialWaitSeconds": 0, "MaxWaitSeconds": 1}, orgs=logins) as stack:
        yield stack


REAL = ["--aws", "real", "--stack-name", STACK_NAME, "--refresh", "0.05"]


def test_real_aws_announces_the_promotion_on_the_stacks_bus_and_follows_it(
    emulator, orgs, deployed_with_orgs, tmp_path
):
    _, prod = orgs
    emulator.fail_imports(prod.org_id, {CLOSE: "Connection conn_erp does not exist in the target org"})
    base = ["promote", "--from", "dev", "--to", "prod", "--object", FINANCE, "--object", CLOSE]

    result = invoke(*base, "--allow-unverified", *REAL, "--out", str(tmp_path))

    assert result.exit_code == EXIT_CODES["FAILED"], result.stdout + result.stderr
    (execution,) = deployed_with_orgs.executions()
    promotion_id = PROMOTION_ID.search(result.stdout).group(1)
    assert execution["name"] == promotion_id
    assert re.search(r"import prod\s+uploaded the package to org prod", result.stdout), result.stdout
    assert re.search(r"log errors \(\d+\):\n\s+\S+ .*conn_erp does not exist", result.stdout), result.stdout
    assert sorted(p.name for p in (tmp_path / promotion_id).iterdir()) == [
        "export.log",
        "import.log",
        "promotion.json",
    ]


def test_real_aws_refuses_an_org_the_stack_does_not_configure_before_sending_anything(
    emulator, orgs, deployed_with_orgs, tmp_path
):
    result = invoke("promote", "--from", "dev", "--to", "staging", "--object", FINANCE, *REAL, "--out", str(tmp_path))

    assert result.exit_code == EXIT_CODES["USAGE"], result.stdout + result.stderr
    assert "org staging is not configured in stack" in result.stderr
    assert deployed_with_orgs.executions() == [] and not emulator.requests

"""`iics-export-monitor import` and `watch --kind import`: a package uploaded to a second org, started,
and watched to its end through the real state machine, with the org's own secret.

The emulator plays two orgs of one pod: the default one (alice) and "prod" (bob), the import's
target. The commands deploy template.yaml into moto themselves (emulated AWS, short waits), with
the prod login as the org's secret (``LocalStack(orgs=...)``).
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from iics_monitor_local.cli import cli
from iics_monitor_local.runajob import EXIT_CODES

FAST = ["--initial-wait", "0", "--max-wait", "1"]
REAL_PACKAGE = Path(__file__).resolve().parents[1] / "golden/real-export-package-2021.zip"
PROD_USER, PROD_PASSWORD = "bob@example.com", "prod-password-5678"
STARTED = re.compile(r"Started import job ([A-Za-z0-9]+) ")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), prog_name="iics-export-monitor", catch_exceptions=False)


@pytest.fixture
def prod(emulator, monkeypatch):
    """The target org, and the user's shell holding its login."""
    org = emulator.add_org(PROD_USER, PROD_PASSWORD, "prod-org")
    monkeypatch.setenv("IICS_USERNAME", PROD_USER)
    monkeypatch.setenv("IICS_PASSWORD", PROD_PASSWORD)
    monkeypatch.setenv("IICS_LOGIN_URL", emulator.url)
    return org


def changed_real_package(folder: Path) -> Path:
    """The real package with one entry changed after export: its manifest no longer matches."""
    source, path = zipfile.ZipFile(REAL_PACKAGE), folder / "changed.zip"
    with zipfile.ZipFile(path, "w") as copy:
        for name in source.namelist():
            copy.writestr(name, source.read(name) + (b"!" if name == "SYS/__ff.Connection.zip" else b""))
    return path


def routes(emulator) -> list[str]:
    return [r.route for r in emulator.requests]


# --- import ----------------------------------------------------------------------------------------


def test_import_uploads_the_real_package_to_a_second_org_starts_it_and_keeps_its_import_log(
    emulator, prod, tmp_path, monkeypatch
):
    # Given the prod org's login in a credentials file (the deployed secret's format)
    credentials = tmp_path / "prod.json"
    credentials.write_text(json.dumps({"username": PROD_USER, "password": PROD_PASSWORD, "loginUrl": emulator.url}))
    for name in ("IICS_USERNAME", "IICS_PASSWORD", "IICS_LOGIN_URL"):
        monkeypatch.delenv(name)
    out = tmp_path / "archive"

    # When the user imports the real package of 2021 into it
    result = invoke(
        "import", str(REAL_PACKAGE), "--org", "prod", "--credentials", str(credentials), *FAST, "--out", str(out)
    )

    # Then the upload, the start and the watch each said what they did, and the import ended SUCCESSFUL
    assert result.exit_code == 0, result.stdout + result.stderr
    job_id = STARTED.search(result.stdout).group(1)
    size = REAL_PACKAGE.stat().st_size
    assert f"Uploaded {REAL_PACKAGE.name} ({size} bytes) to org prod: import job {job_id}, checksumValid true" in (
        result.stdout
    )
    assert f"Started import job {job_id} (real-export-package-2021, OVERWRITE)" in result.stdout
    assert f"{job_id} (real-export-package-2021): SUCCESSFUL after 2 polls, exit code 0" in result.stdout
    assert "objects: 5 total, 5 successful, 0 failed" in result.stdout
    # and IICS got the package and an OVERWRITE start under that name, from the prod org's user
    start = next(r for r in emulator.requests if r.route == "import")
    assert json.loads(start.body) == {
        "name": "real-export-package-2021",
        "importSpecification": {"defaultConflictResolution": "OVERWRITE"},
    }
    # and the stack archived the import log under the org's folder, which is kept locally byte for byte
    assert re.search(rf"archived: s3://\S+/org=prod/\d{{4}}/\d\d/\d\d/{job_id}/import\.log", result.stdout)
    assert (out / job_id / "import.log").read_bytes() == emulator.log_of(job_id)
    assert json.loads((out / job_id / "status.json").read_text())["sourceOrgId"] == "fg1dzqDZ1K3lbHp8uq5vQB"
    assert not (out / job_id / "export.log").exists()
    assert PROD_PASSWORD not in result.stdout + result.stderr


def test_a_package_iics_refuses_exits_7_and_nothing_is_watched(emulator, prod, tmp_path):
    package = changed_real_package(tmp_path)

    result = invoke("import", str(package), "--org", "prod", *FAST, "--out", str(tmp_path / "archive"))

    # Then the command exits 7, RunAJob's "failed to start", with IICS's reason in one line
    assert result.exit_code == EXIT_CODES["NOT_STARTED"] == 7, result.stdout + result.stderr
    assert result.stderr.startswith("error: IICS refused the package: ") and result.stderr.count("\n") == 1
    assert "SYS/__ff.Connection.zip" in result.stderr
    # and no import was started, no status read, nothing kept
    assert routes(emulator) == ["login", "upload", "logout"]
    assert not (tmp_path / "archive").exists()


def test_relax_checksum_imports_a_changed_package_and_says_its_checksum_is_not_valid(emulator, prod, tmp_path):
    package = changed_real_package(tmp_path)

    result = invoke("import", str(package), "--org", "prod", "--relax-checksum", *FAST, "--out", str(tmp_path))

    assert result.exit_code == 0, result.stdout + result.stderr
    assert ", checksumValid false" in result.stdout
    assert next(r for r in emulator.requests if r.route == "upload").path.endswith("?relaxChecksum=true")


def test_a_failed_import_exits_3_and_prints_the_first_error_lines_of_its_log(emulator, prod, tmp_path):
    # Given a prod org that lacks a connection the package's mapping task needs
    emulator.fail_imports(prod.org_id, {"mt_infapy_test": "Connection [__ff] is missing"})

    result = invoke(
        "import", str(REAL_PACKAGE), "--org", "prod", "--name", "release-42", "--conflict", "REUSE",
        *FAST, "--out", str(tmp_path),
    )  # fmt: skip

    # Then it exits 3 and shows the log's error line, which people read first
    assert result.exit_code == EXIT_CODES["FAILED"] == 3, result.stdout + result.stderr
    job_id = STARTED.search(result.stdout).group(1)
    assert f"Started import job {job_id} (release-42, REUSE)" in result.stdout
    assert "release-42): FAILED after 2 polls, exit code 3" in result.stdout
    assert re.search(
        r"log errors \(1\):\n    OIE_007 Failed to import object \[/Explore/infapy/mt_infapy_test\] of type \[MTT\] "
        r"id \[\w+\]: Connection \[__ff\] is missing",
        result.stdout,
    ), result.stdout
    assert b"ERROR" in (tmp_path / job_id / "import.log").read_bytes()


@pytest.mark.parametrize(
    ("make_args", "expected"),
    [
        (lambda tmp: [str(tmp / "missing.zip"), "--org", "prod"], "missing.zip does not exist"),
        (lambda tmp: [str(tmp), "--org", "prod"], "is not a file"),
        (lambda tmp: [_text_file(tmp), "--org", "prod"], "notes.zip is not a zip file"),
        (lambda tmp: [str(REAL_PACKAGE), "--org", "prod/eu"], "org must be 1-64 letters, digits, _ and -"),
        (lambda tmp: [str(REAL_PACKAGE), "--org", "prod", "--name", " "], "--name must be 1-255 characters"),
    ],
    ids=["missing file", "a folder", "not a zip", "bad org name", "blank name"],
)
def test_bad_usage_exits_2_before_anything_is_sent(emulator, prod, tmp_path, make_args, expected):
    result = invoke("import", *make_args(tmp_path), *FAST, "--out", str(tmp_path / "archive"))

    assert result.exit_code == EXIT_CODES["USAGE"] == 2
    assert result.stderr.startswith("error: ") and expected in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""
    assert emulator.requests == []
    assert not (tmp_path / "archive").exists()


def _text_file(folder: Path) -> str:
    path = folder / "notes.zip"
    path.write_text("not a zip at all\n")
    return str(path)


def test_import_and_watch_explain_themselves():
    text = " ".join(invoke("import", "--help").stdout.split())
    for fragment in ("PACKAGE", "--org ORG", "--conflict", "OVERWRITE", "--relax-checksum", "7", "IICS_USERNAME"):
        assert fragment in text, fragment
    assert "--kind [export|import]" in " ".join(invoke("watch", "--help").stdout.split())


# --- watch --kind import ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("states", "extra", "expected_code", "expected_text"),
    [
        (["IN_PROGRESS", "SUCCESSFUL"], [], 0, "SUCCESSFUL after 2 polls, exit code 0"),
        (["IN_PROGRESS", "FAILED"], [], 3, "FAILED after 2 polls, exit code 3"),
        (["IN_PROGRESS"], ["--timeout", "2"], 4, "TIMED_OUT"),
    ],
    ids=["successful", "failed", "never ends"],
)
def test_watch_kind_import_follows_a_scripted_import_to_its_end(
    emulator, prod, tmp_path, states, extra, expected_code, expected_text
):
    job_id = emulator.add_job(kind="import", org=prod.org_id, name="promote", states=states)

    result = invoke("watch", job_id, "--kind", "import", "--org", "prod", *FAST, *extra, "--out", str(tmp_path))

    assert result.exit_code == expected_code, result.stdout + result.stderr
    assert expected_text in result.stdout
    assert f"Watching import job {job_id} of org prod" in result.stdout
    assert (tmp_path / job_id / "import.log").read_bytes().startswith(b"> OIE_002 INFO ")
    assert {r.route for r in emulator.requests} <= {"login", "status", "log"}

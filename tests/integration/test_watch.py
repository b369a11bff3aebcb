"""`iics-export-monitor watch` (also `python -m iics_monitor_local.watch`): one job watched from a laptop.

The emulator plays the user's real IICS org. Emulated mode deploys template.yaml into moto itself;
real mode is pointed at a stack this test deploys into moto, so boto3's real-AWS code path runs
without an AWS account. The command runs in-process under the old name, as ``python -m`` runs it.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from dataclasses import dataclass

import pytest
from moto import mock_aws

from iics_monitor.credentials import Credentials
from iics_monitor.hosts import HostPolicy
from iics_monitor_local.cli import run_command, watch_command
from iics_monitor_local.reference import LOG_TEXT, STATUS_SUCCESSFUL_WITH_OBJECTS
from iics_monitor_local.stack import STACK_NAME, LocalStack
from iics_monitor_local.watch import laptop_hosts
from tests.conftest import PASSWORD, USERNAME

FAST = ["--initial-wait", "0", "--max-wait", "1"]
WRONG_PASSWORD = "not-the-password-1234"


@dataclass
class Watched:
    code: int
    out: str
    err: str

    def poll_lines(self) -> list[str]:
        return [line for line in self.out.splitlines() if " poll " in line]


def watch(*argv: str) -> Watched:
    out, err = io.StringIO(), io.StringIO()
    code = run_command(watch_command, argv, "python -m iics_monitor_local.watch", out=out, err=err)
    return Watched(code, out.getvalue(), err.getvalue())


@pytest.fixture
def no_iics_env(monkeypatch):
    for name in ("IICS_USERNAME", "IICS_PASSWORD", "IICS_LOGIN_URL"):
        monkeypatch.delenv(name, raising=False)


def test_successful_job_exits_0_and_its_log_is_kept_locally(iics_env, emulator, tmp_path):
    # Given a job in the org that runs for two polls
    job_id = emulator.add_reference_job(states=["IN_PROGRESS", "IN_PROGRESS", "SUCCESSFUL"])

    # When the user watches it with emulated AWS
    run = watch(job_id, *FAST, "--out", str(tmp_path))

    # Then it ends SUCCESSFUL with exit code 0
    assert run.code == 0, run.err
    # and the log IICS served is on disk, byte for byte, with the final status beside it
    folder = tmp_path / job_id
    assert (folder / "export.log").read_bytes() == LOG_TEXT.encode()
    assert json.loads((folder / "status.json").read_text()) == STATUS_SUCCESSFUL_WITH_OBJECTS
    # and the user saw one line per poll, then the summary with the local paths
    assert len(run.poll_lines()) == 3
    assert "-> SUCCESSFUL" in run.poll_lines()[-1]
    assert f"{job_id} (testJob1): SUCCESSFUL after 3 polls, exit code 0" in run.out
    assert f"kept: {folder / 'export.log'}" in run.out
    assert f"kept: {folder / 'status.json'}" in run.out
    # and the export package the stack archived is kept beside them, not thrown away with the stack
    package = folder / "package.zip"
    assert f"kept: {package}" in run.out
    assert zipfile.ZipFile(package).testzip() is None
    assert "exportMetadata.v2.json" in zipfile.ZipFile(package).namelist()
    assert run.err == ""
    assert PASSWORD not in run.out
    # and IICS was asked only by the deployed functions: one login each for the two that call it
    # (CheckStatus and ArchiveLog: each Lambda container keeps its own session)
    assert emulator.logins == 2


def test_failed_job_exits_3_and_names_its_failed_object(iics_env, emulator, tmp_path):
    job_id = emulator.add_job(
        name="nightly",
        states=["IN_PROGRESS", "FAILED"],
        objects=[
            {"name": "m_bad", "path": "/Sales", "type": "DTEMPLATE", "status": {"state": "FAILED", "message": "boom"}}
        ],
    )

    run = watch(job_id, *FAST, "--out", str(tmp_path))

    assert run.code == 3
    assert "nightly): FAILED after 2 polls" in run.out
    assert "failed: /Sales/m_bad (DTEMPLATE): boom" in run.out
    assert b"ERROR" in (tmp_path / job_id / "export.log").read_bytes()


def test_a_partial_success_exits_1_as_runajobs_warning_and_shows_the_warning(iics_env, emulator, tmp_path):
    job_id = emulator.add_job(name="nightly", states=["IN_PROGRESS", "PARTIAL_SUCCESS"])

    run = watch(job_id, *FAST, "--out", str(tmp_path))

    assert run.code == 1, run.err
    assert "nightly): SUCCESSFUL after 2 polls, exit code 1" in run.out
    assert "  warning: IICS reported PARTIAL_SUCCESS: Export completed with errors." in run.out


def test_a_successful_job_with_failed_objects_exits_1_as_runajobs_warning(iics_env, emulator, tmp_path):
    # Given a job IICS calls SUCCESSFUL although one of its objects failed
    failed = {"name": "m_bad", "path": "/Sales", "type": "DTEMPLATE", "status": {"state": "FAILED", "message": "boom"}}
    good = {"name": "m_good", "path": "/Sales", "type": "DTEMPLATE"}
    job_id = emulator.add_job(name="nightly", states=["SUCCESSFUL"], objects=[good, failed])

    run = watch(job_id, *FAST, "--out", str(tmp_path))

    # Then the command exits 1, RunAJob's warning, and names the failed object
    assert run.code == 1, run.out + run.err
    assert "nightly): SUCCESSFUL after 1 poll, exit code 1" in run.out
    assert "failed: /Sales/m_bad (DTEMPLATE): boom" in run.out


def test_job_that_never_ends_exits_4_at_the_timeout(iics_env, emulator, tmp_path):
    job_id = emulator.add_job(states=["IN_PROGRESS"])

    run = watch(job_id, *FAST, "--timeout", "2", "--out", str(tmp_path))

    assert run.code == 4
    assert "TIMED_OUT" in run.out and "deadline" in run.out
    assert (tmp_path / job_id / "export.log").exists()  # the log so far is kept too


def test_wrong_password_exits_5_after_one_login_and_never_shows_the_password(iics_env, emulator, monkeypatch, tmp_path):
    monkeypatch.setenv("IICS_PASSWORD", WRONG_PASSWORD)
    job_id = emulator.add_job(states=["SUCCESSFUL"])

    run = watch(job_id, *FAST, "--out", str(tmp_path))

    assert run.code == 5
    assert "errorType: LoginRefused" in run.out
    assert "logError: no log archived" in run.out
    assert "objects:" not in run.out and "IICS said" not in run.out  # unknown, not "0 total" or "-"
    assert "ERROR after 0 polls, exit code 5" in run.out  # the login was refused before any status call
    assert emulator.logins == 1
    assert WRONG_PASSWORD not in run.out + run.err
    assert not (tmp_path / job_id).exists()


def test_credentials_can_come_from_a_file_in_the_secret_format(no_iics_env, emulator, tmp_path):
    secret = tmp_path / "iics.json"
    secret.write_text(json.dumps({"username": USERNAME, "password": PASSWORD, "loginUrl": emulator.url}))
    job_id = emulator.add_job(states=["SUCCESSFUL"])

    run = watch(job_id, *FAST, "--credentials", str(secret), "--out", str(tmp_path / "kept"))

    assert run.code == 0, run.err
    assert (tmp_path / "kept" / job_id / "export.log").exists()


def test_missing_password_is_a_usage_error_that_names_it(iics_env, emulator, monkeypatch, tmp_path):
    monkeypatch.delenv("IICS_PASSWORD")
    job_id = emulator.add_job(states=["SUCCESSFUL"])

    run = watch(job_id, "--out", str(tmp_path / "kept"))

    assert run.code == 2
    assert run.err.count("\n") == 1 and "IICS_PASSWORD" in run.err
    assert "Traceback" not in run.err and run.out == ""
    assert emulator.requests == [] and not (tmp_path / "kept").exists()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot be read"),
        ("{not json " + PASSWORD, "is not UTF-8 JSON"),
        (json.dumps({"username": USERNAME, "loginUrl": "https://dm-us.informaticacloud.com"}), "field password"),
        (
            json.dumps({"username": USERNAME, "password": PASSWORD, "loginUrl": "http://dm-us.informaticacloud.com"}),
            "must be an https URL",
        ),
    ],
)
def test_bad_credentials_file_is_a_one_line_usage_error(no_iics_env, emulator, tmp_path, content, expected):
    secret = tmp_path / "iics.json"
    if content is not None:
        secret.write_text(content)

    run = watch(emulator.add_job(), "--credentials", str(secret), "--out", str(tmp_path))

    assert run.code == 2
    assert run.err.count("\n") == 1 and expected in run.err
    assert PASSWORD not in run.err + run.out
    assert emulator.requests == []


@pytest.mark.parametrize("job_id", ["../../etc/passwd", "abc%2F..", "x" * 65, "jöb"])
def test_bad_job_id_is_refused_before_anything_else(no_iics_env, tmp_path, job_id):
    run = watch(job_id, "--out", str(tmp_path / "kept"))

    assert run.code == 2
    assert "jobId must be 1-64 letters and digits" in run.err
    assert not (tmp_path / "kept").exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--initial-wait", "10", "--max-wait", "5"], "maxWaitSeconds must not be less than"),
        (["--timeout", "0"], "must be a whole number from 1 to"),
        (["--aws", "cloud"], "'cloud' is not one of 'emulated', 'real'"),
        (["--allowed-hosts", "*.com"], "--allowed-hosts must be comma-separated host names or *.domain entries"),
    ],
)
def test_bad_options_are_usage_errors(iics_env, emulator, argv, expected):
    run = watch(emulator.add_job(), *argv)

    assert run.code == 2
    assert expected in run.err
    assert emulator.requests == []


@pytest.mark.parametrize(
    ("login_url", "loopback"),
    [
        ("http://127.0.0.1:8080", True),  # the user pointed it at an emulator on this machine
        ("http://localhost:8080", True),
        ("https://dm-us.informaticacloud.com", False),  # a real org: its answers cannot lead to a local port
        ("https://127.0.0.1:8443", False),
    ],
)
def test_this_machines_client_speaks_plain_http_only_to_an_emulator_the_user_chose(login_url, loopback):
    credentials = Credentials(username=USERNAME, password=PASSWORD, login_url=login_url)

    hosts = laptop_hosts(credentials, "pod.example.net")

    assert hosts == HostPolicy(allowed=("pod.example.net",), loopback_http=loopback)
    assert laptop_hosts(None, None) == HostPolicy()


def test_real_aws_starts_the_deployed_state_machine_and_downloads_the_log(no_iics_env, deployed, emulator, tmp_path):
    # Given the reference job, and no local IICS credentials: the deployed secret is used
    job_id = emulator.add_reference_job(states=["IN_PROGRESS", "SUCCESSFUL"])

    # When the user watches it through the deployed stack
    run = watch(job_id, "--aws", "real", "--stack-name", STACK_NAME, "--out", str(tmp_path), "--refresh", "0.05")

    # Then it followed one execution of the deployed state machine to the end
    assert run.code == 0, run.err
    (execution,) = deployed.executions()
    assert execution["name"] == job_id  # the name the stack's own trigger gives it: one execution per job
    assert json.loads(
        deployed.client("stepfunctions").describe_execution(executionArn=execution["executionArn"])["input"]
    ) == {"jobId": job_id}
    assert "execution RUNNING" in run.out and "execution SUCCEEDED" in run.out
    assert len(run.poll_lines()) == 2
    # and kept the archived log and status
    assert (tmp_path / job_id / "export.log").read_bytes() == LOG_TEXT.encode()
    assert json.loads((tmp_path / job_id / "status.json").read_text()) == STATUS_SUCCESSFUL_WITH_OBJECTS


def test_real_aws_follows_the_execution_the_stack_already_has_instead_of_starting_another(
    no_iics_env, deployed, emulator, tmp_path
):
    # Given a job the upstream system announced, so the stack already watches it
    job_id = emulator.add_reference_job(states=["IN_PROGRESS", "IN_PROGRESS", "SUCCESSFUL"])
    outcomes = deployed.capture_events()
    deployed.submit({"jobId": job_id})
    real = ["--aws", "real", "--stack-name", STACK_NAME, "--refresh", "0.05", "--timeout", "600"]

    # When the user watches it while it runs, and again after it ended
    running = watch(job_id, *real, "--out", str(tmp_path / "first"))
    ended = watch(job_id, *real, "--out", str(tmp_path / "second"))

    # Then both followed the stack's one execution to its one outcome, and kept its archive
    for run, folder in ((running, "first"), (ended, "second")):
        assert run.code == 0, run.err
        assert f"{job_id} already has its monitor: following execution" in run.out
        assert "--timeout does not apply" in run.out
        assert (tmp_path / folder / job_id / "export.log").read_bytes() == LOG_TEXT.encode()
    (execution,) = deployed.executions()
    assert execution["name"] == job_id
    described = deployed.client("stepfunctions").describe_execution(executionArn=execution["executionArn"])
    started_by = json.loads(described["input"])  # the trigger's, not a second start
    assert started_by["request"]["jobId"] == job_id and started_by["submission"]["eventId"]
    assert len(outcomes.drain()) == 1
    assert [r.route for r in emulator.requests].count("log") == 1  # one archive, downloaded twice


def test_real_aws_passes_timing_options_as_monitor_overrides_and_reports_errors(
    no_iics_env, deployed, emulator, tmp_path
):
    deployed.client("secretsmanager").put_secret_value(
        SecretId=deployed.stack_parameters["IicsSecretName"],
        SecretString=json.dumps({"username": USERNAME, "password": WRONG_PASSWORD, "loginUrl": emulator.url}),
    )
    job_id = emulator.add_job(states=["SUCCESSFUL"])

    run = watch(job_id, "--aws", "real", "--timeout", "600", "--out", str(tmp_path), "--refresh", "0.05")

    # The ERROR outcome is read from the history: a failed execution has no output
    assert run.code == 5
    assert "execution FAILED" in run.out and "errorType: LoginRefused" in run.out
    (execution,) = deployed.executions()
    described = deployed.client("stepfunctions").describe_execution(executionArn=execution["executionArn"])
    assert json.loads(described["input"]) == {"jobId": job_id, "monitor": {"timeoutSeconds": 600}}
    assert WRONG_PASSWORD not in run.out + run.err


def test_real_aws_refuses_a_wait_under_the_requests_floor_before_starting_anything(
    no_iics_env, deployed, emulator, tmp_path
):
    # Emulated, the options are the laptop stack's own Parameters (0 s waits allowed, as FAST uses);
    # with --aws real they go into the execution's request, which may not ask for waits under 1 s.
    run = watch(emulator.add_job(), "--aws", "real", "--max-wait", "0", "--out", str(tmp_path))

    assert run.code == 2
    assert run.err == "error: monitor.maxWaitSeconds must be a whole number from 1 to 3600\n"
    assert deployed.executions() == [] and emulator.requests == []


def test_real_aws_without_the_stack_is_a_usage_error(no_iics_env, emulator, tmp_path):
    with mock_aws():  # an AWS account where nothing is deployed
        run = watch(emulator.add_job(), "--aws", "real", "--stack-name", "not-deployed", "--out", str(tmp_path))

    assert run.code == 2
    assert run.err.startswith("error: stack not-deployed:") and run.err.count("\n") == 1
    assert emulator.requests == []


def test_help_documents_the_exit_codes():
    run = watch("--help")

    assert run.code == 0
    text = " ".join(run.out.split())
    assert "0 SUCCESSFUL, 1 SUCCESSFUL with a warning or failed objects, 3 FAILED, 4 TIMED_OUT, 5 ERROR" in text
    assert "7 start only: IICS refused to start the export" in text


def test_ctrl_c_exits_6_and_stops_polling(iics_env, emulator, monkeypatch, tmp_path):
    # Given a job that never ends, and a user who presses Ctrl-C while it is being watched
    job_id = emulator.add_job(states=["IN_PROGRESS"])

    def interrupted(stack, execution_arn, timeout, **_):
        time.sleep(0.3)  # the first poll has happened
        raise KeyboardInterrupt

    monkeypatch.setattr(LocalStack, "wait", interrupted)

    run = watch(job_id, "--initial-wait", "1", "--max-wait", "1", "--out", str(tmp_path))

    # Then the command says the job goes on in IICS and exits with RunAJob's "still running"
    assert run.code == 6
    # (a check interrupted mid-invocation may also leave Powertools' "unpublished metrics" warning)
    assert "IICS goes on running it" in run.err.splitlines()[-1] and "Traceback" not in run.err
    # and the emulated execution no longer polls IICS
    polls = len(emulator.requests)
    time.sleep(1.2)  # longer than --max-wait: a live execution would have polled again
    assert len(emulator.requests) == polls


def test_a_bad_login_url_in_the_environment_is_named_as_the_user_set_it(emulator, tmp_path, monkeypatch):
    monkeypatch.setenv("IICS_USERNAME", USERNAME)
    monkeypatch.setenv("IICS_PASSWORD", PASSWORD)
    monkeypatch.setenv("IICS_LOGIN_URL", "http://dm-us.informaticacloud.com")

    run = watch(emulator.add_job(), "--out", str(tmp_path))

    assert run.code == 2
    # not "the IICS_* environment variables field loginUrl must be ..."
    assert "IICS_LOGIN_URL must be an https URL" in run.err and "field" not in run.err

"""`iics-export-monitor`: the command line, driven through click's CliRunner as a user would type it.

The emulator plays the user's IICS org. `watch` and `start` deploy template.yaml into moto
themselves (emulated AWS, short waits); `submit` is pointed at a stack this test deploys "in the
user's account" (moto, active in this process), so boto3's real-AWS code path runs without one.
"""

from __future__ import annotations

import io
import json
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner, Result
from moto import mock_aws

from iics_monitor_local import demo
from iics_monitor_local.cli import cli
from iics_monitor_local.emulator import Fault
from iics_monitor_local.reference import LOG_TEXT, STATUS_SUCCESSFUL_WITH_OBJECTS
from iics_monitor_local.runajob import EXIT_CODES
from tests.conftest import PASSWORD

FAST = ["--initial-wait", "0", "--max-wait", "1"]
COMMAND = Path(sys.executable).parent / "iics-export-monitor"  # installed by `pip install -e .` ([project.scripts])
STARTED = re.compile(r"Started export job ([A-Za-z0-9]+) ")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), prog_name="iics-export-monitor", catch_exceptions=False)


# --- help ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            [],
            [
                "demo",
                "emulator",
                "start",
                "submit",
                "watch",
                "IICS_PASSWORD",
                "0 SUCCESSFUL, 1 SUCCESSFUL with a warning, 3 FAILED",
            ],
        ),
        (["watch"], ["JOB_ID", "--aws", "--out DIR", "--s3", "Examples:", "IICS_LOGIN_URL", "5 ERROR", "6 stopped"]),
        (["start"], ["--object ID", "at most 1000", "--include-dependencies", "IICS_USERNAME", "4 TIMED_OUT"]),
        (["submit"], ["IICS Export Job Submitted", "--event-bus", "--stack-name", "Examples:", "FailedEntryCount"]),
        (["emulator"], ["127.0.0.1", "--port", "--scenario", "--username", "never printed", "Examples:"]),
        (["demo"], ["make demo", "Example:", "Exit code 0"]),
    ],
)
def test_every_command_explains_itself(command, expected):
    result = invoke(*command, "--help")

    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert text.startswith(" ".join(["Usage: iics-export-monitor", *command, "[OPTIONS]"]))
    for fragment in expected:
        assert fragment in text, fragment


def test_the_installed_command_answers_help():
    done = subprocess.run(  # noqa: S603 - the command this project installs
        [str(COMMAND), "--help"], capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: iics-export-monitor [OPTIONS] COMMAND")


def test_the_installed_command_serves_the_emulator_until_ctrl_c_without_showing_the_password():
    secret = "emulator-password-4321"
    process = subprocess.Popen(  # noqa: S603 - the command this project installs
        [str(COMMAND), "emulator", "--port", "0", "--username", "bob", "--password", secret],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        banner = []  # what it prints before it waits for Ctrl-C (or everything, if it died)
        while (line := process.stdout.readline()) and line != "Press Ctrl-C to stop.\n":
            banner.append(line)
    finally:
        process.send_signal(signal.SIGINT)
        rest, err = process.communicate(timeout=30)

    assert re.fullmatch(r"IICS emulator listening on http://127\.0\.0\.1:\d+\n", banner[0])
    assert "as bob" in banner[1]
    assert process.returncode == 0 and rest == "Stopping.\n"
    assert secret not in "".join(banner) + rest + err


@pytest.mark.parametrize("verbose", [False, True])
def test_the_emulator_logs_requests_only_when_asked(verbose):
    # Given the emulator started as a user would, behind `&` in the terminal `start` prints to
    process = subprocess.Popen(  # noqa: S603 - the command this project installs
        [str(COMMAND), "emulator", "--port", "0", *(["--verbose"] if verbose else [])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = process.stdout.readline().split()[-1]
        while process.stdout.readline() not in ("Press Ctrl-C to stop.\n", ""):
            pass
        # When a client logs in
        login = urllib.request.Request(f"{url}/saas/public/core/v3/login", data=b"{}", method="POST")  # noqa: S310
        with pytest.raises(urllib.error.HTTPError):  # no credentials: refused, and still a request to log
            urllib.request.urlopen(login, timeout=10)  # noqa: S310 - the emulator on 127.0.0.1
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)

    # Then its request line shows on stderr only with --verbose
    logged = "POST /saas/public/core/v3/login" in err
    assert logged is verbose, err


def test_demo_runs_the_demo_and_passes_on_its_exit_code(monkeypatch):
    monkeypatch.setattr(demo, "run", lambda: 1)  # the real demo takes 15 s; tests/e2e/test_demo.py runs it

    assert invoke("demo").exit_code == 1


# --- start -----------------------------------------------------------------------------------------


def test_start_exports_the_objects_and_watches_the_job_to_its_end(iics_env, emulator, tmp_path):
    # When the user starts an export of two objects, with their dependencies
    result = invoke(
        "start", "--object", "obj1", "--object", "obj2", "--name", "nightly", "--include-dependencies",
        *FAST, "--out", str(tmp_path),
    )  # fmt: skip

    # Then IICS got one export request for exactly those objects
    assert result.exit_code == 0, result.stderr
    (export,) = [r for r in emulator.requests if r.route == "export"]
    assert json.loads(export.body) == {
        "name": "nightly",
        "objects": [{"id": "obj1", "includeDependencies": True}, {"id": "obj2", "includeDependencies": True}],
    }
    # and the command printed the new job's id, then watched it like `watch` to SUCCESSFUL
    job_id = STARTED.search(result.stdout).group(1)
    assert f"Started export job {job_id} (nightly, 2 objects)" in result.stdout
    assert f"{job_id} (nightly): SUCCESSFUL after 2 polls, exit code 0" in result.stdout
    # and the job's log is kept in --out, byte for byte
    assert (tmp_path / job_id / "export.log").read_bytes() == emulator.log_of(job_id)
    assert (tmp_path / job_id / "status.json").exists()
    assert PASSWORD not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        ([f"obj{i}" for i in range(1001)], "export.objects must list 1 to 1000 objects"),
        (["obj1", "../etc/passwd"], "export.objects[1].id must be 1-64 letters and digits"),
    ],
)
def test_start_refuses_bad_objects_before_anything_is_started(iics_env, emulator, tmp_path, objects, expected):
    result = invoke("start", *(arg for object_id in objects for arg in ("--object", object_id)), "--out", str(tmp_path))

    assert result.exit_code == EXIT_CODES["USAGE"] == 2
    assert result.stderr.startswith("error: ") and expected in result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""
    assert emulator.requests == []
    assert list(tmp_path.iterdir()) == []


def test_start_with_a_refused_login_exits_5_after_one_login_and_never_shows_the_password(
    iics_env, emulator, monkeypatch, tmp_path
):
    monkeypatch.setenv("IICS_PASSWORD", "not-the-password-1234")

    result = invoke("start", "--object", "obj1", "--out", str(tmp_path))

    assert result.exit_code == 5
    assert result.stderr.startswith("error: IICS did not start the export: IICS login refused")
    assert emulator.logins == 1 and [r.route for r in emulator.requests] == ["login"]
    assert "not-the-password-1234" not in result.stdout + result.stderr


def test_start_that_iics_refuses_exits_7_failed_to_start_and_nothing_is_watched(iics_env, emulator, tmp_path):
    # Given an org that refuses the export request (a 400: say, an object the user may not export)
    emulator.add_fault(Fault(route="export", status=400))

    result = invoke("start", "--object", "obj1", *FAST, "--out", str(tmp_path))

    # Then the command exits 7, RunAJob's "failed to start", with one line that says IICS refused it
    assert result.exit_code == EXIT_CODES["NOT_STARTED"] == 7, result.stdout + result.stderr
    assert result.stderr.startswith("error: IICS refused to start the export: ") and result.stderr.count("\n") == 1
    assert [r.route for r in emulator.requests] == ["login", "export", "logout"]
    assert list(tmp_path.iterdir()) == []


# --- exit codes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "expected_code", "expected_text"),
    [
        ("failed", 3, "FAILED after 2 polls, exit code 3"),
        ("never ends", 4, "TIMED_OUT"),
        ("unknown to IICS", 5, "errorType: JobNotFound"),
    ],
)
def test_exit_codes_are_runajobs(iics_env, emulator, tmp_path, how, expected_code, expected_text):
    if how == "failed":
        command = ["watch", emulator.add_job(states=["IN_PROGRESS", "FAILED"])]
    elif how == "never ends":  # a started export that IICS never finishes
        emulator.export_states = ["IN_PROGRESS"]
        command = ["start", "--object", "obj1", "--timeout", "2"]
    else:
        command = ["watch", "7evG9CokA1whk8ehF3opKN"]

    result = invoke(*command, *FAST, "--out", str(tmp_path))

    assert result.exit_code == expected_code, result.stdout + result.stderr
    assert expected_text in result.stdout


# --- watch --s3 ------------------------------------------------------------------------------------


def test_watch_copies_the_log_to_s3_in_the_archive_layout(iics_env, emulator, tmp_path, monkeypatch):
    # Given the user's AWS account with an audit bucket, and a job that succeeds
    monkeypatch.chdir(tmp_path)
    job_id = emulator.add_reference_job(states=["IN_PROGRESS", "SUCCESSFUL"])
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="audit-logs")

        # When the user watches it (emulated AWS) with --s3 only
        result = invoke("watch", job_id, *FAST, "--s3", "s3://audit-logs/iics/")

        # Then the log, status and package are in the bucket, under the prefix, as the stack archives them
        assert result.exit_code == 0, result.stderr
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="audit-logs")["Contents"])
        assert [re.sub(r"\d{4}/\d{2}/\d{2}", "YYYY/MM/DD", key) for key in keys] == [
            f"iics/YYYY/MM/DD/{job_id}/export.log",
            f"iics/YYYY/MM/DD/{job_id}/package.zip",
            f"iics/YYYY/MM/DD/{job_id}/status.json",
        ]
        assert s3.get_object(Bucket="audit-logs", Key=keys[0])["Body"].read() == LOG_TEXT.encode()
        package = s3.get_object(Bucket="audit-logs", Key=keys[1])["Body"].read()
        assert "exportMetadata.v2.json" in zipfile.ZipFile(io.BytesIO(package)).namelist()
        status = json.loads(s3.get_object(Bucket="audit-logs", Key=keys[2])["Body"].read())
        assert status == STATUS_SUCCESSFUL_WITH_OBJECTS
    # and the summary names the copies; nothing was left on disk
    assert f"copied: s3://audit-logs/{keys[0]}" in result.stdout
    assert "kept:" not in result.stdout
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "url",
    ["https://audit-logs/iics/", "s3://Audit_Logs/", "s3://audit-logs/iics", "s3://audit-logs/../iics/", "s3://a/"],
)
def test_watch_refuses_a_bad_s3_location_before_anything_is_started(iics_env, emulator, url):
    result = invoke("watch", emulator.add_job(), "--s3", url)

    assert result.exit_code == 2
    assert result.stderr.startswith("error: --s3 ") and result.stderr.count("\n") == 1
    assert emulator.requests == []


# --- submit ----------------------------------------------------------------------------------------


def test_submit_puts_the_trigger_event_on_the_stacks_bus_and_a_monitor_starts(deployed, emulator):
    # Given a job running in IICS, and a consumer of the trigger events on the stack's bus
    job_id = emulator.add_job(name="nightly", states=["IN_PROGRESS", "SUCCESSFUL"])
    triggers = deployed.capture_events(source="iics.export")

    # When the user submits it to the deployed stack (found by its default name)
    result = invoke("submit", job_id, "--name", "nightly")

    # Then the upstream event is on the stack's bus
    assert result.exit_code == 0, result.stderr
    (event,) = triggers.drain()
    assert event["detail-type"] == "IICS Export Job Submitted"
    assert event["detail"] == {"jobId": job_id, "name": "nightly"}
    assert f"Submitted job {job_id} to event bus {deployed.bus_name}: event {event['id']}" in result.stdout
    # and the template's rule started the job's monitor (EventBridge invokes StartMonitor asynchronously),
    # which watches it to the end
    deadline = time.monotonic() + 30
    while not deployed.executions() and time.monotonic() < deadline:
        time.sleep(0.05)
    (execution,) = deployed.executions()
    assert execution["name"] == job_id
    assert deployed.wait(execution["executionArn"], timeout=30)["status"] == "SUCCEEDED"


def test_submit_reports_an_entry_eventbridge_refused_as_an_error(deployed, emulator):
    refused = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}]}
    deployed.fail_aws("events", "PutEvents", response=refused)

    result = invoke("submit", emulator.add_job(), "--event-bus", deployed.bus_name)

    assert result.exit_code == 5
    assert result.stderr == f"error: EventBridge refused the event on {deployed.bus_name}: InternalFailure try again\n"
    assert deployed.executions() == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["../../etc/passwd"], "jobId must be 1-64 letters and digits"),
        (["7evG9CokA1whk8ehF3opKM", "--name", "x" * 256], "name must be printable text of at most 255"),
        (["7evG9CokA1whk8ehF3opKM", "--stack-name", "not-deployed"], "error: stack not-deployed:"),
        (["7evG9CokA1whk8ehF3opKM", "--stack-name", "a", "--event-bus", "b"], "--event-bus or --stack-name, not both"),
    ],
)
def test_submit_refuses_bad_input_and_sends_nothing(args, expected):
    with mock_aws():  # an AWS account where nothing is deployed, but a rule that sees any trigger on the bus
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue = sqs.create_queue(QueueName="triggers")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events = boto3.client("events", region_name="us-east-1")
        events.put_rule(Name="triggers", EventPattern=json.dumps({"source": ["iics.export"]}))
        events.put_targets(Rule="triggers", Targets=[{"Id": "queue", "Arn": queue_arn}])

        result = invoke("submit", *args)

        assert result.exit_code == 2
        assert expected in result.stderr
        assert "Messages" not in sqs.receive_message(QueueUrl=queue)

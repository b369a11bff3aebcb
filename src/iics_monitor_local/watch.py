"""Watch one IICS export job from a laptop, through the same code path as production.

    python -m iics_monitor_local.watch JOB_ID [--aws emulated|real] [--out DIR] [options]

``--aws emulated`` (the default) deploys template.yaml into moto (``LocalStack``), stores the IICS
credentials from the environment or ``--credentials FILE`` as the stack's secret, announces the job
with the upstream EventBridge event, and runs the real handlers in-process against the IICS org.
``--aws real`` starts an execution of a deployed stack instead (its functions use the deployed
secret) and follows it. Either way the archived ``export.log`` and ``status.json`` are copied to
``DIR/<jobId>/`` and the exit code is the one Informatica's RunAJob gives (``EXIT_CODES``).
docs/watch.md is the user's guide.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from iics_monitor.credentials import Credentials
from iics_monitor.errors import ConfigError, InvalidInput
from iics_monitor.validation import MonitorSettings, parse_job_id
from iics_monitor_local.progress import Progress
from iics_monitor_local.stack import EXECUTION_ENDED, STACK_NAME, LambdaInvocation, LocalStack, quiet_moto

# Informatica RunAJob's exit codes, so scripts written for it read ours the same way. RunAJob's 2
# means "did not wait", which this command never does; here it is argparse's "bad usage".
EXIT_CODES = {"SUCCESSFUL": 0, "USAGE": 2, "FAILED": 3, "TIMED_OUT": 4, "ERROR": 5, "STILL_RUNNING": 6}

CREDENTIAL_VARIABLES = {"username": "IICS_USERNAME", "password": "IICS_PASSWORD", "loginUrl": "IICS_LOGIN_URL"}
# Poll timing for a laptop: the first re-poll soon, then at most once a minute, for up to 6 hours.
LAPTOP_SETTINGS = MonitorSettings(initial_wait_seconds=5, max_wait_seconds=60, timeout_seconds=21600)
# option -> (field of the execution input's ``monitor`` object, template Parameter)
WAIT_OPTIONS = {
    "initial_wait": ("initialWaitSeconds", "InitialWaitSeconds"),
    "max_wait": ("maxWaitSeconds", "MaxWaitSeconds"),
    "timeout": ("timeoutSeconds", "TimeoutSeconds"),
}
# Beyond TimeoutSeconds and one last wait, how long the final poll and the archive may take locally.
ARCHIVE_SLACK_SECONDS = 600
# The state whose input carries the outcome detail it publishes, on the success and the ERROR paths.
OUTCOME_STATE = "EmitOutcome"


class UsageError(Exception):
    """Bad arguments or configuration, found before anything was started."""


class WatchFailed(Exception):
    """The watch itself went wrong after it started: no outcome, AWS unreachable, archive unreadable."""


@dataclass(frozen=True)
class DeployedStack:
    state_machine_arn: str
    bucket: str
    settings: MonitorSettings


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the command; return its exit code. Errors are one line on ``err``, never a traceback."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = _parser().parse_args(argv)
    except SystemExit as stop:  # --help, or argparse refused the arguments
        return stop.code if isinstance(stop.code, int) else EXIT_CODES["USAGE"]
    try:
        job_id = parse_job_id(args.job_id)
        watch = watch_emulated if args.aws == "emulated" else watch_real
        detail, kept = watch(job_id, args, out)
    except (UsageError, InvalidInput, ConfigError) as error:
        print(f"error: {error}", file=err)
        return EXIT_CODES["USAGE"]
    except WatchFailed as error:
        print(f"error: {error}", file=err)
        return EXIT_CODES["ERROR"]
    except KeyboardInterrupt:
        print("Stopped watching before the job ended; IICS goes on running it.", file=err)
        return EXIT_CODES["STILL_RUNNING"]
    code = EXIT_CODES.get(detail.get("state"), EXIT_CODES["ERROR"])
    summarise(detail, kept, code, out)
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m iics_monitor_local.watch",
        description="Watch one IICS export job until it ends and keep its log (docs/watch.md).",
        epilog="Exit codes (Informatica RunAJob's): 0 SUCCESSFUL, 3 FAILED, 4 TIMED_OUT, 5 ERROR, "
        "2 bad usage or configuration, 6 stopped watching before the job ended.",
    )
    parser.add_argument("job_id", metavar="JOB_ID", help="the IICS export job id (1-64 letters and digits)")
    parser.add_argument(
        "--aws",
        choices=("emulated", "real"),
        default="emulated",
        help="emulated (default): template.yaml deployed into moto on this machine; "
        "real: the stack deployed in your AWS account",
    )
    parser.add_argument(
        "--credentials",
        metavar="FILE",
        type=Path,
        help='emulated mode: IICS credentials as JSON {"username", "password", "loginUrl"}, the format of the '
        "deployed secret (default: IICS_USERNAME, IICS_PASSWORD, IICS_LOGIN_URL)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        default=Path("archive"),
        help="the log and status go to DIR/JOB_ID/export.log and status.json (default: ./archive)",
    )
    timing = parser.add_argument_group(
        "poll timing",
        "emulated: the template Parameters (defaults 5, 60 and 21600 seconds); "
        "real: this job's monitor overrides (defaults: the stack's Parameters)",
    )
    timing.add_argument(
        "--initial-wait", type=_seconds("initialWaitSeconds"), metavar="SECONDS", help="wait before the second poll"
    )
    timing.add_argument(
        "--max-wait", type=_seconds("maxWaitSeconds"), metavar="SECONDS", help="longest wait between two polls"
    )
    timing.add_argument(
        "--timeout", type=_seconds("timeoutSeconds"), metavar="SECONDS", help="the job ends as TIMED_OUT after this"
    )
    real = parser.add_argument_group("--aws real")
    real.add_argument("--region", help="AWS region (default: your AWS configuration's)")
    real.add_argument("--stack-name", default=STACK_NAME, help=f"the deployed stack (default: {STACK_NAME})")
    real.add_argument(
        "--refresh",
        type=_refresh,
        default=10.0,
        metavar="SECONDS",
        help="how often to read the execution's status and history (default: 10)",
    )
    return parser


def _seconds(field: str):
    _, low, high = MonitorSettings.FIELDS[field]

    def parse(text: str) -> int:
        if not text.isdigit() or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high}, got {text!r}")
        return int(text)

    return parse


def _refresh(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be a number of seconds from 0 to 3600, got {text!r}")
    return value


def _overrides(args: argparse.Namespace) -> dict[str, int]:
    """The poll-timing options given, as fields of the ``monitor`` object."""
    return {
        field: getattr(args, option) for option, (field, _) in WAIT_OPTIONS.items() if getattr(args, option) is not None
    }


# --- emulated AWS ------------------------------------------------------------------------------


def read_credentials(path: Path | None) -> Credentials:
    """The IICS credentials from ``path`` (JSON, as the deployed secret) or the IICS_* variables."""
    if path is not None:
        source = f"credentials file {path}"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise UsageError(f"{source} cannot be read: {error.strerror}") from None
        except ValueError:  # the reason is left out: a decode error can quote the file's bytes
            raise UsageError(f"{source} is not UTF-8 JSON") from None
        return Credentials.from_mapping(data, source=source)
    missing = [name for name in CREDENTIAL_VARIABLES.values() if not os.environ.get(name)]
    if missing:
        raise UsageError(
            f"{', '.join(missing)} not set: set IICS_USERNAME, IICS_PASSWORD and IICS_LOGIN_URL, "
            "or pass --credentials FILE"
        )
    values = {field: os.environ[name] for field, name in CREDENTIAL_VARIABLES.items()}
    return Credentials.from_mapping(values, source="the IICS_* environment variables")


def watch_emulated(job_id: str, args: argparse.Namespace, out: TextIO) -> tuple[dict, list[Path]]:
    credentials = read_credentials(args.credentials)
    settings = LAPTOP_SETTINGS.overridden_by(_overrides(args))
    parameters = {parameter: settings.to_dict()[field] for field, parameter in WAIT_OPTIONS.values()}
    _say(
        out, f"Deploying template.yaml into emulated AWS (moto); IICS {credentials.login_url} as {credentials.username}"
    )
    with LocalStack(parameters) as stack:
        stack.put_iics_secret(credentials.username, credentials.password, credentials.login_url)
        stack.on_invocation(Progress(out, labels={job_id: job_id}))
        outcomes = stack.capture_events()
        stack.submit({"jobId": job_id})
        executions = stack.executions()
        if len(executions) != 1:
            raise WatchFailed(f"the trigger event started {len(executions)} executions, expected 1")
        arn = executions[0]["executionArn"]
        _say(out, f"Watching job {job_id}: execution {arn}")
        try:
            ended = stack.wait(
                arn,
                timeout=settings.timeout_seconds + settings.max_wait_seconds + ARCHIVE_SLACK_SECONDS,
                poll_seconds=1.0,
            )
        except TimeoutError as error:  # leaving the stack stops the execution
            raise WatchFailed(str(error)) from None
        events = outcomes.drain()
        if len(events) != 1:
            raise WatchFailed(f"execution ended {ended['status']} with {len(events)} outcome events, expected 1")
        detail = events[0]["detail"]
        return detail, keep_archive(stack.client("s3"), stack.bucket, detail, args.out / job_id)


# --- real AWS ----------------------------------------------------------------------------------


def watch_real(job_id: str, args: argparse.Namespace, out: TextIO) -> tuple[dict, list[Path]]:
    try:
        session = boto3.Session(region_name=args.region)
        cloudformation, sfn, s3 = (session.client(name) for name in ("cloudformation", "stepfunctions", "s3"))
    except BotoCoreError as error:  # no region configured, unknown profile
        raise UsageError(f"AWS: {error}") from None
    stack = find_stack(cloudformation, args.stack_name)
    if args.credentials is not None:
        _say(out, "Note: --credentials is not used with --aws real; the deployed functions read the deployed secret.")
    request: dict[str, Any] = {"jobId": job_id}
    overrides = _overrides(args)
    if overrides:
        stack.settings.overridden_by(overrides)  # refuse a bad combination before starting anything
        request["monitor"] = overrides
    try:
        arn = sfn.start_execution(
            stateMachineArn=stack.state_machine_arn,
            name=f"{job_id}-{datetime.now(UTC):%Y%m%d%H%M%S}",  # at most 79 characters; the limit is 80
            input=json.dumps(request),
        )["executionArn"]
    except (BotoCoreError, ClientError) as error:
        raise UsageError(f"cannot start {stack.state_machine_arn}: {error}") from None
    _say(out, f"Watching job {job_id}: execution {arn}")
    try:
        detail = follow(sfn, arn, job_id, Progress(out, labels={job_id: job_id}), out, args.refresh)
    except KeyboardInterrupt:
        _say(out, f"The execution goes on in AWS: {arn}")
        raise
    except (BotoCoreError, ClientError) as error:
        raise WatchFailed(f"lost track of {arn}: {error}") from None
    return detail, keep_archive(s3, stack.bucket, detail, args.out / job_id)


def find_stack(cloudformation: Any, name: str) -> DeployedStack:
    """The state machine, bucket and poll Parameters of a deployed iics-export-monitor stack."""
    try:
        (stack,) = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except (BotoCoreError, ClientError) as error:
        raise UsageError(f"stack {name}: {error}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}
    try:
        settings = MonitorSettings(*(int(parameters[parameter]) for _, parameter in WAIT_OPTIONS.values()))
        return DeployedStack(outputs["StateMachineArn"], outputs["ArchiveBucketName"], settings)
    except (KeyError, ValueError) as error:
        raise UsageError(f"stack {name} does not look like iics-export-monitor's: bad or missing {error}") from None


def follow(sfn: Any, arn: str, job_id: str, progress: Progress, out: TextIO, refresh: float) -> dict:
    """Poll the execution until it ends; replay its Lambda results through ``progress``; return the outcome."""
    status, last_id, detail = None, 0, None
    while True:
        described = sfn.describe_execution(executionArn=arn)
        for event in history_after(sfn, arn, last_id):
            last_id = event["id"]
            detail = _outcome_in(event) or detail
            invocation = _as_invocation(event, job_id)
            if invocation is not None:
                progress(invocation)
        if described["status"] != status:
            status = described["status"]
            _say(out, f"{time.time() - progress.started:6.1f}s  execution {status}")
        if status in EXECUTION_ENDED:
            break
        time.sleep(refresh)
    if detail is None:
        raise WatchFailed(f"execution {arn} ended {status} without an outcome")
    return detail


def history_after(sfn: Any, arn: str, last_id: int) -> list[dict]:
    """The execution's history events newer than ``last_id``, oldest first: newest pages first,
    so a long execution costs one call per refresh, not its whole history."""
    events: list[dict] = []
    request = {"executionArn": arn, "reverseOrder": True, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**request)
        events.extend(e for e in page["events"] if e["id"] > last_id)
        if "nextToken" not in page or any(e["id"] <= last_id for e in page["events"]):
            return sorted(events, key=lambda e: e["id"])
        request["nextToken"] = page["nextToken"]


def _outcome_in(event: Mapping[str, Any]) -> dict | None:
    if event["type"] != "TaskStateEntered" or event["stateEnteredEventDetails"]["name"] != OUTCOME_STATE:
        return None
    return _json(event["stateEnteredEventDetails"].get("input")).get("outcome", {}).get("detail")


def _as_invocation(event: Mapping[str, Any], job_id: str) -> LambdaInvocation | None:
    """A Lambda task's result in the history, in the shape the local stack hands to listeners."""
    if event["type"] == "TaskSucceeded":
        details = event["taskSucceededEventDetails"]
        result, errored = _json(details.get("output")).get("Payload"), False
    elif event["type"] == "TaskFailed":
        details = event["taskFailedEventDetails"]
        cause = _json(details.get("cause"))
        result = {"errorType": details.get("error"), "errorMessage": cause.get("errorMessage", details.get("cause"))}
        errored = True
    else:
        return None
    if details.get("resourceType") != "lambda":
        return None
    return LambdaInvocation(
        function_name=details.get("resource", "lambda"),
        event={"request": {"jobId": job_id}},
        result=result,
        errored=errored,
        logs="",
        started_at=event["timestamp"].timestamp(),  # the history gives the end only
        finished_at=event["timestamp"].timestamp(),
    )


def _json(text: str | None) -> dict:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# --- both --------------------------------------------------------------------------------------


def keep_archive(s3: Any, bucket: str, detail: Mapping[str, Any], folder: Path) -> list[Path]:
    """Copy the archived export.log, and status.json beside it, into ``folder``.

    The local log is checked against the outcome's sha256. Without a log (``logError``) nothing is
    copied: status.json is found through the log's key.
    """
    log = detail.get("log")
    if not log:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    log_path = _download(s3, bucket, log["key"], folder / "export.log")
    if log_path is None:
        raise WatchFailed(f"s3://{bucket}/{log['key']} is gone")
    if _sha256(log_path) != log["sha256"]:
        raise WatchFailed(f"{log_path} does not match the archived log's sha256; s3://{bucket}/{log['key']} changed")
    status_key = log["key"].rsplit("/", 1)[0] + "/status.json"
    status_path = _download(s3, bucket, status_key, folder / "status.json")
    return [path for path in (log_path, status_path) if path is not None]


def _download(s3: Any, bucket: str, key: str, path: Path) -> Path | None:
    try:
        s3.download_file(bucket, key, str(path))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
            return None
        raise WatchFailed(f"cannot read s3://{bucket}/{key}: {error}") from None
    except BotoCoreError as error:
        raise WatchFailed(f"cannot read s3://{bucket}/{key}: {error}") from None
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def summarise(detail: Mapping[str, Any], kept: list[Path], code: int, out: TextIO) -> None:
    objects = detail.get("objects") or {}
    lines = [
        "",
        f"{detail.get('jobId')} ({detail.get('jobName') or 'no name'}): {detail.get('state')} "
        f"after {detail.get('polls')} polls, exit code {code}",
        f"  IICS said {detail.get('iicsState') or '-'}: {detail.get('message') or '-'}",
        f"  objects: {objects.get('total', 0)} total, {objects.get('successful', 0)} successful, "
        f"{objects.get('failed', 0)} failed",
        *(
            f"  failed: {o.get('path')}/{o.get('name')} ({o.get('type')}): {o.get('message')}"
            for o in detail.get("failedObjects") or []
        ),
        *(f"  {field}: {detail[field]}" for field in ("reason", "errorType", "logError") if detail.get(field)),
    ]
    if detail.get("log"):
        lines.append(f"  archived: s3://{detail['log']['bucket']}/{detail['log']['key']}")
    lines += [f"  kept: {path}" for path in kept]
    _say(out, "\n".join(lines))


def _say(out: TextIO, line: str) -> None:
    print(line, file=out, flush=True)


if __name__ == "__main__":
    quiet_moto()
    sys.exit(main())

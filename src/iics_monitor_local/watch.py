"""Watch one IICS export job from a laptop, through the same code path as production.

    iics-export-monitor watch JOB_ID [--aws emulated|real] [--out DIR] [--s3 URL] [options]
    iics-export-monitor start --object ID [...] [watch options]
    iics-export-monitor import PACKAGE.zip --org ORG [...] [watch options]
    python -m iics_monitor_local.watch JOB_ID [...]        (the same command as ``watch``)

``--aws emulated`` (the default) deploys template.yaml into moto (``LocalStack``), stores the IICS
credentials from the environment or ``--credentials FILE`` as the stack's secret, announces the job
with the upstream EventBridge event, and runs the real handlers (each function in worker processes of
its own, as the tests run them) against the IICS org.
``--aws real`` starts an execution of a deployed stack instead (its functions use the deployed
secret) and follows it. An import (``--kind import``, or one ``import`` uploads and starts) is watched
the same way; with ``--org`` the login is that org's, the emulated stack keeps it as the org's secret
(``iics-export-monitor/orgs/<org>``), and the log is ``import.log``.
Either way the archived ``export.log`` and ``status.json`` are copied to
``DIR/<jobId>/`` and/or to ``--s3`` in the deployed archive's layout, and the exit code is the one
Informatica's RunAJob gives (``runajob``). With emulated AWS the archived export package is kept
there too (``package.zip``): the stack it was archived in is gone when the command ends.

The options and help live in ``cli.py``; ``run`` is what both commands execute, and it never imports
the CLI back (``python -m`` reaches it through the ``__main__`` block). docs/cli.md is the user's guide.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import os
import re
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol, TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from iics_monitor.archive import LogArchiver
from iics_monitor.client import IicsClient
from iics_monitor.config import ARCHIVE_PREFIX, BUCKET_NAME, org_secrets  # the deployed stack's own rules
from iics_monitor.credentials import Credentials
from iics_monitor.errors import (
    ConfigError,
    IicsError,
    IicsUnavailable,
    InvalidInput,
    LoginFailed,
    MonitorError,
    NotSent,
    StartUnconfirmed,
)
from iics_monitor.hosts import ALLOWED_HOSTS_PARAMETER, HostPolicy, is_loopback, service_url_parts
from iics_monitor.validation import (
    EXPORT,
    IMPORT,
    MonitorSettings,
    parse_export_spec,
    parse_job_id,
    parse_kind,
    parse_org_name,
    parse_request,
)
from iics_monitor_local.deployed import IMPORT_TRIGGER_DETAIL_TYPE, TRIGGER_DETAIL_TYPE, StackUnusable, read_stack
from iics_monitor_local.progress import Progress
from iics_monitor_local.runajob import EXIT_CODES, exit_code
from iics_monitor_local.samconfig import LAPTOP_SETTINGS
from iics_monitor_local.stack import EXECUTION_ENDED, LambdaInvocation, LocalStack

__all__ = ["ExportToStart", "GivenJob", "ImportToStart", "WatchOptions", "run"]

CREDENTIAL_VARIABLES = {"username": "IICS_USERNAME", "password": "IICS_PASSWORD", "loginUrl": "IICS_LOGIN_URL"}
# option -> (field of the execution input's ``monitor`` object, template Parameter)
WAIT_OPTIONS = {
    "initial_wait": ("initialWaitSeconds", "InitialWaitSeconds"),
    "max_wait": ("maxWaitSeconds", "MaxWaitSeconds"),
    "timeout": ("timeoutSeconds", "TimeoutSeconds"),
}
DEFAULT_OUT = Path("archive")
# Room in an S3 key (1,024 bytes) for YYYY/MM/DD/<64-character job id>/status.json after the prefix.
MAX_S3_PREFIX = 900
# Beyond TimeoutSeconds and one last wait, how long the final poll and the archive may take locally.
ARCHIVE_SLACK_SECONDS = 600
# The state whose input carries the outcome detail it publishes, on the success and the ERROR paths.
OUTCOME_STATE = "EmitOutcome"
# Each state that puts an outcome on the bus, and the field of its input that holds it (the ASL's).
OUTCOME_INPUTS = {OUTCOME_STATE: "outcome", "EmitImportOutcome": "outcome", "EmitPromotionOutcome": "promotionOutcome"}
ORGS_PARAMETER = "IicsOrgSecretArns"


class UsageError(Exception):
    """Bad arguments or configuration, found before anything was started."""


class WatchFailed(Exception):
    """The watch itself went wrong after it started: no outcome, AWS unreachable, archive unreadable."""


class NotStarted(Exception):
    """IICS refused the start request (or an import's package): there is no job to watch (RunAJob's
    "failed to start")."""


@dataclass(frozen=True)
class WatchOptions:
    """The options ``watch`` and ``start`` share (cli.watch_options), as the command line gave them."""

    aws: str  # "emulated" or "real"
    credentials: Path | None
    out: Path | None
    s3: str | None
    initial_wait: int | None
    max_wait: int | None
    timeout: int | None
    region: str | None
    stack_name: str
    refresh: float
    allowed_hosts: str | None  # IicsAllowedHosts: pods this machine's client and the emulated stack may reach


@dataclass(frozen=True)
class WatchedStack:
    """What ``--aws real`` needs of the deployed stack."""

    state_machine_arn: str
    bucket: str
    settings: MonitorSettings
    orgs: frozenset[str] = frozenset()  # the org names IicsOrgSecretArns configures


# --- what to watch -------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobRef:
    """The job to watch: its id, whether it is an export or an import, and the org it runs in (None:
    the stack's own IICS secret)."""

    job_id: str
    kind: str = EXPORT
    org: str | None = None

    def announcement(self) -> tuple[str, dict[str, Any]]:
        """The trigger event's detail-type and detail: an export of the stack's own org is announced
        as it always was."""
        detail_type = IMPORT_TRIGGER_DETAIL_TYPE if self.kind == IMPORT else TRIGGER_DETAIL_TYPE
        return detail_type, {"jobId": self.job_id} | ({"org": self.org} if self.org is not None else {})

    def request(self) -> dict[str, Any]:
        """The execution's bare input: the announcement's detail, with ``kind`` for an import."""
        return self.announcement()[1] | ({"kind": self.kind} if self.kind != EXPORT else {})

    def __str__(self) -> str:
        what = f"{self.kind} job" if self.kind != EXPORT else "job"
        return f"{what} {self.job_id}" + (f" of org {self.org}" if self.org is not None else "")


class JobSource(Protocol):
    """The job to watch: one given by id (``GivenJob``), or one the command starts (``ExportToStart``,
    ``ImportToStart``)."""

    logs_in: ClassVar[bool]  # begin() logs in to IICS from this machine, so it needs the IICS credentials
    org: str | None  # the org whose login the command was given (None: the stack's own secret)

    def check(self) -> None:
        """Parse the input; raise InvalidInput or UsageError. Nothing is started."""

    def begin(self, credentials: Credentials | None, hosts: HostPolicy, out: TextIO) -> JobRef:
        """The job to watch, started now if need be (reaching IICS only on ``hosts``).
        Called once every check has passed."""


class GivenJob:
    """``watch JOB_ID [--kind import] [--org ORG]``: a job that already runs in IICS."""

    logs_in = False

    def __init__(self, job_id: str, kind: str = EXPORT, org: str | None = None) -> None:
        self._raw, self._kind, self.org = job_id, kind, org

    def check(self) -> None:
        parse_job_id(self._raw)
        parse_kind(self._kind)
        if self.org is not None:
            parse_org_name(self.org)

    def begin(self, credentials: Credentials | None, hosts: HostPolicy, out: TextIO) -> JobRef:
        return JobRef(parse_job_id(self._raw), parse_kind(self._kind), self.org)


class ExportToStart:
    """``start --object ID ...``: an export this command starts (IICS ``POST /export``), then watches."""

    logs_in = True
    org = None

    def __init__(self, object_ids: Sequence[str], name: str | None, include_dependencies: bool | None) -> None:
        flag = {} if include_dependencies is None else {"includeDependencies": include_dependencies}
        self._raw: dict[str, Any] = {"objects": [{"id": object_id} | flag for object_id in object_ids]}
        if name is not None:
            self._raw["name"] = name

    def check(self) -> None:
        parse_export_spec(self._raw)

    def begin(self, credentials: Credentials | None, hosts: HostPolicy, out: TextIO) -> JobRef:
        spec = parse_export_spec(self._raw)
        client = IicsClient(lambda: credentials, hosts=hosts)
        try:
            client.login()  # apart: a refused login is an error of the command, as with watch
            started = client.start_export(spec)
        except (IicsUnavailable, StartUnconfirmed) as error:  # it may have reached IICS: no blind retry
            raise WatchFailed(
                f"IICS did not confirm the export ({error}); it may have started anyway, check IICS before retrying"
            ) from None
        except (LoginFailed, ConfigError) as error:  # ConfigError: IICS answered with a host it may not reach
            raise WatchFailed(f"IICS did not start the export: {error}") from None
        except IicsError as error:  # IICS answered the request itself with a refusal
            raise NotStarted(f"IICS refused to start the export: {error}") from None
        finally:
            with contextlib.suppress(IicsError):
                client.logout()
        try:
            job_id = parse_job_id(started.get("id"))
        except InvalidInput:
            raise WatchFailed("IICS accepted the export but answered no usable job id") from None
        objects = "1 object" if len(spec.objects) == 1 else f"{len(spec.objects)} objects"
        _say(out, f"Started export job {job_id} ({started.get('name') or 'no name'}, {objects})")
        return JobRef(job_id)


MAX_IMPORT_NAME = 255  # IICS's limit on a job name
# The characters the upload's form may carry unquoted as the file name (IicsClient.upload_package
# refuses others): any other one becomes "_". IICS keeps the name for its records only.
_NOT_IN_UPLOAD_NAME = re.compile(r"[^\w .()+-]")


class ImportToStart:
    """``import PACKAGE.zip --org ORG``: an export package this command uploads to the org (IICS
    ``POST import/package``, streamed from the file) and starts (``POST import/<jobId>``), then watches."""

    logs_in = True

    def __init__(self, package: Path, org: str, name: str | None, conflict: str, relax_checksum: bool) -> None:
        self.package, self.org, self.conflict, self.relax_checksum = package, org, conflict, relax_checksum
        self.name = package.stem if name is None else name  # what the user called the release

    def check(self) -> None:
        parse_org_name(self.org)
        if not self.name.strip() or len(self.name) > MAX_IMPORT_NAME:
            raise UsageError(f"--name must be 1-{MAX_IMPORT_NAME} characters, not blank")
        if not self.package.exists():
            raise UsageError(f"package {self.package} does not exist")
        if not self.package.is_file():
            raise UsageError(f"package {self.package} is not a file")
        try:
            with self.package.open("rb") as stream:
                is_zip = zipfile.is_zipfile(stream)
        except OSError as error:
            raise UsageError(f"package {self.package} cannot be read: {error.strerror}") from None
        if not is_zip:
            raise UsageError(f"package {self.package} is not a zip file (IICS export packages are)")

    def begin(self, credentials: Credentials | None, hosts: HostPolicy, out: TextIO) -> JobRef:
        client = IicsClient(lambda: credentials, hosts=hosts)
        try:
            try:
                client.login()
            except (IicsError, ConfigError) as error:  # as start: a refused login is the command's error
                raise WatchFailed(f"IICS did not take the package: {error}") from None
            job_id = self._upload(client, out)
            self._start(client, job_id, out)
        finally:
            with contextlib.suppress(IicsError):
                client.logout()
        return JobRef(job_id, IMPORT, self.org)

    def _upload(self, client: IicsClient, out: TextIO) -> str:
        """Send the package as it is read from disk; the import job's id (NOT_STARTED until started)."""
        try:
            with self.package.open("rb") as stream:
                size = os.fstat(stream.fileno()).st_size
                filename = _NOT_IN_UPLOAD_NAME.sub("_", self.package.name)[:200]
                answer = client.upload_package(
                    stream, size, relax_checksum=self.relax_checksum, filename=filename or "package.zip"
                )
        except OSError as error:
            raise NotStarted(f"package {self.package} could not be read: {error.strerror}") from None
        except (LoginFailed, ConfigError) as error:
            raise WatchFailed(f"IICS did not take the package: {error}") from None
        except IicsUnavailable as error:  # nothing imported: at most a NOT_STARTED job, which the message says
            raise NotStarted(f"the package did not reach IICS: {error}") from None
        except IicsError as error:  # not a package, or a checksum mismatch
            raise NotStarted(f"IICS refused the package: {error}") from None
        job_id = answer["jobId"]  # the client checked it
        checksum = json.dumps(answer.get("checksumValid"))
        _say(
            out,
            f"Uploaded {self.package.name} ({size} bytes) to org {self.org}: "
            f"import job {job_id}, checksumValid {checksum}",
        )
        return job_id

    def _start(self, client: IicsClient, job_id: str, out: TextIO) -> None:
        try:
            client.start_import(job_id, self.name, self.conflict)
        except NotSent as error:  # it never went out: the job waits NOT_STARTED, nothing imported
            raise NotStarted(f"import job {job_id} was not started: {error}") from None
        except (IicsUnavailable, StartUnconfirmed) as error:  # it may have reached IICS: no blind retry
            raise WatchFailed(
                f"IICS did not confirm the start of import job {job_id} ({error}); it may have started anyway, "
                "check its status in IICS before starting it again"
            ) from None
        except (LoginFailed, ConfigError) as error:
            raise WatchFailed(f"IICS did not start import job {job_id}: {error}") from None
        except IicsError as error:
            raise NotStarted(f"IICS refused to start import job {job_id}: {error}") from None
        _say(out, f"Started import job {job_id} ({self.name}, {self.conflict})")


# --- the command ---------------------------------------------------------------------------------


def run(job: JobSource, options: WatchOptions, out: TextIO, err: TextIO) -> int:
    """Check everything, start the job if it is new, watch it to the end, keep its log; the exit code.

    Errors are one line on ``err``, never a traceback, and never carry the password."""
    return exit_code_of(lambda: _watch(job, options, out), err, "Stopped watching before the job ended")


def exit_code_of(command: Callable[[], int], err: TextIO, stopped: str) -> int:
    """``command()``'s exit code, or the code of the error it raised, which is one line on ``err``: the one
    place the commands' errors become RunAJob's codes. ``stopped`` says what a Ctrl-C left running."""
    try:
        return command()
    except (UsageError, InvalidInput, ConfigError) as error:
        print(f"error: {error}", file=err)
        return EXIT_CODES["USAGE"]
    except WatchFailed as error:
        print(f"error: {error}", file=err)
        return EXIT_CODES["ERROR"]
    except NotStarted as error:
        print(f"error: {error}", file=err)
        return EXIT_CODES["NOT_STARTED"]
    except KeyboardInterrupt:
        print(f"{stopped}; IICS goes on running it.", file=err)
        return EXIT_CODES["STILL_RUNNING"]


def _watch(job: JobSource, options: WatchOptions, out: TextIO) -> int:
    job.check()
    needs_login = options.aws == "emulated" or job.logs_in
    credentials = read_credentials(options.credentials) if needs_login else None
    hosts = laptop_hosts(credentials, options.allowed_hosts)
    aws = EmulatedAws(options, credentials) if options.aws == "emulated" else RealAws(options, job.org)
    destination = S3Destination.open(options.s3, options.region) if options.s3 else None
    if options.aws == "real" and options.credentials is not None and not job.logs_in:
        _say(out, "Note: --credentials is not used with --aws real; the deployed functions read the deployed secret.")
    ref = job.begin(credentials, hosts, out)
    with _archive_folder(options) as (root, shown):
        detail, kept = aws.watch(ref, root / ref.job_id, out)
        copied = destination.store(ref, detail, root / ref.job_id) if destination else []
    code = exit_code(detail)
    summarise(detail, kept if shown else [], copied, code, out)
    return code


@contextlib.contextmanager
def _archive_folder(options: WatchOptions) -> Iterator[tuple[Path, bool]]:
    """Where the log and status are kept, and whether that is the user's folder: ``--out`` (default
    ./archive), or with only ``--s3`` a temporary folder the copies are uploaded from."""
    if options.out is not None or not options.s3:
        yield options.out or DEFAULT_OUT, True
        return
    with tempfile.TemporaryDirectory(prefix="iics-export-monitor-") as folder:
        yield Path(folder), False


def _overrides(options: WatchOptions) -> dict[str, int]:
    """The poll-timing options given, as fields of the ``monitor`` object."""
    return {
        field: getattr(options, option)
        for option, (field, _) in WAIT_OPTIONS.items()
        if getattr(options, option) is not None
    }


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
    return Credentials.from_mapping(values, source="the IICS_* environment variables", names=CREDENTIAL_VARIABLES)


def laptop_hosts(credentials: Credentials | None, allowed_hosts: str | None) -> HostPolicy:
    """The hosts this machine's IICS client may reach: Informatica's, those ``--allowed-hosts`` adds, and
    this machine over plain http only when the user's own login URL is there (an emulator): a real
    org's login answer cannot send the session id to a local port."""
    try:
        policy = HostPolicy.parse(allowed_hosts or "")
    except ValueError as error:
        raise UsageError(f"--allowed-hosts {error}") from None
    parts = service_url_parts(credentials.login_url) if credentials else None
    emulator = parts is not None and parts.scheme == "http" and is_loopback(parts.hostname)
    return HostPolicy(policy.allowed, loopback_http=emulator)


# --- emulated AWS ------------------------------------------------------------------------------


class EmulatedAws:
    """``--aws emulated``: template.yaml deployed into moto in this process, the credentials its secret."""

    def __init__(self, options: WatchOptions, credentials: Credentials) -> None:
        self.credentials = credentials
        self.settings = LAPTOP_SETTINGS.configured(_overrides(options))  # its own stack: Parameters
        self.allowed_hosts = options.allowed_hosts

    def watch(self, job: JobRef, folder: Path, out: TextIO) -> tuple[dict, list[Path]]:
        credentials, settings, job_id = self.credentials, self.settings, job.job_id
        parameters = {parameter: settings.to_dict()[field] for field, parameter in WAIT_OPTIONS.values()}
        if self.allowed_hosts:
            parameters[ALLOWED_HOSTS_PARAMETER] = self.allowed_hosts
        _say(
            out,
            f"Deploying template.yaml into emulated AWS (moto); IICS {credentials.login_url} as {credentials.username}"
            + (f", the login of org {job.org}" if job.org is not None else ""),
        )
        # A named org's login is that org's own secret (IicsOrgSecretArns), as in a deployed stack with
        # several orgs; the stack's default secret is then left out, so nothing can watch with it instead.
        login = {"username": credentials.username, "password": credentials.password, "loginUrl": credentials.login_url}
        with LocalStack(parameters, orgs={job.org: login} if job.org is not None else None) as stack:
            if job.org is None:
                stack.put_iics_secret(credentials.username, credentials.password, credentials.login_url)
            stack.on_invocation(Progress(out, labels={job_id: job_id}))
            outcomes = stack.capture_events()
            stack.submit(*reversed(job.announcement()))
            executions = stack.executions()
            if len(executions) != 1:
                raise WatchFailed(f"the trigger event started {len(executions)} executions, expected 1")
            arn = executions[0]["executionArn"]
            _say(out, f"Watching {job}: execution {arn}")
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
            # The package too: this stack's bucket, and what it archived, are gone when the command ends.
            return detail, keep_archive(stack.client("s3"), stack.bucket, detail, folder, with_package=True)


# --- real AWS ----------------------------------------------------------------------------------


class RealAws:
    """``--aws real``: an execution of the deployed stack, followed through its history."""

    def __init__(self, options: WatchOptions, org: str | None = None) -> None:
        try:
            session = boto3.Session(region_name=options.region)
            cloudformation, self.sfn, self.s3 = (
                session.client(name) for name in ("cloudformation", "stepfunctions", "s3")
            )
        except BotoCoreError as error:  # no region configured, unknown profile
            raise UsageError(f"AWS: {error}") from None
        self.stack = find_stack(cloudformation, options.stack_name)
        if org is not None and org not in self.stack.orgs:  # before anything is uploaded or started
            configured = ", ".join(sorted(self.stack.orgs)) or "none"
            raise UsageError(
                f"org {org} is not configured in stack {options.stack_name} (IicsOrgSecretArns: {configured}); "
                "docs/orgs.md"
            )
        self.overrides = _overrides(options)
        self._given = [option for option in WAIT_OPTIONS if getattr(options, option) is not None]
        self.stack.settings.overridden_by(self.overrides)  # refuse a bad combination before starting anything
        self.refresh = options.refresh

    def watch(self, job: JobRef, folder: Path, out: TextIO) -> tuple[dict, list[Path]]:
        job_id, request = job.job_id, job.request()
        if self.overrides:
            request["monitor"] = self.overrides
        # The name the stack's own trigger gives the job's execution, so a job it already watches
        # gets no second archive, outcome or alert: that execution is followed instead.
        name = parse_request(request, self.stack.settings, self.stack.orgs).execution_name
        try:
            arn = self.sfn.start_execution(
                stateMachineArn=self.stack.state_machine_arn, name=name, input=json.dumps(request)
            )["executionArn"]
        except self.sfn.exceptions.ExecutionAlreadyExists:
            arn = execution_arn(self.stack.state_machine_arn, name)
            ignored = ", ".join(f"--{option.replace('_', '-')}" for option in self._given)
            _say(
                out,
                f"{_capital(str(job))} already has its monitor: following execution {arn} instead of starting another"
                + (f" ({ignored} does not apply: it runs with its own settings)" if ignored else ""),
            )
        except (BotoCoreError, ClientError) as error:
            raise UsageError(f"cannot start {self.stack.state_machine_arn}: {error}") from None
        else:
            _say(out, f"Watching {job}: execution {arn}")
        try:
            detail = follow(self.sfn, arn, job_id, Progress(out, labels={job_id: job_id}), out, self.refresh)
        except KeyboardInterrupt:
            _say(out, f"The execution goes on in AWS: {arn}")
            raise
        except (BotoCoreError, ClientError) as error:
            raise WatchFailed(f"lost track of {arn}: {error}") from None
        return detail, keep_archive(self.s3, self.stack.bucket, detail, folder)


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN of the state machine's execution called ``name`` (Step Functions' own ARN layout)."""
    prefix, _, machine = state_machine_arn.rpartition(":stateMachine:")
    return f"{prefix}:execution:{machine}:{name}"


def find_stack(cloudformation: Any, name: str) -> WatchedStack:
    """The state machine, bucket and poll Parameters of a deployed iics-export-monitor stack."""
    try:
        stack = read_stack(cloudformation, name, "StateMachineArn", "ArchiveBucketName")
    except StackUnusable as error:
        raise UsageError(str(error)) from None
    try:
        settings = MonitorSettings(*(int(stack.parameters[parameter]) for _, parameter in WAIT_OPTIONS.values()))
        # The stack's own reading of IicsOrgSecretArns: an org is its secret name's last segment.
        orgs = frozenset(org_secrets({"IICS_ORGS": _listed(stack.parameters.get(ORGS_PARAMETER, ""))}))
        return WatchedStack(stack.outputs["StateMachineArn"], stack.outputs["ArchiveBucketName"], settings, orgs)
    except ConfigError as error:
        raise UsageError(f"stack {name}: {ORGS_PARAMETER}: {error}") from None
    except (KeyError, ValueError) as error:
        raise UsageError(f"stack {name} does not look like iics-export-monitor's: bad or missing {error}") from None


def _listed(value: str) -> str:
    """A CommaDelimitedList Parameter as CloudFormation reports it, "a,b". moto reports one given as
    "a,b" as Python's ``"['a', 'b']"``; that is read back into "a,b" so a stack in moto reads the same."""
    if value.startswith("[") and value.endswith("]"):
        with contextlib.suppress(ValueError, SyntaxError):
            listed = ast.literal_eval(value)
            if isinstance(listed, list) and all(isinstance(item, str) for item in listed):
                return ",".join(listed)
    return value


def follow(sfn: Any, arn: str, job_id: str, progress: Progress, out: TextIO, refresh: float) -> dict:
    """Poll the execution until it ends; replay its Lambda results through ``progress``; return the outcome."""
    detail = follow_outcomes(sfn, arn, job_id, progress, out, refresh).get(OUTCOME_STATE)
    if detail is None:
        raise WatchFailed(f"execution {arn} ended without an outcome")
    return detail


def follow_outcomes(sfn: Any, arn: str, job_id: str, progress: Progress, out: TextIO, refresh: float) -> dict:
    """Poll the execution until it ends; replay its Lambda results through ``progress``; return each
    outcome it put on the bus, by the name of the state that put it (a promotion has several)."""
    status, last_id, outcomes = None, 0, {}
    while True:
        described = sfn.describe_execution(executionArn=arn)
        for event in history_after(sfn, arn, last_id):
            last_id = event["id"]
            outcomes.update(_outcome_in(event))
            invocation = _as_invocation(event, job_id)
            if invocation is not None:
                progress(invocation)
        if described["status"] != status:
            status = described["status"]
            _say(out, f"{time.time() - progress.started:6.1f}s  execution {status}")
        if status in EXECUTION_ENDED:
            return outcomes
        time.sleep(refresh)


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


def _outcome_in(event: Mapping[str, Any]) -> dict[str, dict]:
    """``{state: detail}`` when the event enters a state that puts an outcome on the bus (the ASL's
    Emit* states: a job's outcome in ``$.outcome``, a promotion's in ``$.promotionOutcome``)."""
    if event["type"] != "TaskStateEntered" or event["stateEnteredEventDetails"]["name"] not in OUTCOME_INPUTS:
        return {}
    state = event["stateEnteredEventDetails"]["name"]
    detail = _json(event["stateEnteredEventDetails"].get("input")).get(OUTCOME_INPUTS[state], {}).get("detail")
    return {state: detail} if isinstance(detail, dict) else {}


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


# --- where the log goes --------------------------------------------------------------------------


def keep_archive(
    s3: Any, bucket: str, detail: Mapping[str, Any], folder: Path, with_package: bool = False
) -> list[Path]:
    """Copy the archived export.log (an import's import.log), and status.json beside it, into ``folder``;
    and ``with_package``, the archived export package as package.zip.

    The local log and package are checked against the outcome's sha256. Without a log (``logError``)
    nothing is copied: status.json is found through the log's key.
    """
    log = detail.get("log")
    if not log:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    log_path = _download_checked(s3, bucket, log, folder / log_name(detail))
    status_key = log["key"].rsplit("/", 1)[0] + "/status.json"
    status_path = _download(s3, bucket, status_key, folder / "status.json")
    package = detail.get("package") if with_package else None
    package_path = _download_checked(s3, bucket, package, folder / "package.zip") if package else None
    return [path for path in (log_path, status_path, package_path) if path is not None]


def log_name(detail: Mapping[str, Any]) -> str:
    """The archive's name for the job's log (``archive.LogArchiver``): the outcome says the kind."""
    return "import.log" if detail.get("kind") == IMPORT else "export.log"


def _download_checked(s3: Any, bucket: str, archived: Mapping[str, Any], path: Path) -> Path:
    """An archived object the outcome names (``{"key", "sha256"}``), downloaded and checked."""
    if _download(s3, bucket, archived["key"], path) is None:
        raise WatchFailed(f"s3://{bucket}/{archived['key']} is gone")
    if _sha256(path) != archived["sha256"]:
        raise WatchFailed(f"{path} does not match the archived sha256; s3://{bucket}/{archived['key']} changed")
    return path


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


class S3Destination:
    """``--s3 s3://BUCKET/PREFIX/``: the kept log and status, copied with your AWS credentials in the
    deployed archive's layout and metadata (``PREFIX/[org=<org>/]YYYY/MM/DD/<jobId>/export.log`` or
    ``import.log``, ``LogArchiver``)."""

    def __init__(self, archiver: LogArchiver) -> None:
        self._archiver = archiver

    @classmethod
    def open(cls, url: str, region: str | None) -> S3Destination:
        """Check the URL and resolve the credentials now: emulated AWS later puts fake ones in the environment."""
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not url.startswith("s3://") or not BUCKET_NAME.fullmatch(bucket):
            raise UsageError(f"--s3 must be s3://BUCKET/ or s3://BUCKET/PREFIX/ with a valid bucket name, got {url!r}")
        segments = prefix.split("/")[:-1]
        if not ARCHIVE_PREFIX.fullmatch(prefix) or {".", ".."} & set(segments) or len(prefix) > MAX_S3_PREFIX:
            raise UsageError(
                f"--s3 prefix must be empty or end with '/', use letters, digits and !_.'()- in each part "
                f"(not . or ..) and be at most {MAX_S3_PREFIX} characters, got {prefix!r}"
            )
        try:
            session = boto3.Session(region_name=region)
            credentials = session.get_credentials()
            client = session.client("s3")
        except BotoCoreError as error:
            raise UsageError(f"AWS: {error}") from None
        if credentials is None:
            raise UsageError("--s3 needs AWS credentials (AWS_PROFILE, environment, SSO or ~/.aws/credentials)")
        return cls(LogArchiver(bucket, prefix, client))

    def store(self, job: JobRef, detail: Mapping[str, Any], folder: Path) -> list[str]:
        """Upload what ``keep_archive`` kept in ``folder``; the S3 URLs written."""
        if not detail.get("log"):
            return []
        now, bucket, job_id, org = datetime.now(UTC), self._archiver.bucket, job.job_id, job.org
        try:
            with (folder / log_name(detail)).open("rb") as stream:
                keys = [self._archiver.put_log(job_id, detail["state"], stream, now, kind=job.kind, org=org).key]
            status = folder / "status.json"
            if status.exists():
                keys.append(self._archiver.put_status(job_id, json.loads(status.read_bytes()), now, org))
            if (folder / "package.zip").exists():
                with (folder / "package.zip").open("rb") as stream:
                    keys.append(self._archiver.put_package(job_id, stream, now, org=org).key)
        except MonitorError as error:
            raise WatchFailed(f"--s3 s3://{bucket}/: {error}") from None
        return [f"s3://{bucket}/{key}" for key in keys]


def summarise(detail: Mapping[str, Any], kept: list[Path], copied: list[str], code: int, out: TextIO) -> None:
    objects = detail.get("objects") or {}
    lines = [
        "",
        f"{detail.get('jobId')} ({detail.get('jobName') or 'no name'}): {detail.get('state')} "
        f"after {detail.get('polls')} poll{'' if detail.get('polls') == 1 else 's'}, exit code {code}",
        *([f"  IICS said {detail['iicsState']}: {detail.get('message') or '-'}"] if detail.get("iicsState") else []),
        # an ERROR outcome has no final status: its object counts are unknown, not zero
        *(
            [
                f"  objects: {objects.get('total', 0)} total, {objects.get('successful', 0)} successful, "
                f"{objects.get('failed', 0)} failed"
            ]
            if detail.get("state") != "ERROR"
            else []
        ),
        *(
            f"  failed: {o.get('path')}/{o.get('name')} ({o.get('type')}): {o.get('message')}"
            for o in detail.get("failedObjects") or []
        ),
        *(
            f"  {field}: {detail[field]}"
            for field in ("warning", "reason", "errorType", "logError", "packageError")
            if detail.get(field)
        ),
    ]
    lines += _log_errors(detail)
    lines += [f"  archived: s3://{detail[o]['bucket']}/{detail[o]['key']}" for o in ("log", "package") if detail.get(o)]
    lines += [f"  kept: {path}" for path in kept]
    lines += [f"  copied: {url}" for url in copied]
    _say(out, "\n".join(lines))


def _log_errors(detail: Mapping[str, Any]) -> list[str]:
    """A failed import's first error lines, from the archived log's summary: what people read first
    (an import fails on what the target org lacks, which only the log names)."""
    if detail.get("kind") != IMPORT or detail.get("state") != "FAILED":
        return []
    errors = ((detail.get("logSummary") or {}).get("errors")) or {}
    first = errors.get("first") or []
    if not first:
        return []
    return [
        f"  log errors ({errors.get('count', len(first))}):",
        *(f"    {e.get('code')} {e.get('message')}" for e in first),
    ]


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]  # not str.capitalize: a job id keeps its case


def _say(out: TextIO, line: str) -> None:
    print(line, file=out, flush=True)


if __name__ == "__main__":  # run as a script, this is its own module: the CLI imports the package's watch
    from iics_monitor_local.cli import run_command, watch_command

    sys.exit(run_command(watch_command, sys.argv[1:], "python -m iics_monitor_local.watch"))

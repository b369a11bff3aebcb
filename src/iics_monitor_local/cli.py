"""``iics-export-monitor``: start, watch and announce IICS export jobs from a terminal (click).

    iics-export-monitor demo | emulator | watch JOB_ID | start --object ID ... | submit JOB_ID
    iics-export-monitor import PACKAGE.zip --org ORG
    iics-export-monitor promote --from ORG --to ORG --object ID ...

Commands parse their options here and call one piece of logic: ``watch.run`` (watch, start, import),
``promote.run``, ``demo.run``, the emulator, or ``submit`` below. The local stack (moto) loads only when a command
runs it, so ``--help``, ``submit`` and ``emulator`` answer at once and work without the dev extra.
docs/cli.md is the user's guide.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import logging
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn, TextIO

import click

from iics_monitor.client import CONFLICT_RESOLUTIONS
from iics_monitor.errors import InvalidInput
from iics_monitor.validation import EXPORT, KINDS, MonitorSettings, parse_request
from iics_monitor_local.runajob import EXIT_CODES
from iics_monitor_local.samconfig import LAPTOP_SETTINGS, STACK_NAME

EXIT_CODES_HELP = """\b
Exit codes (Informatica RunAJob's; every outcome's in docs/cli.md): 0 SUCCESSFUL, 1 SUCCESSFUL with
a warning or failed objects, 3 FAILED, 4 TIMED_OUT, 5 ERROR
  5 also when the watch itself failed (no outcome, AWS unreachable, log mismatch)
  7 start only: IICS refused to start the export
  7 import only: the import could not start (IICS refused the package or the start)
  2 bad usage or configuration: nothing was started
  6 stopped watching (Ctrl-C) before the job ended; the job goes on in IICS"""

ENVIRONMENT_HELP = """\b
Environment:
  IICS_USERNAME, IICS_PASSWORD, IICS_LOGIN_URL  the IICS login, unless --credentials FILE
                                                (not used by watch --aws real); http only
                                                to an emulator on this machine
  IICS_ALLOWED_HOSTS                            --allowed-hosts
  AWS_PROFILE, AWS_REGION, ...                  AWS credentials and region, boto3's usual
                                                chain (--aws real, --s3)"""

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT, epilog="Guide: docs/cli.md. Each command's --help lists its options.")
@click.version_option(package_name="iics-export-monitor")
def cli() -> None:
    """Start, watch and announce Informatica IICS export jobs from a terminal.

    watch and start follow one export job through the same state machine and Lambda handlers that
    run in AWS, either in an AWS account emulated on this machine (the default: no AWS account
    needed) or through your deployed stack (--aws real), and keep the job's log. submit hands a job
    to a deployed stack, which watches it on its own. emulator and demo need neither IICS nor AWS.

    \b
    Examples:
      iics-export-monitor demo
      iics-export-monitor watch 7evG9CokA1whk8ehF3opKM --out ./archive
      iics-export-monitor start --object 9Sks3TsNfjHl3iRqWH8fxH --name nightly
      iics-export-monitor import release-42.zip --org prod --credentials ~/.iics/prod.json
      iics-export-monitor submit 7evG9CokA1whk8ehF3opKM --stack-name iics-export-monitor
      iics-export-monitor emulator --port 8080

    \b
    Environment:
      IICS_USERNAME, IICS_PASSWORD, IICS_LOGIN_URL  the IICS login of watch, start and import
      AWS_PROFILE, AWS_REGION, ...                   AWS, boto3's usual chain (--aws real, --s3, submit)

    \b
    Exit codes of watch and start (Informatica RunAJob's): 0 SUCCESSFUL, 1 SUCCESSFUL with a
    warning, 3 FAILED, 4 TIMED_OUT, 5 ERROR, 2 bad usage (nothing started), 6 stopped watching,
    7 IICS refused to start the export or import. Every outcome's code: docs/cli.md.
    """


# --- watch and start ---------------------------------------------------------------------------


class Seconds(click.ParamType):
    """A whole number of seconds within the template Parameter's range for ``field``: emulated, the
    options are the laptop stack's own Parameters. With ``--aws real`` they are the request's
    ``monitor`` values, which the stack's own check (its floors included) refuses before anything starts."""

    name = "seconds"

    def __init__(self, field: str) -> None:
        _, self.low, self.high = MonitorSettings.FIELDS[field]

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        if not str(value).isdigit() or not self.low <= int(value) <= self.high:
            self.fail(f"must be a whole number from {self.low} to {self.high}, got {value!r}", param, ctx)
        return int(value)


_WATCH_OPTIONS = [
    click.option(
        "--aws",
        type=click.Choice(["emulated", "real"]),
        default="emulated",
        show_default=True,
        help="emulated: template.yaml deployed into moto in this process, no AWS account needed; "
        "real: your deployed stack runs the watch",
    ),
    click.option(
        "--credentials",
        metavar="FILE",
        type=click.Path(dir_okay=False, path_type=Path),
        help='IICS login as JSON {"username", "password", "loginUrl"}, the deployed secret\'s format '
        "(default: IICS_USERNAME, IICS_PASSWORD, IICS_LOGIN_URL). Not used by watch --aws real",
    ),
    click.option(
        "--out",
        metavar="DIR",
        type=click.Path(file_okay=False, path_type=Path),
        help="keep the log and status as DIR/JOB_ID/export.log and status.json, and with emulated AWS "
        "the export package as package.zip (default: ./archive, or nowhere when only --s3 is given)",
    ),
    click.option(
        "--s3",
        metavar="s3://BUCKET/PREFIX/",
        help="copy the log and status to S3 with your AWS credentials, in the stack's archive layout "
        "PREFIX/YYYY/MM/DD/JOB_ID/export.log (needs s3:PutObject there)",
    ),
    click.option(
        "--initial-wait",
        type=Seconds("initialWaitSeconds"),
        help=f"wait before the second poll (emulated default {LAPTOP_SETTINGS.initial_wait_seconds}, 0-3600; "
        "real: the stack's, 1-3600)",
    ),
    click.option(
        "--max-wait",
        type=Seconds("maxWaitSeconds"),
        help=f"longest wait between two polls (emulated default {LAPTOP_SETTINGS.max_wait_seconds}, 0-3600; "
        "real: the stack's, 1-3600)",
    ),
    click.option(
        "--timeout",
        type=Seconds("timeoutSeconds"),
        help=f"the job ends TIMED_OUT after this (emulated default {LAPTOP_SETTINGS.timeout_seconds}; "
        "real: the stack's)",
    ),
    click.option(
        "--allowed-hosts",
        metavar="HOSTS",
        envvar="IICS_ALLOWED_HOSTS",
        help="a pre-release pod's IICS hosts besides *.informaticacloud.com, as the IicsAllowedHosts Parameter "
        "(pod.example.net,*.pre.example.net): for the emulated stack and this machine's export start",
    ),
    click.option(
        "--region", metavar="REGION", help="AWS region for --aws real and --s3 (default: your AWS configuration's)"
    ),
    click.option(
        "--stack-name",
        metavar="NAME",
        default=STACK_NAME,
        show_default=True,
        help="the deployed stack (--aws real)",
    ),
    click.option(
        "--refresh",
        type=click.FloatRange(0, 3600),
        default=10.0,
        show_default=True,
        metavar="SECONDS",
        help="--aws real: how often to read the execution's status and history",
    ),
]


def watch_options(command: Callable, leave_out: Sequence[str] = ()) -> Callable:
    """The options watch and start share: where AWS runs, the IICS login, where the log goes, poll timing;
    those named in ``leave_out`` (by option name) left out."""
    for option in reversed(_WATCH_OPTIONS):
        if _option_name(option) not in leave_out:
            command = option(command)
    return command


def _option_name(option: Callable) -> str:
    """The long name of a click.option decorator (its parameter's first declaration)."""
    return option(lambda: None).__click_params__[0].opts[0]


def object_option(help_text: str) -> Callable:
    """``--object ID``, repeatable and required: what start exports and promote promotes."""
    return click.option("--object", "object_ids", metavar="ID", multiple=True, required=True, help=help_text)


INCLUDE_DEPENDENCIES = click.option(
    "--include-dependencies/--no-include-dependencies",
    default=None,
    help="export each object's dependencies too, or not (default: not sent, IICS decides)",
)


def conflict_option(target: str) -> Callable:
    """``--conflict``: what an import does with objects that already exist in ``target``."""
    return click.option(
        "--conflict",
        type=click.Choice(CONFLICT_RESOLUTIONS),
        default=CONFLICT_RESOLUTIONS[0],  # OVERWRITE: a promotion makes the target run what was exported
        show_default=True,
        help=f"objects that already exist in {target}: replaced by the package's (OVERWRITE), or kept (REUSE)",
    )


ORG_HELP = (
    "the org the job runs in, as the stack names it (its secret's last segment, docs/orgs.md); the "
    "IICS login given (--credentials or IICS_*) must be that org's. Emulated AWS keeps it as the org's "
    "secret; --aws real needs the org in the stack's IicsOrgSecretArns"
)


@cli.command("watch", epilog=EXIT_CODES_HELP + "\n\n" + ENVIRONMENT_HELP)
@click.argument("job_id")
@click.option(
    "--kind",
    type=click.Choice(KINDS),
    default=EXPORT,
    show_default=True,
    help="an export job, or an import job (its log kept as import.log)",
)
@click.option("--org", metavar="ORG", help=ORG_HELP + " (default: the stack's own IICS secret)")
@watch_options
@click.pass_context
def watch_command(ctx: click.Context, job_id: str, kind: str, org: str | None, **options: Any) -> None:
    """Follow one export (or import) job to its end, a line per poll; keep its log.

    JOB_ID is the IICS export job id (1-64 letters and digits); with --kind import, an import
    job's, whose log is kept as import.log. By default template.yaml is
    deployed into an AWS account emulated in this process; your IICS login becomes its secret,
    the job is announced with the upstream EventBridge event, and the real state machine and
    handlers poll IICS from this machine. With --aws real your deployed stack runs an execution
    named after the job, and this command follows it (the one the stack already has, if it watches
    the job already). Either way the archived export.log and status.json land in
    --out (checked against the outcome's sha256) and/or --s3. With emulated AWS the export
    package the stack archived (a SUCCESSFUL job's, ArchivePackage) is kept there too, as
    package.zip; with --aws real it stays in your stack's bucket, and the summary names it.

    \b
    Examples:
      iics-export-monitor watch 7evG9CokA1whk8ehF3opKM
      iics-export-monitor watch 7evG9CokA1whk8ehF3opKM --credentials ~/.iics/dev.json --out logs
      iics-export-monitor watch 7evG9CokA1whk8ehF3opKM --aws real --region eu-west-1
      iics-export-monitor watch 7evG9CokA1whk8ehF3opKM --s3 s3://my-audit-bucket/iics/
      iics-export-monitor watch 3pQ8ZVhH0x2kPzvn1mIaQe --kind import --org prod --credentials ~/.iics/prod.json
    """
    watch = _load("watch")
    job = watch.GivenJob(job_id, kind, org)
    ctx.exit(watch.run(job, watch.WatchOptions(**options), sys.stdout, sys.stderr))


@cli.command("start", epilog=EXIT_CODES_HELP + "\n\n" + ENVIRONMENT_HELP)
@object_option("an IICS object id (asset, project or folder) to export; repeat for more, at most 1000")
@click.option("--name", help="the export job's name (default: IICS's, job-<epoch millis>)")
@INCLUDE_DEPENDENCIES
@watch_options
@click.pass_context
def start_command(
    ctx: click.Context, object_ids: tuple[str, ...], name: str | None, include_dependencies: bool | None, **options: Any
) -> None:
    """Start an IICS export, print its job id, then watch it.

    The objects and name are checked first (at most 1000 objects, ids of 1-64 letters and
    digits); bad input exits 2 and starts nothing. The export is started from this machine with
    your IICS login (POST /public/core/v3/export, in either --aws mode), then followed to its end
    and its log kept, as watch does.

    \b
    Examples:
      iics-export-monitor start --object 9Sks3TsNfjHl3iRqWH8fxH --name nightly
      iics-export-monitor start --object 9Sks3TsNfjHl3iRqWH8fxH --object 3xjD2SNmFNWjSzH7bQ2Xua \\
          --include-dependencies --aws real --s3 s3://my-audit-bucket/iics/
    """
    watch = _load("watch")
    job = watch.ExportToStart(object_ids, name, include_dependencies)
    ctx.exit(watch.run(job, watch.WatchOptions(**options), sys.stdout, sys.stderr))


@cli.command("import", epilog=EXIT_CODES_HELP + "\n\n" + ENVIRONMENT_HELP)
@click.argument("package", metavar="PACKAGE.zip", type=click.Path(path_type=Path))
@click.option("--org", metavar="ORG", required=True, help=ORG_HELP)
@click.option("--name", help="the import job's name (default: the package file's name without .zip)")
@conflict_option("the org")
@click.option(
    "--relax-checksum",
    is_flag=True,
    help="accept a package whose entries were changed after export (IICS's relaxChecksum=true)",
)
@watch_options
@click.pass_context
def import_command(
    ctx: click.Context,
    package: Path,
    org: str,
    name: str | None,
    conflict: str,
    relax_checksum: bool,
    **options: Any,
) -> None:
    """Import an export package into an org: upload it, start the import, then watch it.

    PACKAGE.zip is an IICS export package (as IICS or `watch` kept it). It is checked first (a
    readable zip file), and so is ORG's name; bad input exits 2 and sends nothing. Then, with the
    org's IICS login, the package is uploaded from this machine as it is read from disk (POST
    /public/core/v3/import/package; IICS checks it against its exportPackage.chksum), the import
    started (POST .../import/<jobId>), and the job followed to its end as watch --kind import --org
    ORG does: its import.log kept, its outcome IICS Import Job State Change. A failed import
    prints the first error lines of its log. A package IICS refuses exits 7, nothing watched.

    \b
    Examples:
      iics-export-monitor import release-42.zip --org prod --credentials ~/.iics/prod.json
      iics-export-monitor import release-42.zip --org prod --conflict REUSE --aws real --region eu-west-1
    """
    watch = _load("watch")
    job = watch.ImportToStart(package, org, name, conflict, relax_checksum)
    ctx.exit(watch.run(job, watch.WatchOptions(**options), sys.stdout, sys.stderr))


PROMOTE_EXIT_CODES_HELP = """\b
Exit codes (Informatica RunAJob's; docs/cli.md):
  0 SUCCESSFUL: exported and imported
  1 SUCCESSFUL with a warning, or objects that failed to import
  3 FAILED: the export or import failed, or the package was not imported (which step: its outcome)
  5 ERROR: a job or the promotion itself met an error (its outcome says which step); or the command
    lost track of it
  7 the promotion could not start: the stack refused the request, or IICS refused to start the export
  2 bad usage or configuration (an unknown org, a missing login, a bad object id): nothing was sent
  6 stopped watching (Ctrl-C) before the promotion ended; it goes on in the stack and IICS"""

PROMOTE_ENVIRONMENT_HELP = """\b
Environment:
  IICS_USERNAME, IICS_PASSWORD, IICS_LOGIN_URL  the source org's login, unless --from-credentials FILE
                                                (emulated AWS only; --aws real uses the stack's secrets)
  AWS_PROFILE, AWS_REGION, ...                  AWS credentials and region (--aws real)"""


@cli.command("promote", epilog=PROMOTE_EXIT_CODES_HELP + "\n\n" + PROMOTE_ENVIRONMENT_HELP)
@click.option(
    "--from",
    "from_org",
    metavar="ORG",
    help="the org to export from (default: the stack's own IICS secret's org)",
)
@click.option("--to", "to_org", metavar="ORG", required=True, help="the org to import into")
@object_option("an IICS object id (asset, project or folder) to export from --from; repeat for more, at most 1000")
@click.option("--name", help="the export's and the import's job name (default: IICS's)")
@conflict_option("--to")
@click.option(
    "--include-object",
    "include_objects",
    metavar="ID",
    multiple=True,
    help="import only these objects of the package (IICS's includeObjects); repeat for more (default: all)",
)
@INCLUDE_DEPENDENCIES
@click.option(
    "--allow-unverified",
    is_flag=True,
    help="import the package even if it was not verified against its manifest (exportPackage.chksum)",
)
@click.option(
    "--from-credentials",
    "credentials",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help='the login of --from\'s org as JSON {"username", "password", "loginUrl"} (default: IICS_USERNAME, '
    "IICS_PASSWORD, IICS_LOGIN_URL). Emulated AWS only",
)
@click.option(
    "--to-credentials",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="the login of --to's org, the same JSON. Needed with emulated AWS; --aws real uses the stack's secrets",
)
@click.option(
    "--out",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="keep export.log, import.log, promotion.json and, with emulated AWS, package.zip in "
    "DIR/<promotionId>/ (default: ./archive)",
)
@functools.partial(watch_options, leave_out=("--credentials", "--s3", "--out"))
@click.pass_context
def promote_command(
    ctx: click.Context,
    from_org: str | None,
    to_org: str,
    object_ids: tuple[str, ...],
    name: str | None,
    conflict: str,
    include_objects: tuple[str, ...],
    include_dependencies: bool | None,
    allow_unverified: bool,
    to_credentials: Path | None,
    **options: Any,
) -> None:
    """Promote objects from one org to another: export, upload the package, import; watch each step.

    Announces a promotion request to the stack (the IICS Export Job Submitted event with
    {"promote": ...}, docs/promotion.md), which exports the objects in --from, archives the export's
    log and package, uploads the package to --to, starts the import and watches it, then announces
    one IICS Promotion State Change. This command shows each step as it happens and keeps
    export.log, import.log, the promotion outcome (promotion.json) and, with emulated AWS, the
    package (package.zip) in --out DIR/<promotionId>/. A failed import prints the first error lines
    of its log. The request is checked first, as the stack checks it; bad input exits 2, nothing sent.

    With emulated AWS (the default) template.yaml is deployed into moto with each org's login as the
    org's secret: --from-credentials (or IICS_*) and --to-credentials. With --aws real the event is
    put on the deployed stack's bus (events:PutEvents) and the execution it starts followed; both
    orgs must be in the stack's IicsOrgSecretArns (docs/orgs.md).

    \b
    Examples:
      iics-export-monitor promote --from dev --to prod --object 9Sks3TsNfjHl3iRqWH8fxH --name release-42 \\
          --from-credentials ~/.iics/dev.json --to-credentials ~/.iics/prod.json
      iics-export-monitor promote --from dev --to prod --object 9Sks3TsNfjHl3iRqWH8fxH --conflict REUSE \\
          --aws real --region eu-west-1 --out ./releases
    """
    promote = _load("promote")
    promotion = promote.Promotion(
        from_org, to_org, object_ids, name, conflict, include_objects, allow_unverified, include_dependencies
    )
    watch_options = _load("watch").WatchOptions(s3=None, **options)
    ctx.exit(promote.run(promotion, watch_options, to_credentials, sys.stdout, sys.stderr))


def _load(name: str) -> ModuleType:
    """``iics_monitor_local.<name>``, a module that loads the local stack and moto: only the commands
    that run them import it. moto's notes about template resources it skips are silenced."""
    from iics_monitor_local.stack import quiet_moto

    module = importlib.import_module(f"iics_monitor_local.{name}")
    quiet_moto()
    return module


# --- submit ---------------------------------------------------------------------------------------


@cli.command("submit")
@click.argument("job_id")
@click.option("--name", help="the job's name, carried into the outcome event and alerts")
@click.option("--event-bus", metavar="NAME", help="the bus to send to (default: the stack's EventBusName output)")
@click.option(
    "--stack-name",
    metavar="NAME",
    help=f"the deployed stack whose bus to use (default: {STACK_NAME}); not with --event-bus",
)
@click.option("--region", metavar="REGION", help="AWS region (default: your AWS configuration's)")
@click.pass_context
def submit_command(
    ctx: click.Context, job_id: str, name: str | None, event_bus: str | None, stack_name: str | None, region: str | None
) -> None:
    """Hand a job to a deployed stack, which watches it on its own.

    Sends the upstream trigger event (source iics.export, detail-type "IICS Export Job
    Submitted", detail {"jobId", "name"?}) to the stack's EventBridge bus with PutEvents. The
    stack's rule starts one monitor execution per job; its outcome event follows on the same bus
    and your rules (alerts, the next pipeline step) act on it. The job id and name are checked
    as the deployed function checks them before anything is sent. Needs events:PutEvents, and
    cloudformation:DescribeStacks unless --event-bus is given.

    \b
    Examples:
      iics-export-monitor submit 7evG9CokA1whk8ehF3opKM --name nightly
      iics-export-monitor submit 7evG9CokA1whk8ehF3opKM --event-bus iics-exports --region eu-west-1

    \b
    Exit codes: 0 sent; 2 bad job id or name, or no such stack or bus setting (nothing sent);
    5 AWS refused the event (an error, or FailedEntryCount above 0).

    \b
    Environment: AWS_PROFILE, AWS_REGION, ... (boto3's usual chain). No IICS login is needed.
    """
    import boto3  # here, not at the top: --help and the emulator start without loading the SDK
    from botocore.exceptions import BotoCoreError

    from iics_monitor_local.deployed import EventRefused, StackUnusable, put_trigger, read_stack

    if event_bus is not None and stack_name is not None:
        raise click.UsageError("give --event-bus or --stack-name, not both")
    detail: dict[str, Any] = {"jobId": job_id} | ({"name": name} if name is not None else {})
    try:
        # Checked as the deployed StartMonitor function checks it. The defaults apply to ``monitor``
        # overrides, which submit never sends, so any valid settings do.
        parse_request(detail, LAPTOP_SETTINGS)
        session = boto3.Session(region_name=region)
        cloudformation = session.client("cloudformation")
        bus = event_bus or read_stack(cloudformation, stack_name or STACK_NAME, "EventBusName").outputs["EventBusName"]
        event_id = put_trigger(session.client("events"), bus, detail)
    except (InvalidInput, BotoCoreError, StackUnusable) as error:  # a bad id or name; no region, credentials, stack
        _fail(ctx, f"error: {error}", EXIT_CODES["USAGE"])
    except EventRefused as error:
        _fail(ctx, f"error: {error}", EXIT_CODES["ERROR"])
    click.echo(f"Submitted job {job_id} to event bus {bus}: event {event_id}")
    click.echo("The stack's rule starts its monitor; the outcome event follows on the same bus.")


@cli.command("redeliver")
@click.option(
    "--stack-name", metavar="NAME", help=f"the deployed stack whose kept outcomes to send (default: {STACK_NAME})"
)
@click.option("--region", metavar="REGION", help="AWS region (default: your AWS configuration's)")
@click.pass_context
def redeliver_command(ctx: click.Context, stack_name: str | None, region: str | None) -> None:
    """Send the outcome events EventBridge refused, each once, to the stack's bus.

    When PutEvents keeps failing, the state machine keeps each outcome in the stack's
    undelivered-outcome queue (output UndeliveredOutcomeQueueUrl) and UndeliveredOutcomeAlarm
    fires. Once EventBridge accepts events again, this puts each kept outcome on the bus exactly as
    it would have gone out, and deletes it from the queue only after EventBridge took it. One that
    EventBridge still refuses stays in the queue for the next run. Needs
    cloudformation:DescribeStacks, sqs:ReceiveMessage, sqs:DeleteMessage and events:PutEvents.

    \b
    Exit codes: 0 every kept outcome sent (or none kept); 2 no such stack (nothing sent);
    5 some outcomes are still kept (EventBridge refused them, or a message was not an outcome).
    """
    import boto3
    from botocore.exceptions import BotoCoreError

    from iics_monitor_local.deployed import StackUnusable, read_stack

    try:
        session = boto3.Session(region_name=region)
        outputs = read_stack(
            session.client("cloudformation"), stack_name or STACK_NAME, "EventBusName", "UndeliveredOutcomeQueueUrl"
        ).outputs
        result = redeliver_outcomes(
            session.client("sqs"),
            session.client("events"),
            outputs["UndeliveredOutcomeQueueUrl"],
            outputs["EventBusName"],
        )
    except (BotoCoreError, StackUnusable) as error:
        _fail(ctx, f"error: {error}", EXIT_CODES["USAGE"])
    click.echo(f"Redelivered {result.redelivered} kept outcome event(s) to {outputs['EventBusName']}.")
    if result.failed:
        _fail(ctx, f"{result.failed} outcome(s) are still kept: {result.problems[0]}", EXIT_CODES["ERROR"])


@dataclass
class Redelivery:
    redelivered: int = 0
    failed: int = 0
    problems: list[str] = field(default_factory=list)


def redeliver_outcomes(sqs: Any, events: Any, queue_url: str, bus: str) -> Redelivery:
    """Put every outcome kept in ``queue_url`` on ``bus``; delete each once EventBridge took it.

    A received message stays invisible to other readers while this runs (the queue's visibility
    timeout), so two runs at once do not send it twice; one that fails stays for the next run."""
    from botocore.exceptions import ClientError

    result = Redelivery()
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            try:
                entry = _kept_entry(message["Body"])
                answer = events.put_events(Entries=[entry | {"EventBusName": bus}])
            except (ValueError, ClientError) as error:
                result.failed += 1
                result.problems.append(str(error))
                continue
            if answer.get("FailedEntryCount"):
                result.failed += 1
                result.problems.append(f"EventBridge refused it: {answer['Entries'][0].get('ErrorCode')}")
                continue
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            result.redelivered += 1
    return result


def _kept_entry(body: str) -> dict[str, str]:
    """The PutEvents entry the state machine kept: ``{"Source", "DetailType", "Detail": {...}}``."""
    from iics_monitor.outcome import SOURCE  # here: the outcome module loads boto3

    kept = json.loads(body)
    if not isinstance(kept, dict) or set(kept) != {"Source", "DetailType", "Detail"}:
        raise ValueError("a message in the queue is not a kept outcome event")
    if kept["Source"] != SOURCE or not isinstance(kept["Detail"], dict):
        raise ValueError("a message in the queue is not a kept outcome event")
    return {"Source": kept["Source"], "DetailType": str(kept["DetailType"]), "Detail": json.dumps(kept["Detail"])}


# --- emulator and demo ---------------------------------------------------------------------------


@cli.command("emulator")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0: any free port")
@click.option(
    "--scenario",
    metavar="FILE",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="jobs, faults and settings as JSON or YAML (docs/emulator.md)",
)
@click.option("--username", help="the one user it accepts (default: the scenario's, else alice)")
@click.option("--password", help="that user's password (default: the scenario's, else s3cret); never printed")
@click.option("--verbose", "-v", is_flag=True, help="log each request on stderr (default: quiet)")
@click.pass_context
def emulator_command(
    ctx: click.Context, port: int, scenario: Path | None, username: str | None, password: str | None, verbose: bool
) -> None:
    """Serve the IICS emulator on 127.0.0.1 until Ctrl-C.

    A real HTTP server that plays IICS for everything the monitor touches: v3 and v2 login, and
    the export resources (start, status, log, package). It prints its URL; point IICS_LOGIN_URL
    at it and watch or start jobs against it. It is quiet: run with & in the terminal where
    start or watch prints its progress, it adds nothing to their lines. --verbose logs each
    request on stderr. --username and --password win over the scenario's.

    \b
    Examples:
      iics-export-monitor emulator --port 8080 --username alice --password 'choose-one'
      iics-export-monitor emulator --scenario scenario.json
    """
    from iics_monitor_local.emulator import LOGIN_PATH, IicsEmulator

    emulator = IicsEmulator(port=port)
    if scenario is not None:
        try:
            emulator.load_scenario(scenario)
        except (OSError, ValueError, TypeError, KeyError, AttributeError, RuntimeError) as error:
            _fail(ctx, f"error: scenario {scenario}: {error}", EXIT_CODES["USAGE"])
    emulator.username = username or emulator.username
    emulator.password = password or emulator.password
    try:
        emulator.start()
    except OSError as error:
        _fail(ctx, f"error: cannot listen on 127.0.0.1:{port}: {error.strerror}", EXIT_CODES["USAGE"])
    # The request log is INFO: shown only when asked, so it does not mix into another command's output.
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(message)s")
    try:
        click.echo(f"IICS emulator listening on {emulator.url}")
        click.echo(f"  login: POST {emulator.url}{LOGIN_PATH} as {emulator.username}")
        click.echo(f"  baseApiUrl: {emulator.base_api_url}")
        click.echo(
            f"  export IICS_LOGIN_URL={emulator.url} IICS_USERNAME={shlex.quote(emulator.username)} IICS_PASSWORD=..."
        )
        click.echo("Press Ctrl-C to stop.")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        click.echo("Stopping.")
    finally:
        emulator.stop()


@cli.command("demo")
@click.pass_context
def demo_command(ctx: click.Context) -> None:
    """Run the whole pipeline locally on three jobs (make demo).

    Starts the IICS emulator, a fake Slack and an AWS account (moto) built from template.yaml,
    announces three export jobs: one succeeds, one fails with failed objects, one meets a 401 and
    a 429 and still succeeds. Prints each poll, then each outcome, archived log and alert. Needs
    no network beyond 127.0.0.1.

    \b
    Example:
      iics-export-monitor demo

    Exit code 0 only if every job ended as scripted, alerts included; 1 otherwise.
    """
    ctx.exit(_load("demo").run())


def _fail(ctx: click.Context, message: str, code: int) -> NoReturn:
    click.echo(message, err=True)
    ctx.exit(code)


def run_command(
    command: click.Command, argv: Sequence[str], prog_name: str, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """One command under another name (``python -m iics_monitor_local.watch``); its exit code."""
    with contextlib.redirect_stdout(out or sys.stdout), contextlib.redirect_stderr(err or sys.stderr):
        try:
            command.main(args=list(argv), prog_name=prog_name)
        except SystemExit as stop:  # how click ends every run, --help and usage errors included
            return stop.code if isinstance(stop.code, int) else EXIT_CODES["USAGE"]
    raise AssertionError("unreachable: click's standalone main always exits")


if __name__ == "__main__":
    cli()

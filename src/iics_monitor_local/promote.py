"""``iics-export-monitor promote``: export in one org, import the package into another, as one watched unit.

The command announces a promotion request (``{"promote": ...}``, the ``IICS Export Job Submitted`` event)
and follows the execution the stack starts for it (``promote-<event id>``): the export and its polls,
the archived package, the upload and the import's start, the import's polls, and the one
``IICS Promotion State Change`` outcome. Both jobs' logs (and, with emulated AWS, the package) are kept
in ``--out DIR/<promotionId>/`` with the outcome as promotion.json; the exit code is RunAJob's.

``--aws emulated`` deploys template.yaml into moto with both orgs' logins as the orgs' secrets
(``--from-credentials``, ``--to-credentials``); ``--aws real`` puts the event on the deployed stack's bus,
whose own secrets (IicsOrgSecretArns) log in. The options and help live in ``cli.py``; docs/cli.md is
the user's guide.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from iics_monitor.credentials import Credentials
from iics_monitor.hosts import ALLOWED_HOSTS_PARAMETER
from iics_monitor.validation import parse_promotion
from iics_monitor_local.deployed import EventRefused, StackUnusable, put_trigger, read_stack
from iics_monitor_local.progress import Progress, promotion_line
from iics_monitor_local.runajob import EXIT_CODES
from iics_monitor_local.samconfig import LAPTOP_SETTINGS
from iics_monitor_local.stack import LocalStack
from iics_monitor_local.watch import (
    ARCHIVE_SLACK_SECONDS,
    ORGS_PARAMETER,
    WAIT_OPTIONS,
    UsageError,
    WatchFailed,
    WatchOptions,
    _archive_folder,
    _download_checked,
    _log_errors,
    _overrides,
    _say,
    execution_arn,
    exit_code_of,
    find_stack,
    follow_outcomes,
    read_credentials,
)

__all__ = ["Promotion", "promotion_exit_code", "run"]

PROMOTION_DETAIL_TYPE = "IICS Promotion State Change"
IMPORT_DETAIL_TYPE = "IICS Import Job State Change"
# The states whose input is an outcome the stack puts on its bus (watch.follow_outcomes).
PROMOTION_STATE, IMPORT_STATE = "EmitPromotionOutcome", "EmitImportOutcome"
# How long the deployed stack's rule may take to start the execution after PutEvents.
EXECUTION_APPEARS_SECONDS = 60


@dataclass(frozen=True)
class Promotion:
    """What ``promote`` was asked: the orgs (``from_org`` None: the stack's own), objects and import choices."""

    from_org: str | None
    to_org: str
    object_ids: Sequence[str]
    name: str | None = None
    conflict: str = "OVERWRITE"
    include_objects: Sequence[str] = ()
    allow_unverified: bool = False
    include_dependencies: bool | None = None

    def request(self, monitor: Mapping[str, int] | None = None) -> dict[str, Any]:
        """The request the stack parses (``validation.parse_promotion``), as the event's detail."""
        flag = {} if self.include_dependencies is None else {"includeDependencies": self.include_dependencies}
        promote: dict[str, Any] = {
            "to": self.to_org,
            "objects": [{"id": object_id} | flag for object_id in self.object_ids],
            "conflictResolution": self.conflict,
        }
        optional = {"from": self.from_org, "name": self.name, "includeObjects": list(self.include_objects) or None}
        promote |= {key: value for key, value in optional.items() if value is not None}
        if self.allow_unverified:
            promote["allowUnverified"] = True
        return {"promote": promote} | ({"monitor": dict(monitor)} if monitor else {})

    def check(self, orgs: Sequence[str]) -> None:
        """Refuse, before anything is sent, what the stack would refuse: raises InvalidInput."""
        parse_promotion(self.request(), LAPTOP_SETTINGS, orgs)


@dataclass
class Ended:
    """The promotion outcome, the import job's own outcome (its log summary), and what was kept."""

    detail: dict
    imported: dict | None
    kept: list[Path]


def run(promotion: Promotion, options: WatchOptions, to_credentials: Path | None, out: TextIO, err: TextIO) -> int:
    """Check everything, announce the promotion, follow it to its one outcome, keep the logs; the exit code.
    Errors are one line on ``err``, never a traceback, never a password."""
    stopped = "Stopped watching before the promotion ended; the stack goes on with it"
    return exit_code_of(lambda: _promote(promotion, options, to_credentials, out), err, stopped)


def _promote(promotion: Promotion, options: WatchOptions, to_credentials: Path | None, out: TextIO) -> int:
    if options.aws == "emulated":
        aws: EmulatedPromotion | RealPromotion = EmulatedPromotion(options, promotion, to_credentials)
    else:
        aws = RealPromotion(options, promotion)
    with _archive_folder(options) as (root, _):
        ended = aws.promote(root, out)
    code = promotion_exit_code(ended.detail)
    summarise(ended, code, out)
    return code


def promotion_exit_code(detail: Mapping[str, Any]) -> int:
    """RunAJob's code for a promotion outcome: 7 when it could not start (the stack refused the request,
    or IICS refused to start the export, so no export job exists); 1 when it succeeded with a warning
    or failed objects in the import; else the state's code."""
    export = detail.get("export") or {}
    if detail.get("failedStep") == "request" or (detail.get("failedStep") == "export" and not export.get("jobId")):
        return EXIT_CODES["NOT_STARTED"]
    imported = detail.get("import") or {}
    if detail.get("state") == "SUCCESSFUL" and (detail.get("reason") or (imported.get("objects") or {}).get("failed")):
        return EXIT_CODES["WARNING"]
    return EXIT_CODES.get(detail.get("state"), EXIT_CODES["ERROR"])


def keep(s3: Any, detail: Mapping[str, Any], folder: Path, with_package: bool) -> list[Path]:
    """The jobs' archived logs (each checked against its outcome's sha256), the package when asked, and
    the promotion outcome as promotion.json, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    export, imported = detail.get("export") or {}, detail.get("import") or {}
    wanted = [(export.get("log"), "export.log"), (imported.get("log"), "import.log")]
    if with_package:
        wanted.append((export.get("package"), "package.zip"))
    kept = [_download_checked(s3, archived["bucket"], archived, folder / name) for archived, name in wanted if archived]
    outcome = folder / "promotion.json"
    outcome.write_text(json.dumps(detail, indent=2) + "\n", encoding="utf-8")
    return [*kept, outcome]


def summarise(ended: Ended, code: int, out: TextIO) -> None:
    detail = ended.detail
    lines = [
        "",
        f"Promotion {detail.get('promotionId')} from {detail.get('from') or 'the stack org'} to {detail.get('to')}: "
        f"{promotion_line(detail)}, exit code {code}",
    ]
    if code == EXIT_CODES["NOT_STARTED"]:
        lines.append("  the promotion could not start: nothing was exported or imported")
    for step in ("export", "import"):
        job = detail.get(step)
        if job and job.get("jobId"):
            objects = job.get("objects") or {}
            counts = f", objects {objects.get('successful', 0)}/{objects.get('total', 0)} successful" if objects else ""
            lines.append(f"  {step}: {job.get('jobId')} ({job.get('jobName') or 'no name'}) {job.get('state')}{counts}")
    lines += _log_errors(ended.imported) if ended.imported else []  # a failed import's first log errors
    lines += [f"  kept: {path}" for path in ended.kept]
    _say(out, "\n".join(lines))


# --- emulated AWS ------------------------------------------------------------------------------


class EmulatedPromotion:
    """``--aws emulated``: template.yaml in moto, each org's login its secret (the source org's the
    stack's own secret when ``--from`` is not given)."""

    def __init__(self, options: WatchOptions, promotion: Promotion, to_credentials: Path | None) -> None:
        promotion.check([org for org in (promotion.from_org, promotion.to_org) if org])
        if to_credentials is None:
            raise UsageError(f"--aws emulated needs --to-credentials FILE, the login of org {promotion.to_org}")
        self.source = read_credentials(options.credentials)
        self.target = read_credentials(to_credentials)
        self.promotion = promotion
        self.settings = LAPTOP_SETTINGS.configured(_overrides(options))
        self.parameters = {parameter: self.settings.to_dict()[field] for field, parameter in WAIT_OPTIONS.values()}
        if options.allowed_hosts:
            self.parameters[ALLOWED_HOSTS_PARAMETER] = options.allowed_hosts

    def promote(self, root: Path, out: TextIO) -> Ended:
        promotion = self.promotion
        orgs = {promotion.to_org: _login(self.target)}
        if promotion.from_org is not None:
            orgs[promotion.from_org] = _login(self.source)
        _say(
            out,
            f"Deploying template.yaml into emulated AWS (moto); org {promotion.from_org or '(the stack org)'} as "
            f"{self.source.username}, org {promotion.to_org} as {self.target.username}",
        )
        with LocalStack(self.parameters, orgs=orgs) as stack:
            if promotion.from_org is None:
                stack.put_iics_secret(self.source.username, self.source.password, self.source.login_url)
            stack.on_invocation(Progress(out))
            outcomes = stack.capture_events()
            event_id = stack.submit(promotion.request())
            arn = execution_arn(stack.state_machine_arn, f"promote-{event_id}")
            _say(out, f"Promotion promote-{event_id}: execution {arn}")
            budget = 2 * (self.settings.timeout_seconds + self.settings.max_wait_seconds + ARCHIVE_SLACK_SECONDS)
            try:
                stack.wait(arn, timeout=budget, poll_seconds=0.2)
            except TimeoutError as error:  # leaving the stack stops the execution
                raise WatchFailed(str(error)) from None
            events = outcomes.drain()
            detail = _one(events, PROMOTION_DETAIL_TYPE)
            imported = next((e["detail"] for e in events if e["detail-type"] == IMPORT_DETAIL_TYPE), None)
            # The package too: this stack's bucket is gone when the command ends.
            kept = keep(stack.client("s3"), detail, root / detail["promotionId"], with_package=True)
            return Ended(detail, imported, kept)


def _login(credentials: Credentials) -> dict[str, str]:
    return {"username": credentials.username, "password": credentials.password, "loginUrl": credentials.login_url}


def _one(events: list[dict], detail_type: str) -> dict:
    found = [e["detail"] for e in events if e["detail-type"] == detail_type]
    if len(found) != 1:
        raise WatchFailed(f"the promotion ended with {len(found)} {detail_type} events, expected 1")
    return found[0]


# --- real AWS ----------------------------------------------------------------------------------


class RealPromotion:
    """``--aws real``: the event put on the deployed stack's bus; the execution its rule starts, followed."""

    def __init__(self, options: WatchOptions, promotion: Promotion) -> None:
        try:
            session = boto3.Session(region_name=options.region)
            cloudformation, self.sfn, self.s3, self.events = (
                session.client(name) for name in ("cloudformation", "stepfunctions", "s3", "events")
            )
            self.stack = find_stack(cloudformation, options.stack_name)
            self.bus = read_stack(cloudformation, options.stack_name, "EventBusName").outputs["EventBusName"]
        except BotoCoreError as error:
            raise UsageError(f"AWS: {error}") from None
        except StackUnusable as error:
            raise UsageError(str(error)) from None
        orgs = sorted(self.stack.orgs)
        for org in (promotion.from_org, promotion.to_org):
            if org is not None and org not in self.stack.orgs:  # the stack would refuse it: say so before sending
                raise UsageError(
                    f"org {org} is not configured in stack {options.stack_name} "
                    f"({ORGS_PARAMETER}: {', '.join(orgs) or 'none'}); docs/orgs.md"
                )
        self.request = promotion.request(_overrides(options))
        parse_promotion(self.request, self.stack.settings, orgs)
        self.refresh = options.refresh

    def promote(self, root: Path, out: TextIO) -> Ended:
        try:
            event_id = put_trigger(self.events, self.bus, self.request)
        except EventRefused as error:
            raise WatchFailed(str(error)) from None
        arn = execution_arn(self.stack.state_machine_arn, f"promote-{event_id}")
        _say(out, f"Promotion promote-{event_id} announced on {self.bus}: execution {arn}")
        try:
            self._wait_for(arn)
            found = follow_outcomes(self.sfn, arn, "", Progress(out), out, self.refresh)
        except KeyboardInterrupt:
            _say(out, f"The execution goes on in AWS: {arn}")
            raise
        except (BotoCoreError, ClientError) as error:
            raise WatchFailed(f"lost track of {arn}: {error}") from None
        if PROMOTION_STATE not in found:
            raise WatchFailed(f"execution {arn} ended without a promotion outcome")
        detail = found[PROMOTION_STATE]
        return Ended(detail, found.get(IMPORT_STATE), keep(self.s3, detail, root / detail["promotionId"], False))

    def _wait_for(self, arn: str) -> None:
        """The stack's rule starts the execution a moment after PutEvents."""
        deadline = time.monotonic() + EXECUTION_APPEARS_SECONDS
        while True:
            try:
                self.sfn.describe_execution(executionArn=arn)
                return
            except self.sfn.exceptions.ExecutionDoesNotExist:
                if time.monotonic() > deadline:
                    raise WatchFailed(
                        f"the stack started no execution for the promotion within {EXECUTION_APPEARS_SECONDS} s"
                    ) from None
                time.sleep(min(self.refresh, 1.0) or 0.05)

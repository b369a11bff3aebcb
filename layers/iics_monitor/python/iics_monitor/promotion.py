"""Promotions between orgs: the logic behind ``functions/promote``.

A promotion is one execution (named ``promote-<event id>``, so a redelivered request does not promote
twice) that runs two watched jobs in turn: the export in org ``from`` (a start-export with the promotion
carried along), then the import in org ``to``. Between them, ``start_import`` takes the export's
archived package (refusing one that failed verification unless the request allows it), streams it
from S3 to the target org's upload resource in bounded memory, and starts the import; the state machine
then watches the import like any announced one. Both jobs announce their own outcomes as always.

Every end of a promotion, whatever step it reached, comes to ``promotion_outcome``, which reads the
execution's state and says once what happened: detail-type ``IICS Promotion State Change``
(events/promotion-outcome.schema.json). The poll record of each of the promotion's jobs carries the
promotion's record (``promotion.track``), so even an ERROR outcome the state machine builds itself
leads here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from iics_monitor.config import PromoteConfig
from iics_monitor.errors import BadRequest, IicsError, InvalidInput, MonitorError, StartUnconfirmed, Throttled
from iics_monitor.observability import logger
from iics_monitor.status import REASON_LIMIT, text
from iics_monitor.validation import (
    IMPORT,
    PromotionSpec,
    parse_job_id,
    parse_org,
    parse_request,
)

DETAIL_TYPE = "IICS Promotion State Change"
SCHEMA_VERSION = "1"
_JOB_STATES = ("SUCCESSFUL", "FAILED", "TIMED_OUT", "ERROR")


class ImportStarter(Protocol):
    def upload_package(self, stream: Any, size: int, **kwargs: Any) -> dict[str, Any]: ...

    def start_import(self, job_id: str, name: str, conflict_resolution: str, include_objects: Any = None) -> dict: ...


class StepFailed(Exception):
    """A step between the two jobs did not happen: ``step`` (verify, upload, start) and the promotion's state."""

    def __init__(self, step: str, reason: str, state: str = "FAILED", error_type: str | None = None) -> None:
        super().__init__(reason)
        self.step, self.state, self.error_type = step, state, error_type


def start_import(
    event: Mapping[str, Any],
    *,
    source_for: Callable[[str | None], ImportStarter],
    s3: Any,
    config: PromoteConfig,
) -> dict[str, Any]:
    """``{"startImport": {"request", "export"}}``: the import request to watch next, or why there is none
    (``{"outcome": "FAILED"|"ERROR", "step", "reason", "errorType"}``)."""
    body = event.get("startImport") if isinstance(event.get("startImport"), Mapping) else {}
    raw = body.get("request") if isinstance(body.get("request"), Mapping) else {}
    request = parse_request(raw, config.defaults, config.orgs, internal=True)
    if request.promotion is None:
        raise InvalidInput("startImport needs the request of a promotion's export")
    spec = _spec(raw.get("promotion"), config)
    export = body.get("export") if isinstance(body.get("export"), Mapping) else {}
    logger.set_correlation_id(request.job_id)
    # the import is named as the promotion asked, else as the export was
    name = text(spec.name or request.name or export.get("jobName"), 255) or "promotion"
    try:
        package = _package_to_import(export, spec, config)
        job_id = _upload_and_start(source_for(spec.to_org), s3, package, spec, name)
    except StepFailed as failed:
        logger.warning("The promotion stopped before its import", extra={"step": failed.step})
        return {
            "outcome": failed.state,
            "step": failed.step,
            "reason": text(str(failed), REASON_LIMIT),
            "errorType": failed.error_type,
        }
    track = dict(request.promotion) | {"step": "import", "export": export_summary(export)}
    import_request = {
        "jobId": job_id,
        "name": name,
        "monitor": request.settings.to_dict(),
        "kind": IMPORT,
        "org": spec.to_org,
        "promotion": {"track": track},  # the spec was for this step; the import needs only the record
    }
    logger.info("Promotion import started", extra={"importJobId": job_id})
    return {"outcome": None, "request": {k: v for k, v in import_request.items() if v is not None}}


def _spec(raw: Any, config: PromoteConfig) -> PromotionSpec:
    spec = raw.get("spec") if isinstance(raw, Mapping) else None
    if not isinstance(spec, Mapping):
        raise InvalidInput("the promotion's request has no spec")
    to_org = parse_org(spec.get("to"), config.orgs)
    if to_org is None:
        raise InvalidInput("the promotion's spec names no org to import into")
    includes = spec.get("includeObjects")
    return PromotionSpec(
        to_org=to_org,
        conflict_resolution=spec.get("conflictResolution"),
        name=spec.get("name") if isinstance(spec.get("name"), str) else None,
        include_objects=tuple(includes) if isinstance(includes, list) else None,
        allow_unverified=spec.get("allowUnverified") is True,
    )


def _package_to_import(export: Mapping[str, Any], spec: PromotionSpec, config: PromoteConfig) -> Mapping[str, Any]:
    """The export's archived package, if it may be imported: archived whole, in this stack's archive,
    and verified against its manifest (unless the request allows an unverified one)."""
    if export.get("state") != "SUCCESSFUL":
        raise StepFailed("export", f"the export ended {export.get('state')}: nothing to import")
    package = export.get("package")
    if not isinstance(package, Mapping):
        why = export.get("packageError") or "no reason given"
        raise StepFailed("verify", f"the export's package was not archived: {why}")
    if package.get("truncated"):
        raise StepFailed("verify", f"the archived package was cut short ({package['truncated']}): not imported")
    key, bucket = package.get("key"), package.get("bucket")
    if bucket != config.bucket or not isinstance(key, str) or not key.startswith(config.prefix):
        raise StepFailed("verify", "the package is not in this stack's archive", state="ERROR")
    verified = package.get("verified")
    if verified is not True and not spec.allow_unverified:
        why = "failed verification" if verified is False else "could not be verified"
        raise StepFailed("verify", f"the package {why}; set allowUnverified to import it anyway")
    return package


def _upload_and_start(
    client: ImportStarter, s3: Any, package: Mapping[str, Any], spec: PromotionSpec, name: str
) -> str:
    """Stream the package from S3 to the org's upload resource, then start the import; its job id."""
    # a package allowed in unverified is one IICS's own check would refuse too: it is told to relax it
    relax = spec.allow_unverified and package.get("verified") is not True

    def upload() -> dict[str, Any]:  # each try reads the package afresh: a stream is read once
        body, size = _archived(s3, package)
        try:
            return client.upload_package(body, size, relax_checksum=relax)
        finally:
            body.close()

    try:
        uploaded = _unthrottled(upload)
    except BadRequest as error:
        raise StepFailed("upload", f"IICS refused the package: {error}", error_type=type(error).__name__) from None
    except MonitorError as error:
        raise StepFailed("upload", f"the upload failed: {error}", "ERROR", type(error).__name__) from None
    job_id = parse_job_id(uploaded.get("jobId"))
    try:
        _unthrottled(lambda: client.start_import(job_id, name, spec.conflict_resolution, spec.include_objects))
    except StartUnconfirmed as error:
        raise StepFailed("start", f"the import start is unconfirmed: {error}", "ERROR", type(error).__name__) from None
    except (IicsError, MonitorError) as error:
        raise StepFailed("start", f"the import did not start: {error}", error_type=type(error).__name__) from None
    return job_id


def _archived(s3: Any, package: Mapping[str, Any]) -> tuple[Any, int]:
    """The archived package's body (unread) and size; it must be the object the archive step stored."""
    try:
        stored = s3.get_object(Bucket=package["bucket"], Key=package["key"])
    except (ClientError, BotoCoreError) as error:
        raise StepFailed("upload", f"the archived package could not be read: {str(error)[:300]}", "ERROR") from None
    body, size = stored["Body"], int(stored["ContentLength"])
    if size != package.get("sizeBytes"):  # not the object the archive step stored and checked
        body.close()
        raise StepFailed("verify", f"the archived package is {size} bytes, not the {package.get('sizeBytes')} archived")
    return body, size


THROTTLE_ATTEMPTS = 3
MAX_THROTTLE_SLEEP_SECONDS = 10.0


def _unthrottled(call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``call()``, tried again while IICS (or the stack's request budget) throttles it: a throttled request
    was refused, so nothing was uploaded or started, and trying again cannot import twice."""
    for attempt in range(1, THROTTLE_ATTEMPTS + 1):
        try:
            return call()
        except Throttled as error:
            if attempt == THROTTLE_ATTEMPTS:
                raise
            wait = min(MAX_THROTTLE_SLEEP_SECONDS, error.retry_after if error.retry_after is not None else 2**attempt)
            logger.warning("IICS throttled the promotion's request; trying again", extra={"waitSeconds": wait})
            time.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def export_summary(detail: Mapping[str, Any]) -> dict[str, Any]:
    """What a promotion outcome says of one of its jobs: id, state, its archived log (and package)."""
    summary = {
        "jobId": detail.get("jobId"),
        "jobName": detail.get("jobName"),
        "state": detail.get("state") if detail.get("state") in _JOB_STATES else None,
        "iicsState": detail.get("iicsState"),
        "objects": detail.get("objects") if isinstance(detail.get("objects"), Mapping) else None,
        "log": detail.get("log") if isinstance(detail.get("log"), Mapping) else None,
    }
    if "package" in detail:
        summary["package"] = detail["package"] if isinstance(detail.get("package"), Mapping) else None
    return summary


def promotion_outcome(event: Mapping[str, Any]) -> dict[str, Any]:
    """``{"state": <the execution's state>, "executionArn", "executionName"}``: the promotion's one outcome."""
    state = event.get("state") if isinstance(event.get("state"), Mapping) else {}
    detail = {
        "schemaVersion": SCHEMA_VERSION,
        "promotionId": event.get("executionName"),
        "from": None,
        "to": None,
        "state": "ERROR",
        "failedStep": None,
        "reason": None,
        "export": None,
        "import": None,
        "executionArn": event.get("executionArn"),
    }
    detail |= _what_happened(state)
    logger.info("Promotion ended", extra={"state": detail["state"], "failedStep": detail["failedStep"]})
    return detail


def _what_happened(state: Mapping[str, Any]) -> dict[str, Any]:
    refused = state.get("refused")
    if isinstance(refused, Mapping):
        return {"failedStep": "request", "reason": text(refused.get("reason"), REASON_LIMIT)}
    poll = (state.get("check") or {}).get("poll") or {}
    track = poll.get("promotion") if isinstance(poll.get("promotion"), Mapping) else {}
    orgs = {"from": track.get("from"), "to": track.get("to")}
    job = (state.get("outcome") or {}).get("detail") or {}
    started = (state.get("start") or {}).get("started")
    if isinstance(state.get("error"), Mapping):  # the step between the jobs failed outright
        why = (
            f"the step that uploads and starts the import stopped with {state['error'].get('Error')}: an import "
            "may have been uploaded or even started in the target org; check IICS before promoting again"
        )
        return orgs | {"failedStep": "upload", "reason": why, "export": export_summary(job)}
    if isinstance(started, Mapping) and started.get("outcome") is not None:
        return orgs | {
            "state": started.get("outcome") if started.get("outcome") in ("FAILED", "ERROR") else "ERROR",
            "failedStep": started.get("step"),
            "reason": text(started.get("reason"), REASON_LIMIT),
            "export": export_summary(job),
        }
    ended = job.get("state") if job.get("state") in _JOB_STATES else "ERROR"
    if track.get("step") == "import":
        outcome = orgs | {"export": track.get("export"), "import": export_summary(job)}
    else:
        outcome = orgs | {"export": export_summary(job)}
    if ended == "SUCCESSFUL" and track.get("step") == "import":
        return outcome | {"state": "SUCCESSFUL", "reason": text(job.get("warning"), REASON_LIMIT)}
    step = "import" if track.get("step") == "import" else "export"
    reason = text(job.get("reason") or f"the {step} ended {ended}", REASON_LIMIT)
    return outcome | {"state": "ERROR" if ended == "ERROR" else "FAILED", "failedStep": step, "reason": reason}

"""The largest state an execution can carry, computed with the code the functions run.

Step Functions refuses any state (and any task result) over 256 KiB with States.DataLimitExceeded,
which would end a watch with no outcome. Everything an execution carries is bounded at the door or
where it is made (``iics_monitor.status.text``), so the worst case can be computed: feed every
function the most hostile input it can meet (strings of 10,000 characters outside the BMP, which
JSON escapes to 12 bytes each; 1,000 failed objects; error texts of 32 KiB, Lambda's limit for
an error's Cause), measure what comes out as ASCII-escaped JSON (the longest spelling), and add up
the largest state of each path through the ASL.

    python -m bench.state_size     # prints the table that docs/reliability.md quotes
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from iics_monitor.archive import ArchivedLog
from iics_monitor.check import check_job
from iics_monitor.config import CheckConfig
from iics_monitor.errors import IicsUnavailable
from iics_monitor.loginsight import LogInsight
from iics_monitor.observability import logger
from iics_monitor.outcome import build_outcome
from iics_monitor.package import LocalCopy, check
from iics_monitor.promotion import export_summary
from iics_monitor.status import JobStatus
from iics_monitor.submit import accept
from iics_monitor.validation import MAX_ATTEMPT, MAX_EXPORT_OBJECTS, MAX_PROMOTION_OBJECTS, MonitorSettings

ASL = Path(__file__).resolve().parents[1] / "statemachine" / "export_monitor.asl.json"
STATE_LIMIT = 262_144  # bytes: Step Functions' limit for a state's data and a task's result
CAUSE_LIMIT = 32_768  # characters: Step Functions' limit for an error's Cause
HOSTILE = "\U0001f600" * 10_000  # 12 bytes each once JSON-escaped
ID = "A" * 64
SETTINGS = MonitorSettings(initial_wait_seconds=3600, max_wait_seconds=3600, timeout_seconds=30 * 24 * 3600)
ORG = "o" * 64  # the longest org name, configured
ORG_ARN = f"arn:aws:secretsmanager:us-east-1:123456789012:secret:orgs/{ORG}-a1B2c3"
CONFIG = CheckConfig(
    secret_name="iics",  # noqa: S106 - a name, not a secret
    defaults=SETTINGS,
    max_polls=2000,
    org_secrets={ORG: ORG_ARN, "p" * 64: ORG_ARN.replace(ORG, "p" * 64)},
)
JOB = {"kind": "import", "org": ORG}  # an import of a further org: its request and poll record say so
STARTED = datetime(2026, 1, 1, tzinfo=UTC)
EXECUTION_ARN = "arn:aws-us-gov:states:us-gov-west-1:123456789012:execution:" + "x" * 80 + ":" + "x" * 80


def size(value: Any) -> int:
    """Bytes of ``value`` as ASCII-escaped JSON: no other spelling of it is longer."""
    return len(json.dumps(value))


def hostile_status() -> dict[str, Any]:
    hostile_object = {
        "id": HOSTILE,
        "name": HOSTILE,
        "path": HOSTILE,
        "type": HOSTILE,
        "status": {"state": "FAILED", "message": HOSTILE},
    }
    return {
        "id": ID,
        "name": HOSTILE,
        "startTime": HOSTILE,
        "endTime": None,
        "status": {"state": HOSTILE, "message": HOSTILE},
        "objects": [hostile_object] * 1_000,  # the outcome lists 25; counts are numbers
    }


class _Source:
    def __init__(self, answer: dict | Exception) -> None:
        self.answer = answer

    def get_status(self, job_id: str, *, expand_objects: bool = False, kind: str = "export") -> dict[str, Any]:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def largest_request() -> dict[str, Any]:
    """The biggest watch request the door lets through (a start-export request is counted apart)."""
    raw = {"jobId": ID, "name": "\U0001f600" * 255, "monitor": SETTINGS.to_dict(), "attempt": MAX_ATTEMPT} | JOB
    return accept(raw, SETTINGS, CONFIG.orgs)["request"]


def largest_export_request() -> dict[str, Any]:
    objects = [{"id": ID, "includeDependencies": False}] * MAX_EXPORT_OBJECTS
    raw = {"export": {"name": "\U0001f600" * 255, "objects": objects}, "monitor": SETTINGS.to_dict(), "org": ORG}
    return accept(raw, SETTINGS, CONFIG.orgs)["request"]


def largest_promotion_request() -> dict[str, Any]:
    """The biggest promotion the door lets through: 500 objects to export, 500 to import."""
    objects = [{"id": ID, "includeDependencies": False}] * MAX_PROMOTION_OBJECTS
    promote = {"from": ORG, "to": "p" * 64, "objects": objects, "name": "\U0001f600" * 255}
    promote |= {
        "conflictResolution": "OVERWRITE",
        "includeObjects": [ID] * MAX_PROMOTION_OBJECTS,
        "allowUnverified": True,
    }
    return accept({"promote": promote, "monitor": SETTINGS.to_dict()}, SETTINGS, CONFIG.orgs)["request"]


def largest_poll() -> dict[str, Any]:
    """The check's biggest result: a hostile status first, then a hostile error at the deadline."""
    request = largest_request()
    event = {"request": request, "startedAt": STARTED.isoformat()}
    seen = check_job(event, source=_Source(hostile_status()), config=CONFIG, now=STARTED)
    failing = _Source(IicsUnavailable(HOSTILE, status=503, code=HOSTILE, request_id=HOSTILE))
    late = STARTED + timedelta(seconds=SETTINGS.timeout_seconds + 1)
    timed_out = check_job(event | {"poll": seen}, source=failing, config=CONFIG, now=late)
    return max(seen, timed_out, key=size)


def hostile_package() -> bytes:
    """A package whose check says the most: mismatched, missing and unlisted entries, keys that are ids,
    a bad manifest line, and metadata of more types and folders than are named, all with hostile names."""
    names = [f"{HOSTILE[:500]}{n}.zip" for n in range(40)]
    manifest = [f"{name}={'0' * 64}" for name in names[:20]]  # 10+ mismatches (the entries hold b"x")
    manifest += [f"missing/{name}={'0' * 64}" for name in names[:20]] + [
        f"{ID[:-2]}{n:02}={'0' * 64}" for n in range(9)
    ]
    objects = [{"objectType": f"{n:02}{HOSTILE[:500]}", "path": f"{n:02}{HOSTILE[:500]}"} for n in range(40)]
    metadata = {"name": HOSTILE, "sourceOrgId": ID, "sourceOrgName": HOSTILE, "exportedObjects": objects}
    entries = dict.fromkeys(names, b"x") | {
        "exportMetadata.v2.json": json.dumps(metadata).encode(),
        "exportPackage.chksum": "\n".join(["#", *manifest, "a line without a digest"]).encode(),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def largest_package_check() -> dict[str, Any]:
    """What the archive step's check (iics_monitor.package) adds to the outcome's package, for that package."""
    copy = LocalCopy()
    copy.restart()
    try:
        copy.write(hostile_package())
        return check(copy, None)
    finally:
        copy.discard()


def largest_outcome(poll: dict[str, Any]) -> dict[str, Any]:
    insight = LogInsight()
    for _ in range(50):
        insight.feed(f"> OIE_005 ERROR 2026-01-01T00:00:00.000Z {HOSTILE}\n".encode())
    archived = ArchivedLog(bucket="b" * 63, key="k" * 1024, size_bytes=2**40, sha256="0" * 64)
    return build_outcome(
        job_id=ID,
        state="FAILED",
        poll=poll | {"reason": HOSTILE},
        status=JobStatus.parse(hostile_status()),
        log=archived,
        log_error=HOSTILE,
        reason=HOSTILE,
        execution_arn=EXECUTION_ARN,
        package=archived,
        package_error=HOSTILE,
        package_check=largest_package_check(),
        log_summary=insight.finish(),
        kind="import",
        org=ORG,
    )


def error_outcome_detail(poll: dict[str, Any], failure: dict[str, Any]) -> dict[str, Any]:
    """BuildJobErrorOutcome's detail (BuildErrorOutcome's and what job it was), from the ASL itself: its
    literals, and its paths read from the state."""
    parameters = json.loads(ASL.read_text())["States"]["BuildJobErrorOutcome"]["Parameters"]["detail"]
    state = {"check": {"poll": poll}, "failure": failure}

    def resolve(path: str) -> Any:
        if path.startswith("$$."):
            return EXECUTION_ARN
        value: Any = state
        for key in path.removeprefix("$.").split("."):
            value = value.get(key) if isinstance(value, dict) else None
        return value

    return {key.removesuffix(".$"): resolve(v) if key.endswith(".$") else v for key, v in parameters.items()}


def worst_case() -> dict[str, int]:
    """Bytes of the largest state on each path, and of what it is made of."""
    request, export_request = largest_request(), largest_export_request()
    promotion = largest_promotion_request()
    # after StartExport the request is the watched export's: the export spec gives way to its jobId
    promotion_export = {k: v for k, v in promotion.items() if k != "export"} | {"jobId": ID, "name": "x" * 255}
    poll = largest_poll()
    outcome = largest_outcome(poll)
    summary = export_summary(outcome)  # what the import's request keeps of the export
    submission = {"eventId": "e" * 64, "id": "0" * 32}
    error = {"Error": "E" * 256, "Cause": "C" * CAUSE_LIMIT}
    # ReadErrorCause parses the Lambda's Cause (at most 32 KiB) and copies its errorMessage into the outcome.
    failure = {"type": "E" * 256, "code": None, "cause": {"errorMessage": "C" * CAUSE_LIMIT}}
    error_outcome = error_outcome_detail(poll, failure)
    paths = {
        # EmitOutcome on the success path: request, poll record and the outcome, nothing else.
        "success path (at EmitOutcome)": size(
            {
                "request": request,
                "submission": submission,
                "check": {"poll": poll},
                "outcome": {"detail": outcome},
            }
        ),
        # A task's Catch adds the error to the state; the Report* states then keep only poll and failure.
        "error path (at a Catch)": size(
            {"request": request, "submission": submission, "check": {"poll": poll}, "error": error}
        ),
        "error path (at EmitOutcome)": size(
            {"check": {"poll": poll}, "failure": failure, "outcome": {"detail": error_outcome}}
        ),
        # Start-export: the export spec is carried until StartExport answers.
        "start-export (at a Catch of StartExport)": size(
            {"request": export_request, "submission": submission, "check": {"poll": poll}, "error": error}
        ),
        # A promotion carries its import's includeObjects beside the export spec until StartExport answers,
        "promotion (at a Catch of StartExport)": size(
            {"request": promotion, "submission": submission, "check": {"poll": poll}, "error": error}
        ),
        # and its export's outcome into StartImport, with the start's answer.
        "promotion (at StartImport)": size(
            {
                "request": promotion_export,
                "submission": submission,
                "check": {"poll": poll},
                "outcome": {"detail": outcome},
                "start": {"started": {"request": promotion_export | {"promotion": {"track": {"export": summary}}}}},
            }
        ),
    }
    parts = {
        "request (watch)": size(request),
        "request (start-export, 1,000 objects)": size(export_request),
        "request (promotion, 500 objects each way)": size(promotion),
        "poll record": size(poll),
        "outcome detail": size(outcome),
    }
    return parts | paths | {"largest state": max(paths.values())}


def main() -> None:
    logger.setLevel("ERROR")  # the hostile input's warnings are expected
    figures = worst_case()
    width = max(len(name) for name in figures)
    print(f"{'what':<{width}}  bytes    share of 256 KiB")
    for name, value in figures.items():
        print(f"{name:<{width}}  {value:>7,}  {value / STATE_LIMIT:>6.1%}")


if __name__ == "__main__":
    main()

"""Recent runs per export job name, kept in a DynamoDB table so recurring jobs are polled near their end.

One item per job name: the last ``KEEP`` runs that IICS ended, each with its duration (IICS's own
start and end times) and its end state, SUCCESSFUL or FAILED, in the order they ended; and a TTL,
so names that stop recurring disappear. Only successful runs say when a run usually ends
(``expected_seconds``): a run that failed after a minute says nothing about when a good one
finishes. Failed runs are kept all the same, so the history is what really happened: a name whose
recent runs keep failing has fewer than ``MIN_SAMPLES`` successes left and is polled by the plain
policy, which is the one that finds failures soonest.

The history is a hint, never a dependency: a table that cannot be read or written costs a warning
and a metric, and the check falls back to the plain policy. Two runs of the same name finishing at
the same moment may both rewrite the item; the last writer wins, which loses one sample of a hint.
Items written before states were kept (a ``durations`` list) read as successful runs.

Exports and imports, in the stack's own org and in others, keep separate histories (``history_key``):
the same job name may take a minute to export and an hour to import.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from iics_monitor.observability import logger, metrics
from iics_monitor.status import JobState

KEEP = 5  # runs remembered per name, whatever their state
MIN_SAMPLES = 2  # one successful run is not yet a pattern
TTL_DAYS = 90
_MAX_NAME_BYTES = 1024  # DynamoDB allows 2,048 for a partition key
_RECORDED_STATES = frozenset({JobState.SUCCESSFUL.value, JobState.FAILED.value})


def history_key(kind: str, org: str | None, job_name: str) -> str:
    """The history's key for a job name: the name itself for the stack's own exports (as it always
    was, so existing histories still count), else ``<kind>@<org>:<name>``."""
    if kind == "export" and org is None:
        return job_name
    return f"{kind}@{org or ''}:{job_name}"


@dataclass(frozen=True)
class Run:
    """One ended run of a job name: how long IICS ran it, and how it ended."""

    seconds: float
    state: str


def expected_seconds(runs: Sequence[Run]) -> float | None:
    """The duration to expect: the median of the successful runs, once there are ``MIN_SAMPLES``."""
    usable = [r.seconds for r in runs if r.state == JobState.SUCCESSFUL.value and r.seconds > 0]
    return statistics.median(usable) if len(usable) >= MIN_SAMPLES else None


class DurationHistory:
    """The table adapter. ``client`` is a boto3 DynamoDB client (the runtime's, or moto's in tests)."""

    def __init__(self, table_name: str, client: Any) -> None:
        self._table = table_name
        self._client = client

    def runs(self, job_name: str) -> list[Run] | None:
        """Recent runs of ``job_name`` (oldest first); None when the table cannot be read."""
        if not _usable_name(job_name):
            return []
        try:
            item = self._client.get_item(TableName=self._table, Key={"jobName": {"S": job_name}}).get("Item")
        except (ClientError, BotoCoreError) as error:
            _unavailable("read", error)
            return None
        return _runs_of(item or {})[-KEEP:]

    def expected_seconds(self, job_name: str) -> float | None:
        return expected_seconds(self.runs(job_name) or [])

    def record(self, job_name: str, seconds: float, now: datetime, *, state: str) -> None:
        """Add one run that IICS ended (SUCCESSFUL or FAILED); keeps the last ``KEEP``."""
        if not _usable_name(job_name) or seconds <= 0 or state not in _RECORDED_STATES:
            return
        previous = self.runs(job_name)
        if previous is None:
            return
        kept = [*previous, Run(seconds, state)][-KEEP:]
        item = {
            "jobName": {"S": job_name},
            "runs": {"L": [_run_attribute(r) for r in kept]},
            "updatedAt": {"S": now.isoformat()},
            "expiresAt": {"N": str(int((now + timedelta(days=TTL_DAYS)).timestamp()))},
        }
        try:
            self._client.put_item(TableName=self._table, Item=item)
        except (ClientError, BotoCoreError) as error:
            _unavailable("write", error)


def _run_attribute(run: Run) -> dict[str, Any]:
    seconds = str(Decimal(str(round(run.seconds, 3))))
    return {"M": {"seconds": {"N": seconds}, "state": {"S": run.state}}}


def _runs_of(item: dict[str, Any]) -> list[Run]:
    if "runs" not in item:  # written before states were kept: successful runs only
        values = item.get("durations", {}).get("L", [])
        return [Run(float(v["N"]), JobState.SUCCESSFUL.value) for v in values if "N" in v]
    runs = []
    for value in item["runs"].get("L", []):
        fields = value.get("M", {})
        seconds, state = fields.get("seconds", {}).get("N"), fields.get("state", {}).get("S")
        if seconds is not None and state in _RECORDED_STATES:
            runs.append(Run(float(seconds), state))
    return runs


def _usable_name(job_name: str | None) -> bool:
    return bool(job_name) and len(job_name.encode()) <= _MAX_NAME_BYTES


def _unavailable(action: str, error: Exception) -> None:
    metrics.add_metric(name="HistoryUnavailable", unit=MetricUnit.Count, value=1)
    logger.warning(
        "Duration history unavailable; polling without it", extra={"action": action, "error": type(error).__name__}
    )

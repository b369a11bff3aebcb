"""Recent durations per export job name, kept in a DynamoDB table so recurring jobs are polled near their end.

One item per job name: the last ``KEEP`` durations of SUCCESSFUL runs (IICS's own start and end
times) and a TTL, so names that stop recurring disappear. The history is a hint, never a
dependency: a table that cannot be read or written costs a warning and a metric, and the check
falls back to the plain policy. Two runs of the same name finishing at the same moment may both
rewrite the item; the last writer wins, which loses one sample of a hint.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from iics_monitor.observability import logger, metrics

KEEP = 5  # durations remembered per name
MIN_SAMPLES = 2  # one run is not yet a pattern
TTL_DAYS = 90
_MAX_NAME_BYTES = 1024  # DynamoDB allows 2,048 for a partition key


def expected_seconds(durations: Sequence[float]) -> float | None:
    """The duration to expect from recent ones: their median, once there are ``MIN_SAMPLES``."""
    usable = [d for d in durations if d > 0]
    return statistics.median(usable) if len(usable) >= MIN_SAMPLES else None


class DurationHistory:
    """The table adapter. ``client`` is a boto3 DynamoDB client (the runtime's, or moto's in tests)."""

    def __init__(self, table_name: str, client: Any) -> None:
        self._table = table_name
        self._client = client

    def durations(self, job_name: str) -> list[float] | None:
        """Recent durations of ``job_name`` (oldest first); None when the table cannot be read."""
        if not _usable_name(job_name):
            return []
        try:
            item = self._client.get_item(TableName=self._table, Key={"jobName": {"S": job_name}}).get("Item")
        except (ClientError, BotoCoreError) as error:
            _unavailable("read", error)
            return None
        values = (item or {}).get("durations", {}).get("L", [])
        return [float(v["N"]) for v in values if "N" in v][-KEEP:]

    def expected_seconds(self, job_name: str) -> float | None:
        return expected_seconds(self.durations(job_name) or [])

    def record(self, job_name: str, seconds: float, now: datetime) -> None:
        """Add one SUCCESSFUL run's duration; keeps the last ``KEEP``."""
        if not _usable_name(job_name) or seconds <= 0:
            return
        previous = self.durations(job_name)
        if previous is None:
            return
        kept = [*previous, seconds][-KEEP:]
        item = {
            "jobName": {"S": job_name},
            "durations": {"L": [{"N": str(Decimal(str(round(d, 3))))} for d in kept]},
            "updatedAt": {"S": now.isoformat()},
            "expiresAt": {"N": str(int((now + timedelta(days=TTL_DAYS)).timestamp()))},
        }
        try:
            self._client.put_item(TableName=self._table, Item=item)
        except (ClientError, BotoCoreError) as error:
            _unavailable("write", error)


def _usable_name(job_name: str | None) -> bool:
    return bool(job_name) and len(job_name.encode()) <= _MAX_NAME_BYTES


def _unavailable(action: str, error: Exception) -> None:
    metrics.add_metric(name="HistoryUnavailable", unit=MetricUnit.Count, value=1)
    logger.warning(
        "Duration history unavailable; polling without it", extra={"action": action, "error": type(error).__name__}
    )

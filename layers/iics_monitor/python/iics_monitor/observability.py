"""Logger, Tracer and Metrics, created once and imported everywhere.

Service name and namespace come from POWERTOOLS_* variables set in the template's Globals. Every
log record is scrubbed as it is written (``iics_monitor.scrub``): its message, its extra keys and an
exception's text alike. The Tracer records no metadata of ours; what Powertools records (the
handler's result, an exception) is the same scrubbed text the state machine gets.

Each metric name is a custom metric CloudWatch bills by the month (docs/cost.md). With the template's
``Observability=Minimal`` (variable ``OBSERVABILITY``) only the metrics added with ``minimal=True``
are published: the job outcomes. The systemic alarms read AWS's own metrics, which cost nothing.
"""

import logging
import os

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

LOG_RECORD_LIMIT = 256 * 1024  # CloudWatch Logs takes events of up to 256 KiB


class ScrubbingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON log line, scrubbed whole: a secret may sit in any key, JSON-escaped."""

    def format(self, record: logging.LogRecord) -> str:
        # Looked up per record (a dictionary lookup), not bound at import: Powertools keeps a service's
        # first formatter for the life of the process, and the local stack loads the layer afresh at
        # each of its cold starts; the scrubber must be the one the current client remembers into.
        from iics_monitor import scrub

        return scrub.scrub(super().format(record), LOG_RECORD_LIMIT)


MODES = ("Full", "Minimal")


class MonitorMetrics(Metrics):
    """Powertools' Metrics that, in Minimal mode, drop every metric not marked ``minimal``."""

    def add_metric(self, name: str, unit: str, value: float, resolution: int = 60, *, minimal: bool = False) -> None:
        if minimal or _mode() == "Full":
            super().add_metric(name=name, unit=unit, value=value, resolution=resolution)


def _mode() -> str:
    # Read per metric, not at import: a few dictionary lookups per invocation, and the tests switch it.
    mode = os.environ.get("OBSERVABILITY", "Full")  # outside the stack nothing is held back
    if mode not in MODES:
        raise ValueError(f"OBSERVABILITY must be {' or '.join(MODES)}, not {mode!r}")
    return mode


logger = Logger(logger_formatter=ScrubbingFormatter())
tracer = Tracer()
metrics = MonitorMetrics()

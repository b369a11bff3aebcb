"""Live progress from the local stack: one line per status check per job, as the functions return
(a check may poll IICS several times inline: its line shows the count so far).

Used as a listener: ``stack.on_invocation(Progress(out))``. It reads only what the functions
returned, so it shows exactly what the state machine saw.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from iics_monitor_local.stack import LambdaInvocation


class Progress:
    """Prints each status poll and each archive; remembers when each job's end was detected."""

    def __init__(self, out: TextIO = sys.stdout, labels: dict[str, str] | None = None) -> None:
        self.out = out
        self.labels = labels or {}  # job id -> what to call it
        self.started = time.time()
        self.detected_at: dict[str, float] = {}  # job id -> when a poll first saw it finished
        self._lock = threading.Lock()

    def __call__(self, invocation: LambdaInvocation) -> None:
        result, event = invocation.result, invocation.event
        if invocation.errored:
            job_id = _job_of(event)
            line = f"{self._label(job_id)} {result.get('errorType')}: {result.get('errorMessage')}"
        elif isinstance(result, dict) and "nextWaitSeconds" in result:
            job_id = result["jobId"]
            if result.get("outcome"):
                self.detected_at.setdefault(job_id, invocation.finished_at)
            line = self._poll_line(result)
        elif isinstance(result, dict) and "schemaVersion" in result:
            job_id = result["jobId"]
            where = result["log"]["key"] if result.get("log") else result.get("logError")
            line = f"{self._label(job_id)} archived -> {result['state']}  {where}"
        else:
            return
        with self._lock:
            print(f"{invocation.finished_at - self.started:6.1f}s  {line}", file=self.out, flush=True)

    def _label(self, job_id: str | None) -> str:
        return f"{self.labels.get(job_id or '', job_id or '?'):<18}"

    def _poll_line(self, result: dict) -> str:
        iics = result.get("iicsState") or "-"
        if result.get("outcome"):
            tail = f"-> {result['outcome']}"
        else:
            tail = f"next wait {result['nextWaitSeconds']}s"
        line = f"{self._label(result['jobId'])} poll {result['polls']:>2}  {iics:<12} {tail}"
        error = result.get("lastError")
        if error:
            line += f"   ({error['type']}: {error['message']})"
        return line


def _job_of(event: object) -> str | None:
    if not isinstance(event, dict):
        return None
    source = event.get("request") or event.get("poll") or {}
    return source.get("jobId") if isinstance(source, dict) else None

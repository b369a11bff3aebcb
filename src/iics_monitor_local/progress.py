"""Live progress from the local stack: one line per status check per job, as the functions return
(a check may poll IICS several times inline: its line shows the count so far). A promotion adds a
line when its export starts, its package is uploaded and its import started, and when it ends; its
jobs are named by step and org ("export dev", "import prod"), learnt from the start results.

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
        elif isinstance(result, dict) and "promotionId" in result:
            line = f"{'promotion':<18} {promotion_line(result)}"
        elif isinstance(result, dict) and "schemaVersion" in result:
            line = self._archive_line(result)
        elif isinstance(result, dict) and "outcome" in result and ("request" in result or "reason" in result):
            line = self._start_line(result)
        else:
            return
        with self._lock:
            print(f"{invocation.finished_at - self.started:6.1f}s  {line}", file=self.out, flush=True)

    def _label(self, job_id: str | None) -> str:
        return f"{self.labels.get(job_id or '', job_id or '?'):<18}"

    def _archive_line(self, result: dict) -> str:
        where = result["log"]["key"] if result.get("log") else result.get("logError")
        line = f"{self._label(result['jobId'])} archived -> {result['state']}  {where}"
        package = result.get("package")
        return line + (f", package {package['key']} ({package['sizeBytes']} bytes)" if package else "")

    def _start_line(self, result: dict) -> str:
        """A promotion's StartExport or StartImport result: the job it started, named from now on by its
        step and org, or why none started (only StartImport's refusal names a step)."""
        request = result.get("request") or {}
        step = "import" if request.get("kind") == "import" or "step" in result else "export"
        label = f"{step} {request.get('org') or ''}".strip()
        if result.get("outcome") is not None:
            where = f"stopped at step {result['step']}: " if result.get("step") else ""
            return f"{label:<18} {where}{result.get('reason')}"
        self.labels.setdefault(request["jobId"], label)
        if step == "import":
            return (
                f"{label:<18} uploaded the package to org {request.get('org')}, started import job {request['jobId']}"
            )
        return f"{label:<18} started export job {request['jobId']} ({request.get('name') or 'no name'})"

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


def promotion_line(detail: dict) -> str:
    """How a promotion ended, in one line: its state, and the step that failed and why."""
    if detail.get("failedStep"):
        return f"{detail.get('state')} at step {detail['failedStep']}: {detail.get('reason')}"
    return f"{detail.get('state')}" + (f" ({detail['reason']})" if detail.get("reason") else "")


def _job_of(event: object) -> str | None:
    if not isinstance(event, dict):
        return None
    source = event.get("request") or event.get("poll") or {}
    return source.get("jobId") if isinstance(source, dict) else None

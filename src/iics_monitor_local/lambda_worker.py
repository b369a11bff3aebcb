"""One Lambda execution environment: the process the local stack starts for a function (``lambda_runtime``).

Run as ``python -I lambda_worker.py '<settings JSON>'`` with exactly the function's environment. It imports
only the standard library itself, then does what the Lambda Python runtime does:

- init: puts the function's code folder, then its layers' folders, first on ``sys.path`` (as ``/var/task``
  and ``/opt/python``) and imports the handler once. A failed import is ``Runtime.ImportModuleError``;
- invoke, one at a time: runs the handler with a context whose deadline is the function's ``Timeout``,
  and answers its result, or the error the way Lambda reports it (``errorMessage``, ``errorType``,
  ``stackTrace``; a result that is not JSON is ``Runtime.MarshalError``).

Everything the function writes to stdout or stderr (prints, EMF metrics, Powertools' log lines, even a
C extension's) goes to the log file the parent names, as CloudWatch Logs receives it, with Lambda's
``START``, ``END`` and ``REPORT`` lines. The parent reads that file after each invocation, or after it
killed the process at the deadline. Requests and answers travel as JSON lines on the process's original
stdin and stdout, which the worker moves aside before any user code runs.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import threading
import time
import traceback


class _Context:
    """The Lambda context object: what handlers read of it."""

    def __init__(self, settings: dict, request: dict) -> None:
        self.function_name = settings["function_name"]
        self.function_version = "$LATEST"
        self.invoked_function_arn = settings["function_arn"]
        self.memory_limit_in_mb = int(settings["memory_mb"])
        self.aws_request_id = request["request_id"]
        self.log_group_name = settings["log_group"]
        self.log_stream_name = settings["log_stream"]
        self._deadline = time.monotonic() + float(settings["timeout_seconds"])

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _error(error: BaseException, error_type: str | None = None) -> dict:
    return {
        "errorMessage": str(error),
        "errorType": error_type or type(error).__name__,
        "stackTrace": traceback.format_tb(error.__traceback__),
    }


def _capture_output(log_path: str) -> tuple[object, object]:
    """Move the protocol pipes off fds 0 and 1, and send fds 1 and 2 to the log file."""
    requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.close(null)
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    return requests, answers


def _end_line(log_path: str) -> None:
    """Flush what the function wrote and end its last line, so Lambda's END line stands on its own."""
    sys.stdout.flush()
    sys.stderr.flush()
    with open(log_path, "rb") as log:
        size = log.seek(0, os.SEEK_END)
        log.seek(max(0, size - 1))
        last = log.read(1)
    if last not in (b"", b"\n"):
        print(flush=True)


def _leave_with_the_parent() -> None:
    """A container does not outlive its stack: exit when the process that started this one is gone."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _load_handler(settings: dict):
    for folder in reversed([settings["code_dir"], *settings["layer_dirs"]]):
        sys.path.insert(0, folder)
    module_name, function_name = settings["handler"].rsplit(".", 1)
    return getattr(importlib.import_module(module_name), function_name)


def _invoke(handler, settings: dict, request: dict) -> tuple[object, bool]:
    try:
        result = handler(json.loads(request["payload"]), _Context(settings, request))
    except Exception as error:  # noqa: BLE001 - reported as the Lambda runtime reports it
        return _error(error), True
    try:
        json.dumps(result)
    except (TypeError, ValueError) as error:
        return _error(error, "Runtime.MarshalError"), True
    return result, False


def main() -> None:
    settings = json.loads(sys.argv[1])
    _leave_with_the_parent()
    requests, answers = _capture_output(settings["log_path"])
    started = time.monotonic()
    try:
        handler, init_error = _load_handler(settings), None
    except Exception as error:  # noqa: BLE001 - Lambda reports a failed init to the invocation
        kind = "Runtime.ImportModuleError" if isinstance(error, ImportError) else None
        handler, init_error = None, _error(error, kind)
        traceback.print_exc()
    init_ms = (time.monotonic() - started) * 1000
    answers.write(json.dumps({"ready": True}) + "\n")
    answers.flush()
    for line in requests:
        request = json.loads(line)
        request_id = request["request_id"]
        print(f"START RequestId: {request_id} Version: $LATEST", flush=True)
        began = time.monotonic()
        result, errored = (init_error, True) if init_error else _invoke(handler, settings, request)
        duration_ms = (time.monotonic() - began) * 1000
        used_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        init = f"\tInit Duration: {init_ms:.2f} ms" if init_ms is not None else ""
        _end_line(settings["log_path"])
        print(f"END RequestId: {request_id}", flush=True)
        print(
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\tBilled Duration: "
            f"{max(1, round(duration_ms))} ms\tMemory Size: {settings['memory_mb']} MB\t"
            f"Max Memory Used: {used_mb} MB{init}",
            flush=True,
        )
        init_ms = None
        answers.write(json.dumps({"result": result, "errored": errored, "fatal": bool(init_error)}) + "\n")
        answers.flush()
        if init_error:
            return  # Lambda starts a new environment after a failed init


if __name__ == "__main__":
    main()

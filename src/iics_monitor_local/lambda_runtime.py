"""Lambda functions as containers: worker processes of their own (GAP lambda in stack.py).

moto runs Lambda code in Docker, which these machines do not have. The local stack runs each function
in worker processes (``lambda_worker.py``), started from the deployed function's configuration:

- the process's environment is exactly the function's (the template's Globals plus its own
  ``Environment``), plus what Lambda itself sets (``AWS_LAMBDA_FUNCTION_NAME``, ``AWS_REGION``, ...), the
  execution role's credentials, and the local stack's own: ``AWS_ENDPOINT_URL`` (the local AWS) and,
  when the stack allows it, ``ALLOW_LOOPBACK_HTTP``;
- its credentials are its execution role's, from STS AssumeRole against the local AWS, so each call is
  made as that role and IAM decides (``stack.py``, GAP iam);
- the first invocation of a worker is a cold start; later ones reuse it while it is warm. Up to
  ``workers`` invocations of one function run at once, each in its own process; more wait for a free one
  (Lambda would start another environment, up to the account's concurrency);
- the function's ``Timeout`` holds: a worker still running at its deadline is killed, and the invocation
  fails with ``Sandbox.Timedout``, as Lambda reports it to Step Functions;
- what the function writes is kept per invocation, as CloudWatch Logs keeps it.

``Runtime.reuse=False`` makes every invocation a cold start (a new container each time).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import shutil
import signal
import subprocess  # nosec B404
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WORKER = Path(__file__).with_name("lambda_worker.py")
INIT_TIMEOUT_SECONDS = 30.0  # Lambda allows 10 s; this machine's cold imports are slower under load
KILL_GRACE_SECONDS = 2.0


@dataclass(frozen=True)
class FunctionSpec:
    """What a worker is started from: the deployed function's configuration."""

    name: str
    arn: str
    handler: str
    code_dir: Path
    layer_dirs: tuple[Path, ...]
    environment: dict[str, str]
    timeout_seconds: float
    memory_mb: int
    role_arn: str


@dataclass
class Answer:
    result: Any
    errored: bool
    logs: str
    cold: bool
    fatal: bool = False  # the worker cannot serve again (its init failed): Lambda starts a new one
    started_at: float = 0.0  # when the worker got the request (time.time()): waiting for a worker excluded


class _Worker:
    """One execution environment: a process, its log file, and a reader of its answers."""

    def __init__(self, spec: FunctionSpec, environment: dict[str, str], log_dir: Path) -> None:
        self.log_path = log_dir / f"{spec.name}-{uuid.uuid4().hex[:8]}.log"
        settings = {
            "function_name": spec.name,
            "function_arn": spec.arn,
            "handler": spec.handler,
            "code_dir": str(spec.code_dir),
            "layer_dirs": [str(d) for d in spec.layer_dirs],
            "memory_mb": spec.memory_mb,
            "timeout_seconds": spec.timeout_seconds,
            "log_group": f"/aws/lambda/{spec.name}",
            "log_stream": f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}",
            "log_path": str(self.log_path),
        }
        # This interpreter running the project's own worker script, never a shell (bandit B404, B603).
        self.process = subprocess.Popen(  # noqa: S603  # nosec B603
            [sys.executable, "-I", str(WORKER), json.dumps(settings)],
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,  # each request is written whole at once: nothing stays buffered for a dead worker
            start_new_session=True,  # its own process group: a kill takes what the function started too
        )
        self.answers: queue.Queue[dict | None] = queue.Queue()
        threading.Thread(target=self._read_answers, name=f"lambda-{spec.name}", daemon=True).start()
        self.invocations = 0

    def _read_answers(self) -> None:
        for line in io.BufferedReader(self.process.stdout):
            self.answers.put(json.loads(line))
        self.answers.put(None)  # the process ended

    def wait_ready(self, timeout: float) -> bool:
        try:
            return bool(self.answers.get(timeout=timeout))
        except queue.Empty:
            return False

    def send(self, request: dict) -> bool:
        try:
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
            return True
        except OSError:  # the worker is gone
            return False

    def logs(self) -> str:
        """What the process wrote since the last call (the file is emptied for the next invocation)."""
        try:
            with self.log_path.open("r+", encoding="utf-8", errors="replace") as log:
                text = log.read()
                log.truncate(0)
            return text
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
                self.process.wait(KILL_GRACE_SECONDS)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        self.log_path.unlink(missing_ok=True)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@dataclass
class _Pool:
    spec: FunctionSpec
    idle: list[_Worker] = field(default_factory=list)
    running: int = 0


class Runtime:
    """Every function's workers. ``credentials(role_arn)`` gives a function's role credentials (the stack
    asks STS); ``local_environment`` is what the stack adds to every function's (endpoint, loopback)."""

    def __init__(
        self,
        credentials: Callable[[str, str], tuple[str, str, str]],
        local_environment: dict[str, str],
        *,
        workers: int = 4,
        reuse: bool = True,
    ) -> None:
        self._credentials = credentials
        self._local = local_environment
        self.workers = workers
        self.reuse = reuse
        self._pools: dict[str, _Pool] = {}
        self._changed = threading.Condition()
        self._log_dir = Path(tempfile.mkdtemp(prefix="iics-monitor-lambda-"))
        self._closed = False
        self._started: list[_Worker] = []
        self.in_flight = 0
        self.peak_in_flight = 0

    def invoke(self, spec: FunctionSpec, payload: str) -> Answer:
        """Run ``spec``'s function with ``payload`` (JSON) in one of its workers."""
        pool = self._pool(spec)
        worker, cold = self._acquire(pool)
        try:
            answer = self._run(spec, worker, payload)
        except BaseException:
            worker.kill()
            self._release(pool, worker, keep=False)
            raise
        answer.cold = cold
        keep = self.reuse and not answer.fatal and worker.process.poll() is None
        self._release(pool, worker, keep=keep)
        return answer

    def set_reuse(self, reuse: bool) -> None:
        """``reuse=False``: every invocation from now on starts a new worker; warm ones are retired."""
        with self._changed:
            self.reuse = reuse
            retired = [] if reuse else [w for pool in self._pools.values() for w in pool.idle]
            for pool in self._pools.values():
                if not reuse:
                    pool.idle.clear()
            for worker in retired:
                self._started.remove(worker)
        for worker in retired:
            worker.stop()

    def warm(self, spec: FunctionSpec, count: int) -> None:
        """Start workers (at once) until ``count`` wait warm for ``spec``'s function, as provisioned
        concurrency does."""
        pool = self._pool(spec)
        with self._changed:
            missing = 0 if self._closed else max(0, min(count, self.workers) - len(pool.idle) - pool.running)
            pool.running += missing
        with ThreadPoolExecutor(max_workers=max(1, missing)) as starting:
            started = list(starting.map(lambda _: self._start(spec), range(missing)))
        with self._changed:
            pool.running -= missing
            pool.idle.extend(started)
            self._changed.notify_all()

    def close(self) -> None:
        """End every worker: idle ones as Lambda retires them, running ones killed (the stack is gone)."""
        with self._changed:
            self._closed = True
            idle = [w for pool in self._pools.values() for w in pool.idle]
            running = [w for w in self._started if w not in idle]
            for pool in self._pools.values():
                pool.idle.clear()
            self._changed.notify_all()
        for worker in running:
            worker.kill()
        for worker in idle + running:
            worker.stop()
        shutil.rmtree(self._log_dir, ignore_errors=True)

    # --- workers -------------------------------------------------------------------------------

    def _pool(self, spec: FunctionSpec) -> _Pool:
        """The function's workers; a changed configuration gets new ones, as in Lambda."""
        with self._changed:
            pool = self._pools.get(spec.name)
            if pool is not None and pool.spec == spec:
                return pool
            stale = list(pool.idle) if pool is not None else []
            if pool is not None:
                pool.idle.clear()  # a caller still holding the old pool must not take a worker being stopped
            for worker in stale:
                self._started.remove(worker)
            self._pools[spec.name] = pool = _Pool(spec)
        for worker in stale:
            worker.stop()
        return pool

    def _acquire(self, pool: _Pool) -> tuple[_Worker, bool]:
        with self._changed:
            self._changed.wait_for(lambda: self._closed or pool.idle or pool.running < self.workers)
            if self._closed:
                raise RuntimeError("the local stack has closed")
            pool.running += 1
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            if pool.idle and self.reuse:
                return pool.idle.pop(), False
        try:
            return self._start(pool.spec), True
        except BaseException:
            self._release(pool, None, keep=False)
            raise

    def _release(self, pool: _Pool, worker: _Worker | None, *, keep: bool) -> None:
        with self._changed:
            pool.running -= 1
            self.in_flight -= 1
            current = self._pools.get(pool.spec.name) is pool
            if keep and worker is not None and current and not self._closed:
                pool.idle.append(worker)
                worker = None
            self._changed.notify_all()
        if worker is not None:
            worker.stop()
            with self._changed:
                self._started.remove(worker)

    def _start(self, spec: FunctionSpec) -> _Worker:
        environment = self._environment(spec)
        worker = _Worker(spec, environment, self._log_dir)
        with self._changed:
            self._started.append(worker)
        if not worker.wait_ready(INIT_TIMEOUT_SECONDS):
            ended = worker.process.poll()
            worker.kill()
            with self._changed:
                self._started.remove(worker)
            why = (
                f"exited with status {ended}" if ended is not None else f"did not start within {INIT_TIMEOUT_SECONDS} s"
            )
            raise RuntimeError(f"{spec.name}'s worker {why}: {worker.logs()[-2000:]}")
        return worker

    def _environment(self, spec: FunctionSpec) -> dict[str, str]:
        """The function's variables, what Lambda sets, the role's credentials, the local stack's own."""
        key, secret, token = self._credentials(spec.role_arn, spec.name)
        lambda_sets = {
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "AWS_REGION": self._local["AWS_REGION"],
            "AWS_DEFAULT_REGION": self._local["AWS_REGION"],
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_SESSION_TOKEN": token,
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "LANG": "C.UTF-8",  # Lambda: en_US.UTF-8; a locale this machine may lack (Python would then set LC_CTYPE)
            "TZ": ":UTC",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        }
        return spec.environment | lambda_sets | self._local

    def _run(self, spec: FunctionSpec, worker: _Worker, payload: str) -> Answer:
        started_at = time.time()
        answer = self._exchange(spec, worker, payload, str(uuid.uuid4()))
        answer.started_at = started_at
        return answer

    def _exchange(self, spec: FunctionSpec, worker: _Worker, payload: str, request_id: str) -> Answer:
        if not worker.send({"request_id": request_id, "payload": payload}):
            return self._exited(worker, request_id)
        deadline = time.monotonic() + spec.timeout_seconds
        try:
            answer = worker.answers.get(timeout=spec.timeout_seconds)
        except queue.Empty:
            worker.kill()
            message = f"RequestId: {request_id} Error: Task timed out after {spec.timeout_seconds:.2f} seconds"
            logs = worker.logs() + f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}\n"
            return Answer({"errorType": "Sandbox.Timedout", "errorMessage": message}, True, logs, False)
        if answer is None:
            return self._exited(worker, request_id, deadline - time.monotonic())
        worker.invocations += 1
        fatal = bool(answer.get("fatal"))
        return Answer(answer["result"], bool(answer["errored"]), worker.logs(), False, fatal=fatal)

    @staticmethod
    def _exited(worker: _Worker, request_id: str, seconds_left: float = KILL_GRACE_SECONDS) -> Answer:
        """The worker ended without answering (or closed its answer pipe: then it is killed)."""
        try:
            code = worker.process.wait(max(0.0, seconds_left))
        except subprocess.TimeoutExpired:
            worker.kill()
            code = worker.process.returncode
        message = f"RequestId: {request_id} Error: Runtime exited with error: exit status {code}"
        return Answer({"errorType": "Runtime.ExitError", "errorMessage": message}, True, worker.logs(), False, True)

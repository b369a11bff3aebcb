"""The worker runtime on its own (no AWS): what a function that misbehaves gets, as Lambda gives it."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest

from iics_monitor_local.lambda_runtime import FunctionSpec, Runtime


def spec_for(tmp_path: Path, code: str, timeout: float = 2.0) -> FunctionSpec:
    folder = tmp_path / "function"
    folder.mkdir(exist_ok=True)
    (folder / "app.py").write_text(textwrap.dedent(code))
    return FunctionSpec(
        name="fn",
        arn="arn:aws:lambda:us-east-1:123456789012:function:fn",
        handler="app.handler",
        code_dir=folder,
        layer_dirs=(),
        environment={},
        timeout_seconds=timeout,
        memory_mb=128,
        role_arn="arn:aws:iam::123456789012:role/r",
    )


@pytest.fixture
def runtime():
    runtime = Runtime(lambda role, name: ("AKID", "secret", "token"), {"AWS_REGION": "us-east-1"}, workers=2)
    yield runtime
    runtime.close()


def invoke(runtime: Runtime, spec: FunctionSpec, **event):
    return runtime.invoke(spec, json.dumps(event))


@pytest.mark.parametrize(
    ("code", "error_type"),
    [("import no_such_module\n", "Runtime.ImportModuleError"), ("raise ValueError('bad setting')\n", "ValueError")],
    ids=["import", "exception"],
)
def test_a_failed_init_fails_every_invocation_the_same_way(runtime, tmp_path, code, error_type):
    spec = spec_for(tmp_path, code + "def handler(event, context):\n    return 1\n")

    answers = [invoke(runtime, spec) for _ in range(3)]

    assert [(a.errored, a.result["errorType"]) for a in answers] == [(True, error_type)] * 3
    assert all(a.cold for a in answers)  # each time a new container: the failed one is not reused


def test_without_reuse_a_warm_worker_is_retired_and_the_next_invocation_is_cold(runtime, tmp_path):
    spec = spec_for(tmp_path, "import os\ndef handler(event, context):\n    return os.getpid()\n")
    first, second = invoke(runtime, spec), invoke(runtime, spec)
    assert first.result == second.result and second.cold is False

    runtime.set_reuse(False)
    third = invoke(runtime, spec)

    assert third.cold and third.result != second.result


def test_a_function_that_closes_its_answer_pipe_still_ends_at_its_timeout(runtime, tmp_path):
    code = "import os, time\ndef handler(event, context):\n    os.closerange(3, 256)\n    time.sleep(30)\n"
    spec = spec_for(tmp_path, code, timeout=1.0)

    started = time.monotonic()
    answer = invoke(runtime, spec)

    assert answer.errored and time.monotonic() - started < 1.0 + 3


def test_what_a_timed_out_function_started_is_killed_with_it(runtime, tmp_path):
    code = """
        import subprocess, sys, time
        def handler(event, context):
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            print(f"child={child.pid}", flush=True)
            time.sleep(30)
    """
    answer = invoke(runtime, spec_for(tmp_path, code, timeout=1.0))

    assert answer.result["errorType"] == "Sandbox.Timedout"
    child = int(answer.logs.split("child=")[1].split()[0])
    deadline = time.monotonic() + 2  # SIGKILL is delivered, not waited for
    while running(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(child)


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's exit may wait for a reaper that this machine's init is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_output_without_a_final_newline_does_not_run_into_lambdas_end_line(runtime, tmp_path):
    code = "import sys\ndef handler(event, context):\n    sys.stdout.write('no newline')\n    return 1\n"

    answer = invoke(runtime, spec_for(tmp_path, code))

    assert "\nno newline\nEND RequestId: " in answer.logs

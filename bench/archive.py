"""Archive bench: a 1 GiB export log streamed from IICS to S3 by the real archiver, against a naive worker.

Everything runs on 127.0.0.1, each part in its own process so that only the archiving is measured:

- S3 (and Secrets Manager): moto's ThreadedMotoServer in a child process, on a free port.
- IICS: the emulator (``python -m iics_monitor_local.emulator --port 0 --scenario FILE``), one finished
  job whose generated log is ``--size-mib`` MiB. The emulator makes it while sending it (``log_size``,
  docs/emulator.md), so it never holds the log.
- Each run: a fresh worker process (``python -m bench.archive --worker ours|naive``) with the archive
  function's environment (template Globals, ARCHIVE_BUCKET, ARCHIVE_PREFIX) and AWS_ENDPOINT_URL
  pointing boto3 at moto. Both workers build the IICS client as the handler does
  (``runtime.archive_config()``, ``runtime.iics_client``: credentials from the secret through
  Powertools), and, like ``finish_job``, first fetch the status with objects and store status.json.
  That logs in and warms the S3 client; it is not measured. Then the measured step:
  - ours: ``open_log`` + ``LogArchiver.put_log`` from ``runtime.log_archiver``, as
    ``finish._archive_log`` calls them: a multipart upload streamed from the HTTP response (8 MiB
    parts), hashed on the way, then a small ``export.log.sha256`` object beside it (a log of one
    chunk or less is one ``put_object`` carrying its sha256 as metadata instead).
  - naive: the same ``open_log``, read whole into memory, its sha256, then one ``put_object`` with
    the same content type and metadata (sha256 included), so both end in the same object.

Memory: peak RSS growth over the measured step. After the warm-up the worker runs the garbage
collector, writes "5" to /proc/self/clear_refs, which resets the kernel's peak-RSS mark (VmHWM) to
the current RSS, and reads VmRSS as the baseline; after the step, growth = VmHWM - baseline. So
imports, clients and the connection pools are not counted (they do not depend on the log's size),
while everything the step touches is, threads' stacks and buffers included, which is what Lambda's
memory limit sees. Without clear_refs (not Linux) it falls back to ru_maxrss minus ru_maxrss after
the warm-up, and says so.

Time: ``time.perf_counter()`` around the step in the worker; throughput = log MiB / seconds, and the
ratio = ours / naive, from the medians. Runs alternate (ours, naive, ours, ...) because the machine
is shared with moto and the emulator (2 cores: the three processes compete for them).

Verification: before the runs the bench reads the log from the emulator and hashes it; after each
run it streams the stored object back from S3 and checks its size, its sha256, the recorded sha256
(metadata, or the ``.sha256`` object beside it) and what the worker reported, then deletes them.

Caveats. boto3 signs payloads (sha256) over plain http, which it does not do over https to real S3:
both workers pay that. (The archiver used to add the sha256 by copying the object onto itself; moto
answers UploadPartCopy by reading the whole object for every 8 MiB part, and the copy cost 104 s of a
115 s run at 1 GiB. It now writes the sha256 beside the object instead; see bench/README.md.)

    python -m bench.archive [--size-mib 1024 --rounds 3 --budget-s 180 --output bench/results.json]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from bench.cold_start import AWS_ENV, LAYER_PYTHON, ROOT, _python, _table, function_env
from bench.results import RESULTS, merge_results

MIB = 1024 * 1024
RSS_TARGET_MIB = 64.0
RATIO_TARGET = 1.0
WORKERS = ("ours", "naive")

BUCKET = "bench-archive"
SECRET_NAME = "iics/bench-archive"  # noqa: S105 - a name, not a secret
JOB_ID = "BenchArchive0000000001"
USERNAME, PASSWORD = "bench", "bench-password"  # the emulator's made-up account
STATE = "SUCCESSFUL"
FAKE_AWS_KEYS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}  # moto accepts any
BUDGET_S = 180.0  # rounds stop once another would not fit (the first always runs)
WORKER_TIMEOUT_S = 600.0

MOTO_SERVER = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print("moto listening on", server.get_host_and_port()[1], flush=True)
sys.stdin.read()  # serves until the bench closes this pipe
"""


# --- Child servers -------------------------------------------------------------------------------


@contextlib.contextmanager
def child_server(name: str, argv: Sequence[str], ready: str, log: IO[str]) -> Iterator[str]:
    """Start a server process and yield the rest of its first stdout line, which must start with ``ready``."""
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
        argv, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # "" if the process died
        if not line.startswith(ready):
            log.flush()
            raise RuntimeError(f"the {name} did not start:\n{Path(log.name).read_text()[-2000:]}")
        yield line.removeprefix(ready).strip()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def scenario(size_bytes: int) -> dict[str, Any]:
    job = {"id": JOB_ID, "name": "bench-export", "states": [STATE], "log_size": size_bytes}
    return {"username": USERNAME, "password": PASSWORD, "jobs": [job]}


# --- The worker (a fresh process per run) ---------------------------------------------------------


def _proc_status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak_rss() -> tuple[int, str]:
    """(baseline KiB, method): resets the peak-RSS mark to the current RSS where Linux allows it."""
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _proc_status_kib("VmRSS"), "VmHWM"
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "ru_maxrss"


def peak_rss_kib(method: str) -> int:
    return _proc_status_kib("VmHWM") if method == "VmHWM" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_worker(kind: str) -> dict[str, Any]:
    """Warm up as finish_job does, then archive the log once and measure that step."""
    import boto3

    from iics_monitor import runtime
    from iics_monitor.archive import LOG_CONTENT_TYPE

    # The handler's S3 clients come from boto3's default session, so a hook registered on it reaches
    # them: it stamps when the log's bytes are stored, before the archiver records the sha256.
    boto3.setup_default_session()
    stored_at: list[float] = []
    for operation in ("PutObject", "CompleteMultipartUpload"):
        boto3.DEFAULT_SESSION.events.register(
            f"after-call.s3.{operation}", lambda **_: stored_at.append(time.perf_counter())
        )

    config = runtime.archive_config()
    client = runtime.iics_client_for(config)
    now = datetime.now(UTC)
    status = client.get_status(JOB_ID, expand_objects=True)

    if kind == "ours":
        archiver = runtime.log_archiver(config.bucket, config.prefix)
        archiver.put_status(JOB_ID, status, now)

        def step() -> dict[str, Any]:
            with client.open_log(JOB_ID) as stream:
                return archiver.put_log(JOB_ID, STATE, stream, now).to_dict()

    else:
        s3 = boto3.client("s3")
        folder = f"{config.prefix}{now:%Y/%m/%d}/{JOB_ID}/"
        s3.put_object(Bucket=config.bucket, Key=folder + "status.json", Body=json.dumps(status).encode())

        def step() -> dict[str, Any]:
            with client.open_log(JOB_ID) as stream:
                data = stream.read()
            digest = hashlib.sha256(data).hexdigest()
            metadata = {"job-id": JOB_ID, "state": STATE, "sha256": digest}
            key = folder + "export.log"
            s3.put_object(Bucket=config.bucket, Key=key, Body=data, ContentType=LOG_CONTENT_TYPE, Metadata=metadata)
            return {"bucket": config.bucket, "key": key, "sizeBytes": len(data), "sha256": digest}

    baseline_kib, method = reset_peak_rss()
    started = time.perf_counter()
    stored = step()
    seconds = time.perf_counter() - started
    peak_kib = peak_rss_kib(method)
    upload_seconds = next(t for t in stored_at if t > started) - started
    return {
        "worker": kind,
        "seconds": seconds,
        "upload_seconds": upload_seconds,
        "after_upload_seconds": seconds - upload_seconds,
        "baseline_rss_mib": baseline_kib / 1024,
        "peak_rss_growth_mib": (peak_kib - baseline_kib) / 1024,
        "rss_method": method,
        "stored": stored,
    }


# The archive function's tables, off for the workers: their moto has none of them (only the bucket and
# the secret), and what they hold (durations, request counts, verdicts on a secret) is not the archive
# step's work. Left set, the worker's login would look up a verdict table that is not there (NotSent).
TABLES_OFF = {"HISTORY_TABLE": "", "IICS_REQUESTS_PER_SECOND": "0", "IICS_REQUEST_TABLE": "", "VERDICT_TABLE": ""}


def worker_env(endpoint: str, kind: str) -> dict[str, str]:
    """The archive function's environment from template.yaml, pointed at this bench's servers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "PYTHON"))}
    env |= AWS_ENV | function_env("archive_log") | TABLES_OFF | FAKE_AWS_KEYS
    env |= {
        "AWS_ENDPOINT_URL": endpoint,
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "IICS_SECRET_NAME": SECRET_NAME,
        "ARCHIVE_BUCKET": BUCKET,
        "ARCHIVE_PREFIX": f"{kind}/",
        "ALLOW_LOOPBACK_HTTP": "true",  # the emulator listens on 127.0.0.1, as for the local stack
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(LAYER_PYTHON)]),
    }
    return env


def spawn_worker(endpoint: str, kind: str) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [_python(), "-m", "bench.archive", "--worker", kind],
        env=worker_env(endpoint, kind),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=WORKER_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the {kind} worker failed:\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - started
    return result


# --- Expected bytes and verification -------------------------------------------------------------


@dataclass(frozen=True)
class Digest:
    size: int
    sha256: str


def digest_chunks(chunks: Iterator[bytes]) -> Digest:
    sha256, size = hashlib.sha256(), 0
    for chunk in chunks:
        sha256.update(chunk)
        size += len(chunk)
    return Digest(size, sha256.hexdigest())


def source_digest(login_url: str) -> Digest:
    """The log as the emulator serves it, read and hashed in pieces."""
    from iics_monitor.client import IicsClient
    from iics_monitor.credentials import Credentials
    from iics_monitor.hosts import HostPolicy

    credentials = Credentials(username=USERNAME, password=PASSWORD, login_url=login_url)
    client = IicsClient(lambda: credentials, hosts=HostPolicy(loopback_http=True))
    with client.open_log(JOB_ID) as stream:
        return digest_chunks(iter(lambda: stream.read(MIB), b""))


def verify_and_delete(s3: Any, stored: dict[str, Any], expected: Digest) -> dict[str, Any]:
    """Read the stored log back from S3, compare it with the source, then delete the job's objects."""
    head = s3.head_object(Bucket=stored["bucket"], Key=stored["key"])
    body = s3.get_object(Bucket=stored["bucket"], Key=stored["key"])["Body"]
    actual = digest_chunks(body.iter_chunks(MIB))
    recorded = head["Metadata"].get("sha256")
    if recorded is None:  # a multipart log: its sha256 sits beside it, in sha256sum's format
        sidecar = s3.get_object(Bucket=stored["bucket"], Key=stored["key"] + ".sha256")["Body"].read().decode()
        recorded = sidecar.split(" ", 1)[0]
    checks = {
        "size": actual.size == expected.size == head["ContentLength"] == stored["sizeBytes"],
        "sha256": actual.sha256 == expected.sha256 == stored["sha256"],
        "recorded_sha256": recorded == expected.sha256,
        "content_type": head["ContentType"].startswith("text/plain"),
    }
    folder = stored["key"].rsplit("/", 1)[0] + "/"
    for key in (stored["key"], stored["key"] + ".sha256", folder + "status.json"):
        s3.delete_object(Bucket=stored["bucket"], Key=key)
    return {"verified": all(checks.values()), "checks": checks}


# --- The run -------------------------------------------------------------------------------------


def run_bench(size_mib: int, rounds: int, budget_s: float = BUDGET_S) -> tuple[dict[str, Any], float]:
    """Up to ``rounds`` rounds (ours, then naive), as many as fit in ``budget_s`` after the first."""
    import boto3

    size_bytes = size_mib * MIB
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-archive-")))
        scenario_file = tmp / "scenario.json"
        scenario_file.write_text(json.dumps(scenario(size_bytes)))
        moto_log = stack.enter_context((tmp / "moto.log").open("w"))
        emulator_log = stack.enter_context((tmp / "emulator.log").open("w"))
        port = stack.enter_context(
            child_server("moto server", [_python(), "-c", MOTO_SERVER], "moto listening on ", moto_log)
        )
        endpoint = f"http://127.0.0.1:{port}"
        login_url = stack.enter_context(
            child_server(
                "IICS emulator",
                [_python(), "-m", "iics_monitor_local.emulator", "--port", "0", "--scenario", str(scenario_file)],
                "IICS emulator listening on ",
                emulator_log,
            )
        )
        aws = {"endpoint_url": endpoint, "region_name": AWS_ENV["AWS_REGION"]}
        aws |= {name.lower(): value for name, value in FAKE_AWS_KEYS.items()}  # aws_access_key_id=...
        s3 = boto3.client("s3", **aws)
        s3.create_bucket(Bucket=BUCKET)
        secret = {"username": USERNAME, "password": PASSWORD, "loginUrl": login_url}
        boto3.client("secretsmanager", **aws).create_secret(Name=SECRET_NAME, SecretString=json.dumps(secret))
        expected = source_digest(login_url)
        if expected.size != size_bytes:
            raise RuntimeError(f"the emulator served {expected.size} bytes, not {size_bytes}")
        runs: list[dict[str, Any]] = []
        for _ in range(rounds):
            round_started = time.perf_counter()
            for kind in WORKERS:
                run = spawn_worker(endpoint, kind)
                run |= verify_and_delete(s3, run["stored"], expected)
                runs.append(run)
            now = time.perf_counter()
            if now - started + (now - round_started) > budget_s:
                break
    elapsed = time.perf_counter() - started
    return report(runs, expected), elapsed


def report(runs: Sequence[dict[str, Any]], expected: Digest) -> dict[str, Any]:
    size_mib = expected.size / MIB
    workers = {}
    for kind in WORKERS:
        mine = [r for r in runs if r["worker"] == kind]
        seconds = statistics.median(r["seconds"] for r in mine)
        workers[kind] = {
            "median_seconds": round(seconds, 2),
            "median_upload_seconds": round(statistics.median(r["upload_seconds"] for r in mine), 2),
            "median_after_upload_seconds": round(statistics.median(r["after_upload_seconds"] for r in mine), 2),
            "mib_per_s": round(size_mib / seconds, 1),
            "peak_rss_growth_mib": round(max(r["peak_rss_growth_mib"] for r in mine), 1),
            "baseline_rss_mib": round(statistics.median(r["baseline_rss_mib"] for r in mine), 1),
            "verified": all(r["verified"] for r in mine),
            "runs_seconds": [round(r["seconds"], 2) for r in mine],
            "runs_peak_rss_growth_mib": [round(r["peak_rss_growth_mib"], 1) for r in mine],
            "runs_process_seconds": [round(r["process_seconds"], 1) for r in mine],
        }
    ours, naive = workers["ours"], workers["naive"]
    ratio = naive["median_seconds"] / ours["median_seconds"]
    return {
        "method": "moto server and IICS emulator in their own processes on 127.0.0.1; a fresh worker process"
        " per run (ours: runtime.iics_client + runtime.log_archiver, open_log + put_log; naive: open_log read"
        " whole + one put_object); peak RSS growth = VmHWM after the step - VmRSS after clear_refs;"
        " runs alternate ours, naive",
        "rss_method": runs[0]["rss_method"],
        "python": sys.version.split()[0],
        "log_bytes": expected.size,
        "log_sha256": expected.sha256,
        "rounds": len(runs) // len(WORKERS),
        "workers": workers,
        "throughput_ratio": round(ratio, 2),
        "targets": {"peak_rss_growth_mib": RSS_TARGET_MIB, "throughput_ratio": RATIO_TARGET},
        "pass": {
            "memory": ours["peak_rss_growth_mib"] <= RSS_TARGET_MIB,
            "throughput": ratio >= RATIO_TARGET,
            "verified": ours["verified"] and naive["verified"],
        },
    }


# --- Output --------------------------------------------------------------------------------------


def format_report(result: dict[str, Any], elapsed_s: float) -> str:
    labels = {"ours": "ours (LogArchiver.put_log, streamed)", "naive": "naive (read whole, one put_object)"}
    rows = [
        (
            labels[kind],
            f"{w['mib_per_s']:.1f}",
            f"{w['median_seconds']:.2f}",
            f"{w['median_upload_seconds']:.2f}",
            f"{w['median_after_upload_seconds']:.2f}",
            f"{w['peak_rss_growth_mib']:.1f}",
            "yes" if w["verified"] else "NO",
        )
        for kind, w in result["workers"].items()
    ]
    header = ("worker", "MiB/s", "median s", "upload s", "sha256 record s", "peak RSS growth MiB", "bytes verified")
    table = _table(header, rows)
    ours, naive = result["workers"]["ours"], result["workers"]["naive"]
    passed = result["pass"]
    return "\n".join(
        [
            f"Python {result['python']}, a {result['log_bytes'] / MIB:.0f} MiB log, {result['rounds']} round(s)"
            f" of fresh worker processes, alternating; RSS by {result['rss_method']}",
            "",
            table,
            "",
            f"{'PASS' if passed['memory'] else 'GAP '} peak RSS growth <= {RSS_TARGET_MIB:g} MiB:"
            f" ours {ours['peak_rss_growth_mib']} MiB (naive {naive['peak_rss_growth_mib']} MiB)",
            f"{'PASS' if passed['throughput'] else 'GAP '} throughput >= {RATIO_TARGET:g}x naive:"
            f" {result['throughput_ratio']}x ({ours['mib_per_s']} vs {naive['mib_per_s']} MiB/s)",
            f"{'PASS' if passed['verified'] else 'FAIL'} stored objects match the source log"
            f" (size, sha256, recorded sha256)",
            f"measured in {elapsed_s:.1f} s",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="size of the export log (default 1024)")
    parser.add_argument("--rounds", type=int, default=3, help="at most this many runs of each worker, alternating")
    parser.add_argument("--budget-s", type=float, default=BUDGET_S, help="no new round past this (default 180)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="results JSON (default: bench/results.json)")
    parser.add_argument("--worker", choices=WORKERS, help=argparse.SUPPRESS)  # inside a worker process
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(args.worker)), flush=True)
        return 0
    result, elapsed = run_bench(args.size_mib, args.rounds, args.budget_s)
    result["elapsed_seconds"] = round(elapsed, 1)
    merge_results(args.output, {"archive": result})
    print(format_report(result, elapsed))
    print(f"wrote {args.output}")
    return 0 if result["pass"]["verified"] else 1


if __name__ == "__main__":
    sys.exit(main())

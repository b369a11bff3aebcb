"""Scale bench: many concurrent jobs against one IICS org with a rate limit, and the rate IICS sees.

    python -m bench.scale [--jobs 200 --rate-limit 20 --seed 1 --workers 4]

One seeded plan (durations log-uniform, seconds to two minutes; some jobs FAILED), run twice against
an IICS whose token bucket answers 429 with Retry-After once the org makes more than
``--rate-limit`` requests a second to the export resource:

1. Through the local stack (``iics_monitor_local.stack``: the real template, state machine and
   handlers, each function in worker processes of its own, up to ``workers`` invocations of one
   function at once) and the IICS emulator. Each job is announced on the bus the moment the emulator
   creates it. Checks: every job ends with its correct outcome event exactly once, its log archived
   byte for byte; invocations of different executions really ran at the same time (``harness_load``).
2. In virtual time (``model_run``): every job announced at t = 0, each check made by the real check
   code. The local stack announces one job after another (``submit`` returns once the job's
   StartMonitor invocation has run), so it never has all 200 young at once.

Poll waits are small (``PARAMETERS``), so the run fits in minutes and the jobs together ask for
more than the limit. Measured from every request IICS saw (every route, 429s included): the peak
rate in 1 s buckets and over a sliding 5 s window, the first 429 (backoff engages), and the peaks
after it. Pass: outcomes correct, and the 5 s rate after the first 429 at or below the limit (a
single second may exceed it: the bucket allows a burst of one second's worth). Results merge into
bench/results.json under "scale"; method and figures in bench/README.md and docs/scaling.md.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import heapq
import io
import math
import random
import re
import statistics
import string
import sys
import time
from collections import Counter
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from bench.results import RESULTS, merge_results
from iics_monitor.archive import FETCH_ATTEMPTS, MAX_RETRY_SLEEP_SECONDS
from iics_monitor.check import check_or_report
from iics_monitor.config import CheckConfig
from iics_monitor.errors import Throttled
from iics_monitor.observability import logger, metrics
from iics_monitor.validation import MonitorSettings
from iics_monitor_local.emulator import IicsEmulator, RecordedRequest
from iics_monitor_local.stack import WORKERS_PER_FUNCTION, LambdaInvocation, LocalStack, quiet_moto

USERNAME = "scale@example.com"
PASSWORD = "scale-password-never-printed"  # noqa: S105 - the emulator's made-up user

# Small waits so that 200 jobs finish in minutes; the deadline is far enough that none times out.
# Every wait is a Wait state (InlineWaitSeconds=0; the template's default is 45), in the local run as in
# the model: with waits scaled down to 10 s, the default would have each job's check sleep in one
# invocation for the job's whole life. Lambda would run 200 of those at once; the local stack runs at most
# ``workers`` of one function at once, so the other jobs would go unpolled while they queue for a worker.
PARAMETERS = {"InitialWaitSeconds": 1, "MaxWaitSeconds": 10, "TimeoutSeconds": 900, "InlineWaitSeconds": 0}
# The stack-wide budget (IicsRequestsPerSecond) the run sets: 80% of the org's limit, because aligned
# one-second windows of N requests keep any 5 s window within 1.2 N (iics_monitor.ratelimit).
BUDGET_SHARE = 0.8


def budget_for(rate_limit: float) -> int:
    return max(1, math.floor(BUDGET_SHARE * rate_limit))


MIN_DURATION_S = 5.0
MAX_DURATION_S = 120.0
FAILED_SHARE = 0.15
WINDOW_S = 5.0
THROTTLED = 429
_JOB_IN_PATH = re.compile(r"/export/(?P<job_id>[A-Za-z0-9]+)")


@dataclass(frozen=True)
class PlannedJob:
    name: str
    seconds: float
    final: str


def plan_jobs(jobs: int, seed: int, min_s: float = MIN_DURATION_S, max_s: float = MAX_DURATION_S) -> list[PlannedJob]:
    """Durations log-uniform from ``min_s`` to ``max_s``; FAILED_SHARE of them fail (seeded)."""
    rng = random.Random(seed)  # noqa: S311 - a seeded plan, not cryptography
    low, high = math.log(min_s), math.log(max_s)
    return [
        PlannedJob(
            name=f"scale-{number:03d}",
            seconds=round(math.exp(rng.uniform(low, high)), 1),
            final="FAILED" if rng.random() < FAILED_SHARE else "SUCCESSFUL",
        )
        for number in range(jobs)
    ]


# --- Rates from recorded requests -----------------------------------------------------------------


def per_second(times: Sequence[float], throttled: Sequence[float]) -> list[tuple[int, int]]:
    """(requests, of which 429) in each whole second since 0."""
    seconds = math.floor(max(times, default=0.0)) + 1
    total, refused = Counter(math.floor(t) for t in times), Counter(math.floor(t) for t in throttled)
    return [(total[s], refused[s]) for s in range(seconds)]


def window_counts(times: Sequence[float], window: float) -> list[int]:
    """For each request i (``times`` sorted), how many requests fall in [times[i], times[i] + window).

    The busiest window starts at a request, so these starts are the only ones worth trying."""
    return [bisect.bisect_left(times, t + window) - i for i, t in enumerate(times)]


def peak_window_rate(times: Sequence[float], window: float, since: float = -math.inf) -> float:
    """The highest rate over any window [t, t + window) with t >= ``since``: count / window."""
    counts = window_counts(times, window)
    return max((n for t, n in zip(times, counts, strict=True) if t >= since), default=0) / window


@dataclass
class RateReport:
    """What IICS saw, with times in seconds since the first job was announced. Every call counts,
    whatever the route (login, status, log, package) and whether it was answered or refused (429)."""

    limit: float
    calls: int
    throttled: int
    by_route: dict[str, int]
    peak_1s: int
    peak_5s: float
    first_429_s: float | None
    peak_1s_after_first_429: int | None
    peak_5s_after_first_429: float | None
    over_limit_until_s: float | None  # start of the last 5 s window above the limit
    peak_accepted_5s: float  # the rate IICS let through (non-429)
    per_second: list[tuple[int, int]]

    @property
    def within_limit(self) -> bool:
        """Over 5 s windows: after the first 429 when IICS throttled, else over the whole run."""
        peak = self.peak_5s if self.first_429_s is None else self.peak_5s_after_first_429
        return peak <= self.limit


def rate_report(requests: Sequence[RecordedRequest], start: float, limit: float) -> RateReport:
    times = sorted(r.time - start for r in requests)
    refused = sorted(r.time - start for r in requests if r.status == THROTTLED)
    accepted = sorted(r.time - start for r in requests if r.status != THROTTLED)
    buckets = per_second(times, refused)
    counts = window_counts(times, WINDOW_S)
    over = [t for t, n in zip(times, counts, strict=True) if n / WINDOW_S > limit]
    first = refused[0] if refused else None
    after = None if first is None else [n for second, (n, _) in enumerate(buckets) if second >= math.floor(first)]
    return RateReport(
        limit=limit,
        calls=len(times),
        throttled=len(refused),
        by_route=dict(Counter(f"{r.route} {r.status}" for r in requests).most_common()),
        peak_1s=max((n for n, _ in buckets), default=0),
        peak_5s=peak_window_rate(times, WINDOW_S),
        first_429_s=first,
        peak_1s_after_first_429=None if after is None else max(after, default=0),
        peak_5s_after_first_429=None if first is None else peak_window_rate(times, WINDOW_S, since=first),
        over_limit_until_s=max(over, default=None),
        peak_accepted_5s=peak_window_rate(accepted, WINDOW_S),
        per_second=buckets,
    )


def retry_delays_after_429(requests: Sequence[RecordedRequest]) -> list[float]:
    """For each 429 about a job, seconds until that job's next request: how retries spread out."""
    last_refusal: dict[str, float] = {}
    delays = []
    for request in sorted(requests, key=lambda r: r.time):
        match = _JOB_IN_PATH.search(request.path)
        if not match:
            continue
        job_id = match["job_id"]
        if job_id in last_refusal:
            delays.append(request.time - last_refusal.pop(job_id))
        if request.status == THROTTLED:
            last_refusal[job_id] = request.time
    return delays


def peak_concurrency(executions: Sequence[dict]) -> int:
    """The most executions running at one moment, from their start and stop dates."""
    edges = []
    for execution in executions:
        edges.append((execution["startDate"].timestamp(), 1))
        if execution.get("stopDate"):
            edges.append((execution["stopDate"].timestamp(), -1))
    running = best = 0
    for _, step in sorted(edges):
        running += step
        best = max(best, running)
    return best


# --- The same plan in virtual time, without the harness ------------------------------------------
#
# The local stack announces jobs one after another and runs at most ``workers`` invocations of a function
# at once, so it never has 200 young jobs polling together. The model replays the plan with every job
# announced at t = 0 and every check made by the real ``check_or_report`` (the code behind
# functions/check_status) at a virtual time, against a token bucket with the emulator's rule. Each trip
# round the Wait loop adds a latency drawn from MODEL_LATENCY_S (state transitions and a Lambda
# invocation; an assumption), which also decides who comes first within a second. Like the local run
# (PARAMETERS), it makes every wait a trip round the Wait loop: no checks inside one invocation
# (InlineWaitSeconds=0), and it has no shared budget (IicsRequestsPerSecond), which the local run has.

# The archive step's IICS calls: final status with objects, log, package.
ARCHIVE_CALLS = ("status", "log", "package")
MODEL_LATENCY_S = (0.05, 0.3)
MODEL_MAX_POLLS = 1500  # the template's MaxPolls default; no job of the plan comes near it
_ID_ALPHABET = string.ascii_letters + string.digits
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class VirtualBucket:
    """The emulator's token bucket (a second's worth of burst) and its Retry-After, in virtual time."""

    def __init__(self, rate: float) -> None:
        self.rate, self.capacity = rate, max(rate, 1.0)
        self.tokens, self.stamp = self.capacity, 0.0

    def take(self, now: float) -> int | None:
        """None if a token was spent; else the Retry-After the emulator would send (whole seconds, >= 1)."""
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return max(1, math.ceil((1 - self.tokens) / self.rate))


class _ModelIics:
    """A StatusSource over the plan: each call takes a token or raises ``Throttled`` like the client does."""

    def __init__(self, plan: Sequence[PlannedJob], rate_limit: float, rng: random.Random) -> None:
        # Random 22-character ids like IICS's: the check derives its jitter from the job id.
        self.plan = {"".join(rng.choices(_ID_ALPHABET, k=22)): job for job in plan}
        self.bucket = VirtualBucket(rate_limit)
        self.now = 0.0
        self.requests: list[RecordedRequest] = []

    def call(self, job_id: str, route: str) -> int | None:
        """Make one call now; None if answered, else its Retry-After."""
        retry_after = self.bucket.take(self.now)
        status = THROTTLED if retry_after else 200
        self.requests.append(
            RecordedRequest("GET", f"/export/{job_id}", {}, b"", route=route, status=status, time=self.now)
        )
        return retry_after

    def get_status(self, job_id: str, *, expand_objects: bool = False) -> dict[str, Any]:
        retry_after = self.call(job_id, "status")
        if retry_after:
            raise Throttled("too many requests", retry_after=retry_after, status=THROTTLED)
        job = self.plan[job_id]
        ended = self.now >= job.seconds
        return {
            "id": job_id,
            "name": job.name,
            "startTime": _iso(0.0),
            "endTime": _iso(job.seconds) if ended else None,
            "status": {"state": job.final if ended else "IN_PROGRESS", "message": None},
            "objects": None,
        }


def _iso(seconds: float) -> str:
    return (_EPOCH + timedelta(seconds=seconds)).isoformat()


@contextlib.contextmanager
def _quiet_layer() -> Iterator[None]:
    """The check logs a warning per throttled call: keep those off the terminal."""
    level = logger.log_level
    logger.setLevel("ERROR")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def _check(event: dict, iics: _ModelIics, config: CheckConfig) -> dict:
    """One invocation of the check; its metrics are dropped where the handler's decorator would flush them."""
    try:
        return check_or_report(event, source=iics, config=config, now=_EPOCH + timedelta(seconds=iics.now))
    finally:
        metrics.clear_metrics()


@dataclass
class ModelReport:
    outcomes: dict[str, int]
    correct: int
    seconds: float
    rates: RateReport
    retry_delay_s: dict[str, float]


def model_run(plan: Sequence[PlannedJob], rate_limit: float, parameters: dict[str, int], seed: int) -> ModelReport:
    """Every job announced at t = 0; each check at the time the previous one asked for, plus latency."""
    latency = random.Random(seed)  # noqa: S311 - a seeded model, not cryptography
    iics = _ModelIics(plan, rate_limit, latency)
    settings = MonitorSettings(
        initial_wait_seconds=parameters["InitialWaitSeconds"],
        max_wait_seconds=parameters["MaxWaitSeconds"],
        timeout_seconds=parameters["TimeoutSeconds"],
    )
    config = CheckConfig(secret_name="unused-by-the-model", defaults=settings, max_polls=MODEL_MAX_POLLS)  # noqa: S106
    polls: dict[str, dict] = {job_id: {"polls": 0, "transientErrors": 0} for job_id in iics.plan}
    outcomes: dict[str, str] = {}
    # (time, job, archive call index or -1 for a check, attempt)
    queue = [(latency.uniform(*MODEL_LATENCY_S), job_id, -1, 1) for job_id in iics.plan]
    heapq.heapify(queue)
    with _quiet_layer():
        while queue:
            iics.now, job_id, step, attempt = heapq.heappop(queue)
            if step < 0:
                event = {"request": {"jobId": job_id}, "poll": polls[job_id], "startedAt": _iso(0.0)}
                poll = polls[job_id] = _check(event, iics, config)
                if poll["outcome"] is None:
                    later = poll["nextWaitSeconds"] + latency.uniform(*MODEL_LATENCY_S)
                    heapq.heappush(queue, (iics.now + later, job_id, -1, 1))
                else:
                    outcomes[job_id] = poll["outcome"]
                    if poll["outcome"] != "ERROR":
                        heapq.heappush(queue, (iics.now, job_id, 0, 1))
                continue
            retry_after = iics.call(job_id, ARCHIVE_CALLS[step])
            if retry_after and attempt < FETCH_ATTEMPTS:  # archive.with_retries: sleep, try again
                heapq.heappush(queue, (iics.now + min(retry_after, MAX_RETRY_SLEEP_SECONDS), job_id, step, attempt + 1))
            elif step + 1 < len(ARCHIVE_CALLS):
                heapq.heappush(queue, (iics.now, job_id, step + 1, 1))
    return ModelReport(
        outcomes=dict(Counter(outcomes.values())),
        correct=sum(outcomes[job_id] == job.final for job_id, job in iics.plan.items()),
        seconds=iics.now,
        rates=rate_report(iics.requests, 0.0, rate_limit),
        retry_delay_s=_summary(retry_delays_after_429(iics.requests)),
    )


# --- The run -------------------------------------------------------------------------------------


@dataclass
class ScaleReport:
    jobs: int
    rate_limit: float
    seed: int
    parameters: dict[str, int]
    seconds: float = 0.0
    submit_seconds: float = 0.0
    peak_concurrent_executions: int = 0
    peak_invocations_in_flight: int = 0  # the stack's own count (LocalStack.peak_invocations_in_flight)
    correct: int = 0
    duplicates: int = 0
    logs_identical: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    rates: RateReport | None = None
    retry_delay_s: dict[str, float] = field(default_factory=dict)
    harness: dict[str, Any] = field(default_factory=dict)
    budget_exhausted: int = 0  # requests the stack's budget held back (RequestBudgetExhausted)
    model: ModelReport | None = None

    @property
    def outcomes_pass(self) -> bool:
        return self.correct == self.jobs and self.duplicates == 0 and self.logs_identical == self.jobs

    @property
    def rate_pass(self) -> bool:
        return self.rates is not None and self.rates.within_limit

    @property
    def overlap_pass(self) -> bool:
        """Executions ran together: more than one invocation in flight, checks of two jobs at one moment."""
        return self.peak_invocations_in_flight > 1 and self.harness.get("peak_jobs_checked_at_once", 0) > 1

    @property
    def passed(self) -> bool:
        """The local stack's verdict; the model's verdicts are reported beside it."""
        return self.outcomes_pass and self.rate_pass and self.overlap_pass

    def verdicts(self) -> dict[str, bool]:
        verdicts = {
            "outcomes": self.outcomes_pass,
            "rate_within_limit": self.rate_pass,
            "invocations_overlap": self.overlap_pass,
        }
        if self.model is not None:  # every job at once, without the shared budget: per-execution backoff only
            verdicts |= {
                "model_outcomes": self.model.correct == self.jobs,
                "model_rate_without_budget": self.model.rates.within_limit,
            }
        return verdicts

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"pass": self.verdicts()}


def run(
    jobs: int = 200,
    rate_limit: float = 20,
    seed: int = 1,
    *,
    parameters: dict[str, int] | None = None,
    durations: tuple[float, float] = (MIN_DURATION_S, MAX_DURATION_S),
    model: bool = True,
    workers: int = WORKERS_PER_FUNCTION,
    out: TextIO = sys.stdout,
) -> ScaleReport:
    """The plan through the local stack (``workers`` invocations of one function at once), then
    (``model``) the same plan in virtual time."""
    parameters = {"IicsRequestsPerSecond": budget_for(rate_limit)} | dict(
        PARAMETERS if parameters is None else parameters
    )
    report = ScaleReport(jobs=jobs, rate_limit=rate_limit, seed=seed, parameters=parameters)
    plan = plan_jobs(jobs, seed, *durations)
    stack = LocalStack(parameters, workers=workers)
    with IicsEmulator(username=USERNAME, password=PASSWORD) as emulator, stack:
        stack.put_iics_secret(USERNAME, PASSWORD, emulator.url)
        capture = stack.capture_events()
        emulator.rate_limit_per_second = rate_limit
        expected: dict[str, str] = {}
        started = time.time()
        for job in plan:  # each job's clock starts when it is announced
            schedule = [{"state": "IN_PROGRESS", "seconds": job.seconds}, {"state": job.final}]
            job_id = emulator.add_job(name=job.name, schedule=schedule)
            expected[job_id] = job.final
            stack.submit({"jobId": job_id, "name": job.name})
        report.submit_seconds = time.time() - started
        executions = stack.executions()
        for execution in executions:
            stack.wait(execution["executionArn"], timeout=900, poll_seconds=0.5)
        report.seconds = time.time() - started
        _check_outcomes(report, stack, emulator, capture.drain(), expected, len(executions))
        report.peak_concurrent_executions = peak_concurrency(stack.executions())
        requests = emulator.requests
        report.rates = rate_report(requests, started, rate_limit)
        report.retry_delay_s = _summary(retry_delays_after_429(requests))
        report.peak_invocations_in_flight = stack.peak_invocations_in_flight
        report.harness = harness_load(stack.lambda_invocations, report.seconds, workers)
        report.budget_exhausted = _metric_total(stack, "RequestBudgetExhausted")
    if model:
        report.model = model_run(plan, rate_limit, parameters, seed)
    print(format_report(report), file=out)
    return report


def _metric_total(stack: LocalStack, name: str) -> int:
    """A metric's total over every invocation's EMF lines."""
    return int(sum(stack.metric_values(name)))


def _check_outcomes(
    report: ScaleReport,
    stack: LocalStack,
    emulator: IicsEmulator,
    events: list[dict],
    expected: dict[str, str],
    executions: int,
) -> None:
    per_job = Counter(e["detail"]["jobId"] for e in events)
    report.duplicates = sum(n - 1 for n in per_job.values()) + max(0, executions - len(expected))
    report.outcomes = dict(Counter(e["detail"]["state"] for e in events))
    s3 = stack.client("s3")
    for detail in {e["detail"]["jobId"]: e["detail"] for e in events}.values():
        job_id = detail["jobId"]
        if detail["state"] == expected.get(job_id):
            report.correct += 1
        else:
            wrong = f"{detail['state']} ({detail.get('reason')}), expected {expected.get(job_id)}"
            report.problems.append(f"{job_id}: {wrong}")
        if detail["log"] is None:
            report.problems.append(f"{job_id}: no log ({detail['logError']})")
        elif s3.get_object(Bucket=detail["log"]["bucket"], Key=detail["log"]["key"])["Body"].read() == (
            emulator.log_of(job_id)
        ):
            report.logs_identical += 1
        else:
            report.problems.append(f"{job_id}: archived log differs from the served one")
    report.problems += [f"{job_id}: no outcome event" for job_id in sorted(set(expected) - set(per_job))]


def _summary(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "min": round(ordered[0], 3),
        "median": round(statistics.median(ordered), 3),
        "p90": round(ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)], 3),
        "max": round(ordered[-1], 3),
    }


# --- How the local stack ran the functions ----------------------------------------------------------
#
# Each invocation runs in a worker process of the function's own, up to ``workers`` of one function at
# once (``lambda_runtime``). The stack counts the invocations holding a worker (its peak is
# ``peak_invocations_in_flight``); the bench checks that count against when each invocation ran.

# Two runs overlap only when they share more than this: the stack stamps an answer's arrival in its own
# thread, which under load may run a few milliseconds after the next invocation took the same worker.
OVERLAP_MARGIN_S = 0.01
CHECK_FUNCTION = "CheckStatusFunction"
WAITED_S = 0.1  # from the stack's call to the run's start: more than this is a wait for a worker
# The worker's own timing of one invocation (lambda_worker): Duration, and Init Duration on a cold start.
_REPORT_LINE = re.compile(
    r"^REPORT RequestId: \S+\tDuration: (?P<ms>[\d.]+) ms.*?(?:\tInit Duration: (?P<init_ms>[\d.]+) ms)?$",
    re.MULTILINE,
)


def ran_interval(invocation: LambdaInvocation) -> tuple[float, float]:
    """When the invocation ran in its worker: its REPORT line's Duration (plus Init Duration on a cold
    start), back from when the stack had the answer. ``started_at`` also counts the wait for a free
    worker, so two invocations queued for one worker would seem to overlap. Without a REPORT line (a
    worker killed at its Timeout), the whole of ``started_at`` to ``finished_at``."""
    reports = list(_REPORT_LINE.finditer(invocation.logs))
    if not reports:
        return invocation.started_at, invocation.finished_at
    seconds = (float(reports[-1]["ms"]) + float(reports[-1]["init_ms"] or 0)) / 1000
    return max(invocation.started_at, invocation.finished_at - seconds), invocation.finished_at


def peak_at_once(intervals: Iterable[tuple[float, float, Hashable]], margin: float = OVERLAP_MARGIN_S) -> int:
    """The most distinct keys with an interval open at one moment; intervals that share no more than
    ``margin`` seconds do not count as overlapping."""
    edges = []
    for start, end, key in intervals:
        start, end = start + margin / 2, end - margin / 2
        if end > start:
            edges += [(start, 1, key), (end, -1, key)]
    open_keys: Counter[Hashable] = Counter()
    best = 0
    for _, step, key in sorted(edges, key=lambda edge: (edge[0], edge[1])):  # an end before a start at a tie
        open_keys[key] += step
        if open_keys[key] == 0:
            del open_keys[key]
        best = max(best, len(open_keys))
    return best


def harness_load(invocations: Sequence[LambdaInvocation], wall_seconds: float, workers: int) -> dict[str, Any]:
    """How many invocations ran at once (from their run intervals), checks of how many different jobs
    at once, and per function: invocations, cold starts (new workers), run times, waits for a worker."""
    runs = [ran_interval(i) for i in invocations]
    checks = [
        (*run, _job_of(i.event)) for i, run in zip(invocations, runs, strict=True) if _logical_id(i) == CHECK_FUNCTION
    ]
    return {
        "workers_per_function": workers,
        "peak_in_flight_from_intervals": peak_at_once((*run, n) for n, run in enumerate(runs)),
        "peak_jobs_checked_at_once": peak_at_once(checks),
        "mean_in_flight": round(sum(end - start for start, end in runs) / wall_seconds, 2),
        "functions": {
            name: _function_load([(i, run) for i, run in zip(invocations, runs, strict=True) if _logical_id(i) == name])
            for name in sorted({_logical_id(i) for i in invocations})
        },
    }


def _function_load(runs: Sequence[tuple[LambdaInvocation, tuple[float, float]]]) -> dict[str, Any]:
    durations = [end - start for _, (start, end) in runs]
    waits = [start - i.started_at for i, (start, _) in runs if not i.cold]  # a cold one also starts its process
    return {
        "invocations": len(runs),
        "cold_starts": sum(i.cold for i, _ in runs),
        "median_ms": round(1000 * statistics.median(durations), 1),
        "max_s": round(max(durations), 3),
        "waited_for_worker": sum(wait > WAITED_S for wait in waits),
        "longest_wait_s": round(max(waits, default=0.0), 3),
    }


def _job_of(event: Any) -> Any:
    """The job a check is about ({"request": {"jobId": ...}, ...}); the AcceptInput door has none."""
    request = event.get("request") if isinstance(event, dict) else None
    return request.get("jobId") if isinstance(request, dict) else None


def _logical_id(invocation: LambdaInvocation) -> str:
    return invocation.function_name.split("-")[-2]  # <stack>-<LogicalId>-<suffix>


# --- Output --------------------------------------------------------------------------------------


def _fmt(value: float | None, unit: str = "", digits: int = 1) -> str:
    return "-" if value is None else f"{round(value, digits):g}{unit}"


def _rate_rows(rates: RateReport, jobs: int, delays: dict[str, float]) -> list[str]:
    return [
        f"{rates.calls} ({rates.calls / jobs:.1f}/job)",
        f"{rates.throttled} ({rates.throttled / max(rates.calls, 1):.1%})",
        f"{rates.peak_1s}/s",
        _fmt(rates.peak_5s, "/s"),
        _fmt(rates.peak_accepted_5s, "/s"),
        _fmt(rates.first_429_s, " s"),
        _fmt(rates.peak_1s_after_first_429, "/s"),
        _fmt(rates.peak_5s_after_first_429, "/s"),
        _fmt(rates.over_limit_until_s, " s"),
        f"median {delays['median']:g} s, p90 {delays['p90']:g} s" if delays else "-",
    ]


_RATE_MEASURES = (
    "IICS calls, all routes",
    "429 answers",
    "peak rate, 1 s buckets",
    "peak rate, sliding 5 s",
    "  of it answered (not 429)",
    "first 429: backoff engages",
    "after it: peak 1 s",
    "after it: peak sliding 5 s",
    "5 s rate above the limit until",
    "next call of a job after its 429",
)


def format_report(report: ScaleReport) -> str:
    rates, model = report.rates, report.model
    assert rates is not None
    limit = f"{rates.limit:g}/s"
    local = [
        f"{report.correct}/{report.jobs}",
        ", ".join(f"{k} {v}" for k, v in sorted(report.outcomes.items())),
        str(report.duplicates),
        f"{report.logs_identical}/{report.jobs}",
        *_rate_rows(rates, report.jobs, report.retry_delay_s),
        f"{report.seconds:.1f} s wall",
    ]
    modelled = (
        [
            f"{model.correct}/{report.jobs}",
            ", ".join(f"{k} {v}" for k, v in sorted(model.outcomes.items())),
            "-",
            "-",
            *_rate_rows(model.rates, report.jobs, model.retry_delay_s),
            f"{model.seconds:.1f} s virtual",
        ]
        if model
        else ["-"] * len(local)
    )
    measures = ("correct outcome event", "outcomes", "duplicate outcomes", "logs archived byte-identical")
    measures += (*_RATE_MEASURES, "run time")
    lines = [
        f"{report.jobs} jobs (seed {report.seed}), log-uniform durations, {FAILED_SHARE:.0%} FAILED;"
        f" Parameters {report.parameters}; IICS limit {limit} per org (token bucket, burst {max(rates.limit, 1):g})",
        f"local stack: announced over {report.submit_seconds:.1f} s, peak {report.peak_concurrent_executions}"
        f" executions at once",
        *_harness_lines(report),
        f"model: all {report.jobs} announced at t = 0, the real check code in virtual time,"
        f" {MODEL_LATENCY_S[0]:g}-{MODEL_LATENCY_S[1]:g} s latency per loop",
        "",
        f"{'measure':<34} {'local stack':<34} model",
    ]
    lines += [f"{m:<34} {a:<34} {b}" for m, a, b in zip(measures, local, modelled, strict=True)]
    lines.append("local stack, requests per second (429s in brackets):")
    lines += _series_lines(rates.per_second)
    if model:
        lines.append("model, requests per second, first 60 s:")
        lines += _series_lines(model.rates.per_second[:60])
    lines += [f"  problem: {problem}" for problem in report.problems[:20]]
    verdicts = report.verdicts()
    lines.append(
        f"{_verdict(verdicts['outcomes'])} local stack: every job's outcome event correct, exactly once, log archived"
    )
    budget = report.parameters.get("IicsRequestsPerSecond", 0)
    measured = rates.peak_5s if rates.first_429_s is None else rates.peak_5s_after_first_429
    since = "over the whole run (no 429)" if rates.first_429_s is None else "after the first 429"
    lines.append(
        f"{_verdict(verdicts['rate_within_limit'])} local stack: sliding 5 s rate {since} <= {limit}:"
        f" {_fmt(measured, '/s')} (IicsRequestsPerSecond={budget}; requests that found no slot within 2 s:"
        f" {report.budget_exhausted}; 1 s peak {_fmt(rates.peak_1s, '/s')})"
    )
    harness = report.harness
    lines.append(
        f"{_verdict(verdicts['invocations_overlap'])} local stack: invocations ran at once: peak"
        f" {report.peak_invocations_in_flight} in flight, checks of {harness.get('peak_jobs_checked_at_once', 0)}"
        " different jobs at one moment"
    )
    if model:
        lines.append(
            f"{_verdict(verdicts['model_outcomes'])} model: every job's outcome correct:"
            f" {model.correct}/{report.jobs} ({model.outcomes.get('ERROR', 0)} ERROR)"
        )
        lines.append(
            f"{'info' if not verdicts['model_rate_without_budget'] else 'PASS'} model, WITHOUT the shared budget"
            f" (per-execution backoff only): sliding 5 s rate after the first 429"
            f" {_fmt(model.rates.peak_5s_after_first_429, '/s')} against {limit}: why the budget exists"
        )
    return "\n".join(lines)


def _harness_lines(report: ScaleReport) -> list[str]:
    harness = report.harness
    if not harness:
        return []
    lines = [
        f"  Lambda invocations in flight: peak {report.peak_invocations_in_flight} (the stack's count),"
        f" {harness['peak_in_flight_from_intervals']} from the run intervals, {harness['mean_in_flight']:g} on"
        f" average; checks of different jobs at once: peak {harness['peak_jobs_checked_at_once']};"
        f" at most {harness['workers_per_function']} workers per function"
    ]
    for name, load in harness["functions"].items():
        lines.append(
            f"  {name:<24} {load['invocations']:>5} invocations, {load['cold_starts']} cold starts,"
            f" median {load['median_ms']:g} ms, longest {load['max_s']:g} s;"
            f" waited for a worker: {load['waited_for_worker']} (longest {load['longest_wait_s']:g} s)"
        )
    return lines


def _verdict(passed: bool) -> str:
    return "PASS" if passed else "GAP "


def _series_lines(buckets: Sequence[tuple[int, int]], per_line: int = 10) -> list[str]:
    cells = [f"{n}" + (f"({refused})" if refused else "") for n, refused in buckets]
    return [
        f"  {start:>4}s: " + " ".join(f"{cell:>7}" for cell in cells[start : start + per_line])
        for start in range(0, len(cells), per_line)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--rate-limit", type=float, default=20, help="IICS requests per second per org")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--workers",
        type=int,
        default=WORKERS_PER_FUNCTION,
        help="invocations of one function at once (default: %(default)s)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="results JSON (default: bench/results.json)")
    args = parser.parse_args(argv)
    report = run(args.jobs, args.rate_limit, args.seed, workers=args.workers)
    merge_results(args.output, {"scale": report.to_json()})
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    quiet_moto()
    sys.exit(main())

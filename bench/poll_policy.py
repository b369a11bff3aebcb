"""Poll-policy bench: the monitor's wait policy against fixed-interval pollers, in virtual time.

It runs ``iics_monitor.policy.next_wait_seconds`` (the code the check_status Lambda runs), with
the defaults read from template.yaml, over seeded export jobs whose durations are log-uniform
from 10 s to 4 h, and compares it with three fixed-interval pollers:

* 60 s: AWS's job-poller sample,
* 10 s: a popular open-source IICS CLI,
* 15 s: Informatica RunAJob (5 s wait + IICS's 10 s spacing).

A second mix is recurring jobs: each name has ``history.KEEP`` past runs (SUCCESSFUL within +-30%
of its typical duration or, one run in five, FAILED early), and this run either ends within +-30%
of what the history expects or, one run in five, fails at 2-50% of it. There the targets are
the early failures' detection delay against max(30 s, half the time the run lasted), the
successful runs' relative delay, and the mean IICS calls per run.

Model: the first check happens at job start (t=0); each later check follows the wait the policy
returns; a job is detected at the first check at or after its end (or failure). Every poller is assumed to run
in the same Standard state machine, so it pays the same transitions per check and the same Lambda
cost per check. State transitions come from statemachine/export_monitor.asl.json: the shortest
success path from StartAt to a Succeed state (no retries, no errors), plus one loop cycle
(CheckStatus -> IsFinished -> WaitBeforeNextPoll) for every check after the first.

    python -m bench.poll_policy [--jobs N --seed S]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from samtranslator.yaml_helper import yaml_parse

from bench.cold_start import _table
from bench.results import RESULTS, merge_results
from iics_monitor import history
from iics_monitor.config import CheckConfig
from iics_monitor.policy import next_wait_seconds, sleeps_inline
from iics_monitor.validation import MonitorSettings

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
ASL = ROOT / "statemachine" / "export_monitor.asl.json"

MIN_DURATION_S = 10.0
MAX_DURATION_S = 4 * 3600.0

# Prices (us-east-1, /work/shared/reference/aws-notes.md "Step Functions limits and cost").
PRICE_PER_TRANSITION = 0.025 / 1000  # Standard workflow
PRICE_PER_LAMBDA_REQUEST = 0.20 / 1_000_000
PRICE_PER_GB_SECOND = 0.0000133334  # arm64
ASSUMED_BILLED_SECONDS_PER_CHECK = 0.1  # an assumption: one warm check, one IICS status call
# DynamoDB on-demand, us-east-1: $0.125 per million read request units (an eventually consistent
# read of an item up to 4 KB takes half of one; counted as a whole) and $0.625 per million write units.
PRICE_PER_DYNAMODB_READ = 0.125 / 1_000_000
PRICE_PER_DYNAMODB_WRITE = 0.625 / 1_000_000
HISTORY_SPREAD = 0.3
EARLY_FAILURE_SHARE = 0.2  # of recurring runs, past and present
EARLY_FAILURE_AT = (0.02, 0.5)  # x the usual duration

FIXED_POLLERS = {
    "fixed 60s (AWS job-poller sample)": 60,
    "fixed 10s (open-source IICS CLI)": 10,
    "fixed 15s (Informatica RunAJob)": 15,
}
OURS = "ours"
OURS_HISTORY = "ours, recurring mix, with history"
OURS_NO_HISTORY = "ours, recurring mix, no history"
SUCCESSES, EARLY_FAILURES = "successful runs", "early failures"
BASELINE_COST = "fixed 60s (AWS job-poller sample)"
BASELINE_CALLS = "fixed 10s (open-source IICS CLI)"

# Targets of the issue.
COST_RATIO_TARGET = 0.5
P95_RELATIVE_DELAY_TARGET = 0.10
CALLS_RATIO_TARGET = 0.3
HISTORY_MEAN_CALLS_TARGET = 18
HISTORY_P95_TARGET = 0.10
# An early failure at f seconds is to be detected within max(30 s, 0.5 x f), at p95.
EARLY_BOUND_FLOOR_S = 30.0
EARLY_BOUND_SHARE = 0.5


# --- Inputs: template and state machine --------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    """The numbers the bench takes from template.yaml, as the check function's own config."""

    config: CheckConfig
    check_status_memory_mb: int
    check_status_timeout_s: int

    @property
    def settings(self) -> MonitorSettings:
        return self.config.defaults

    @property
    def max_polls(self) -> int:
        return self.config.max_polls


def load_deployment(template_path: Path = TEMPLATE) -> Deployment:
    template = yaml_parse(template_path.read_text())
    params = template["Parameters"]

    def default(name: str) -> int:
        return int(params[name]["Default"])

    settings = MonitorSettings(
        initial_wait_seconds=default("InitialWaitSeconds"),
        max_wait_seconds=default("MaxWaitSeconds"),
        timeout_seconds=default("TimeoutSeconds"),
    )
    config = CheckConfig(
        secret_name="bench",  # noqa: S106 - a secret name, not a secret
        defaults=settings,
        max_polls=default("MaxPolls"),
        read_timeout_seconds=float(default("IicsReadTimeoutSeconds")),
        inline_wait_seconds=default("InlineWaitSeconds"),
        history_table="bench" if params["PollHistory"]["Default"] == "Enabled" else None,
    )
    function = template["Resources"]["CheckStatusFunction"]["Properties"]
    globals_ = template.get("Globals", {}).get("Function", {})
    memory = function.get("MemorySize", globals_.get("MemorySize", 128))
    timeout = function.get("Timeout", globals_.get("Timeout", 3))
    return Deployment(config=config, check_status_memory_mb=int(memory), check_status_timeout_s=int(timeout))


def _successors(state: dict) -> list[str]:
    """Where a state can go without an error (Catch edges left out): Choices first, then Default/Next."""
    nexts = [choice["Next"] for choice in state.get("Choices", [])]
    nexts += [state[key] for key in ("Default", "Next") if key in state]
    return nexts


def _shortest_path(states: dict, start: str, is_goal: Callable[[str], bool]) -> list[str]:
    parents: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        name = queue.popleft()
        for following in _successors(states[name]):
            if is_goal(following):
                path = [following, name]
                while parents[path[-1]] is not None:
                    path.append(parents[path[-1]])
                return path[::-1]
            if following not in parents:
                parents[following] = name
                queue.append(following)
    raise ValueError(f"no path from {start}")


@dataclass(frozen=True)
class TransitionModel:
    """State transitions of one run: ``success_path`` once, ``loop`` once per check after the first."""

    success_path: tuple[str, ...]
    loop: tuple[str, ...]

    @property
    def fixed_states(self) -> tuple[str, ...]:
        return tuple(s for s in self.success_path if s not in self.loop)

    def transitions(self, checks: int) -> int:
        return len(self.success_path) + (checks - 1) * len(self.loop)


def load_transition_model(asl_path: Path = ASL) -> TransitionModel:
    """Walk the ASL: the poll loop (the Task its Wait state leads back to), and the shortest success
    path through it (shorter ones, such as a refused request's ERROR outcome, poll nothing)."""
    asl = json.loads(asl_path.read_text())
    states = asl["States"]
    (wait,) = [name for name, state in states.items() if state["Type"] == "Wait"]
    loop_entry = states[wait]["Next"]
    cycle = _shortest_path(states, loop_entry, lambda s: s == loop_entry)[:-1]
    to_loop = _shortest_path(states, asl["StartAt"], lambda s: s == loop_entry)
    success = to_loop[:-1] + _shortest_path(states, loop_entry, lambda s: states[s]["Type"] == "Succeed")
    return TransitionModel(success_path=tuple(success), loop=tuple(cycle))


# --- Simulation ---------------------------------------------------------------------------------


def job_durations(n: int, seed: int) -> list[float]:
    """``n`` durations, log-uniform from 10 s to 4 h."""
    rng = random.Random(seed)  # noqa: S311 - a seeded simulation, not cryptography
    low, high = math.log(MIN_DURATION_S), math.log(MAX_DURATION_S)
    return [math.exp(rng.uniform(low, high)) for _ in range(n)]


@dataclass(frozen=True)
class RecurringJob:
    """A job of the second mix: its name's recorded runs, and how long this run lasts (until it ends or fails)."""

    history: tuple[history.Run, ...]
    duration: float
    failed_early: bool

    @property
    def expected_seconds(self) -> float | None:
        return history.expected_seconds(self.history)


def _recurring_run(typical: float, rng: random.Random) -> history.Run:
    """One run of a name that usually takes ``typical`` seconds: within +-30%, or an early failure."""
    if rng.random() < EARLY_FAILURE_SHARE:
        return history.Run(typical * rng.uniform(*EARLY_FAILURE_AT), "FAILED")
    return history.Run(typical * rng.uniform(1 - HISTORY_SPREAD, 1 + HISTORY_SPREAD), "SUCCESSFUL")


def recurring_jobs(n: int, seed: int) -> list[RecurringJob]:
    """``n`` recurring jobs: a typical duration log-uniform from 10 s to 4 h, ``history.KEEP`` past
    runs of it, and this run, measured against what the history expects (the typical duration
    when fewer than ``history.MIN_SAMPLES`` past runs succeeded)."""
    rng = random.Random(seed + 1_000_003)  # noqa: S311 - a seeded simulation, not cryptography
    jobs = []
    for typical in job_durations(n, seed):
        past = tuple(_recurring_run(typical, rng) for _ in range(history.KEEP))
        this = _recurring_run(history.expected_seconds(past) or typical, rng)
        jobs.append(RecurringJob(past, this.seconds, this.state == "FAILED"))
    return jobs


@dataclass(frozen=True)
class JobRun:
    """One simulated job under one poller."""

    checks: int  # IICS status calls
    invocations: int  # CheckStatus invocations = trips round the state machine's loop, plus one
    billed_seconds: float  # CheckStatus duration, all invocations
    detected_at: float | None  # None: the deadline or the poll budget came first


def simulate_fixed(duration: float, interval: int, timeout_s: float, max_polls: int) -> JobRun:
    """A fixed-interval poller in the same state machine: one invocation per check."""
    now, checks = 0.0, 0
    while True:
        checks += 1
        if now >= duration or now >= timeout_s or checks >= max_polls:
            detected = now if now >= duration else None
            return JobRun(checks, checks, checks * ASSUMED_BILLED_SECONDS_PER_CHECK, detected)
        now += interval


def simulate_ours(duration: float, deployment: Deployment, expected_s: float | None = None) -> JobRun:
    """The check function's loop, in virtual time, with the policy functions it calls.

    Like ``check_job``: the first check learns the job's name (and so its history); after each check
    the wait comes from ``next_wait_seconds``, and ``sleeps_inline`` decides whether the same
    invocation sleeps and checks again or hands the wait to the state machine."""
    config = deployment.config
    timeout = config.defaults.timeout_seconds
    now, checks, invocations, billed = 0.0, 0, 1, 0.0
    invocation_started, checks_in_invocation = 0.0, 0
    while True:
        checks += 1
        checks_in_invocation += 1
        if now >= duration or now >= timeout or checks >= config.max_polls:
            billed += now - invocation_started + checks_in_invocation * ASSUMED_BILLED_SECONDS_PER_CHECK
            return JobRun(checks, invocations, billed, now if now >= duration else None)
        wait = next_wait_seconds(now, config.defaults, timeout - now, expected_seconds=expected_s)
        used = now - invocation_started + checks_in_invocation * ASSUMED_BILLED_SECONDS_PER_CHECK
        left = deployment.check_status_timeout_s - used
        if not sleeps_inline(wait, config.inline_wait_seconds, left, config.inline_reserve_seconds):
            billed += used
            invocations += 1
            invocation_started, checks_in_invocation = now + wait, 0
        now += wait


def _p95(values: Sequence[float]) -> float:
    """Nearest-rank 95th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass(frozen=True)
class PolicyResult:
    name: str
    jobs: int
    undetected: int
    iics_calls_per_job: float
    max_iics_calls: int
    transitions_per_job: float
    lambda_seconds_per_job: float
    mean_delay_s: float
    p95_delay_s: float
    max_delay_s: float
    p95_relative_delay: float
    usd_per_1000_jobs: float
    # per job, for tests; left out of results.json
    checks: tuple[int, ...] = ()
    delays: tuple[float, ...] = ()


def job_cost(run: JobRun, memory_mb: int, model: TransitionModel, history_lookups: int = 0) -> float:
    """USD for one job: transitions, Lambda requests and GB-s, and the history table's requests."""
    return (
        model.transitions(run.invocations) * PRICE_PER_TRANSITION
        + run.invocations * PRICE_PER_LAMBDA_REQUEST
        + run.billed_seconds * (memory_mb / 1024) * PRICE_PER_GB_SECOND
        + history_lookups * (PRICE_PER_DYNAMODB_READ + PRICE_PER_DYNAMODB_WRITE)
    )


def summarise(
    name: str, runs: Sequence[JobRun], durations: Sequence[float], deployment: Deployment, model: TransitionModel
) -> PolicyResult:
    lookups = 1 if name.startswith(OURS) and deployment.config.history_table else 0
    delays = [r.detected_at - d for r, d in zip(runs, durations, strict=True) if r.detected_at is not None]
    relative = [r.detected_at / d - 1 for r, d in zip(runs, durations, strict=True) if r.detected_at is not None]
    jobs = len(runs)
    cost = sum(job_cost(r, deployment.check_status_memory_mb, model, lookups) for r in runs)
    return PolicyResult(
        name=name,
        jobs=jobs,
        undetected=sum(r.detected_at is None for r in runs),
        iics_calls_per_job=sum(r.checks for r in runs) / jobs,
        max_iics_calls=max(r.checks for r in runs),
        transitions_per_job=sum(model.transitions(r.invocations) for r in runs) / jobs,
        lambda_seconds_per_job=sum(r.billed_seconds for r in runs) / jobs,
        mean_delay_s=sum(delays) / len(delays) if delays else math.nan,
        p95_delay_s=_p95(delays) if delays else math.nan,
        max_delay_s=max(delays) if delays else math.nan,
        p95_relative_delay=_p95(relative) if relative else math.nan,
        usd_per_1000_jobs=1000 * cost / jobs,
        checks=tuple(r.checks for r in runs),
        delays=tuple(delays),
    )


@dataclass(frozen=True)
class RecurringResult:
    """One policy on the recurring mix: all runs for calls and cost, then each kind of run for its delay."""

    name: str
    jobs: int
    early_failures: int
    undetected: int
    iics_calls_per_job: float
    max_iics_calls: int
    usd_per_1000_jobs: float
    success_p95_relative_delay: float
    failure_p95_delay_s: float
    failure_max_delay_s: float
    failure_p95_delay_vs_bound: float  # delay / max(30 s, 0.5 x the time to the failure)
    failure_max_delay_vs_bound: float


def early_failure_bound(failed_at: float) -> float:
    return max(EARLY_BOUND_FLOOR_S, EARLY_BOUND_SHARE * failed_at)


def summarise_recurring(
    name: str, jobs: Sequence[RecurringJob], runs: Sequence[JobRun], deployment: Deployment, model: TransitionModel
) -> RecurringResult:
    every = summarise(name, runs, [j.duration for j in jobs], deployment, model)
    pairs = list(zip(jobs, runs, strict=True))
    successes = [(j, r) for j, r in pairs if not j.failed_early and r.detected_at is not None]
    failures = [(j, r) for j, r in pairs if j.failed_early and r.detected_at is not None]
    delays = [r.detected_at - j.duration for j, r in failures]
    against_bound = [(r.detected_at - j.duration) / early_failure_bound(j.duration) for j, r in failures]
    return RecurringResult(
        name=name,
        jobs=every.jobs,
        early_failures=sum(j.failed_early for j in jobs),
        undetected=every.undetected,
        iics_calls_per_job=every.iics_calls_per_job,
        max_iics_calls=every.max_iics_calls,
        usd_per_1000_jobs=every.usd_per_1000_jobs,
        success_p95_relative_delay=_p95([r.detected_at / j.duration - 1 for j, r in successes]),
        failure_p95_delay_s=_p95(delays),
        failure_max_delay_s=max(delays),
        failure_p95_delay_vs_bound=_p95(against_bound),
        failure_max_delay_vs_bound=max(against_bound),
    )


def _target(text: str, values: dict[str, float], limits: dict[str, float]) -> dict[str, Any]:
    parts = {name: values[name] <= limits[name] for name in values}
    return {"target": text, "value": values, "parts_pass": parts, "pass": all(parts.values())}


def run(jobs: int = 20_000, seed: int = 1) -> dict[str, Any]:
    deployment = load_deployment()
    model = load_transition_model()
    durations = job_durations(jobs, seed)
    settings = deployment.settings
    results = {OURS: summarise(OURS, [simulate_ours(d, deployment) for d in durations], durations, deployment, model)}
    for name, interval in FIXED_POLLERS.items():
        runs = [simulate_fixed(d, interval, settings.timeout_seconds, deployment.max_polls) for d in durations]
        results[name] = summarise(name, runs, durations, deployment, model)

    recurring = recurring_jobs(jobs, seed)
    with_history = [simulate_ours(j.duration, deployment, j.expected_seconds) for j in recurring]
    without = [simulate_ours(j.duration, deployment) for j in recurring]
    mix = {
        OURS_HISTORY: summarise_recurring(OURS_HISTORY, recurring, with_history, deployment, model),
        OURS_NO_HISTORY: summarise_recurring(OURS_NO_HISTORY, recurring, without, deployment, model),
    }

    ours, cost_base, calls_base = results[OURS], results[BASELINE_COST], results[BASELINE_CALLS]
    recurrent = mix[OURS_HISTORY]
    cost_ratio = ours.usd_per_1000_jobs / cost_base.usd_per_1000_jobs
    calls_ratio = ours.iics_calls_per_job / calls_base.iics_calls_per_job
    targets = [
        _target(
            f"$ per 1,000 jobs <= {COST_RATIO_TARGET}x the 60 s poller"
            f" with p95 relative delay <= {P95_RELATIVE_DELAY_TARGET}",
            {"cost_ratio": cost_ratio, "p95_relative_delay": ours.p95_relative_delay},
            {"cost_ratio": COST_RATIO_TARGET, "p95_relative_delay": P95_RELATIVE_DELAY_TARGET},
        ),
        _target(
            f"IICS calls <= {CALLS_RATIO_TARGET}x the 10 s poller",
            {"calls_ratio": calls_ratio},
            {"calls_ratio": CALLS_RATIO_TARGET},
        ),
        _target(
            f"recurring jobs, {EARLY_FAILURE_SHARE:.0%} failing early, with history: p95 early-failure delay"
            f" <= max({EARLY_BOUND_FLOOR_S:.0f} s, {EARLY_BOUND_SHARE} x f), successful runs' p95 relative"
            f" delay <= {HISTORY_P95_TARGET}, mean IICS calls <= {HISTORY_MEAN_CALLS_TARGET}",
            {
                "failure_p95_delay_vs_bound": recurrent.failure_p95_delay_vs_bound,
                "success_p95_relative_delay": recurrent.success_p95_relative_delay,
                "mean_iics_calls": recurrent.iics_calls_per_job,
            },
            {
                "failure_p95_delay_vs_bound": 1.0,
                "success_p95_relative_delay": HISTORY_P95_TARGET,
                "mean_iics_calls": HISTORY_MEAN_CALLS_TARGET,
            },
        ),
    ]
    config = deployment.config
    return {
        "jobs": jobs,
        "seed": seed,
        "durations": {"distribution": "log-uniform", "min_s": MIN_DURATION_S, "max_s": MAX_DURATION_S},
        "recurring_mix": {
            "history_runs": history.KEEP,
            "spread": HISTORY_SPREAD,
            "early_failure_share": EARLY_FAILURE_SHARE,
            "early_failure_at": list(EARLY_FAILURE_AT),
            "expected": "median of the history's successful runs (iics_monitor.history.expected_seconds)",
        },
        "settings": settings.to_dict()
        | {
            "maxPolls": deployment.max_polls,
            "inlineWaitSeconds": config.inline_wait_seconds,
            "inlineReserveSeconds": config.inline_reserve_seconds,
            "pollHistory": config.history_table is not None,
            "checkStatusTimeoutSeconds": deployment.check_status_timeout_s,
        },
        "state_machine": {
            "success_path": list(model.success_path),
            "fixed_states": list(model.fixed_states),
            "loop": list(model.loop),
            "transitions_per_job": f"{len(model.success_path)} + {len(model.loop)} x (invocations - 1)",
        },
        "prices": {
            "per_transition_usd": PRICE_PER_TRANSITION,
            "per_lambda_request_usd": PRICE_PER_LAMBDA_REQUEST,
            "per_gb_second_usd": PRICE_PER_GB_SECOND,
            "per_dynamodb_read_usd": PRICE_PER_DYNAMODB_READ,
            "per_dynamodb_write_usd": PRICE_PER_DYNAMODB_WRITE,
            "check_status_memory_mb": deployment.check_status_memory_mb,
            "assumed_billed_seconds_per_check": ASSUMED_BILLED_SECONDS_PER_CHECK,
        },
        "policies": results,
        "recurring": mix,
        "ratios": {"ours_cost_vs_fixed_60s": cost_ratio, "ours_iics_calls_vs_fixed_10s": calls_ratio},
        "targets": targets,
    }


# --- Output -------------------------------------------------------------------------------------


def _public(result: PolicyResult) -> dict[str, Any]:
    return {k: v for k, v in asdict(result).items() if k not in ("checks", "delays")}


def to_json(report: dict[str, Any]) -> dict[str, Any]:
    return report | {
        "policies": {name: _public(r) for name, r in report["policies"].items()},
        "recurring": {name: asdict(r) for name, r in report["recurring"].items()},
    }


def _columns_table(columns: Sequence[tuple[str, str]], results: Sequence[Any]) -> str:
    """A markdown table of ``results``: one row each, a column per (header, format of ``str.format``)."""
    rows = [[fmt.format(r) for _, fmt in columns] for r in results]
    return _table([header for header, _ in columns], rows)


POLICY_COLUMNS = (
    ("policy", "{0.name}"),
    ("IICS calls/job", "{0.iics_calls_per_job:.1f}"),
    ("max calls", "{0.max_iics_calls}"),
    ("transitions/job", "{0.transitions_per_job:.1f}"),
    ("Lambda s/job", "{0.lambda_seconds_per_job:.1f}"),
    ("mean delay s", "{0.mean_delay_s:.1f}"),
    ("p95 delay s", "{0.p95_delay_s:.1f}"),
    ("p95 rel delay", "{0.p95_relative_delay:.3f}"),
    ("$/1000 jobs", "{0.usd_per_1000_jobs:.3f}"),
)
RECURRING_COLUMNS = (
    ("policy", "{0.name}"),
    ("IICS calls/job", "{0.iics_calls_per_job:.1f}"),
    ("max calls", "{0.max_iics_calls}"),
    ("$/1000 jobs", "{0.usd_per_1000_jobs:.3f}"),
    ("successes: p95 rel delay", "{0.success_p95_relative_delay:.3f}"),
    ("early failures: p95 delay s", "{0.failure_p95_delay_s:.1f}"),
    ("max delay s", "{0.failure_max_delay_s:.1f}"),
    ("p95 delay / max(30 s, f/2)", "{0.failure_p95_delay_vs_bound:.3f}"),
    ("max delay / max(30 s, f/2)", "{0.failure_max_delay_vs_bound:.3f}"),
)


def format_table(report: dict[str, Any]) -> str:
    return _columns_table(POLICY_COLUMNS, list(report["policies"].values()))


def format_recurring_table(report: dict[str, Any]) -> str:
    return _columns_table(RECURRING_COLUMNS, list(report["recurring"].values()))


def format_report(report: dict[str, Any], elapsed_s: float) -> str:
    sm, prices, ratios, mix = report["state_machine"], report["prices"], report["ratios"], report["recurring_mix"]
    out = [
        f"{report['jobs']} jobs, seed {report['seed']}, durations log-uniform 10 s .. 4 h; "
        f"settings from template.yaml: {report['settings']}",
        f"recurring mix: the same number of jobs, each with {mix['history_runs']} past runs; a run succeeds"
        f" within +-{mix['spread']:.0%} of the history's median or ({mix['early_failure_share']:.0%}) fails at"
        f" {mix['early_failure_at'][0]:.0%}-{mix['early_failure_at'][1]:.0%} of it",
        f"transitions per job = {sm['transitions_per_job']} "
        f"(fixed: {', '.join(sm['fixed_states'])}; loop: {' -> '.join(sm['loop'])}; no retries)",
        f"Lambda: {prices['check_status_memory_mb']} MB arm64, billed for inline sleeps plus an ASSUMED"
        f" {prices['assumed_billed_seconds_per_check']} s per check; fixed pollers: one invocation per check",
        "",
        format_table(report),
        "",
        format_recurring_table(report),
        "",
        f"ours vs 60 s poller, $/1000 jobs: {ratios['ours_cost_vs_fixed_60s']:.3f}x; "
        f"ours vs 10 s poller, IICS calls: {ratios['ours_iics_calls_vs_fixed_10s']:.3f}x",
    ]
    every = report["policies"] | report["recurring"]
    undetected = {n: r.undetected for n, r in every.items() if r.undetected}
    if undetected:
        out.append(f"UNDETECTED jobs (deadline or poll budget): {undetected}")
    for target in report["targets"]:
        parts = ", ".join(
            f"{name} {value:.3f} ({'ok' if target['parts_pass'][name] else 'missed'})"
            for name, value in target["value"].items()
        )
        out.append(f"{'PASS' if target['pass'] else 'GAP '} {target['target']}: {parts}")
    out.append(f"simulated in {elapsed_s:.2f} s")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=RESULTS, help="results JSON (default: bench/results.json)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    report = run(args.jobs, args.seed)
    elapsed = time.perf_counter() - started
    merge_results(args.output, to_json(report) | {"elapsed_s": round(elapsed, 3)})
    print(format_report(report, elapsed))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Poll-policy bench: the monitor's wait policy against fixed-interval pollers, in virtual time.

It runs ``iics_monitor.policy.next_wait_seconds`` (the code the check_status Lambda runs), with
the defaults read from template.yaml, over seeded export jobs whose durations are log-uniform
from 10 s to 4 h, and compares it with three fixed-interval pollers:

* 60 s: AWS's job-poller sample,
* 10 s: a popular open-source IICS CLI,
* 15 s: Informatica RunAJob (5 s wait + IICS's 10 s spacing).

Model: the first check happens at job start (t=0); each later check follows the wait the policy
returns; a job is detected at the first check at or after its end. Every poller is assumed to run
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

from iics_monitor.policy import next_wait_seconds
from iics_monitor.validation import MonitorSettings

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
ASL = ROOT / "statemachine" / "export_monitor.asl.json"
RESULTS = Path(__file__).resolve().parent / "results.json"

MIN_DURATION_S = 10.0
MAX_DURATION_S = 4 * 3600.0

# Prices (us-east-1, /work/shared/reference/aws-notes.md "Step Functions limits and cost").
PRICE_PER_TRANSITION = 0.025 / 1000  # Standard workflow
PRICE_PER_LAMBDA_REQUEST = 0.20 / 1_000_000
PRICE_PER_GB_SECOND = 0.0000133334  # arm64
ASSUMED_BILLED_SECONDS_PER_CHECK = 0.1  # an assumption: one warm check, one IICS status call

FIXED_POLLERS = {
    "fixed 60s (AWS job-poller sample)": 60,
    "fixed 10s (open-source IICS CLI)": 10,
    "fixed 15s (Informatica RunAJob)": 15,
}
OURS = "ours (exponential backoff)"
BASELINE_COST = "fixed 60s (AWS job-poller sample)"
BASELINE_CALLS = "fixed 10s (open-source IICS CLI)"

# Targets of the issue.
COST_RATIO_TARGET = 0.6
P95_RELATIVE_DELAY_TARGET = 0.15
CALLS_RATIO_TARGET = 0.3

WaitFn = Callable[[int, float], float]  # (polls so far, seconds to the deadline) -> wait


# --- Inputs: template and state machine --------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    """The numbers the bench takes from template.yaml."""

    settings: MonitorSettings
    max_polls: int
    check_status_memory_mb: int


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
    function = template["Resources"]["CheckStatusFunction"]["Properties"]
    memory = function.get("MemorySize", template.get("Globals", {}).get("Function", {}).get("MemorySize", 128))
    return Deployment(settings=settings, max_polls=default("MaxPolls"), check_status_memory_mb=int(memory))


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
    """Walk the ASL: the shortest success path, and the poll loop through its Task that polls."""
    asl = json.loads(asl_path.read_text())
    states = asl["States"]
    success = _shortest_path(states, asl["StartAt"], lambda s: states[s]["Type"] == "Succeed")
    loop_entry = next(s for s in success if states[s]["Type"] == "Task" and s in _loop_members(states, s))
    cycle = _shortest_path(states, loop_entry, lambda s: s == loop_entry)[:-1]
    return TransitionModel(success_path=tuple(success), loop=tuple(cycle))


def _loop_members(states: dict, name: str) -> set[str]:
    try:
        return set(_shortest_path(states, name, lambda s: s == name))
    except ValueError:
        return set()


# --- Simulation ---------------------------------------------------------------------------------


def job_durations(n: int, seed: int) -> list[float]:
    """``n`` durations, log-uniform from 10 s to 4 h."""
    rng = random.Random(seed)  # noqa: S311 - a seeded simulation, not cryptography
    low, high = math.log(MIN_DURATION_S), math.log(MAX_DURATION_S)
    return [math.exp(rng.uniform(low, high)) for _ in range(n)]


def policy_wait(settings: MonitorSettings) -> WaitFn:
    """Our policy, as check_job calls it: polls so far (this check included) and seconds left."""
    return lambda polls, remaining: next_wait_seconds(polls, settings, remaining_seconds=remaining)


def fixed_wait(interval: int) -> WaitFn:
    return lambda polls, remaining: interval


def simulate_job(duration: float, wait: WaitFn, timeout_s: float, max_polls: int) -> tuple[int, float | None]:
    """(checks, detection time); detection is None if the deadline or the poll budget came first."""
    now, polls = 0.0, 0
    while True:
        polls += 1  # a check (one IICS status call) at `now`
        if now >= duration:
            return polls, now
        if now >= timeout_s or polls >= max_polls:
            return polls, None
        now += wait(polls, timeout_s - now)


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
    transitions_per_job: float
    mean_delay_s: float
    p95_delay_s: float
    max_delay_s: float
    p95_relative_delay: float
    usd_per_1000_jobs: float
    # per job, for tests; left out of results.json
    checks: tuple[int, ...] = ()
    delays: tuple[float, ...] = ()


def lambda_cost_per_check(memory_mb: int) -> float:
    return PRICE_PER_LAMBDA_REQUEST + PRICE_PER_GB_SECOND * (memory_mb / 1024) * ASSUMED_BILLED_SECONDS_PER_CHECK


def run_policy(
    name: str, wait: WaitFn, durations: Sequence[float], deployment: Deployment, model: TransitionModel
) -> PolicyResult:
    timeout = deployment.settings.timeout_seconds
    checks, delays, relative = [], [], []
    undetected = 0
    for duration in durations:
        n, detected = simulate_job(duration, wait, timeout, deployment.max_polls)
        checks.append(n)
        if detected is None:
            undetected += 1
            continue
        delays.append(detected - duration)
        relative.append((detected - duration) / duration)
    jobs = len(durations)
    calls = sum(checks) / jobs
    transitions = sum(model.transitions(n) for n in checks) / jobs
    per_job = transitions * PRICE_PER_TRANSITION + calls * lambda_cost_per_check(deployment.check_status_memory_mb)
    return PolicyResult(
        name=name,
        jobs=jobs,
        undetected=undetected,
        iics_calls_per_job=calls,
        transitions_per_job=transitions,
        mean_delay_s=sum(delays) / len(delays) if delays else math.nan,
        p95_delay_s=_p95(delays) if delays else math.nan,
        max_delay_s=max(delays) if delays else math.nan,
        p95_relative_delay=_p95(relative) if relative else math.nan,
        usd_per_1000_jobs=1000 * per_job,
        checks=tuple(checks),
        delays=tuple(delays),
    )


def run(jobs: int = 20_000, seed: int = 1) -> dict[str, Any]:
    deployment = load_deployment()
    model = load_transition_model()
    durations = job_durations(jobs, seed)
    pollers: dict[str, WaitFn] = {OURS: policy_wait(deployment.settings)}
    pollers |= {name: fixed_wait(interval) for name, interval in FIXED_POLLERS.items()}
    results = {name: run_policy(name, wait, durations, deployment, model) for name, wait in pollers.items()}

    ours, cost_base, calls_base = results[OURS], results[BASELINE_COST], results[BASELINE_CALLS]
    cost_ratio = ours.usd_per_1000_jobs / cost_base.usd_per_1000_jobs
    calls_ratio = ours.iics_calls_per_job / calls_base.iics_calls_per_job
    cost_ok = cost_ratio <= COST_RATIO_TARGET
    delay_ok = ours.p95_relative_delay <= P95_RELATIVE_DELAY_TARGET
    targets = [
        {
            "target": f"$ per 1,000 jobs <= {COST_RATIO_TARGET}x the 60 s poller"
            f" with p95 relative delay <= {P95_RELATIVE_DELAY_TARGET}",
            "value": {"cost_ratio": cost_ratio, "p95_relative_delay": ours.p95_relative_delay},
            "parts_pass": {"cost_ratio": cost_ok, "p95_relative_delay": delay_ok},
            "pass": cost_ok and delay_ok,
        },
        {
            "target": f"IICS calls <= {CALLS_RATIO_TARGET}x the 10 s poller",
            "value": {"calls_ratio": calls_ratio},
            "parts_pass": {"calls_ratio": calls_ratio <= CALLS_RATIO_TARGET},
            "pass": calls_ratio <= CALLS_RATIO_TARGET,
        },
    ]
    return {
        "jobs": jobs,
        "seed": seed,
        "durations": {"distribution": "log-uniform", "min_s": MIN_DURATION_S, "max_s": MAX_DURATION_S},
        "settings": deployment.settings.to_dict() | {"maxPolls": deployment.max_polls},
        "state_machine": {
            "success_path": list(model.success_path),
            "fixed_states": list(model.fixed_states),
            "loop": list(model.loop),
            "transitions_per_job": f"{len(model.success_path)} + {len(model.loop)} x (checks - 1)",
        },
        "prices": {
            "per_transition_usd": PRICE_PER_TRANSITION,
            "per_lambda_request_usd": PRICE_PER_LAMBDA_REQUEST,
            "per_gb_second_usd": PRICE_PER_GB_SECOND,
            "check_status_memory_mb": deployment.check_status_memory_mb,
            "assumed_billed_seconds_per_check": ASSUMED_BILLED_SECONDS_PER_CHECK,
            "lambda_usd_per_check": lambda_cost_per_check(deployment.check_status_memory_mb),
        },
        "policies": results,
        "ratios": {"ours_cost_vs_fixed_60s": cost_ratio, "ours_iics_calls_vs_fixed_10s": calls_ratio},
        "targets": targets,
    }


# --- Output -------------------------------------------------------------------------------------


def _public(result: PolicyResult) -> dict[str, Any]:
    return {k: v for k, v in asdict(result).items() if k not in ("checks", "delays")}


def to_json(report: dict[str, Any]) -> dict[str, Any]:
    return report | {"policies": {name: _public(r) for name, r in report["policies"].items()}}


def format_table(report: dict[str, Any]) -> str:
    header = (
        "policy",
        "IICS calls/job",
        "transitions/job",
        "mean delay s",
        "p95 delay s",
        "p95 rel delay",
        "$/1000 jobs",
    )
    rows = [
        (
            r.name,
            f"{r.iics_calls_per_job:.1f}",
            f"{r.transitions_per_job:.1f}",
            f"{r.mean_delay_s:.1f}",
            f"{r.p95_delay_s:.1f}",
            f"{r.p95_relative_delay:.3f}",
            f"{r.usd_per_1000_jobs:.3f}",
        )
        for r in report["policies"].values()
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(header, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += ["| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |" for row in rows]
    return "\n".join(lines)


def format_report(report: dict[str, Any], elapsed_s: float) -> str:
    sm, prices, ratios = report["state_machine"], report["prices"], report["ratios"]
    out = [
        f"{report['jobs']} jobs, seed {report['seed']}, durations log-uniform 10 s .. 4 h; "
        f"settings from template.yaml: {report['settings']}",
        f"transitions per job = {sm['transitions_per_job']} "
        f"(fixed: {', '.join(sm['fixed_states'])}; loop: {' -> '.join(sm['loop'])}; no retries)",
        f"Lambda: {prices['check_status_memory_mb']} MB arm64, ASSUMED billed"
        f" {prices['assumed_billed_seconds_per_check']} s per check"
        f" -> ${prices['lambda_usd_per_check']:.3g} per check (same for every poller)",
        "",
        format_table(report),
        "",
        f"ours vs 60 s poller, $/1000 jobs: {ratios['ours_cost_vs_fixed_60s']:.3f}x; "
        f"ours vs 10 s poller, IICS calls: {ratios['ours_iics_calls_vs_fixed_10s']:.3f}x",
    ]
    undetected = {n: r.undetected for n, r in report["policies"].items() if r.undetected}
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
    args.output.write_text(json.dumps(to_json(report) | {"elapsed_s": round(elapsed, 3)}, indent=2) + "\n")
    print(format_report(report, elapsed))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The chaos run: many jobs through the local stack while IICS fails at random, reproducibly.

    python -m iics_monitor_local.chaos --jobs 100 --fault-rate 0.2 --seed 7     (or: make chaos)

Every job must reach its correct outcome event, exactly once, with its log archived byte for byte.
The exit code is 0 only if all of that holds. `make test` runs a 20-job version.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TextIO

from iics_monitor_local.emulator import IicsEmulator
from iics_monitor_local.stack import LocalStack, quiet_moto

USERNAME = "chaos@example.com"
PASSWORD = "chaos-password-never-printed"  # noqa: S105 - the emulator's made-up user
PARAMETERS = {"InitialWaitSeconds": 0, "MaxWaitSeconds": 1}


@dataclass
class ChaosReport:
    jobs: int
    fault_rate: float
    seed: int
    seconds: float = 0.0
    faults: dict[str, int] = field(default_factory=dict)
    iics_requests: int = 0
    correct: int = 0
    duplicates: int = 0
    logs_identical: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.correct == self.jobs and self.duplicates == 0 and self.logs_identical == self.jobs

    def table(self) -> str:
        injected = sum(self.faults.values())
        rows = [
            ("jobs", f"{self.jobs} (seed {self.seed}, fault rate {self.fault_rate:.0%})"),
            (
                "IICS requests",
                f"{self.iics_requests}, of which {injected} faulted ({injected / max(self.iics_requests, 1):.1%})",
            ),
            ("faults by kind", ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items()))),
            ("correct outcome event", f"{self.correct}/{self.jobs} ({self.correct / self.jobs:.0%})"),
            ("duplicate outcomes", str(self.duplicates)),
            (
                "logs archived byte-identical",
                f"{self.logs_identical}/{self.jobs} ({self.logs_identical / self.jobs:.0%})",
            ),
            ("wall time", f"{self.seconds:.1f} s"),
        ]
        return "\n".join(f"{name:<30} {value}" for name, value in rows)


def run(jobs: int = 100, fault_rate: float = 0.2, seed: int = 7, out: TextIO = sys.stdout) -> ChaosReport:
    report = ChaosReport(jobs=jobs, fault_rate=fault_rate, seed=seed)
    plan = random.Random(seed)
    started = time.monotonic()
    with IicsEmulator(username=USERNAME, password=PASSWORD) as emulator, LocalStack(PARAMETERS) as stack:
        stack.put_iics_secret(USERNAME, PASSWORD, emulator.url)
        capture = stack.capture_events()
        expected = {}
        for number in range(jobs):
            final = plan.choice(["SUCCESSFUL", "SUCCESSFUL", "FAILED"])
            states = ["IN_PROGRESS"] * plan.randint(0, 3) + [final]
            expected[emulator.add_job(name=f"chaos-{number:03d}", states=states)] = final
        emulator.chaos(fault_rate, seed)
        for job_id in expected:
            stack.submit({"jobId": job_id})
        for execution in stack.executions():
            stack.wait(execution["executionArn"], timeout=300)
        _check(report, stack, emulator, capture.drain(), expected)
        report.faults = emulator.chaos_faults
        report.iics_requests = len(emulator.requests)
    report.seconds = time.monotonic() - started
    print(report.table(), file=out)
    for problem in report.problems[:20]:
        print(f"  problem: {problem}", file=out)
    print("PASSED" if report.passed else "FAILED", file=out)
    return report


def _check(report: ChaosReport, stack: LocalStack, emulator: IicsEmulator, events: list[dict], expected: dict) -> None:
    per_job = Counter(e["detail"]["jobId"] for e in events)
    report.duplicates = sum(n - 1 for n in per_job.values() if n > 1) + (len(stack.executions()) - len(expected))
    s3 = stack.client("s3")
    for event in {e["detail"]["jobId"]: e for e in events}.values():
        detail = event["detail"]
        job_id = detail["jobId"]
        if detail["state"] == expected.get(job_id):
            report.correct += 1
        else:
            report.problems.append(
                f"{job_id}: {detail['state']} ({detail.get('reason')}), expected {expected.get(job_id)}"
            )
        if detail["log"] is None:
            report.problems.append(f"{job_id}: no log ({detail['logError']})")
            continue
        archived = s3.get_object(Bucket=detail["log"]["bucket"], Key=detail["log"]["key"])["Body"].read()
        if archived == emulator.log_of(job_id):
            report.logs_identical += 1
        else:
            report.problems.append(f"{job_id}: archived log differs from the served one")
    missing = set(expected) - set(per_job)
    report.problems += [f"{job_id}: no outcome event" for job_id in sorted(missing)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--fault-rate", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="also print the report as JSON")
    args = parser.parse_args(argv)
    report = run(args.jobs, args.fault_rate, args.seed)
    if args.json:
        print(json.dumps(report.__dict__, indent=2))
    return 0 if report.passed else 1


if __name__ == "__main__":
    quiet_moto()
    sys.exit(main())

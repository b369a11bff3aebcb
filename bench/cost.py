"""Cost bench: what the stack costs a month at 100, 1,000 and 10,000 jobs, fixed and per-job parts apart.

The fixed part is priced from template.yaml (the alarms, dashboards and parameters a deployment with
the given Parameters has) and from the code (every ``metrics.add_metric`` name in the layer and the
functions, times the dimension sets Powertools gives it). The per-job part is the poll-policy bench's
$/1,000 jobs for the monitor's policy (``bench.poll_policy``, run here with its defaults), not a second
model of it. Prices are us-east-1 list prices; no free tier is taken off the table (free tiers are per
account and shared with everything else in it), and one line says what CloudWatch's always-free tier
would take off if this stack had it all.

    python -m bench.cost
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from samtranslator.yaml_helper import yaml_parse

from bench import poll_policy
from bench.cold_start import _table

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
LAYER = ROOT / "layers" / "iics_monitor" / "python"
SOURCES = sorted([*LAYER.rglob("*.py"), *(ROOT / "functions").rglob("*.py")])

# us-east-1 list prices, per month unless said otherwise.
CUSTOM_METRIC_USD = 0.30  # first 10,000 metrics; billed by the hour a metric is sent in
ALARM_METRIC_USD = 0.10  # standard resolution, per metric an alarm reads (metric math: each one)
DASHBOARD_USD = 3.00
KMS_KEY_USD = 1.00  # customer managed key (ArchiveKmsKeyArn), requests not counted (bucket key)
SECRET_USD = 0.40  # Secrets Manager, per secret: the IICS credentials, and the Slack webhook if set
DYNAMODB_GB_MONTH_USD = 0.25  # on-demand tables: no charge for existing, storage only (a few KB here)
# CloudWatch's always-free tier, per account.
FREE_CUSTOM_METRICS, FREE_ALARM_METRICS, FREE_DASHBOARDS = 10, 10, 3
JOBS_A_MONTH = (100, 1_000, 10_000)
MODES = ("Minimal", "Full")

NOT_COUNTED = (
    "S3: $0.005 per 1,000 PUTs (one per archived log or package), $0.023 per GB-month of what you keep",
    "CloudWatch Logs: $0.50 per GB ingested (the functions' JSON logs and EMF lines), $0.03 per GB-month kept",
    "X-Ray (Tracing: Active): 100,000 traces a month free, then $5 per million",
    "EventBridge custom events ($1 per million: the announcement and the outcome of each job), SNS, SQS",
    "free tiers: Lambda (1M requests, 400,000 GB-s), Step Functions (4,000 transitions), DynamoDB (25 GB)",
)


# --- What the code emits ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    name: str
    minimal: bool  # published with Observability=Minimal too (``add_metric(..., minimal=True)``)


def _module(path: Path) -> str:
    return ".".join(path.relative_to(LAYER).with_suffix("").parts)


def _names(node: ast.expr, path: Path) -> list[str]:
    """The names a metric-name expression can take: a literal, either branch of ``a if c else b``, or
    ``MAPPING[key]`` for a module-level mapping of the layer (each of its values)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _names(node.body, path) + _names(node.orelse, path)
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and path.is_relative_to(LAYER):
        return list(getattr(importlib.import_module(_module(path)), node.value.id).values())
    raise ValueError(f"{path.relative_to(ROOT)}:{node.lineno}: cannot tell the metric name of {ast.unparse(node)}")


def _calls(sources: Iterable[Path], *methods: str) -> Iterable[tuple[Path, ast.Call]]:
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in methods:
                yield path, node


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def emitted_metrics(sources: Sequence[Path] = SOURCES) -> list[Metric]:
    """Every metric name the code can publish, sorted, each marked whether Minimal keeps it."""
    found: dict[str, bool] = {}
    for path, call in _calls(sources, "add_metric"):
        if not (isinstance(call.func.value, ast.Name) and call.func.value.id == "metrics"):
            continue  # MonitorMetrics passing a name on to Powertools
        minimal = _keyword(call, "minimal")
        for name in _names(_keyword(call, "name"), path):
            found[name] = found.get(name, False) or (isinstance(minimal, ast.Constant) and minimal.value is True)
    return [Metric(name, minimal) for name, minimal in sorted(found.items())]


def dimension_sets(template: Mapping[str, Any], sources: Sequence[Path] = SOURCES) -> list[dict[str, str]]:
    """The dimension sets each metric is published with: Powertools adds ``service`` (the function's
    POWERTOOLS_SERVICE_NAME) and nothing else unless the code asks for more, which this bench refuses
    to guess at."""
    extra = [f"{p.relative_to(ROOT)}:{c.lineno}" for p, c in _calls(sources, "add_dimension", "set_default_dimensions")]
    extra += [f"{p.relative_to(ROOT)}:{c.lineno}" for p, c in _calls(sources, "log_metrics") if c.keywords]
    if extra:
        raise ValueError(
            f"metrics with dimensions other than service ({', '.join(extra)}): price them in bench/cost.py"
        )
    default = template["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
    services = {default}
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            variables = resource["Properties"].get("Environment", {}).get("Variables", {})
            services.add(variables.get("POWERTOOLS_SERVICE_NAME", default))
    return [{"service": service} for service in sorted(services)]


# --- What the template deploys ---------------------------------------------------------------------


def _value(node: Any, template: Mapping[str, Any], parameters: Mapping[str, str]) -> Any:
    """A condition or value as CloudFormation evaluates it (the intrinsics Conditions use here)."""
    if isinstance(node, dict):
        ((function, argument),) = node.items()
        if function == "Ref":
            return str(parameters.get(argument, template["Parameters"][argument].get("Default", "")))
        if function == "Condition":
            return _value(template["Conditions"][argument], template, parameters)
        values = [_value(a, template, parameters) for a in argument]
        operations = {
            "Fn::Equals": lambda v: v[0] == v[1],
            "Fn::Not": lambda v: not v[0],
            "Fn::And": all,
            "Fn::Or": any,
        }
        return operations[function](values)
    return str(node)


def deployed(template: Mapping[str, Any], parameters: Mapping[str, str]) -> dict[str, dict]:
    """The resources a stack with these Parameters has (those whose Condition holds)."""
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if "Condition" not in resource or _value({"Condition": resource["Condition"]}, template, parameters)
    }


def alarm_metrics(alarm: Mapping[str, Any]) -> int:
    """Metrics an alarm reads, as CloudWatch bills them: one, or each MetricStat of a metric math alarm."""
    queries = alarm["Properties"].get("Metrics")
    return sum("MetricStat" in q for q in queries) if queries else 1


@dataclass(frozen=True)
class Line:
    what: str
    count: int
    usd: float
    detail: str


@dataclass(frozen=True)
class Report:
    parameters: dict[str, str]
    lines: tuple[Line, ...]  # the stack's own fixed cost
    outside: tuple[Line, ...]  # paid for the stack, not in it (the secrets it reads)
    free_tier_usd: float  # what CloudWatch's always-free tier would take off the stack's part

    @property
    def fixed_usd(self) -> float:
        return sum(line.usd for line in self.lines)

    @property
    def outside_usd(self) -> float:
        return sum(line.usd for line in self.outside)


def _parameter(template: Mapping[str, Any], parameters: Mapping[str, str], name: str) -> str:
    return _value({"Ref": name}, template, parameters)


def price(template: Mapping[str, Any], metrics: Sequence[Metric], parameters: Mapping[str, str]) -> Report:
    """The monthly fixed cost of a deployment of ``template`` with ``parameters`` (others: defaults)."""
    resources = deployed(template, parameters)
    minimal = _parameter(template, parameters, "Observability") == "Minimal"
    published = [m.name for m in metrics if m.minimal or not minimal]
    sets = dimension_sets(template)
    custom = len(published) * len(sets)
    alarms = [r for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    alarm_count = sum(alarm_metrics(a) for a in alarms)
    dashboards = sum(r["Type"] == "AWS::CloudWatch::Dashboard" for r in resources.values())
    tables = sum(r["Type"] == "AWS::DynamoDB::Table" for r in resources.values())
    kms = int(bool(_parameter(template, parameters, "ArchiveKmsKeyArn")))
    secrets = 1 + int(bool(_parameter(template, parameters, "SlackWebhookSecretName")))
    lines = (
        Line("custom metrics", custom, custom * CUSTOM_METRIC_USD, f"{len(published)} names x {len(sets)} set"),
        Line("alarms", alarm_count, alarm_count * ALARM_METRIC_USD, f"{len(alarms)} alarms, {alarm_count} metrics"),
        Line("dashboards", dashboards, dashboards * DASHBOARD_USD, ""),
        Line("DynamoDB tables", tables, 0.0, "on-demand: requests per job, storage a few KB"),
        Line("KMS key", kms, kms * KMS_KEY_USD, "ArchiveKmsKeyArn"),
    )
    free = (
        min(custom, FREE_CUSTOM_METRICS) * CUSTOM_METRIC_USD
        + min(alarm_count, FREE_ALARM_METRICS) * ALARM_METRIC_USD
        + min(dashboards, FREE_DASHBOARDS) * DASHBOARD_USD
    )
    outside = (Line("Secrets Manager secrets", secrets, secrets * SECRET_USD, "IICS credentials (+ Slack webhook)"),)
    return Report(dict(parameters), lines, outside, free)


# --- The table ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    jobs: int
    fixed_usd: float
    outside_usd: float
    per_job_usd: float

    @property
    def total_usd(self) -> float:
        return self.fixed_usd + self.outside_usd + self.per_job_usd


def monthly_rows(report: Report, usd_per_1000_jobs: float, jobs: Sequence[int] = JOBS_A_MONTH) -> list[Row]:
    return [Row(n, report.fixed_usd, report.outside_usd, n * usd_per_1000_jobs / 1000) for n in jobs]


def format_table(reports: Mapping[str, Report], usd_per_1000_jobs: float) -> str:
    rows = [
        [
            mode,
            f"{row.jobs:,}",
            f"${row.fixed_usd:.2f}",
            f"${row.outside_usd:.2f}",
            f"${row.per_job_usd:.2f}",
            f"${row.total_usd:.2f}",
        ]
        for mode, report in reports.items()
        for row in monthly_rows(report, usd_per_1000_jobs)
    ]
    return _table(["Observability", "jobs a month", "stack, fixed", "secrets", "per job", "total a month"], rows)


def format_breakdown(reports: Mapping[str, Report]) -> str:
    rows = [
        [mode, line.what, str(line.count), f"${line.usd:.2f}", line.detail]
        for mode, report in reports.items()
        for line in (*report.lines, *report.outside)
    ]
    return _table(["Observability", "item", "count", "$ a month", "what"], rows)


def format_report(reports: Mapping[str, Report], usd_per_1000_jobs: float, metrics: Sequence[Metric]) -> str:
    kept = ", ".join(m.name for m in metrics if m.minimal)
    out = [
        "Monthly cost, us-east-1 list prices, template defaults (Observability as shown); no free tier taken off.",
        f"Prices: custom metric ${CUSTOM_METRIC_USD:.2f} (first 10,000; prorated by the hours it is sent in: the"
        f" table assumes every hour, an upper bound); alarm ${ALARM_METRIC_USD:.2f} per metric it reads;"
        f" dashboard ${DASHBOARD_USD:.2f}; KMS key ${KMS_KEY_USD:.2f} (when ArchiveKmsKeyArn is set);"
        f" secret ${SECRET_USD:.2f}; DynamoDB on-demand (no charge for a table,"
        f" ${DYNAMODB_GB_MONTH_USD} per GB-month).",
        f"Per job: ${usd_per_1000_jobs:.3f} per 1,000 jobs, the poll-policy bench's figure for the monitor's policy"
        " (Step Functions $0.025 per 1,000 transitions, Lambda $0.20 per 1M requests and $0.0000133334 per"
        " GB-s arm64, the history table's DynamoDB requests; jobs of 10 s to 4 h).",
        f"Metrics from the code: {len(metrics)} names; Minimal keeps {kept}.",
        "",
        format_table(reports, usd_per_1000_jobs),
        "",
        format_breakdown(reports),
        "",
    ]
    out += [
        f"With CloudWatch's always-free tier (10 metrics, 10 alarm metrics, 3 dashboards) all for this stack,"
        f" {mode}'s fixed part is ${report.fixed_usd - report.free_tier_usd:.2f}."
        for mode, report in reports.items()
    ]
    out += ["Not counted:", *(f"- {item}" for item in NOT_COUNTED)]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    template = yaml_parse(TEMPLATE.read_text())
    metrics = emitted_metrics()
    reports = {mode: price(template, metrics, {"Observability": mode}) for mode in MODES}
    per_1000 = poll_policy.run()["policies"][poll_policy.OURS].usd_per_1000_jobs
    print(format_report(reports, per_1000, metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

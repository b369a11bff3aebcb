"""The cost bench reads what it prices: the template's alarms, dashboard and parameters, and the
metric names the code emits. Edit a copy of the template and the fixed cost moves with it."""

from __future__ import annotations

import pytest
from samtranslator.yaml_helper import yaml_parse

from bench import cost
from tests.conftest import ROOT

TEMPLATE_TEXT = (ROOT / "template.yaml").read_text()
PER_1000_JOBS = 1.361  # the poll-policy bench's figure is passed in: these tests price the stack, not the polls


@pytest.fixture
def template():
    return yaml_parse(TEMPLATE_TEXT)


def fixed(template, **parameters) -> float:
    return cost.price(template, cost.emitted_metrics(), parameters).fixed_usd


def test_removing_an_alarm_lowers_the_fixed_cost_by_its_price(template):
    before = fixed(template)
    del template["Resources"]["ExecutionsAbortedAlarm"]

    assert fixed(template) == pytest.approx(before - cost.ALARM_METRIC_USD)


def test_a_metric_math_alarm_is_priced_per_metric_it_reads(template):
    (line,) = [x for x in cost.price(template, cost.emitted_metrics(), {}).lines if x.what == "alarms"]
    del template["Resources"]["ExecutionsFailedAlarm"]
    (after,) = [x for x in cost.price(template, cost.emitted_metrics(), {}).lines if x.what == "alarms"]

    assert line.usd - after.usd == pytest.approx(2 * cost.ALARM_METRIC_USD)  # failed - errorOutcomes


def test_full_adds_the_dashboard_the_other_alarms_and_every_metric():
    template = yaml_parse(TEMPLATE_TEXT)
    metrics = cost.emitted_metrics()
    minimal, full = (cost.price(template, metrics, {"Observability": m}) for m in ("Minimal", "Full"))
    lines = {x.what: x for x in full.lines}

    assert lines["dashboards"].count == 1 and lines["dashboards"].usd == cost.DASHBOARD_USD
    assert {x.what: x.count for x in minimal.lines}["dashboards"] == 0
    assert lines["custom metrics"].count == len(metrics)
    assert {x.what: x.count for x in minimal.lines}["custom metrics"] == len([m for m in metrics if m.minimal])
    assert full.fixed_usd > minimal.fixed_usd


def test_the_default_costs_under_two_dollars_a_month_at_list_price(template):
    assert template["Parameters"]["Observability"]["Default"] == "Minimal"
    assert fixed(template) < 2.0


def test_a_kms_key_adds_its_monthly_price(template):
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

    assert fixed(template, ArchiveKmsKeyArn=key) == pytest.approx(fixed(template) + cost.KMS_KEY_USD)


def test_metrics_come_from_the_code_and_outcomes_are_kept_in_minimal():
    metrics = {m.name: m for m in cost.emitted_metrics()}

    assert {"Polls", "DetectionDelay", "LogArchiveFailures", "SlackPosts"} <= set(metrics)
    assert {n for n, m in metrics.items() if m.minimal} == {"OutcomeSuccessful", "OutcomeFailed", "OutcomeTimedOut"}


def test_each_metric_is_one_custom_metric_per_dimension_set(template):
    # Powertools adds one dimension, service, the same for every function: one set per name.
    assert cost.dimension_sets(template) == [{"service": "iics-export-monitor"}]
    template["Resources"]["CheckStatusFunction"]["Properties"]["Environment"] = {
        "Variables": {"POWERTOOLS_SERVICE_NAME": "checker"}
    }
    assert len(cost.dimension_sets(template)) == 2


def test_the_table_splits_fixed_and_per_job_parts(template):
    report = cost.price(template, cost.emitted_metrics(), {})
    rows = cost.monthly_rows(report, PER_1000_JOBS)

    assert [r.jobs for r in rows] == [100, 1_000, 10_000]
    for row in rows:
        assert row.per_job_usd == pytest.approx(row.jobs * PER_1000_JOBS / 1000)
        assert row.total_usd == pytest.approx(report.fixed_usd + report.outside_usd + row.per_job_usd)


def test_the_docs_show_the_breakdown_the_bench_prints(template):
    metrics = cost.emitted_metrics()
    reports = {mode: cost.price(template, metrics, {"Observability": mode}) for mode in cost.MODES}

    assert cost.format_breakdown(reports) in (ROOT / "docs" / "cost.md").read_text()


def test_the_readme_cost_table_is_the_one_the_bench_computes(template):
    """The README's rows are `make bench`'s figures (per job at the poll-policy bench's $1.361 / 1,000)."""
    import re

    metrics = cost.emitted_metrics()
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(
        r"^\| (Minimal|Full)[^|]*\| ([\d,]+) \| \$([\d.]+) \| \$([\d.]+) \| \$([\d.]+) \| \$([\d.]+) \|", readme, re.M
    )
    assert len(rows) >= 4
    per_1000 = float(re.search(r"Per job: \$([\d.]+) per 1,000 jobs", readme)[1])  # the poll-policy bench's
    for mode, jobs, fixed, outside, per_job, total in rows:
        report = cost.price(template, metrics, {"Observability": mode})
        (row,) = cost.monthly_rows(report, per_1000, [int(jobs.replace(",", ""))])
        assert (fixed, outside, per_job, total) == tuple(
            f"{v:.2f}" for v in (row.fixed_usd, row.outside_usd, row.per_job_usd, row.total_usd)
        ), (mode, jobs)

"""The cold-start bench itself: one handler, one fresh-process run, and the shape of what it reports."""

from __future__ import annotations

import json

from bench import cold_start as bench
from iics_monitor_local import template


def test_one_handler_one_run_reports_medians_ratios_and_verdicts():
    results = bench.measure_imports(["check_status"], repeats=1, warmup=False)
    assert [r.name for r in results] == [bench.BARE, "check_status"]
    assert all(len(r.import_ms) == 1 and r.import_ms[0] > 0 and r.modules > 0 for r in results)

    cold = bench.import_report(results)
    assert cold["repeats"] == 1
    assert set(cold["handlers"]) == {bench.BARE, "check_status"}
    assert cold["handlers"][bench.BARE]["ratio_to_bare_boto3"] == 1.0
    row = cold["handlers"]["check_status"]
    assert {"median_import_ms", "median_process_ms", "ratio_to_bare_boto3", "modules_imported", "pass"} <= set(row)
    assert row["pass"] == (row["ratio_to_bare_boto3"] <= bench.RATIO_TARGET) == cold["pass"]

    table = bench.format_table(cold, None)
    assert "check_status" in table and bench.BARE in table
    assert json.loads(json.dumps(cold)) == cold  # as written to bench/results.json


def test_the_child_gets_the_template_environment_and_the_layer_on_its_path():
    env = bench.child_env(bench.FUNCTIONS / "notify_slack", "notify_slack")
    assert env["POWERTOOLS_SERVICE_NAME"] == "iics-export-monitor"
    assert env["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert env["SLACK_WEBHOOK_SECRET_NAME"]
    assert env["PYTHONPATH"].split(":") == [str(bench.LAYER_PYTHON), str(bench.FUNCTIONS / "notify_slack")]


def test_the_layer_report_gives_sizes_per_package_and_the_verdict():
    layer = bench.measure_layer(use_make=False)  # the venv fallback: no registry needed

    assert layer["method"] == "venv" and layer["note"]
    assert layer["runtime_sdk_in_layer"] == [] and layer["left_to_runtime"] == list(bench.RUNTIME_SDK)
    assert {"aws_lambda_powertools", "iics_monitor", "urllib3"} <= set(layer["packages"])
    assert sum(p["zipped_bytes"] for p in layer["packages"].values()) <= layer["zip_bytes"]
    assert layer["pass"] == (layer["zip_mib"] <= bench.LAYER_TARGET_MIB)

    cold = bench.import_report(bench.measure_imports(["notify_topic"], repeats=1, warmup=False))
    report = bench.format_report(cold, layer, elapsed_s=1.0)
    assert "layer ships: aws_lambda_powertools 3.37.0" in report
    assert f"{'PASS' if layer['pass'] else 'GAP '} layer zip <= 5 MiB" in report


def test_each_child_gets_every_variable_the_template_gives_its_function():
    sam = template.load()
    parameters = sam["Parameters"]
    for handler in bench.HANDLERS:
        (function,) = [
            r["Properties"]
            for r in sam["Resources"].values()
            if r["Type"] == "AWS::Serverless::Function" and r["Properties"]["CodeUri"] == f"functions/{handler}/"
        ]
        declared = sam["Globals"]["Function"]["Environment"]["Variables"] | function.get("Environment", {}).get(
            "Variables", {}
        )

        env = bench.child_env(bench.FUNCTIONS / handler, handler)

        assert set(declared) <= set(env), f"{handler} lacks {sorted(set(declared) - set(env))}"
    # Parameters at their defaults, as `sam deploy` without overrides sets them (and the bench's Slack secret)
    assert env["POWERTOOLS_LOG_LEVEL"] == parameters["LogLevel"]["Default"]
    assert env["IICS_READ_TIMEOUT_SECONDS"] == str(parameters["IicsReadTimeoutSeconds"]["Default"])

"""The archive bench itself, on a 16 MiB log: real servers and workers on 127.0.0.1, verified bytes, sane figures."""

from __future__ import annotations

import json

import pytest

from bench import archive as bench
from bench.cold_start import function_env

SIZE_MIB = 16


@pytest.fixture(scope="module")
def result():
    measured, elapsed = bench.run_bench(SIZE_MIB, rounds=1)
    measured["elapsed_seconds"] = elapsed
    return measured


def test_both_workers_store_the_log_byte_for_byte(result):
    assert result["log_bytes"] == SIZE_MIB * bench.MIB and len(result["log_sha256"]) == 64
    assert result["pass"]["verified"]
    assert all(result["workers"][kind]["verified"] for kind in bench.WORKERS)


def test_the_figures_are_present_and_plausible(result):
    assert result["rounds"] == 1 and result["rss_method"] in ("VmHWM", "ru_maxrss")
    for kind in bench.WORKERS:
        worker = result["workers"][kind]
        assert 0 < worker["median_upload_seconds"] <= worker["median_seconds"] < 60
        assert worker["mib_per_s"] == pytest.approx(SIZE_MIB / worker["median_seconds"], rel=0.05)
        assert 20 < worker["baseline_rss_mib"] < 500  # the interpreter, boto3 and Powertools
    # The naive worker holds the whole log; ours holds a few 8 MiB parts at most.
    assert result["workers"]["naive"]["peak_rss_growth_mib"] >= SIZE_MIB * 0.9
    assert 0 < result["workers"]["ours"]["peak_rss_growth_mib"] <= bench.RSS_TARGET_MIB
    ratio = result["workers"]["naive"]["median_seconds"] / result["workers"]["ours"]["median_seconds"]
    assert result["throughput_ratio"] == pytest.approx(ratio, abs=0.01)
    assert result["pass"]["throughput"] == (result["throughput_ratio"] >= bench.RATIO_TARGET)


def test_the_report_prints_a_table_and_verdicts(result):
    report = bench.format_report(result, result["elapsed_seconds"])
    assert "ours (LogArchiver.put_log, streamed)" in report and "naive (read whole, one put_object)" in report
    assert "peak RSS growth <= 64 MiB" in report and "throughput >= 1x naive" in report
    assert json.loads(json.dumps(result)) == result  # as written to bench/results.json


def test_the_worker_environment_points_boto3_at_the_local_endpoint_only():
    env = bench.worker_env("http://127.0.0.1:5999", "ours")
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5999"
    assert env["ARCHIVE_BUCKET"] == bench.BUCKET and env["ARCHIVE_PREFIX"] == "ours/"
    assert env["AWS_SHARED_CREDENTIALS_FILE"].startswith("/nonexistent")


def test_the_worker_runs_as_the_template_configures_the_archive_function_with_its_tables_off():
    env = bench.worker_env("http://127.0.0.1:5999", "ours")

    deployed = function_env("archive_log")
    assert set(deployed) <= set(env)
    assert env["ARCHIVE_MAX_BYTES"] == deployed["ARCHIVE_MAX_BYTES"]  # what the template sets, not a copy
    # the workers' moto has no tables: durations, request counts and verdicts are off, not pointed at nothing
    assert [env[name] for name in ("HISTORY_TABLE", "IICS_REQUEST_TABLE", "VERDICT_TABLE")] == ["", "", ""]

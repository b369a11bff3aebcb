"""bench/results.json is shared: each bench replaces only its own keys, whichever runs, alone or in `make bench`."""

from __future__ import annotations

import json

from bench import archive, cold_start, poll_policy, scale
from bench.results import RESULTS, merge_results


def test_a_bench_replaces_its_own_keys_and_keeps_the_others(tmp_path):
    out = tmp_path / "results.json"
    out.write_text(json.dumps({"cold_start": {"kept": 1}, "archive": {"old": True}}))

    merge_results(out, {"archive": {"new": True}})

    assert json.loads(out.read_text()) == {"cold_start": {"kept": 1}, "archive": {"new": True}}
    assert list(tmp_path.iterdir()) == [out]  # written whole in one step: no partial file left beside it


def test_the_first_bench_to_run_makes_the_file(tmp_path):
    out = tmp_path / "results.json"

    merge_results(out, {"scale": {"jobs": 1}})

    assert json.loads(out.read_text()) == {"scale": {"jobs": 1}}


def test_the_poll_policy_bench_run_alone_keeps_the_other_benches_results(tmp_path):
    out = tmp_path / "results.json"
    out.write_text(json.dumps({"cold_start": {"kept": 1}, "scale": {"kept": 2}}))

    assert poll_policy.main(["--jobs", "50", "--seed", "3", "--output", str(out)]) == 0

    written = json.loads(out.read_text())
    assert written["cold_start"] == {"kept": 1} and written["scale"] == {"kept": 2}
    assert written["jobs"] == 50 and written["policies"]


def test_every_bench_writes_the_one_results_file():
    assert {archive.RESULTS, cold_start.RESULTS, poll_policy.RESULTS, scale.RESULTS} == {RESULTS}

"""The functions' timeouts cover the worst case their network timeouts allow."""

from __future__ import annotations

from samtranslator.yaml_helper import yaml_parse

from iics_monitor.client import CONNECT_TIMEOUT_SECONDS
from iics_monitor.config import CheckConfig
from tests.conftest import ROOT

TEMPLATE = yaml_parse((ROOT / "template.yaml").read_text())
# login, status, a fresh login after a 401, status again: the most IICS calls one check makes
CALLS_PER_CHECK = 4


def timeout_of(logical_id: str) -> int:
    function = TEMPLATE["Resources"][logical_id]["Properties"]
    return function.get("Timeout", TEMPLATE["Globals"]["Function"]["Timeout"])


def test_a_status_check_ends_before_its_lambda_times_out():
    env = {
        "IICS_SECRET_NAME": "s",
        "DEFAULT_INITIAL_WAIT_SECONDS": "1",
        "DEFAULT_MAX_WAIT_SECONDS": "1",
        "DEFAULT_TIMEOUT_SECONDS": "1",
        "MAX_POLLS": "1",
        "IICS_READ_TIMEOUT_SECONDS": str(TEMPLATE["Parameters"]["IicsReadTimeoutSeconds"]["MaxValue"]),
    }
    slowest = CheckConfig.from_env(env).read_timeout_seconds
    worst = CALLS_PER_CHECK * (CONNECT_TIMEOUT_SECONDS + slowest)
    assert timeout_of("CheckStatusFunction") >= worst + 5, f"worst case {worst} s"


def test_the_archive_step_has_the_longest_timeout_lambda_allows():
    assert timeout_of("ArchiveLogFunction") == 900

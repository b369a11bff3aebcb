"""The functions' timeouts cover the worst case their network timeouts allow."""

from __future__ import annotations

from samtranslator.yaml_helper import yaml_parse

from iics_monitor.client import CONNECT_TIMEOUT_SECONDS
from iics_monitor.config import CheckConfig
from iics_monitor.policy import RELATIVE_WAIT
from iics_monitor.validation import MonitorSettings
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


def check_config(read_timeout: int, inline_wait: int) -> CheckConfig:
    settings = MonitorSettings(initial_wait_seconds=1, max_wait_seconds=1, timeout_seconds=1)
    return CheckConfig("s", settings, 1, read_timeout_seconds=read_timeout, inline_wait_seconds=inline_wait)


def test_the_longest_inline_sleep_still_leaves_the_reserve_for_the_last_check():
    params = TEMPLATE["Parameters"]
    longest = check_config(params["IicsReadTimeoutSeconds"]["MaxValue"], params["InlineWaitSeconds"]["MaxValue"])

    assert timeout_of("CheckStatusFunction") >= longest.inline_wait_seconds + longest.inline_reserve_seconds


def test_at_the_defaults_a_young_jobs_inline_checks_fit_in_one_invocation():
    # waits grow to InlineWaitSeconds at age InlineWaitSeconds / RELATIVE_WAIT; then the last sleep and the reserve
    params = TEMPLATE["Parameters"]
    defaults = check_config(params["IicsReadTimeoutSeconds"]["Default"], params["InlineWaitSeconds"]["Default"])
    inline_phase = defaults.inline_wait_seconds / RELATIVE_WAIT + defaults.inline_wait_seconds

    assert timeout_of("CheckStatusFunction") >= inline_phase + defaults.inline_reserve_seconds


def test_the_archive_step_has_the_longest_timeout_lambda_allows():
    assert timeout_of("ArchiveLogFunction") == 900

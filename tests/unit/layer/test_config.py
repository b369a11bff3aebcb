"""config: each function's environment becomes a typed object, or a ConfigError naming the variable."""

from __future__ import annotations

import pytest

from iics_monitor.config import MAX_POLLS_CEILING, ArchiveConfig, CheckConfig, ExportConfig
from iics_monitor.errors import ConfigError
from iics_monitor.hosts import HostPolicy
from iics_monitor.validation import MonitorSettings

CHECK_ENV = {
    "IICS_SECRET_NAME": "iics/export-monitor",
    "DEFAULT_INITIAL_WAIT_SECONDS": "15",
    "DEFAULT_MAX_WAIT_SECONDS": "300",
    "DEFAULT_TIMEOUT_SECONDS": "21600",
    "MAX_POLLS": "2000",
}
ARCHIVE_ENV = {
    "IICS_SECRET_NAME": "iics/export-monitor",
    "ARCHIVE_BUCKET": "iics-export-logs-123456789012",
    "ARCHIVE_PREFIX": "iics/exports/",
}


def without(env: dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in env.items() if k != name}


# --- CheckConfig ------------------------------------------------------------------------------------------------------


def test_the_check_config_is_read_from_the_environment():
    config = CheckConfig.from_env(CHECK_ENV)

    assert config == CheckConfig(
        secret_name="iics/export-monitor",
        defaults=MonitorSettings(initial_wait_seconds=15, max_wait_seconds=300, timeout_seconds=21600),
        max_polls=2000,
    )


def test_inline_checks_and_history_are_off_unless_configured():
    config = CheckConfig.from_env(CHECK_ENV)

    assert (config.inline_wait_seconds, config.history_table) == (0, None)
    assert ArchiveConfig.from_env(ARCHIVE_ENV).history_table is None


def test_inline_wait_history_table_and_the_inline_reserve_are_read():
    env = CHECK_ENV | {
        "INLINE_WAIT_SECONDS": "20",
        "HISTORY_TABLE": "stack-DurationHistoryTable-1AB",
        "IICS_READ_TIMEOUT_SECONDS": "20",
    }

    config = CheckConfig.from_env(env)

    assert (config.inline_wait_seconds, config.history_table) == (20, "stack-DurationHistoryTable-1AB")
    assert config.inline_reserve_seconds == 50  # a re-login and a status call: 2 x (5 s connect + 20 s read)
    assert ArchiveConfig.from_env(ARCHIVE_ENV | {"HISTORY_TABLE": "t-1"}).history_table == "t-1"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("INLINE_WAIT_SECONDS", "61"),
        ("INLINE_WAIT_SECONDS", "-1"),
        ("INLINE_WAIT_SECONDS", "soon"),
        ("HISTORY_TABLE", "no spaces"),
        ("HISTORY_TABLE", "ab"),
    ],
)
def test_a_bad_inline_wait_or_table_name_fails_naming_it(name, text):
    with pytest.raises(ConfigError, match=f"environment variable {name}"):
        CheckConfig.from_env(CHECK_ENV | {name: text})


def test_surrounding_whitespace_is_ignored():
    config = CheckConfig.from_env(CHECK_ENV | {"MAX_POLLS": " 12 \n", "IICS_SECRET_NAME": "  name  "})

    assert (config.max_polls, config.secret_name) == (12, "name")


@pytest.mark.parametrize("name", sorted(CHECK_ENV))
def test_each_missing_check_variable_fails_naming_it(name):
    with pytest.raises(ConfigError, match=f"environment variable {name} is not set"):
        CheckConfig.from_env(without(CHECK_ENV, name))


@pytest.mark.parametrize("name", sorted(CHECK_ENV))
@pytest.mark.parametrize("blank", ["", "   "])
def test_each_blank_check_variable_fails_naming_it(name, blank):
    with pytest.raises(ConfigError, match=f"environment variable {name} is not set"):
        CheckConfig.from_env(CHECK_ENV | {name: blank})


@pytest.mark.parametrize(
    "name", ["DEFAULT_INITIAL_WAIT_SECONDS", "DEFAULT_MAX_WAIT_SECONDS", "DEFAULT_TIMEOUT_SECONDS", "MAX_POLLS"]
)
@pytest.mark.parametrize("text", ["ten", "1.5", "1e3", "0x10", "15s"])
def test_a_number_variable_that_is_not_a_whole_number_fails_naming_it(name, text):
    with pytest.raises(ConfigError) as caught:
        CheckConfig.from_env(CHECK_ENV | {name: text})

    assert str(caught.value) == f"environment variable {name} must be a whole number, got {text!r}"


def test_the_error_for_a_huge_bad_number_does_not_echo_it():
    with pytest.raises(ConfigError) as caught:
        CheckConfig.from_env(CHECK_ENV | {"MAX_POLLS": "x" * 10_000})

    assert len(str(caught.value)) < 120


@pytest.mark.parametrize("text", ["0", "-1", str(MAX_POLLS_CEILING + 1)])
def test_max_polls_outside_1_to_the_ceiling_fails_naming_it(text):
    with pytest.raises(ConfigError, match="environment variable MAX_POLLS must be from 1 to 2000"):
        CheckConfig.from_env(CHECK_ENV | {"MAX_POLLS": text})


@pytest.mark.parametrize("text", ["1", str(MAX_POLLS_CEILING)])
def test_max_polls_on_the_bounds_is_accepted(text):
    assert CheckConfig.from_env(CHECK_ENV | {"MAX_POLLS": text}).max_polls == int(text)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("DEFAULT_INITIAL_WAIT_SECONDS", "3601"),
        ("DEFAULT_INITIAL_WAIT_SECONDS", "-1"),
        ("DEFAULT_MAX_WAIT_SECONDS", "3601"),
        ("DEFAULT_TIMEOUT_SECONDS", "0"),
    ],
)
def test_a_default_outside_its_bounds_is_a_config_error(name, text):
    with pytest.raises(ConfigError):
        CheckConfig.from_env(CHECK_ENV | {name: text})


@pytest.mark.parametrize(
    ("bad", "name"),
    [
        ({"DEFAULT_INITIAL_WAIT_SECONDS": "3601"}, "DEFAULT_INITIAL_WAIT_SECONDS"),
        ({"DEFAULT_MAX_WAIT_SECONDS": "3601"}, "DEFAULT_MAX_WAIT_SECONDS"),
        ({"DEFAULT_TIMEOUT_SECONDS": "0"}, "DEFAULT_TIMEOUT_SECONDS"),
        ({"DEFAULT_INITIAL_WAIT_SECONDS": "600", "DEFAULT_MAX_WAIT_SECONDS": "60"}, "DEFAULT_MAX_WAIT_SECONDS"),
    ],
)
def test_a_default_outside_its_bounds_fails_naming_the_variable(bad, name):
    with pytest.raises(ConfigError, match=name):
        CheckConfig.from_env(CHECK_ENV | bad)


# --- ArchiveConfig ----------------------------------------------------------------------------------------------------


def test_the_archive_config_is_read_from_the_environment():
    assert ArchiveConfig.from_env(ARCHIVE_ENV) == ArchiveConfig(
        secret_name="iics/export-monitor", bucket="iics-export-logs-123456789012", prefix="iics/exports/"
    )


@pytest.mark.parametrize("name", ["IICS_SECRET_NAME", "ARCHIVE_BUCKET"])
def test_each_missing_archive_variable_fails_naming_it(name):
    with pytest.raises(ConfigError, match=f"environment variable {name} is not set"):
        ArchiveConfig.from_env(without(ARCHIVE_ENV, name))


@pytest.mark.parametrize("prefix", ["", "logs/", "a/b/c/", "iics-exports_2026/", "it's(ok)!/"])
def test_an_empty_or_slash_terminated_prefix_is_accepted(prefix):
    assert ArchiveConfig.from_env(ARCHIVE_ENV | {"ARCHIVE_PREFIX": prefix}).prefix == prefix


def test_a_missing_prefix_means_the_bucket_root():
    assert ArchiveConfig.from_env(without(ARCHIVE_ENV, "ARCHIVE_PREFIX")).prefix == ""


@pytest.mark.parametrize("bucket", ["abc", "my.bucket-1", "a" * 63, "0starts-with-digit"])
def test_a_valid_bucket_name_is_accepted(bucket):
    assert ArchiveConfig.from_env(ARCHIVE_ENV | {"ARCHIVE_BUCKET": bucket}).bucket == bucket


@pytest.mark.parametrize(
    "bucket",
    [
        pytest.param("ab", id="too-short"),
        pytest.param("a" * 64, id="too-long"),
        pytest.param("My-Bucket", id="upper-case"),
        pytest.param("my_bucket", id="underscore"),
        pytest.param("-bucket", id="leading-hyphen"),
        pytest.param("bucket-", id="trailing-hyphen"),
        pytest.param("bucket/logs", id="slash"),
        pytest.param("s3://bucket", id="url"),
        pytest.param("arn:aws:s3:::bucket", id="arn"),
    ],
)
def test_an_invalid_bucket_name_fails_naming_the_variable(bucket):
    with pytest.raises(ConfigError, match="environment variable ARCHIVE_BUCKET is not a valid bucket name"):
        ArchiveConfig.from_env(ARCHIVE_ENV | {"ARCHIVE_BUCKET": bucket})


@pytest.mark.parametrize(
    "prefix",
    [
        pytest.param("logs", id="no-trailing-slash"),
        pytest.param("/logs/", id="leading-slash"),
        pytest.param("/", id="only-slash"),
        pytest.param("a//b/", id="empty-segment"),
        pytest.param("logs /", id="space"),
        pytest.param("lögs/", id="unicode"),
        pytest.param("logs/{jobId}/", id="braces"),
        pytest.param("logs\n/", id="newline"),
        pytest.param("logs*/", id="iam-wildcard-star"),  # s3:PutObject on <prefix>* would reach other keys
        pytest.param("logs?/", id="iam-wildcard-question-mark"),
    ],
)
def test_an_invalid_prefix_fails_naming_the_variable(prefix):
    with pytest.raises(ConfigError, match="environment variable ARCHIVE_PREFIX must be empty or end with '/'"):
        ArchiveConfig.from_env(ARCHIVE_ENV | {"ARCHIVE_PREFIX": prefix})


def test_the_request_budget_is_read_only_when_it_is_above_zero():
    budget = {"IICS_REQUESTS_PER_SECOND": "16", "IICS_REQUEST_TABLE": "stack-RequestBudgetTable-1AB"}

    limit = CheckConfig.from_env(CHECK_ENV | budget).request_limit
    assert (limit.table, limit.per_second) == ("stack-RequestBudgetTable-1AB", 16)
    assert (
        CheckConfig.from_env(CHECK_ENV | {"IICS_REQUESTS_PER_SECOND": "0", "IICS_REQUEST_TABLE": ""}).request_limit
        is None
    )
    assert ArchiveConfig.from_env(ARCHIVE_ENV | budget).request_limit.per_second == 16


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"IICS_REQUESTS_PER_SECOND": "16"}, "IICS_REQUEST_TABLE"),
        ({"IICS_REQUESTS_PER_SECOND": "1001", "IICS_REQUEST_TABLE": "t-1"}, "IICS_REQUESTS_PER_SECOND"),
        ({"IICS_REQUESTS_PER_SECOND": "5", "IICS_REQUEST_TABLE": "no spaces"}, "IICS_REQUEST_TABLE"),
    ],
)
def test_a_bad_request_budget_fails_naming_the_variable(variables, named):
    with pytest.raises(ConfigError, match=f"environment variable {named}"):
        CheckConfig.from_env(CHECK_ENV | variables)


# --- the hosts the IICS client may reach ------------------------------------------------------------------------------

EXPORT_ENV = {
    "IICS_SECRET_NAME": "iics/export-monitor",
    "DEFAULT_INITIAL_WAIT_SECONDS": "15",
    "DEFAULT_MAX_WAIT_SECONDS": "300",
    "DEFAULT_TIMEOUT_SECONDS": "21600",
}


@pytest.mark.parametrize(
    ("config", "env"), [(CheckConfig, CHECK_ENV), (ExportConfig, EXPORT_ENV), (ArchiveConfig, ARCHIVE_ENV)]
)
def test_each_iics_function_reads_the_allowed_hosts_and_no_loopback_unless_told(config, env):
    assert config.from_env(env).hosts == HostPolicy()
    listed = config.from_env(env | {"IICS_ALLOWED_HOSTS": "pod.example.net,*.pre.example.net"}).hosts
    assert listed == HostPolicy(allowed=("pod.example.net", "*.pre.example.net"))
    assert config.from_env(env | {"ALLOW_LOOPBACK_HTTP": "true"}).hosts == HostPolicy(loopback_http=True)
    assert config.from_env(env | {"ALLOW_LOOPBACK_HTTP": "false"}).hosts == HostPolicy()


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("IICS_ALLOWED_HOSTS", "*.com"),
        ("IICS_ALLOWED_HOSTS", "pod.example.net, other.example.net"),
        ("IICS_ALLOWED_HOSTS", "https://pod.example.net"),
        ("ALLOW_LOOPBACK_HTTP", "yes"),
        ("ALLOW_LOOPBACK_HTTP", "True"),
    ],
)
def test_a_bad_hosts_setting_fails_naming_the_variable(name, text):
    with pytest.raises(ConfigError, match=f"^environment variable {name} "):
        CheckConfig.from_env(CHECK_ENV | {name: text})

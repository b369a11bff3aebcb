"""The real adapters, built lazily once per warm container and shared by the handlers.

The alert modules are imported inside the functions that need them, so the status check and the
archive step do not pay for them at cold start. Tests call ``reset()`` so that each scenario starts
cold, as a new container would.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import time
from collections.abc import Callable, Iterator

import boto3
import urllib3
from botocore.config import Config

from iics_monitor.archive import DEFAULT_MAX_BYTES, LogArchiver
from iics_monitor.client import CONNECT_TIMEOUT_SECONDS, IicsClient
from iics_monitor.config import (
    ArchiveConfig,
    CheckConfig,
    ExportConfig,
    PromoteConfig,
    RequestLimit,
    StartConfig,
)
from iics_monitor.credentials import secret_credentials
from iics_monitor.history import DurationHistory
from iics_monitor.hosts import INFORMATICA_ONLY, HostPolicy
from iics_monitor.ratelimit import RequestBudget, counter_for
from iics_monitor.verdicts import SecretVerdicts


@functools.cache
def check_config() -> CheckConfig:
    return CheckConfig.from_env(os.environ)


@functools.cache
def archive_config() -> ArchiveConfig:
    return ArchiveConfig.from_env(os.environ)


@functools.cache
def export_config() -> ExportConfig:
    return ExportConfig.from_env(os.environ)


@functools.cache
def start_config() -> StartConfig:
    return StartConfig.from_env(os.environ)


@functools.cache
def promote_config() -> PromoteConfig:
    return PromoteConfig.from_env(os.environ)


@functools.cache
def s3():
    """The promote function's reader of archived packages (the archive's writer is the LogArchiver's):
    5 s to connect and 20 s a read, two tries, not botocore's 60 s, so a stuck read ends well inside the
    function's time."""
    return boto3.client(
        "s3", config=Config(connect_timeout=5, read_timeout=20, retries={"mode": "standard", "total_max_attempts": 2})
    )


@functools.cache
def topic_config():
    from iics_monitor.alert_topic import TopicConfig

    return TopicConfig.from_env(os.environ)


@functools.cache
def slack_config():
    from iics_monitor.slack import SlackConfig

    return SlackConfig.from_env(os.environ)


@functools.cache
def slack_notifier():
    """One notifier, webhook adapter (and connection pool) and idempotency store per warm container."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from iics_monitor.slack import SlackWebhook, secret_webhook_url
    from iics_monitor.slack_delivery import SlackNotifier

    config = slack_config()
    verdicts = secret_verdicts(config.verdict_table) if config.verdict_table else None
    url = secret_webhook_url(config.secret_name, secretsmanager(), loopback_http=config.loopback_http)
    webhook = SlackWebhook(url, timeout=config.timeout, verdicts=verdicts, loopback_http=config.loopback_http)
    records = DynamoDBPersistenceLayer(config.idempotency_table, boto3_client=dynamodb())
    return SlackNotifier(webhook, config.region, records)


@functools.cache
def sns():
    return boto3.client("sns")


@functools.cache
def stepfunctions():
    return boto3.client("stepfunctions")


# Every login waits on these two (the secret, the stack's verdict on it, the request budget): each call
# ends within about 10 s (two tries of 2 s to connect and 3 s to answer), not botocore's default 60 s a try,
# so a slow AWS API turns into a transient error the poll loop waits out, within the login's lease.
_LOGIN_PATH_CONFIG = Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard", "total_max_attempts": 2})


@functools.cache
def dynamodb():
    """One client for the duration history, the request budget and the secret verdicts (a client costs
    ~0.1 s to make)."""
    return boto3.client("dynamodb", config=_LOGIN_PATH_CONFIG)


@functools.cache
def secretsmanager():
    return boto3.client("secretsmanager", config=_LOGIN_PATH_CONFIG)


@functools.cache
def secret_verdicts(table_name: str) -> SecretVerdicts:
    """The stack's verdicts on secret versions (one refused login per version, stack-wide)."""
    return SecretVerdicts(table_name, dynamodb())


@functools.cache
def iics_client(
    secret_name: str,
    read_timeout_seconds: float,
    request_limit: RequestLimit | None = None,
    verdict_table: str | None = None,
    hosts: HostPolicy = INFORMATICA_ONLY,
    org: str | None = None,
) -> IicsClient:
    """One client, and so one IICS session, per container and secret; with the stack's request budget and
    its record of refused passwords. Each request may take ``read_timeout_seconds`` in all
    (IicsReadTimeoutSeconds); requests go only to the ``hosts`` the configuration allows (IicsAllowedHosts)."""
    timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT_SECONDS, read=read_timeout_seconds)
    budget = None
    if request_limit is not None:
        counter = counter_for(org)  # each org's own limit at IICS, so its own budget
        budget = RequestBudget(request_limit.table, request_limit.per_second, dynamodb(), counter=counter).take
    return IicsClient(
        secret_credentials(secret_name, secretsmanager()),
        timeout=timeout,
        before_request=budget,
        request_seconds=read_timeout_seconds,
        verdicts=secret_verdicts(verdict_table) if verdict_table else None,
        hosts=hosts,
    )


def iics_client_for(
    config: CheckConfig | ExportConfig | ArchiveConfig | PromoteConfig, org: str | None = None
) -> IicsClient:
    """The container's IICS client for ``org`` (None: the stack's own secret), as a function's
    configuration sets it up: one client, session and request budget per org."""
    return iics_client(
        config.secret_for(org),
        config.read_timeout_seconds,
        config.request_limit,
        config.verdict_table,
        config.hosts,
        org,
    )


@contextlib.contextmanager
def iics_clients_within(
    config: CheckConfig | ExportConfig | ArchiveConfig | PromoteConfig, until: float
) -> Iterator[Callable[[str | None], IicsClient]]:
    """``source_for(org)``: the container's IICS client for ``org``, its requests ending by ``until`` (a
    ``time.monotonic()`` time) while the block runs. A function learns the org from the request it parses."""
    with contextlib.ExitStack() as stack:

        def source_for(org: str | None) -> IicsClient:
            return stack.enter_context(iics_client_for(config, org).within(until))

        yield source_for


def deadline(context, reserve_seconds: float, most_seconds: float = math.inf) -> float:
    """The ``time.monotonic()`` time an invocation's work must end by: the Lambda's remaining time less
    ``reserve_seconds`` (kept back to report), and at most ``most_seconds`` from now."""
    left = context.get_remaining_time_in_millis() / 1000 - reserve_seconds
    return time.monotonic() + min(left, most_seconds)


@functools.cache
def duration_history(table_name: str) -> DurationHistory:
    return DurationHistory(table_name, dynamodb())


@functools.cache
def log_archiver(bucket: str, prefix: str, max_bytes: int = DEFAULT_MAX_BYTES) -> LogArchiver:
    return LogArchiver(bucket, prefix, max_bytes=max_bytes)


def reset() -> None:
    cached_functions = (
        check_config,
        export_config,
        archive_config,
        start_config,
        promote_config,
        s3,
        topic_config,
        slack_config,
        slack_notifier,
        stepfunctions,
        sns,
        dynamodb,
        secretsmanager,
        secret_verdicts,
        iics_client,
        duration_history,
        log_archiver,
    )
    for cached in cached_functions:
        cached.cache_clear()

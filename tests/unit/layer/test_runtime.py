"""runtime: the adapters a warm container shares. Every AWS call a login waits on has a deadline."""

from __future__ import annotations

import pytest

from iics_monitor import runtime


@pytest.mark.parametrize("client", [runtime.dynamodb, runtime.secretsmanager], ids=["dynamodb", "secretsmanager"])
def test_the_aws_calls_a_login_waits_on_end_within_seconds_not_minutes(client):
    config = client().meta.config

    # botocore's defaults: 60 s to connect, 60 s a read, and up to 10 tries for DynamoDB
    tries = config.retries["total_max_attempts"]
    assert tries * (config.connect_timeout + config.read_timeout) <= 10

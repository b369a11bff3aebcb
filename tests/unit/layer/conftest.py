"""Fixtures shared by the archive and finish tests: an S3 bucket in moto and an archiver writing to it."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from iics_monitor.archive import LogArchiver

BUCKET = "iics-export-logs-123456789012"
PREFIX = "iics/exports/"


@pytest.fixture(scope="module")
def s3_client():
    """Made once (a boto3 client costs ~0.1 s), before the sandbox env exists, hence its own fake keys.
    It reaches only moto, inside each test's mock."""
    return boto3.client("s3", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def s3(s3_client):
    with mock_aws():
        s3_client.create_bucket(Bucket=BUCKET)
        yield s3_client


@pytest.fixture
def archiver(s3):
    return LogArchiver(BUCKET, PREFIX, s3_client=s3)

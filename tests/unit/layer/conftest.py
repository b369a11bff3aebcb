"""Fixtures shared by the layer tests: an IICS client logged in to the emulator, an S3 bucket in moto and
an archiver writing to it, DynamoDB tables made from their definitions in template.yaml, and the log
lines a test wrote."""

from __future__ import annotations

import json
import sys

import boto3
import pytest
from moto import mock_aws
from samtranslator.yaml_helper import yaml_parse

from iics_monitor.archive import LogArchiver
from iics_monitor.client import IicsClient
from iics_monitor.credentials import Credentials
from iics_monitor.observability import logger
from iics_monitor_local.emulator import IicsEmulator
from tests.conftest import EMULATOR_HOSTS, PASSWORD, ROOT, USERNAME

BUCKET = "iics-export-logs-123456789012"
PREFIX = "iics/exports/"


def credentials_for(login_url: str, password: str = PASSWORD) -> Credentials:
    """The IICS secret's credentials for the emulator's user, read as the functions read them."""
    return Credentials.from_mapping({"username": USERNAME, "password": password, "loginUrl": login_url})


def client_for(emulator: IicsEmulator, password: str = PASSWORD, **kwargs) -> IicsClient:
    credentials = credentials_for(emulator.url, password)
    return IicsClient(lambda: credentials, hosts=EMULATOR_HOSTS, **kwargs)


@pytest.fixture
def client(emulator):
    """An IICS client for the emulator on 127.0.0.1, as the emulator's user."""
    return client_for(emulator)


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


@pytest.fixture(scope="module")
def dynamodb_client():
    return boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="x")


def create_table_from_template(client, logical_id: str, name: str) -> None:
    """The table ``logical_id`` of template.yaml (keys, billing), created in moto as ``name``."""
    properties = yaml_parse((ROOT / "template.yaml").read_text())["Resources"][logical_id]["Properties"]
    client.create_table(
        TableName=name,
        BillingMode=properties["BillingMode"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        KeySchema=properties["KeySchema"],
    )


class _CurrentStdout:
    """Writes to whatever ``sys.stdout`` is at the moment of writing."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def warnings_logged(capsys):
    """The Powertools logger's JSON lines, read through capsys.

    The logger's handler keeps the ``sys.stdout`` of import time, so for the test it writes to the
    current ``sys.stdout`` instead (capsys's), and gets its own stream back afterwards.
    """
    handler = logger.registered_handler
    previous, handler.stream = handler.stream, _CurrentStdout()
    capsys.readouterr()

    def read() -> list[dict]:
        lines = capsys.readouterr().out.splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    yield read
    handler.stream = previous

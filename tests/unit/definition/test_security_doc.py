"""docs/security.md says what the template and the code do: which roles read a secret (and so need
``kms:Decrypt`` on a customer managed key), how many functions the state machine invokes, and how
many versions of an archived object Object Lock keeps. Each fact is taken from the translated
template or from the archiver against moto, never from a list kept here."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import boto3
from moto import mock_aws

from iics_monitor.archive import CHUNK_BYTES, LogArchiver
from tests.unit.definition.test_template_hardening import EVERY_OPTION, SECURITY_DOC, deploy, grants, resources_of

NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
BUCKET = "archive-bucket"
WHEN = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)


def option_note(title: str) -> str:
    """The "Deploying with the options" bullet whose bold title is ``title``."""
    (note,) = re.findall(rf"^- \*\*{re.escape(title)}\*\*:(.*?)(?=^- \*\*|^#|\Z)", SECURITY_DOC, re.M | re.S)
    return " ".join(note.split())


def roles_granted(action: str) -> dict[str, set[str]]:
    """Role -> the resources (canonical JSON) it may ``action``, with every option on."""
    roles = resources_of(deploy(EVERY_OPTION), "AWS::IAM::Role")
    granted = {name: {resource for a, resource in grants(role) if a == action} for name, role in roles.items()}
    return {name: resources for name, resources in granted.items() if resources}


def test_every_role_that_reads_a_secret_is_told_to_get_kms_decrypt_on_its_customer_managed_key():
    readers = set(roles_granted("secretsmanager:GetSecretValue"))

    named = set(re.findall(r"`(\w+Role)`", option_note("Secrets encrypted with a customer managed key")))

    assert len(readers) >= 4 and named == readers


def test_the_doc_counts_and_names_the_functions_the_state_machine_invokes():
    (invoked,) = roles_granted("lambda:InvokeFunction").values()
    functions = {re.search(r'"Fn::GetAtt": \["(\w+)"', resource)[1] for resource in invoked}

    (count,) = re.findall(r"The state machine invokes its (\w+) functions", SECURITY_DOC)
    (skipped,) = re.findall(r"^\| CKV_AWS_116 [^|]*\| ([^|]+) \| The state machine invokes them", SECURITY_DOC, re.M)

    assert NUMBERS[count] == len(functions) == 4
    assert {name.strip() for name in skipped.split(",")} == functions


@mock_aws
def test_each_archived_object_is_written_once_so_object_lock_keeps_one_version_of_it():
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    archiver = LogArchiver(BUCKET, "iics-export-logs/", s3_client=s3)

    # a log of one put, a log in parts (with its .sha256 beside it), and a status
    archiver.put_log("smallLog", "SUCCESSFUL", io.BytesIO(b"> OIE_003 INFO Finished export operation.\n"), WHEN)
    archiver.put_log("bigLog", "SUCCESSFUL", io.BytesIO(b"x" * (CHUNK_BYTES + 1)), WHEN)
    archiver.put_status("bigLog", {"state": "SUCCESSFUL"}, WHEN)

    keys = [version["Key"] for version in s3.list_object_versions(Bucket=BUCKET)["Versions"]]
    assert len(keys) == 4 and len(set(keys)) == len(keys)
    note = option_note("`ObjectLockDays`")
    assert "never copied" in note and "one version" in note

"""Least privilege and a hardened archive, read from template.yaml and from the CloudFormation that
aws-sam-translator makes of it (the roles, rules and mappings that are deployed exist only there).

docs/security.md lists each control and names the test here that verifies it.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

from iics_monitor_local import template
from tests.conftest import ROOT

TEMPLATE = yaml_parse((ROOT / "template.yaml").read_text())
CHECKOV_CONFIG = (ROOT / ".checkov.yaml").read_text()
SECURITY_DOC = (ROOT / "docs" / "security.md").read_text()
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ORG_SECRET_ARNS = (
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:iics-export-monitor/orgs/dev-a1B2c3,"
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:iics-export-monitor/orgs/prod-x9Y8z7"
)
EVERY_OPTION = {
    "SlackWebhookSecretName": "iics-export-monitor/slack",
    "ArchiveKmsKeyArn": KEY_ARN,
    "ArchiveExpirationDays": "365",
    "ObjectLockDays": "30",
    "IicsRequestsPerSecond": "16",
    "IicsOrgSecretArns": ORG_SECRET_ARNS,
}
DEPLOYMENTS = {"defaults": {}, "every option": EVERY_OPTION}
# The only grants on Resource "*": these APIs support no resource-level permissions.
UNSCOPABLE_ACTIONS = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}
NO_VALUE = {"Ref": "AWS::NoValue"}


def sub(text: str) -> dict:
    return {"Fn::Sub": text}


def arn_of(logical_id: str) -> dict:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def ref(name: str) -> dict:
    return {"Ref": name}


def regional_arn(service: str, resource: str) -> dict:
    return sub(f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:{resource}")


def secret(parameter: str) -> dict:
    return regional_arn("secretsmanager", f"secret:${{{parameter}}}-??????")


def own_logs(log_group: str) -> list[tuple]:
    return [("logs:CreateLogStream", arn_of(log_group)), ("logs:PutLogEvents", arn_of(log_group))]


# Every (action, resource) each role is granted, besides the shared TracingPolicy, with every option on.
GRANTS = {
    "StartExportFunctionRole": [
        *own_logs("StartExportLogGroup"),
        ("secretsmanager:GetSecretValue", secret("IicsSecretName")),
        ("secretsmanager:GetSecretValue", ref("IicsOrgSecretArns")),  # exactly the further orgs' secrets
        *[(f"dynamodb:{a}", arn_of("SecretVerdictTable")) for a in ("GetItem", "PutItem", "DeleteItem")],
        ("dynamodb:UpdateItem", arn_of("RequestBudgetTable")),
    ],
    "CheckStatusFunctionRole": [
        *own_logs("CheckStatusLogGroup"),
        ("secretsmanager:GetSecretValue", secret("IicsSecretName")),
        ("secretsmanager:GetSecretValue", ref("IicsOrgSecretArns")),  # exactly the further orgs' secrets
        *[(f"dynamodb:{a}", arn_of("SecretVerdictTable")) for a in ("GetItem", "PutItem", "DeleteItem")],
        ("dynamodb:GetItem", arn_of("DurationHistoryTable")),
        ("dynamodb:UpdateItem", arn_of("RequestBudgetTable")),
    ],
    "ArchiveLogFunctionRole": [
        *own_logs("ArchiveLogLogGroup"),
        ("secretsmanager:GetSecretValue", secret("IicsSecretName")),
        ("secretsmanager:GetSecretValue", ref("IicsOrgSecretArns")),  # exactly the further orgs' secrets
        *[(f"dynamodb:{a}", arn_of("SecretVerdictTable")) for a in ("GetItem", "PutItem", "DeleteItem")],
        ("s3:PutObject", sub("${ArchiveBucket.Arn}/${ArchivePrefix}*")),
        ("s3:AbortMultipartUpload", sub("${ArchiveBucket.Arn}/${ArchivePrefix}*")),
        ("kms:GenerateDataKey", ref("ArchiveKmsKeyArn")),
        ("kms:Decrypt", ref("ArchiveKmsKeyArn")),
        ("dynamodb:GetItem", arn_of("DurationHistoryTable")),
        ("dynamodb:PutItem", arn_of("DurationHistoryTable")),
        ("dynamodb:UpdateItem", arn_of("RequestBudgetTable")),
    ],
    "PromoteFunctionRole": [  # a promotion's package: read from the archive, uploaded to the target org
        *own_logs("PromoteLogGroup"),
        ("secretsmanager:GetSecretValue", secret("IicsSecretName")),
        ("secretsmanager:GetSecretValue", ref("IicsOrgSecretArns")),
        *[(f"dynamodb:{a}", arn_of("SecretVerdictTable")) for a in ("GetItem", "PutItem", "DeleteItem")],
        ("dynamodb:UpdateItem", arn_of("RequestBudgetTable")),
        ("s3:GetObject", sub("${ArchiveBucket.Arn}/${ArchivePrefix}*")),
        ("kms:Decrypt", ref("ArchiveKmsKeyArn")),
    ],
    "StartMonitorFunctionRole": [
        *own_logs("StartMonitorLogGroup"),
        ("states:StartExecution", ref("ExportMonitorStateMachine")),
        ("sqs:SendMessage", arn_of("SubmissionDeadLetterQueue")),
    ],
    "NotifyTopicFunctionRole": [
        *own_logs("NotifyTopicLogGroup"),
        ("sns:Publish", ref("AlertTopic")),
        ("sqs:SendMessage", arn_of("AlertDeadLetterQueue")),
    ],
    "NotifySlackFunctionRole": [
        *own_logs("NotifySlackLogGroup"),
        ("secretsmanager:GetSecretValue", secret("SlackWebhookSecretName")),
        *[(f"dynamodb:{a}", arn_of("SecretVerdictTable")) for a in ("GetItem", "PutItem")],
        ("sqs:ReceiveMessage", arn_of("AlertQueue")),
        ("sqs:DeleteMessage", arn_of("AlertQueue")),
        ("sqs:GetQueueAttributes", arn_of("AlertQueue")),
        *[
            (f"dynamodb:{a}", arn_of("SlackIdempotencyTable"))
            for a in ("PutItem", "GetItem", "UpdateItem", "DeleteItem")
        ],
    ],
    "ExportMonitorStateMachineRole": [
        ("lambda:InvokeFunction", arn_of("StartExportFunction")),
        ("lambda:InvokeFunction", arn_of("CheckStatusFunction")),
        ("lambda:InvokeFunction", arn_of("ArchiveLogFunction")),
        ("lambda:InvokeFunction", arn_of("PromoteFunction")),
        ("events:PutEvents", regional_arn("events", "event-bus/${EventBusName}")),
        ("sqs:SendMessage", arn_of("UndeliveredOutcomeQueue")),
        *[(action, "*") for action in sorted(UNSCOPABLE_ACTIONS) if action.startswith("logs:")],
    ],
}


# --- the template as deployed -------------------------------------------------------------------


@functools.cache
def _translated(parameters: tuple[tuple[str, str], ...]) -> dict:
    return template.translated(dict(parameters))


def deploy(parameters: dict[str, str]) -> dict:
    """The CloudFormation SAM makes of the template, with Conditions and Fn::If settled for these
    parameters as CloudFormation would settle them."""
    cfn = _translated(tuple(sorted(parameters.items())))
    values = {name: spec.get("Default") for name, spec in cfn["Parameters"].items()} | parameters
    conditions = {name: _condition(expr, values) for name, expr in cfn["Conditions"].items()}
    resources = {
        logical_id: _settle(resource, conditions)
        for logical_id, resource in cfn["Resources"].items()
        if conditions.get(resource.get("Condition"), True)
    }
    return {**cfn, "Resources": resources}


def _condition(expr: Any, values: dict[str, Any]) -> Any:
    """The Fn::Not / Fn::Equals / Ref subset the template's Conditions use."""
    if isinstance(expr, dict) and "Fn::Not" in expr:
        return not _condition(expr["Fn::Not"][0], values)
    if isinstance(expr, dict) and "Fn::Equals" in expr:
        left, right = (str(_condition(side, values)) for side in expr["Fn::Equals"])
        return left == right
    if isinstance(expr, dict) and "Ref" in expr:
        return values[expr["Ref"]]
    return expr


def _settle(node: Any, conditions: dict[str, bool]) -> Any:
    if isinstance(node, dict) and "Fn::If" in node:
        name, when_true, when_false = node["Fn::If"]
        return _settle(when_true if conditions[name] else when_false, conditions)
    if isinstance(node, dict):
        settled = {key: _settle(value, conditions) for key, value in node.items()}
        return {key: value for key, value in settled.items() if value != NO_VALUE}
    if isinstance(node, list):
        return [item for item in (_settle(value, conditions) for value in node) if item != NO_VALUE]
    return node


def resources_of(cfn: dict, kind: str) -> dict[str, dict]:
    return {logical_id: r for logical_id, r in cfn["Resources"].items() if r["Type"] == kind}


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def statements(node: Any) -> Iterator[dict]:
    """Every statement of every policy document (identity, trust and resource policies) below ``node``."""
    if isinstance(node, dict):
        if isinstance(node.get("Statement"), list):
            yield from node["Statement"]
        for value in node.values():
            yield from statements(value)
    elif isinstance(node, list):
        for value in node:
            yield from statements(value)


def grants(role: dict) -> set[tuple[str, str]]:
    """(action, resource) pairs that a role's inline policies allow, resources as canonical JSON."""
    return {
        (action, json.dumps(resource, sort_keys=True))
        for statement in statements(role["Properties"].get("Policies", []))
        if statement["Effect"] == "Allow"
        for action in as_list(statement["Action"])
        for resource in as_list(statement["Resource"])
    }


def canonical(pairs: list[tuple]) -> set[tuple[str, str]]:
    return {(action, json.dumps(resource, sort_keys=True)) for action, resource in pairs}


@pytest.fixture(params=list(DEPLOYMENTS), ids=list(DEPLOYMENTS))
def deployed(request) -> dict:
    return deploy(DEPLOYMENTS[request.param])


# --- IAM -----------------------------------------------------------------------------------------


def test_no_statement_allows_a_wildcard_action(deployed):
    allowed = [s for s in statements(deployed["Resources"]) if s["Effect"] == "Allow"]
    assert allowed, "no policy statements found"
    for statement in allowed:
        assert "NotAction" not in statement and "NotResource" not in statement
        for action in as_list(statement["Action"]):
            assert "*" not in action, f"wildcard action {action!r} in {statement}"


def test_wildcard_actions_appear_only_in_the_bucket_policy_denials(deployed):
    for logical_id, resource in deployed["Resources"].items():
        for statement in statements(resource):
            if any("*" in action for action in as_list(statement["Action"])):
                assert (logical_id, statement["Effect"]) == ("ArchiveBucketPolicy", "Deny")


def test_resource_star_only_for_apis_without_resource_level_permissions(deployed):
    for statement in statements(deployed["Resources"]):
        if statement["Effect"] == "Allow" and "*" in as_list(statement.get("Resource")):
            assert set(as_list(statement["Action"])) <= UNSCOPABLE_ACTIONS, statement


def test_no_aws_managed_policy_is_attached(deployed):
    """AWS managed policies (SAM adds AWSLambdaBasicExecutionRole, AWSXrayWriteOnlyAccess and
    AWSLambdaSQSQueueExecutionRole to roles it generates) grant logs and queues on every resource."""
    for role in resources_of(deployed, "AWS::IAM::Role").values():
        assert role["Properties"].get("ManagedPolicyArns", []) == [ref("TracingPolicy")]


def test_each_function_runs_as_its_own_role_and_logs_to_its_own_group(deployed):
    functions = resources_of(deployed, "AWS::Lambda::Function")
    assert len(functions) == len(resources_of(deployed, "AWS::Logs::LogGroup")) - 1  # + the state machine's
    for logical_id, function in functions.items():
        props = function["Properties"]
        assert props["Role"] == arn_of(f"{logical_id}Role")
        log_group = props["LoggingConfig"]["LogGroup"]["Ref"]
        assert log_group == logical_id.removesuffix("Function") + "LogGroup"
        assert canonical(own_logs(log_group)) <= grants(deployed["Resources"][f"{logical_id}Role"])


def test_every_role_is_granted_exactly_its_inventory():
    deployed = deploy(EVERY_OPTION)
    roles = resources_of(deployed, "AWS::IAM::Role")
    assert set(roles) == set(GRANTS)
    for name, role in roles.items():
        assert grants(role) == canonical(GRANTS[name]), name


def test_the_request_budget_table_and_its_grants_exist_only_with_a_budget():
    without, with_budget = deploy({}), deploy({"IicsRequestsPerSecond": "16"})

    assert "RequestBudgetTable" not in without["Resources"]
    for role in ("StartExportFunctionRole", "CheckStatusFunctionRole", "ArchiveLogFunctionRole"):
        budget_grant = ("dynamodb:UpdateItem", json.dumps(arn_of("RequestBudgetTable")))
        assert budget_grant not in grants(without["Resources"][role])
    table = with_budget["Resources"]["RequestBudgetTable"]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "second", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    for function in ("StartExportFunction", "CheckStatusFunction", "ArchiveLogFunction"):
        for deployed, table in ((with_budget, {"Ref": "RequestBudgetTable"}), (without, "")):
            variables = deployed["Resources"][function]["Properties"]["Environment"]["Variables"]
            assert variables["IICS_REQUEST_TABLE"] == table, function


def test_the_history_table_and_its_grants_exist_only_with_poll_history():
    enabled, disabled = deploy({}), deploy({"PollHistory": "Disabled"})
    table = enabled["Resources"]["DurationHistoryTable"]["Properties"]

    assert "DurationHistoryTable" not in disabled["Resources"]
    history = json.dumps(arn_of("DurationHistoryTable"))
    for role in ("CheckStatusFunctionRole", "ArchiveLogFunctionRole"):
        assert not [a for a, r in grants(disabled["Resources"][role]) if json.dumps(r) == history]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert table["KeySchema"] == [{"AttributeName": "jobName", "KeyType": "HASH"}]


def test_the_archive_function_may_only_put_and_abort_under_the_prefix():
    role = deploy({})["Resources"]["ArchiveLogFunctionRole"]
    s3 = {(action, resource) for action, resource in grants(role) if action.startswith("s3:")}
    under_prefix = json.dumps(sub("${ArchiveBucket.Arn}/${ArchivePrefix}*"))
    assert s3 == {(a, under_prefix) for a in ("s3:PutObject", "s3:AbortMultipartUpload")}


def test_nobody_else_touches_the_archive_or_its_key():
    for deployed in (deploy({}), deploy(EVERY_OPTION)):
        for name, role in resources_of(deployed, "AWS::IAM::Role").items():
            touched = {a for a, _ in grants(role) if a.split(":")[0] in {"s3", "kms"}}
            if name == "PromoteFunctionRole":  # reads a promotion's package back, writes nothing
                assert touched <= {"s3:GetObject", "kms:Decrypt"}, name
            elif name != "ArchiveLogFunctionRole":
                assert not touched, name


def test_the_kms_key_is_granted_only_when_configured_and_only_through_s3():
    assert not {a for a, _ in grants(deploy({})["Resources"]["ArchiveLogFunctionRole"]) if a.startswith("kms:")}
    role = deploy({"ArchiveKmsKeyArn": KEY_ARN})["Resources"]["ArchiveLogFunctionRole"]
    (statement,) = [s for s in statements(role["Properties"]["Policies"]) if s.get("Sid") == "UseArchiveKey"]
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert statement["Resource"] == ref("ArchiveKmsKeyArn")
    assert statement["Condition"] == {"StringEquals": {"kms:ViaService": sub("s3.${AWS::Region}.amazonaws.com")}}


def test_secrets_are_read_by_their_exact_name():
    """``-??????`` is the six characters Secrets Manager adds; ``-*`` would also match ``<name>-old``."""
    readers = {}
    for name, role in resources_of(deploy(EVERY_OPTION), "AWS::IAM::Role").items():
        for action, resource in grants(role):
            if action.startswith("secretsmanager:"):
                assert action == "secretsmanager:GetSecretValue"
                readers.setdefault(name, []).append(json.loads(resource))
    readers = {name: sorted(found, key=json.dumps) for name, found in readers.items()}
    # the further orgs' secrets by full ARN
    iics = sorted([secret("IicsSecretName"), ref("IicsOrgSecretArns")], key=json.dumps)
    assert readers == {
        "StartExportFunctionRole": iics,
        "CheckStatusFunctionRole": iics,
        "ArchiveLogFunctionRole": iics,
        "PromoteFunctionRole": iics,
        "NotifySlackFunctionRole": [secret("SlackWebhookSecretName")],
    }


def test_the_state_machine_role_can_be_assumed_only_by_step_functions_of_this_account():
    role = deploy({})["Resources"]["ExportMonitorStateMachineRole"]
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "states.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")}}


# --- the archive bucket --------------------------------------------------------------------------

BUCKET = TEMPLATE["Resources"]["ArchiveBucket"]
BUCKET_PROPS = BUCKET["Properties"]


def test_the_bucket_is_encrypted_with_the_optional_kms_key_or_sse_s3():
    (rule,) = BUCKET_PROPS["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {
        "Fn::If": [
            "HasArchiveKmsKey",
            {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": ref("ArchiveKmsKeyArn")},
            {"SSEAlgorithm": "AES256"},
        ]
    }
    assert rule["BucketKeyEnabled"] is True
    assert TEMPLATE["Conditions"]["HasArchiveKmsKey"] == {"Fn::Not": [{"Fn::Equals": [ref("ArchiveKmsKeyArn"), ""]}]}
    assert TEMPLATE["Parameters"]["ArchiveKmsKeyArn"]["Default"] == ""


@pytest.mark.parametrize(
    ("value", "accepted"),
    [("", True), (KEY_ARN, True), ("alias/aws/s3", False), ("arn:aws:kms:us-east-1:123456789012:alias/x", False)],
)
def test_the_key_parameter_takes_a_key_arn_because_iam_cannot_grant_on_an_alias(value, accepted):
    assert bool(re.fullmatch(TEMPLATE["Parameters"]["ArchiveKmsKeyArn"]["AllowedPattern"], value)) is accepted


def test_the_bucket_blocks_public_access_and_acls():
    assert BUCKET_PROPS["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    assert BUCKET_PROPS["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


def test_the_bucket_policy_denies_anything_but_tls_1_2_or_newer():
    policy = TEMPLATE["Resources"]["ArchiveBucketPolicy"]["Properties"]
    assert policy["Bucket"] == ref("ArchiveBucket")
    denials = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"}
    for sid, condition in {
        "DenyInsecureTransport": {"Bool": {"aws:SecureTransport": "false"}},
        "DenyOutdatedTls": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
    }.items():
        assert denials[sid]["Principal"] == "*" and denials[sid]["Action"] == "s3:*"
        assert denials[sid]["Resource"] == [arn_of("ArchiveBucket"), sub("${ArchiveBucket.Arn}/*")]
        assert denials[sid]["Condition"] == condition


def lifecycle_rules(parameters: dict[str, str]) -> dict[str, dict]:
    bucket = deploy(parameters)["Resources"]["ArchiveBucket"]["Properties"]
    return {rule["Id"]: rule for rule in bucket["LifecycleConfiguration"]["Rules"]}


def test_lifecycle_tiers_every_log_whatever_its_size():
    tier = lifecycle_rules({})["TierArchivedLogs"]
    assert tier["Status"] == "Enabled" and tier["Prefix"] == ref("ArchivePrefix")
    # Without an object size, lifecycle leaves objects under 128 KB where they are.
    assert int(tier["ObjectSizeGreaterThan"]) == 0
    assert tier["Transitions"] == [{"StorageClass": "INTELLIGENT_TIERING", "TransitionInDays": 0}]


def test_lifecycle_expires_logs_after_the_parameter_days_and_never_by_default():
    assert TEMPLATE["Parameters"]["ArchiveExpirationDays"]["Default"] == 0
    assert "ExpireArchivedLogs" not in lifecycle_rules({})
    expire = lifecycle_rules({"ArchiveExpirationDays": "365"})["ExpireArchivedLogs"]
    assert expire["ExpirationInDays"] == ref("ArchiveExpirationDays")
    assert expire["Prefix"] == ref("ArchivePrefix") and "ObjectSizeGreaterThan" not in expire


def test_lifecycle_aborts_incomplete_uploads_and_clears_old_versions():
    assert BUCKET_PROPS["VersioningConfiguration"] == {"Status": "Enabled"}
    clean_up = lifecycle_rules({})["CleanUp"]
    assert clean_up["Status"] == "Enabled"
    assert clean_up["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert clean_up["NoncurrentVersionExpiration"]["NoncurrentDays"] > 0
    assert clean_up["ExpiredObjectDeleteMarker"] is True


def test_object_lock_is_off_by_default_and_follows_its_parameters():
    assert TEMPLATE["Conditions"]["HasObjectLock"] == {"Fn::Not": [{"Fn::Equals": [ref("ObjectLockDays"), "0"]}]}
    assert BUCKET_PROPS["ObjectLockEnabled"] == {"Fn::If": ["HasObjectLock", True, NO_VALUE]}
    assert BUCKET_PROPS["ObjectLockConfiguration"]["Fn::If"][0] == "HasObjectLock"
    default = deploy({})["Resources"]["ArchiveBucket"]["Properties"]
    assert "ObjectLockEnabled" not in default and "ObjectLockConfiguration" not in default
    locked = deploy({"ObjectLockDays": "30"})["Resources"]["ArchiveBucket"]["Properties"]
    assert locked["ObjectLockEnabled"] is True
    assert locked["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": ref("ObjectLockMode"), "Days": ref("ObjectLockDays")}},
    }


def test_the_archive_outlives_the_stack():
    assert (BUCKET["DeletionPolicy"], BUCKET["UpdateReplacePolicy"]) == ("Retain", "Retain")


# --- the rest of the stack -----------------------------------------------------------------------


def test_every_log_group_keeps_logs_for_the_retention_parameter(deployed):
    for log_group in resources_of(deployed, "AWS::Logs::LogGroup").values():
        assert log_group["Properties"]["RetentionInDays"] == ref("LogRetentionDays")


def test_every_queue_is_encrypted_with_sse_sqs(deployed):
    """What the CKV_AWS_27 skip in .checkov.yaml rests on."""
    queues = resources_of(deployed, "AWS::SQS::Queue")
    assert queues and all(q["Properties"].get("SqsManagedSseEnabled") is True for q in queues.values())


def test_no_environment_variable_carries_a_credential(deployed):
    """What the CKV_AWS_173 skip in .checkov.yaml rests on: secrets are named, never passed."""
    names = {
        name
        for function in resources_of(deployed, "AWS::Lambda::Function").values()
        for name in function["Properties"].get("Environment", {}).get("Variables", {})
    }
    assert names and not {n for n in names if re.search(r"PASSWORD|TOKEN|KEY|WEBHOOK_URL|SECRET(?!_NAME$)", n)}


def test_asynchronously_invoked_functions_have_a_dead_letter_queue(deployed):
    rule_targets = {
        target["Arn"]["Fn::GetAtt"][0]
        for rule in resources_of(deployed, "AWS::Events::Rule").values()
        for target in rule["Properties"]["Targets"]
    }
    functions = resources_of(deployed, "AWS::Lambda::Function")
    for logical_id in rule_targets & set(functions):
        assert functions[logical_id]["Properties"]["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][1] == "Arn"


# --- skipped checks ------------------------------------------------------------------------------


def inline_skips() -> dict[str, list[dict]]:
    return {
        logical_id: resource["Metadata"]["checkov"]["skip"]
        for logical_id, resource in TEMPLATE["Resources"].items()
        if "checkov" in resource.get("Metadata", {})
    }


def test_every_skipped_check_says_why_and_is_in_the_security_doc():
    for logical_id, skips in inline_skips().items():
        for skip in skips:
            assert len(skip.get("comment", "").split()) >= 5, (logical_id, skip)
            assert re.search(rf"{skip['id']}.*{logical_id}|{logical_id}.*{skip['id']}", SECURITY_DOC), skip
    lines = CHECKOV_CONFIG.splitlines()
    global_skips = [(i, line.strip("- ").strip()) for i, line in enumerate(lines) if line.startswith("  - CKV_")]
    assert global_skips
    for index, check in global_skips:
        assert lines[index - 1].lstrip().startswith("#"), f"{check} in .checkov.yaml has no reason"
        assert check in SECURITY_DOC

"""Template inputs cannot widen permissions: every Parameter that goes into an IAM policy Resource or
a ``!Sub``-built ARN has an ``AllowedPattern`` that accepts exactly what works and no IAM wildcard,
and a ``ConstraintDescription`` that says what to pass.

The Parameters are found in the CloudFormation that aws-sam-translator makes of the template (with
the defaults and with every option on), not listed by hand, so a new one is checked as it appears.
CloudFormation matches an ``AllowedPattern`` against the whole value, as ``re.fullmatch`` does.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from iics_monitor.config import ARCHIVE_PREFIX
from tests.unit.definition.test_template_hardening import (
    EVERY_OPTION,
    KEY_ARN,
    TEMPLATE,
    as_list,
    deploy,
    statements,
)

PARAMETERS = TEMPLATE["Parameters"]
WILDCARDS = {"*", "?"}  # IAM's: in a policy Resource, '*' matches any run of characters and '?' any one
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:iics-export-monitor/credentials-AbCdEf"
BUS_ARN = "arn:aws:events:us-east-1:123456789012:event-bus/iics-exports"

# Values that work, the defaults among them, and values that must be refused, per Parameter.
ACCEPTED = {
    "IicsSecretName": [
        "iics-export-monitor/credentials",
        "prod/iics/svc_export@example.com",
        "iics+export=v2.1",
        "x" * 512,
    ],
    "SlackWebhookSecretName": ["", "iics-export-monitor/slack", "team/alerts/slack-webhook"],
    "EventBusName": ["default", "iics-exports", "team.pipelines_2"],
    "ArchivePrefix": ["", "iics-export-logs/", "audit/iics/", "team-a/(prod)/", "it's/"],
    "ArchiveKmsKeyArn": ["", KEY_ARN, "arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/mrk-1234abcd"],
    "IicsOrgSecretArns": [  # each element of the list
        "",
        SECRET_ARN,
        "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:iics/orgs/prod-x9Y8z7",
    ],
}
REFUSED = {
    "IicsSecretName": [SECRET_ARN, "", "*", "iics-*", "iics-export-monitor/credentials-??????", "x" * 513, "a b"],
    "SlackWebhookSecretName": [SECRET_ARN, "*", "slack?", "iics/*", "x" * 513],
    "EventBusName": [BUS_ARN, "", "*", "iics-*", "bus?", "aws.partner/example.com/123/bus", "x" * 257],
    "ArchivePrefix": ["*", "*/", "logs*/", "logs?/", "a/*/", "logs", "/", "${aws:username}/", "arn:aws:s3:::b/"],
    "ArchiveKmsKeyArn": [
        "*",
        "arn:aws:kms:us-east-1:123456789012:key/*",
        "arn:aws:kms:*:123456789012:key/k",
        "alias/x",
    ],
    "IicsOrgSecretArns": [
        "*",
        "iics-export-monitor/orgs/dev",  # a name: IAM needs the ARN
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:iics/orgs/*",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:iics/orgs/dev-??????",
        "arn:aws:secretsmanager:*:123456789012:secret:iics/orgs/dev-a1B2c3",
        "arn:aws:secretsmanager:us-east-1:*:secret:iics/orgs/dev-a1B2c3",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:iics/orgs/dev",  # no suffix: matches no ARN
    ],
}


def parameters_in(node: Any) -> set[str]:
    """The Parameters a value is built from: ``Ref`` or ``${Name}`` in ``Fn::Sub``."""
    if isinstance(node, dict) and "Ref" in node:
        return {node["Ref"]} & set(PARAMETERS)
    if isinstance(node, dict) and "Fn::Sub" in node:
        text, variables = (node["Fn::Sub"], {}) if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"]
        named = set(re.findall(r"\$\{([\w:.]+)\}", text)) - set(variables)
        return (named & set(PARAMETERS)) | parameters_in(variables)
    if isinstance(node, dict):
        return set().union(*(parameters_in(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(parameters_in(value) for value in node))
    return set()


def subs_building_arns(node: Any) -> list[Any]:
    """Every ``Fn::Sub`` below ``node`` whose text is an ARN."""
    if isinstance(node, dict):
        here = [node] if "Fn::Sub" in node and str(as_list(node["Fn::Sub"])[0]).startswith("arn:") else []
        return here + [sub for value in node.values() for sub in subs_building_arns(value)]
    if isinstance(node, list):
        return [sub for value in node for sub in subs_building_arns(value)]
    return []


def parameters_in_policies_and_arns() -> set[str]:
    found: set[str] = set()
    for deployed in (deploy({}), deploy(EVERY_OPTION)):
        for statement in statements(deployed["Resources"]):
            found |= parameters_in(statement.get("Resource"))
        found |= parameters_in(subs_building_arns(deployed["Resources"]))
    return found


IN_POLICIES = sorted(parameters_in_policies_and_arns())


def characters(pattern: str) -> set[str]:
    """Every character a value ``pattern`` accepts can contain. A construct that admits characters
    not listed in the pattern (``.``, ``[^...]``, ``\\w``, ...) is an error: its set is not bounded here."""
    found: set[str] = set()

    def walk(items: Any) -> None:
        for op, arg in items:
            kind = str(op)
            if kind == "LITERAL":
                found.add(chr(arg))
            elif kind == "IN":
                for member, value in arg:
                    if str(member) == "LITERAL":
                        found.add(chr(value))
                    elif str(member) == "RANGE":
                        found.update(map(chr, range(value[0], value[1] + 1)))
                    else:
                        raise ValueError(f"{pattern}: {member} in a character class")
            elif kind in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
                walk(arg[2])
            elif kind == "SUBPATTERN":
                walk(arg[3])
            elif kind == "BRANCH":
                for branch in arg[1]:
                    walk(branch)
            elif kind != "AT":  # ^ and $ match no character
                raise ValueError(f"{pattern}: {kind}")

    walk(re._parser.parse(pattern))  # the stdlib's own parse of the pattern (private, stable since 3.11)
    return found


def accepts(name: str, value: str) -> bool:
    return re.fullmatch(PARAMETERS[name]["AllowedPattern"], value) is not None


def test_the_parameters_that_reach_policies_are_found_in_the_deployed_template():
    assert set(IN_POLICIES) >= {"IicsSecretName", "SlackWebhookSecretName", "EventBusName", "ArchivePrefix"}
    assert set(IN_POLICIES) >= {"ArchiveKmsKeyArn"}
    assert set(IN_POLICIES) <= set(ACCEPTED)  # each one found has values below to try


def test_the_character_reading_finds_a_wildcard_and_refuses_what_it_cannot_bound():
    assert "*" in characters("^([A-Za-z0-9!_.*'()-]+/)*$")  # ArchivePrefix's pattern before this check
    assert characters("^(a[b-d]{2}|e)?$") == set("abcde")
    for unbounded in ("^.+$", "^[^/]+$", r"^\w+$"):
        with pytest.raises(ValueError):
            characters(unbounded)


@pytest.mark.parametrize("name", IN_POLICIES)
def test_each_has_a_pattern_and_a_constraint_description_that_says_what_to_pass(name):
    spec = PARAMETERS[name]

    assert spec.get("AllowedPattern", "").startswith("^") and spec["AllowedPattern"].endswith("$"), name
    assert len(spec.get("ConstraintDescription", "").split()) >= 5, name


@pytest.mark.parametrize("name", IN_POLICIES)
def test_no_value_its_pattern_accepts_can_put_a_wildcard_into_a_policy(name):
    assert not characters(PARAMETERS[name]["AllowedPattern"]) & WILDCARDS


@pytest.mark.parametrize("name", IN_POLICIES)
def test_the_default_and_realistic_values_are_accepted(name):
    for value in [str(PARAMETERS[name].get("Default", "")), *ACCEPTED[name]]:
        assert accepts(name, value), (name, value)


@pytest.mark.parametrize("name", IN_POLICIES)
def test_arns_wildcards_and_what_the_service_refuses_are_refused(name):
    for value in REFUSED[name]:
        assert not accepts(name, value), (name, value)


@pytest.mark.parametrize("name", ["IicsSecretName", "SlackWebhookSecretName", "EventBusName"])
def test_names_that_go_into_a_built_arn_cannot_be_arns(name):
    """A name holds no ':', so ``secret:${IicsSecretName}-??????`` and ``event-bus/${EventBusName}``
    stay one resource of this account and Region."""
    assert ":" not in characters(PARAMETERS[name]["AllowedPattern"])


def test_the_layer_checks_archive_prefix_with_the_templates_own_pattern():
    assert f"^{ARCHIVE_PREFIX.pattern}$" == PARAMETERS["ArchivePrefix"]["AllowedPattern"]

"""The README and samconfig.toml agree with the template: every Parameter is documented with its
default, and the checked-in deploy settings name a real stack, real Parameters and the capability
the template needs."""

from __future__ import annotations

import re
import shlex
import tomllib

import pytest
from samtranslator.yaml_helper import yaml_parse

from iics_monitor_local.stack import STACK_NAME
from tests.conftest import ROOT

TEMPLATE = yaml_parse((ROOT / "template.yaml").read_text())
README = (ROOT / "README.md").read_text()
SAMCONFIG = tomllib.loads((ROOT / "samconfig.toml").read_text())
MAKEFILE = (ROOT / "Makefile").read_text()


def readme_parameter_rows() -> dict[str, str]:
    """Parameter -> its Default cell, from the README's configuration table."""
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", README, re.MULTILINE)
    return {name: default.strip() for name, default in rows if name in TEMPLATE["Parameters"]}


@pytest.mark.parametrize("name", sorted(TEMPLATE["Parameters"]))
def test_every_parameter_is_in_the_readme_with_its_default(name):
    rows = readme_parameter_rows()
    default = str(TEMPLATE["Parameters"][name].get("Default", ""))

    assert name in rows, f"README's configuration table has no row for {name}"
    assert rows[name] == (f"`{default}`" if default else "empty"), name


def test_samconfig_deploys_the_stack_the_tools_expect_with_the_capability_it_needs():
    deploy = SAMCONFIG["default"]["deploy"]["parameters"]

    assert SAMCONFIG["version"] == 0.1
    assert SAMCONFIG["default"]["global"]["parameters"]["stack_name"] == STACK_NAME
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert not any("RoleName" in r.get("Properties", {}) for r in TEMPLATE["Resources"].values())  # so no NAMED_IAM
    assert deploy["confirm_changeset"] is True
    assert SAMCONFIG["default"]["validate"]["parameters"]["lint"] is True


def test_samconfig_overrides_only_real_parameters_with_valid_values():
    overrides = dict(
        item.split("=", 1) for item in shlex.split(SAMCONFIG["default"]["deploy"]["parameters"]["parameter_overrides"])
    )

    for name, value in overrides.items():
        assert name in TEMPLATE["Parameters"], name
        allowed = TEMPLATE["Parameters"][name].get("AllowedValues")
        assert allowed is None or value in allowed
        pattern = TEMPLATE["Parameters"][name].get("AllowedPattern")
        assert pattern is None or re.fullmatch(pattern, value), (name, value)


@pytest.mark.parametrize("command", ["make demo", "make test", "sam build", "sam deploy --guided", "make bench"])
def test_the_readme_shows_the_first_hour_commands(command):
    assert command in README


@pytest.mark.parametrize("target", ["demo", "test", "bench", "build", "validate", "deploy"])
def test_each_make_target_the_readme_names_exists(target):
    assert re.search(rf"^{target}:", MAKEFILE, re.MULTILINE)

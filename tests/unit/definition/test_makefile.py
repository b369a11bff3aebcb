"""The Makefile tests on the Lambda runtime's Python when the machine has it (issue 13, item 6)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

MAKE = shutil.which("make")


def make_variables(home: Path, path: Path) -> dict[str, str]:
    """The variables `make` settles on, with this HOME and PATH (nothing is run: -n)."""
    listed = subprocess.run(  # noqa: S603 - the project's own Makefile, dry run
        [MAKE, "-n", "-p", "-C", str(ROOT), "venv"],
        env={"HOME": str(home), "PATH": str(path)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = {}
    for line in listed.splitlines():
        name, _, value = line.partition(" := ")
        if name in ("PYTHON_VERSION", "STAMP") and value:
            found[name] = value
    return found


@pytest.fixture
def machine(tmp_path):
    """A machine whose PATH has only python3 (this interpreter) and whose pyenv may hold a 3.13."""
    path = tmp_path / "bin"
    path.mkdir()
    (path / "python3").symlink_to(sys.executable)
    return tmp_path / "home", path


def test_a_python_3_13_under_pyenv_is_chosen_even_when_pyenv_selects_another(machine):
    home, path = machine
    pyenv_313 = home / ".pyenv" / "versions" / "3.13.0" / "bin"
    pyenv_313.mkdir(parents=True)
    fake = pyenv_313 / "python3.13"
    fake.write_text("#!/bin/sh\necho 3.13\n")  # answers the version question as a 3.13 would
    fake.chmod(0o755)

    assert make_variables(home, path) == {"PYTHON_VERSION": "3.13", "STAMP": ".venv/.installed-3.13"}


def test_without_a_python_3_13_the_default_python3_is_used(machine):
    home, path = machine
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"

    assert make_variables(home, path) == {"PYTHON_VERSION": version, "STAMP": f".venv/.installed-{version}"}


def test_make_test_says_which_python_it_tests_on():
    recipe = subprocess.run(  # noqa: S603 - the project's own Makefile, dry run
        [MAKE, "-n", "-C", str(ROOT), "test", "PYTHON=python3"],
        env=os.environ | {"MAKEFLAGS": ""},
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    assert "Testing on $(.venv/bin/python --version)" in recipe


# --- The deploy verbs run the project's own pinned SAM CLI (issue 14, item 3) ----------------------


@pytest.fixture(scope="module")
def sam_venv():
    """The SAM CLI's virtualenv, made as `make test` makes it (once; the stamp keeps it)."""
    subprocess.run([MAKE, "-C", str(ROOT), "sam-venv"], capture_output=True, text=True, check=True)  # noqa: S603


@pytest.fixture
def fresh_user(sam_venv, machine):
    """A user with no SAM CLI on PATH and no AWS credentials anywhere: an empty HOME, no AWS_* variables,
    and no instance metadata to ask (the lookup would leave this machine)."""
    home, path = machine
    home.mkdir()
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "MAKE"))}
    return env | {"HOME": str(home), "PATH": f"{path}:/usr/bin:/bin", "AWS_EC2_METADATA_DISABLED": "true"}


def run_make(target: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - the project's own Makefile
        [MAKE, "--no-print-directory", "-C", str(ROOT), target], env=env, capture_output=True, text=True, timeout=300
    )


def test_make_validate_works_without_a_sam_cli_of_ones_own_or_aws_credentials(fresh_user):
    done = run_make("validate", fresh_user)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "template.yaml is a valid SAM Template" in done.stdout


def test_make_deploy_without_aws_credentials_says_so_before_building(fresh_user):
    done = run_make("deploy", fresh_user)

    assert done.returncode == 2, done.stdout + done.stderr
    assert "make deploy needs AWS credentials, and none were found" in done.stderr
    assert "command not found" not in done.stderr
    assert "sam build" not in done.stdout

"""Every test that docs/reliability.md cites exists, so the table cannot drift from the suite."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT

CITED = sorted(set(re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?", (ROOT / "docs" / "reliability.md").read_text())))


def test_the_reliability_table_cites_tests():
    assert len(CITED) >= 20


@pytest.mark.parametrize(("path", "name"), CITED, ids=[f"{p}::{n}" for p, n in CITED])
def test_each_cited_test_exists(path, name):
    source = (ROOT / path).read_text()
    assert not name or re.search(rf"^def {name}\(", source, re.MULTILINE), f"{path} has no test {name}"

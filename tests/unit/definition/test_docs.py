"""Every test that docs/reliability.md and docs/security.md cite exists, so the tables cannot drift from the suite."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT

DOCS = ("reliability.md", "security.md")
CITED = sorted(
    {
        cited
        for doc in DOCS
        for cited in re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?", (ROOT / "docs" / doc).read_text())
    }
)


def test_the_reliability_table_cites_tests():
    assert len(CITED) >= 20


@pytest.mark.parametrize(("path", "name"), CITED, ids=[f"{p}::{n}" for p, n in CITED])
def test_each_cited_test_exists(path, name):
    source = (ROOT / path).read_text()
    assert not name or re.search(rf"^def {name}\(", source, re.MULTILINE), f"{path} has no test {name}"

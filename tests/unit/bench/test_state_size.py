"""The largest state an execution can carry: computed from the code, far below Step Functions' limit,
and quoted as computed in docs/reliability.md."""

from __future__ import annotations

import re

from bench import state_size
from tests.conftest import ROOT


def test_the_largest_possible_state_stays_far_below_256_kib():
    figures = state_size.worst_case()

    assert figures["largest state"] < 0.6 * state_size.STATE_LIMIT, figures
    # The parts the door and the bounded text keep small, whatever arrives
    assert figures["request (watch)"] < 4_096
    assert figures["poll record"] < 8_192
    assert figures["outcome detail"] < 64 * 1024


def test_the_reliability_doc_quotes_the_computed_worst_case():
    doc = (ROOT / "docs" / "reliability.md").read_text()
    figures = state_size.worst_case()

    for name, value in figures.items():
        row = re.search(rf"^\| {re.escape(name)} \| ([\d,]+) \|", doc, re.MULTILINE)
        assert row, f"docs/reliability.md has no row for {name!r}"
        assert int(row.group(1).replace(",", "")) == value, name

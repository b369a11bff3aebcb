"""Log insight, by property (issue 7, item 4): any bytes, cut into chunks anywhere, give a summary.

Whatever the log holds (garbage, invalid UTF-8, CRLF, flattened entries, lines past the kept length,
text built to blow the size bound), ``LogInsight`` never raises and never stops on a bug of its own,
its summary has the promised shape and stays within 4 KiB, and it does not depend on where the
chunks end: so the bulk reading of plain export lines and the line-by-line reading agree.
"""

from __future__ import annotations

from itertools import pairwise

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iics_monitor.loginsight import MAX_LINE_BYTES, SLACK_CHARS, LogInsight, format_for_slack, summarise_log
from tests.unit.layer.test_loginsight import assert_valid_summary

PROFILE = settings(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


def in_chunks(log: bytes, cuts: list[int]) -> list[bytes]:
    edges = sorted({0, len(log), *(cut % (len(log) + 1) for cut in cuts)})
    return [log[start:stop] for start, stop in pairwise(edges)]


def fed(chunks: list[bytes]) -> dict:
    insight = LogInsight()
    for chunk in chunks:
        insight.feed(chunk)
    return insight.finish()


# --- strategies -------------------------------------------------------------------------------------------------------

# Text that is hard on a parser and on a size bound: brackets and "> " that look like structure,
# characters that JSON escapes to 6 or 12 bytes, controls and bidi overrides.
TRICKY = ["> ", "]", "[", " of type [", "] id [", ": ", "\t", "\r", "\x00", "\u202e", "é", '"', "\\", "\U0001f600" * 40]
tricky_text = st.lists(st.sampled_from(TRICKY) | st.text(max_size=8), max_size=12).map("".join)


def mostly(good: st.SearchStrategy[str], bad: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """``good`` three times in four, else ``bad``: enough of each to reach every branch."""
    return st.integers(0, 3).flatmap(lambda n: good if n else bad)


codes = mostly(
    st.sampled_from(["OIE_002", "OIE_003", "OIE_004", "OIE_005"]),
    st.sampled_from(["oie_004", "1BAD", ""]) | st.text(max_size=5),
)
levels = mostly(
    st.sampled_from(["INFO", "WARN", "WARNING", "ERROR"]), st.sampled_from(["SEVERE", "info", "", "I N F O"])
)
stamps = mostly(
    st.sampled_from(["2026-11-28T09:00:00.000Z", "9/26/21 9:06 AM"]), st.sampled_from(["Z\r", "", "2" * 45])
)


@st.composite
def entry_lines(draw) -> str:
    """One ``> CODE LEVEL timestamp message`` line, often almost right."""
    message = draw(
        st.one_of(
            st.builds(
                "Successfully exported object [{}] of type [{}] id [{}]".format, tricky_text, tricky_text, tricky_text
            ),
            st.builds("Failed to export object [{}]: {}".format, tricky_text, tricky_text),
            st.just("Finished export operation."),
            st.builds("Finished export operation. Job Name: {} Status: {}".format, tricky_text, tricky_text),
            tricky_text,
        )
    )
    return f"> {draw(codes)} {draw(levels)} {draw(stamps)} {message}"


FOOTER_LABELS = ["Job Name", "Start Time", "End Time", "Started by", "Start Method", "Source Organization", "Status"]
continuation_lines = (
    st.builds("{}: {}".format, mostly(st.sampled_from(FOOTER_LABELS), st.just("status ")), tricky_text) | tricky_text
)
footer_lines = st.lists(continuation_lines, max_size=8)


@st.composite
def logs(draw) -> bytes:
    """Lines of the export log's shapes, joined by LF, CRLF or a space (the page's flattened form)."""
    lines = draw(st.lists(st.integers(0, 3).flatmap(lambda n: entry_lines() if n else continuation_lines), max_size=25))
    if draw(st.booleans()):
        lines += ["> OIE_003 INFO 2026-11-28T09:00:04.000Z Finished export operation.", *draw(footer_lines)]
    text = draw(st.sampled_from(["\n", "\r\n", " "])).join(lines)
    data = bytearray(text.encode())
    for position, junk in draw(st.lists(st.tuples(st.integers(0, 10**6), st.binary(max_size=4)), max_size=2)):
        data[position % (len(data) + 1) : position % (len(data) + 1)] = junk  # invalid UTF-8 anywhere
    if draw(st.integers(0, 9)) == 0:
        data += b"\n" + draw(st.sampled_from([b"> E ERROR 1 ", b"z", b"\xff"])) * (MAX_LINE_BYTES + 1) + b"\nStatus: X"
    return bytes(data)


# Plain names half of the time, so lines often take the bulk reading, else anything.
names = st.text("abcXYZ_/ 0é", max_size=12) | tricky_text
plain_export_lines = st.builds(
    "> OIE_004 INFO 2026-11-28T09:00:00Z Successfully exported object [{}] of type [{}] id [{}]{}".format,
    names,
    names,
    names,
    mostly(st.just(""), st.sampled_from(["\r", " > OIE_004 INFO 2026-11-28T09:00:01Z x", " > x"])),
)


SUMMARY_KEYS = ["objects", "byType", "exported", "failed", "errors", "warnings", "first", "count", "code", "message"]
SUMMARY_KEYS += ["footer", "seen", "status", "malformedLines", "DTEMPLATE"]
summary_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=300),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(SUMMARY_KEYS), children, max_size=5)
    ),
    max_leaves=30,
)


WIDE = ["\U0001f600" * 200, "\u00e9" * 200, '"' * 200]
wide_logs = st.lists(
    st.builds(
        "> {} {} 2026-11-28T09:00:00Z {} [p] of type [{}{}] id [x]\nStatus: {}".format,
        st.sampled_from(["OIE_003", "OIE_004", "OIE_005"]),
        st.sampled_from(["INFO", "WARN", "ERROR"]),
        st.sampled_from(WIDE),
        st.integers(0, 200),
        st.sampled_from(WIDE),
        st.sampled_from(WIDE),
    ),
    min_size=1,
    max_size=60,
).map(lambda lines: "\n".join(lines).encode())


# --- properties -------------------------------------------------------------------------------------------------------


@settings(PROFILE, max_examples=300)
@given(st.binary(max_size=2000), st.lists(st.integers(min_value=0), max_size=8))
def test_any_bytes_in_any_chunks_give_a_valid_bounded_summary(log, cuts):
    summary = fed(in_chunks(log, cuts))

    assert summary["parseError"] is None
    assert summary["sizeBytes"] == len(log)
    assert_valid_summary(summary)
    assert summary == summarise_log(log)


@settings(PROFILE, max_examples=120)
@given(logs(), st.lists(st.integers(min_value=0), max_size=8))
def test_log_shaped_input_in_any_chunks_gives_the_same_valid_summary(log, cuts):
    summary = fed(in_chunks(log, cuts))

    assert summary["parseError"] is None
    assert_valid_summary(summary)
    assert summary == summarise_log(log)
    assert len(format_for_slack(summary)) <= SLACK_CHARS


@settings(PROFILE, max_examples=40)
@given(wide_logs)
def test_text_made_to_blow_the_bound_is_shortened_to_fit(log):
    summary = summarise_log(log)

    assert_valid_summary(summary)
    assert len(format_for_slack(summary)) <= SLACK_CHARS


@settings(PROFILE, max_examples=150)
@given(st.lists(plain_export_lines, min_size=1, max_size=5))
def test_export_lines_read_in_bulk_and_byte_by_byte_agree(lines):
    """Byte by byte, every line is read on its own; a chunk of whole lines is read in bulk when they
    are all plain, so a line per chunk puts each plain-looking line through the bulk reading."""
    encoded = [f"{line}\n".encode() for line in lines]
    log = b"".join(encoded)

    byte_by_byte = fed([log[n : n + 1] for n in range(len(log))])

    assert byte_by_byte["parseError"] is None
    assert fed(encoded) == byte_by_byte
    assert summarise_log(log) == byte_by_byte


@settings(PROFILE, max_examples=100)
@given(summary_like)
def test_the_slack_text_reads_any_value(value):
    assert len(format_for_slack(value)) <= SLACK_CHARS

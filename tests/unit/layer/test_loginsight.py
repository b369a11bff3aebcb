"""loginsight: what an export log says, read chunk by chunk as it streams, in a summary of at most 4 KiB.

The logs are the page's own example (flattened onto one line), logs the emulator generates for
successful and failed jobs (read through the real IicsClient), and hand-made ones for the edges.
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import jsonschema
import pytest

from iics_monitor import loginsight
from iics_monitor.client import IicsClient
from iics_monitor.loginsight import (
    MAX_LINE_BYTES,
    MAX_SUMMARY_BYTES,
    MESSAGE_CHARS,
    SLACK_CHARS,
    TYPES_SHOWN,
    LogInsight,
    format_for_slack,
    serialised_size,
    summarise_log,
)
from iics_monitor_local import reference
from tests.conftest import USERNAME

_COUNT = {"type": "integer", "minimum": 0}
_TEXT_OR_NULL = {"type": ["string", "null"]}
_ENTRIES = {
    "type": "object",
    "required": ["count", "first"],
    "properties": {
        "count": _COUNT,
        "first": {
            "type": "array",
            "maxItems": 5,
            "items": {
                "type": "object",
                "required": ["code", "level", "timestamp", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "level": {"type": "string"},
                    "timestamp": {"type": "string"},
                    "message": {"type": "string", "maxLength": 200},
                },
            },
        },
    },
}
# The fragment the outcome schema takes as properties.logSummary (draft-04, like events/outcome.schema.json).
# The outcome schema's logSummary (events/outcome.schema.json), not a copy of it.
SUMMARY_SCHEMA = json.loads((Path(__file__).resolve().parents[3] / "events" / "outcome.schema.json").read_text())[
    "properties"
]["logSummary"]["oneOf"][1]


def assert_valid_summary(summary: dict) -> None:
    """The shape the outcome event promises, within the size bound, and JSON all the way through."""
    jsonschema.Draft4Validator(SUMMARY_SCHEMA).validate(summary)
    assert serialised_size(summary) <= MAX_SUMMARY_BYTES
    assert json.loads(json.dumps(summary)) == summary
    json.dumps(summary, ensure_ascii=False).encode()  # no lone surrogates


def fed_in_pieces(log: bytes, size: int) -> dict:
    insight = LogInsight()
    for start in range(0, len(log), size):
        insight.feed(log[start : start + size])
    return insight.finish()


def without_size(summary: dict) -> dict:
    return {key: value for key, value in summary.items() if key != "sizeBytes"}


def streamed(client: IicsClient, job_id: str, read_size: int = 4096) -> dict:
    """The summary of a job's log as the archiver would make it: fed each piece it reads."""
    insight = LogInsight()
    with client.open_log(job_id) as stream:
        while chunk := stream.read(read_size):
            insight.feed(chunk)
    return insight.finish()


def good(name: str, kind: str) -> dict:
    return {"name": name, "path": "/Sales", "type": kind, "status": {"state": "SUCCESSFUL"}}


def locked(name: str, kind: str) -> dict:
    return {
        "name": name,
        "path": "/Sales",
        "type": kind,
        "status": {"state": "FAILED", "message": f"{name} is locked."},
    }


# --- the page's example -----------------------------------------------------------------------------------------------


def test_the_pages_flattened_example_gives_its_objects_and_footer():
    summary = summarise_log(reference.LOG_TEXT.encode())

    assert summary == {
        "sizeBytes": len(reference.LOG_TEXT),
        "lines": 1,
        "entries": 9,
        "levels": {"INFO": 9},
        "otherLevels": 0,
        "objects": {
            "exported": 7,
            "failed": 0,
            "byType": {"Folder": 2, "Project": 2, "MAPPING": 1, "SAAS_CONNECTION": 1, "SAAS_RUNTIME_ENVIRONMENT": 1},
            "otherTypes": 0,
        },
        "warnings": {"count": 0, "first": []},
        "errors": {"count": 0, "first": []},
        "footer": {
            "seen": True,
            "jobName": "m_RegionTotalNew-1549407002393",
            "startTime": "2019-02-05T22:50:03.000Z",
            "endTime": "2019-02-05T22:50:09.765Z",
            "startedBy": "janer2",
            "startMethod": "API",
            "sourceOrganization": "infa.doc",
            "status": "SUCCESSFUL",
        },
        "malformedLines": 0,
        "strayLines": 0,
        "truncatedLines": 0,
        "shortened": False,
        "parseError": None,
    }
    assert_valid_summary(summary)
    assert format_for_slack(summary) == (
        "7 objects exported (2 Folder, 2 Project, 1 MAPPING, 1 SAAS_CONNECTION, 1 other); log status SUCCESSFUL"
    )


def test_the_reference_job_streamed_through_the_client_reads_the_same(emulator, client):
    job_id = emulator.add_reference_job(states=["SUCCESSFUL"])

    assert streamed(client, job_id, read_size=100) == summarise_log(reference.LOG_TEXT.encode())


# --- emulator logs ----------------------------------------------------------------------------------------------------


def test_a_successful_jobs_log_counts_objects_by_type_and_reads_its_footer(emulator, client):
    objects = [good(f"m_{n}", "DTEMPLATE") for n in range(5)] + [good(f"t_{n}", "MTT") for n in range(4)]
    objects += [good("Sales", "Project"), good("conn", "SAAS_CONNECTION")]
    job_id = emulator.add_job(name="nightly", states=["SUCCESSFUL"], objects=objects)

    summary = streamed(client, job_id)

    assert summary["objects"] == {
        "exported": 11,
        "failed": 0,
        "byType": {"DTEMPLATE": 5, "MTT": 4, "Project": 1, "SAAS_CONNECTION": 1},
        "otherTypes": 0,
    }
    assert (summary["lines"], summary["entries"], summary["levels"]) == (6 + 11 + 8, 13, {"INFO": 13})
    footer = summary["footer"]
    assert (footer["seen"], footer["status"], footer["jobName"]) == (True, "SUCCESSFUL", "nightly")
    assert (footer["startedBy"], footer["startMethod"], footer["sourceOrganization"]) == (
        USERNAME,
        "API",
        emulator.org_name,
    )
    assert footer["startTime"] and footer["endTime"]  # the footer's clock format, e.g. "9/26/21 9:06 AM"
    assert (summary["malformedLines"], summary["strayLines"], summary["errors"]["count"]) == (0, 0, 0)
    assert_valid_summary(summary)
    assert format_for_slack(summary) == (
        "11 objects exported (5 DTEMPLATE, 4 MTT, 1 Project, 1 SAAS_CONNECTION); log status SUCCESSFUL"
    )


def test_a_failed_jobs_log_gives_its_errors_and_status(emulator, client):
    objects = [good("m_customers", "DTEMPLATE"), locked("m_orders", "DTEMPLATE"), locked("t_daily", "MTT")]
    job_id = emulator.add_job(name="promote-to-prod", states=["FAILED"], objects=objects)

    summary = streamed(client, job_id)

    assert summary["objects"] == {"exported": 1, "failed": 2, "byType": {"DTEMPLATE": 1}, "otherTypes": 0}
    assert summary["levels"] == {"INFO": 3, "ERROR": 2}
    assert summary["errors"]["count"] == 2
    first = summary["errors"]["first"][0]
    assert (first["code"], first["level"]) == ("OIE_005", "ERROR")
    assert first["message"].startswith("Failed to export object [/Explore/Sales/m_orders] of type [DTEMPLATE] id [")
    assert first["message"].endswith("]: m_orders is locked.")
    assert (summary["footer"]["seen"], summary["footer"]["status"]) == (True, "FAILED")
    assert_valid_summary(summary)
    assert format_for_slack(summary) == (
        f"1 object exported (1 DTEMPLATE), 2 failed; 2 errors: OIE_005 {first['message']}; log status FAILED"
    )


def test_a_running_jobs_log_has_only_its_header(emulator, client):
    job_id = emulator.add_job(states=["IN_PROGRESS"])

    summary = streamed(client, job_id)

    assert (summary["entries"], summary["objects"]["exported"], summary["footer"]["seen"]) == (1, 0, False)
    assert format_for_slack(summary) == "0 objects exported; no end-of-log summary (log cut short?)"


def test_a_padded_log_of_8_mib_stays_small(emulator):
    job_id = emulator.add_job(states=["FAILED"], objects=[locked("m_orders", "DTEMPLATE")], log_size=8 * 1024 * 1024)

    summary = fed_in_pieces(emulator.log_of(job_id), 1024 * 1024 + 7)

    objects = summary["objects"]
    assert objects["exported"] > 50_000
    # the emulator cuts its last filler line short to make the size exact: that one has no type
    assert (objects["byType"], objects["otherTypes"]) == ({"DTEMPLATE": objects["exported"] - 1}, 1)
    assert (summary["errors"]["count"], summary["footer"]["status"]) == (1, "FAILED")
    assert_valid_summary(summary)


# --- chunking, line ends, bytes ---------------------------------------------------------------------------------------


MIXED_LOG = (
    b"> OIE_002 INFO 2026-11-28T09:00:00.000Z Starting export operation.\n"
    b"Job Name: mixed\n"
    + b"".join(
        b"> OIE_004 INFO 2026-11-28T09:00:01.000Z Successfully exported object [/Explore/p/m_%d] of type [%s] id [%d]\n"
        % (n, b"MTT" if n % 3 else b"DTEMPLATE", n)
        for n in range(1000)
    )
    + b"> OIE_099 WARN 2026-11-28T09:00:02.000Z Object m_7 uses a deprecated connection.\n"
    b"  it will stop working in the next release\n"
    b"> OIE_004 INFO 2026-11-28T09:00:02.000Z Successfully exported object [/Explore/[odd]/m] of type [MTT] id [y]\n"
    b"> OIE_005 ERROR 2026-11-28T09:00:03.000Z Failed to export object [/Explore/p/m_9] of type [MTT] id [z]: locked\n"
    b"> this is not an entry\n"
    b"> OIE_003 INFO 2026-11-28T09:00:04.000Z Finished export operation.\n"
    b"Job Name: mixed\n"
    b"Status: FAILED"
)


@pytest.mark.parametrize("name", ["reference", "mixed"])
def test_the_summary_does_not_depend_on_where_chunks_end(name):
    log = reference.LOG_TEXT.encode() if name == "reference" else MIXED_LOG
    whole = summarise_log(log)

    assert fed_in_pieces(log, 1) == whole
    assert fed_in_pieces(log, 7) == whole
    assert fed_in_pieces(log, 4096) == whole


def test_the_mixed_log_is_read_entry_by_entry():
    summary = summarise_log(MIXED_LOG)

    assert summary["objects"] == {
        "exported": 1001,
        "failed": 1,
        "byType": {"MTT": 667, "DTEMPLATE": 334},
        "otherTypes": 0,
    }
    assert summary["warnings"] == {
        "count": 1,
        "first": [
            {
                "code": "OIE_099",
                "level": "WARN",
                "timestamp": "2026-11-28T09:00:02.000Z",
                "message": "Object m_7 uses a deprecated connection. it will stop working in the next release",
            }
        ],
    }
    assert (summary["malformedLines"], summary["footer"]["status"]) == (1, "FAILED")  # the last line has no newline
    assert format_for_slack(summary) == (
        "1001 objects exported (667 MTT, 334 DTEMPLATE), 1 failed; 1 warning, 1 error: OIE_005 Failed to export "
        "object [/Explore/p/m_9] of type [MTT] id [z]: locked; log status FAILED; 1 unreadable line"
    )


def test_crlf_line_ends_read_like_lf():
    lf = summarise_log(MIXED_LOG)
    crlf = summarise_log(MIXED_LOG.replace(b"\n", b"\r\n"))

    assert without_size(crlf) == without_size(lf)
    assert fed_in_pieces(MIXED_LOG.replace(b"\n", b"\r\n"), 1) == crlf


def test_invalid_utf8_becomes_replacement_characters():
    log = b"> OIE_005 ERROR 2026-11-28T09:00:03.000Z Failed to export object [/Explore/\xff\xfe\xc3] of type [M\x80]\n"

    summary = summarise_log(log)

    assert (
        summary["errors"]["first"][0]["message"]
        == "Failed to export object [/Explore/\ufffd\ufffd\ufffd] of type [M\ufffd]"
    )
    assert_valid_summary(summary)


def test_control_and_bidi_characters_never_reach_the_summary():
    log = b"> OIE_005 ERROR 2026-11-28T09:00:03.000Z bad\x00\x1b[31m\xe2\x80\xaeobject\x07\n"

    assert summarise_log(log)["errors"]["first"][0]["message"] == "bad [31m object"


def test_a_byte_order_mark_is_skipped():
    assert summarise_log(b"\xef\xbb\xbf" + reference.LOG_TEXT.encode())["entries"] == 9


# --- edges of the format ----------------------------------------------------------------------------------------------


def test_an_empty_log():
    summary = LogInsight().finish()

    assert (summary["lines"], summary["entries"], summary["footer"]["seen"], summary["parseError"]) == (
        0,
        0,
        False,
        None,
    )
    assert_valid_summary(summary)
    assert format_for_slack(summary) == "0 objects exported; no end-of-log summary (log cut short?)"


def test_a_log_cut_short_has_no_footer():
    log = MIXED_LOG[: MIXED_LOG.index(b"> OIE_003")]

    summary = summarise_log(log)

    assert summary["footer"] == {"seen": False} | {field: None for field in list(summary["footer"])[1:]}
    assert summary["objects"]["exported"] == 1001


def test_lines_before_the_first_entry_are_stray():
    summary = summarise_log(
        b"<html>\nBad gateway\n> OIE_002 INFO 2026-11-28T09:00:00.000Z Starting export operation.\n"
    )

    assert (summary["strayLines"], summary["entries"]) == (2, 1)


def test_unparseable_entry_lines_are_counted_and_their_continuations_ignored():
    log = (
        b"> OIE_004\n> OIE_004 INFO\n> \n> OIE_003 INFO 2026-11-28T09:00:04.000Z Finished.\n> ??? x y\nStatus: FAILED\n"
    )

    summary = summarise_log(log)

    assert (summary["malformedLines"], summary["entries"], summary["footer"]["status"]) == (4, 1, None)


def test_the_last_footer_wins():
    log = (
        b"> OIE_003 INFO 2026-11-28T09:00:04.000Z Finished export operation.\nStatus: SUCCESSFUL\n"
        b"> OIE_003 INFO 2026-11-28T09:00:05.000Z Finished export operation.\nstatus:FAILED\nJob Name: again\n"
    )

    footer = summarise_log(log)["footer"]

    assert (footer["status"], footer["jobName"], footer["startedBy"]) == ("FAILED", "again", None)


def test_levels_are_counted_case_blind_and_capped():
    entries = [f"> C{n} LEVEL{chr(65 + n)} 2026-11-28T09:00:00Z m\n".encode() for n in range(15)]

    summary = summarise_log(b"> C INFO 2026-11-28T09:00:00Z m\n> C info 2026-11-28T09:00:00Z m\n" + b"".join(entries))

    assert summary["levels"]["INFO"] == 2
    assert len(summary["levels"]) == 10
    assert summary["otherLevels"] == 6


def test_an_errors_message_is_cut_and_continued_up_to_200_characters():
    log = (
        b"> E ERROR 2026-11-28T09:00:00Z " + b"x" * 500 + b"\nmore\n> E ERROR 2026-11-28T09:00:01Z short\n" + b"y" * 300
    )

    first, second = summarise_log(log)["errors"]["first"]

    assert first["message"] == "x" * MESSAGE_CHARS
    assert second["message"] == "short " + "y" * (MESSAGE_CHARS - 6)


# --- bounds -----------------------------------------------------------------------------------------------------------


def test_a_huge_line_is_cut_and_costs_no_more_than_its_kept_start():
    piece = b"> E ERROR 2026-11-28T09:00:00Z " + b"z" * (1024 * 1024)
    insight = LogInsight()

    tracemalloc.start()
    try:
        for _ in range(64):  # one line of 64 MiB
            insight.feed(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    insight.feed(b"\n" + reference.LOG_TEXT.encode())
    summary = insight.finish()

    assert peak < 4 * MAX_LINE_BYTES
    assert (summary["lines"], summary["truncatedLines"], summary["errors"]["count"]) == (2, 1, 1)
    assert summary["objects"]["exported"] == 7  # the line after it is read as usual


def test_100k_objects_of_many_types_stay_within_4_kib():
    lines = (
        f"> OIE_004 INFO 2026-11-28T09:00:00Z Successfully exported object [/Explore/p/m{n}] of type "
        f"[TYPE_{n % 150:03d}_{'A' * 40}] id [{n}]\n"
        for n in range(100_000)
    )
    problems = (
        f"> OIE_005 {level} 2026-11-28T09:00:00Z {'problem ' * 40} {n}\n"
        for n in range(100)
        for level in ("ERROR", "WARN")
    )

    summary = fed_in_pieces("".join([*lines, *problems]).encode(), 1024 * 1024)

    objects = summary["objects"]
    assert objects["exported"] == 100_000
    assert len(objects["byType"]) == TYPES_SHOWN
    assert sum(objects["byType"].values()) + objects["otherTypes"] == 100_000
    assert (summary["errors"]["count"], summary["warnings"]["count"]) == (100, 100)
    assert len(summary["errors"]["first"]) == len(summary["warnings"]["first"]) == 5
    assert_valid_summary(summary)
    assert len(format_for_slack(summary)) <= SLACK_CHARS


def test_hostile_text_is_shortened_to_fit():
    wide = "\U0001f600" * 300  # 12 bytes each once JSON-escaped
    footer = "".join(f"{label}: {wide}\n" for label in ("Job Name", "Start Time", "End Time", "Started by", "Status"))
    entries = "".join(
        f"> OIE_004 INFO 2026-11-28T09:00:00Z Successfully exported object [p] of type [{n}{wide}] id [x]\n"
        f"> OIE_005 ERROR 2026-11-28T09:00:00Z {wide}\n> OIE_006 WARNING 2026-11-28T09:00:00Z {wide}\n"
        for n in range(30)
    )
    log = f"{entries}> OIE_003 INFO 2026-11-28T09:00:04.000Z Finished export operation.\n{footer}".encode()

    summary = summarise_log(log)

    assert summary["shortened"] is True
    assert summary["footer"]["seen"] is True
    assert summary["objects"]["exported"] == 30
    assert_valid_summary(summary)


# --- robustness -------------------------------------------------------------------------------------------------------


def test_a_bug_in_the_parser_stops_the_insight_but_never_raises(monkeypatch):
    def broken(self, body):
        raise RuntimeError("a bug")

    monkeypatch.setattr(LogInsight, "_entry", broken)
    insight = LogInsight()

    insight.feed(reference.LOG_TEXT.encode() + b"\n")
    insight.feed(b"more")
    summary = insight.finish()

    assert (summary["parseError"], summary["sizeBytes"]) == ("RuntimeError", len(reference.LOG_TEXT) + 5)
    assert_valid_summary(summary)


@pytest.mark.parametrize(
    "summary",
    [
        None,
        [],
        "text",
        {"objects": "x", "errors": {"first": [None, 1]}, "footer": {"seen": "yes"}},
        {"objects": {"byType": {"A": -1}}},
    ],
)
def test_the_slack_text_reads_any_value_without_raising(summary):
    assert format_for_slack(summary).startswith("0 objects exported")


def test_the_slack_text_is_bounded():
    summary = summarise_log(MIXED_LOG) | {"malformedLines": 10**30}
    summary["errors"]["first"][0]["message"] = "e" * 1000
    summary["objects"]["byType"] = {"T" * 1000: 1, "U" * 1000: 2}

    assert len(format_for_slack(summary)) <= SLACK_CHARS
    assert format_for_slack(summary, limit=100) == format_for_slack(summary)[:99] + "…"


def test_the_module_keeps_its_limits_consistent():
    assert loginsight.TYPES_SHOWN <= loginsight.TYPES_TRACKED
    assert SUMMARY_SCHEMA["properties"]["objects"]["properties"]["byType"]["maxProperties"] == TYPES_SHOWN

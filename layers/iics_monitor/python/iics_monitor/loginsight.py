"""What an export (or import) log says, read while it streams to S3: objects by type, levels, first problems, footer.

The log is fed in chunks of any size (``LogInsight.feed``), the chunks the archiver already reads,
so a log of gigabytes costs no extra memory or download: the state is a few counters, one partial
line (at most ``MAX_LINE_BYTES``) and a handful of short samples. ``finish()`` returns a
JSON-serialisable summary of at most ``MAX_SUMMARY_BYTES`` whatever the log held.

The format (docs: /work/shared/reference/iics-api-notes.md, "Export log format (observed)"): entries
``> CODE LEVEL timestamp message``; lines not starting with ``> `` continue the previous entry (the
header after OIE_002, the footer after OIE_003: ``Job Name: ...`` ... ``Status: SUCCESSFUL``).
Informatica's page prints the same log flattened onto one line; that variant is read too, as long as
the line fits in ``MAX_LINE_BYTES``. No public sample of a failed export log exists, so nothing here
trusts the input: any bytes give a summary, and a bug in this module never costs the archive (see
``LogInsight._guarded``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from iics_monitor.observability import logger

MAX_LINE_BYTES = 64 * 1024  # kept of each line; the page's flattened example is 2.3 KB
MAX_SUMMARY_BYTES = 4096  # json.dumps(summary), ASCII-escaped: the longest way it is serialised
SAMPLES_PER_KIND = 5  # first WARN and first ERROR entries kept
MESSAGE_CHARS = 200
FIELD_CHARS = 100  # a footer value
TYPE_CHARS = 60
TYPES_TRACKED = 100  # distinct object types counted; later ones go to otherTypes
TYPES_SHOWN = 20  # the most frequent of them, in the summary
LEVELS_TRACKED = 10
SLACK_CHARS = 500

_WARNING_LEVELS = frozenset({b"WARN", b"WARNING"})
_ERROR_LEVELS = frozenset({b"ERROR", b"SEVERE", b"FATAL", b"CRITICAL"})
_EXPORTED = b"OIE_004"
_IMPORTED = b"OIE_006"  # an import log's "Successfully imported object ..." (iics-api-notes.md)
_FINISHED = b"OIE_003"
# The emulator's wording (OIE_005, OIE_007); the real wording of a failed object is unknown.
_FAILED_OBJECT = (b"Failed to export object", b"Failed to import object")
_BOM = b"\xef\xbb\xbf"

# The part of an entry line after "> ": code, level, timestamp (ISO or not, it starts with a digit), message.
_ENTRY = re.compile(rb"([A-Za-z][A-Za-z0-9_.-]{0,39})[ \t]+([A-Za-z]{1,16})[ \t]+(\d[!-~]{0,39})(?:[ \t]+(.*))?", re.S)
# Where the next entry starts inside a flattened line: "> CODE LEVEL yyyy-mm-ddT", after a space or "]".
_FLAT_SPLIT = re.compile(rb"[ \t]*> (?=[A-Za-z][A-Za-z0-9_.-]{0,39}[ \t]+[A-Za-z]{1,16}[ \t]+\d{4}-\d\d-\d\dT)")
_OBJECT_TYPE = re.compile(rb" of type \[([^\]]{0,100})\]")
# A whole plain OIE_004 line, its type captured: no brackets before the type's, under MAX_LINE_BYTES.
_PLAIN_EXPORT = re.compile(
    rb"(?m)^> OIE_004 INFO \d[!-~]{0,39} [^\n\[\]]{0,1000}+\[[^\n\[\]]{0,20000}+\] of type \[([^\]\n]{0,100})\]"
    rb"[^\n]{0,20000}+\n"
)
_BLOCK_BYTES = 256 * 1024  # lines counted in bulk at a time; a block with any other line is read line by line
_FOOTER_FIELDS = {
    b"job name": "jobName",
    b"start time": "startTime",
    b"end time": "endTime",
    b"started by": "startedBy",
    b"start method": "startMethod",
    b"source organization": "sourceOrganization",
    b"status": "status",
}
_FLAT_FOOTER_LABEL = re.compile(
    rb"(Job Name|Start Time|End Time|Started by|Start Method|Source Organization|Status):[ \t]*"
)
# Control, line-separator and bidi-override characters: nothing a log line may smuggle into an alert.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]+")

# What continuation lines belong to.
_BEFORE_FIRST_ENTRY, _FOOTER, _SAMPLE, _OTHER = range(4)


def _clean(raw: bytes, chars: int) -> str:
    """Log bytes as one line of printable text of at most ``chars`` characters."""
    text = raw[: chars * 4].decode("utf-8", "replace")
    return _UNSAFE.sub(" ", text).strip()[:chars].rstrip()


class LogInsight:
    """Reads an export log chunk by chunk. Never raises on what the log holds."""

    def __init__(self) -> None:
        self._size = 0
        self._partial = bytearray()  # the start of a line whose end is still to come
        self._partial_cut = False  # that line is longer than MAX_LINE_BYTES
        self._lines = 0
        self._entries = 0
        self._malformed = 0
        self._stray = 0
        self._cut_lines = 0
        self._levels: dict[bytes, int] = {}
        self._other_levels = 0
        self._exported = 0
        self._imported = 0
        self._failed = 0
        self._types: dict[bytes, int] = {}
        self._other_types = 0
        self._warnings = 0
        self._errors = 0
        self._warning_samples: list[dict[str, str]] = []
        self._error_samples: list[dict[str, str]] = []
        self._footer_seen = False
        self._footer: dict[str, str] = {}
        self._context = _BEFORE_FIRST_ENTRY
        self._sample: dict[str, str] | None = None
        self._parse_error: str | None = None

    # --- input ----------------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> None:
        """The next bytes of the log, cut anywhere. Safe to call from HashingReader.read."""
        chunk = bytes(chunk)
        self._size += len(chunk)
        self._guarded(self._consume, chunk)

    def finish(self) -> dict[str, Any]:
        """The summary, once the whole log was fed (a last line without a newline counts)."""
        if self._partial:
            self._guarded(self._end_partial_line)
        return _fit(self._summary())

    def _guarded(self, step: Callable[..., None], *args: Any) -> None:
        """Run a parsing step; a bug in one stops the insight but never the archive it rides on."""
        if self._parse_error is not None:
            return
        try:
            step(*args)
        except Exception as error:  # noqa: BLE001 - whatever it is, the log must still reach S3
            self._parse_error = type(error).__name__
            self._partial.clear()
            logger.warning("Log insight stopped; the log is archived all the same", extra={"error": self._parse_error})

    def _consume(self, chunk: bytes) -> None:
        start = 0
        if self._partial:
            newline = chunk.find(b"\n")
            if newline < 0:
                self._keep_partial(chunk, 0, len(chunk))
                return
            self._keep_partial(chunk, 0, newline)
            self._end_partial_line()
            start = newline + 1
        end = max(chunk.rfind(b"\n", start) + 1, start)
        while start < end:
            stop = chunk.rfind(b"\n", start, start + _BLOCK_BYTES) + 1 or chunk.find(b"\n", start) + 1
            if not self._plain_block(chunk, start, stop):
                self._each_line(chunk, start, stop)
            start = stop
        if end < len(chunk):
            self._keep_partial(chunk, end, len(chunk))

    def _keep_partial(self, chunk: bytes, start: int, stop: int) -> None:
        room = MAX_LINE_BYTES - len(self._partial)
        if stop - start > room:
            self._partial_cut = True
            stop = start + room
        self._partial += chunk[start:stop]

    def _end_partial_line(self) -> None:
        line, cut = bytes(self._partial), self._partial_cut
        self._partial.clear()
        self._partial_cut = False
        self._line(line, cut)

    def _plain_block(self, chunk: bytes, start: int, stop: int) -> bool:
        """Count lines ``start:stop`` in bulk if every one is a plain export line; else leave them be.

        A plain line is read exactly as ``_line`` would read it (only faster): one "> " per line
        rules out flattened lines, and one match per line, anchored at its start, leaves no other.
        """
        lines = chunk.count(b"\n", start, stop)
        if chunk.count(b"> ", start, stop) != lines:
            return False
        kinds = _PLAIN_EXPORT.findall(chunk, start, stop)
        if len(kinds) != lines:
            return False
        self._lines += lines
        self._entries += lines
        self._exported += lines
        self._count_level(b"INFO", lines)
        for kind, count in Counter(kinds).items():
            self._count_type(kind, count)
        self._context = _OTHER
        self._sample = None
        return True

    def _each_line(self, chunk: bytes, start: int, stop: int) -> None:
        find, line_of = chunk.find, self._line
        while start < stop:
            newline = find(b"\n", start, stop)
            if newline - start > MAX_LINE_BYTES:
                line_of(chunk[start : start + MAX_LINE_BYTES], True)
            else:
                line_of(chunk[start:newline], False)
            start = newline + 1

    # --- lines and entries ----------------------------------------------------------------------

    def _line(self, line: bytes, cut: bool) -> None:
        self._lines += 1
        if cut:
            self._cut_lines += 1
        elif line.endswith(b"\r"):
            line = line[:-1]
        if self._lines == 1 and line.startswith(_BOM):
            line = line[len(_BOM) :]
        if not line.startswith(b"> "):
            self._continuation(line)
        elif line.find(b"> ", 2) < 0:
            self._entry(line[2:])
        else:
            for body in _FLAT_SPLIT.split(line[2:]):
                self._entry(body)

    def _entry(self, body: bytes) -> None:
        match = _ENTRY.fullmatch(body)
        self._sample = None
        if match is None:
            self._malformed += 1
            self._context = _OTHER
            return
        code, level, _, message = match.groups()
        message = message or b""
        level = level.upper()
        self._entries += 1
        self._context = _OTHER
        self._count_level(level)
        if code in (_EXPORTED, _IMPORTED):
            if code == _EXPORTED:
                self._exported += 1
            else:
                self._imported += 1
            kind = _OBJECT_TYPE.search(message)
            self._count_type(kind[1] if kind else None)
        elif code == _FINISHED:
            self._start_footer(message)
        if level in _ERROR_LEVELS:
            self._errors += 1
            if message.startswith(_FAILED_OBJECT):
                self._failed += 1
            self._keep_sample(self._error_samples, match)
        elif level in _WARNING_LEVELS:
            self._warnings += 1
            self._keep_sample(self._warning_samples, match)

    def _count_level(self, level: bytes, count: int = 1) -> None:
        if level in self._levels:
            self._levels[level] += count
        elif len(self._levels) < LEVELS_TRACKED:
            self._levels[level] = count
        else:
            self._other_levels += count

    def _count_type(self, kind: bytes | None, count: int = 1) -> None:
        if kind in self._types:
            self._types[kind] += count
        elif kind is not None and len(self._types) < TYPES_TRACKED:
            self._types[kind] = count
        else:
            self._other_types += count

    def _start_footer(self, message: bytes) -> None:
        """OIE_003: its fields follow on lines of their own, or on the same line (the page's example)."""
        self._footer_seen = True
        self._footer = {}
        labels = list(_FLAT_FOOTER_LABEL.finditer(message))
        for index, label in enumerate(labels):
            end = labels[index + 1].start() if index + 1 < len(labels) else len(message)
            value = message[label.end() : end]
            self._footer[_FOOTER_FIELDS[label[1].lower()]] = _clean(value, FIELD_CHARS)
        self._context = _FOOTER

    def _keep_sample(self, samples: list[dict[str, str]], match: re.Match[bytes]) -> None:
        if len(samples) >= SAMPLES_PER_KIND:
            return
        code, level, stamp, message = match.groups()
        self._sample = {
            "code": code.decode("ascii"),
            "level": level.upper().decode("ascii"),
            "timestamp": stamp.decode("ascii"),
            "message": _clean(message or b"", MESSAGE_CHARS),
        }
        samples.append(self._sample)
        self._context = _SAMPLE

    def _continuation(self, line: bytes) -> None:
        if self._context == _FOOTER:
            name, colon, value = line.partition(b":")
            field = _FOOTER_FIELDS.get(name.strip().lower())
            if colon and field:
                self._footer[field] = _clean(value, FIELD_CHARS)
        elif self._context == _SAMPLE and self._sample is not None:
            message = self._sample["message"]
            if len(message) < MESSAGE_CHARS:
                self._sample["message"] = f"{message} {_clean(line, MESSAGE_CHARS)}".strip()[:MESSAGE_CHARS]
        elif self._context == _BEFORE_FIRST_ENTRY:
            self._stray += 1

    # --- output ---------------------------------------------------------------------------------

    def _summary(self) -> dict[str, Any]:
        return {
            "sizeBytes": self._size,
            "lines": self._lines,
            "entries": self._entries,
            "levels": {_clean(level, 16): count for level, count in self._levels.items()},
            "otherLevels": self._other_levels,
            "objects": self._objects(),
            "warnings": {"count": self._warnings, "first": [dict(s) for s in self._warning_samples]},
            "errors": {"count": self._errors, "first": [dict(s) for s in self._error_samples]},
            "footer": {
                "seen": self._footer_seen,
                **{field: self._footer.get(field) for field in _FOOTER_FIELDS.values()},
            },
            "malformedLines": self._malformed,
            "strayLines": self._stray,
            "truncatedLines": self._cut_lines,
            "shortened": False,
            "parseError": self._parse_error,
        }

    def _objects(self) -> dict[str, Any]:
        by_type: dict[str, int] = {}
        for kind, count in self._types.items():
            name = _clean(kind, TYPE_CHARS) or "?"
            by_type[name] = by_type.get(name, 0) + count
        ranked = sorted(by_type.items(), key=lambda item: (-item[1], item[0]))
        shown = dict(ranked[:TYPES_SHOWN])
        hidden = sum(count for _, count in ranked[TYPES_SHOWN:])
        counts = {"exported": self._exported, "failed": self._failed, "byType": shown}
        if self._imported:  # an import log: its objects are imported (OIE_006), byType counts them
            counts = {"exported": self._exported, "imported": self._imported} | counts
        return counts | {"otherTypes": self._other_types + hidden}


def summarise_log(chunks: Iterable[bytes] | bytes) -> dict[str, Any]:
    """The summary of a whole log given as chunks (or as one ``bytes``)."""
    insight = LogInsight()
    for chunk in [chunks] if isinstance(chunks, bytes | bytearray) else chunks:
        insight.feed(chunk)
    return insight.finish()


# --- the size bound -----------------------------------------------------------------------------


def serialised_size(summary: Mapping[str, Any]) -> int:
    """Bytes of ``json.dumps(summary)``: ASCII-escaped, so no other JSON spelling is longer (bar indents)."""
    return len(json.dumps(summary))


def _fit(summary: dict[str, Any]) -> dict[str, Any]:
    """Shorten the summary, least useful parts first, until it serialises to MAX_SUMMARY_BYTES.

    Only hostile text gets here (200 characters outside the BMP escape to 2,400 bytes): what is left
    after every step, counts and level names and seven footer values of 20 characters, is under 3 KiB.
    """
    for _ in _shortenings(summary):
        if serialised_size(summary) <= MAX_SUMMARY_BYTES:
            break
        summary["shortened"] = True
    return summary


def _shortenings(summary: dict[str, Any]) -> Iterator[None]:
    yield
    samples = [*summary["errors"]["first"], *summary["warnings"]["first"]]
    for sample in samples:
        sample["message"] = sample["message"][:60]
    yield
    for kind in ("warnings", "errors"):
        while summary[kind]["first"]:
            summary[kind]["first"].pop()
            yield
    objects = summary["objects"]
    while objects["byType"]:
        _, count = objects["byType"].popitem()
        objects["otherTypes"] += count
        yield
    footer = summary["footer"]
    for field, value in footer.items():
        if isinstance(value, str):
            footer[field] = value[:20]
    yield


# --- Slack --------------------------------------------------------------------------------------


def format_for_slack(summary: Any, limit: int = SLACK_CHARS) -> str:
    """One short plain-text paragraph about the log, e.g. "13 objects exported (5 DTEMPLATE, ...);
    2 warnings, 1 error: OIE_005 Failed to ...". Reads the summary defensively (it comes back from
    an event); the caller escapes it for Slack."""
    summary = _mapping(summary)
    objects, footer = _mapping(summary.get("objects")), _mapping(summary.get("footer"))
    errors, warnings = _mapping(summary.get("errors")), _mapping(summary.get("warnings"))
    parts = [_objects_text(objects), _problems_text(errors, warnings)]
    if footer.get("seen") is not True:
        parts.append("no end-of-log summary (log cut short?)")
    elif status := _text(footer.get("status")):
        parts.append(f"log status {status}")
    unreadable = _count(summary.get("malformedLines"))
    if unreadable:
        parts.append(_plural(unreadable, "unreadable line"))
    text = "; ".join(part for part in parts if part)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _objects_text(objects: Mapping[str, Any]) -> str:
    imported = _count(objects.get("imported"))
    done, verb = (imported, "imported") if imported else (_count(objects.get("exported")), "exported")
    failed = _count(objects.get("failed"))
    types = [(_text(kind), _count(n)) for kind, n in _mapping(objects.get("byType")).items()]
    named = [f"{n} {kind}" for kind, n in types[:4] if kind]
    rest = done - sum(n for _, n in types[:4])
    if named and rest > 0:
        named.append(f"{rest} other")
    text = _plural(done, "object") + f" {verb}" + (f" ({', '.join(named)})" if named else "")
    return text + (f", {failed} failed" if failed else "")


def _problems_text(errors: Mapping[str, Any], warnings: Mapping[str, Any]) -> str:
    counts = [(_count(warnings.get("count")), "warning"), (_count(errors.get("count")), "error")]
    text = ", ".join(_plural(n, word) for n, word in counts if n)
    firsts = _list(errors.get("first")) or _list(warnings.get("first"))
    first = _mapping(firsts[0]) if firsts else {}
    if text and first:
        code, message = _text(first.get("code")) or "", _text(first.get("message"), MESSAGE_CHARS) or ""
        text += f": {code} {message}".rstrip()
    return text


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _text(value: Any, limit: int = TYPE_CHARS) -> str | None:
    return _UNSAFE.sub(" ", value[: limit * 2]).strip()[:limit] if isinstance(value, str) else None

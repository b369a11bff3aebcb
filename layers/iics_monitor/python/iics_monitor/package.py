"""An export package checked against its own manifest, and what it holds, read from a local copy.

IICS writes ``exportPackage.chksum`` into each export package: a Java properties file of
``<entry>=<SHA-256, upper-case hex>`` lines after ``#`` comment lines, which may also list keys that
are not entries (the real package captured in 2021 lists two object ids). ``verify`` hashes each entry
as it inflates (1 MiB at a time, never a whole entry in memory) and compares; ``describe`` counts the
objects of ``exportMetadata.v2.json`` (or, when that is absent or too big to parse in memory, of the
``ContentsofExportPackage_*.csv``, read row by row). Both return small dicts for the outcome: every
string scrubbed and bounded (``status.text``), every list cut short, whatever the package holds.

The archive step tees the package to a file under /tmp (``LocalCopy``) while it streams to S3, then
``check``s that file and removes it. A package past ``LOCAL_COPY_MAX_BYTES`` (sized to the ArchiveLog
function's EphemeralStorage in template.yaml) is archived unverified: ``verified`` is null.

``verified`` is true when the manifest parsed and every entry it lists is in the zip with its SHA-256;
false when the package is not that (not a zip, no manifest, a mismatch, a missing entry, cut short);
null when the monitor could not tell (too big to copy, out of time, a fault in the verifier).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import re
import struct
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from iics_monitor.observability import logger
from iics_monitor.status import REASON_LIMIT, text

MIB = 1024 * 1024
MANIFEST = "exportPackage.chksum"
METADATA = "exportMetadata.v2.json"
CSV_PREFIX = "ContentsofExportPackage_"
# The ArchiveLog function's /tmp is its EphemeralStorage (512 MiB in template.yaml): the copy keeps 64 MiB spare.
LOCAL_COPY_MAX_BYTES = 448 * MIB
READ_BYTES = 1 * MIB
# A zip's central directory is parsed whole by zipfile (some 400 bytes of memory per entry): refuse a huge one.
MAX_ENTRIES = 50_000
MAX_DIRECTORY_BYTES = 8 * MIB
MAX_INFLATED_BYTES = 8 * 1024 * MIB  # what hashing the listed entries may inflate (a zip bomb stops here)
MAX_MANIFEST_BYTES = 4 * MIB
MAX_METADATA_BYTES = 8 * MIB  # parsed whole; a bigger one is described from the CSV, row by row
# Named in the report (the rest counted): mismatches, then missing and unlisted entries and other keys.
# With them the outcome's worst case stays under 64 KiB (bench/state_size.py).
MISMATCHES_SHOWN, NAMES_SHOWN = 10, 5
TOP = 20  # types and folders named in the description
MAX_DISTINCT = 1_000  # types or folders counted apart; later new ones are counted as "other"
ENTRY_LIMIT, TYPE_LIMIT, FOLDER_LIMIT, NAME_LIMIT = 120, 64, 100, 200
_DIGEST = re.compile(r"[0-9A-F]{64}")
_OBJECT_ID = re.compile(r"[A-Za-z0-9]{1,64}")  # an IICS id: what a manifest key that is not an entry looks like
_ESCAPE = re.compile(r"\\(u[0-9A-Fa-f]{4}|.)")
_EOCD = b"PK\x05\x06"
_EOCD_BYTES = 22


class Unverifiable(Exception):
    """Why a package was not verified. ``verdict``: False when the package is at fault, None when the
    monitor's own limits stopped it (time, size)."""

    def __init__(self, reason: str, verdict: bool | None = False) -> None:
        super().__init__(reason)
        self.verdict = verdict


# --- verify ---------------------------------------------------------------------------------------------------------


def verify(path: str | os.PathLike, *, until: float = math.inf, clock: Callable[[], float] = time.monotonic) -> dict:
    """The package at ``path`` against its manifest: ``verified``, ``entries`` (in the zip), ``listed``
    (in the manifest), ``mismatches``, ``missing``, ``unlisted``, ``otherKeys`` (each ``{count, shown}``)
    and ``error`` (why it could not be verified). Hashing stops at ``until`` (on ``clock``)."""
    try:
        with open_package(path) as archive:
            return _verify(archive, lambda: clock() >= until)
    except Unverifiable as error:
        return unverified(str(error), error.verdict)


def unverified(reason: str, verdict: bool | None = False) -> dict:
    """A report that says why nothing was verified."""
    return _report(verdict, 0, 0, {}) | {"error": text(reason, REASON_LIMIT)}


def _verify(archive: zipfile.ZipFile, late: Callable[[], bool]) -> dict:
    entries = {info.filename: info for info in archive.infolist() if not info.is_dir()}
    if MANIFEST not in entries:
        raise Unverifiable(f"the package has no {MANIFEST}")
    manifest, bad_lines = parse_manifest(_read_bounded(archive, entries[MANIFEST], MAX_MANIFEST_BYTES))
    listed = {key: digest for key, digest in manifest.items() if key in entries}
    if sum(entries[key].file_size for key in listed) > MAX_INFLATED_BYTES:
        raise Unverifiable(f"the listed entries inflate past {MAX_INFLATED_BYTES} bytes", None)
    found = {"mismatches": [], "missing": [], "unlisted": [], "otherKeys": []}
    for key, expected in listed.items():
        actual = _sha256(archive, entries[key], late)
        if actual != expected:
            found["mismatches"].append({"entry": key, "expected": expected, "actual": actual})
    for key in manifest.keys() - listed.keys():
        found["otherKeys" if _OBJECT_ID.fullmatch(key) else "missing"].append(key)
    found["unlisted"] = [name for name in entries if name not in manifest and not _described_by_itself(name)]
    report = _report(not (bad_lines or found["mismatches"] or found["missing"]), len(entries), len(manifest), found)
    if bad_lines:
        report["error"] = f"{MANIFEST} has {bad_lines} line(s) that are not <entry>=<SHA-256>"
    return report


def _report(verified: bool | None, entries: int, listed: int, found: Mapping[str, list]) -> dict:
    def some(name: str, limit: int = NAMES_SHOWN) -> dict:
        values = sorted(found.get(name, ()), key=lambda v: v["entry"] if isinstance(v, dict) else v)
        return {"count": len(values), "shown": [_shown(value) for value in values[:limit]]}

    return {
        "verified": verified,
        "entries": entries,
        "listed": listed,
        "mismatches": some("mismatches", MISMATCHES_SHOWN),
        "missing": some("missing"),
        "unlisted": some("unlisted"),
        "otherKeys": some("otherKeys"),
        "error": None,
    }


def _shown(value: str | Mapping[str, str | None]) -> Any:
    if isinstance(value, str):
        return text(value, ENTRY_LIMIT)
    return {"entry": text(value["entry"], ENTRY_LIMIT), "expected": value["expected"], "actual": value["actual"]}


def _described_by_itself(name: str) -> bool:
    """The manifest, and the contents CSV IICS writes after it, are not listed in it."""
    return name == MANIFEST or (name.startswith(CSV_PREFIX) and name.endswith(".csv") and "/" not in name)


def parse_manifest(data: bytes) -> tuple[dict[str, str], int]:
    """``entry -> SHA-256`` (upper case, or the line's value bounded when it is not one) from a Java
    properties file, and how many lines were not ``key=value``. Lenient: ``#`` and ``!`` comments, ``:``
    as separator, backslash escapes (``\\uXXXX`` too) in keys, hex in any case."""
    manifest, bad = {}, 0
    for raw in _decoded(data).splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        pair = _split(line)
        value = pair[1].upper() if pair else ""
        if pair is None or not _DIGEST.fullmatch(value):
            bad += 1
        if pair is not None:
            manifest[_unescaped(pair[0])] = value if _DIGEST.fullmatch(value) else text(value, 80)
    return manifest, bad


def _split(line: str) -> tuple[str, str] | None:
    """Key and value as java.util.Properties reads them: the key ends at the first unescaped ``=``,
    ``:`` or white space."""
    index = 0
    while index < len(line) and line[index] not in "=: \t\f":
        index += 2 if line[index] == "\\" else 1
    if index == 0 or index >= len(line):
        return None
    rest = line[index:].lstrip(" \t\f")
    return line[:index], (rest[1:] if rest[:1] in ("=", ":") else rest).strip()


def _decoded(data: bytes) -> str:
    """Properties.store(OutputStream) writes ISO-8859-1 with \\u escapes; store(Writer) may write UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _unescaped(key: str) -> str:
    """The key with its escapes undone, and a character outside the BMP (two \\u escapes) made whole."""
    return _ESCAPE.sub(_unescape, key).encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _unescape(match: re.Match) -> str:
    escaped = match.group(1)
    return chr(int(escaped[1:], 16)) if len(escaped) == 5 and escaped[0] == "u" else escaped


def _sha256(archive: zipfile.ZipFile, info: zipfile.ZipInfo, late: Callable[[], bool]) -> str | None:
    """The entry's SHA-256 (upper case), read 1 MiB at a time; None when the entry cannot be read."""
    digest = hashlib.sha256()
    try:
        with archive.open(info) as entry:
            while chunk := entry.read(READ_BYTES):
                if late():
                    raise Unverifiable("out of time while hashing the package's entries", None)
                digest.update(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError):
        return None  # a damaged, encrypted or oddly compressed entry: named as a mismatch
    return digest.hexdigest().upper()


# --- opening a zip with bounded memory ---------------------------------------------------------------------------


@contextlib.contextmanager
def open_package(path: str | os.PathLike) -> Iterator[zipfile.ZipFile]:
    """The zip at ``path``, once its central directory is known to be small enough to parse."""
    try:
        with open(path, "rb") as file:
            _check_directory(file)
            archive = zipfile.ZipFile(file)
            with archive:
                yield archive
    except (zipfile.BadZipFile, EOFError, ValueError) as error:
        raise Unverifiable(f"the package is not a readable zip: {type(error).__name__}") from None
    except OSError as error:
        raise Unverifiable(f"the package copy cannot be read: {type(error).__name__}", None) from None


def _check_directory(file: io.BufferedReader) -> None:
    """From the zip's end record (the last 22 bytes, before a comment of up to 64 KiB)."""
    size = file.seek(0, os.SEEK_END)
    file.seek(max(0, size - _EOCD_BYTES - 0xFFFF))
    tail = file.read()
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) - at < _EOCD_BYTES:
        raise Unverifiable("the package is not a zip (no end of central directory)")
    entries, directory_bytes = struct.unpack_from("<HI", tail, at + 10)
    if entries == 0xFFFF or directory_bytes == 0xFFFFFFFF:  # zip64: beyond LOCAL_COPY_MAX_BYTES anyway
        raise Unverifiable("the package is a zip64 archive: too many entries to verify", None)
    if entries > MAX_ENTRIES or directory_bytes > MAX_DIRECTORY_BYTES:
        raise Unverifiable(f"the package has {entries} entries: more than the {MAX_ENTRIES} verified", None)


def _read_bounded(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    try:
        with archive.open(info) as entry:
            data = entry.read(limit + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError):
        raise Unverifiable(f"{info.filename} cannot be read") from None
    if len(data) > limit:
        raise Unverifiable(f"{info.filename} is larger than {limit} bytes")
    return data


# --- describe -------------------------------------------------------------------------------------------------------


def describe(path: str | os.PathLike) -> dict:
    """What the package holds: ``objects``, ``byType`` and ``byFolder`` (the top 20, the rest counted in
    ``otherTypes``/``otherFolders``), ``name``, ``sourceOrgId``, ``sourceOrgName``, and ``source``
    (``metadata`` or ``csv``); ``error`` says why neither could be read. A few KiB at most."""
    try:
        with open_package(path) as archive:
            entries = {info.filename: info for info in archive.infolist()}
            metadata = _metadata(archive, entries.get(METADATA))
            if metadata is not None:
                return _description("metadata", metadata, _metadata_objects(metadata))
            contents = next((entries[n] for n in sorted(entries) if _described_by_itself(n) and n != MANIFEST), None)
            if contents is None or contents.file_size > MAX_METADATA_BYTES:
                return _description(None, {}, ()) | {"error": f"no readable {METADATA} or contents CSV"}
            with archive.open(contents) as raw:
                return _description("csv", {}, _csv_objects(raw))
    except (Unverifiable, csv.Error, UnicodeError, zipfile.BadZipFile, OSError, EOFError) as error:
        return _description(None, {}, ()) | {"error": text(f"the package cannot be described: {error}", REASON_LIMIT)}


def _metadata(archive: zipfile.ZipFile, info: zipfile.ZipInfo | None) -> dict | None:
    if info is None or info.file_size > MAX_METADATA_BYTES:
        return None
    try:
        document = json.loads(_read_bounded(archive, info, MAX_METADATA_BYTES))
    except (Unverifiable, ValueError, RecursionError):
        return None
    if not isinstance(document, dict) or not isinstance(document.get("exportedObjects"), list):
        return None
    return document


def _metadata_objects(metadata: Mapping[str, Any]) -> Iterator[tuple[Any, Any]]:
    for item in metadata["exportedObjects"]:
        yield (item.get("objectType"), item.get("path")) if isinstance(item, dict) else (None, None)


def _csv_objects(raw: io.BufferedIOBase) -> Iterator[tuple[Any, Any]]:
    for row in csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")):
        yield row.get("objectType"), row.get("objectPath")


def _description(source: str | None, metadata: Mapping[str, Any], objects: Iterable[tuple[Any, Any]]) -> dict:
    types, folders = _BoundedCounter(TYPE_LIMIT), _BoundedCounter(FOLDER_LIMIT)
    total = 0
    for object_type, folder in objects:
        total += 1
        types.add(object_type)
        folders.add(folder)
    org_id = metadata.get("sourceOrgId")
    return {
        "source": source,
        "name": _bounded_str(metadata.get("name")),
        "sourceOrgId": org_id if isinstance(org_id, str) and _OBJECT_ID.fullmatch(org_id) else None,
        "sourceOrgName": _bounded_str(metadata.get("sourceOrgName")),
        "objects": total,
        "byType": types.top(),
        "otherTypes": types.others(),
        "byFolder": folders.top(),
        "otherFolders": folders.others(),
        "error": None,
    }


def _bounded_str(value: Any) -> str | None:
    return text(value, NAME_LIMIT) if isinstance(value, str) else None


class _BoundedCounter:
    """Counts of bounded strings (a non-string counts as "?"), keeping at most MAX_DISTINCT apart."""

    def __init__(self, limit: int) -> None:
        self._limit, self._counts, self._overflow = limit, Counter(), 0

    def add(self, value: Any) -> None:
        key = text(value, self._limit) if isinstance(value, str) else "?"
        if key in self._counts or len(self._counts) < MAX_DISTINCT:
            self._counts[key] += 1
        else:
            self._overflow += 1

    def top(self) -> dict[str, int]:
        return dict(sorted(self._counts.items(), key=lambda pair: (-pair[1], pair[0]))[:TOP])

    def others(self) -> int:
        return sum(self._counts.values()) + self._overflow - sum(self.top().values())


# --- the local copy the archive step checks -------------------------------------------------------------------------


class LocalCopy:
    """The package written to a file under ``directory`` (/tmp) as it streams to S3, up to ``max_bytes``.
    A write that fails (the disk full) or would pass the cap drops the copy and says why in ``skipped``:
    the archive goes on. ``restart`` before each attempt; ``discard`` always, at the end."""

    def __init__(self, max_bytes: int = LOCAL_COPY_MAX_BYTES, directory: str | None = None) -> None:
        self.max_bytes, self._directory = max_bytes, directory
        self.path: str | None = None
        self.skipped: str | None = None
        self._file: io.BufferedWriter | None = None
        self._size = 0

    def restart(self) -> None:
        self.discard()
        self.skipped, self._size = None, 0
        try:
            descriptor, self.path = tempfile.mkstemp(prefix="package-", suffix=".zip", dir=self._directory)
            self._file = os.fdopen(descriptor, "wb")
        except OSError as error:
            self._drop(f"no local copy to verify: {type(error).__name__}")

    def write(self, data: bytes) -> None:
        if self._file is None:
            return
        if self._size + len(data) > self.max_bytes:
            self._drop(f"package larger than the {self.max_bytes} bytes verified (LOCAL_COPY_MAX_BYTES); not verified")
            return
        try:
            self._file.write(data)
        except OSError as error:
            self._drop(f"the local copy could not be written ({type(error).__name__}); not verified")
            return
        self._size += len(data)

    def finish(self) -> str | None:
        """The copy's path, complete; None when it was dropped (``skipped`` says why)."""
        if self._file is None:
            return None
        try:
            self._file.close()
        except OSError as error:
            self._drop(f"the local copy could not be written ({type(error).__name__}); not verified")
            return None
        self._file = None
        return self.path

    def discard(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
        if self.path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            self.path = None

    def _drop(self, reason: str) -> None:
        self.discard()
        self.skipped = reason


def check(copy: LocalCopy, truncated: str | None, *, until: float = math.inf) -> dict:
    """The outcome's ``verified``, ``verification`` and ``contents`` for the package ``copy`` holds. Never
    raises: a fault here leaves the package archived, unverified (``verified`` null)."""
    try:
        if truncated:
            return _checked(unverified(f"the archived package was cut short ({truncated}): not the whole package"))
        path = copy.finish()
        if path is None:
            return _checked(unverified(copy.skipped or "no local copy to verify", None))
        return _checked(verify(path, until=until), describe(path))
    except Exception as error:  # noqa: BLE001 - verification must never cost the archive or the outcome
        logger.exception("Package verification failed")
        return _checked(unverified(f"verification failed: {type(error).__name__}", None))


def _checked(report: dict, contents: dict | None = None) -> dict:
    return {"verified": report["verified"], "verification": report, "contents": contents}

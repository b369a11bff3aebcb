"""IICS export packages as the emulator makes and takes them: build one in the real layout, check an
uploaded one against its manifest, and pull the upload out of a multipart/form-data body.

The layout follows the package captured from IICS in 2021 (/work/shared/reference/
real-export-package-2021.zip and iics-import-and-packages.md):

    Explore/Sales.Project.json              a project: JSON, not a zip
    Explore/Sales/m_load.DTEMPLATE.zip      one zip per asset: <folder>/<name>.<TYPE>.zip
    SYS/ff.Connection.zip                   connections and runtime environments under SYS/
    exportMetadata.v2.json                  name, sourceOrgId, sourceOrgName, exportedObjects
    exportPackage.chksum                    "#", "#<date>", then <entry>=<SHA-256, upper-case hex>
    ContentsofExportPackage_<job name>.csv  objectPath,objectName,objectType,id
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MANIFEST = "exportPackage.chksum"
METADATA = "exportMetadata.v2.json"
CSV_PREFIX = "ContentsofExportPackage_"
CSV_HEADER = ("objectPath", "objectName", "objectType", "id")
# A project is stored as its JSON document; every other asset as a zip of its own (observed).
_PROJECT_TYPE = "Project"
_PROPERTIES_ESCAPE = re.compile(r"\\(.)")
_PROPERTY = re.compile(r"(?P<key>(?:[^=:\\]|\\.)+?)\s*[=:]\s*(?P<value>.*)")


class PackageError(ValueError):
    """The upload is not a package IICS would take; the message says why, as IICS's 400 would."""


@dataclass(frozen=True)
class PackageObject:
    """One exported asset. ``folder`` is its package folder (``/Explore/Sales``, ``/SYS``), as
    exportMetadata.v2.json's ``path`` has it, not the object's own path."""

    id: str
    name: str
    type: str
    folder: str
    description: str | None = ""
    refs: tuple[str, ...] = ()

    @property
    def entry(self) -> str:
        suffix = ".Project.json" if self.type == _PROJECT_TYPE else f".{self.type}.zip"
        return "/".join(part for part in (self.folder.strip("/"), self.name) if part) + suffix

    @property
    def content_type(self) -> str:
        return "Binary" if self.type == _PROJECT_TYPE else "JSON"  # as in the real metadata


@dataclass(frozen=True)
class UploadedPackage:
    """What an upload holds. ``mismatched``: listed entries whose SHA-256 differs from the manifest;
    ``unknown_keys``: manifest keys that are not entries of the zip (the real package has two)."""

    name: str | None
    source_org_id: str | None
    source_org_name: str | None
    objects: tuple[PackageObject, ...]
    mismatched: tuple[str, ...]
    unknown_keys: tuple[str, ...]

    @property
    def checksum_valid(self) -> bool:
        return not self.mismatched


# --- Building -----------------------------------------------------------------------------------


def build_package(
    name: str,
    source_org_id: str,
    source_org_name: str,
    objects: Sequence[PackageObject],
    *,
    corrupt: bool = False,
    now: datetime | None = None,
) -> bytes:
    """The export zip. ``corrupt``: one listed entry no longer matches its manifest line, as a package
    edited after export does."""
    entries = {o.entry: _asset(o) for o in objects}
    entries[METADATA] = json.dumps(_metadata(name, source_org_id, source_org_name, objects), indent=2).encode()
    entries[MANIFEST] = _manifest(entries, now or datetime.now(UTC))
    entries[f"{CSV_PREFIX}{name}.csv"] = _contents_csv(objects)
    if corrupt:
        tampered = next(iter(entries))  # the first asset, or the metadata of an empty package
        entries[tampered] = entries[tampered] + b"\n"
    return _zip(entries)


def _asset(obj: PackageObject) -> bytes:
    document = {"id": obj.id, "name": obj.name, "type": obj.type, "folder": obj.folder}
    if obj.type == _PROJECT_TYPE:
        return json.dumps(document).encode()
    return _zip({f"{obj.name}.json": json.dumps(document).encode()})


def _metadata(name: str, org_id: str, org_name: str, objects: Sequence[PackageObject]) -> dict[str, Any]:
    return {
        "name": name,
        "sourceOrgId": org_id,
        "sourceOrgName": org_name,
        "exportedObjects": [
            {
                "objectGuid": o.id,
                "objectName": o.name,
                "objectType": o.type,
                "path": o.folder,
                "metadata": {
                    "modelVersion": {"major": 0, "minor": 0},
                    "repoInfo": None,
                    "objectRefs": list(o.refs),
                    "contextAttributes": [],
                    "additionalInfo": {
                        "description": o.description,
                        "contentType": o.content_type,
                        "documentState": "COMPLETE",
                    },
                },
            }
            for o in objects
        ],
    }


def _manifest(entries: Mapping[str, bytes], now: datetime) -> bytes:
    """A Java properties file, as java.util.Properties.store writes it: "#", the date, then the lines."""
    lines = ["#", f"#{now:%a %b %d %H:%M:%S} UTC {now:%Y}"]
    lines += [f"{_properties_key(name)}={hashlib.sha256(data).hexdigest().upper()}" for name, data in entries.items()]
    return ("\n".join(lines) + "\n").encode()


def _properties_key(name: str) -> str:
    return re.sub(r"([:= \\#!])", r"\\\1", name)


def _contents_csv(objects: Sequence[PackageObject]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    writer.writerows([o.folder, o.name, o.type, o.id] for o in objects)
    return text.getvalue().rstrip("\n").encode()  # the real file has no newline after its last row


def _zip(entries: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry, data in entries.items():
            archive.writestr(entry, data)
    return buffer.getvalue()


# --- Reading an upload --------------------------------------------------------------------------


def read_package(data: bytes) -> UploadedPackage:
    """The package's objects and how its entries compare with its manifest; ``PackageError`` when it is
    not a zip, or lacks the manifest or a readable metadata file."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = set(archive.namelist())
    except (zipfile.BadZipFile, ValueError):
        raise PackageError("The uploaded file is not a valid zip file.") from None
    with archive:
        if MANIFEST not in names:
            raise PackageError(f"The package has no {MANIFEST} file.")
        if METADATA not in names:
            raise PackageError(f"The package has no {METADATA} file.")
        manifest = parse_manifest(_read(archive, MANIFEST))
        mismatched = tuple(
            entry
            for entry, digest in manifest.items()
            if entry in names and hashlib.sha256(_read(archive, entry)).hexdigest().upper() != digest.upper()
        )
        metadata = _json_object(_read(archive, METADATA))
    return UploadedPackage(
        name=_text(metadata.get("name")),
        source_org_id=_text(metadata.get("sourceOrgId")),
        source_org_name=_text(metadata.get("sourceOrgName")),
        objects=_objects(metadata),
        mismatched=mismatched,
        unknown_keys=tuple(key for key in manifest if key not in names),
    )


def parse_manifest(text: bytes) -> dict[str, str]:
    """``entry -> digest`` from a Java properties file: comments (#, !) and blank lines skipped,
    backslash escapes in keys undone."""
    manifest = {}
    for raw in text.decode("latin-1").splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        pair = _PROPERTY.fullmatch(line)
        if pair is None:
            raise PackageError(f"{MANIFEST} has a line without '=': {line[:80]!r}")
        manifest[_PROPERTIES_ESCAPE.sub(r"\1", pair["key"])] = pair["value"]
    return manifest


def _read(archive: zipfile.ZipFile, entry: str) -> bytes:
    try:
        return archive.read(entry)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:  # a damaged entry
        raise PackageError(f"The package entry {entry} cannot be read: {error}") from None


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        document = json.loads(data)
    except ValueError:
        document = None
    if not isinstance(document, dict) or not isinstance(document.get("exportedObjects"), list):
        raise PackageError(f"{METADATA} is not a JSON object with exportedObjects.")
    return document


def _objects(metadata: Mapping[str, Any]) -> tuple[PackageObject, ...]:
    objects = []
    for item in metadata["exportedObjects"]:
        if not isinstance(item, dict) or not all(
            isinstance(item.get(key), str) for key in ("objectGuid", "objectName", "objectType")
        ):
            raise PackageError(f"{METADATA} lists an object without objectGuid, objectName and objectType.")
        extra = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
        info = extra.get("additionalInfo") if isinstance(extra.get("additionalInfo"), dict) else {}
        refs = extra.get("objectRefs") if isinstance(extra.get("objectRefs"), list) else []
        objects.append(
            PackageObject(
                id=item["objectGuid"],
                name=item["objectName"],
                type=item["objectType"],
                folder=item.get("path") if isinstance(item.get("path"), str) else "/",
                description=_text(info.get("description")),
                refs=tuple(r for r in refs if isinstance(r, str)),
            )
        )
    return tuple(objects)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# --- multipart/form-data ------------------------------------------------------------------------

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_FIELD_NAME = re.compile(rb'content-disposition:[^\r\n]*\bname="([^"]*)"', re.IGNORECASE)


def form_field(content_type: str | None, body: bytes, field: str) -> bytes | None:
    """The value of form field ``field`` in a multipart/form-data body, or None when the body is not
    multipart/form-data or has no such field."""
    if not content_type or not content_type.lower().startswith("multipart/form-data"):
        return None
    boundary = _BOUNDARY.search(content_type)
    if boundary is None:
        return None
    delimiter = b"--" + boundary.group(1).encode("latin-1")
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break  # the closing delimiter
        head, separator, value = part.partition(b"\r\n\r\n")
        name = _FIELD_NAME.search(head)
        if separator and name and name.group(1).decode("latin-1") == field:
            return value[:-2] if value.endswith(b"\r\n") else value
    return None

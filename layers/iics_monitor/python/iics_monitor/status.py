"""The export status body, parsed, and IICS state values normalised.

A status whose ``endTime`` is set has ended, whatever its state word. Words the monitor knows:
success (``SUCCESSFUL``, ``SUCCESS``), success with a warning (``WARNING(S)``, ``PARTIAL_SUCCESS``,
``COMPLETED_WITH_WARNINGS``), failure (``FAILED``, ``ERROR``, ``CANCELLED``/``CANCELED``,
``ABORTED``, ``STOPPED``) and running (``IN_PROGRESS``, ``NOT_STARTED``, ``QUEUED``, ``STARTING``,
``RUNNING``). An unknown word counts as running until the deadline, and is logged raw; an unknown
word with ``endTime`` set, or a running word with it, is a failure with a note that says why, so a
person looks instead of an odd end passing as a success.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from iics_monitor.observability import logger
from iics_monitor.scrub import scrub

_TEXT_LIMIT = 500  # bounds what one IICS string can add to a state payload or event
REASON_LIMIT = 1000  # a reason or error text the monitor writes (it may quote IICS)
WARNING_PREFIX = "IICS reported "  # every outcome warning starts so; the alert rule matches on it
_ORG_ID = re.compile(r"[A-Za-z0-9]{1,64}")  # an IICS org id, as an import's sourceOrgId gives it


class JobState(StrEnum):
    SUCCESSFUL = "SUCCESSFUL"
    FAILED = "FAILED"
    RUNNING = "RUNNING"

    @property
    def terminal(self) -> bool:
        return self is not JobState.RUNNING


_WARNING_WORDS = frozenset({"WARNING", "WARNINGS", "PARTIAL_SUCCESS", "COMPLETED_WITH_WARNINGS"})
_KNOWN = {
    **dict.fromkeys(("SUCCESSFUL", "SUCCESS", *_WARNING_WORDS), JobState.SUCCESSFUL),
    **dict.fromkeys(("FAILED", "ERROR", "CANCELLED", "CANCELED", "ABORTED", "STOPPED"), JobState.FAILED),
    **dict.fromkeys(("IN_PROGRESS", "NOT_STARTED", "QUEUED", "STARTING", "RUNNING"), JobState.RUNNING),
}


def _word(raw: object) -> str | None:
    return raw.strip().upper().replace(" ", "_").replace("-", "_") if isinstance(raw, str) else None


@dataclass(frozen=True)
class StateReading:
    """What a job's state word and ``endTime`` say together."""

    state: JobState
    warning: str | None = None  # a success IICS qualified (PARTIAL_SUCCESS, WARNING, ...)
    note: str | None = None  # why an unusual end counts as it does


def read_state(raw: object, message: str | None, *, end_time: str | None) -> StateReading:
    """Read a raw IICS state ("SUCCESSFUL", "Partial Success", "In Progress", ...) with the job's endTime."""
    word = _word(raw)
    state = _KNOWN.get(word) if word else None
    ended = bool(end_time)
    if state is None and not ended:
        logger.warning("Unknown IICS state; treating it as running", extra={"iicsState": repr(raw)[:100]})
        return StateReading(JobState.RUNNING)
    if state is None:
        logger.warning("Unknown IICS state with endTime set; reporting FAILED", extra={"iicsState": repr(raw)[:100]})
        return StateReading(
            JobState.FAILED,
            note=f"IICS ended the job (endTime {end_time}) in state {repr(raw)[:100]}, which the monitor does not "
            "know; reported FAILED so that someone checks it",
        )
    if state is JobState.RUNNING and ended:
        return StateReading(
            JobState.FAILED,
            note=f"IICS set endTime {end_time} but still says {raw}; reported FAILED: the job ended without "
            "saying it succeeded",
        )
    if word in _WARNING_WORDS:
        return StateReading(state, warning=f"{WARNING_PREFIX}{raw}" + (f": {message}" if message else ""))
    return StateReading(state)


def text(value: Any, limit: int = _TEXT_LIMIT) -> str | None:
    """An untrusted string as scrubbed, bounded text: no secret (``iics_monitor.scrub``), and at most
    ``limit`` bytes however it is serialised (JSON's ASCII escapes are the longest spelling: a
    character outside the BMP takes 12 bytes). Every string the monitor carries in its state, results
    and events passes here; None stays None."""
    if value is None:
        return None
    bounded = scrub(value, limit)  # no character serialises to less than one byte
    if len(json.dumps(bounded)) - 2 <= limit:
        return bounded
    size = 0
    for index, character in enumerate(bounded):
        size += len(json.dumps(character)) - 2
        if size > limit:
            return bounded[:index]
    return bounded  # pragma: no cover - the whole string fitted after all


def parse_time(value: Any) -> datetime | None:
    """An IICS ISO-8601 timestamp ("2017-10-26T08:15:48.502Z"), or None if absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # IICS times are UTC


@dataclass(frozen=True)
class ExportObject:
    id: str | None
    name: str | None
    path: str | None
    type: str | None
    state: JobState
    message: str | None

    def to_dict(self) -> dict[str, str | None]:
        return {
            "id": self.id,
            "name": self.name,
            "path": self.path,
            "type": self.type,
            "message": self.message,
        }


@dataclass(frozen=True)
class JobStatus:
    """What the monitor uses of ``GET /public/core/v3/export/<id>[?expand=objects]`` (or ``import/<id>``)."""

    name: str | None
    raw_state: str | None
    state: JobState
    message: str | None
    start_time: str | None
    end_time: str | None
    objects: tuple[ExportObject, ...]
    warning: str | None = None
    note: str | None = None
    source_org_id: str | None = None  # an import's: the org its package was exported from

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> JobStatus:
        status = body.get("status") if isinstance(body.get("status"), Mapping) else {}
        raw_state = status.get("state")
        objects = body.get("objects") if isinstance(body.get("objects"), list) else []
        message, end_time = text(status.get("message")), text(body.get("endTime"), 40)
        reading = read_state(raw_state, message, end_time=end_time)
        return cls(
            name=text(body.get("name")),
            raw_state=text(raw_state, 100),
            state=reading.state,
            message=message,
            start_time=text(body.get("startTime"), 40),
            end_time=end_time,
            objects=tuple(_parse_object(o) for o in objects if isinstance(o, Mapping)),
            warning=text(reading.warning),
            note=reading.note,
            source_org_id=_org_id(body.get("sourceOrgId")),
        )

    @property
    def duration_seconds(self) -> float | None:
        start, end = parse_time(self.start_time), parse_time(self.end_time)
        if start is None or end is None or end < start:
            return None
        return round((end - start).total_seconds(), 3)


def _org_id(value: Any) -> str | None:
    """An IICS org id (22 letters and digits in practice), or None for anything else."""
    return value if isinstance(value, str) and _ORG_ID.fullmatch(value) else None


def _parse_object(item: Mapping[str, Any]) -> ExportObject:
    status = item.get("status") if isinstance(item.get("status"), Mapping) else {}
    return ExportObject(
        id=text(item.get("id"), 100),
        name=text(item.get("name")),
        path=text(item.get("path")),
        type=text(item.get("type"), 100),
        state=_object_state(status.get("state")),
        message=text(status.get("message")),
    )


def _object_state(raw: object) -> JobState:
    # Per-object states use the same vocabulary; an unknown one is not worth a warning per object.
    word = _word(raw)
    return _KNOWN.get(word, JobState.RUNNING) if word else JobState.RUNNING

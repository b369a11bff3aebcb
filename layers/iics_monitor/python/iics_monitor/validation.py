"""Parse untrusted input at the edge: job ids, trigger events and ``monitor`` overrides.

Past this module, code trusts its types. Nothing unvalidated reaches a URL or an S3 key.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

from iics_monitor.errors import InvalidInput, InvalidJobId

# IICS ids are 22-character base62 strings in practice; allow a little slack, never anything else.
_JOB_ID = re.compile(r"[A-Za-z0-9]{1,64}")
_MAX_NAME = 255
_SHOWN = 40  # how much of a rejected value an error message repeats


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "...'"


def parse_job_id(value: Any) -> str:
    """Return ``value`` if it is an IICS job id, else raise ``InvalidJobId``."""
    if not isinstance(value, str) or not _JOB_ID.fullmatch(value):
        raise InvalidJobId(f"jobId must be 1-64 letters and digits, got {_shown(value)}")
    return value


_BOTH = "give either jobId (watch a job) or export (start one), not both"

# What a job is: IICS's export and import resources are watched alike (/public/core/v3/<kind>/<id>).
EXPORT, IMPORT = "export", "import"
KINDS = (EXPORT, IMPORT)
# An org's name, as its secret's name ends (docs/orgs.md): it goes into S3 keys and history keys.
ORG_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def parse_kind(value: Any, announced: str | None = None) -> str:
    """A request's ``kind``: ``export`` (the default) or ``import``. ``announced`` is what an event's
    detail-type says (``IICS Export Job Submitted``: export; ``IICS Import Job Submitted``: import): it
    decides, and a ``kind`` in the detail is the upstream system's own context, ignored like any other
    field, as it always was. Only a bare input says its kind with ``kind``."""
    if announced is not None:
        return announced
    if value is None:
        return EXPORT
    if value not in KINDS:
        raise InvalidInput(f"kind must be export or import, got {_shown(value)}")
    return value


def parse_org_name(value: Any) -> str:
    """``value`` if it has an org name's shape (configured or not), else ``InvalidInput``."""
    if not isinstance(value, str) or not ORG_NAME.fullmatch(value):
        raise InvalidInput(f"org must be 1-64 letters, digits, _ and -, got {_shown(value)}")
    return value


def parse_org(value: Any, orgs: Collection[str]) -> str | None:
    """A request's ``org``: None (the stack's own IICS secret) or one of the ``orgs`` configured."""
    if value is None:
        return None
    if parse_org_name(value) not in orgs:
        configured = ", ".join(sorted(orgs)[:10]) or "none"
        raise InvalidInput(f"org {value} is not configured in this stack (IicsOrgSecretArns: {configured})")
    return value


MAX_EXPORT_OBJECTS = 1000  # IICS's recommended ceiling per export


@dataclass(frozen=True)
class ExportObjectSpec:
    id: str
    include_dependencies: bool | None = None

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id}
        if self.include_dependencies is not None:
            body["includeDependencies"] = self.include_dependencies
        return body


@dataclass(frozen=True)
class ExportSpec:
    """What to export: ``{"name"?, "objects": [{"id", "includeDependencies"?}]}``, as POST /export takes it."""

    name: str | None
    objects: tuple[ExportObjectSpec, ...]

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"objects": [o.to_body() for o in self.objects]}
        if self.name is not None:
            body["name"] = self.name
        return body


def parse_export_spec(raw: Any) -> ExportSpec:
    """Parse an ``export`` request: at most ``MAX_EXPORT_OBJECTS`` objects, each with a valid id."""
    if not isinstance(raw, Mapping):
        raise InvalidInput('export must be an object: {"name"?, "objects": [{"id", "includeDependencies"?}]}')
    unknown = sorted(set(raw) - {"name", "objects"})
    if unknown:
        raise InvalidInput(f"export has unknown fields: {', '.join(_shown(k) for k in unknown[:5])}")
    objects = raw.get("objects")
    if not isinstance(objects, list) or not 1 <= len(objects) <= MAX_EXPORT_OBJECTS:
        raise InvalidInput(f"export.objects must list 1 to {MAX_EXPORT_OBJECTS} objects")
    return ExportSpec(
        name=_parse_name(raw.get("name")), objects=tuple(_parse_object(o, i) for i, o in enumerate(objects))
    )


def parse_export_request(raw: Any, defaults: MonitorSettings, orgs: Collection[str] = ()) -> StartExportRequest:
    """A start-export request ``{"export", "monitor"?, "org"?, ...}``: its export spec, its ``monitor``
    overrides and its org checked too, so nothing invalid starts a job."""
    return _parse_start_export(raw, defaults, orgs)


def _parse_start_export(
    raw: Any, defaults: MonitorSettings, orgs: Collection[str], announced: str | None = None
) -> StartExportRequest:
    if not isinstance(raw, Mapping):
        raise InvalidInput("input must be an object")
    if "jobId" in raw:
        raise InvalidInput(_BOTH)
    if parse_kind(raw.get("kind"), announced) != EXPORT:
        raise InvalidInput("an import cannot be started with export: upload and start it, then announce its jobId")
    return StartExportRequest(
        parse_export_spec(raw.get("export")),
        defaults.overridden_by(raw.get("monitor")),
        org=parse_org(raw.get("org"), orgs),
    )


def _parse_object(raw: Any, index: int) -> ExportObjectSpec:
    if not isinstance(raw, Mapping) or set(raw) - {"id", "includeDependencies"}:
        raise InvalidInput(f'export.objects[{index}] must be {{"id", "includeDependencies"?}}')
    object_id = raw.get("id")
    if not isinstance(object_id, str) or not _JOB_ID.fullmatch(object_id):
        raise InvalidInput(f"export.objects[{index}].id must be 1-64 letters and digits, got {_shown(object_id)}")
    dependencies = raw.get("includeDependencies")
    if dependencies is not None and not isinstance(dependencies, bool):
        raise InvalidInput(f"export.objects[{index}].includeDependencies must be true or false")
    return ExportObjectSpec(object_id, dependencies)


def _parse_name(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > _MAX_NAME or not value.isprintable():
        raise InvalidInput(f"name must be printable text of at most {_MAX_NAME} characters")
    return value


# The shortest wait a request may ask for. Anyone who can put an event on the bus (or start an
# execution) chooses a request's ``monitor`` values; with waits of 0 s one execution polled IICS
# about 68 times a second until MaxPolls ended it (1,500 status calls in 22 s). A floor of 1 s holds
# every execution to at most one check a second, and MaxPolls still bounds the total.
# Only the waits have floors: a short timeoutSeconds ends a watch sooner, it never polls faster.
REQUEST_FLOOR_SECONDS = {"initialWaitSeconds": 1, "maxWaitSeconds": 1}


def _whole_number_in(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"monitor.{name} must be a whole number from {low} to {high}")
    return value


@dataclass(frozen=True)
class MonitorSettings:
    """How one job is watched: first wait, longest wait, and how long before TIMED_OUT.

    Built from the operator's template Parameters (``FIELDS``' ranges, where waits of 0 s make tests
    fast), then ``overridden_by`` a request's ``monitor`` values, which have floors besides."""

    initial_wait_seconds: int
    max_wait_seconds: int
    timeout_seconds: int

    # field name in events -> (attribute, lowest, highest): the template Parameters' ranges
    FIELDS = {
        "initialWaitSeconds": ("initial_wait_seconds", 0, 3600),
        "maxWaitSeconds": ("max_wait_seconds", 0, 3600),
        "timeoutSeconds": ("timeout_seconds", 1, 30 * 24 * 3600),
    }

    def __post_init__(self) -> None:
        for name, (attr, low, high) in self.FIELDS.items():
            _whole_number_in(name, getattr(self, attr), low, high)
        if self.max_wait_seconds < self.initial_wait_seconds:
            raise InvalidInput("monitor.maxWaitSeconds must not be less than monitor.initialWaitSeconds")

    def request_range(self, name: str) -> tuple[int, int]:
        """The values a request may ask for in field ``name``: the Parameter's range above the floor
        (``REQUEST_FLOOR_SECONDS``). A request may always ask for the operator's own value: the
        execution carries its resolved settings, and each function reads them back through here."""
        attr, low, high = self.FIELDS[name]
        floor = min(REQUEST_FLOOR_SECONDS.get(name, low), getattr(self, attr))
        return max(low, floor), high

    def overridden_by(self, overrides: Any) -> MonitorSettings:
        """These settings with a request's ``monitor`` object applied. A value outside
        ``request_range`` is refused, not raised to the floor: as with any out-of-range value, the
        caller hears why (an ERROR outcome naming the job) instead of being watched otherwise than asked."""
        if overrides is None:
            return self
        if not isinstance(overrides, Mapping):
            raise InvalidInput("monitor must be an object")
        unknown = sorted(set(overrides) - set(self.FIELDS))
        if unknown:
            raise InvalidInput(f"monitor has unknown fields: {', '.join(_shown(k) for k in unknown[:5])}")
        values = {name: _whole_number_in(name, value, *self.request_range(name)) for name, value in overrides.items()}
        return self.configured(values)

    def configured(self, values: Mapping[str, int]) -> MonitorSettings:
        """These settings with an operator's values applied (the Parameters' ranges, no request floors):
        the CLI's own emulated stack, whose options are its Parameters."""
        return replace(self, **{self.FIELDS[name][0]: value for name, value in values.items()})

    def to_dict(self) -> dict[str, int]:
        return {name: getattr(self, attr) for name, (attr, _, _) in self.FIELDS.items()}


_EXECUTION_NAME = 80  # Step Functions' limit


def job_fields_as_far_as_valid(raw: Mapping[str, Any], announced: str | None = None) -> dict[str, Any]:
    """``job_fields`` of input that did not parse (a refused announcement, an unparsable request): its
    kind and org where they are valid, so its ERROR outcome still says what job it was."""
    kind, org = raw.get("kind"), raw.get("org")
    kind = announced or (kind if kind in KINDS else EXPORT)
    return job_fields(kind, org if isinstance(org, str) and ORG_NAME.fullmatch(org) else None)


def job_fields(kind: str, org: str | None) -> dict[str, Any]:
    """``{"kind", "org"}`` for an import or a job of a further org; nothing for an export of the stack's
    own org. What a request, a poll record and a refusal carry: the state machine routes on their
    presence, and an export of the stack's own org keeps the states, paths and events it always had."""
    return {} if kind == EXPORT and org is None else {"kind": kind, "org": org}


@dataclass(frozen=True)
class ExportRequest:
    """A request to watch one IICS job (an export, or an import with ``kind`` import), from the
    trigger event or a bare input. ``org`` names the org whose credentials the watch uses (None: the
    stack's own secret)."""

    job_id: str
    name: str | None
    settings: MonitorSettings
    attempt: int = 1
    kind: str = EXPORT
    org: str | None = None
    promotion: dict[str, Any] | None = None  # the promotion's record (parse_track), when it is one's job

    @property
    def execution_name(self) -> str:
        """One execution per job and attempt: Step Functions refuses a second with the same name. An
        import's name says so, so an export and an import of the same id never meet."""
        suffix = "" if self.attempt == 1 else f"-attempt-{self.attempt}"
        if self.kind == EXPORT:
            return self.job_id + suffix
        name = f"import-{self.job_id}{suffix}"
        if len(name) > _EXECUTION_NAME:  # a 64-character id: still one name per job, within the limit
            name = f"import-{hashlib.blake2b(self.job_id.encode(), digest_size=16).hexdigest()}{suffix}"
        return name

    def to_dict(self) -> dict[str, Any]:
        """The request as the execution carries it: validated fields only, settings resolved."""
        body: dict[str, Any] = {"jobId": self.job_id, "monitor": self.settings.to_dict()}
        if self.name is not None:
            body["name"] = self.name
        if self.attempt != 1:
            body["attempt"] = self.attempt
        return body | job_fields(self.kind, self.org)


@dataclass(frozen=True)
class StartExportRequest:
    """A request to start an export and then watch it like an announced job."""

    spec: ExportSpec
    settings: MonitorSettings
    org: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"export": self.spec.to_body(), "monitor": self.settings.to_dict()} | job_fields(EXPORT, self.org)


MAX_ATTEMPT = 99


def _parse_attempt(value: Any) -> int:
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ATTEMPT:
        raise InvalidInput(f"attempt must be a whole number from 1 to {MAX_ATTEMPT}")
    return value


def parse_request(
    raw: Any,
    defaults: MonitorSettings,
    orgs: Collection[str] = (),
    announced: str | None = None,
    *,
    internal: bool = False,
) -> ExportRequest:
    """Parse ``{"jobId", "name"?, "monitor"?, "attempt"?, "kind"?, "org"?}`` (the trigger event's
    detail, or a bare input). ``orgs``: the org names the stack is configured with; ``announced``:
    the kind the envelope says (``parse_kind``). ``internal``: the request an execution carries, which
    may hold its promotion's record (``promotion``); the door never reads that field from outside.

    Other fields are ignored (upstream systems may carry their own context in the event) and never
    enter the execution: it carries ``ExportRequest.to_dict()`` only."""
    if not isinstance(raw, Mapping):
        raise InvalidInput("input must be an object with a jobId")
    if "jobId" not in raw:
        raise InvalidInput("input has no jobId")
    if "export" in raw:
        raise InvalidInput(_BOTH)
    return ExportRequest(
        job_id=parse_job_id(raw["jobId"]),
        name=_parse_name(raw.get("name")),
        settings=defaults.overridden_by(raw.get("monitor")),
        attempt=_parse_attempt(raw.get("attempt")),
        kind=parse_kind(raw.get("kind"), announced),
        org=parse_org(raw.get("org"), orgs),
        promotion=parse_track(raw.get("promotion")) if internal else None,
    )


# --- promotions -----------------------------------------------------------------------------------

CONFLICT_RESOLUTIONS = ("OVERWRITE", "REUSE")  # IICS's defaultConflictResolution
# A promotion carries its import's includeObjects beside its export's objects until the export starts:
# 500 of each keeps its largest state under 60% of Step Functions' 256 KiB (bench/state_size.py).
MAX_PROMOTION_OBJECTS = 500
_PROMOTE_FIELDS = {"from", "to", "objects", "name", "conflictResolution", "includeObjects", "allowUnverified"}


@dataclass(frozen=True)
class PromotionSpec:
    """What a promotion does after its export: import the package into ``to``."""

    to_org: str
    conflict_resolution: str
    name: str | None = None
    include_objects: tuple[str, ...] | None = None
    allow_unverified: bool = False

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "to": self.to_org,
            "conflictResolution": self.conflict_resolution,
            "allowUnverified": self.allow_unverified,
        }
        if self.name is not None:
            body["name"] = self.name
        if self.include_objects is not None:
            body["includeObjects"] = list(self.include_objects)
        return body


@dataclass(frozen=True)
class PromotionRequest:
    """``{"promote": {...}, "monitor"?}``: export ``objects`` from org ``from`` (None: the stack's own),
    watch it, then upload its archived package to org ``to``, start the import and watch it."""

    export: ExportSpec
    settings: MonitorSettings
    from_org: str | None
    spec: PromotionSpec

    def to_dict(self) -> dict[str, Any]:
        """The execution's request: a start-export in org ``from`` that carries the promotion along
        (``promotion.spec``) and the record every poll echoes (``promotion.track``)."""
        track = {"from": self.from_org, "to": self.spec.to_org, "step": "export", "export": None}
        return {
            "export": self.export.to_body(),
            "monitor": self.settings.to_dict(),
            "kind": EXPORT,
            "org": self.from_org,
            "promotion": {"track": track, "spec": self.spec.to_dict()},
        }


def parse_promotion(raw: Any, defaults: MonitorSettings, orgs: Collection[str]) -> PromotionRequest:
    """A promotion request: every field checked, both orgs configured and different, before anything starts."""
    if not isinstance(raw, Mapping):
        raise InvalidInput("input must be an object")
    if "jobId" in raw or "export" in raw:
        raise InvalidInput("give promote alone: it starts its own export")
    promote = raw.get("promote")
    if not isinstance(promote, Mapping):
        raise InvalidInput('promote must be an object: {"from"?, "to", "objects", "conflictResolution", ...}')
    unknown = sorted(set(promote) - _PROMOTE_FIELDS)
    if unknown:
        raise InvalidInput(f"promote has unknown fields: {', '.join(_shown(k) for k in unknown[:5])}")
    from_org = parse_org(promote.get("from"), orgs)
    if promote.get("to") is None:
        raise InvalidInput("promote.to must name the org to import into")
    to_org = parse_org(promote.get("to"), orgs)
    if to_org == from_org:
        raise InvalidInput(f"promote.from and promote.to are the same org ({to_org})")
    conflict = promote.get("conflictResolution")
    if conflict not in CONFLICT_RESOLUTIONS:
        raise InvalidInput(f"promote.conflictResolution must be one of {', '.join(CONFLICT_RESOLUTIONS)}")
    allow = promote.get("allowUnverified", False)
    if not isinstance(allow, bool):
        raise InvalidInput("promote.allowUnverified must be true or false")
    objects = promote.get("objects")
    if isinstance(objects, list) and len(objects) > MAX_PROMOTION_OBJECTS:
        raise InvalidInput(f"promote.objects must list 1 to {MAX_PROMOTION_OBJECTS} objects")
    export = parse_export_spec({"name": promote.get("name"), "objects": objects})
    spec = PromotionSpec(to_org, conflict, export.name, _parse_ids(promote.get("includeObjects")), allow)
    return PromotionRequest(export, defaults.overridden_by(raw.get("monitor")), from_org, spec)


def _parse_ids(raw: Any) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_PROMOTION_OBJECTS:
        raise InvalidInput(f"promote.includeObjects must list 1 to {MAX_PROMOTION_OBJECTS} object ids")
    for index, value in enumerate(raw):
        if not isinstance(value, str) or not _JOB_ID.fullmatch(value):
            raise InvalidInput(f"promote.includeObjects[{index}] must be 1-64 letters and digits, got {_shown(value)}")
    return tuple(raw)


def parse_track(raw: Any) -> dict[str, Any] | None:
    """The promotion record a request carries (``promotion.track``), checked: ``{"from", "to", "step",
    "export"}``; None for a request that is no promotion. The poll record echoes it, so every outcome of
    the promotion's jobs, the ERROR ones the state machine builds too, leads to its promotion outcome."""
    if raw is None:
        return None
    track = raw.get("track") if isinstance(raw, Mapping) else None
    if not isinstance(track, Mapping) or track.get("step") not in ("export", "import"):
        raise InvalidInput("promotion.track must say its step, export or import")
    for field in ("from", "to"):
        if track.get(field) is not None:
            parse_org_name(track[field])
    export = track.get("export")
    if export is not None and not isinstance(export, Mapping):
        raise InvalidInput("promotion.track.export must be an object")
    return {"from": track.get("from"), "to": track.get("to"), "step": track["step"], "export": export}


def parse_announcement(
    raw: Any, defaults: MonitorSettings, orgs: Collection[str] = (), announced: str | None = None
) -> ExportRequest | StartExportRequest | PromotionRequest:
    """The door: an announcement's detail (or a bare input) as the one request the execution carries.

    ``start_monitor`` and the state machine's ``AcceptInput`` both call this, so what one accepts the
    other does too, and a contradiction (``jobId`` with ``export``) is refused before any name is taken."""
    if isinstance(raw, Mapping) and "promote" in raw:
        return parse_promotion(raw, defaults, orgs)
    if isinstance(raw, Mapping) and "export" in raw and "jobId" not in raw:
        return _parse_start_export(raw, defaults, orgs, announced)
    return parse_request(raw, defaults, orgs, announced)

"""Typed configuration, read from the environment once at cold start.

The template sets every variable; a missing or bad one fails with a message that names it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from iics_monitor.archive import DEFAULT_MAX_BYTES as DEFAULT_ARCHIVE_MAX_BYTES
from iics_monitor.client import CONNECT_TIMEOUT_SECONDS
from iics_monitor.errors import ConfigError, InvalidInput
from iics_monitor.hosts import INFORMATICA_ONLY, LOOPBACK_HTTP_VARIABLE, HostPolicy
from iics_monitor.validation import ORG_NAME, MonitorSettings

# The state machine's guard: ~10 history events per poll keeps 2,000 polls far below 25,000.
MAX_POLLS_CEILING = 2000
DEFAULT_READ_TIMEOUT_SECONDS = 20.0
# What an invocation keeps back, past its last IICS request, to report: the check and the export start
# return a small result; the archive step also stores what it streamed and status.json.
REPORT_RESERVE_SECONDS = 2.0
ARCHIVE_RESERVE_SECONDS = 30.0
DEFAULT_ARCHIVE_MAX_SECONDS = 780  # of ArchiveLog's 900 s; the template's ArchiveMaxSeconds
MAX_ARCHIVE_SECONDS = 870
MAX_ARCHIVE_BYTES = 5 * 1024**4  # S3's largest object
_DEFAULT_VARIABLES = {
    "DEFAULT_INITIAL_WAIT_SECONDS": "initialWaitSeconds",
    "DEFAULT_MAX_WAIT_SECONDS": "maxWaitSeconds",
    "DEFAULT_TIMEOUT_SECONDS": "timeoutSeconds",
}
# Waits up to this long may happen inside the check function; longer ones are Wait states.
MAX_INLINE_WAIT_SECONDS = 60
_TABLE = re.compile(r"[A-Za-z0-9_.-]{3,255}")
_STATE_MACHINE_ARN = re.compile(r"arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]{1,80}")
# The archive bucket and prefix rules, public: the local watch checks its --s3 location by them too.
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# The template's ArchivePrefix pattern (a test keeps them equal): no '*', which would widen the
# archive role's s3:PutObject on <bucket>/<prefix>* to other keys.
ARCHIVE_PREFIX = re.compile(r"([A-Za-z0-9!_.'()-]+/)*")


def require_env(env: Mapping[str, str], name: str) -> str:
    """The stripped value of environment variable ``name``; a ConfigError naming it when unset."""
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is not set")
    return value


def _whole_number(env: Mapping[str, str], name: str) -> int:
    text = require_env(env, name)
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be a whole number, got {text[:20]!r}") from None


def _poll_defaults(env: Mapping[str, str]) -> MonitorSettings:
    """The template's poll defaults, within the Parameters' ranges; a request's ``monitor`` values
    are checked against the same ranges and against floors besides (``MonitorSettings.overridden_by``)."""
    values = {}
    for variable, field_name in _DEFAULT_VARIABLES.items():
        attribute, low, high = MonitorSettings.FIELDS[field_name]
        values[attribute] = _whole_number(env, variable)
        if not low <= values[attribute] <= high:
            raise ConfigError(f"environment variable {variable} must be from {low} to {high}")
    try:
        return MonitorSettings(**values)
    except InvalidInput:
        raise ConfigError(
            "environment variable DEFAULT_MAX_WAIT_SECONDS must not be less than DEFAULT_INITIAL_WAIT_SECONDS"
        ) from None


def _optional_number(env: Mapping[str, str], name: str, low: int, high: int, default: int) -> int:
    """An optional whole-number variable: ``default`` when unset, else from ``low`` to ``high``."""
    if not env.get(name, "").strip():
        return default
    value = _whole_number(env, name)
    if not low <= value <= high:
        raise ConfigError(f"environment variable {name} must be from {low} to {high}")
    return value


def optional_seconds(env: Mapping[str, str], name: str, low: int, high: int, default: int) -> float:
    """An optional whole number of seconds: ``default`` when unset, else from ``low`` to ``high``."""
    return float(_optional_number(env, name, low, high, default))


def _read_timeout(env: Mapping[str, str]) -> float:
    """IICS_READ_TIMEOUT_SECONDS: how long one IICS request may take in all, its answer included
    (default 20 s, 1 to 30). A log or package body is bounded by the archive step's time instead."""
    return optional_seconds(env, "IICS_READ_TIMEOUT_SECONDS", 1, 30, int(DEFAULT_READ_TIMEOUT_SECONDS))


def _inline_wait(env: Mapping[str, str]) -> int:
    """INLINE_WAIT_SECONDS: waits up to this long are slept inside the check function (0: never)."""
    return _optional_number(env, "INLINE_WAIT_SECONDS", 0, MAX_INLINE_WAIT_SECONDS, 0)


def _enabled(env: Mapping[str, str], name: str) -> bool:
    """An Enabled/Disabled switch (the template's AllowedValues); unset means Disabled."""
    value = env.get(name, "").strip() or "Disabled"
    if value not in ("Enabled", "Disabled"):
        raise ConfigError(f"environment variable {name} must be Enabled or Disabled")
    return value == "Enabled"


def loopback_http(env: Mapping[str, str]) -> bool:
    """ALLOW_LOOPBACK_HTTP: "true" lets the IICS client and the Slack webhook use plain http to this
    machine (the local emulators); unset, empty or "false" in a deployment."""
    value = env.get(LOOPBACK_HTTP_VARIABLE, "").strip()
    if value not in ("", "true", "false"):
        raise ConfigError(f"environment variable {LOOPBACK_HTTP_VARIABLE} must be true, false or unset")
    return value == "true"


def _host_policy(env: Mapping[str, str]) -> HostPolicy:
    """IICS_ALLOWED_HOSTS (IicsAllowedHosts): hosts besides informaticacloud.com's the client may reach."""
    try:
        return HostPolicy.parse(env.get("IICS_ALLOWED_HOSTS", "").strip(), loopback_http=loopback_http(env))
    except ValueError as error:
        raise ConfigError(f"environment variable IICS_ALLOWED_HOSTS {error}") from None


# A secret's ARN as Secrets Manager gives it: its name, then "-" and six random characters.
_SECRET_ARN = re.compile(
    r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:(?P<name>[A-Za-z0-9/_+=.@-]{1,512})-[A-Za-z0-9]{6}"
)


def org_secrets(env: Mapping[str, str]) -> dict[str, str]:
    """IICS_ORGS (IicsOrgSecretArns): the secret ARN of each further org, by org name. An org's
    name is the last segment of its secret's name (``iics-export-monitor/orgs/dev``: org ``dev``;
    docs/orgs.md). Unset or empty: no further orgs, every job uses IICS_SECRET_NAME."""
    orgs: dict[str, str] = {}
    for arn in filter(None, (part.strip() for part in env.get("IICS_ORGS", "").split(","))):
        match = _SECRET_ARN.fullmatch(arn)
        if match is None:
            raise ConfigError(f"environment variable IICS_ORGS holds {arn[:80]!r}, which is not a secret's ARN")
        org = match["name"].rsplit("/", 1)[-1]
        if not ORG_NAME.fullmatch(org):
            raise ConfigError(
                f"environment variable IICS_ORGS: secret {match['name']} does not end in an org name "
                "(1-64 letters, digits, _ and - after its last '/')"
            )
        if org in orgs:
            raise ConfigError(f"environment variable IICS_ORGS names org {org} twice")
        orgs[org] = arn
    return orgs


class OrgSecrets:
    """Which secret holds the login of each org a job may name (``org_secrets``), and ``secret_name``
    for a job that names none. Mixed into the configurations of the functions that talk to IICS."""

    secret_name: str
    org_secrets: Mapping[str, str]

    @property
    def orgs(self) -> frozenset[str]:
        return frozenset(self.org_secrets)

    def secret_for(self, org: str | None) -> str:
        if org is None:
            return self.secret_name
        try:
            return self.org_secrets[org]
        except KeyError:
            raise InvalidInput(f"org {org} is not configured in this stack") from None


@dataclass(frozen=True)
class RequestLimit:
    """IicsRequestsPerSecond: the stack-wide IICS request budget, counted in ``table``."""

    table: str
    per_second: int


MAX_REQUESTS_PER_SECOND = 1000


def _request_limit(env: Mapping[str, str]) -> RequestLimit | None:
    """IICS_REQUESTS_PER_SECOND (0 or unset: no budget) and IICS_REQUEST_TABLE, which counts it."""
    per_second = _optional_number(env, "IICS_REQUESTS_PER_SECOND", 0, MAX_REQUESTS_PER_SECOND, 0)
    if per_second == 0:
        return None
    return RequestLimit(required_table(env, "IICS_REQUEST_TABLE"), per_second)


def _history_table(env: Mapping[str, str]) -> str | None:
    """HISTORY_TABLE: the duration history table; empty turns history-aware polling off."""
    return _table(env, "HISTORY_TABLE")


def secret_verdict_table(env: Mapping[str, str]) -> str | None:
    """VERDICT_TABLE: the stack's verdicts on secret versions (iics_monitor.verdicts). The template
    always sets it; unset (tools run outside a stack), each client remembers only its own refusals."""
    return _table(env, "VERDICT_TABLE")


def required_table(env: Mapping[str, str], name: str) -> str:
    """The DynamoDB table named by environment variable ``name``; a ConfigError naming it when unset."""
    table = _table(env, name)
    if table is None:
        raise ConfigError(f"environment variable {name} is not set")
    return table


def _table(env: Mapping[str, str], name: str) -> str | None:
    table = env.get(name, "").strip()
    if table and not _TABLE.fullmatch(table):
        raise ConfigError(f"environment variable {name} is not a DynamoDB table name")
    return table or None


@dataclass(frozen=True)
class CheckConfig(OrgSecrets):
    """What functions/check_status needs."""

    secret_name: str
    defaults: MonitorSettings
    max_polls: int
    read_timeout_seconds: float = DEFAULT_READ_TIMEOUT_SECONDS
    inline_wait_seconds: int = 0
    history_table: str | None = None
    request_limit: RequestLimit | None = None
    verdict_table: str | None = None
    hosts: HostPolicy = INFORMATICA_ONLY
    org_secrets: Mapping[str, str] = field(default_factory=dict)

    @property
    def inline_reserve_seconds(self) -> float:
        """What an invocation keeps back for one more check: a re-login and a status call at worst."""
        return 2 * (CONNECT_TIMEOUT_SECONDS + self.read_timeout_seconds)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CheckConfig:
        defaults = _poll_defaults(env)
        max_polls = _whole_number(env, "MAX_POLLS")
        if not 1 <= max_polls <= MAX_POLLS_CEILING:
            raise ConfigError(f"environment variable MAX_POLLS must be from 1 to {MAX_POLLS_CEILING}")
        return cls(
            secret_name=require_env(env, "IICS_SECRET_NAME"),
            defaults=defaults,
            max_polls=max_polls,
            read_timeout_seconds=_read_timeout(env),
            inline_wait_seconds=_inline_wait(env),
            history_table=_history_table(env),
            request_limit=_request_limit(env),
            verdict_table=secret_verdict_table(env),
            hosts=_host_policy(env),
            org_secrets=org_secrets(env),
        )


@dataclass(frozen=True)
class ExportConfig(OrgSecrets):
    """What functions/start_export needs."""

    secret_name: str
    defaults: MonitorSettings
    read_timeout_seconds: float = DEFAULT_READ_TIMEOUT_SECONDS
    request_limit: RequestLimit | None = None
    verdict_table: str | None = None
    hosts: HostPolicy = INFORMATICA_ONLY
    org_secrets: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ExportConfig:
        return cls(
            secret_name=require_env(env, "IICS_SECRET_NAME"),
            defaults=_poll_defaults(env),
            read_timeout_seconds=_read_timeout(env),
            request_limit=_request_limit(env),
            verdict_table=secret_verdict_table(env),
            hosts=_host_policy(env),
            org_secrets=org_secrets(env),
        )


@dataclass(frozen=True)
class StartConfig:
    """What functions/start_monitor needs."""

    state_machine_arn: str
    defaults: MonitorSettings
    orgs: frozenset[str] = frozenset()  # the org names an announcement may give (IicsOrgSecretArns)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StartConfig:
        arn = require_env(env, "STATE_MACHINE_ARN")
        if not _STATE_MACHINE_ARN.fullmatch(arn):
            raise ConfigError("environment variable STATE_MACHINE_ARN is not a state machine ARN")
        return cls(state_machine_arn=arn, defaults=_poll_defaults(env), orgs=frozenset(org_secrets(env)))


@dataclass(frozen=True)
class ArchiveConfig(OrgSecrets):
    """What functions/archive_log needs."""

    secret_name: str
    bucket: str
    prefix: str
    read_timeout_seconds: float = DEFAULT_READ_TIMEOUT_SECONDS
    history_table: str | None = None
    archive_package: bool = False
    request_limit: RequestLimit | None = None
    max_bytes: int = DEFAULT_ARCHIVE_MAX_BYTES
    max_seconds: int = DEFAULT_ARCHIVE_MAX_SECONDS
    verdict_table: str | None = None
    hosts: HostPolicy = INFORMATICA_ONLY
    org_secrets: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ArchiveConfig:
        bucket = require_env(env, "ARCHIVE_BUCKET")
        if not BUCKET_NAME.fullmatch(bucket):
            raise ConfigError("environment variable ARCHIVE_BUCKET is not a valid bucket name")
        prefix = env.get("ARCHIVE_PREFIX", "")
        if not ARCHIVE_PREFIX.fullmatch(prefix):
            raise ConfigError(
                "environment variable ARCHIVE_PREFIX must be empty or end with '/', using letters, digits and !_.'()-"
            )
        return cls(
            secret_name=require_env(env, "IICS_SECRET_NAME"),
            bucket=bucket,
            prefix=prefix,
            read_timeout_seconds=_read_timeout(env),
            history_table=_history_table(env),
            archive_package=_enabled(env, "ARCHIVE_PACKAGE"),
            request_limit=_request_limit(env),
            max_bytes=_optional_number(env, "ARCHIVE_MAX_BYTES", 1, MAX_ARCHIVE_BYTES, DEFAULT_ARCHIVE_MAX_BYTES),
            max_seconds=_optional_number(
                env, "ARCHIVE_MAX_SECONDS", 1, MAX_ARCHIVE_SECONDS, DEFAULT_ARCHIVE_MAX_SECONDS
            ),
            verdict_table=secret_verdict_table(env),
            hosts=_host_policy(env),
            org_secrets=org_secrets(env),
        )


@dataclass(frozen=True)
class PromoteConfig(ExportConfig):
    """What functions/promote needs: what StartExport needs (each org's login, the request budget), and
    the archive it reads packages from."""

    bucket: str = ""
    prefix: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PromoteConfig:
        archive = ArchiveConfig.from_env(env)  # the archive's own checks of ARCHIVE_BUCKET and ARCHIVE_PREFIX
        return cls(**vars(ExportConfig.from_env(env)), bucket=archive.bucket, prefix=archive.prefix)

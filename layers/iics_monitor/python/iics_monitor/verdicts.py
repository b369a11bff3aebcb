"""Stack-wide verdicts on secret versions: a refused password is tried once per stack, not once per job.

IICS locks an account after a few refused logins (``IDS_086``), and every execution and warm container
logs in by itself. So the verdict on each version of a secret (its name and Secrets Manager
``VersionId``) lives in one DynamoDB item that every function reads before it logs in with that version:

- ``refused``: IICS refused a login with it (400, 401 or 403). No function logs in with it again; the
  job ends ERROR ``LoginRefused``. A new version of the secret has no verdict, so it is tried at once.
- ``trying``: one function holds the lease while it logs in with the version. Logins with one version
  are one at a time, stack-wide: the others wait for the lease (within their own time), and see the
  refusal if there was one. So ten jobs started at once with a wrong password make one refused login,
  not ten; and when a password that worked is changed in IICS but not in the secret, the containers
  whose sessions end log in one after another, and only the first is refused. The lease of a function
  that died runs out after its login's time.
- ``accepted``: the last login with it succeeded (the lease is free).

A container logs in once per IICS session (30 minutes idle), so one at a time costs little in the
steady state: three DynamoDB requests per login (read, lease, verdict).

The Slack webhook secret follows the same rule without the lease (a refused webhook locks nothing): a
403, 404 or 410 from Slack marks its version refused, and no later alert is posted with it.

When the table cannot be read, nothing is sent to IICS (``NotSent``, transient: the poll loop tries
again later): a few late polls cost less than a locked account. Slack posts go ahead instead.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from iics_monitor.credentials import SecretVersion
from iics_monitor.errors import LoginRefused, NotSent
from iics_monitor.observability import logger

ACCEPTED = "accepted"
REFUSED = "refused"
TRYING = "trying"
ACCEPTED_KEEP_SECONDS = 24 * 3600  # then the version is tried under a lease once more: harmless
REFUSED_KEEP_SECONDS = 90 * 24 * 3600  # a version still current after 90 days is tried once more
# Past the login's own time (which starts once the request budget gave it a slot), before another function
# may take over the lease of one that died.
LEASE_MARGIN_SECONDS = 15.0
WAIT_STEP_SECONDS = 0.25  # how often a waiting function reads the verdict again
_CONDITION_FAILED = "ConditionalCheckFailedException"
_AWS_ERRORS = (ClientError, BotoCoreError)

T = TypeVar("T")


@dataclass(frozen=True)
class Refusal:
    """When and how a version was refused."""

    at: str
    status: int | None = None
    code: str | None = None


@dataclass(frozen=True)
class _Verdict:
    """What a login needs to know of a version's record: its refusal, or until when another holds the lease."""

    refusal: Refusal | None = None
    lease_until: float = 0.0  # 0: nobody holds it (never tried, accepted, or its record expired)


class SecretVerdicts:
    """The verdicts table (``SecretVerdictTable``), and this container's memory of refusals."""

    def __init__(
        self,
        table_name: str,
        client: Any,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._table = table_name
        self._client = client
        self._clock = clock
        self._sleep = sleep
        self._refused: dict[str, Refusal] = {}  # kept even when the table could not record it

    # --- IICS logins --------------------------------------------------------------------------------------------

    def log_in(
        self,
        version: SecretVersion,
        login: Callable[[], T],
        *,
        login_seconds: float,
        seconds_left: Callable[[], float],
    ) -> T:
        """``login()`` with ``version``, unless it was refused; one login with it at a time, stack-wide.
        ``login`` raises ``LoginRefused`` when IICS refuses the credentials. ``login_seconds`` is the most a
        login takes; ``seconds_left`` the time this invocation has: a function that cannot get the lease
        while it still has time to log in afterwards sends nothing (``NotSent``)."""
        lease_seconds = login_seconds + LEASE_MARGIN_SECONDS
        while True:
            verdict = self._read_for_login(version)
            if verdict.refusal is not None:
                raise refused_login(version, verdict.refusal)
            now = self._clock()
            if verdict.lease_until <= now:  # nobody is logging in with it (or the one who was died)
                lease = self._claim(version, now + lease_seconds)
                if lease is not None:
                    return self._tried(version, login, lease)
            wait = min(WAIT_STEP_SECONDS, max(verdict.lease_until - now, 0.0)) or WAIT_STEP_SECONDS
            if seconds_left() - wait < login_seconds:
                raise NotSent(f"another function is logging in with {version}; not logging in meanwhile")
            self._sleep(wait)

    def _tried(self, version: SecretVersion, login: Callable[[], T], lease: str) -> T:
        try:
            result = login()
        except LoginRefused as error:
            refusal = self.record_refusal(version, error.status, error.code)
            raise refused_login(version, refusal, first=error) from None
        except BaseException:
            self._release(version, lease)
            raise
        self._record_accepted(version, lease)
        return result

    # --- any secret (the Slack webhook too) ---------------------------------------------------------------------

    def refusal(self, version: SecretVersion) -> Refusal | None:
        """The version's refusal, if it was refused; None when it was not, or the table cannot say."""
        try:
            return self._read(version).refusal
        except _AWS_ERRORS as error:
            self._unavailable(error)
            return self._refused.get(version.key)

    def record_refusal(self, version: SecretVersion, status: int | None, code: str | None) -> Refusal:
        """Mark ``version`` refused for the whole stack (and, whatever the table says, for this container)."""
        refusal = Refusal(_iso(self._clock()), status, code[:100] if code else None)
        self._refused[version.key] = refusal
        item = {
            "secretVersion": {"S": version.key},
            "verdict": {"S": REFUSED},
            "decidedAt": {"S": refusal.at},
            "expiresAt": {"N": str(int(self._clock() + REFUSED_KEEP_SECONDS))},
        }
        if status is not None:
            item["httpStatus"] = {"N": str(status)}
        if refusal.code:
            item["iicsCode"] = {"S": refusal.code}
        try:
            self._client.put_item(TableName=self._table, Item=item)
        except _AWS_ERRORS as error:
            self._unavailable(error)
        logger.warning("Secret version refused; not used again", extra={"secret": str(version), "status": status})
        return refusal

    # --- the table ----------------------------------------------------------------------------------------------

    def _read_for_login(self, version: SecretVersion) -> _Verdict:
        known = self._refused.get(version.key)
        if known is not None:
            return _Verdict(known)
        try:
            return self._read(version)
        except _AWS_ERRORS as error:
            self._unavailable(error)
            raise NotSent(f"the stack's record of refused logins could not be read ({_code(error)})") from None

    def _read(self, version: SecretVersion) -> _Verdict:
        item = self._client.get_item(TableName=self._table, Key=_key(version), ConsistentRead=True).get("Item")
        if not item or float(item.get("expiresAt", {}).get("N", "0")) <= self._clock():  # TTL deletes late
            return _Verdict()
        if item.get("verdict", {}).get("S") == REFUSED:
            refusal = Refusal(
                item.get("decidedAt", {}).get("S", "?"), _number(item, "httpStatus"), item.get("iicsCode", {}).get("S")
            )
            self._refused[version.key] = refusal
            return _Verdict(refusal)
        return _Verdict(lease_until=float(item.get("leaseUntil", {}).get("N", "0")))

    def _claim(self, version: SecretVersion, lease_until: float) -> str | None:
        """Take the lease on the version: one not refused whose lease (if any) ran out; None if another took it."""
        token = secrets.token_hex(8)
        now = self._clock()
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "secretVersion": {"S": version.key},
                    "verdict": {"S": TRYING},
                    "leaseUntil": {"N": f"{lease_until:.3f}"},
                    "leaseOwner": {"S": token},
                    "expiresAt": {"N": str(int(lease_until + ACCEPTED_KEEP_SECONDS))},
                },
                ConditionExpression="attribute_not_exists(secretVersion) OR expiresAt <= :now"
                " OR (verdict <> :refused AND (attribute_not_exists(leaseUntil) OR leaseUntil <= :now))",
                ExpressionAttributeValues={":now": {"N": f"{now:.3f}"}, ":refused": {"S": REFUSED}},
            )
        except _AWS_ERRORS as error:
            if _code(error) == _CONDITION_FAILED:
                return None
            self._unavailable(error)
            raise NotSent(f"the stack's record of refused logins could not be written ({_code(error)})") from None
        return token

    def _record_accepted(self, version: SecretVersion, lease: str) -> None:
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "secretVersion": {"S": version.key},
                    "verdict": {"S": ACCEPTED},
                    "decidedAt": {"S": _iso(self._clock())},
                    "expiresAt": {"N": str(int(self._clock() + ACCEPTED_KEEP_SECONDS))},
                },
                ConditionExpression="leaseOwner = :lease",  # a refusal recorded meanwhile stays
                ExpressionAttributeValues={":lease": {"S": lease}},
            )
        except _AWS_ERRORS as error:
            if _code(error) != _CONDITION_FAILED:
                self._unavailable(error)  # the lease runs out; the next login tries under a new one

    def _release(self, version: SecretVersion, lease: str) -> None:
        """The login neither succeeded nor was refused (a 5xx, a lost answer): let the next function try."""
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=_key(version),
                ConditionExpression="leaseOwner = :lease",
                ExpressionAttributeValues={":lease": {"S": lease}},
            )
        except _AWS_ERRORS:
            pass  # the lease runs out by itself

    def _unavailable(self, error: Exception) -> None:
        # No metric of its own (each costs money every month): a login it stops is a transient IICS error.
        logger.warning("The secret verdicts table could not be used", extra={"error": _code(error)})


def refused_login(version: SecretVersion, refusal: Refusal, first: LoginRefused | None = None) -> LoginRefused:
    """The error a job ends with: what was refused, when, and what to do."""
    what = first.message.rstrip(".") if first is not None else f"IICS refused the login with {version} at {refusal.at}"
    return LoginRefused(
        f"{what}. No function of this stack logs in with {version} again, so the IICS account is not locked. "
        f"Put the right username and password in the secret: its new version is tried at once.",
        status=refusal.status,
        code=refusal.code,
        request_id=first.request_id if first is not None else None,
    )


def _key(version: SecretVersion) -> dict[str, dict[str, str]]:
    return {"secretVersion": {"S": version.key}}


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _number(item: dict, name: str) -> int | None:
    value = item.get(name, {}).get("N")
    return int(value) if value is not None else None


def _code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code") or "ClientError")
    return type(error).__name__

"""IICS credentials, kept in a Secrets Manager secret as JSON {"username", "password", "loginUrl"}.

A secret is read afresh whenever it is needed (a login, a Slack post), with its ``VersionId``: the
stack's verdict on a password is about one version (iics_monitor.verdicts), and a fixed secret must be
tried at once, not after a cache expires. Reads are rare: a container logs in once per IICS session.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from iics_monitor.errors import ConfigError
from iics_monitor.hosts import is_loopback, service_url_parts

_MAX_FIELD = 255


def check_service_url(url: Any, what: str) -> str:
    """Return ``url`` without a trailing slash if it has a service URL's shape and is https (http only
    on loopback, for emulators). The client's ``HostPolicy`` then says which hosts it may reach."""
    if not isinstance(url, str) or not url:
        raise ConfigError(f"{what} must be a URL such as https://dm-us.informaticacloud.com")
    parts = service_url_parts(url)
    if parts is None or not (parts.scheme == "https" or is_loopback(parts.hostname)):
        raise ConfigError(f"{what} must be an https URL such as https://dm-us.informaticacloud.com")
    return url.rstrip("/")


@dataclass(frozen=True)
class SecretVersion:
    """One version of a secret: the unit a verdict (iics_monitor.verdicts) is about."""

    name: str
    version_id: str

    @property
    def key(self) -> str:
        return f"{self.name}#{self.version_id}"

    def __str__(self) -> str:
        return f"version {self.version_id[:8]} of secret {self.name}"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)
    login_url: str
    version: SecretVersion | None = None  # None: not from Secrets Manager (the command line's own)

    @classmethod
    def from_mapping(
        cls,
        data: Any,
        source: str = "the IICS secret",
        version: SecretVersion | None = None,
        names: Mapping[str, str] | None = None,
    ) -> Credentials:
        """``names``: what the user calls each field where they set it (``IICS_LOGIN_URL`` for loginUrl),
        for the error messages; else "<source> field <name>"."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source} must be a JSON object with username, password and loginUrl")

        def called(name: str) -> str:
            return names[name] if names else f"{source} field {name}"

        for name in ("username", "password", "loginUrl"):
            value = data.get(name)
            if not isinstance(value, str) or not value or len(value) > _MAX_FIELD:
                raise ConfigError(f"{called(name)} is missing, empty or longer than {_MAX_FIELD}")
        return cls(
            username=data["username"],
            password=data["password"],
            login_url=check_service_url(data["loginUrl"], called("loginUrl")),
            version=version,
        )


@dataclass(frozen=True)
class SecretText:
    """A secret's current string and the version it came from."""

    text: str = field(repr=False)
    version: SecretVersion


def read_secret(secret_name: str, client: Any = None) -> SecretText:
    """The secret's current string and version, read now. A failure is a ConfigError naming the secret,
    never its value."""
    try:
        answer = (client or boto3.client("secretsmanager")).get_secret_value(SecretId=secret_name)
    except (ClientError, BotoCoreError) as error:  # the error names the failure, never the secret value
        raise ConfigError(f"secret {secret_name} could not be read: {str(error)[:300]}") from None
    value = answer.get("SecretString")
    if value is None:
        value = answer.get("SecretBinary", b"").decode("utf-8", "replace")
    return SecretText(value.strip(), SecretVersion(secret_name, str(answer.get("VersionId") or "unversioned")))


def secret_credentials(secret_name: str, client: Any = None) -> Callable[[], Credentials]:
    """A provider that reads the secret each time a login needs it (``client``: a Secrets Manager client)."""

    def provide() -> Credentials:
        secret = read_secret(secret_name, client)
        try:
            data = json.loads(secret.text)
        except ValueError:
            raise ConfigError(f"secret {secret_name} is not valid JSON") from None
        return Credentials.from_mapping(data, source=f"secret {secret_name}", version=secret.version)

    return provide

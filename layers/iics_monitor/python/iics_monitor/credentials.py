"""IICS credentials, kept in a Secrets Manager secret as JSON {"username", "password", "loginUrl"}."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities import parameters

from iics_monitor.errors import ConfigError
from iics_monitor.hosts import is_loopback, service_url_parts

# Powertools caches the secret this long, so a rotated password is picked up within minutes.
SECRET_MAX_AGE_SECONDS = 300
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
class Credentials:
    username: str
    password: str = field(repr=False)
    login_url: str

    @classmethod
    def from_mapping(cls, data: Any, source: str = "the IICS secret") -> Credentials:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source} must be a JSON object with username, password and loginUrl")
        for name in ("username", "password", "loginUrl"):
            value = data.get(name)
            if not isinstance(value, str) or not value or len(value) > _MAX_FIELD:
                raise ConfigError(f"{source} field {name} is missing, empty or longer than {_MAX_FIELD}")
        return cls(
            username=data["username"],
            password=data["password"],
            login_url=check_service_url(data["loginUrl"], f"{source} field loginUrl"),
        )


def read_secret(secret_name: str) -> str:
    """A secret's string (cached by Powertools for ``SECRET_MAX_AGE_SECONDS``, so rotation is picked
    up without a deployment). A failure is a ConfigError naming the secret, never its value."""
    try:
        value = parameters.get_secret(secret_name, max_age=SECRET_MAX_AGE_SECONDS)
    except parameters.exceptions.GetParameterError as error:
        # Powertools wraps the botocore error; its text names the failure, never the secret value.
        cause = error.__cause__ or error.__context__ or error
        raise ConfigError(f"secret {secret_name} could not be read: {str(cause)[:300]}") from None
    return (value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)).strip()


def secret_credentials(secret_name: str) -> Callable[[], Credentials]:
    """A provider that reads the secret each time a login needs it."""

    def provide() -> Credentials:
        try:
            data = json.loads(read_secret(secret_name))
        except ValueError:
            raise ConfigError(f"secret {secret_name} is not valid JSON") from None
        return Credentials.from_mapping(data, source=f"secret {secret_name}")

    return provide

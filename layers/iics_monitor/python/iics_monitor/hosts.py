"""Which hosts the IICS client may send a request to.

The login request carries the password to the secret's ``loginUrl``; every later request carries the
session id to the ``baseApiUrl`` the login answer names. So both must be Informatica's: https, on the
default port, to a host under ``informaticacloud.com`` (``na1.dm-us.informaticacloud.com``, never
the bare domain) or to one the ``IicsAllowedHosts`` Parameter lists for a pre-release pod. Plain http
goes only to this machine (localhost, 127.0.0.0/8, ::1), and only when the local harness turns it on:
the local stack sets ``ALLOW_LOOPBACK_HTTP`` for the functions it runs, and the CLI passes
``loopback_http`` for an emulator's login URL. The template never sets it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

from iics_monitor.errors import ConfigError

INFORMATICA_HOSTS = "*.informaticacloud.com"
# Set to "true" by the local harness only (the local stack, for the functions it runs); the template never
# sets it. config.loopback_http reads it.
LOOPBACK_HTTP_VARIABLE = "ALLOW_LOOPBACK_HTTP"
ALLOWED_HOSTS_PARAMETER = "IicsAllowedHosts"
HTTPS_PORT = 443
MAX_ALLOWED_HOSTS = 1024  # characters of IicsAllowedHosts (its MaxLength)

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_TOP_LABEL = r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?"  # a top-level domain starts with a letter: no IP addresses
_HOST_NAME = rf"(?:{_LABEL}\.)+{_TOP_LABEL}"  # at least two labels: "*.com" would trust a whole TLD
HOST_NAME = re.compile(_HOST_NAME)
# One IicsAllowedHosts entry: a host name, or "*." and a domain for every host under it (not the domain itself).
ALLOWED_HOSTS = re.compile(rf"(?:(?:\*\.)?{_HOST_NAME}(?:,(?:\*\.)?{_HOST_NAME})*)?")
_SHOWN_HOST = 253  # the longest DNS name


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` is this machine: ``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def service_url_parts(url: Any) -> SplitResult | None:
    """``url`` split, if it has the shape of a service URL the client appends paths to: an http(s) URL
    (see ``_http_url_parts``) without a query or fragment, not even an empty one. None otherwise.
    Which hosts may be reached is ``HostPolicy``'s to say."""
    if not isinstance(url, str) or "?" in url or "#" in url:
        return None
    return _http_url_parts(url)


def _http_url_parts(url: str) -> SplitResult | None:
    """``url`` split, if it is http or https with a host, a valid port and no user, in printable ASCII
    without spaces or backslashes (which URL parsers disagree on); else None."""
    if not url.isascii() or not url.isprintable() or " " in url or "\\" in url:
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number from 0 to 65535
    except ValueError:  # a bracketed host that is no IPv6 address, or a bad port
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return None
    return parts


@dataclass(frozen=True)
class HostPolicy:
    """The hosts the IICS client may reach: under informaticacloud.com or in ``allowed`` (exact host
    names, or ``*.domain`` for any host under a domain), over https on port 443; and, when
    ``loopback_http`` is on (the local harness only), this machine over http or https on any port."""

    allowed: tuple[str, ...] = ()
    loopback_http: bool = False

    @classmethod
    def parse(cls, text: str, *, loopback_http: bool = False) -> HostPolicy:
        """The policy for an ``IicsAllowedHosts`` value (comma-separated, lower case, no spaces);
        ValueError if ``text`` is not one."""
        if len(text) > MAX_ALLOWED_HOSTS or not ALLOWED_HOSTS.fullmatch(text):
            raise ValueError(
                f"must be comma-separated host names or *.domain entries, lower case, no spaces, "
                f"at most {MAX_ALLOWED_HOSTS} characters"
            )
        return cls(allowed=tuple(text.split(",")) if text else (), loopback_http=loopback_http)

    def check(self, url: str) -> None:
        """Raise ConfigError, naming the host and what to change, unless a request may go to ``url``."""
        parts = _http_url_parts(url)
        if parts is None:
            raise ConfigError("refused an IICS URL that is not an http(s) URL with a host")
        host = parts.hostname or ""
        if self.loopback_http and is_loopback(host):
            return
        if parts.scheme != "https":
            raise ConfigError(
                f"refused plain http to {_shown(host)}: IICS is reached over https only "
                "(http goes only to a local emulator, in the local stack and the CLI)"
            )
        if parts.port not in (None, HTTPS_PORT):
            raise ConfigError(f"refused port {parts.port} of IICS host {_shown(host)}: IICS serves https on 443 only")
        if not self.trusts(host):
            raise ConfigError(
                f"refused IICS host {_shown(host)}: it is not under informaticacloud.com; if it is an "
                f"Informatica pod, add it to the {ALLOWED_HOSTS_PARAMETER} Parameter"
            )

    def trusts(self, host: str) -> bool:
        """Whether ``host`` (lower case, as urlsplit gives it) is Informatica's or listed."""
        if not HOST_NAME.fullmatch(host):
            return False
        return any(_matches(host, entry) for entry in (INFORMATICA_HOSTS, *self.allowed))


# A deployment with IicsAllowedHosts empty: Informatica's hosts, over https.
INFORMATICA_ONLY = HostPolicy()


def _matches(host: str, entry: str) -> bool:
    if entry.startswith("*."):
        return host.endswith(entry[1:])  # ".domain": a dot before it, so no "evildomain"
    return host == entry


def _shown(host: str) -> str:
    """A host for a message: the URL passed ``service_url_parts``, so it is printable ASCII; bounded."""
    return host[:_SHOWN_HOST] or "(no host)"

"""The one scrubber: text that leaves the layer carries no secret, and has a bounded length.

Exception texts (``MonitorError``), the strings of results and events (``status.text``), log records
(the Logger's formatter in ``observability``) and alert text (``alerts.Alert``) pass here. It removes:

- the secrets this process has seen (``remember``): the IICS password when the client logs in, each
  session id a login answer gives, the Slack webhook URL and its path. An echo may spell a value in
  another way, so each is also looked for as JSON, ``repr``, URL and HTML escaping spell it, two deep
  (a JSON body echoed inside a JSON string, or inside an HTML page);
- whatever has a secret's shape, seen or not: JWTs (``eyJ...`` with a dot: IICS session ids may be
  JWTs of up to 16,000 characters), Slack webhook URLs and paths, ``Bearer`` tokens, and the values
  of password- and session-named fields in echoed JSON, headers and forms.

Each is replaced by ``MARK``. A text is bounded to ``limit`` characters, always after scrubbing, so
a cut never leaves part of a secret behind; a text far longer than ``limit`` is cut before, and then
loses its last ``longest spelling`` characters too, so a secret cut in two there is not kept either.
"""

from __future__ import annotations

import html
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from urllib.parse import quote, quote_plus

MARK = "[redacted]"
TEXT_LIMIT = 1000  # the default bound: an outcome's reason is at most this long
# Shorter values are not treated as secrets: removing them would garble every text they occur in.
MIN_SECRET_LENGTH = 4
MAX_SECRET_LENGTH = 16_384  # a JWT session id is at most 16,000 characters
_REMEMBERED = 16  # the password, the last sessions of a warm container, the webhook URL and its path
_SPARE = 32_768  # read past ``limit`` so that removals which shorten the text still leave ``limit`` of it

_ESCAPES: tuple[Callable[[str], str], ...] = (
    lambda s: json.dumps(s)[1:-1],
    lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
    lambda s: repr(s)[1:-1],
    lambda s: quote(s, safe=""),
    lambda s: quote_plus(s, safe=""),
    lambda s: html.escape(s),
    lambda s: html.escape(s, quote=False),
)
# How servers written in other languages escape: Java's and Spring's HTML (&#39;), XML (&apos;), JSON with
# escaped slashes, Gson's \u0027-style escapes of ' = < > &, lower-case percent-encoding. A value is looked for
# as any escape spells it, and as the escapes above spell those (a JSON body echoed inside a page, say).
_GSON = str.maketrans({c: f"\\u{ord(c):04x}" for c in "'=<>&"})
_FOREIGN_ESCAPES: tuple[Callable[[str], str], ...] = (
    lambda s: html.escape(s).replace("&#x27;", "&#39;"),
    lambda s: html.escape(s).replace("&#x27;", "&apos;"),
    lambda s: json.dumps(s)[1:-1].replace("/", "\\/"),
    lambda s: json.dumps(s)[1:-1].translate(_GSON),
    lambda s: re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), quote(s, safe="")),
)

_FIELD = r"(?:password|passwd|pwd|icSessionId|sessionId|session[-_]id|INFA-SESSION-ID|x-api-key|authorization)"
_FIELD_HINTS = ("pass", "pwd", "session", "api-key", "authorization")  # lower case: cheap tests before the patterns
# (what the lower-cased text must contain for the pattern to be worth running, the pattern, its replacement)
_SHAPES: tuple[tuple[tuple[str, ...], re.Pattern[str], str], ...] = (
    # a JWT: base64url JSON header, a dot, payload (a cut one too), optional signature
    (("eyj",), re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*)?"), MARK),
    (("hooks.slack",), re.compile(r"https?://hooks\.slack(?:-gov)?\.com/\w+/\w[^\s\"'<>\\)]*", re.IGNORECASE), MARK),
    (("/services/",), re.compile(r"/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]+"), MARK),
    (("bearer",), re.compile(r"(\bBearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE), rf"\1{MARK}"),
    # "password": "p\"w" in JSON, the escapes inside the value included
    (_FIELD_HINTS, re.compile(rf'("{_FIELD}"\s*:\s*")(?:[^"\\]|\\.)*(")', re.IGNORECASE), rf"\1{MARK}\2"),
    # \"password\": \"...\" in JSON inside a JSON string
    (_FIELD_HINTS, re.compile(rf'(\\"{_FIELD}\\"\s*:\s*\\")(?:(?!\\").)*(\\")', re.IGNORECASE), rf"\1{MARK}\2"),
    # INFA-SESSION-ID: v (a header), password=v (a form or query), 'password': 'v' (a repr); not JSON's
    # null, true or false, and never past the } or ] that closes a JSON value (the line stays JSON)
    (
        _FIELD_HINTS,
        re.compile(
            rf"(\b{_FIELD}\b[\"'\\]*\s*[:=]\s*[\"'\\]*)(?!{re.escape(MARK)}|null\b|true\b|false\b)"
            rf"[^\s\"'\\&;,<>}}\]]+",
            re.IGNORECASE,
        ),
        rf"\1{MARK}",
    ),
)

_lock = threading.Lock()
_secrets: OrderedDict[str, tuple[str, ...]] = OrderedDict()  # value -> its spellings
_spellings: tuple[str, ...] = ()  # every remembered spelling, longest first
_longest = 0


def _spellings_of(value: str) -> frozenset[str]:
    """``value`` and the ways an echo may spell it: escaped once or twice by JSON, repr, URL or HTML."""
    once = {value} | {escape(value) for escape in (*_ESCAPES, *_FOREIGN_ESCAPES)}
    return frozenset(once | {escape(form) for form in once for escape in _ESCAPES})


def remember(*values: str | None) -> None:
    """Treat ``values`` as secrets from now on, in every text this process scrubs. Cheap when known."""
    global _spellings, _longest
    for value in values:
        if not isinstance(value, str) or not MIN_SECRET_LENGTH <= len(value) <= MAX_SECRET_LENGTH:
            continue
        with _lock:
            if value in _secrets:
                _secrets.move_to_end(value)  # the most recently used are kept
                continue
            _secrets[value] = tuple(_spellings_of(value))
            while len(_secrets) > _REMEMBERED:
                _secrets.popitem(last=False)
            every = {form for forms in _secrets.values() for form in forms}
            _spellings = tuple(sorted(every, key=len, reverse=True))
            _longest = len(_spellings[0])


def forget() -> None:
    """Forget every remembered secret (for tests: each starts as a cold container)."""
    global _spellings, _longest
    with _lock:
        _secrets.clear()
        _spellings, _longest = (), 0


def scrub(value: object, limit: int = TEXT_LIMIT) -> str:
    """``value`` as text without any secret, at most ``limit`` characters long."""
    text = value if isinstance(value, str) else str(value)
    known, longest = _spellings, _longest  # one consistent view while another thread remembers
    window = limit + _SPARE + longest
    cut = len(text) > window
    if cut:
        text = text[:window]
    for spelling in known:  # longest first: a longer spelling is never left half replaced
        if spelling in text:
            text = text.replace(spelling, MARK)
    lowered = text.lower()
    for hints, pattern, replacement in _SHAPES:
        if any(hint in lowered for hint in hints):
            text = pattern.sub(replacement, text)
    if cut:  # a secret cut in two at the window's end matched nothing: drop as much as the longest
        text = text[: max(len(text) - longest, 0)]
    return text[:limit]

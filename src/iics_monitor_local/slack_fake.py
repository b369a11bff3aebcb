"""A fake Slack incoming webhook on 127.0.0.1, for tests and the local demo.

It answers as Slack's webhooks do: 200 "ok", or an HTTP error with Slack's error word as a text/plain
body (404 "no_service", 400 "invalid_payload", 429 with Retry-After, 500 "rollup_error"). Every
POST is recorded; replies can be scripted:

    with FakeSlack() as slack:
        slack.script((429, {"Retry-After": "1"}), (500,))  # the next two posts fail, later ones succeed
        SlackWebhook(lambda: slack.url, loopback_http=True).post({"text": "hello"})
        slack.delivered  # [{"text": "hello"}]

A reply can come late: ``Reply(200, body="ok", delay=2.0)`` takes the message (it is delivered, as
Slack would show it) and answers only 2 s later, after a short read timeout of the poster.

Command line (prints the URL, then the text of each message): ``python -m iics_monitor_local.slack_fake``.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

from iics_monitor_local.loopback import LoopbackServer

logger = logging.getLogger(__name__)

DEFAULT_TOKEN = "T000/B000/XXXX"  # noqa: S105 - the path of a made-up webhook
# Slack's error words for webhook answers (https://api.slack.com/messaging/webhooks#handling_errors).
ERROR_WORDS = {
    400: "invalid_payload",
    403: "invalid_token",
    404: "no_service",
    410: "channel_is_archived",
    429: "rate_limited",
    500: "rollup_error",
}
# Block Kit limits Slack enforces with 400 invalid_blocks.
_MAX_BLOCKS = 50
_TEXT_LIMITS = {"header": 150, "section": 3000}
_MAX_FIELDS = 10


class Reply(NamedTuple):
    """One scripted answer. ``body`` defaults to Slack's error word for the status; the answer is sent
    ``delay`` seconds after the post was taken (and recorded)."""

    status: int
    headers: Mapping[str, str] = {}
    body: str | None = None
    delay: float = 0.0

    @classmethod
    def of(cls, spec: Reply | Sequence[Any]) -> Reply:
        """From a Reply or a tuple: a status, then optionally a headers dict and/or a body string."""
        if isinstance(spec, Reply):
            return spec
        status, *rest = spec
        headers = next((x for x in rest if isinstance(x, Mapping)), {})
        body = next((x for x in rest if isinstance(x, str)), None)
        return cls(int(status), dict(headers), body)


class Post(NamedTuple):
    """A request the fake received, with the JSON payload (None if the body was not JSON), the status it got,
    and when it arrived (``time.monotonic()``)."""

    path: str
    headers: dict[str, str]
    body: bytes
    payload: Any
    status: int
    time: float = 0.0


class FakeSlack(LoopbackServer):
    """Slack's incoming-webhook endpoint on 127.0.0.1: start() it (or use ``with``) and post to ``url``."""

    label = "the fake Slack"

    @property
    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _Handler

    def __init__(self, token: str = DEFAULT_TOKEN, port: int = 0) -> None:
        super().__init__(port)
        self.path = f"/services/{token}"
        self._lock = threading.Lock()
        self._script: deque[Reply] = deque()
        self._always: Reply | None = None
        self._posts: list[Post] = []

    @property
    def url(self) -> str:
        """The webhook URL, ``http://127.0.0.1:<port>/services/T000/B000/XXXX`` by default."""
        return self.origin + self.path

    # Scripting

    def script(self, *replies: Reply | Sequence[Any]) -> None:
        """Answer the next posts with these replies, in order; then answer normally again."""
        with self._lock:
            self._script.extend(Reply.of(r) for r in replies)

    def fail_always(self, reply: Reply | Sequence[Any] = (500,)) -> None:
        """Answer every post with ``reply`` (after any scripted replies) until recover()."""
        with self._lock:
            self._always = Reply.of(reply)

    def recover(self) -> None:
        with self._lock:
            self._script.clear()
            self._always = None

    # What happened

    @property
    def requests(self) -> list[Post]:
        with self._lock:
            return list(self._posts)

    @property
    def delivered(self) -> list[Any]:
        """The payloads Slack would have shown, in order."""
        return [p.payload for p in self.requests if p.status == 200]

    # Serving

    def _answer(self, path: str, body: bytes) -> Reply:
        if path != self.path:
            return Reply(404)
        with self._lock:
            scripted = self._script.popleft() if self._script else self._always
        if scripted is not None:
            return scripted
        payload = _json(body)
        if not isinstance(payload, dict):
            return Reply(400)
        if not payload.get("text") and not payload.get("blocks"):
            return Reply(400, body="no_text")
        if not _blocks_fit(payload.get("blocks", [])):
            return Reply(400, body="invalid_blocks")
        return Reply(200, body="ok")

    def _record(self, post: Post) -> None:
        with self._lock:
            self._posts.append(post)
        if post.status == 200:
            logger.info("Slack message: %s", post.payload.get("text"))


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _blocks_fit(blocks: Any) -> bool:
    """Block Kit's size limits, as Slack checks them."""
    if not isinstance(blocks, list) or len(blocks) > _MAX_BLOCKS:
        return False
    for block in blocks:
        if not isinstance(block, dict):
            return False
        text = (block.get("text") or {}).get("text", "")
        if len(text) > _TEXT_LIMITS.get(block.get("type"), 3000) or len(block.get("fields", [])) > _MAX_FIELDS:
            return False
    return True


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def do_POST(self) -> None:  # noqa: N802 - the name http.server dispatches to
        arrived = time.monotonic()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        fake: FakeSlack = self.server.owner  # type: ignore[attr-defined]
        reply = fake._answer(self.path, body)
        fake._record(Post(self.path, dict(self.headers), body, _json(body), reply.status, arrived))
        text = (reply.body if reply.body is not None else ERROR_WORDS.get(reply.status, "")).encode()
        time.sleep(reply.delay)
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(text)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(text)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the poster gave up waiting (a late reply): Slack has the message all the same

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the signature http.server calls
        """Silent: the request line holds the webhook path, which stands for a secret."""


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Slack incoming webhook on 127.0.0.1 until Ctrl-C.")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free port)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    with FakeSlack(port=args.port) as slack:
        print(slack.url, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()

"""A threaded HTTP server on 127.0.0.1 that tests and the demo start, use and stop.

The IICS emulator and the fake Slack are both one; each supplies its request handler and keeps its
own state. The server remembers open connections, so stopping it also ends kept-alive ones.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# How often the serving thread checks for stop(); the standard 0.5 s would slow every test down.
STOP_POLL_SECONDS = 0.02


class _TrackingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: LoopbackServer, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", port), handler)
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # the client closed it already


class LoopbackServer:
    """Serves ``handler`` on 127.0.0.1 (port 0: any free port). Handlers reach this object as
    ``self.server.owner``."""

    handler: type[BaseHTTPRequestHandler]
    label = "the server"

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._server: _TrackingServer | None = None
        self._thread: threading.Thread | None = None

    def start(self):
        if self._server is not None:
            raise RuntimeError(f"{self.label} is already running")
        self._server = _TrackingServer(self, self._port, self.handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": STOP_POLL_SECONDS},
            name=self.label,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.close_open_connections()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join()
        self._server = self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:<port>``."""
        if self._server is None:
            raise RuntimeError(f"{self.label} is not running; call start() first")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

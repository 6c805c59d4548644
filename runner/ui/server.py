"""Serving the web view with uvicorn: in the foreground (``runner ui``) or in a thread
of the caller's process (``client.ui()``), on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import threading
import time

import uvicorn

from runner.errors import RunnerError
from runner.ui import access
from runner.ui.app import UiApp

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8265 + 100  # next to Ray's dashboard port, not on it
START_TIMEOUT = 10.0


class UiServer:
    """A running web view; ``url`` is where to open it, ``stop()`` ends it."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, host: str) -> None:
        self._server = server
        self._thread = thread
        self.host = host

    @property
    def port(self) -> int:
        sockets = [s for srv in (self._server.servers or []) for s in srv.sockets]
        return int(sockets[0].getsockname()[1]) if sockets else 0

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> UiServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<runner.ui.UiServer {self.url}>"


def _server(ui: UiApp, host: str, port: int) -> uvicorn.Server:
    access.check_bind(host, ui.token)
    config = uvicorn.Config(ui.app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
    return uvicorn.Server(config)


def start(ui: UiApp, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> UiServer:
    """Serve ``ui`` in a daemon thread; returns once it listens (port 0: any free port)."""
    server = _server(ui, host, port)
    thread = threading.Thread(target=server.run, name="runner-ui", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if not thread.is_alive():
            raise RunnerError(f"the web view could not listen on {host}:{port} (in use?)")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RunnerError(f"the web view did not start on {host}:{port} within {START_TIMEOUT:g}s")
        time.sleep(0.02)
    return UiServer(server, thread, host)


def serve_forever(ui: UiApp, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve ``ui`` in this thread until interrupted."""
    _server(ui, host, port).run()

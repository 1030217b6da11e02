"""Run an ASGI app under uvicorn inside the current event loop (port 0 = a free one).

The demo, the simulators command and integration tests use real sockets
(simulators, callback receivers) without threads or subprocesses:

    async with serve_app(app) as base_url:
        ...  # e.g. "http://127.0.0.1:54321"

The port is bound before uvicorn starts (port 0), so there is no race for a
"free" port; lifespan runs, and shutdown is bounded so a handler that is still
sleeping (a simulated timeout) cannot hang the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from collections.abc import AsyncIterator, Generator
from typing import Any

import uvicorn

__all__ = ["exit_servers_since", "reserve_port", "serve_app", "server_mark"]

_ids = itertools.count()
_live: dict[int, uvicorn.Server] = {}
"""The servers ``serve_app`` runs in this process, by start order."""


def server_mark() -> int:
    """A mark: ``exit_servers_since(mark)`` tells every server started after it to stop."""
    return next(_ids)


def exit_servers_since(mark: int) -> None:
    """Tell every server started after ``mark`` to stop, all at once, without waiting.

    Each ``serve_app`` block still waits for its own server on exit; a test stack's dozen
    simulators then stop side by side (about 0.2 s) instead of one after the other."""
    for sid, server in list(_live.items()):
        if sid > mark:
            server.should_exit = True


class _Server(uvicorn.Server):
    """uvicorn without signal capture (the test runner owns Ctrl-C, not the server), which
    stops as soon as it is told to.

    uvicorn polls ``should_exit`` every 0.1 s, and a stop then takes two polls: with a
    dozen simulators per test stack that was 2.4 s of every stack's teardown. Here
    setting ``should_exit`` also wakes the loop through an event; the 0.1 s tick (the
    Date header, limits) is unchanged."""

    _wake: asyncio.Event | None = None

    @property
    def should_exit(self) -> bool:
        return self._exit_requested

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._exit_requested = value
        if value and self._wake is not None:
            self._wake.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def main_loop(self) -> None:
        self._wake = asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)
            should_exit = await self.on_tick(counter)


def reserve_port(host: str = "127.0.0.1") -> socket.socket:
    """A socket bound to a free port, held until ``serve_app(sock=...)`` serves on it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


@contextlib.asynccontextmanager
async def serve_app(app: Any, *, host: str = "127.0.0.1", port: int = 0,
                    startup_timeout_s: float = 10.0, graceful_timeout_s: float = 2.0,
                    sock: socket.socket | None = None) -> AsyncIterator[str]:
    """Serve ``app`` until the block exits; yields its base URL (no trailing slash).

    ``sock``: a socket already bound (``reserve_port``), so a port chosen before other
    servers start cannot be taken by one of them meanwhile; it is closed on exit."""
    if sock is None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", log_level="warning", log_config=None,
                            access_log=False,
                            timeout_graceful_shutdown=graceful_timeout_s)  # type: ignore[arg-type]
    server = _Server(config)

    async def run() -> None:
        try:
            await server.serve(sockets=[sock])
        except SystemExit as exc:  # uvicorn exits on lifespan startup failure
            raise RuntimeError(f"uvicorn exited with {exc.code}") from None

    task = asyncio.create_task(run())
    sid = next(_ids)
    _live[sid] = server
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + startup_timeout_s
        while not server.started:
            if task.done():
                exc = task.exception() if not task.cancelled() else None
                raise RuntimeError(f"uvicorn failed to start: {exc!r}")
            if loop.time() > deadline:
                raise RuntimeError("uvicorn did not start in time")
            await asyncio.sleep(0.01)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        _live.pop(sid, None)
        try:
            await asyncio.wait_for(task, timeout=graceful_timeout_s + 5.0)
        except (TimeoutError, RuntimeError):
            task.cancel()
        finally:
            sock.close()

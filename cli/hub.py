"""The commands that run something in this process: the hub, the simulators, the demo.

Moved here from ``main.py`` (which now delegates to ``cli.main``): settings are loaded
once, a production hub refuses development secrets before anything starts, logging is
set up by ``kernel.logs.configure_logging`` when it exists (the text format otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
from typing import Any

from config.settings import ConfigError, HubSettings, load_settings, refuse_default_secrets

__all__ = ["configure_logging", "fast_loop", "load", "poll_returnfiles_once", "serve",
           "serve_workers"]


def configure_logging(level: str, fmt: str | None = None, *, access: bool = True) -> None:
    """The process's logging: ``kernel.logs.configure_logging`` (JSON lines unless ``fmt``
    or ``HUB_LOG_FORMAT`` says text; masked), the HTTP access log unless ``access`` is
    false (the demo prints its own summary instead)."""
    from kernel.logs import configure_logging as configure

    configure(level, fmt, access=access)


def load(*, settings_file: str | None = None, log_level: str | None = None,
         refuse_defaults: bool = False, **overrides: Any) -> HubSettings:
    """Settings (environment over file over defaults), ``ConfigError`` on a bad one;
    ``refuse_defaults``: a production hub's development secrets are refused too."""
    if settings_file:
        overrides["settings_file"] = settings_file
    if log_level:
        overrides["log_level"] = log_level
    settings = load_settings(**overrides)
    if refuse_defaults:
        refuse_default_secrets(settings)
    return settings


def fast_loop() -> None:
    """uvloop when installed: the hub is I/O-bound Python, and uvloop's loop roughly halves
    the per-message overhead of sockets and callbacks (``bench/channels.py``)."""
    with contextlib.suppress(ImportError):
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def serve(settings: HubSettings, *, worker: int = 0,
                sock: socket.socket | None = None) -> None:
    """One hub process: routes, pollers, the HTTP API. With ``sock`` (``hub run
    --workers N``) the API serves on that shared ``SO_REUSEPORT`` socket, and only worker
    0 runs the tickers and the return-file poller (``bootstrap.workers``: they are not
    leased, N copies would do their work N times)."""
    import uvicorn

    from bootstrap import build_hub

    hub = build_hub(settings)
    if worker != 0:
        hub.tickers = ()
        hub.returnfiles = None
    config = uvicorn.Config(hub.api, host=settings.http_host, port=settings.http_port,
                            log_level="warning", lifespan="on")
    await uvicorn.Server(config).serve(sockets=[sock] if sock is not None else None)


def serve_workers(settings: HubSettings, workers: int) -> int:
    """``hub run --workers N``: N forked hub processes on one port (``bootstrap.workers``)."""
    from bootstrap.workers import reuse_port_socket, supervise

    def worker(index: int) -> int:
        sock = reuse_port_socket(settings.http_host, settings.http_port)
        fast_loop()
        asyncio.run(serve(settings, worker=index, sock=sock))
        return 0

    return supervise(worker, workers)


async def poll_returnfiles_once(settings: HubSettings) -> int:
    """One poll of tax's FTP, without the broker: prints one report per file; 1 on a
    failure the hub names, 3 when tax's FTP or core cannot be reached."""
    from adapters.core.client import CoreClient
    from bootstrap import build_returnfiles
    from contracts.errors import HubError, TransientError
    from storage.journal import make_engine

    engine = make_engine(settings.database_url)
    partner = settings.partner("core")
    core = CoreClient(partner.endpoint, timeout=partner.timeout_s)
    try:
        for report in await build_returnfiles(settings, engine, core).poll_once():
            print(json.dumps(report.to_dict(), ensure_ascii=False))
        return 0
    except HubError as exc:
        print(f"returnfiles: {exc.code}: {exc.reason}", file=sys.stderr)
        return 3 if isinstance(exc, TransientError) else 1
    except OSError as exc:
        print(f"returnfiles: tax's FTP unreachable: {exc}", file=sys.stderr)
        return 3
    finally:
        await core.aclose()
        await engine.dispose()


def config_error(exc: ConfigError) -> str:
    return f"cannot start: {exc}"

"""Entry point: the command line. The hub is wired by ``bootstrap`` (the composition root).

    python main.py run            the hub: route consumers + HTTP API (default :8000)
    python main.py simulate       partner simulators (core :8101, tax :8102)
    python main.py demo           hub + simulators + a realistic scenario, then a summary
    python main.py replay PATH    send contract fixtures through a running hub, diff outputs
    python main.py migrate        alembic upgrade head

HUB_ENV=development for a development hub (make run/simulate/demo set it): the
default is production, where ``run`` and ``returnfiles`` refuse to start while a
secret still has its development default (each one named), and the development
admin tokens are not accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys

from adapters.core.client import CoreClient
from bootstrap import build_hub, build_returnfiles
from config.settings import ConfigError, HubSettings, load_settings, refuse_default_secrets
from contracts.errors import HubError
from contracts.masking import MaskingFilter
from storage.journal import make_engine

__all__ = ["configure_logging", "main"]

log = logging.getLogger("hub")


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(MaskingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def _fast_loop() -> None:
    """uvloop when installed: the hub is I/O-bound Python, and uvloop's loop roughly halves
    the per-message overhead of sockets and callbacks (``bench/channels.py``)."""
    with contextlib.suppress(ImportError):
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def serve(settings: HubSettings) -> None:
    import uvicorn

    hub = build_hub(settings)
    config = uvicorn.Config(hub.api, host=settings.http_host, port=settings.http_port,
                            log_level="warning", lifespan="on")
    await uvicorn.Server(config).serve()


async def poll_returnfiles_once(settings: HubSettings) -> int:
    """One poll of tax's FTP, without the broker: prints one report per file."""
    engine = make_engine(settings.database_url)
    partner = settings.partner("core")
    core = CoreClient(partner.endpoint, timeout=partner.timeout_s)
    try:
        for report in await build_returnfiles(settings, engine, core).poll_once():
            print(json.dumps(report.to_dict(), ensure_ascii=False))
        return 0
    except HubError as exc:
        print(f"returnfiles: {exc.code}: {exc.reason}", file=sys.stderr)
        return 1
    finally:
        await core.aclose()
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="main.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the hub")
    sub.add_parser("simulate", help="run the partner simulators")
    demo = sub.add_parser("demo", help="hub + simulators + scenario, then a summary")
    demo.add_argument("--count", type=int, default=200)
    demo.add_argument("--transient-rate", type=float, default=0.10)
    demo.add_argument("--timeout", type=float, default=120.0)
    replay = sub.add_parser("replay", help="send fixtures through a running hub and diff")
    replay.add_argument("path")
    sub.add_parser("migrate", help="alembic upgrade head")
    sub.add_parser("returnfiles", help="poll tax's FTP once for return files (回盘), report")
    args = parser.parse_args(argv)

    try:
        settings = load_settings()
        if args.command in ("run", "returnfiles"):
            refuse_default_secrets(settings)
    except ConfigError as exc:
        print(f"hub: cannot start: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)

    from storage.migrate import upgrade
    if args.command == "migrate":
        upgrade(settings.database_url)
        print("hub: database is at the latest revision")
        return 0
    if args.command in ("run", "demo", "returnfiles") and settings.auto_migrate:
        upgrade(settings.database_url)
    if args.command == "run":
        _fast_loop()
        try:
            asyncio.run(serve(settings))
        except ConfigError as exc:  # build_hub's own checks (e.g. admin tokens)
            print(f"hub: cannot start: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.command == "returnfiles":
        return asyncio.run(poll_returnfiles_once(settings))
    if args.command == "simulate":
        from simulators.run import run_simulators
        asyncio.run(run_simulators(settings))
        return 0
    if args.command == "demo":
        from tools.demo import run_demo
        return int(asyncio.run(run_demo(settings, count=args.count,
                                    transient_rate=args.transient_rate, timeout=args.timeout)))
    from tools.replay import run_replay
    return int(asyncio.run(run_replay(settings, args.path)))


if __name__ == "__main__":
    sys.exit(main())

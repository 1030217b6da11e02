"""``hub``: every operation of the integration hub in one command line (typer).

``hub run`` / ``simulate`` / ``demo`` / ``migrate`` / ``returnfiles`` / ``replay`` /
``reconcile`` work in this process; ``dlq``, ``resend``, ``batches``, ``jobs``,
``warnings`` and ``audit`` talk to a running hub's admin API (``--url``, ``--token``), so
every action is checked against the token's role and audited under its user, from any
operator's machine; ``traffic`` drives the simulators of ``make simulate``. ``python
main.py ...`` is the same command line.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from cli.admin import audit, batches_app, dlq_app, jobs_app, resend_app, warnings_app
from cli.common import (
    COMMON,
    EXIT_CODES,
    EXIT_FAILED,
    EXIT_USAGE,
    CliFailure,
    Options,
    common,
    options,
)
from cli.traffic import traffic_app

__all__ = ["app", "run_cli"]

EPILOG = ("[b]Exit codes[/b]\n\n"
          + "\n\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODES.items())
          + "\n\nGlobal options work before or after the command: "
          "hub --token T dlq list == hub dlq list --token T.")
HELP = ("Every operation of the Nanjing medical-insurance integration hub.\n\n"
        "run, simulate, demo, migrate, returnfiles, replay and reconcile work in this "
        "process; dlq, resend, batches, jobs, warnings and audit talk to a running hub's "
        "admin API (--url, --token: checked against the token's role, audited under its "
        "user); traffic drives the simulators of `make simulate`. "
        "`python main.py ...` is the same command line.")

app = typer.Typer(name="hub", help=HELP, epilog=EPILOG, no_args_is_help=True,
                  add_completion=False, rich_markup_mode="rich",
                  context_settings={"help_option_names": ["-h", "--help"]})
app.add_typer(dlq_app, name="dlq")
app.add_typer(resend_app, name="resend")
app.add_typer(batches_app, name="batches")
app.add_typer(jobs_app, name="jobs")
app.add_typer(warnings_app, name="warnings")
app.add_typer(traffic_app, name="traffic")
app.command("audit", help="The audit log (who did what), newest first.")(audit)


def _callback(ctx: typer.Context, **given: Any) -> None:
    ctx.obj = Options(**given)


_callback.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                       annotation=typer.Context)]
    + [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, annotation=a,
                         default=False if n in ("json", "no_progress") else None)
       for n, a in COMMON.items()])
_callback.__annotations__ = {"ctx": typer.Context, **COMMON, "return": None}
app.callback(epilog=EPILOG)(_callback)


def _settings(refuse_defaults: bool = False, **overrides: Any) -> Any:
    from cli.hub import load
    from config.settings import ConfigError

    opts = options()
    try:
        return load(settings_file=opts.settings_file, log_level=opts.log_level,
                    refuse_defaults=refuse_defaults, **overrides)
    except ConfigError as exc:
        raise CliFailure(f"cannot start: {exc}", EXIT_USAGE) from None


def _logging(settings: Any, *, access: bool = True) -> None:
    from cli.hub import configure_logging

    configure_logging(settings.log_level, settings.log_format, access=access)


@app.command(help="Run the hub: route consumers, pollers and the HTTP API (admin API, "
             "console, /metrics). Production by default: refuses to start with a "
             "development secret (HUB_ENV=development for a development hub).")
@common
def run(workers: Annotated[int, typer.Option(
        "--workers", min=1, max=64,
        help="hub processes sharing the port and the servers (broker, Redis, database); "
        "tickers and pollers run in the first only")] = 1) -> None:
    from cli.hub import fast_loop, serve, serve_workers
    from config.settings import ConfigError
    from storage.migrate import upgrade

    settings = _settings(refuse_defaults=True)
    _logging(settings)
    if settings.auto_migrate:
        upgrade(settings.database_url)
    if workers > 1:
        raise typer.Exit(serve_workers(settings, workers))
    fast_loop()
    try:
        asyncio.run(serve(settings))
    except ConfigError as exc:  # build_hub's own checks (e.g. admin tokens)
        raise CliFailure(f"cannot start: {exc}", EXIT_USAGE) from None


@app.command(help="Run every partner simulator on its configured port, and the traffic "
             "door (`hub traffic`) on sim_control_port, until Ctrl-C.")
@common
def simulate() -> None:
    from simulators.run import run_simulators

    settings = _settings()
    _logging(settings)
    asyncio.run(run_simulators(settings))


@app.command(help="Hub + simulators in one process, a realistic scenario of every flow, "
             "then a summary counted at the simulators. Exit 1 if a flow did not add up.")
@common
def demo(count: Annotated[int, typer.Option(min=1, help="employee enrollments")] = 200,
         transient_rate: Annotated[float, typer.Option(min=0.0, max=1.0,
                                                       help="tax's transient failures")] = 0.10,
         wait: Annotated[float, typer.Option("--wait", min=1.0,
                                             help="seconds to wait for the wave")] = 120.0,
         ) -> None:
    from storage.migrate import upgrade
    from tools.demo import run_demo

    settings = _settings()
    _logging(settings, access=False)
    if settings.auto_migrate:
        upgrade(settings.database_url)
    raise typer.Exit(int(asyncio.run(run_demo(settings, count=count,
                                              transient_rate=transient_rate,
                                              timeout=wait))))


@app.command(help="alembic upgrade head of the configured database.")
@common
def migrate() -> None:
    from storage.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    typer.echo("hub: database is at the latest revision")


@app.command(help="Poll tax's FTP once for return files (回盘): one JSON report per file. "
             "Exit 1 on a failure the hub names, 3 when tax's FTP or core is unreachable.")
@common
def returnfiles() -> None:
    from cli.hub import poll_returnfiles_once
    from storage.migrate import upgrade

    settings = _settings(refuse_defaults=True)
    _logging(settings)
    if settings.auto_migrate:
        upgrade(settings.database_url)
    raise typer.Exit(asyncio.run(poll_returnfiles_once(settings)))


REPLAY_HELP = ("Replay contract fixtures (contracts/fixtures) through a real hub and the "
               "simulators, and diff what comes out field by field. Ends with `replay: "
               "fixtures=N passed=N failed=N`; exit 1 on any failure, 2 when nothing "
               "matched.")


def replay_help() -> str:
    """``tools.replay.HELP`` when it has one (it says exactly what is replayed)."""
    try:
        from tools import replay as module
    except Exception:  # the help must show even if the module is broken
        return REPLAY_HELP
    return str(getattr(module, "HELP", "") or REPLAY_HELP)


class _ReplayCommand(TyperCommand):
    """Reads the replay help from ``tools.replay`` only when help is asked for (importing
    it takes a second)."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self.help = replay_help()
        super().format_help(ctx, formatter)


def run_replay(path: Path, partner: str | None, type_: str | None, settings: Any) -> int:
    """``tools.replay.run_replay`` in whichever form it has (path first, synchronous; or
    the older ``(settings, path)`` coroutine)."""
    from tools import replay as module

    runner: Any = module.run_replay
    params = list(inspect.signature(runner).parameters)
    if params and params[0] == "settings":
        if partner or type_:
            raise CliFailure("this tools.replay replays everything under PATH: --partner "
                             "and --type are not known to it", EXIT_USAGE)
        return int(asyncio.run(runner(settings, str(path))))
    answer = runner(path, partner=partner, type=type_, settings=settings)
    return int(asyncio.run(answer) if inspect.iscoroutine(answer) else answer)


@app.command(help=REPLAY_HELP, cls=_ReplayCommand)
@common
def replay(path: Annotated[Path, typer.Argument(help="a fixture folder")] = Path(
               "contracts/fixtures"),
           partner: Annotated[str | None, typer.Option("--partner",
                                                       help="one partner's fixtures")] = None,
           type_: Annotated[str | None, typer.Option("--type",
                                                     help="one fixture type")] = None) -> None:
    settings = _settings()
    _logging(settings)
    raise typer.Exit(run_replay(path, partner, type_, settings))


@app.command(help="参保信息比对 from files: tax's batch against core's extract; writes the "
             "difference report (CSV + XLSX). Exit 1 when they differ, 2 on bad input.",
             context_settings={"ignore_unknown_options": True})
@common
def reconcile(kind: Annotated[str, typer.Option(help="unit, employee or resident")],
              tax: Annotated[Path, typer.Option(help="tax's batch (CSV or XLSX)")],
              core: Annotated[Path, typer.Option(help="core's extract (CSV or XLSX)")],
              out: Annotated[Path, typer.Option(help="report path without suffix")],
              fields: Annotated[str | None, typer.Option(help="fields to compare, a,b")] = None,
              batch_id: Annotated[str | None, typer.Option()] = None,
              as_of: Annotated[str | None, typer.Option(help="数据截止日期 yyyy-mm-dd")] = None,
              declared: Annotated[int | None, typer.Option()] = None,
              index_side: Annotated[str, typer.Option()] = "core",
              encoding: Annotated[str, typer.Option()] = "auto") -> None:
    from tools.reconcile_cli import main as reconcile_main

    argv = ["--kind", kind, "--tax", str(tax), "--core", str(core), "--out", str(out),
            "--index-side", index_side, "--encoding", encoding]
    for flag, value in (("--fields", fields), ("--batch-id", batch_id), ("--as-of", as_of),
                        ("--declared", declared)):
        if value is not None:
            argv += [flag, str(value)]
    try:
        code = reconcile_main(argv)
    except SystemExit as exc:  # argparse refused a value
        code = EXIT_USAGE if exc.code else 0
    raise typer.Exit(code if code in (0, EXIT_FAILED, EXIT_USAGE) else EXIT_FAILED)


def run_cli(argv: list[str] | None = None) -> int:
    """The command line as a function: its exit code (``main.main`` and the tests)."""
    try:
        app(args=list(sys.argv[1:] if argv is None else argv), prog_name="hub")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_FAILED)
    return 0


def main() -> None:
    """The console script's entry (``[project.scripts] hub``) when called as a function."""
    sys.exit(run_cli())

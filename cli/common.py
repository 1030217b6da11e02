"""What every ``hub`` command shares: options accepted anywhere, exit codes, the HTTP client.

Options anywhere: the global options (``--url``, ``--token``, ``--json``, ...) are declared
on the app's callback AND added to every command by ``@common``, so
``hub --token T dlq list`` and ``hub dlq list --token T`` mean the same; a command's value
wins over the callback's, which wins over the environment.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields, replace
from typing import Annotated, Any, Final, TypeVar

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["COMMON", "EXIT_CODES", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK",
           "EXIT_UNREACHABLE", "EXIT_USAGE", "Api", "CliFailure", "Options", "common",
           "emit", "options", "progress", "transport_for_tests"]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_UNREACHABLE: Final = 3
EXIT_INTERRUPTED: Final = 130
EXIT_CODES: Final[Mapping[int, str]] = {
    EXIT_OK: "done, nothing failed",
    EXIT_FAILED: "done, but failures found (differences, failed fixtures or items, "
                 "a refused action: 401/403/404/409/422)",
    EXIT_USAGE: "usage or configuration error (bad option, invalid settings, a "
                "secret still at its development default)",
    EXIT_UNREACHABLE: "the hub, a partner or the simulators could not be reached "
                      "(or answered 5xx; chunks that never reached tax)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_SIM_URL = "http://127.0.0.1:8199"

transport_for_tests: httpx.BaseTransport | None = None
"""Set by tests: every ``Api`` client talks to this transport instead of the network."""


class CliFailure(Exception):
    """Ends the command with ``message`` on stderr and exit code ``code``."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Options:
    """The global options, merged: command over callback over environment."""

    url: str | None = None
    token: str | None = None
    json: bool = False
    log_level: str | None = None
    settings_file: str | None = None
    sim_url: str | None = None
    sim_token: str | None = None
    no_progress: bool = False
    timeout: float | None = None

    def merged(self, other: Options) -> Options:
        """``other``'s given values over these (flags: either one set)."""
        changes: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(other, f.name)
            if isinstance(value, bool):
                changes[f.name] = value or getattr(self, f.name)
            elif value is not None:
                changes[f.name] = value
        return replace(self, **changes)

    @property
    def hub_url(self) -> str:
        return (self.url or os.environ.get("HUB_URL") or os.environ.get("HUB_ADMIN_URL")
                or DEFAULT_URL).rstrip("/")

    @property
    def hub_token(self) -> str | None:
        return self.token or os.environ.get("HUB_TOKEN") or os.environ.get("HUB_ADMIN_TOKEN")

    @property
    def control_url(self) -> str:
        return (self.sim_url or os.environ.get("HUB_SIM_URL") or DEFAULT_SIM_URL).rstrip("/")

    @property
    def control_token(self) -> str:
        return (self.sim_token or os.environ.get("HUB_SIM_CONTROL_TOKEN")
                or "dev-sim-control")

    @property
    def http_timeout(self) -> float:
        return self.timeout or 60.0


COMMON: Final[dict[str, Any]] = {
    "url": Annotated[str | None, typer.Option(
        "--url", help="hub base URL \\[env HUB_URL; default http://127.0.0.1:8000]",
        rich_help_panel="Global options")],
    "token": Annotated[str | None, typer.Option(
        "--token", help="admin API token \\[env HUB_TOKEN]", rich_help_panel="Global options")],
    "json": Annotated[bool, typer.Option(
        "--json", help="print the answers as JSON", rich_help_panel="Global options")],
    "log_level": Annotated[str | None, typer.Option(
        "--log-level", help="DEBUG, INFO, WARNING... (run, simulate, demo; else settings)",
        rich_help_panel="Global options")],
    "settings_file": Annotated[str | None, typer.Option(
        "--settings", help="settings file \\[env HUB_SETTINGS_FILE; default config/hub.toml]",
        rich_help_panel="Global options")],
    "sim_url": Annotated[str | None, typer.Option(
        "--sim-url", help="simulators' traffic door \\[env HUB_SIM_URL; default "
        "http://127.0.0.1:8199]", rich_help_panel="Global options")],
    "sim_token": Annotated[str | None, typer.Option(
        "--sim-token", help="traffic door token \\[env HUB_SIM_CONTROL_TOKEN; default "
        "dev-sim-control]", rich_help_panel="Global options")],
    "no_progress": Annotated[bool, typer.Option(
        "--no-progress", help="no progress bars", rich_help_panel="Global options")],
    "timeout": Annotated[float | None, typer.Option(
        "--timeout", help="seconds per HTTP call (default 60)", min=0.1,
        rich_help_panel="Global options")],
}


_current: ContextVar[Options | None] = ContextVar("hub_cli_options", default=None)
_CTX = "hub_ctx"
"""The name under which ``@common`` has typer pass the command's context."""


def options() -> Options:
    """The merged options of the command now running."""
    return _current.get() or Options()


F = TypeVar("F", bound=Callable[..., Any])


def common(func: F) -> F:
    """Adds the global options to a command and runs it with failures mapped to exit codes:
    ``CliFailure`` (its code), ``KeyboardInterrupt`` (130)."""
    sig = inspect.signature(func, eval_str=True)
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=ann,
                               default=False if name in ("json", "no_progress") else None)
             for name, ann in COMMON.items() if name not in sig.parameters]
    extra.append(inspect.Parameter(_CTX, inspect.Parameter.KEYWORD_ONLY,
                                   annotation=typer.Context))

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx: typer.Context = kwargs.pop(_CTX)
        given = Options(**{k: kwargs.pop(k) for k in COMMON if k in kwargs})
        base = ctx.find_object(Options) or Options()
        ctx.obj = base.merged(given)
        _current.set(ctx.obj)
        try:
            return func(*args, **kwargs)
        except CliFailure as exc:
            typer.echo(f"hub: {exc}", err=True)
            raise typer.Exit(exc.code) from None
        except KeyboardInterrupt:
            typer.echo("hub: interrupted", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None

    wrapper.__signature__ = sig.replace(  # type: ignore[attr-defined]
        parameters=[*sig.parameters.values(), *extra])
    wrapper.__annotations__ = {**{p.name: p.annotation for p in sig.parameters.values()},
                               **{p.name: p.annotation for p in extra},
                               "return": sig.return_annotation}
    return wrapper  # type: ignore[return-value]


def emit(value: Any, lines: Callable[[Any], Iterator[str]] | None = None) -> None:
    """``value`` as JSON with ``--json`` (or without a line format), else its lines."""
    if options().json or lines is None:
        typer.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))
        return
    for line in lines(value):
        typer.echo(line)


@contextmanager
def progress(label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr (none with ``--no-progress``, ``--json`` or no terminal);
    yields ``advance(n)``."""
    opts = options()
    if opts.no_progress or opts.json or not sys.stderr.isatty():
        yield lambda n: None
        return
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=Console(stderr=True))
    with bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def _detail(r: httpx.Response) -> str:
    """What an error answer says: RFC 7807 ``detail``/``title`` and its field list, or the
    older ``{"detail": ...}`` shapes."""
    try:
        body = r.json()
    except ValueError:
        return r.text[:500]
    if not isinstance(body, dict):
        return json.dumps(body, ensure_ascii=False)[:500]
    detail = body.get("detail") or body.get("title") or body.get("message") or ""
    if not isinstance(detail, str):
        detail = json.dumps(detail, ensure_ascii=False)
    problems = body.get("errors") or body.get("invalid_params") or body.get("refused") or []
    if isinstance(problems, list) and problems:
        named = "; ".join(f"{p.get('field') or p.get('name') or p.get('loc', '?')}: "
                          f"{p.get('reason') or p.get('msg', '')}"
                          for p in problems[:10] if isinstance(p, dict))
        detail = f"{detail} ({named})" if detail else named
    return detail[:1000]


class Api:
    """A JSON client of one base URL with the given headers; errors become ``CliFailure``:
    unreachable or 5xx -> exit 3, 401/403/4xx -> exit 1."""

    def __init__(self, base_url: str, headers: Mapping[str, str], timeout: float,
                 what: str = "the hub") -> None:
        self._client = httpx.Client(base_url=base_url, headers=dict(headers), timeout=timeout,
                                    transport=transport_for_tests)
        self._what = what

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def call(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
             body: Any = None, content: bytes | None = None,
             headers: Mapping[str, str] | None = None) -> Any:
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            r = self._client.request(method, path, params=clean, json=body, content=content,
                                     headers=headers)
        except httpx.HTTPError as exc:
            raise CliFailure(f"cannot reach {self._what} at {self._client.base_url}: "
                             f"{type(exc).__name__}: {exc}", EXIT_UNREACHABLE) from None
        if r.status_code >= 500:
            raise CliFailure(f"{self._what} answered HTTP {r.status_code}: {_detail(r)}",
                             EXIT_UNREACHABLE)
        if r.status_code >= 400:
            raise CliFailure(f"HTTP {r.status_code}: {_detail(r)}", EXIT_FAILED)
        if not r.content:
            return None
        try:
            return r.json()
        except ValueError:
            return r.text

    @classmethod
    def hub(cls) -> Api:
        """The hub's admin API with ``--token`` (exit 2 without one)."""
        opts = options()
        token = opts.hub_token
        if not token:
            raise CliFailure("no token: pass --token or set HUB_TOKEN", EXIT_USAGE)
        return cls(opts.hub_url, {"Authorization": f"Bearer {token}"}, opts.http_timeout)

    @classmethod
    def control(cls) -> Api:
        """The simulators' traffic door (``simulators.traffic``)."""
        opts = options()
        return cls(opts.control_url, {"X-Sim-Token": opts.control_token}, opts.http_timeout,
                   what="the simulators' traffic door (make simulate)")

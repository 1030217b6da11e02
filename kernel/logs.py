"""The hub's log lines: one JSON object per line (or text for humans), always masked.

Operations search logs by message, transaction and trace, so every line carries what is
known where it was written: ``ts``, ``level``, ``logger``, ``msg`` and, when set,
``message_id``, ``correlation_id``, ``route``, ``partner`` (``log_context``, opened by the
runtime around a delivery and by the HTTP middleware around a request) and ``trace_id`` /
``span_id`` (the current OpenTelemetry span, ``kernel.tracing``). Fields given with
``extra=`` are kept too. Everything is masked: the message with ``mask_text``, each extra
field and context value with ``mask_value`` (by field name, then by pattern), the
traceback with ``MaskingFilter``, so no line carries a full ID number, phone or name.

    configure_logging("INFO")                 JSON lines on stderr (the default)
    configure_logging("INFO", fmt="text")     ``ts LEVEL logger: msg [cid=... trace=...]``
    HUB_LOG_FORMAT=text                       the same, when ``fmt`` is not given

The access log (``api.access_log``) writes to the ``hub.access`` logger, kept at INFO by
``configure_logging`` whatever the hub's level (``access=False`` silences it).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from contracts.masking import MaskingFilter, mask_text, mask_value

__all__ = ["ACCESS_LOGGER", "CONTEXT_FIELDS", "JsonFormatter", "TextFormatter", "bind",
           "configure_logging", "current_context", "log_context", "record_fields"]

LogFormat = Literal["json", "text"]
ACCESS_LOGGER = "hub.access"
CONTEXT_FIELDS = ("message_id", "correlation_id", "route", "partner")
"""The context every line carries when known, in this order after ``msg``."""

_CONTEXT: ContextVar[Mapping[str, Any] | None] = ContextVar("hub_log_context", default=None)
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName"}
"""LogRecord attributes that are not ``extra=`` fields."""


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Every line logged inside (this task and tasks it starts) carries ``fields``
    (``None`` values are left out); the outer context comes back on exit."""
    outer = _CONTEXT.get()
    token = _CONTEXT.set({**(outer or {}), **{k: v for k, v in fields.items()
                                              if v is not None}})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def bind(**fields: Any) -> None:
    """Add ``fields`` to the context of the rest of the enclosing ``log_context`` (what is
    learnt inside it: the correlation id once the envelope is read). Call it inside one:
    the enclosing block's exit undoes it."""
    outer = _CONTEXT.get()
    _CONTEXT.set({**(outer or {}), **{k: v for k, v in fields.items() if v is not None}})


def current_context() -> dict[str, Any]:
    """The context fields of this moment (a copy)."""
    return dict(_CONTEXT.get() or {})


def _trace_ids() -> tuple[str | None, str | None]:
    """The current span's ids as lower-case hex, or ``(None, None)`` outside a span."""
    try:
        from opentelemetry import trace
    except ImportError:  # pragma: no cover - a dependency of the hub
        return None, None
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None, None
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


def _plain(value: Any) -> Any:
    """A value JSON can carry: containers kept, the rest as text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return str(value)


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The line as a dict, masked: what ``JsonFormatter`` writes (tests read it too)."""
    out: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname, "logger": record.name,
        "msg": mask_text(record.getMessage())}
    ctx = _CONTEXT.get() or {}
    for key in CONTEXT_FIELDS:
        if key in ctx:
            out[key] = mask_value(_plain(ctx[key]), key)
    for key, value in ctx.items():
        if key not in out:
            out[key] = mask_value(_plain(value), key)
    trace_id, span_id = _trace_ids()
    if trace_id:
        out["trace_id"], out["span_id"] = trace_id, span_id
    for key, value in vars(record).items():
        if key not in _STANDARD and not key.startswith("_") and key not in out:
            out[key] = mask_value(_plain(value), key)
    if record.exc_text:  # formatted and masked by MaskingFilter
        out["exc"] = mask_text(record.exc_text)
    elif record.exc_info:
        out["exc"] = mask_text(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        out["stack"] = mask_text(record.stack_info)
    return out


class JsonFormatter(logging.Formatter):
    """One JSON object per line, masked (``record_fields``); non-ASCII kept readable."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(record_fields(record), ensure_ascii=False, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """``ts LEVEL logger: msg`` and the context in brackets, for a human at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = mask_text(super().format(record))
        fields = record_fields(record)
        tail = " ".join(f"{k}={fields[k]}" for k in (*CONTEXT_FIELDS, "trace_id")
                        if k in fields)
        return f"{line} [{tail}]" if tail else line


def configure_logging(level: str, fmt: LogFormat | str | None = None, *,
                      access: bool = True, stream: TextIO | None = None) -> None:
    """The process's logging: one handler on stderr (or ``stream``), masked, JSON lines
    unless ``fmt`` (else ``HUB_LOG_FORMAT``) is ``text``; the access log at INFO unless
    ``access`` is false. Replaces any handlers set before (``force``)."""
    chosen = (fmt or os.environ.get("HUB_LOG_FORMAT") or "json").strip().lower()
    if chosen not in ("json", "text"):
        raise ValueError(f"log format {chosen!r}: one of json, text")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(MaskingFilter())
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.INFO if access else logging.WARNING)

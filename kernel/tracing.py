"""W3C trace context across the hub's hops, with OpenTelemetry (no exporter by default).

One transaction crosses HTTP (a partner's door, the hub's calls to partners) and AMQP
(the lanes between them); following it means one trace id on all of them:

- HTTP in: ``api.access_log`` starts a server span, continuing an incoming
  ``traceparent`` (``server_span``);
- AMQP out: ``broker.rabbit.RabbitPublisher`` writes the current ``traceparent`` into
  every message's headers (``inject``; a header the message already carries is kept,
  so a retried or re-sent message stays in its first trace);
- AMQP in: ``kernel.runtime.process`` runs inside ``traced``: a consumer span whose parent
  is the message's ``traceparent``, and the log context of that message;
- HTTP out: every ``adapters.http.BoundedTransport`` call gets the current
  ``traceparent`` (``inject_request``, registered by ``api.access_log``).

The trace and span ids land in every log line (``kernel.logs``). Spans go nowhere unless
setting ``otel_exporter`` says so: ``console`` (spans printed as JSON, to look at) or
``otlp`` (only where ``opentelemetry-exporter-otlp`` is installed; the hub does not
depend on it).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any, TypeVar, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from kernel.logs import log_context

__all__ = ["EXPORTERS", "TRACEPARENT", "current_ids", "extract", "inject", "inject_request",
           "parse_traceparent", "server_span", "setup_tracing", "traced", "tracer"]

log = logging.getLogger("hub.tracing")
F = TypeVar("F", bound=Callable[..., Any])

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
EXPORTERS = ("none", "console", "otlp")
SERVICE_NAME = "nanjing-insurance-hub"

_PROPAGATOR = TraceContextTextMapPropagator()
_TRACEPARENT_RE = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_UNSAMPLED = ParentBased(ALWAYS_OFF)
"""The sampler without an exporter: a span is recorded only under a sampled caller."""
_provider: TracerProvider | None = None
_tracer: trace.Tracer | None = None
_exporters: set[str] = set()


class _Getter(Getter[Mapping[str, Any]]):
    """Reads AMQP headers (values may be bytes) and HTTP headers (any case)."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        value = carrier.get(key)
        if value is None:
            value = next((v for k, v in carrier.items() if str(k).lower() == key), None)
        if value is None:
            return None
        if isinstance(value, bytes | bytearray):
            value = bytes(value).decode("latin-1")
        return [str(value)]

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return [str(k) for k in carrier]


_GETTER = _Getter()


def parse_traceparent(value: str | bytes | None) -> tuple[str, str, str] | None:
    """``(trace_id, parent_span_id, flags)`` of a valid W3C ``traceparent`` (version 00 or a
    later one read as 00), else None: all-zero ids and version ff are invalid."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str):
        return None
    m = _TRACEPARENT_RE.match(value.strip().lower())
    if m is None or m.group(1) == "ff" or set(m.group(2)) == {"0"} or set(m.group(3)) == {"0"}:
        return None
    if m.group(1) == "00" and len(value.strip()) != 55:
        return None
    return m.group(2), m.group(3), m.group(4)


def setup_tracing(exporter: str = "none") -> TracerProvider:
    """The process's tracer provider (made once; later calls add an exporter if asked).
    ``exporter``: ``none``, ``console`` or ``otlp`` (``ValueError`` when unknown or its
    package is missing). The first call decides the sampling: with ``none``, spans are
    recorded only under a sampled incoming trace; with an exporter, always."""
    global _provider
    if exporter not in EXPORTERS:
        raise ValueError(f"otel_exporter {exporter!r}: one of {', '.join(EXPORTERS)}")
    if _provider is None:
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):  # set by whoever embeds the hub
            _provider = current
        else:
            # Without an exporter nothing is recorded unless the caller's trace is sampled
            # (cheaper per message); the ids are made and passed on all the same.
            _provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}),
                                       sampler=_UNSAMPLED if exporter == "none"
                                       else ParentBased(ALWAYS_ON))
            trace.set_tracer_provider(_provider)
    if exporter != "none" and exporter not in _exporters:
        _provider.add_span_processor(BatchSpanProcessor(_exporter(exporter)))
        _exporters.add(exporter)
    return _provider


def _exporter(kind: str) -> Any:
    if kind == "console":
        return ConsoleSpanExporter()
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
            OTLPSpanExporter,
        )
    except ImportError:
        raise ValueError("otel_exporter otlp needs opentelemetry-exporter-otlp, which is not "
                         "installed (the hub does not depend on it): install it or use "
                         "console/none") from None
    return OTLPSpanExporter()


def tracer() -> trace.Tracer:
    """The hub's tracer (the provider is set up on first use: no exporter). Made once:
    asking the provider for it on every message cost 2% of the hub's CPU in
    ``bench/pipeline``; exporters added later still see its spans (same provider)."""
    global _tracer
    if _tracer is None:
        if _provider is None:
            setup_tracing()
        _tracer = trace.get_tracer("hub")
    return _tracer


def inject(headers: MutableMapping[str, Any], *, keep: bool = True) -> MutableMapping[str, Any]:
    """Write the current span's ``traceparent`` (and ``tracestate``) into ``headers``;
    ``keep``: a ``traceparent`` already there stays (a retried message keeps its trace).
    Nothing is written outside a span. Returns ``headers``."""
    if keep and TRACEPARENT in headers:
        return headers
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    headers.update(carrier)
    return headers


def extract(headers: Mapping[str, Any] | None) -> otel_context.Context:
    """The context an incoming ``traceparent`` continues (an empty one when it is absent
    or invalid: a new trace starts)."""
    return _PROPAGATOR.extract(headers or {}, getter=_GETTER)


def current_ids() -> tuple[str | None, str | None]:
    """``(trace_id, span_id)`` of the current span, lower-case hex; ``(None, None)`` outside
    one."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None, None
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


def inject_request(request: Any) -> None:
    """The current trace on an outgoing partner call: the hook ``api.access_log`` registers
    with ``adapters.http.before_calls`` (kernel does not import adapters)."""
    if TRACEPARENT not in request.headers:
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        for k, v in carrier.items():
            request.headers[k] = v


@contextlib.contextmanager
def server_span(name: str, headers: Mapping[str, Any] | None,
                attributes: Mapping[str, Any] | None = None) -> Iterator[Span]:
    """A server span continuing the request's ``traceparent``, current inside the block."""
    with tracer().start_as_current_span(name, context=extract(headers), kind=SpanKind.SERVER,
                                        attributes=dict(attributes or {})) as span:
        yield span


def _recorded(parent: otel_context.Context) -> bool:
    """Would the SDK record a span under ``parent``? Always with an exporter or a provider
    set by whoever embeds the hub; without one (``none``), only under a sampled caller."""
    if _provider is None or _exporters or _provider.sampler is not _UNSAMPLED:
        return True
    return bool(trace.get_current_span(parent).get_span_context().trace_flags.sampled)


@contextlib.contextmanager
def _unrecorded_span(parent: otel_context.Context) -> Iterator[Span]:
    """What the SDK makes for a span its sampler drops (a non-recording span continuing
    the caller's trace, or a new trace) without the SDK's span machinery: its ids still
    reach the logs and every message published inside. The SDK path cost about 4% of the
    hub's CPU per message in ``bench/pipeline``."""
    assert _provider is not None
    ids = _provider.id_generator
    caller = trace.get_current_span(parent).get_span_context()
    trace_id = caller.trace_id if caller.is_valid else ids.generate_trace_id()
    span = trace.NonRecordingSpan(trace.SpanContext(
        trace_id, ids.generate_span_id(), is_remote=False,
        trace_flags=trace.TraceFlags(trace.TraceFlags.DEFAULT), trace_state=caller.trace_state))
    token = otel_context.attach(trace.set_span_in_context(span, parent))
    try:
        yield span
    finally:
        otel_context.detach(token)


def traced(process: F) -> F:
    """``kernel.runtime.process`` inside a consumer span continuing the message's
    ``traceparent`` header and a log context naming the route, partner and message id
    (the runtime adds the correlation id once the envelope is read: ``kernel.logs.bind``).
    """
    @functools.wraps(process)
    async def wrapper(route: Any, d: Any, deps: Any) -> str:
        parent = extract(d.headers)
        with log_context(route=route.name, partner=route.partner, message_id=d.message_id):
            if not _recorded(parent):
                with _unrecorded_span(parent):
                    return cast(str, await process(route, d, deps))
            attrs = {"messaging.system": "rabbitmq", "messaging.operation": "process",
                     "messaging.destination.name": route.name, "hub.partner": route.partner}
            if d.message_id:
                attrs["messaging.message.id"] = d.message_id
            with tracer().start_as_current_span(f"{route.name} process", context=parent,
                                                kind=SpanKind.CONSUMER,
                                                attributes=attrs) as span:
                outcome = await process(route, d, deps)
                span.set_attribute("hub.outcome", str(outcome))
                return cast(str, outcome)

    return cast(F, wrapper)

"""W3C trace context (kernel.tracing): parse, inject, extract, the runtime's consumer span."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from opentelemetry import trace

from kernel.logs import current_context
from kernel.tracing import (
    TRACEPARENT,
    current_ids,
    extract,
    inject,
    inject_request,
    parse_traceparent,
    setup_tracing,
    traced,
    tracer,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
INCOMING = f"00-{TRACE}-{PARENT}-01"


@pytest.mark.parametrize("value, expected", [
    (INCOMING, (TRACE, PARENT, "01")),
    (INCOMING.upper(), (TRACE, PARENT, "01")),
    (INCOMING.encode(), (TRACE, PARENT, "01")),
    (f"01-{TRACE}-{PARENT}-00-later-fields", (TRACE, PARENT, "00")),  # a later version
    (f"00-{'0' * 32}-{PARENT}-01", None),  # all-zero trace id
    (f"00-{TRACE}-{'0' * 16}-01", None),  # all-zero parent
    (f"ff-{TRACE}-{PARENT}-01", None),  # version ff is invalid
    (f"00-{TRACE}-{PARENT}-01-extra", None),  # version 00 has exactly four fields
    (f"00-{TRACE[:-1]}-{PARENT}-01", None),
    ("", None), (None, None),
])
def test_parse_traceparent(value: Any, expected: tuple[str, str, str] | None) -> None:
    assert parse_traceparent(value) == expected


def test_inject_writes_the_current_span_and_keeps_one_already_there() -> None:
    assert inject({}) == {}  # outside a span: nothing
    with tracer().start_as_current_span("t"):
        trace_id, span_id = current_ids()
        headers = inject({"x-attempt": 1})
        kept = inject({TRACEPARENT: INCOMING})
        replaced = inject({TRACEPARENT: INCOMING}, keep=False)
    assert parse_traceparent(headers[TRACEPARENT])[:2] == (trace_id, span_id)  # type: ignore[index]
    assert headers["x-attempt"] == 1
    assert kept == {TRACEPARENT: INCOMING}
    assert parse_traceparent(replaced[TRACEPARENT])[0] == trace_id  # type: ignore[index]


def test_extract_continues_an_incoming_trace_from_amqp_bytes_or_any_case_http() -> None:
    for carrier in ({TRACEPARENT: INCOMING.encode()}, {"Traceparent": INCOMING}):
        with tracer().start_as_current_span("child", context=extract(carrier)):
            trace_id, span_id = current_ids()
        assert trace_id == TRACE and span_id != PARENT
    with tracer().start_as_current_span("fresh", context=extract({TRACEPARENT: "garbage"})):
        assert current_ids()[0] not in (None, TRACE)  # a new trace starts
    assert current_ids() == (None, None)


def test_an_outgoing_partner_call_gets_the_current_traceparent() -> None:
    request = httpx.Request("POST", "http://core/fsi/api/hub")
    inject_request(request)
    assert TRACEPARENT not in request.headers  # no span, no header
    with tracer().start_as_current_span("call", context=extract({TRACEPARENT: INCOMING})):
        inject_request(request)
    assert parse_traceparent(request.headers[TRACEPARENT])[0] == TRACE  # type: ignore[index]


@dataclass
class FakeRoute:
    name: str = "tax.employee"
    partner: str = "tax"


@dataclass
class FakeDelivery:
    headers: dict[str, Any] = field(default_factory=dict)
    message_id: str | None = "m-1"


async def test_the_runtime_runs_each_delivery_in_a_span_of_its_trace_and_its_log_context(
        ) -> None:
    seen: dict[str, Any] = {}

    @traced
    async def process(route: Any, d: Any, deps: Any) -> str:
        seen["ids"] = current_ids()
        seen["ctx"] = current_context()
        seen["out"] = inject({})
        return "ok"

    assert await process(FakeRoute(), FakeDelivery({TRACEPARENT: INCOMING.encode()}),
                         None) == "ok"
    trace_id, span_id = seen["ids"]
    assert trace_id == TRACE and span_id != PARENT
    assert seen["ctx"] == {"route": "tax.employee", "partner": "tax", "message_id": "m-1"}
    # what it publishes continues the same trace, with its own span as the parent
    assert parse_traceparent(seen["out"][TRACEPARENT]) == (TRACE, span_id, "01")
    assert current_context() == {} and current_ids() == (None, None)

    await process(FakeRoute(), FakeDelivery({}, None), None)  # no traceparent: a new trace
    assert seen["ids"][0] not in (None, TRACE)
    assert "message_id" not in seen["ctx"]


async def test_an_unsampled_caller_continues_its_trace_in_a_span_that_is_not_recorded(
        ) -> None:
    """The runtime's cheap path (no exporter, caller not sampled) gives what the SDK would:
    the caller's trace, a new span id, not sampled, passed on to what is published."""
    seen: dict[str, Any] = {}

    @traced
    async def process(route: Any, d: Any, deps: Any) -> str:
        span = trace.get_current_span()
        seen["recording"] = span.is_recording()
        seen["ids"] = current_ids()
        seen["out"] = inject({})
        return "ok"

    unsampled = f"00-{TRACE}-{PARENT}-00"
    assert await process(FakeRoute(), FakeDelivery({TRACEPARENT: unsampled}), None) == "ok"
    trace_id, span_id = seen["ids"]
    assert (trace_id, seen["recording"]) == (TRACE, False) and span_id not in (None, PARENT)
    assert parse_traceparent(seen["out"][TRACEPARENT]) == (TRACE, span_id, "00")
    assert current_ids() == (None, None)  # detached on the way out


def test_setup_is_idempotent_and_refuses_an_unknown_or_missing_exporter() -> None:
    provider = setup_tracing("none")
    assert setup_tracing("none") is provider
    assert trace.get_tracer_provider() is provider
    with pytest.raises(ValueError, match="one of none, console, otlp"):
        setup_tracing("jaeger")
    try:
        import opentelemetry.exporter.otlp  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match="opentelemetry-exporter-otlp"):
            setup_tracing("otlp")

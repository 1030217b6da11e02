"""kernel.metrics: outcomes counted from the runtime, partner calls labelled by endpoint and
operation, tickers, scrape-time families absent when unread; the text parses."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from broker.topology import Names
from config.settings import HubSettings, PartnerConfig, load_settings
from contracts.envelope import HubMessage, idempotency_key
from contracts.errors import BusinessRejected, PartnerUnavailable
from kernel.health import StoreHealth
from kernel.metrics import METRIC_NAMES, HubMetrics, Scraped, operation_of
from kernel.runtime import Delivery, Outcome, Route, process
from retry.idempotency import MemoryIdempotencyStore
from retry.policy import RetryPolicy
from services.deps import Deps
from storage.journal import TxnUpdate
from tests.support.fakes import Acks, FakeCore, FakeJournal, FakePublisher, FakeTax

FAST = RetryPolicy(max_attempts=3, inprocess_attempts=1, delays_ms=(1_000,))


def _samples(m: HubMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(m.registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def _deps() -> Deps:
    partners = {n: PartnerConfig(protocol="soap" if n == "tax" else "http-json",
                                 endpoint=f"http://{n}.test", policies={"default": FAST})
                for n in ("tax", "core")}
    settings: HubSettings = load_settings(env={}).model_copy(update={"partners": partners})
    return Deps(settings=settings, tax=FakeTax(), core=FakeCore(),
                idem=MemoryIdempotencyStore(), journal=FakeJournal(),  # type: ignore[arg-type]
                publisher=FakePublisher(), owner="w", names=Names("t"),
                health=StoreHealth(first_delay_s=0.001, max_delay_s=0.005, give_up_s=0.2))


def _msg(n: int) -> HubMessage:
    payload = {"n": n}
    return HubMessage(type="test.thing", source="core", target="tax", correlation_id=f"c{n}",
                      entity_key=f"e{n}", payload=payload,
                      idempotency_key=idempotency_key("test.thing", f"bk{n}", payload))


async def _run(deps: Deps, route: Route, msg: HubMessage) -> str:
    acks = Acks()
    return await process(route, Delivery(msg.to_body(), msg.headers(), msg.message_id,
                                         acks.ack, acks.nack), deps)


async def test_each_outcome_of_the_runtime_is_counted_per_route() -> None:
    deps = _deps()
    results: list[Any] = [Outcome(txn=TxnUpdate("c", "test.thing", "bk", "core", "done")),
                          BusinessRejected("T1", "no such unit"),
                          PartnerUnavailable("down")]

    async def handler(msg: HubMessage, _deps: Any) -> Outcome:
        r = results[msg.payload["n"]]
        if isinstance(r, Exception):
            raise r
        return r  # type: ignore[no-any-return]

    route = Route("test.route", ("test.thing",), "tax", handler)
    outcomes = [await _run(deps, route, _msg(n)) for n in (0, 1, 2)]
    outcomes.append(await _run(deps, route, _msg(0)))  # the same fact again
    assert outcomes == ["ok", "dead", "retry", "duplicate"]
    s = _samples(deps.metrics)
    key = "hub_messages_total"
    assert s[(key, (("outcome", "delivered"), ("route", "test.route")))] == 1
    assert s[(key, (("outcome", "dead"), ("route", "test.route")))] == 1
    assert s[(key, (("outcome", "retry"), ("route", "test.route")))] == 1
    assert s[(key, (("outcome", "duplicate"), ("route", "test.route")))] == 1
    assert deps.metrics.rates()["test.route"]["delivered"] == pytest.approx(1 / 60, abs=1e-3)


async def test_process_without_metrics_on_its_deps_still_works() -> None:
    """A fake deps without ``metrics`` (the kernel's own tests): nothing is counted, no error."""
    class Bare:
        def __getattr__(self, name: str) -> Any:
            if name == "metrics":
                raise AttributeError(name)
            return getattr(real, name)

    real = _deps()

    async def handler(_m: HubMessage, _d: Any) -> Outcome:
        return Outcome()

    route = Route("bare.route", ("test.thing",), "tax", handler)
    assert await _run(Bare(), route, _msg(5)) == "ok"  # type: ignore[arg-type]
    assert not any(k[0] == "hub_messages_total" for k in _samples(real.metrics))


def test_partner_calls_are_labelled_by_the_longest_endpoint_and_the_operation() -> None:
    m = HubMetrics()
    m.watch_partners({"http://h:1": "core", "http://h:2/tax/ws": "tax",
                      "http://h:3/departments/veterans": "difficulty_veterans",
                      "http://h:3": "other_on_3"})
    core = httpx.Request("POST", "http://h:1/hub", json={"infno": "H2001", "input": {}})
    tax = httpx.Request("POST", "http://h:2/tax/ws", content=b"<x/>",
                        headers={"SOAPAction": '"http://ns.example/EnrollEmployee"'})
    dept = httpx.Request("POST", "http://h:3/departments/veterans/status/123456")
    stranger = httpx.Request("GET", "http://elsewhere:9/x")
    assert operation_of(core) == "H2001"
    assert operation_of(tax) == "EnrollEmployee"
    assert operation_of(dept) == "POST /departments/veterans/status/:id"
    m.on_http_call(core, 0.02, 200)
    m.on_http_call(core, 0.03, 503)
    m.on_http_call(tax, 0.5, None)
    m.on_http_call(dept, 0.01, 200)
    m.on_http_call(stranger, 0.01, 200)
    s = _samples(m)
    assert s[("hub_partner_call_seconds_count", (("operation", "H2001"), ("partner", "core")))] == 2
    assert s[("hub_partner_call_seconds_count",
              (("operation", "EnrollEmployee"), ("partner", "tax")))] == 1
    assert s[("hub_partner_call_seconds_count", (
        ("operation", "POST /departments/veterans/status/:id"),
        ("partner", "difficulty_veterans")))] == 1
    assert s[("hub_partner_call_failures_total",
              (("kind", "5xx"), ("operation", "H2001"), ("partner", "core")))] == 1
    assert s[("hub_partner_call_failures_total",
              (("kind", "error"), ("operation", "EnrollEmployee"), ("partner", "tax")))] == 1
    partners = {dict(k[1]).get("partner") for k in s if k[0].startswith("hub_partner")}
    assert "other_on_3" not in partners and None not in partners  # the stranger: not ours


async def test_a_ticker_records_its_runs_and_failures() -> None:
    m = HubMetrics()
    calls = []

    async def check() -> int:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("store down")
        return 1

    run = m.ticked("union-clock", 30.0, check)
    assert await run() == 1
    with pytest.raises(RuntimeError):
        await run()
    t = m.tickers["union-clock"]
    assert (t.runs, t.failures, t.ok) == (2, 1, False)
    assert t.last_run is not None and t.next_due == t.last_run + 30.0
    s = _samples(m)
    assert s[("hub_ticker_last_run_timestamp", (("ticker", "union-clock"),))] == t.last_run
    assert s[("hub_ticker_failures_total", (("ticker", "union-clock"),))] == 1


def test_scrape_families_are_absent_until_read_and_every_name_is_known() -> None:
    m = HubMetrics()
    assert not any(k[0] in ("hub_queue_depth", "hub_dead_letters") for k in _samples(m))
    m.scraped = Scraped(
        dead_letters={"core.sync": 2}, queue_depth={"core.sync": 7}, queue_consumers={
            "core.sync": 1}, breakers=[{"partner": "tax", "state": "open", "opened_count": 3},
                                      {"partner": "core", "state": "closed",
                                       "opened_count": 0}],
        job_progress={"resend": 0.5}, jobs_running={"resend": 1},
        deadlines={("union", "past"): 1, ("union", "near"): 0}, sync_failures={
            "difficulty": 4}, up={"broker": True, "database": False})
    m.message("core.sync", "ok")
    m.http_request("/metrics", 200)
    s = _samples(m)
    assert s[("hub_queue_depth", (("route", "core.sync"),))] == 7
    assert s[("hub_dead_letters", (("route", "core.sync"),))] == 2
    assert s[("hub_breaker_open", (("partner", "tax"),))] == 1
    assert s[("hub_breaker_open", (("partner", "core"),))] == 0
    assert s[("hub_breaker_opened_total", (("partner", "tax"),))] == 3
    assert s[("hub_job_progress", (("kind", "resend"),))] == 0.5
    assert s[("hub_deadlines", (("flow", "union"), ("state", "past")))] == 1
    assert s[("hub_sync_failures_total", (("flow", "difficulty"),))] == 4
    assert s[("hub_up", (("dependency", "database"),))] == 0
    assert s[("hub_http_requests_total", (("path_template", "/metrics"), ("status", "200")))] == 1
    names = {k[0] for k in s if not k[0].endswith("_created")}
    assert names <= METRIC_NAMES, names - METRIC_NAMES
    assert all(n.startswith("hub_") for n in names)

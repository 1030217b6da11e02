"""The hub's Prometheus metrics, in a registry each hub owns (tests build many hubs in one
process; the global registry would refuse the second).

Counted as it happens:

- ``hub_messages_total{route,outcome}``: each delivery's outcome, as
  ``kernel.runtime.process`` returns it (its ``ok`` as ``delivered``; rejected, retry,
  dead, duplicate, inflight, waiting, breaker_open, nacked), via the ``counted`` decorator;
- ``hub_partner_call_seconds{partner,operation}``: every outbound HTTP call of a
  ``adapters.http.BoundedTransport`` (every partner client), told through
  ``adapters.http.observe_calls``; the partner is found by the call's URL among this hub's
  configured endpoints (a call to no endpoint of this hub is not counted), the operation
  from the SOAPAction, the national ``infno``, else the method and the path;
  ``hub_partner_call_failures_total`` counts the calls that raised or answered 4xx/5xx;
- ``hub_http_requests_total{path_template,status}``: the hub's own API (``api.metrics``);
- ``hub_ticker_last_run_timestamp{ticker}``: the hub's periodic checks (``ticked``).

Read at scrape (``services.live_state`` refreshes ``scraped`` first, with a short cache
and timeouts, so a scrape never hangs on a store that is down): ``hub_dead_letters``,
``hub_queue_depth``, ``hub_queue_consumers``, ``hub_breaker_open``,
``hub_breaker_opened_total``, ``hub_job_progress``, ``hub_deadlines``,
``hub_sync_failures_total``, ``hub_up``. A value that could not be read is absent, and
``hub_up{dependency}`` says 0.
"""

from __future__ import annotations

import functools
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["CALL_BUCKETS", "METRIC_NAMES", "HubMetrics", "Scraped", "TickerState", "counted",
           "operation_of"]

CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
RATE_WINDOW_S = 60
MAX_OPERATIONS = 64
"""Distinct operation labels per partner; more (a path with ids in it) count as ``other``."""

METRIC_NAMES = frozenset({
    "hub_messages_total", "hub_partner_call_seconds_bucket", "hub_partner_call_seconds_count",
    "hub_partner_call_seconds_sum", "hub_partner_call_failures_total",
    "hub_http_requests_total", "hub_ticker_last_run_timestamp", "hub_ticker_failures_total",
    "hub_dead_letters", "hub_queue_depth", "hub_queue_consumers", "hub_breaker_open",
    "hub_breaker_opened_total", "hub_job_progress", "hub_jobs_running", "hub_deadlines",
    "hub_sync_failures_total", "hub_up"})
"""Every sample name the hub exposes (the alert rules may use only these)."""

_INFNO = re.compile(rb'"infno"\s*:\s*"([A-Za-z0-9_]{1,16})"')
_ID_SEGMENT = re.compile(r"[0-9]|^[A-Za-z0-9_-]{24,}$")

F = TypeVar("F", bound=Callable[..., Awaitable[str]])


def operation_of(request: Any) -> str:
    """What a partner call does, with few distinct values: the SOAP action's last part, the
    national ``infno`` of a JSON body, else ``METHOD /path`` with id-like segments as
    ``:id``."""
    action = request.headers.get("soapaction")
    if action:
        return re.split(r"[/#]", action.strip().strip('"'))[-1][:40] or "soap"
    try:
        head = bytes(request.content[:512])
    except Exception:  # a streamed body (not read): the path says enough
        head = b""
    if m := _INFNO.search(head):
        return m.group(1).decode()
    parts = [":id" if _ID_SEGMENT.search(p) else p for p in request.url.path.split("/")]
    return f"{request.method} {'/'.join(parts)[:60] or '/'}"


@dataclass
class TickerState:
    """One periodic check of the hub: when it last ran, how it ended, when it is due."""

    name: str
    every_s: float
    last_run: float | None = None
    """Unix time its last run ended."""
    ok: bool | None = None
    runs: int = 0
    failures: int = 0

    @property
    def next_due(self) -> float | None:
        return None if self.last_run is None else self.last_run + self.every_s


@dataclass
class Scraped:
    """Values read at scrape by ``services.live_state``; None: could not be read."""

    dead_letters: dict[str, int] | None = None
    queue_depth: dict[str, int] | None = None
    queue_consumers: dict[str, int] | None = None
    breakers: list[dict[str, Any]] = field(default_factory=list)
    job_progress: dict[str, float] | None = None
    jobs_running: dict[str, int] | None = None
    deadlines: dict[tuple[str, str], int] | None = None
    sync_failures: dict[str, int] | None = None
    up: dict[str, bool] = field(default_factory=dict)


class _ScrapeCollector(Collector):
    def __init__(self, metrics: HubMetrics) -> None:
        self._m = metrics

    def collect(self) -> Iterable[Metric]:
        s = self._m.scraped
        yield from _gauge("hub_dead_letters", "dead letters parked and not yet retried or "
                          "archived, per route", ["route"], s.dead_letters)
        yield from _gauge("hub_queue_depth", "messages ready in each route's work queue",
                          ["route"], s.queue_depth)
        yield from _gauge("hub_queue_consumers", "consumers of each route's work queue",
                          ["route"], s.queue_consumers)
        yield from _gauge("hub_breaker_open", "1 while the partner's circuit breaker is open "
                          "or half-open", ["partner"],
                          {b["partner"]: int(b["state"] != "closed") for b in s.breakers})
        opened = CounterMetricFamily("hub_breaker_opened", "times the partner's breaker "
                                     "opened", labels=["partner"])
        for b in s.breakers:
            opened.add_metric([b["partner"]], b["opened_count"])
        yield opened
        yield from _gauge("hub_job_progress", "done/total of the running jobs of a kind",
                          ["kind"], s.job_progress)
        yield from _gauge("hub_jobs_running", "running or queued jobs of a kind", ["kind"],
                          s.jobs_running)
        if s.deadlines is not None:
            g = GaugeMetricFamily("hub_deadlines", "open items whose deadline is near or "
                                  "past, per flow", labels=["flow", "state"])
            for (flow, state), n in sorted(s.deadlines.items()):
                g.add_metric([flow, state], n)
            yield g
        if s.sync_failures is not None:
            c = CounterMetricFamily("hub_sync_failures", "failed syncs recorded (the seed's "
                                    "提醒预警, 003 line 1482), per flow", labels=["flow"])
            for flow, n in sorted(s.sync_failures.items()):
                c.add_metric([flow], n)
            yield c
        yield from _gauge("hub_up", "1 when the dependency answered the last scrape",
                          ["dependency"], {k: int(v) for k, v in s.up.items()})
        last = GaugeMetricFamily("hub_ticker_last_run_timestamp", "unix time the periodic "
                                 "check last ended", labels=["ticker"])
        failed = CounterMetricFamily("hub_ticker_failures", "runs of the periodic check that "
                                     "raised", labels=["ticker"])
        for t in self._m.tickers.values():
            if t.last_run is not None:
                last.add_metric([t.name], t.last_run)
            failed.add_metric([t.name], t.failures)
        yield last
        yield failed


def _gauge(name: str, doc: str, labels: list[str],
           values: Mapping[str, float] | None) -> Iterator[Metric]:
    if values is None:
        return
    g = GaugeMetricFamily(name, doc, labels=labels)
    for key, v in sorted(values.items()):
        g.add_metric([key], v)
    yield g


class HubMetrics:
    """The registry and the hub's counters; one per ``services.deps.Deps``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.messages = Counter("hub_messages", "deliveries by route and outcome",
                                ["route", "outcome"], registry=r)
        self.partner_calls = Histogram("hub_partner_call_seconds", "outbound partner calls "
                                       "(until the answer is read)", ["partner", "operation"],
                                       buckets=CALL_BUCKETS, registry=r)
        self.partner_failures = Counter("hub_partner_call_failures", "partner calls that "
                                        "raised or answered 4xx/5xx",
                                        ["partner", "operation", "kind"], registry=r)
        self.http_requests = Counter("hub_http_requests", "the hub's own HTTP API",
                                     ["path_template", "status"], registry=r)
        self.tickers: dict[str, TickerState] = {}
        self.scraped = Scraped()
        self._prefixes: list[tuple[str, str]] = []
        self._ops: dict[str, set[str]] = {}
        self._buckets: dict[tuple[str, str], deque[list[int]]] = {}
        r.register(_ScrapeCollector(self))

    # -- messages ------------------------------------------------------------------------

    def message(self, route: str, outcome: str) -> None:
        outcome = "delivered" if outcome == "ok" else outcome
        self.messages.labels(route, outcome).inc()
        sec = int(time.monotonic())
        dq = self._buckets.setdefault((route, outcome), deque())
        if dq and dq[-1][0] == sec:
            dq[-1][1] += 1
        else:
            dq.append([sec, 1])
        while dq and dq[0][0] <= sec - RATE_WINDOW_S:
            dq.popleft()

    def rates(self, window_s: int = RATE_WINDOW_S) -> dict[str, dict[str, float]]:
        """Per route, each outcome per second over the last ``window_s`` (at most a minute:
        one-second counts kept in memory)."""
        window_s = max(1, min(window_s, RATE_WINDOW_S))
        since = int(time.monotonic()) - window_s
        out: dict[str, dict[str, float]] = {}
        for (route, outcome), dq in list(self._buckets.items()):
            n = sum(c for s, c in dq if s > since)
            if n:
                out.setdefault(route, {})[outcome] = round(n / window_s, 3)
        return out

    # -- partner calls -------------------------------------------------------------------

    def watch_partners(self, endpoints: Mapping[str, str]) -> None:
        """``endpoints``: URL prefix -> partner name; the longest matching prefix wins."""
        self._prefixes = sorted(((u.rstrip("/"), p) for u, p in endpoints.items() if u),
                                key=lambda x: -len(x[0]))

    def partner_of(self, url: str) -> str | None:
        for prefix, partner in self._prefixes:
            if url == prefix or (url.startswith(prefix) and url[len(prefix)] in "/?#"):
                return partner
        return None

    def on_http_call(self, request: Any, seconds: float, status: int | None) -> None:
        """``adapters.http.CallObserver``: a call to one of this hub's partners."""
        partner = self.partner_of(str(request.url))
        if partner is None:
            return
        op = operation_of(request)
        seen = self._ops.setdefault(partner, set())
        if op not in seen:
            if len(seen) >= MAX_OPERATIONS:
                op = "other"
            seen.add(op)
        self.partner_calls.labels(partner, op).observe(seconds)
        if status is None or status >= 400:
            kind = "error" if status is None else f"{status // 100}xx"
            self.partner_failures.labels(partner, op, kind).inc()

    # -- tickers and the API -------------------------------------------------------------

    def ticked(self, name: str, every_s: float,
               check: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
        """``check`` recording its runs (``hub_ticker_last_run_timestamp``, live state)."""
        state = self.tickers[name] = TickerState(name, every_s)

        async def run() -> Any:
            try:
                result = await check()
                state.ok = True
                return result
            except Exception:
                state.ok, state.failures = False, state.failures + 1
                raise
            finally:
                state.runs += 1
                state.last_run = time.time()

        return run

    def http_request(self, path_template: str, status: int) -> None:
        self.http_requests.labels(path_template, str(status)).inc()


def counted(process: F) -> F:
    """``kernel.runtime.process`` counting each outcome in ``deps.metrics`` when the deps
    have one (a test's fake deps may not)."""
    @functools.wraps(process)
    async def wrapper(route: Any, d: Any, deps: Any) -> str:
        outcome = await process(route, d, deps)
        metrics = getattr(deps, "metrics", None)
        if isinstance(metrics, HubMetrics):
            metrics.message(route.name, outcome)
        return outcome

    return cast(F, wrapper)

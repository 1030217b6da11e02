"""kernel.runtime with the circuit breaker: every half-open probe resolves (item 8).

A probe that ends any other way than "our partner answered" or "our partner failed"
used to leave the breaker half-open with its one probe out forever, and every lane
of that partner answered ``breaker_open`` until a restart. Here the probe is a real
``process`` call on a core lane, ending each possible way; after it, the breaker is
open (or closed) and a new probe goes after ``open_s``.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

import pytest

from broker.topology import Names
from config.settings import PartnerConfig, load_settings
from contracts.envelope import HubMessage, idempotency_key
from contracts.errors import BusinessRejected, PartnerTimeout, PartnerUnavailable
from kernel.runtime import Delivery, Outcome, Route, process
from retry.breaker import Breaker, BreakerPolicy, Breakers, State
from retry.idempotency import MemoryIdempotencyStore
from retry.policy import RetryPolicy
from services.deps import Deps

OPEN_S = 5.0
ONE_TRY = RetryPolicy(max_attempts=5, inprocess_attempts=1, delays_ms=(1_000,))
_n = itertools.count()


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Publisher:
    def __init__(self) -> None:
        self.delayed: list[tuple[str, int]] = []
        self.parked: list[str] = []
        self.published: list[HubMessage] = []

    async def publish(self, msg: HubMessage) -> None:
        self.published.append(msg)

    async def delay(self, msg: HubMessage, queue: str, delay_ms: int,
                    headers: dict[str, Any]) -> None:
        self.delayed.append((queue, delay_ms))

    async def park(self, body: bytes, queue: str, headers: dict[str, Any]) -> None:
        self.parked.append(queue)

    async def requeue(self, body: bytes, queue: str, headers: dict[str, Any]) -> None:
        pass


class Journal:
    def __init__(self) -> None:
        self.items: list[Any] = []

    async def write(self, *items: Any) -> None:
        self.items.extend(items)

    async def request(self, serial: str, *, wait_s: float = 0.0) -> None:
        return None


@dataclass
class Handler:
    """Raises (or returns) what the test says, counting the calls that reached it."""

    result: BaseException | Outcome = field(default_factory=Outcome)
    calls: int = 0

    async def __call__(self, msg: HubMessage, deps: Any) -> Outcome:
        self.calls += 1
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result


@dataclass
class Rig:
    deps: Deps
    clock: Clock
    handler: Handler
    route: Route

    def breaker(self, partner: str = "core") -> Breaker:
        return self.deps.breakers.get(partner)

    async def run(self) -> str:
        payload = {"n": next(_n)}
        msg = HubMessage(type="test.thing", source="channel", target="core",
                         correlation_id=f"c{payload['n']}", entity_key="",
                         idempotency_key=idempotency_key("test.thing", "bk", payload),
                         payload=payload)

        async def noop() -> None:
            pass

        d = Delivery(msg.to_body(), msg.headers(), msg.message_id, noop, noop)
        return await process(self.route, d, self.deps)

    def open_core(self) -> None:
        """Core failed: its breaker is open; after open_s the next call is the probe."""
        self.breaker("core").failure()
        assert self.breaker("core").state is State.OPEN
        self.clock.t += OPEN_S


@pytest.fixture
def rig() -> Rig:
    settings = load_settings(env={}, settings_file="/nonexistent/hub.toml").model_copy(update={
        "partners": {name: PartnerConfig(protocol="http-json", endpoint=f"http://{name}",
                                         policies={"default": ONE_TRY})
                     for name in ("core", "tax")}})
    clock = Clock()
    breakers = Breakers(BreakerPolicy(threshold=1, window_s=60, open_s=OPEN_S,
                                      probe_timeout_s=60))
    for partner in ("core", "tax"):
        breakers.get(partner).clock = clock
    handler = Handler()
    deps = Deps(settings=settings, tax=None, core=None,  # type: ignore[arg-type]
                idem=MemoryIdempotencyStore(), journal=Journal(),  # type: ignore[arg-type]
                publisher=Publisher(), owner="w1", names=Names("t"), breakers=breakers)
    # A core lane that also asks tax (like the channel intake).
    return Rig(deps, clock, handler, Route("test.intake", ("test.thing",), "core", handler))


async def _next_probe_goes_through(rig: Rig) -> None:
    """Not frozen: still resting just now, a new probe after open_s, success closes."""
    rig.handler.result = Outcome()
    calls = rig.handler.calls
    assert await rig.run() == "breaker_open"
    rig.clock.t += OPEN_S
    assert await rig.run() == "ok"
    assert rig.handler.calls == calls + 1
    assert rig.breaker("core").state is State.CLOSED


async def test_a_probe_failing_with_another_partners_error_is_inconclusive(rig: Rig) -> None:
    rig.open_core()
    rig.handler.result = PartnerTimeout("tax slow", partner="tax")
    assert await rig.run() == "retry"
    assert rig.handler.calls == 1
    core = rig.breaker("core")
    assert core.state is State.OPEN and not core.probing  # released, not stuck half-open
    assert core.opened_count == 1  # inconclusive: core was not found failing again
    assert rig.breaker("tax").state is State.OPEN  # tax's failure counted against tax
    await _next_probe_goes_through(rig)


async def test_a_probe_refused_by_another_partner_is_inconclusive(rig: Rig) -> None:
    rig.open_core()
    rig.handler.result = BusinessRejected("TX1", "no such person", partner="tax")
    assert await rig.run() == "dead"
    assert rig.breaker("core").state is State.OPEN and not rig.breaker("core").probing
    await _next_probe_goes_through(rig)


async def test_a_probe_raising_an_unexpected_exception_counts_as_a_failure(rig: Rig) -> None:
    rig.open_core()
    rig.handler.result = KeyError("surprise")
    assert await rig.run() == "retry"
    core = rig.breaker("core")
    assert core.state is State.OPEN and core.opened_count == 2
    await _next_probe_goes_through(rig)


async def test_a_cancelled_probe_releases_the_half_open_state(rig: Rig) -> None:
    rig.open_core()
    rig.handler.result = asyncio.CancelledError()
    with pytest.raises(asyncio.CancelledError):
        await rig.run()
    assert rig.breaker("core").state is State.OPEN and not rig.breaker("core").probing
    await _next_probe_goes_through(rig)


@pytest.mark.parametrize(("result", "state", "outcome"), [
    (PartnerUnavailable("core down", partner="core"), State.OPEN, "retry"),
    (BusinessRejected("C1", "refused", partner="core"), State.CLOSED, "dead"),
    (Outcome(), State.CLOSED, "ok"),
])
async def test_a_probe_of_our_own_partner_resolves_by_its_answer(
        rig: Rig, result: BaseException | Outcome, state: State, outcome: str) -> None:
    rig.open_core()
    rig.handler.result = result
    assert await rig.run() == outcome
    assert rig.breaker("core").state is state and not rig.breaker("core").probing


async def test_an_ordinary_call_failing_elsewhere_does_not_touch_a_closed_breaker(
        rig: Rig) -> None:
    rig.handler.result = PartnerTimeout("tax slow", partner="tax")
    assert await rig.run() == "retry"
    assert rig.breaker("core").state is State.CLOSED
    rig.handler.result = RuntimeError("bug")
    assert await rig.run() == "retry"
    assert rig.breaker("core").state is State.CLOSED  # a bug is not an outage


async def test_a_probe_never_reported_times_out_and_the_lanes_go_on(rig: Rig) -> None:
    """Belt and braces: a probe lost outside the runtime (allow() and nothing after)."""
    rig.open_core()
    assert rig.breaker("core").allow()  # the probe is out and never comes back
    assert await rig.run() == "breaker_open"
    rig.clock.t += 60.0  # probe_timeout_s: back to open
    assert await rig.run() == "breaker_open"
    rig.clock.t += OPEN_S
    assert await rig.run() == "ok"
    assert rig.breaker("core").state is State.CLOSED and rig.breaker("core").lost_probes == 1

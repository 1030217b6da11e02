"""kernel.runtime.process: one delivery -> exactly one outcome, with in-memory fakes.

The generic runtime is driven through a small test route; the real employee routes
(routes/tax_submit.py, routes/tax_results.py) run through it at the end with fake tax
and core ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from broker.topology import Names
from config.settings import HubSettings, PartnerConfig, load_settings
from contracts.employee import EmployeeEnrollment, SyncStatusUpdate
from contracts.envelope import (
    HEADER_ATTEMPT,
    HEADER_FIRST_SEEN,
    HEADER_HISTORY,
    HubMessage,
    idempotency_key,
)
from contracts.errors import (
    BusinessRejected,
    HubError,
    PartnerTimeout,
    PartnerUnavailable,
    PermanentError,
    TransientError,
    ValidationFailed,
)
from contracts.ids import make_credit_code, make_id_number
from contracts.messages import ENROLL, FEEDBACK, SYNC, partner_serial, sync_message
from kernel.health import StoreHealth
from kernel.runtime import (
    HEADER_REASON,
    HEADER_REASON_CODE,
    HEADER_ROUTE,
    Delivery,
    Outcome,
    Route,
    process,
)
from retry.idempotency import BeginState, MemoryIdempotencyStore
from retry.policy import RetryPolicy
from routes.lanes import ROUTES as LANES
from routes.tax_results import RESULT_ROUTES, feedback_to_core, sync_to_core
from routes.tax_submit import submit_to_tax
from routes.tax_submit import tax_failed as enroll_failed
from services.deps import Deps
from storage.journal import TxnUpdate
from tests.support.fakes import Acks, FakeCore, FakeJournal, FakePublisher, FakeTax
from tests.support.messages import child

MAX_ATTEMPTS = 3
# Delays deliberately between the tiers: the runtime must round them up to a declared tier.
FAST = RetryPolicy(max_attempts=MAX_ATTEMPTS, inprocess_attempts=1, delays_ms=(1_500, 7_000))
TIERS = (1_000, 5_000, 30_000, 120_000, 600_000)

# -- a world of fakes (tests/support/fakes.py) ------------------------------------------


@dataclass
class World:
    deps: Deps
    publisher: FakePublisher
    journal: FakeJournal
    idem: MemoryIdempotencyStore
    tax: FakeTax
    core: FakeCore
    acks: list[Acks] = field(default_factory=list)

    def delivery(self, msg: HubMessage | bytes, headers: dict[str, Any] | None = None,
                 message_id: str | None = None) -> tuple[Delivery, Acks]:
        acks = Acks()
        self.acks.append(acks)
        if isinstance(msg, HubMessage):
            body = msg.to_body()
            headers = msg.headers() if headers is None else headers
            message_id = message_id or msg.message_id
        else:
            body = msg
        return Delivery(body, dict(headers or {}), message_id, acks.ack, acks.nack), acks

    async def run(self, route: Route, msg: HubMessage | bytes,
                  headers: dict[str, Any] | None = None) -> tuple[str, Acks]:
        d, acks = self.delivery(msg, headers)
        return await process(route, d, self.deps), acks


def _settings(**update: Any) -> HubSettings:
    partners = {
        "tax": PartnerConfig(protocol="soap", endpoint="http://tax.test/ws",
                             policies={"default": FAST}),
        "core": PartnerConfig(protocol="http-json", endpoint="http://core.test",
                              policies={"default": FAST}),
    }
    return load_settings(env={}).model_copy(
        update={"partners": partners, "delay_tiers_ms": TIERS} | update)


@pytest.fixture
def world() -> World:
    publisher, journal, idem = FakePublisher(), FakeJournal(), MemoryIdempotencyStore()
    tax, core = FakeTax(), FakeCore()
    deps = Deps(settings=_settings(), tax=tax, core=core, idem=idem,
                journal=journal,  # type: ignore[arg-type]
                publisher=publisher, owner="worker-1", names=Names("t"),
                health=StoreHealth(first_delay_s=0.001, max_delay_s=0.005, give_up_s=0.2))
    return World(deps, publisher, journal, idem, tax, core)


# -- a test route ---------------------------------------------------------------------

QUEUE = "t.q.test.route"


def _msg(payload: dict[str, Any] | None = None, **over: Any) -> HubMessage:
    payload = {"n": 1} if payload is None else payload
    base: dict[str, Any] = {
        "type": "test.thing", "source": "core", "target": "tax", "correlation_id": "corr-1",
        "entity_key": "ent-1", "idempotency_key": idempotency_key("test.thing", "bk", payload),
        "payload": payload,
    }
    return HubMessage(**(base | over))


class Script:
    """A handler that plays a list of results (an Outcome, or an exception to raise)."""

    def __init__(self, *results: Outcome | BaseException) -> None:
        self.results = list(results)
        self.calls: list[HubMessage] = []

    async def __call__(self, msg: HubMessage, deps: Deps) -> Outcome:
        self.calls.append(msg)
        r = self.results[min(len(self.calls), len(self.results)) - 1]
        if isinstance(r, BaseException):
            raise r
        return r


def _teller(calls: list[HubError]) -> Callable[[HubMessage, HubError, Deps],
                                               Awaitable[Outcome | None]]:
    async def on_failure(msg: HubMessage, exc: HubError, deps: Deps) -> Outcome | None:
        calls.append(exc)
        note = child(msg, type="core.notice", source="hub", target="core",
                         payload={"code": exc.code}, business_key="bk")
        return Outcome(outputs=(note,), txn=TxnUpdate(msg.correlation_id, msg.type, "bk",
                                                      "core", "rejected", exc.code))
    return on_failure


def _route(handler: Script, on_failure: Any = None, partner: str = "tax") -> Route:
    return Route("test.route", ("test.thing",), partner, handler, on_failure)


def _ok(*outputs: HubMessage) -> Outcome:
    return Outcome(outputs=outputs, txn=TxnUpdate("corr-1", "test.thing", "bk", "core", "done"),
                   detail="fine", result={"outcome": "ok", "n": 1})


# -- delivered ------------------------------------------------------------------------


async def test_success_publishes_records_acks_and_completes_the_key(world: World) -> None:
    msg = _msg()
    out = child(msg, type="tax.next", source="hub", target="tax", payload={"x": 1},
                    business_key="bk")
    handler = Script(_ok(out))
    result, acks = await world.run(_route(handler), msg)
    assert result == "ok"
    assert (acks.acked, acks.nacked) == (1, 0)
    assert world.publisher.published == [out]
    assert world.publisher.delayed == world.publisher.parked == []
    assert world.journal.outcomes() == ["ok"]
    log = world.journal.logs()[0]
    assert (log.message_id, log.correlation_id, log.hop, log.partner, log.detail) == \
        (msg.message_id, "corr-1", "test.route", "tax", "fine")
    assert [t.status for t in world.journal.txns()] == ["done"]
    begin = await world.idem.begin(msg.idempotency_key, "worker-2", 60)
    assert begin.state is BeginState.DONE
    assert begin.result == {"outcome": "ok", "n": 1, "correlation_id": msg.correlation_id}


async def test_a_second_delivery_of_the_same_envelope_is_a_duplicate(world: World) -> None:
    msg = _msg()
    handler = Script(_ok())
    route = _route(handler)
    assert (await world.run(route, msg))[0] == "ok"
    result, acks = await world.run(route, msg)
    assert result == "duplicate"
    assert acks.acked == 1
    assert len(handler.calls) == 1
    assert world.journal.outcomes() == ["ok", "duplicate"]
    assert world.journal.logs()[1].detail == {"outcome": "ok", "n": 1,
                                              "correlation_id": msg.correlation_id}


async def test_the_same_fact_in_a_new_envelope_is_a_duplicate_too(world: World) -> None:
    handler = Script(_ok())
    route = _route(handler)
    first, again = _msg(), _msg()
    assert first.message_id != again.message_id
    assert [(await world.run(route, m))[0] for m in (first, again)] == ["ok", "duplicate"]
    assert len(handler.calls) == 1


async def test_a_blip_is_retried_in_process_without_a_broker_round_trip(world: World) -> None:
    quick = FAST.model_copy(update={"inprocess_attempts": 3, "inprocess_min_s": 0.001,
                                    "inprocess_max_s": 0.002})
    world.deps = dataclasses.replace(world.deps, settings=_settings(partners={
        "tax": PartnerConfig(protocol="soap", endpoint="http://t", policies={"default": quick}),
        "core": PartnerConfig(protocol="http-json", endpoint="http://c")}))
    handler = Script(PartnerUnavailable("reset"), PartnerUnavailable("reset"), _ok())
    result, _ = await world.run(_route(handler), _msg())
    assert result == "ok"
    assert len(handler.calls) == 3
    assert world.publisher.delayed == []


async def test_a_route_of_an_unconfigured_partner_uses_the_default_policy(world: World) -> None:
    route = _route(Script(_ok()), partner="nobody")
    assert route.policy(world.deps, "test.thing") == RetryPolicy()
    assert (await world.run(route, _msg()))[0] == "ok"


# -- retrying -------------------------------------------------------------------------


@pytest.mark.parametrize(("attempt", "tier"), [(0, 5_000), (1, 30_000)])
async def test_transient_error_is_delayed_with_the_attempt_incremented(
        world: World, attempt: int, tier: int) -> None:
    msg = _msg(attempt=attempt)
    handler = Script(PartnerTimeout("no answer in 5s", partner="tax"))
    result, acks = await world.run(_route(handler), msg)
    assert result == "retry"
    assert (acks.acked, acks.nacked) == (1, 0)
    assert world.publisher.published == world.publisher.parked == []
    [(sent, queue, delay_ms, headers)] = world.publisher.delayed
    assert queue == QUEUE
    assert delay_ms == tier
    assert delay_ms in world.deps.settings.delay_tiers_ms
    assert headers[HEADER_ATTEMPT] == attempt + 1
    assert sent.attempt == attempt + 1
    assert sent.message_id == msg.message_id
    assert sent.idempotency_key == msg.idempotency_key
    assert headers[HEADER_FIRST_SEEN] == msg.created_at.isoformat()
    [failure] = json.loads(headers[HEADER_HISTORY])
    assert (failure["attempt"], failure["code"], failure["reason"]) == \
        (attempt + 1, "TIMEOUT", "no answer in 5s")
    assert world.journal.outcomes() == ["retry"]
    [txn] = world.journal.txns()
    assert (txn.status, txn.reason_code, txn.attempts, txn.only_if_exists) == \
        ("retrying", "TIMEOUT", attempt + 1, True)
    # the key is released so that the retry can take it
    assert (await world.idem.begin(msg.idempotency_key, "worker-2", 60)).state is BeginState.NEW


async def test_the_attempt_header_is_authoritative_over_the_body(world: World) -> None:
    msg = _msg(attempt=0)
    await world.run(_route(Script(TransientError("x"))), msg, msg.headers() | {HEADER_ATTEMPT: 1})
    assert world.publisher.delayed[0][3][HEADER_ATTEMPT] == 2


async def test_failure_history_accumulates_across_retries(world: World) -> None:
    route = _route(Script(PartnerTimeout("slow"), PartnerUnavailable("HTTP 503")))
    await world.run(route, _msg())
    sent, _, _, headers = world.publisher.delayed[-1]
    await world.run(route, sent, headers)
    history = json.loads(world.publisher.delayed[-1][3][HEADER_HISTORY])
    assert [(h["attempt"], h["code"]) for h in history] == [(1, "TIMEOUT"), (2, "UNAVAILABLE")]
    assert world.publisher.delayed[-1][3][HEADER_FIRST_SEEN] == headers[HEADER_FIRST_SEEN]


# -- dead-lettered after attempts or age ----------------------------------------------


async def test_exhausted_attempts_park_and_tell_the_originator(world: World) -> None:
    msg = _msg()
    told: list[HubError] = []
    route = _route(Script(PartnerTimeout("no answer", partner="tax")), _teller(told))
    result, acks = await world.run(route, msg, msg.headers() | {HEADER_ATTEMPT: MAX_ATTEMPTS - 1})
    assert result == "dead"
    assert acks.acked == 1
    assert world.publisher.delayed == []
    [(body, queue, headers)] = world.publisher.parked
    assert queue == QUEUE
    assert headers[HEADER_REASON] == "no answer"
    assert headers[HEADER_REASON_CODE] == "TIMEOUT"
    assert headers[HEADER_ROUTE] == "test.route"
    assert headers[HEADER_ATTEMPT] == MAX_ATTEMPTS
    assert HubMessage.model_validate_json(body).attempt == MAX_ATTEMPTS
    # the originator is told through the route's on_failure outputs
    assert [type(e) for e in told] == [PartnerTimeout]
    [notice] = world.publisher.published
    assert (notice.type, notice.payload, notice.causation_id) == \
        ("core.notice", {"code": "TIMEOUT"}, msg.message_id)
    assert world.journal.outcomes() == ["dead"]
    assert [t.status for t in world.journal.txns()] == ["rejected"]  # on_failure's txn
    assert (await world.idem.begin(msg.idempotency_key, "worker-2", 60)).state is BeginState.NEW


async def test_exhausted_without_on_failure_records_dead(world: World) -> None:
    msg = _msg()
    result, _ = await world.run(_route(Script(TransientError("x"))), msg,
                                msg.headers() | {HEADER_ATTEMPT: MAX_ATTEMPTS - 1})
    assert result == "dead"
    assert len(world.publisher.parked) == 1
    assert world.publisher.published == []
    [txn] = world.journal.txns()
    assert (txn.status, txn.only_if_exists) == ("dead", True)


async def test_too_old_a_message_is_parked_even_on_its_first_attempt(world: World) -> None:
    msg = _msg()
    old = (datetime.now(UTC) - timedelta(seconds=FAST.max_age_s + 60)).isoformat()
    result, _ = await world.run(_route(Script(TransientError("x"))), msg,
                                msg.headers() | {HEADER_FIRST_SEEN: old})
    assert result == "dead"
    assert world.publisher.parked and not world.publisher.delayed


async def test_a_poison_message_ends_in_the_dlq_after_max_attempts(world: World) -> None:
    """An unexpected exception (a bug) counts as transient, so it cannot loop forever."""
    handler = Script(KeyError("wage"))
    route = _route(handler)
    msg, headers = _msg(), _msg().headers()
    outcomes = []
    for _ in range(MAX_ATTEMPTS + 2):
        result, acks = await world.run(route, msg, headers)
        outcomes.append(result)
        assert (acks.acked, acks.nacked) == (1, 0)
        if result != "retry":
            break
        msg, _, _, headers = world.publisher.delayed[-1]
    assert outcomes == ["retry"] * (MAX_ATTEMPTS - 1) + ["dead"]
    assert len(handler.calls) == MAX_ATTEMPTS
    [(_, _, dead)] = world.publisher.parked
    assert dead[HEADER_REASON] == "unexpected KeyError: 'wage'"
    assert dead[HEADER_REASON_CODE] == "TRANSIENT"
    assert len(json.loads(dead[HEADER_HISTORY])) == MAX_ATTEMPTS


# -- rejected / dead on permanent errors ----------------------------------------------


async def test_permanent_error_with_on_failure_is_rejected_not_parked(world: World) -> None:
    msg = _msg()
    told: list[HubError] = []
    handler = Script(BusinessRejected("E1", "no such unit", partner="tax"))
    route = _route(handler, _teller(told))
    result, acks = await world.run(route, msg)
    assert result == "rejected"
    assert acks.acked == 1
    assert world.publisher.parked == world.publisher.delayed == []
    assert [m.type for m in world.publisher.published] == ["core.notice"]
    assert world.journal.outcomes() == ["rejected"]
    assert world.journal.logs()[0].detail["code"] == "REJECTED"
    begin = await world.idem.begin(msg.idempotency_key, "worker-2", 60)
    assert begin.state is BeginState.DONE
    assert begin.result is not None and begin.result["outcome"] == "rejected"
    # a repeat gets the same answer without calling the partner again
    assert (await world.run(route, msg))[0] == "duplicate"
    assert len(handler.calls) == 1 and len(told) == 1


async def test_permanent_error_without_on_failure_is_parked(world: World) -> None:
    msg = _msg()
    result, acks = await world.run(_route(Script(PermanentError("cannot", partner="tax"))), msg)
    assert result == "dead"
    assert acks.acked == 1
    assert world.publisher.published == []
    [(body, queue, headers)] = world.publisher.parked
    assert HubMessage.model_validate_json(body) == msg
    assert queue == QUEUE
    assert (headers[HEADER_REASON], headers[HEADER_REASON_CODE]) == ("cannot", "PERMANENT")
    assert world.journal.outcomes() == ["dead"]
    assert [t.status for t in world.journal.txns()] == ["dead"]
    assert (await world.idem.begin(msg.idempotency_key, "w2", 60)).state is BeginState.DONE


# -- unreadable envelopes -------------------------------------------------------------


async def _parked_reason(world: World, body: bytes) -> str:
    handler = Script(_ok())
    result, acks = await world.run(_route(handler), body)
    assert result == "dead"
    assert acks.acked == 1
    assert handler.calls == []
    [(parked, queue, headers)] = world.publisher.parked
    assert parked == body
    assert queue == QUEUE
    assert headers[HEADER_REASON_CODE] == "VALIDATION"
    assert headers[HEADER_ROUTE] == "test.route"
    assert world.journal.outcomes() == ["dead"]
    return str(headers[HEADER_REASON])


async def test_invalid_json_is_parked_naming_the_body(world: World) -> None:
    reason = await _parked_reason(world, b"{not json")
    assert reason.startswith("body: not valid JSON")


async def test_an_oversize_body_is_parked_naming_the_body(world: World) -> None:
    world.deps = dataclasses.replace(world.deps, settings=_settings(max_body_bytes=1024))
    reason = await _parked_reason(world, _msg({"blob": "x" * 2000}).to_body())
    assert reason.startswith("body: ")
    assert "over the 1024 limit" in reason


async def test_missing_envelope_fields_are_named(world: World) -> None:
    data = json.loads(_msg().to_body())
    del data["correlation_id"], data["idempotency_key"]
    reason = await _parked_reason(world, json.dumps(data).encode())
    assert "envelope.correlation_id" in reason
    assert "envelope.idempotency_key" in reason


async def test_a_bad_envelope_field_is_named(world: World) -> None:
    data = json.loads(_msg().to_body()) | {"type": "NOT A TYPE"}
    reason = await _parked_reason(world, json.dumps(data).encode())
    assert reason.startswith("envelope.type: ")


async def test_unreadable_envelope_with_the_journal_down_is_nacked(world: World) -> None:
    world.journal.fail = RuntimeError("database down")
    d, acks = world.delivery(b"{not json", {})
    with contextlib.suppress(RuntimeError):
        await process(_route(Script(_ok())), d, world.deps)
    assert (acks.acked, acks.nacked) == (0, 1)


async def test_a_garbled_attempt_header_does_not_escape(world: World) -> None:
    msg = _msg()
    d, acks = world.delivery(msg, msg.headers() | {HEADER_ATTEMPT: "three"})
    with contextlib.suppress(ValueError):
        await process(_route(Script(_ok())), d, world.deps)
    assert acks.acked + acks.nacked == 1


# -- recording the outcome fails -> nack ----------------------------------------------


async def test_journal_failure_nacks_and_releases_the_key(world: World) -> None:
    msg = _msg()
    world.journal.fail = RuntimeError("database down")
    result, acks = await world.run(_route(Script(_ok())), msg)
    assert result == "nacked"
    assert (acks.acked, acks.nacked) == (0, 1)
    assert (await world.idem.begin(msg.idempotency_key, "worker-2", 60)).state is BeginState.NEW


async def test_a_broker_down_longer_than_the_bound_gives_the_delivery_back(
        world: World) -> None:
    world.publisher.fail = ConnectionError("broker gone")
    result, acks = await world.run(_route(Script(TransientError("x"))), _msg())
    assert result == "nacked"
    assert (acks.acked, acks.nacked) == (0, 1)
    assert world.journal.items == []


async def test_outputs_are_published_while_the_journal_writes_and_the_ack_waits_for_both(
        world: World) -> None:
    """The confirm and the group commit overlap: each side waits for the other to have
    started, which would never happen if they ran one after the other; the key is
    completed and the delivery acked only once both are done."""
    msg = _msg()
    out = child(msg, type="tax.next", source="hub", target="tax", payload={"x": 1},
                business_key="bk")
    writing, publishing = asyncio.Event(), asyncio.Event()
    seen: list[str] = []

    class SlowJournal(FakeJournal):
        async def write(self, *items: Any) -> None:
            writing.set()
            await asyncio.wait_for(publishing.wait(), 1)
            seen.append("written")
            await super().write(*items)

    class SlowPublisher(FakePublisher):
        async def publish(self, m: HubMessage) -> None:
            publishing.set()
            await asyncio.wait_for(writing.wait(), 1)
            seen.append("confirmed")
            await super().publish(m)

    class Watching(Acks):
        async def ack(self) -> None:
            seen.append("acked")
            assert (await world.idem.begin(msg.idempotency_key, "w2", 60)).state \
                is BeginState.DONE
            await super().ack()

    world.deps = dataclasses.replace(world.deps, journal=SlowJournal(),
                                     publisher=SlowPublisher())
    acks = Watching()
    d = Delivery(msg.to_body(), msg.headers(), msg.message_id, acks.ack, acks.nack)
    assert await process(_route(Script(_ok(out))), d, world.deps) == "ok"
    assert sorted(seen[:2]) == ["confirmed", "written"] and seen[2] == "acked"
    assert (acks.acked, acks.nacked) == (1, 0)


async def test_a_failed_publish_gives_the_delivery_back_though_the_journal_wrote(
        world: World) -> None:
    """The broker refuses the output while the journal records the attempt: the key is
    not completed (a repeat is worked again, not answered as a duplicate) and the
    delivery goes back to its queue."""
    world.publisher.fail = ConnectionError("broker gone")
    msg = _msg()
    out = child(msg, type="tax.next", source="hub", target="tax", payload={"x": 1},
                business_key="bk")
    result, acks = await world.run(_route(Script(_ok(out))), msg)
    assert result == "nacked"
    assert (acks.acked, acks.nacked) == (0, 1)
    assert world.publisher.published == []
    assert (await world.idem.begin(msg.idempotency_key, "worker-2", 60)).state is BeginState.NEW


class FlakyPublisher(FakePublisher):
    """Refuses the first ``n`` publishes as an unreachable broker would."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.left = n

    async def publish(self, msg: HubMessage) -> None:
        if self.left > 0:
            self.left -= 1
            raise ConnectionError("broker gone")
        await super().publish(msg)


async def test_a_store_outage_while_recording_is_waited_out_and_the_partner_called_once(
        world: World) -> None:
    """The partner answered; the database is briefly gone: keep the answer, wait, ack."""
    msg = _msg()
    out = child(msg, type="tax.next", source="hub", target="tax", payload={"x": 1},
                business_key="bk")
    handler = Script(_ok(out))

    class FlakyJournal(FakeJournal):
        left = 3

        async def write(self, *items: Any) -> None:
            if self.left:
                self.left -= 1
                raise OSError("database unreachable")
            await super().write(*items)

    journal = FlakyJournal()
    world.deps = dataclasses.replace(world.deps, journal=journal)
    result, acks = await world.run(_route(handler), msg)
    assert result == "ok"
    assert len(handler.calls) == 1
    assert (acks.acked, acks.nacked) == (1, 0)
    assert world.publisher.published == [out] and journal.outcomes() == ["ok"]
    assert world.deps.health.outages == 1 and world.deps.health.is_up


async def test_a_redis_outage_at_the_door_is_waited_out_without_spending_an_attempt(
        world: World) -> None:
    class FlakyIdem(MemoryIdempotencyStore):
        left = 2

        async def begin(self, key: str, owner: str, lock_s: int) -> Any:
            if self.left:
                self.left -= 1
                raise ConnectionError("redis gone")
            return await super().begin(key, owner, lock_s)

    world.deps = dataclasses.replace(world.deps, idem=FlakyIdem())
    handler = Script(_ok())
    result, acks = await world.run(_route(handler), _msg())
    assert result == "ok" and len(handler.calls) == 1
    assert (acks.acked, acks.nacked) == (1, 0)


async def test_other_deliveries_wait_at_the_door_while_a_store_is_down(world: World) -> None:
    world.deps = dataclasses.replace(world.deps, health=StoreHealth(give_up_s=5))
    world.deps.health.down("database", ConnectionError("down"))
    handler = Script(_ok())
    task = asyncio.create_task(world.run(_route(handler), _msg()))
    await asyncio.sleep(0.05)
    assert handler.calls == [] and not task.done()  # no partner call while a store is down
    world.deps.health.up()
    result, acks = await task
    assert result == "ok" and len(handler.calls) == 1 and acks.acked == 1


# -- another worker holds the key -----------------------------------------------------


async def test_inflight_elsewhere_is_delayed_without_spending_an_attempt(world: World) -> None:
    msg = _msg(attempt=1)
    await world.idem.begin(msg.idempotency_key, "worker-2", 120)
    handler = Script(_ok())
    headers = msg.headers() | {HEADER_ATTEMPT: 1}
    result, acks = await world.run(_route(handler), msg, headers)
    assert result == "inflight"
    assert acks.acked == 1
    assert handler.calls == []
    [(sent, queue, delay_ms, sent_headers)] = world.publisher.delayed
    assert sent == msg
    assert queue == QUEUE
    assert delay_ms == 1_000
    assert sent_headers == headers
    assert world.journal.items == []
    # the other worker's lock is untouched
    assert (await world.idem.begin(msg.idempotency_key, "w3", 60)).state is BeginState.INFLIGHT


async def test_a_step_waits_until_the_step_it_follows_is_done(world: World) -> None:
    """A 准新生儿 stop and the newborn's enrollment reach the consumer in either order: the
    second (``after`` the first's key) is held, without spending an attempt, until the
    first has its answer, then goes through."""
    first = _msg({"n": 1})
    second = _msg({"n": 2}, after=first.idempotency_key,
                  idempotency_key=idempotency_key("test.thing", "bk2", {"n": 2}))
    handler = Script(_ok())
    route = _route(handler)
    assert (await world.run(route, second))[0] == "waiting"
    assert handler.calls == []
    [(held, _, delay_ms, _)] = world.publisher.delayed
    assert (held, delay_ms) == (second, 1_000)
    assert (await world.idem.begin(second.idempotency_key, "w2", 60)).state is BeginState.NEW
    await world.idem.release(second.idempotency_key, "w2")
    assert (await world.run(route, first))[0] == "ok"
    assert (await world.run(route, second))[0] == "ok"
    assert handler.calls == [first, second]


async def test_a_step_whose_predecessor_never_finishes_ends_in_the_dlq(world: World) -> None:
    old = datetime.now(UTC) - timedelta(days=30)
    msg = _msg(after="never-done", created_at=old)
    result, acks = await world.run(_route(Script(_ok())), msg)
    assert (result, acks.acked) == ("dead", 1)
    [(_, _, headers)] = world.publisher.parked
    assert "never-done" in headers["x-dead-reason"]


def test_a_body_without_a_predecessor_is_unchanged() -> None:
    """``after`` appears in a body only when set: other messages stay as they were."""
    assert b'"after"' not in _msg().to_body()
    assert HubMessage.model_validate_json(_msg(after="k1").to_body()).after == "k1"


async def test_our_own_stale_lock_is_taken_again(world: World) -> None:
    msg = _msg()
    await world.idem.begin(msg.idempotency_key, "worker-1", 120)  # e.g. before a restart
    assert (await world.run(_route(Script(_ok())), msg))[0] == "ok"


# -- the real employee routes ---------------------------------------------------------

FEEDBACK_ROUTE, SYNC_ROUTE = RESULT_ROUTES
ENROLL_ROUTE = next(r for r in LANES if r.name == "tax.employee")
RNG = random.Random(11)
ID = make_id_number(RNG, born=date(1988, 3, 9), male=False, area="320104")
USCC = make_credit_code(RNG)


def _enrollment(**over: Any) -> dict[str, Any]:
    return {"unit_credit_code": USCC, "unit_name": "南京示例科技有限公司", "id_number": ID,
            "name": "李娜", "gender": "2", "birth_date": "1988-03-09",
            "phone": "13912345678", "start_month": "202406", "admdvs": "320104"} | over


def _enroll_msg(**over: Any) -> HubMessage:
    payload = _enrollment(**over)
    return HubMessage(type=ENROLL, source="core", target="tax", correlation_id="corr-e1",
                      entity_key="person-9",
                      idempotency_key=idempotency_key(ENROLL, f"{USCC}:{ID}", payload),
                      payload=payload)


def _feedback_msg(serial: str, status: str = "accepted", **over: Any) -> HubMessage:
    payload = {"accept_no": "A0001", "biz_msg_id": serial, "operation": "enroll",
               "id_number": ID, "status": status} | over
    return HubMessage(type=FEEDBACK, source="tax", target="hub", correlation_id="tax-cb-1",
                      idempotency_key=idempotency_key(FEEDBACK, serial, payload),
                      payload=payload)


def test_routes_are_wired() -> None:
    assert [(r.name, r.bindings, r.partner) for r in RESULT_ROUTES] == [
        ("tax.feedback", (FEEDBACK,), "tax"), ("core.sync", (SYNC,), "core")]
    assert ENROLL in ENROLL_ROUTE.bindings and "tax.employee.stop" in ENROLL_ROUTE.bindings
    assert ENROLL_ROUTE.handler is submit_to_tax and ENROLL_ROUTE.on_failure is enroll_failed
    assert FEEDBACK_ROUTE.handler is feedback_to_core and FEEDBACK_ROUTE.on_failure is None
    assert SYNC_ROUTE.handler is sync_to_core and SYNC_ROUTE.on_failure is None


async def test_enroll_success_records_the_request_under_a_serial_from_the_key(
        world: World) -> None:
    msg = _enroll_msg()
    result, acks = await world.run(ENROLL_ROUTE, msg)
    assert result == "ok" and acks.acked == 1
    [(req, serial)] = world.tax.calls
    assert serial == partner_serial(msg) != msg.message_id
    assert req.id_number == ID
    record = world.journal.requests[serial]
    assert (record.serial, record.partner, record.correlation_id, record.type,
            record.business_key, record.entity_key, record.accept_no) == \
        (serial, "tax", "corr-e1", ENROLL, f"{USCC}:{ID}", "person-9", "A0001")
    [txn] = world.journal.txns()
    assert (txn.status, txn.business_key, txn.attempts) == ("submitted", f"{USCC}:{ID}", 1)
    assert world.publisher.published == []
    begin = await world.idem.begin(msg.idempotency_key, "w2", 60)
    assert begin.result == {"outcome": "submitted", "accept_no": "A0001",
                            "correlation_id": msg.correlation_id}


async def test_the_same_fact_posted_again_reaches_tax_under_the_same_serial(
        world: World) -> None:
    """Redis lost its keys: a re-post (new message, new transaction) is not recognised by
    idempotency, but tax sees the serial it already answered and replays."""
    first = _enroll_msg()
    again = first.model_copy(update={"message_id": "m-again", "correlation_id": "corr-e2"})
    await world.run(ENROLL_ROUTE, first)
    await world.idem.forget(first.idempotency_key)  # what a Redis flush does
    await world.run(ENROLL_ROUTE, again)
    [(_, s1), (_, s2)] = world.tax.calls
    assert s1 == s2


async def test_enroll_rejected_by_tax_tells_core_with_the_reason_code(world: World) -> None:
    world.tax.answer = BusinessRejected("E1001", "该人员已参保", partner="tax")
    msg = _enroll_msg()
    result, _ = await world.run(ENROLL_ROUTE, msg)
    assert result == "rejected"
    assert world.publisher.parked == []
    [sync] = world.publisher.published
    assert (sync.type, sync.source, sync.target) == (SYNC, "hub", "core")
    assert (sync.correlation_id, sync.causation_id, sync.entity_key) == \
        ("corr-e1", msg.message_id, "person-9")
    update = SyncStatusUpdate.model_validate(sync.payload)
    assert (update.status, update.reason_code, update.reason_text) == \
        ("rejected", "E1001", "该人员已参保")
    assert (update.business_key, update.id_number, update.biz_type) == \
        (f"{USCC}:{ID}", ID, ENROLL)
    [txn] = world.journal.txns()
    assert (txn.status, txn.reason_code) == ("rejected", "E1001")


async def test_an_invalid_enrollment_is_rejected_naming_the_field(world: World) -> None:
    result, _ = await world.run(ENROLL_ROUTE, _enroll_msg(phone="12345"))
    assert result == "rejected"
    assert world.tax.calls == []
    update = SyncStatusUpdate.model_validate(world.publisher.published[0].payload)
    assert (update.status, update.reason_code) == ("rejected", "VALIDATION")
    assert update.reason_text.startswith("payload.phone: ")


async def test_enroll_giving_up_tells_core_failed_and_parks(world: World) -> None:
    world.tax.answer = PartnerUnavailable("HTTP 503", partner="tax")
    msg = _enroll_msg()
    result, _ = await world.run(ENROLL_ROUTE, msg,
                                msg.headers() | {HEADER_ATTEMPT: MAX_ATTEMPTS - 1})
    assert result == "dead"
    assert len(world.publisher.parked) == 1
    update = SyncStatusUpdate.model_validate(world.publisher.published[0].payload)
    assert (update.status, update.reason_code, update.reason_text) == \
        ("failed", "UNAVAILABLE", "HTTP 503")
    assert [t.status for t in world.journal.txns()] == ["dead"]


async def test_feedback_for_an_unknown_serial_is_transient(world: World) -> None:
    msg = _feedback_msg("never-sent")
    with pytest.raises(TransientError, match="never-sent"):
        await feedback_to_core(msg, world.deps)
    result, _ = await world.run(FEEDBACK_ROUTE, msg)
    assert result == "retry"
    assert world.publisher.published == []


async def test_feedback_accepted_syncs_core_with_the_requests_correlation(world: World) -> None:
    enroll = _enroll_msg()
    await world.run(ENROLL_ROUTE, enroll)
    fb = _feedback_msg(partner_serial(enroll), accept_no="A0001")
    result, _ = await world.run(FEEDBACK_ROUTE, fb)
    assert result == "ok"
    [sync] = world.publisher.published
    assert sync.correlation_id == "corr-e1"  # the request's, not the callback's
    assert sync.causation_id == fb.message_id
    assert sync.entity_key == "person-9"
    update = SyncStatusUpdate.model_validate(sync.payload)
    assert (update.status, update.accept_no, update.business_key, update.biz_type) == \
        ("synced", "A0001", f"{USCC}:{ID}", ENROLL)
    txn = world.journal.txns()[-1]
    assert (txn.correlation_id, txn.status, txn.source) == ("corr-e1", "accepted", "tax")


async def test_feedback_rejected_syncs_core_rejected(world: World) -> None:
    enroll = _enroll_msg()
    await world.run(ENROLL_ROUTE, enroll)
    fb = _feedback_msg(partner_serial(enroll), "rejected", reason_code="T204",
                       reason_text="单位不存在")
    assert (await world.run(FEEDBACK_ROUTE, fb))[0] == "ok"
    update = SyncStatusUpdate.model_validate(world.publisher.published[0].payload)
    assert (update.status, update.reason_code, update.reason_text) == \
        ("rejected", "T204", "单位不存在")
    assert world.journal.txns()[-1].status == "rejected"


async def test_a_malformed_feedback_is_parked(world: World) -> None:
    result, _ = await world.run(FEEDBACK_ROUTE, _feedback_msg("m1", status="maybe"))
    assert result == "dead"
    assert "payload.status" in world.publisher.parked[0][2][HEADER_REASON]


async def test_repeated_feedback_produces_the_same_sync_key(world: World) -> None:
    enroll = _enroll_msg()
    await world.run(ENROLL_ROUTE, enroll)
    await world.run(FEEDBACK_ROUTE, _feedback_msg(partner_serial(enroll)))
    await world.run(FEEDBACK_ROUTE, _feedback_msg(partner_serial(enroll), operation="enroll-again"))
    first, second = world.publisher.published
    assert first.message_id != second.message_id
    assert first.idempotency_key == second.idempotency_key


@pytest.mark.parametrize(("status", "final"), [
    ("synced", "delivered"), ("rejected", "rejected"), ("failed", "dead")])
async def test_sync_to_core_calls_core_with_the_idempotency_key(
        world: World, status: str, final: str) -> None:
    update = SyncStatusUpdate(correlation_id="corr-e1", biz_type=ENROLL, business_key="bk",
                              status=status, reason_code="R")  # type: ignore[arg-type]
    enroll = _enroll_msg()
    msg = sync_message(update, cause=enroll, entity_key="person-9")
    result, _ = await world.run(SYNC_ROUTE, msg)
    assert result == "ok"
    [(sent, serial)] = world.core.calls
    assert sent == update
    assert serial == msg.idempotency_key
    [txn] = world.journal.txns()
    assert (txn.correlation_id, txn.status, txn.source) == ("corr-e1", final, "hub")


async def test_core_refusing_a_sync_is_parked(world: World) -> None:
    world.core.error = BusinessRejected("C404", "no such person", partner="core")
    update = SyncStatusUpdate(correlation_id="c", biz_type=ENROLL, business_key="bk",
                              status="synced")
    result, _ = await world.run(SYNC_ROUTE, sync_message(update, cause=_enroll_msg(),
                                                         entity_key=""))
    assert result == "dead"
    assert world.publisher.parked[0][2][HEADER_REASON_CODE] == "REJECTED"


def test_a_model_level_payload_error_is_named_payload() -> None:
    with pytest.raises(ValidationError) as ei:
        EmployeeEnrollment.model_validate(_enrollment(gender="1"))
    failed = ValidationFailed.of(ei.value, prefix="payload.")
    assert isinstance(failed, ValidationFailed)
    assert "gender 1 disagrees" in failed.reason
    assert failed.field == "payload"


async def test_a_transient_failure_counts_against_the_partner_that_failed(
        world: World) -> None:
    """The channel intake (a core lane) asks tax too: tax being down must not rest core."""
    handler = Script(*(PartnerTimeout("tax slow", partner="tax") for _ in range(3)))
    for n in range(3):
        await world.run(_route(handler, partner="core"), _msg(correlation_id=f"c{n}",
                                                                entity_key=f"e{n}"))
    failures = {b["partner"]: b for b in world.deps.breakers.snapshot()}
    assert failures["tax"]["recent_failures"] == 3
    assert failures["core"]["recent_failures"] == 0

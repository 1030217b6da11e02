"""kernel.runtime.process with tampered retry headers: total parsing, one partner call.

``x-attempt``, ``x-first-seen`` and ``x-failures`` travel with a message through the
wait queues, where anybody with access to the broker can change them, and an envelope's
``created_at`` may come without a zone. None of it may crash the runtime after the
partner was called (a nack, then a redelivery, would call the partner again): garbage
counts as absent, a naive time as UTC, the attempt count is clamped to
``kernel.runtime.MAX_ATTEMPT``.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from broker.topology import Names
from config.settings import HubSettings, PartnerConfig, load_settings
from contracts.employee import TaxAck
from contracts.envelope import (
    HEADER_ATTEMPT,
    HEADER_FIRST_SEEN,
    HEADER_HISTORY,
    HubMessage,
    idempotency_key,
)
from contracts.errors import BusinessRejected, PartnerUnavailable
from contracts.ids import make_credit_code, make_id_number
from contracts.messages import ENROLL
from kernel.health import StoreHealth
from kernel.runtime import MAX_ATTEMPT, Delivery, Route, process
from retry.idempotency import MemoryIdempotencyStore
from retry.policy import RetryPolicy
from routes.lanes import ROUTES
from services.deps import Deps
from tests.support.fakes import Acks, FakeCore, FakeJournal, FakePublisher, FakeTax

MAX_ATTEMPTS = 3
POLICY = RetryPolicy(max_attempts=MAX_ATTEMPTS, max_age_s=3600, inprocess_attempts=1,
                     delays_ms=(1_000, 5_000))
TIERS = (1_000, 5_000, 30_000)
ENROLL_ROUTE: Route = next(r for r in ROUTES if r.name == "tax.employee")
RNG = random.Random(7)
ID = make_id_number(RNG, born=date(1990, 1, 2), male=True, area="320104")
USCC = make_credit_code(RNG)
# Outcomes a delivery may end in; "nacked" (given back, so delivered and called again) is
# not one of them here: the stores are all up.
SETTLED = {"ok", "retry", "dead", "rejected"}


@dataclass
class World:
    deps: Deps
    publisher: FakePublisher
    journal: FakeJournal
    tax: FakeTax

    async def run(self, body: bytes, headers: dict[str, Any]) -> tuple[str, Acks]:
        acks = Acks()
        d = Delivery(body, dict(headers), "m-1", acks.ack, acks.nack)
        return await process(ENROLL_ROUTE, d, self.deps), acks


def _settings() -> HubSettings:
    partners = {
        "tax": PartnerConfig(protocol="soap", endpoint="http://tax.test/ws",
                             policies={"default": POLICY}),
        "core": PartnerConfig(protocol="http-json", endpoint="http://core.test",
                              policies={"default": POLICY}),
    }
    return load_settings(env={}).model_copy(
        update={"partners": partners, "delay_tiers_ms": TIERS})


@pytest.fixture
def world() -> World:
    publisher, journal, tax = FakePublisher(), FakeJournal(), FakeTax()
    deps = Deps(settings=_settings(), tax=tax, core=FakeCore(), idem=MemoryIdempotencyStore(),
                journal=journal,  # type: ignore[arg-type]
                publisher=publisher, owner="worker-1", names=Names("t"),
                health=StoreHealth(first_delay_s=0.001, max_delay_s=0.005, give_up_s=0.2))
    return World(deps, publisher, journal, tax)


def _enroll(**over: Any) -> HubMessage:
    payload = {"unit_credit_code": USCC, "unit_name": "南京示例科技有限公司", "id_number": ID,
               "name": "王伟", "gender": "1", "birth_date": "1990-01-02",
               "phone": "13912345678", "start_month": "202406", "admdvs": "320104"}
    return HubMessage(type=ENROLL, source="core", target="tax", correlation_id="corr-h1",
                      entity_key="person-h",
                      idempotency_key=idempotency_key(ENROLL, f"{USCC}:{ID}", payload),
                      payload=payload, **over)


def _settled_once(world: World, result: str, acks: Acks) -> None:
    """The delivery reached an outcome, was acked once, and tax was called once."""
    assert result in SETTLED, result
    assert (acks.acked, acks.nacked) == (1, 0)
    assert len(world.tax.calls) == 1
    assert world.journal.outcomes() == [result]


def _clean(headers: dict[str, Any]) -> None:
    """Headers the runtime wrote on are readable by anyone after it."""
    attempt = headers[HEADER_ATTEMPT]
    assert isinstance(attempt, int) and not isinstance(attempt, bool)
    assert 0 <= attempt <= MAX_ATTEMPT + 1
    if HEADER_FIRST_SEEN in headers:
        datetime.fromisoformat(headers[HEADER_FIRST_SEEN])  # readable (naive: taken as UTC)
    assert isinstance(json.loads(headers[HEADER_HISTORY]), list)


# -- x-attempt ------------------------------------------------------------------------

GARBLED_ATTEMPTS = [float("inf"), float("-inf"), float("nan"), "inf", "nan", "-inf", "1e400",
                    "three", "2.5", 2.5, "", None, True, b"\xff", [1], {"n": 1}, "+-1",
                    "\u0661"]  # an Arabic-Indic one: str.isdigit says yes, int() may not


@pytest.mark.parametrize("value", GARBLED_ATTEMPTS, ids=repr)
async def test_a_garbled_attempt_header_counts_as_absent_and_the_partner_is_called_once(
        world: World, value: Any) -> None:
    world.tax.answer = PartnerUnavailable("HTTP 503", partner="tax")
    msg = _enroll()
    result, acks = await world.run(msg.to_body(), msg.headers() | {HEADER_ATTEMPT: value})
    _settled_once(world, result, acks)
    assert result == "retry"
    [(sent, _, _, headers)] = world.publisher.delayed
    assert headers[HEADER_ATTEMPT] == sent.attempt == 1  # the body's 0, plus this failure
    _clean(headers)


@pytest.mark.parametrize("value", [10**30, "9" * 30, 1e300, 2**63, MAX_ATTEMPT + 5],
                         ids=repr)
async def test_a_huge_attempt_header_is_clamped_and_parks_after_one_call(
        world: World, value: Any) -> None:
    world.tax.answer = PartnerUnavailable("HTTP 503", partner="tax")
    msg = _enroll()
    result, acks = await world.run(msg.to_body(), msg.headers() | {HEADER_ATTEMPT: value})
    _settled_once(world, result, acks)
    assert result == "dead"
    [(body, _, headers)] = world.publisher.parked
    assert headers[HEADER_ATTEMPT] == MAX_ATTEMPT + 1
    assert HubMessage.model_validate_json(body).attempt == MAX_ATTEMPT + 1
    assert world.journal.logs()[0].attempt == MAX_ATTEMPT + 1  # fits an INTEGER column
    _clean(headers)


async def test_a_huge_attempt_in_the_body_is_clamped_too(world: World) -> None:
    msg = _enroll(attempt=10**30)
    headers = msg.headers()
    del headers[HEADER_ATTEMPT]
    world.tax.answer = PartnerUnavailable("HTTP 503", partner="tax")
    result, acks = await world.run(msg.to_body(), headers)
    _settled_once(world, result, acks)
    assert result == "dead"
    assert world.publisher.parked[0][2][HEADER_ATTEMPT] == MAX_ATTEMPT + 1


@pytest.mark.parametrize("value", ["2", " 2 ", b"2", 2.0, "+2"], ids=repr)
async def test_a_readable_attempt_header_still_counts(world: World, value: Any) -> None:
    world.tax.answer = PartnerUnavailable("HTTP 503", partner="tax")
    msg = _enroll()
    result, acks = await world.run(msg.to_body(), msg.headers() | {HEADER_ATTEMPT: value})
    _settled_once(world, result, acks)
    assert result == "dead"  # 2 + this failure = MAX_ATTEMPTS
    assert world.publisher.parked[0][2][HEADER_ATTEMPT] == MAX_ATTEMPTS


async def test_a_negative_attempt_header_counts_as_zero(world: World) -> None:
    world.tax.answer = PartnerUnavailable("HTTP 503", partner="tax")
    msg = _enroll()
    result, acks = await world.run(msg.to_body(), msg.headers() | {HEADER_ATTEMPT: "-7"})
    _settled_once(world, result, acks)
    assert world.publisher.delayed[0][3][HEADER_ATTEMPT] == 1


# -- x-first-seen and created_at ------------------------------------------------------


async def test_a_naive_first_seen_header_is_taken_as_utc(world: World) -> None:
    world.tax.answer = PartnerUnavailable("HTTP 503", partner="tax")
    msg = _enroll()
    recent = (datetime.now(UTC) - timedelta(seconds=60)).replace(tzinfo=None).isoformat()
    result, acks = await world.run(msg.to_body(), msg.headers() | {HEADER_FIRST_SEEN: recent})
    _settled_once(world, result, acks)
    assert result == "retry"
    assert world.publisher.delayed[0][3][HEADER_FIRST_SEEN] == recent  # kept as it was


async def test_a_naive_first_seen_header_older_than_the_policy_parks(world: World) -> None:
    world.tax.answer = PartnerUnavailable("HTTP 503", partner="tax")
    msg = _enroll()
    old = (datetime.now(UTC) - timedelta(seconds=POLICY.max_age_s + 60)).replace(tzinfo=None)
    result, acks = await world.run(msg.to_body(),
                                   msg.headers() | {HEADER_FIRST_SEEN: old.isoformat()})
    _settled_once(world, result, acks)
    assert result == "dead"
    assert world.publisher.parked[0][2][HEADER_FIRST_SEEN] == old.replace(
        tzinfo=UTC).isoformat()


@pytest.mark.parametrize("value", ["yesterday", "", "2024-13-45T99:00:00", "x" * 10_000,
                                   12345, 1.5, ["2024-01-01"], {"at": 1}, b"\xff\xfe",
                                   "0001-01-01T00:00:00+14:00"], ids=lambda v: repr(v)[:30])
async def test_a_garbled_first_seen_header_counts_as_absent(world: World, value: Any) -> None:
    world.tax.answer = PartnerUnavailable("HTTP 503", partner="tax")
    msg = _enroll()
    result, acks = await world.run(msg.to_body(), msg.headers() | {HEADER_FIRST_SEEN: value})
    _settled_once(world, result, acks)
    if result == "retry":  # the clock starts again from the envelope's created_at
        assert world.publisher.delayed[0][3][HEADER_FIRST_SEEN] == msg.created_at.isoformat()
    else:  # the edge of the calendar: as old as can be
        assert value == "0001-01-01T00:00:00+14:00"
        _clean(world.publisher.parked[0][2])


async def test_a_naive_created_at_in_the_envelope_is_taken_as_utc(world: World) -> None:
    world.tax.answer = PartnerUnavailable("HTTP 503", partner="tax")
    msg = _enroll()
    envelope = json.loads(msg.to_body())
    naive = (datetime.now(UTC) - timedelta(seconds=30)).replace(tzinfo=None).isoformat()
    envelope["created_at"] = naive
    result, acks = await world.run(json.dumps(envelope).encode(), msg.headers())
    _settled_once(world, result, acks)
    assert result == "retry"
    assert world.publisher.delayed[0][3][HEADER_FIRST_SEEN] == naive


async def test_an_old_naive_created_at_parks_after_one_call(world: World) -> None:
    world.tax.answer = PartnerUnavailable("HTTP 503", partner="tax")
    msg = _enroll()
    envelope = json.loads(msg.to_body()) | {"created_at": "2020-01-01T08:00:00"}
    result, acks = await world.run(json.dumps(envelope).encode(), msg.headers())
    _settled_once(world, result, acks)
    assert result == "dead"


# -- x-failures -----------------------------------------------------------------------

GARBLED_HISTORIES = ['{"attempt": 1}', "5", "null", '"text"', "not json", "[" * 5000,
                     "[" * 100_000, 42, 4.2, {"attempt": 1}, ["a"], b"\xff", True]


@pytest.mark.parametrize("value", GARBLED_HISTORIES, ids=lambda v: repr(v)[:30])
async def test_a_garbled_failure_history_counts_as_none(world: World, value: Any) -> None:
    world.tax.answer = PartnerUnavailable("HTTP 503", partner="tax")
    msg = _enroll()
    result, acks = await world.run(msg.to_body(), msg.headers() | {HEADER_HISTORY: value})
    _settled_once(world, result, acks)
    [failure] = json.loads(world.publisher.delayed[0][3][HEADER_HISTORY])
    assert (failure["attempt"], failure["code"]) == (1, "UNAVAILABLE")


async def test_entries_of_a_history_that_are_not_failures_are_dropped(world: World) -> None:
    world.tax.answer = PartnerUnavailable("HTTP 503", partner="tax")
    msg = _enroll()
    past = json.dumps([1, "x", {"attempt": 1, "code": "TIMEOUT"}, None])
    result, acks = await world.run(msg.to_body(), msg.headers() | {HEADER_HISTORY: past})
    _settled_once(world, result, acks)
    history = json.loads(world.publisher.delayed[0][3][HEADER_HISTORY])
    assert [h["code"] for h in history] == ["TIMEOUT", "UNAVAILABLE"]


# -- all at once, on every way out ----------------------------------------------------

TAMPERED = {HEADER_ATTEMPT: float("inf"), HEADER_FIRST_SEEN: "2024-01-01T00:00:00",
            HEADER_HISTORY: '{"not": "a list"}'}


@pytest.mark.parametrize("answer", [TaxAck(accept_no="A0001"),
                                    PartnerUnavailable("HTTP 503", partner="tax"),
                                    BusinessRejected("E1001", "该人员已参保", partner="tax")],
                         ids=["ok", "transient", "permanent"])
async def test_every_header_tampered_still_reaches_one_outcome(world: World,
                                                               answer: Any) -> None:
    world.tax.answer = answer
    msg = _enroll()
    result, acks = await world.run(msg.to_body(), msg.headers() | TAMPERED)
    _settled_once(world, result, acks)
    for _, _, headers in world.publisher.parked:
        _clean(headers)
    for _, _, _, headers in world.publisher.delayed:
        _clean(headers)


async def test_a_parked_message_carries_clean_retry_headers(world: World) -> None:
    """A permanent failure nobody can be told of is parked with the delivery's headers;
    the tampered ones are written back clean, so the DLQ archiver can store them."""
    route = Route("test.route", (ENROLL,), "tax", ENROLL_ROUTE.handler)
    world.tax.answer = BusinessRejected("E1001", "该人员已参保", partner="tax")
    msg = _enroll()
    acks = Acks()
    headers = msg.headers() | {HEADER_ATTEMPT: 10**30, HEADER_FIRST_SEEN: "garbage",
                               HEADER_HISTORY: "7"}
    d = Delivery(msg.to_body(), headers, "m-1", acks.ack, acks.nack)
    assert await process(route, d, world.deps) == "dead"
    [(_, _, parked)] = world.publisher.parked
    assert parked[HEADER_ATTEMPT] == MAX_ATTEMPT
    assert HEADER_FIRST_SEEN not in parked
    assert parked[HEADER_HISTORY] == "[]"

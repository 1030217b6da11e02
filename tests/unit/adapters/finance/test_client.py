"""The finance client against the finance simulator in process (ASGI), and against answers
it must map: every failure becomes a ``contracts.errors`` exception; the simulator never pays
a withdrawn order."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from adapters.finance.client import FinanceClient
from config.settings import PartnerConfig
from contracts.clock import today_beijing
from contracts.errors import BusinessRejected, ClientError, PartnerTimeout, PartnerUnavailable
from contracts.finance import PaymentQuery, RefundOrder, order_payload
from contracts.ids import make_credit_code
from simulators.finance import FinanceSim, create_app, make_order
from simulators.simkit import Fault, SimState

SECRET = "unit-test-finance-secret"


def _cfg(timeout: float = 2.0) -> PartnerConfig:
    return PartnerConfig(protocol="rest", endpoint="http://finance.test/finance",
                         secret=SecretStr(SECRET), timeout_s=timeout)


@pytest.fixture
async def pair() -> AsyncIterator[tuple[FinanceClient, FinanceSim]]:
    sim = FinanceSim(SimState(), secret=SECRET)
    client = FinanceClient(_cfg(), transport=httpx.ASGITransport(app=create_app(sim)))
    try:
        yield client, sim
    finally:
        await client.aclose()
        await sim.aclose()


def _order(no: str, **kw: Any) -> dict[str, Any]:
    return order_payload(RefundOrder.model_validate(make_order(random.Random(5), no, **kw)), 1)


async def test_an_order_is_taken_once_paid_once_and_replayed(
        pair: tuple[FinanceClient, FinanceSim]) -> None:
    client, sim = pair
    a = await client.submit_order(_order("TF-1"), serial="s1")
    b = await client.submit_order(_order("TF-1"), serial="s1")
    assert a == b and a.result == "success" and a.finance_no
    assert sim.state.log.effects["order:TF-1:1"] == 1 and sim.state.log.replays == 1
    assert sim.pay("TF-1") and not sim.pay("TF-1")
    assert sim.state.log.effects["pay:TF-1"] == 1
    w = await client.withdraw("TF-1", 1, "退费回退", serial="w1")
    assert w.result == "paid" and w.paid_at is not None


async def test_a_withdrawn_order_is_never_paid_even_if_it_comes_later(
        pair: tuple[FinanceClient, FinanceSim]) -> None:
    client, sim = pair
    await client.submit_order(_order("TF-2"), serial="s2")
    assert (await client.withdraw("TF-2", 1, "退费回退", serial="w2")).result == "withdrawn"
    assert not sim.pay("TF-2") and sim.pay_all() == 0
    # withdrawn before finance ever saw it: the order that arrives late is refused
    assert (await client.withdraw("TF-3", 1, "退费回退", serial="w3")).result == "withdrawn"
    with pytest.raises(BusinessRejected) as exc:
        await client.submit_order(_order("TF-3"), serial="s3")
    assert exc.value.reason_code == "4090"
    assert not sim.book.paid("TF-2") and not sim.book.paid("TF-3")


async def test_payment_and_withdrawal_racing_never_both_win(
        pair: tuple[FinanceClient, FinanceSim]) -> None:
    client, sim = pair
    for i in range(20):
        no = f"TF-R{i}"
        await client.submit_order(_order(no), serial=f"r{i}")
        sim.state.faults.append(Fault(kind="slow", operation="withdraw", delay_s=0.001 * i,
                                      count=1))

        async def pay_soon(order_no: str = no, delay: float = 0.0005 * (i % 5)) -> bool:
            await asyncio.sleep(delay)
            return sim.pay(order_no)

        w, paid = await asyncio.gather(client.withdraw(no, 1, "x", serial=f"rw{i}"), pay_soon())
        assert (w.result == "paid") == paid == sim.book.paid(no)
        assert not (sim.book.paid(no) and no in sim.book.withdrawn)


async def test_failure_per_order_and_amounts_that_do_not_add_up(
        pair: tuple[FinanceClient, FinanceSim]) -> None:
    client, _ = pair
    failed = await client.submit_order(_order("TF-4", account_no="6222000000000000"),
                                       serial="s4")
    assert failed.result == "failure" and "账号" in failed.reason
    bad = _order("TF-5") | {"amount": "1.00"}
    with pytest.raises(BusinessRejected) as exc:  # the simulator checks the sum itself
        await client.submit_order(bad, serial="s5")
    assert exc.value.reason_code == "4002"


async def test_payments_to_a_unit_add_up(pair: tuple[FinanceClient, FinanceSim]) -> None:
    client, sim = pair
    o = _order("TF-6", unit=True)
    await client.submit_order(o, serial="s6")
    sim.pay("TF-6")
    got = await client.payments(PaymentQuery(unit_credit_code=o["unit_credit_code"],
                                             start_date=today_beijing(),
                                             end_date=today_beijing()))
    assert got.count == 1 and f"{got.total:.2f}" == o["amount"]


def _answer(status: int, body: Any) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if body is TimeoutError:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(status, json=body) if not isinstance(body, bytes) \
            else httpx.Response(status, content=body)
    return httpx.MockTransport(handler)


@pytest.mark.parametrize(("status", "body", "error"), [
    (503, {"code": "500"}, PartnerUnavailable),
    (429, b"", PartnerUnavailable),
    (200, b"<html>", PartnerUnavailable),
    (200, {"code": "200", "data": {"order_no": "x"}}, PartnerUnavailable),
    (200, {"code": "4090", "message": "已回退"}, BusinessRejected),
    (400, b"bad", ClientError),
    (200, TimeoutError, PartnerTimeout)])
async def test_every_failure_is_mapped(status: int, body: Any, error: type[Exception]) -> None:
    client = FinanceClient(_cfg(), transport=_answer(status, body))
    try:
        with pytest.raises(error):
            await client.submit_order(_order("TF-9"), serial="s9")
    finally:
        await client.aclose()


async def test_payment_details_that_do_not_add_up_are_not_shown() -> None:
    body = {"code": "200", "data": {"records": [], "count": 0, "total": "5.00"}}
    client = FinanceClient(_cfg(), transport=_answer(200, body))
    try:
        with pytest.raises(PartnerUnavailable, match="add up"):
            await client.payments(PaymentQuery.model_validate(
                {"unit_credit_code": make_credit_code(random.Random(1)),
                 "start_date": "2026-01-01", "end_date": "2026-01-02"}))
    finally:
        await client.aclose()

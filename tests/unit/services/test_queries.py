"""F4 asking without HTTP: the status each outcome gets, the gate, and the journal line."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from contracts.errors import BusinessRejected, ClientError, PartnerTimeout, PartnerUnavailable
from contracts.taxcat import model_for
from services.queries import MAX_IN_FLIGHT, QUERIES, QueryAnswer, TaxQueries
from tests.support.fakes import FakeJournal

NAME = "person_arrears"
OP = QUERIES[NAME]


class FakeTax:
    def __init__(self, answer: list[dict[str, Any]] | Exception, delay_s: float = 0.0) -> None:
        self.answer = answer
        self.delay_s = delay_s

    async def query(self, operation: str, req: BaseModel, *, serial: str
                    ) -> list[dict[str, Any]]:
        await asyncio.sleep(self.delay_s)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def params() -> BaseModel:
    return model_for(OP.name).model_validate({"id_number": "320117197208305970"})


def queries(tax: FakeTax, *, timeout_s: float = 1.0,
            gate: asyncio.Semaphore | None = None) -> tuple[TaxQueries, FakeJournal]:
    journal = FakeJournal()
    return TaxQueries(tax=tax, journal=journal, timeout_s=timeout_s,  # type: ignore[arg-type]
                      gate=gate or asyncio.Semaphore(MAX_IN_FLIGHT)), journal


async def test_records_are_answered_and_journaled() -> None:
    svc, journal = queries(FakeTax([{"amount": "12.00"}]))
    out = await svc.ask(OP, params())
    assert (out.status, out.records) == (200, [{"amount": "12.00"}]) and out.serial
    [entry] = journal.logs()
    assert (entry.outcome, entry.hop, entry.detail["status"]) == ("ok", "api.query", 200)
    assert entry.message_id == out.serial


@pytest.mark.parametrize(("error", "status", "code", "outcome"), [
    (BusinessRejected("TX404", "无欠费记录", partner="tax"), 422, "TX404", "rejected"),
    (ClientError("HTTP 400", partner="tax"), 502, "CLIENT_ERROR", "rejected"),
    (PartnerUnavailable("HTTP 503", partner="tax"), 503, "UNAVAILABLE", "failed"),
    (PartnerTimeout("read timeout", partner="tax"), 504, "TIMEOUT", "failed"),
])
async def test_each_failure_gets_its_status(error: Exception, status: int, code: str,
                                            outcome: str) -> None:
    svc, journal = queries(FakeTax(error))
    out = await svc.ask(OP, params())
    assert (out.status, out.code, out.records) == (status, code, None)
    assert journal.logs()[0].outcome == outcome and journal.logs()[0].detail["status"] == status


async def test_the_deadline_is_504() -> None:
    svc, journal = queries(FakeTax([], delay_s=1.0), timeout_s=0.01)
    out = await svc.ask(OP, params())
    assert (out.status, out.code) == (504, "TIMEOUT") and "within 0.01s" in out.reason
    assert journal.logs()[0].outcome == "timeout"


async def test_a_full_gate_is_busy_at_once_and_not_journaled() -> None:
    gate = asyncio.Semaphore(1)
    async with gate:
        svc, journal = queries(FakeTax([]), gate=gate)
        out = await svc.ask(OP, params())
    assert out == QueryAnswer(429, code="BUSY", reason=f"{MAX_IN_FLIGHT} queries in flight; "
                                                       "retry shortly")
    assert not journal.logs()

"""Queries the hub answers from stored return-file records (``STORED_ANSWERS``): tax is
never asked, the records are the stored ones, and no store is a clear 503."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from sqlalchemy.exc import OperationalError

from contracts.returnfile import ReturnRecord, synthetic_records
from contracts.taxcat import model_for
from services.queries import MAX_IN_FLIGHT, QUERIES, TaxQueries
from tests.support.fakes import FakeJournal

OP = QUERIES["flexible_deduction"]


class CountingTax:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def query(self, operation: str, req: BaseModel, *, serial: str
                    ) -> list[dict[str, Any]]:
        self.calls.append(operation)
        return [{"from": "tax"}]


class Stored:
    def __init__(self, rows: list[tuple[str, ReturnRecord]] | Exception) -> None:
        self.rows = rows
        self.asked: list[tuple[Any, ...]] = []

    async def payer_records(self, kinds: Sequence[str], payer_code: str, period_start: str,
                            period_end: str, *, mode: str | None = None,
                            limit: int = 1000) -> list[tuple[str, ReturnRecord]]:
        self.asked.append((tuple(kinds), payer_code, period_start, period_end, mode))
        if isinstance(self.rows, Exception):
            raise self.rows
        return self.rows


def svc(tax: CountingTax, stored: Stored | None) -> tuple[TaxQueries, FakeJournal]:
    journal = FakeJournal()
    return TaxQueries(tax=tax, journal=journal, timeout_s=1.0,  # type: ignore[arg-type]
                      gate=asyncio.Semaphore(MAX_IN_FLIGHT), stored=stored), journal


def asked(id_number: str) -> BaseModel:
    return model_for(OP.name).model_validate({"id_number": id_number, "period_start": "202501",
                                              "period_end": "202503"})


async def test_deductions_come_from_the_stored_records_and_tax_is_not_asked() -> None:
    ok, failed = list(synthetic_records("flex_deduct", 2, seed=1, fail_every=2))
    tax, stored = CountingTax(), Stored([("flex_deduct", ok), ("flex_deduct", failed)])
    queries, journal = svc(tax, stored)
    answer = await queries.ask(OP, asked(ok.payer_code))
    assert answer.status == 200 and tax.calls == []
    assert stored.asked == [(("flex_deduct", "special_deduct"), ok.payer_code, "202501",
                             "202503", "2")]
    assert answer.records == [
        {"id_number": ok.payer_code, "period_start": "202501", "insutype": ok.insutype,
         "amount": str(ok.amount_fen), "status": "1", "deduct_date": "2025-01-15"},
        {"id_number": failed.payer_code, "period_start": "202501",
         "insutype": failed.insutype, "amount": str(failed.amount_fen), "status": "0",
         "result_text": failed.fail_reason, "deduct_date": "2025-01-15"}]
    [entry] = journal.logs()
    assert (entry.partner, entry.hop, entry.outcome) == ("hub", "api.query.stored", "ok")


async def test_other_queries_still_ask_tax() -> None:
    tax, stored = CountingTax(), Stored([])
    queries, _ = svc(tax, stored)
    o = QUERIES["flexible_arrivals"]
    params = model_for(o.name).model_validate({"id_number": "320117197208305970",
                                               "period_start": "202501",
                                               "period_end": "202503"})
    assert (await queries.ask(o, params)).records == [{"from": "tax"}]
    assert tax.calls == ["QueryFlexibleArrivals"] and stored.asked == []


async def test_without_a_store_or_with_a_broken_one_the_answer_is_503() -> None:
    person = "320117197208305970"
    for stored in (None, Stored(OperationalError("select", {}, Exception("db down")))):
        tax = CountingTax()
        queries, _ = svc(tax, stored)
        answer = await queries.ask(OP, asked(person))
        assert (answer.status, answer.code) == (503, "UNAVAILABLE") and tax.calls == []
        assert person not in answer.reason

"""F4: the hub asks tax a question and answers within ``query_timeout_s``.

Queries do not go through the broker: an interactive question must not wait
behind bulk traffic in a work queue. They use the tax client's query lane (its
own connection pool), a bounded number in flight (``MAX_IN_FLIGHT``, beyond
which the caller is told BUSY at once rather than given a slow answer), and a
hard deadline. Every question asked is journaled with its outcome, duration
and the status the caller got.

A few queries are answered by the hub itself from what tax already returned
(``contracts.taxcat.STORED_ANSWERS``: the stored return-file records of F5, seed
line 2438 "查询税务回读后的信息表"); tax is not called for them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, Protocol

from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from adapters.tax.port import TaxPort
from contracts.envelope import new_id
from contracts.errors import BusinessRejected, HubError, PartnerUnavailable, PermanentError
from contracts.returnfile import ReturnRecord
from contracts.taxcat import STORED_ANSWERS, Op, ops_of
from storage.journal import Journal, LogEntry

__all__ = ["MAX_IN_FLIGHT", "QUERIES", "QueryAnswer", "StoredRecords", "TaxQueries",
           "stored_record"]

MAX_IN_FLIGHT: Final = 32
QUERIES: Final[dict[str, Op]] = {o.msg_type.removeprefix("tax.query."): o
                                 for o in ops_of("query")}
"""URL name (``person_arrears``) -> catalogue operation (``QueryPersonArrears``)."""


_SPECIAL_MODE_FLEXIBLE: Final = "2"
"""特殊缴费模式 of a flexible worker (``special_*`` return files, RETURNFILES.md)."""
MAX_STORED_RECORDS: Final = 1000


class StoredRecords(Protocol):
    """The stored return-file records (``storage.returnfiles.ReturnFileStore``)."""

    async def payer_records(self, kinds: Sequence[str], payer_code: str, period_start: str,
                            period_end: str, *, mode: str | None = None,
                            limit: int = 1000) -> list[tuple[str, ReturnRecord]]: ...


def stored_record(kind: str, r: ReturnRecord) -> dict[str, str]:
    """One stored deduction as a ``QueryFlexibleDeduction`` record (strings, like tax's)."""
    out = {"id_number": r.payer_code, "period_start": r.period, "insutype": r.insutype,
           "amount": str(r.amount_fen), "status": r.result, "result_text": r.fail_reason}
    if len(r.value_date) == 8:
        out["deduct_date"] = date(int(r.value_date[:4]), int(r.value_date[4:6]),
                                  int(r.value_date[6:])).isoformat()
    return {k: v for k, v in out.items() if v}


@dataclass(frozen=True)
class QueryAnswer:
    """Tax's records (status 200), or why not: ``status`` is what the caller is answered."""

    status: int
    serial: str = ""
    records: list[dict[str, Any]] | None = None
    code: str = ""
    reason: str = ""


def _status_for(exc: HubError) -> int:
    if exc.code == "TIMEOUT":
        return 504
    if isinstance(exc, BusinessRejected):
        return 422
    return 502 if isinstance(exc, PermanentError) else 503


@dataclass(frozen=True)
class TaxQueries:
    """Asks tax; ``gate`` bounds the questions in flight (one per API, shared)."""

    tax: TaxPort
    journal: Journal
    timeout_s: float
    gate: asyncio.Semaphore
    stored: StoredRecords | None = None
    """Where ``STORED_ANSWERS`` queries are answered from; None: they answer 503."""

    async def ask(self, o: Op, params: BaseModel) -> QueryAnswer:
        """Tax's answer to ``o`` (or the stored records', ``STORED_ANSWERS``), or BUSY (429,
        not journaled) when too many are in flight."""
        if self.gate.locked():
            return QueryAnswer(429, code="BUSY",
                               reason=f"{MAX_IN_FLIGHT} queries in flight; retry shortly")
        serial, started = new_id(), time.perf_counter()
        outcome = "ok"
        kinds = STORED_ANSWERS.get(o.name)
        try:
            async with self.gate, asyncio.timeout(self.timeout_s):
                if kinds is None:
                    records = await self.tax.query(o.name, params, serial=serial)
                else:
                    records = await self._stored(kinds, params)
            answer = QueryAnswer(200, serial, records)
        except TimeoutError:
            outcome = "timeout"
            answer = QueryAnswer(504, serial, code="TIMEOUT",
                                 reason=f"tax did not answer {o.name} within {self.timeout_s}s")
        except HubError as exc:
            outcome = "rejected" if isinstance(exc, PermanentError) else "failed"
            answer = QueryAnswer(_status_for(exc), serial, code=exc.public_code,
                                 reason=exc.reason)
        await self.journal.write(LogEntry(
            message_id=serial, correlation_id=serial, type=o.msg_type,
            partner="tax" if kinds is None else "hub",
            direction="out", hop="api.query" if kinds is None else "api.query.stored",
            outcome=outcome,
            duration_ms=int((time.perf_counter() - started) * 1000),
            detail={"params": params.model_dump(mode="json", exclude_none=True),
                    "status": answer.status}))
        return answer

    async def _stored(self, kinds: tuple[str, ...], params: BaseModel) -> list[dict[str, str]]:
        """The stored return-file records of the person and months asked; tax is not called."""
        if self.stored is None:
            raise PartnerUnavailable("no return-file store in this hub", partner="hub")
        p = params.model_dump(mode="json")
        try:
            rows = await self.stored.payer_records(
                kinds, str(p["id_number"]), str(p["period_start"]), str(p["period_end"]),
                mode=_SPECIAL_MODE_FLEXIBLE, limit=MAX_STORED_RECORDS)
        except (SQLAlchemyError, OSError) as exc:
            raise PartnerUnavailable(f"return-file store: {type(exc).__name__}",
                                     partner="hub") from exc
        return [stored_record(kind, r) for kind, r in rows]

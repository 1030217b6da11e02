"""F4: the hub asks tax a question and answers within ``query_timeout_s``.

Queries do not go through the broker: an interactive question must not wait
behind bulk traffic in a work queue. They use the tax client's query lane (its
own connection pool), a bounded number in flight (``MAX_IN_FLIGHT``, beyond
which the caller is told BUSY at once rather than given a slow answer), and a
hard deadline. Every question asked is journaled with its outcome, duration
and the status the caller got.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel

from adapters.tax.port import TaxPort
from contracts.envelope import new_id
from contracts.errors import BusinessRejected, HubError, PermanentError
from contracts.taxcat import Op, ops_of
from storage.journal import Journal, LogEntry

__all__ = ["MAX_IN_FLIGHT", "QUERIES", "QueryAnswer", "TaxQueries"]

MAX_IN_FLIGHT: Final = 32
QUERIES: Final[dict[str, Op]] = {o.msg_type.removeprefix("tax.query."): o
                                 for o in ops_of("query")}
"""URL name (``person_arrears``) -> catalogue operation (``QueryPersonArrears``)."""


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

    async def ask(self, o: Op, params: BaseModel) -> QueryAnswer:
        """Tax's answer to ``o``, or BUSY (429, not journaled) when too many are in flight."""
        if self.gate.locked():
            return QueryAnswer(429, code="BUSY",
                               reason=f"{MAX_IN_FLIGHT} queries in flight; retry shortly")
        serial, started = new_id(), time.perf_counter()
        outcome = "ok"
        try:
            async with self.gate, asyncio.timeout(self.timeout_s):
                records = await self.tax.query(o.name, params, serial=serial)
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
            message_id=serial, correlation_id=serial, type=o.msg_type, partner="tax",
            direction="out", hop="api.query", outcome=outcome,
            duration_ms=int((time.perf_counter() - started) * 1000),
            detail={"params": params.model_dump(mode="json", exclude_none=True),
                    "status": answer.status}))
        return answer

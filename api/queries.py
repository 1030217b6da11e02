"""F4 queries, both ways, answered synchronously within ``query_timeout_s``.

    POST /queries/tax/{name}     core (or a caseworker screen) asks tax, e.g. person_arrears
    GET  /queries/tax            the query names and their fields

Queries do not go through the broker: an interactive question must not wait
behind bulk traffic in a work queue. They use the tax client's query lane (its
own connection pool), a bounded number in flight (``MAX_IN_FLIGHT``, beyond
which the caller gets 429 at once rather than a slow answer), and a hard
deadline: past it the answer is 504 with the reason. Tax's questions to core
arrive as SOAP on ``/partners/tax/callback`` (``api/ingress.py``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from contracts.envelope import new_id
from contracts.errors import BusinessRejected, HubError, PermanentError, ValidationFailed
from contracts.taxcat import Op, model_for, ops_of
from services.deps import Deps
from storage.journal import LogEntry

__all__ = ["MAX_IN_FLIGHT", "QUERIES", "queries_router"]

MAX_IN_FLIGHT: Final = 32
QUERIES: Final[dict[str, Op]] = {o.msg_type.removeprefix("tax.query."): o
                                 for o in ops_of("query")}
"""URL name (``person_arrears``) -> catalogue operation (``QueryPersonArrears``)."""


def _error(status: int, code: str, reason: str,
           errors: list[tuple[str, str]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "reason": reason}
    if errors:
        body["errors"] = [{"field": f, "reason": r} for f, r in errors]
    return JSONResponse({"detail": body}, status_code=status)


def queries_router(deps: Deps) -> APIRouter:
    r = APIRouter(tags=["queries (F4)"])
    gate = asyncio.Semaphore(MAX_IN_FLIGHT)

    @r.get("/queries/tax", summary="The tax queries and their fields")
    async def list_queries() -> dict[str, Any]:
        return {name: {"operation": o.name, "title": o.title,
                       "fields": list(o.fields), "answer": list(o.reply)}
                for name, o in QUERIES.items()}

    @r.post("/queries/tax/{name}", summary="Ask tax (F4): answered within query_timeout_s")
    async def ask(name: str, request: Request) -> JSONResponse:
        o = QUERIES.get(name)
        if o is None:
            return _error(404, "UNKNOWN_QUERY", f"no tax query {name!r}; see GET /queries/tax")
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValidationFailed([("body", "must be a JSON object")])
            params = model_for(o.name).model_validate(body)
        except ValidationError as exc:
            err = ValidationFailed.of(exc)
            return _error(422, err.code, err.reason, err.errors)
        except ValidationFailed as exc:
            return _error(422, exc.code, exc.reason, exc.errors)
        except ValueError:
            return _error(400, "VALIDATION", "body: not JSON", [("body", "not JSON")])
        if gate.locked():
            return _error(429, "BUSY", f"{MAX_IN_FLIGHT} queries in flight; retry shortly")
        serial, started = new_id(), time.perf_counter()
        outcome, status = "ok", 200
        try:
            async with gate, asyncio.timeout(deps.settings.query_timeout_s):
                records = await deps.tax.query(o.name, params, serial=serial)
            response = JSONResponse({"query": name, "operation": o.name, "serial": serial,
                                     "records": records})
        except TimeoutError:
            outcome, status = "timeout", 504
            response = _error(504, "TIMEOUT", f"tax did not answer {o.name} within "
                                              f"{deps.settings.query_timeout_s}s")
        except HubError as exc:
            code = exc.reason_code if isinstance(exc, BusinessRejected) else exc.code
            outcome = "rejected" if isinstance(exc, PermanentError) else "failed"
            status = 422 if isinstance(exc, BusinessRejected) else (
                502 if isinstance(exc, PermanentError) else 503)
            status = 504 if exc.code == "TIMEOUT" else status
            response = _error(status, code, exc.reason)
        await deps.journal.write(LogEntry(
            message_id=serial, correlation_id=serial, type=o.msg_type, partner="tax",
            direction="out", hop="api.query", outcome=outcome,
            duration_ms=int((time.perf_counter() - started) * 1000),
            detail={"params": params.model_dump(mode="json", exclude_none=True),
                    "status": status}))
        return response

    return r

"""F4 queries over HTTP, answered synchronously within ``query_timeout_s``.

    POST /queries/tax/{name}     core (or a caseworker screen) asks tax, e.g. person_arrears
    GET  /queries/tax            the query names and their fields

The asking is ``services.queries.TaxQueries`` (bounded in flight, hard
deadline, journaled). Tax's questions to core arrive as SOAP on
``/partners/tax/callback`` (``api/ingress.py``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from api.deps import Queries
from contracts.errors import ValidationFailed
from contracts.taxcat import Op, model_for
from services.queries import QUERIES

__all__ = ["router"]

router = APIRouter(tags=["queries (F4)"])


def _error(status: int, code: str, reason: str,
           errors: list[tuple[str, str]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "reason": reason}
    if errors:
        body["errors"] = [{"field": f, "reason": r} for f, r in errors]
    return JSONResponse({"detail": body}, status_code=status)


async def _params(o: Op, request: Request) -> BaseModel:
    """The query's contract from the JSON body; ValidationFailed naming the field, or
    ValueError when the body is not JSON."""
    body = await request.json()
    if not isinstance(body, dict):
        raise ValidationFailed([("body", "must be a JSON object")])
    try:
        return model_for(o.name).model_validate(body)
    except ValidationError as exc:
        raise ValidationFailed.of(exc) from None


@router.get("/queries/tax", summary="The tax queries and their fields")
async def list_queries() -> dict[str, Any]:
    return {name: {"operation": o.name, "title": o.title,
                   "fields": list(o.fields), "answer": list(o.reply)}
            for name, o in QUERIES.items()}


@router.post("/queries/tax/{name}", summary="Ask tax (F4): answered within query_timeout_s")
async def ask(name: str, request: Request, queries: Queries) -> JSONResponse:
    o = QUERIES.get(name)
    if o is None:
        return _error(404, "UNKNOWN_QUERY", f"no tax query {name!r}; see GET /queries/tax")
    try:
        params = await _params(o, request)
    except ValidationFailed as exc:
        return _error(422, exc.code, exc.reason, exc.errors)
    except ValueError:
        return _error(400, "VALIDATION", "body: not JSON", [("body", "not JSON")])
    answer = await queries.ask(o, params)
    if answer.records is None:
        return _error(answer.status, answer.code, answer.reason)
    return JSONResponse({"query": name, "operation": o.name, "serial": answer.serial,
                         "records": answer.records})

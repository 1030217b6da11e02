"""F4 queries over HTTP, answered synchronously within ``query_timeout_s``.

    POST /queries/tax/{name}     core (or a caseworker screen) asks tax, e.g. person_arrears
    GET  /queries/tax            the query names and their fields

Queries answer with people's arrears by ID number, so only known callers ask
(``api.callers``): a partner that signs the request (``X-Partner`` headers; core),
or a person with a bearer token whose role is caseworker, operations, tester or
admin (``readonly`` is 403). A refusal (401/403) is logged once a minute per caller
and reason and never journaled. The body is read with the ``max_body_bytes`` bound
(413) and parsed with a nesting bound (422, field ``body``); errors name the field
and never echo what was sent. The asking is ``services.queries.TaxQueries``
(bounded in flight, hard deadline, journaled). Tax's questions to core arrive as
SOAP on ``/partners/tax/callback`` (``api/ingress.py``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ValidationError

from api.auth import BEARER
from api.body import BodyRefused, parse_json, read_body
from api.callers import (
    PARTNER_PARAMETERS,
    QUERY_PARTNERS,
    CallerRefused,
    authenticate_partner,
    authorize_query,
    refusals,
    signed_by_partner,
    who_knocks,
)
from api.deps import Queries, State
from api.problems import field_errors_of, problem
from contracts.errors import ValidationFailed
from contracts.taxcat import Op, model_for
from services.queries import QUERIES

__all__ = ["router"]

router = APIRouter(tags=["queries (F4)"])

_DOC = {"parameters": [p | {"required": False} for p in PARTNER_PARAMETERS]}


def _error(status: int, code: str, reason: str,
           errors: list[tuple[str, str]] | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    """A problem document (``api.problems``)."""
    return problem(status, reason, code=code, errors=field_errors_of(errors) if errors else None,
                   headers=headers)


def _params(o: Op, body: bytes) -> BaseModel:
    """The query's contract from the JSON body; ``BodyRefused`` when the body is not a
    JSON object (400) or nested too deeply (422), ``ValidationFailed`` naming the field."""
    data = parse_json(body)
    try:
        return model_for(o.name).model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed.of(exc) from None


async def _caller_body(state: State, request: Request,
                       creds: HTTPAuthorizationCredentials | None) -> bytes:
    """The body of an authorised caller: a signed partner's (read first: the signature
    covers it) or a token holder's (checked before reading anything)."""
    limit = state.deps.settings.max_body_bytes
    if not signed_by_partner(request):
        await authorize_query(state, request, creds)
        return await read_body(request, limit)
    try:
        body = await read_body(request, limit)
    except BodyRefused as exc:
        refusals.refused("queries", who_knocks(request), exc.status, exc.field, exc.reason)
        raise
    await authenticate_partner(state, request, body, door="queries", allowed=QUERY_PARTNERS)
    return body


@router.get("/queries/tax", summary="The tax queries and their fields")
async def list_queries() -> dict[str, Any]:
    return {name: {"operation": o.name, "title": o.title,
                   "fields": list(o.fields), "answer": list(o.reply)}
            for name, o in QUERIES.items()}


@router.post("/queries/tax/{name}", openapi_extra=_DOC,
             summary="Ask tax (F4): answered within query_timeout_s; a signed partner or a "
                     "bearer token with a query role")
async def ask(name: str, request: Request, queries: Queries, state: State,
              creds: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
              ) -> JSONResponse:
    try:
        body = await _caller_body(state, request, creds)
    except CallerRefused as exc:
        challenge = {"WWW-Authenticate": "Bearer"} if exc.status == 401 and \
            exc.field == "Authorization" else None
        return _error(exc.status, exc.code, exc.message, [(exc.field, exc.reason)], challenge)
    except BodyRefused as exc:
        return _error(exc.status, exc.code, f"{exc.field}: {exc.reason}",
                      [(exc.field, exc.reason)])
    o = QUERIES.get(name)
    if o is None:
        return _error(404, "UNKNOWN_QUERY", f"no tax query {name[:60]!r}; see GET /queries/tax")
    try:
        params = _params(o, body)
    except BodyRefused as exc:
        return _error(exc.status, "VALIDATION" if exc.status == 400 else exc.code,
                      f"{exc.field}: {exc.reason}", [(exc.field, exc.reason)])
    except ValidationFailed as exc:
        return _error(422, exc.code, exc.reason, exc.errors)
    answer = await queries.ask(o, params)
    if answer.records is None:
        return _error(answer.status, answer.code, answer.reason)
    return JSONResponse({"query": name, "operation": o.name, "serial": answer.serial,
                         "records": answer.records})

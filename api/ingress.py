"""Partner ingress over HTTP: core events (national envelope) and tax callbacks (SOAP).

Each endpoint reads the body (at most ``max_body_bytes``: 413 before reading more,
``api.body``), authenticates the partner (``api.callers``: ``X-Partner`` headers,
HMAC-SHA256 over the canonical request with the partner's secret; 401/403, logged
once a minute per caller and reason, never journaled), calls
``services.ingress.Ingress``, and answers in the partner's own protocol: success only
after the broker confirmed the message, and a bad request named by field and reason.
Core's JSON nested deeper than ``MAX_JSON_DEPTH`` is refused 422 (field ``body``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from adapters.tax.soap import build_fault, build_feedback_reply, build_query_reply, build_reply
from api.body import MAX_JSON_DEPTH, BodyRefused, json_too_deep, read_body
from api.callers import (
    PARTNER_PARAMETERS,
    CallerRefused,
    authenticate_partner,
    refusals,
    who_knocks,
)
from api.deps import IngressService, State
from contracts.errors import HubError, TransientError, ValidationFailed
from contracts.national import NationalResponse
from services.ingress import PushReceived

__all__ = ["router"]

router = APIRouter(tags=["partner ingress"])

_DOC = {"parameters": PARTNER_PARAMETERS}


async def _take(state: State, request: Request, door: str, partner: str) -> bytes:
    """The body of a call ``partner`` signed; ``BodyRefused`` (logged) or ``CallerRefused``."""
    try:
        body = await read_body(request, state.deps.settings.max_body_bytes)
    except BodyRefused as exc:
        refusals.refused(door, who_knocks(request), exc.status, exc.field, exc.reason)
        raise
    await authenticate_partner(state, request, body, door=door, allowed=(partner,))
    return body


@router.post("/partners/core/events", summary="Core business event (national envelope)",
             openapi_extra=_DOC)
async def core_event(request: Request, ingress: IngressService, state: State) -> JSONResponse:
    try:
        body = await _take(state, request, "core events", "core")
        if json_too_deep(body):
            exc = BodyRefused(422, "TOO_DEEP", "body",
                              f"nested deeper than {MAX_JSON_DEPTH} arrays/objects")
            refusals.refused("core events", "core", exc.status, exc.field, exc.reason)
            raise exc
    except (BodyRefused, CallerRefused) as exc:
        resp = NationalResponse.failure(f"{exc.field}: {exc.reason}", code=exc.code)
        return JSONResponse(resp.model_dump(mode="json"), status_code=exc.status)
    try:
        out = await ingress.core_event(body)
    except ValidationFailed as exc:
        resp = NationalResponse.failure(exc.reason, code=exc.code)
        return JSONResponse(resp.model_dump(mode="json"),
                            status_code=422 if exc.field != "body" else 400)
    return JSONResponse(NationalResponse.success(out).model_dump(mode="json"))


@router.post("/partners/tax/callback",
             summary="Tax calls the hub (SOAP 1.1): FeedbackNotify, F3 pushes, F4 core queries",
             openapi_extra=_DOC)
async def tax_callback(request: Request, ingress: IngressService, state: State) -> Response:
    try:
        body = await _take(state, request, "tax callback", "tax")
    except (BodyRefused, CallerRefused) as exc:
        return _soap(build_fault("Server" if exc.status >= 500 else "Client",
                                 f"{exc.field}: {exc.reason}"), exc.status)
    if b"FeedbackNotifyRequest" in body[:4096]:
        try:
            await ingress.tax_feedback(body)
        except HubError as exc:
            return _soap(build_feedback_reply(False, exc.reason), 400)
        return _soap(build_feedback_reply(True, "received"))
    try:
        out = await ingress.tax_call(body)
    except HubError as exc:
        return _soap(build_fault("Server" if isinstance(exc, TransientError) else "Client",
                                 exc.reason), 500)
    if isinstance(out, PushReceived):
        return _soap(build_reply(out.operation, True, msg="received"))
    return _soap(build_query_reply(out.operation, out.records, ok=out.ok, code=out.code,
                                   msg=out.text))


def _soap(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="text/xml; charset=utf-8")

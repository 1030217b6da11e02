"""Partner ingress over HTTP: core events (national envelope) and tax callbacks (SOAP).

Each endpoint reads the body, calls ``services.ingress.Ingress``, and answers in
the partner's own protocol: success only after the broker confirmed the
message, and a bad request named by field and reason.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from adapters.tax.soap import build_fault, build_feedback_reply, build_query_reply, build_reply
from api.deps import IngressService
from contracts.errors import HubError, TransientError, ValidationFailed
from contracts.national import NationalResponse
from services.ingress import PushReceived

__all__ = ["router"]

router = APIRouter(tags=["partner ingress"])


@router.post("/partners/core/events", summary="Core business event (national envelope)")
async def core_event(request: Request, ingress: IngressService) -> JSONResponse:
    try:
        out = await ingress.core_event(await request.body())
    except ValidationFailed as exc:
        resp = NationalResponse.failure(exc.reason, code=exc.code)
        return JSONResponse(resp.model_dump(mode="json"),
                            status_code=422 if exc.field != "body" else 400)
    return JSONResponse(NationalResponse.success(out).model_dump(mode="json"))


@router.post("/partners/tax/callback",
             summary="Tax calls the hub (SOAP 1.1): FeedbackNotify, F3 pushes, F4 core queries")
async def tax_callback(request: Request, ingress: IngressService) -> Response:
    body = await request.body()
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

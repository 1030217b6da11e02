"""Partner ingress over HTTP: core events (national envelope) and tax callbacks (SOAP).

An ingress answers success only after the message is confirmed by the broker;
a bad request is answered in the partner's own protocol, naming the field and
the reason, and is recorded as rejected (nothing is silently dropped).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from adapters.core.translate import CORE_EVENT_TYPES, event_to_enrollment, parse_national_request
from adapters.tax.soap import build_feedback_reply, parse_feedback_request
from contracts.envelope import HubMessage, entity_key, idempotency_key, new_id
from contracts.national import NationalResponse
from retry.errors import HubError, ValidationFailed
from routes.deps import Deps
from routes.employee import FEEDBACK
from storage.journal import LogEntry, TxnUpdate

__all__ = ["ingress_router"]

log = logging.getLogger("hub.ingress")


def ingress_router(deps: Deps) -> APIRouter:
    r = APIRouter(tags=["partner ingress"])

    @r.post("/partners/core/events", summary="Core business event (national envelope)")
    async def core_event(request: Request) -> JSONResponse:
        body = await request.body()
        cid = new_id()
        try:
            req = parse_national_request(body, deps.settings.max_body_bytes,
                                         known_infnos=CORE_EVENT_TYPES)
            type_ = CORE_EVENT_TYPES[req.infno]
            enrollment = event_to_enrollment(req.input)
        except ValidationFailed as exc:
            await deps.journal.write(
                LogEntry(message_id="-", correlation_id=cid, type="core.event", partner="core",
                         direction="in", hop="ingress.core", outcome="rejected",
                         detail=exc.reason),
                TxnUpdate(cid, "core.event", "-", "core", "rejected", exc.code,
                          exc.reason[:1000]))
            resp = NationalResponse.failure(exc.reason, code=exc.code)
            return JSONResponse(resp.model_dump(mode="json"), status_code=422
                                if exc.field != "body" else 400)
        payload = enrollment.model_dump(mode="json")
        msg = HubMessage(type=type_, source="core", target="tax", correlation_id=cid,
                         causation_id=req.msgid,
                         idempotency_key=idempotency_key(type_, enrollment.business_key,
                                                         payload),
                         entity_key=entity_key("psn", enrollment.id_number), payload=payload)
        await deps.publisher.publish(msg)  # confirmed before we answer: nothing lost
        await deps.journal.write(
            LogEntry(message_id=msg.message_id, correlation_id=cid, type=type_,
                     partner="core", direction="in", hop="ingress.core", outcome="ok",
                     detail={"msgid": req.msgid, "id_number": enrollment.id_number}),
            TxnUpdate(cid, type_, enrollment.business_key, "core", "received",
                      only_if_new=True))
        out = {"hub_msg_id": msg.message_id, "correlation_id": cid}
        return JSONResponse(NationalResponse.success(out).model_dump(mode="json"))

    @r.post("/partners/tax/callback", summary="Tax FeedbackNotify (SOAP 1.1)")
    async def tax_callback(request: Request) -> Response:
        body = await request.body()
        try:
            fb = parse_feedback_request(body, max_bytes=deps.settings.max_body_bytes)
        except HubError as exc:
            await deps.journal.write(LogEntry(
                message_id="-", correlation_id="-", type=FEEDBACK, partner="tax",
                direction="in", hop="ingress.tax", outcome="rejected", detail=exc.reason))
            return Response(build_feedback_reply(False, exc.reason), status_code=400,
                            media_type="text/xml; charset=utf-8")
        payload = fb.model_dump(mode="json")
        msg = HubMessage(type=FEEDBACK, source="tax", target="core",
                         correlation_id=fb.biz_msg_id, causation_id=fb.accept_no,
                         idempotency_key=idempotency_key(FEEDBACK, fb.biz_msg_id, payload),
                         payload=payload)
        await deps.publisher.publish(msg)
        return Response(build_feedback_reply(True, "received"),
                        media_type="text/xml; charset=utf-8")

    return r

"""Partner ingress over HTTP: core events (national envelope) and tax callbacks (SOAP).

An ingress answers success only after the message is confirmed by the broker;
a bad request is answered in the partner's own protocol, naming the field and
the reason, and is recorded as rejected (nothing is silently dropped).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from adapters.core.translate import (
    CORE_EVENT_TYPES,
    INFNO_EMPLOYEE_BATCH,
    INFNO_ENROLL,
    batch_items,
    event_to_payload,
    parse_national_request,
)
from adapters.tax.soap import (
    build_fault,
    build_feedback_reply,
    build_query_reply,
    build_reply,
    parse_feedback_request,
    parse_request,
)
from contracts.envelope import HubMessage, entity_key, idempotency_key, new_id
from contracts.errors import BusinessRejected, HubError, TransientError, ValidationFailed
from contracts.messages import ENROLL, FEEDBACK
from contracts.national import NationalResponse
from contracts.taxcat import Op, from_wire, model_for
from contracts.taxcat import op as catalogue_op
from services.deps import Deps
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
                                         known_infnos=(*CORE_EVENT_TYPES, INFNO_EMPLOYEE_BATCH))
            if req.infno == INFNO_EMPLOYEE_BATCH:
                return await core_batch(req.msgid, batch_items(req.input))
            o, contract = event_to_payload(req.infno, req.input)
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
        msg = await publish_event(o, contract, cid, req.msgid)
        out = {"hub_msg_id": msg.message_id, "correlation_id": cid}
        return JSONResponse(NationalResponse.success(out).model_dump(mode="json"))

    async def publish_event(o: Op, contract: BaseModel, cid: str, causation: str) -> HubMessage:
        payload = contract.model_dump(mode="json", exclude_none=True)
        business_key = o.business_key(payload)
        msg = HubMessage(type=o.msg_type, source="core", target="tax", correlation_id=cid,
                         causation_id=causation,
                         idempotency_key=idempotency_key(o.msg_type, business_key, payload),
                         entity_key=entity_key(o.entity_prefix, o.entity_value(payload)),
                         payload=payload)
        await deps.publisher.publish(msg)  # confirmed before we answer: nothing lost
        await deps.journal.write(
            LogEntry(message_id=msg.message_id, correlation_id=cid, type=o.msg_type,
                     partner="core", direction="in", hop="ingress.core", outcome="ok",
                     detail={"msgid": causation, "key": business_key}),
            TxnUpdate(cid, o.msg_type, business_key, "core", "received", only_if_new=True))
        return msg

    async def core_batch(msgid: str, rows: list[Any]) -> JSONResponse:
        """H2107 职工批量参保登记: each row becomes its own enrollment; bad rows are answered
        by index with their fields and journaled as rejected, the good ones go on."""
        accepted: list[dict[str, Any]] = []
        refused: list[dict[str, Any]] = []
        for i, row in enumerate(rows):
            cid = new_id()
            try:
                o, contract = event_to_payload(INFNO_ENROLL, row)
            except ValidationFailed as exc:
                await deps.journal.write(TxnUpdate(
                    cid, ENROLL, f"{msgid}#{i}", "core", "rejected", exc.code,
                    exc.reason[:1000]))
                refused.append({"index": i, "correlation_id": cid, "errors": [
                    {"field": f, "reason": r} for f, r in exc.errors]})
                continue
            await publish_event(o, contract, cid, f"{msgid}#{i}")
            accepted.append({"index": i, "correlation_id": cid})
        out = {"accepted": accepted, "rejected": refused}
        return JSONResponse(NationalResponse.success(out).model_dump(mode="json"))

    @r.post("/partners/tax/callback",
            summary="Tax calls the hub (SOAP 1.1): FeedbackNotify, F3 pushes, F4 core queries")
    async def tax_callback(request: Request) -> Response:
        body = await request.body()
        if b"FeedbackNotifyRequest" not in body[:4096]:
            return await tax_call(body)
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

    async def tax_call(body: bytes) -> Response:
        """A push (published, then S) or a question for core (answered with its records)."""
        try:
            name, serial, fields = parse_request(body, max_bytes=deps.settings.max_body_bytes,
                                                 kinds=("push", "core_query"))
            o = catalogue_op(name)
            try:
                contract = model_for(name).model_validate(from_wire(o, fields))
            except ValidationError as exc:
                raise xml_validation_error(o, exc) from None
        except HubError as exc:
            await deps.journal.write(LogEntry(
                message_id="-", correlation_id="-", type="tax.call", partner="tax",
                direction="in", hop="ingress.tax", outcome="rejected", detail=exc.reason))
            return _soap(build_fault("Client", exc.reason), 500)
        payload = contract.model_dump(mode="json", exclude_none=True)
        if o.kind == "core_query":
            return await core_query(o, serial, payload)
        key = o.business_key(payload)
        msg = HubMessage(type=o.msg_type, source="tax", target="core", correlation_id=new_id(),
                         causation_id=serial,
                         idempotency_key=idempotency_key(o.msg_type, key, payload),
                         entity_key=entity_key(o.entity_prefix, o.entity_value(payload)),
                         payload=payload)
        await deps.publisher.publish(msg)  # confirmed: only then does tax hear S
        await deps.journal.write(
            LogEntry(message_id=msg.message_id, correlation_id=msg.correlation_id,
                     type=o.msg_type, partner="tax", direction="in", hop="ingress.tax",
                     outcome="ok", detail={"serial": serial, "key": key}),
            TxnUpdate(msg.correlation_id, o.msg_type, key, "tax", "received",
                      only_if_new=True))
        return _soap(build_reply(name, True, msg="received"))

    async def core_query(o: Op, serial: str, params: dict[str, Any]) -> Response:
        try:
            async with asyncio.timeout(deps.settings.query_timeout_s):
                records = await deps.core.query(o.core_infno, params)
        except TimeoutError:
            return _soap(build_fault("Server", f"core did not answer within "
                                               f"{deps.settings.query_timeout_s}s"), 500)
        except BusinessRejected as exc:
            return _soap(build_query_reply(o.name, [], ok=False, code=exc.reason_code,
                                           msg=exc.reason_text))
        except HubError as exc:
            return _soap(build_fault("Server" if isinstance(exc, TransientError) else "Client",
                                     exc.reason), 500)
        await deps.journal.write(LogEntry(
            message_id=serial, correlation_id=serial, type=o.msg_type, partner="core",
            direction="out", hop="ingress.tax_query", outcome="ok",
            detail={"records": len(records)}))
        return _soap(build_query_reply(o.name, records))

    return r


def _soap(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="text/xml; charset=utf-8")


def xml_validation_error(o: Op, exc: ValidationError) -> ValidationFailed:
    """Contract errors named by tax's element names, the names tax's engineers know."""
    to_xml = {f.attr: f.xml for f in o.wire_fields}
    return ValidationFailed([
        (to_xml.get(str(e["loc"][0]), str(e["loc"][0])) if e["loc"] else f"{o.name}Request",
         str(e["msg"]).removeprefix("Value error, ")) for e in exc.errors()])

"""What the hub does with what partners send it: core events, tax feedback, pushes, queries.

Every message is published with a broker confirm *before* the partner hears
success, so nothing is lost; a bad request names the field and the reason and
is journaled as rejected (nothing is silently dropped). The partner's own
protocol (national envelope, SOAP) is the HTTP layer's: these functions take
bytes and give back what happened, or raise the ``HubError`` the partner is
told about.

    core event       published to its lane (an H2107 batch: one enrollment per row)
    tax feedback     published to ``tax.feedback``
    tax push (F3)    published to ``core.tax_push.*``
    core query (F4)  tax asks core; answered within ``query_timeout_s``, not published
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from adapters.core.port import CorePort
from adapters.core.translate import (
    CORE_EVENT_TYPES,
    INFNO_EMPLOYEE_BATCH,
    INFNO_ENROLL,
    INFNO_REVIEW,
    batch_items,
    event_to_payload,
    parse_national_request,
)
from adapters.tax.soap import parse_feedback_request, parse_request
from contracts.channels import ApplicationReview
from contracts.envelope import HubMessage, new_id
from contracts.errors import BusinessRejected, HubError, PartnerTimeout, ValidationFailed
from contracts.messages import (
    ENROLL,
    FEEDBACK,
    REVIEW,
    feedback_message,
    operation_message,
    review_message,
)
from contracts.taxcat import Op, from_wire, model_for
from contracts.taxcat import op as catalogue_op
from kernel.deps import Publisher
from storage.journal import Journal, LogEntry, TxnUpdate

__all__ = ["CoreAnswer", "Ingress", "PushReceived", "xml_validation_error"]


@dataclass(frozen=True)
class PushReceived:
    """A tax push, published: tax hears ``S``."""

    operation: str
    message: HubMessage


@dataclass(frozen=True)
class CoreAnswer:
    """Core's answer to tax's question: its records, or its refusal (code and text)."""

    operation: str
    records: list[dict[str, Any]]
    ok: bool = True
    code: str | None = None
    text: str = ""


def _review(raw: object) -> ApplicationReview:
    """H2502 ``input.data``: core's review, fields named ``data.<field>``."""
    data = raw.get("data") if isinstance(raw, Mapping) else None
    try:
        return ApplicationReview.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed.of(exc, prefix="data.") from None


def xml_validation_error(o: Op, exc: ValidationError) -> ValidationFailed:
    """Contract errors named by tax's element names, the names tax's engineers know."""
    return ValidationFailed.of(exc, rename={f.attr: f.xml for f in o.wire_fields},
                               default=f"{o.name}Request")


@dataclass(frozen=True)
class Ingress:
    """The partner doors' work; its collaborators are the ports it uses and two limits."""

    publisher: Publisher
    journal: Journal
    core: CorePort
    max_body_bytes: int
    query_timeout_s: float

    # ------------------------------------------------------------ core

    async def core_event(self, body: bytes) -> dict[str, Any]:
        """A core event (national envelope), published; the output of core's answer.

        ``ValidationFailed`` (journaled as a rejected ``core.event``) when the
        envelope or the event is wrong; its ``field`` is ``body`` when the bytes
        are not an envelope at all. An H2107 batch answers each row by index.
        """
        cid = new_id()
        try:
            req = parse_national_request(body, self.max_body_bytes,
                                         known_infnos=(*CORE_EVENT_TYPES, INFNO_EMPLOYEE_BATCH,
                                                       INFNO_REVIEW))
            if req.infno == INFNO_EMPLOYEE_BATCH:
                return await self._core_batch(req.msgid, batch_items(req.input))
            if req.infno == INFNO_REVIEW:
                review = _review(req.input)
            else:
                o, contract = event_to_payload(req.infno, req.input)
        except ValidationFailed as exc:
            await self.journal.write(
                LogEntry(message_id="-", correlation_id=cid, type="core.event", partner="core",
                         direction="in", hop="ingress.core", outcome="rejected",
                         detail=exc.reason),
                TxnUpdate(cid, "core.event", "-", "core", "rejected", exc.code,
                          exc.reason[:1000]))
            raise
        if req.infno == INFNO_REVIEW:
            msg = review_message(review.model_dump(mode="json"), causation_id=req.msgid)
            await self.publisher.publish(msg)  # confirmed before core hears success
            await self.journal.write(LogEntry(
                message_id=msg.message_id, correlation_id=msg.correlation_id, type=REVIEW,
                partner="core", direction="in", hop="ingress.core", outcome="ok",
                detail={"msgid": req.msgid, "approved": review.approved,
                        "review_kind": review.review_kind}))
            return {"hub_msg_id": msg.message_id, "correlation_id": msg.correlation_id}
        msg = await self._publish_core(o, contract, cid, req.msgid)
        return {"hub_msg_id": msg.message_id, "correlation_id": cid}

    async def _core_batch(self, msgid: str, rows: Sequence[Mapping[str, Any]]
                          ) -> dict[str, Any]:
        """H2107 职工批量参保登记: each row becomes its own enrollment; bad rows are answered
        by index with their fields and journaled as rejected, the good ones go on."""
        accepted: list[dict[str, Any]] = []
        refused: list[dict[str, Any]] = []
        for i, row in enumerate(rows):
            cid = new_id()
            try:
                o, contract = event_to_payload(INFNO_ENROLL, row)
            except ValidationFailed as exc:
                await self.journal.write(TxnUpdate(
                    cid, ENROLL, f"{msgid}#{i}", "core", "rejected", exc.code,
                    exc.reason[:1000]))
                refused.append({"index": i, "correlation_id": cid, "errors": [
                    {"field": f, "reason": r} for f, r in exc.errors]})
                continue
            await self._publish_core(o, contract, cid, f"{msgid}#{i}")
            accepted.append({"index": i, "correlation_id": cid})
        return {"accepted": accepted, "rejected": refused}

    async def _publish_core(self, o: Op, contract: BaseModel, cid: str,
                            causation: str) -> HubMessage:
        payload = contract.model_dump(mode="json", exclude_none=True)
        msg = operation_message(o, payload, source="core", target="tax", correlation_id=cid,
                                causation_id=causation)
        await self.publisher.publish(msg)  # confirmed before we answer: nothing lost
        await self.journal.write(
            LogEntry(message_id=msg.message_id, correlation_id=cid, type=o.msg_type,
                     partner="core", direction="in", hop="ingress.core", outcome="ok",
                     detail={"msgid": causation, "key": o.business_key(payload)}),
            TxnUpdate(cid, o.msg_type, o.business_key(payload), "core", "received",
                      only_if_new=True))
        return msg

    # ------------------------------------------------------------ tax

    async def tax_feedback(self, body: bytes) -> HubMessage:
        """Tax's FeedbackNotify, published; a ``HubError`` (journaled) when it is unreadable."""
        try:
            fb = parse_feedback_request(body, max_bytes=self.max_body_bytes)
        except HubError as exc:
            await self.journal.write(LogEntry(
                message_id="-", correlation_id="-", type=FEEDBACK, partner="tax",
                direction="in", hop="ingress.tax", outcome="rejected", detail=exc.reason))
            raise
        msg = feedback_message(fb)
        await self.publisher.publish(msg)
        return msg

    async def tax_call(self, body: bytes) -> PushReceived | CoreAnswer:
        """A push (published) or a question for core (answered with its records).

        A request that is not one is journaled and raised as ``ValidationFailed``;
        core failing to answer raises its ``HubError`` (``PartnerTimeout`` past
        ``query_timeout_s``); core refusing the question is an answer, not ok.
        """
        try:
            name, serial, fields = parse_request(body, max_bytes=self.max_body_bytes,
                                                 kinds=("push", "core_query"))
            o = catalogue_op(name)
            try:
                contract = model_for(name).model_validate(from_wire(o, fields))
            except ValidationError as exc:
                raise xml_validation_error(o, exc) from None
        except HubError as exc:
            await self.journal.write(LogEntry(
                message_id="-", correlation_id="-", type="tax.call", partner="tax",
                direction="in", hop="ingress.tax", outcome="rejected", detail=exc.reason))
            raise
        payload = contract.model_dump(mode="json", exclude_none=True)
        if o.kind == "core_query":
            return await self._core_query(o, serial, payload)
        msg = operation_message(o, payload, source="tax", target="core", causation_id=serial)
        await self.publisher.publish(msg)  # confirmed: only then does tax hear S
        key = o.business_key(payload)
        await self.journal.write(
            LogEntry(message_id=msg.message_id, correlation_id=msg.correlation_id,
                     type=o.msg_type, partner="tax", direction="in", hop="ingress.tax",
                     outcome="ok", detail={"serial": serial, "key": key}),
            TxnUpdate(msg.correlation_id, o.msg_type, key, "tax", "received",
                      only_if_new=True))
        return PushReceived(name, msg)

    async def _core_query(self, o: Op, serial: str, params: dict[str, Any]) -> CoreAnswer:
        try:
            async with asyncio.timeout(self.query_timeout_s):
                records = await self.core.query(o.core_infno, params)
        except TimeoutError:
            raise PartnerTimeout(f"core did not answer within {self.query_timeout_s}s",
                                 partner="core") from None
        except BusinessRejected as exc:
            return CoreAnswer(o.name, [], ok=False, code=exc.public_code, text=exc.public_text)
        await self.journal.write(LogEntry(
            message_id=serial, correlation_id=serial, type=o.msg_type, partner="core",
            direction="out", hop="ingress.tax_query", outcome="ok",
            detail={"records": len(records)}))
        return CoreAnswer(o.name, records)

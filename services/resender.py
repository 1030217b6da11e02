"""One 补发 (F6), audited: read core, build, publish (confirmed), journal, record who and why.

A resend reads core's current state (H1102 for an employee, H1103 for a unit,
flexible worker or resident), builds the message with the pure builders of
``services.resend``, publishes it with a broker confirm, and records a new
transaction (source ``resend``, status ``received``) with who asked and why in
the interaction log (hop ``admin.resend``). Each resend is a new business
transaction and a new serial at tax: see ``services/resend.py`` for why that is
intended.

``audit`` (optional) gets one ``record`` per resend: who, role, action, target
(ID number masked), why, outcome. An audit that fails is logged and does not
undo a resend already published: its actor, reason and resend id are in the
interaction log too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final

from adapters.core.port import CorePort
from contracts.employee import ResendRequest
from contracts.envelope import HubMessage, new_id
from contracts.errors import HubError, PermanentError, ValidationFailed
from contracts.masking import mask_id, mask_text
from contracts.resend import RecordResendRequest
from kernel.deps import Publisher
from services.audit import Actor, Audit, Caller
from services.resend import (
    RESEND_SOURCE,
    record_resend_message,
    resend_messages,
    unit_all_steps,
)
from storage.journal import Journal, LogEntry, TxnUpdate

__all__ = ["ANONYMOUS", "ROLE", "AnyResend", "Resender", "Resent", "error_detail",
           "masked_target"]

log = logging.getLogger("hub.resend")

ROLE: Final = "caseworker"
ANONYMOUS: Final = Caller("anonymous", ROLE)
"""The actor of a resend nobody signed for (an app without authentication: tests)."""

AnyResend = ResendRequest | RecordResendRequest


@dataclass(frozen=True)
class Resent:
    """A published resend: its id (quoted in the audit) and the message sent (the first,
    when a unit's ``all`` sent several: ``messages``)."""

    resend_id: str
    message: HubMessage
    more: tuple[HubMessage, ...] = ()

    @property
    def messages(self) -> tuple[HubMessage, ...]:
        return (self.message, *self.more)


def error_detail(exc: HubError) -> dict[str, Any]:
    """What an originator is told about a failed resend (and what the audit keeps)."""
    body: dict[str, Any] = {"code": exc.public_code, "reason": exc.reason}
    if isinstance(exc, ValidationFailed):
        body["errors"] = [{"field": f, "reason": r} for f, r in exc.errors]
    return body


def masked_target(business_key: str) -> str:
    """An audit target without the full ID number."""
    unit, _, id_number = business_key.partition(":")
    return f"{unit}:{mask_id(id_number)}" if id_number else mask_text(business_key)


def _business_key(request: AnyResend) -> str:
    if isinstance(request, ResendRequest):
        return request.business_key
    return request.key if request.subject == "unit" else request.key.upper()


def _subject(request: AnyResend) -> str:
    return "employee" if isinstance(request, ResendRequest) else request.subject


@dataclass(frozen=True)
class Resender:
    """Resends one record at a time; its collaborators are the ports it uses."""

    core: CorePort
    publisher: Publisher
    journal: Journal
    audit: Audit | None = None

    async def resend(self, request: AnyResend, actor: Actor,
                     resend_id: str | None = None) -> Resent:
        """One audited resend. A ``HubError`` (core refuses, core down) is audited, then raised;
        anything else (broker, database) is audited as failed and raised as it is."""
        resend_id = resend_id or new_id()
        action = f"resend.{_subject(request)}.{request.action}"
        target = masked_target(_business_key(request))
        why: dict[str, Any] = {"reason": request.reason, "resend_id": resend_id}
        if request.stop_date is not None:
            why |= {"stop_date": request.stop_date.isoformat(), "stop_reason":
                    request.stop_reason}
        try:
            sent = await self._publish_all(request, actor=actor.user, resend_id=resend_id)
        except HubError as exc:
            await self.record(actor, action, target, why | error_detail(exc), "rejected"
                              if isinstance(exc, PermanentError) else "failed")
            raise
        except Exception as exc:
            await self.record(actor, action, target, why | {"error": type(exc).__name__},
                              "failed")
            raise
        await self.record(actor, action, target, why | {
            "correlation_id": sent[0].correlation_id,
            **({"steps": [m.type for m in sent]} if len(sent) > 1 else {})}, "accepted")
        return Resent(resend_id, sent[0], tuple(sent[1:]))

    async def record(self, who: Actor, action: str, target: str, detail: dict[str, Any],
                     outcome: str) -> None:
        """Audit; a failure is logged, never raised: the resend it records stands."""
        if self.audit is None:
            return
        try:
            await self.audit.record(who.user, who.role, action, target, detail, outcome)
        except Exception:
            log.exception("auditing %s of %s (%s) failed", action, target, outcome)

    async def _publish_all(self, request: AnyResend, *, actor: str,
                           resend_id: str) -> list[HubMessage]:
        """One message, or a unit's ``all`` (core read once; each step its own transaction,
        published in order, each step's id ``<resend_id>-<n>``)."""
        if isinstance(request, RecordResendRequest) and request.action == "all":
            record = await self.core.get_record(request.subject, request.record_key)
            steps = unit_all_steps(request, record)
            msgs = [record_resend_message(s, record, resend_id=f"{resend_id}-{i + 1}",
                                          actor=actor) for i, s in enumerate(steps)]
            return [await self._publish(s, actor=actor, resend_id=resend_id, built=m)
                    for s, m in zip(steps, msgs, strict=True)]
        return [await self._publish(request, actor=actor, resend_id=resend_id)]

    async def _publish(self, request: AnyResend, *, actor: str, resend_id: str,
                       built: HubMessage | None = None) -> HubMessage:
        """Read core, build, publish (confirmed), then journal the new transaction."""
        if isinstance(request, ResendRequest):
            current = await self.core.get_employee(request.id_number, request.unit_credit_code)
            msg = resend_messages(request, current, resend_id=resend_id, actor=actor)
            key_detail = {"id_number": request.id_number}
            business_key = (f"{msg.payload.get('unit_credit_code', '')}:"
                            f"{msg.payload.get('id_number', '')}")
        else:
            if built is None:
                record = await self.core.get_record(request.subject, request.record_key)
                built = record_resend_message(request, record, resend_id=resend_id,
                                              actor=actor)
            msg = built
            key_detail = {"key": request.key, "subject": request.subject}
            business_key = _business_key(request)
        await self.publisher.publish(msg)
        detail = {"resend_id": resend_id, "actor": actor, "reason": request.reason,
                  "action": request.action, **key_detail}
        if request.stop_date is not None:
            detail["stop_date"] = request.stop_date.isoformat()
        await self.journal.write(
            LogEntry(message_id=msg.message_id, correlation_id=msg.correlation_id,
                     type=msg.type, partner="hub", direction="in", hop="admin.resend",
                     outcome="ok", detail=detail),
            TxnUpdate(msg.correlation_id, msg.type, business_key, RESEND_SOURCE,
                      "received", only_if_new=True))
        return msg

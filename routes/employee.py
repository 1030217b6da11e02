"""F2 职工参保登记 and the result path every tax submit shares.

``enroll_to_tax`` is the typed hot path of 职工参保登记 (bound in the
``tax.employee`` lane by ``routes.tax_catalogue``); ``feedback_to_core`` and
``sync_to_core`` carry tax's result (FeedbackNotify) back to core for every
submit. Each handler parses, calls one port, and says what to publish and
record; the runtime does the rest (retries, DLQ, journal, acks).
"""

from __future__ import annotations

from pydantic import ValidationError

from contracts.employee import EmployeeEnrollment, SyncStatusUpdate, TaxAck, TaxFeedback
from contracts.envelope import HubMessage, idempotency_key
from contracts.taxcat import OPS_BY_TYPE
from retry.errors import BusinessRejected, HubError, PermanentError, TransientError
from routes.channel_results import application_id_of, result_message
from routes.deps import Deps
from routes.runtime import Outcome, Route, validation_error
from storage.journal import RequestRecord, TxnUpdate

__all__ = ["ENROLL", "FEEDBACK", "RESULT_ROUTES", "SYNC", "submitted_to_tax", "sync_message",
           "tax_failed"]

ENROLL = "tax.employee.enroll"
FEEDBACK = "tax.feedback"
SYNC = "core.sync_status"
FEEDBACK_WAIT_S = 0.5
"""How long a feedback waits in-process for its request to be recorded before retrying."""


def sync_message(update: SyncStatusUpdate, *, cause: HubMessage, entity_key: str) -> HubMessage:
    """The message that tells core the outcome; its key is derived from the outcome itself."""
    payload = update.model_dump(mode="json")
    return HubMessage(type=SYNC, source="hub", target="core",
                      correlation_id=update.correlation_id, causation_id=cause.message_id,
                      idempotency_key=idempotency_key(SYNC, update.business_key, payload),
                      entity_key=entity_key, payload=payload)


def _parse_enrollment(msg: HubMessage) -> EmployeeEnrollment:
    try:
        return EmployeeEnrollment.model_validate(msg.payload)
    except ValidationError as exc:
        raise validation_error(exc, prefix="payload.") from None


async def enroll_to_tax(msg: HubMessage, deps: Deps) -> Outcome:
    req = _parse_enrollment(msg)
    ack = await deps.tax.enroll_employee(req, serial=msg.message_id)
    return submitted_to_tax(msg, req.business_key, ack,
                            {"accept_no": ack.accept_no, "id_number": req.id_number})


def submitted_to_tax(msg: HubMessage, business_key: str, ack: TaxAck,
                     detail: dict[str, str]) -> Outcome:
    """Tax acknowledged: remember the serial its feedback will echo, mark it submitted."""
    return Outcome(
        requests=(RequestRecord(serial=msg.message_id, partner="tax",
                                correlation_id=msg.correlation_id, type=msg.type,
                                business_key=business_key, entity_key=msg.entity_key,
                                accept_no=ack.accept_no),),
        txn=TxnUpdate(msg.correlation_id, msg.type, business_key, msg.source, "submitted",
                      attempts=msg.attempt + 1),
        detail=detail,
        result={"outcome": "submitted", "accept_no": ack.accept_no},
    )


async def tax_failed(msg: HubMessage, exc: HubError, deps: Deps) -> Outcome:
    """Tell core why tax did not take a request (rejected, invalid, or gave up)."""
    p = msg.payload
    o = OPS_BY_TYPE.get(msg.type)
    business_key = o.business_key(p) if o else \
        f"{p.get('unit_credit_code', '')}:{p.get('id_number', '')}"
    code = exc.reason_code if isinstance(exc, BusinessRejected) else exc.code
    text = exc.reason_text if isinstance(exc, BusinessRejected) else exc.reason
    status = "rejected" if isinstance(exc, PermanentError) else "failed"
    update = SyncStatusUpdate(correlation_id=msg.correlation_id, biz_type=msg.type,
                              business_key=business_key,
                              id_number=str(p.get("id_number", ""))[:18],
                              status=status, reason_code=code, reason_text=text[:500])
    return Outcome(
        outputs=(sync_message(update, cause=msg, entity_key=msg.entity_key),),
        txn=TxnUpdate(msg.correlation_id, msg.type, business_key, msg.source,
                      "rejected" if status == "rejected" else "dead", code, text,
                      attempts=msg.attempt + 1),
    )


enroll_failed = tax_failed  # the name the enrollment route's tests use


async def feedback_to_core(msg: HubMessage, deps: Deps) -> Outcome:
    try:
        fb = TaxFeedback.model_validate(msg.payload)
    except ValidationError as exc:
        raise validation_error(exc, prefix="payload.") from None
    req = await deps.journal.request(fb.biz_msg_id, wait_s=FEEDBACK_WAIT_S)
    if req is None:
        # Tax can answer before our own record of the request is committed: wait for it.
        raise TransientError(f"feedback for serial {fb.biz_msg_id} arrived before its request "
                             "was recorded", partner="tax")
    accepted = fb.status == "accepted"
    update = SyncStatusUpdate(correlation_id=req.correlation_id, biz_type=req.type,
                              business_key=req.business_key, id_number=fb.id_number,
                              status="synced" if accepted else "rejected",
                              reason_code=fb.reason_code, reason_text=fb.reason_text,
                              accept_no=fb.accept_no)
    status = "accepted" if accepted else "rejected"
    return Outcome(
        outputs=(sync_message(update, cause=msg, entity_key=req.entity_key),),
        txn=TxnUpdate(req.correlation_id, req.type, req.business_key, "tax", status,
                      fb.reason_code, fb.reason_text),
        detail={"serial": fb.biz_msg_id, "status": fb.status, "reason_code": fb.reason_code},
    )


async def sync_to_core(msg: HubMessage, deps: Deps) -> Outcome:
    try:
        update = SyncStatusUpdate.model_validate(msg.payload)
    except ValidationError as exc:
        raise validation_error(exc, prefix="payload.") from None
    await deps.core.update_sync_status(update, serial=msg.idempotency_key)
    final = {"synced": "delivered", "rejected": "rejected", "failed": "dead"}[update.status]
    return Outcome(
        outputs=await _application_result(update, msg, deps),
        txn=TxnUpdate(update.correlation_id, update.biz_type, update.business_key, "hub", final,
                      update.reason_code, update.reason_text),
        detail={"status": update.status, "reason_code": update.reason_code},
    )


async def _application_result(update: SyncStatusUpdate, msg: HubMessage,
                              deps: Deps) -> tuple[HubMessage, ...]:
    """F1: once core has the result of a channel application's submit, its channel gets it."""
    if deps.applications is None:
        return ()
    app = await deps.applications.get(application_id_of(update.correlation_id))
    if app is None:
        return ()
    result = {"application_id": app["id"], "correlation_id": update.correlation_id,
              "status": update.status, "reason_code": update.reason_code,
              "reason_field": "", "reason_text": update.reason_text,
              "accept_no": update.accept_no}
    return (result_message(str(app["channel"]), result, cause=msg),)


RESULT_ROUTES = (
    Route("tax.feedback", (FEEDBACK,), "tax", feedback_to_core, calls_partner=False),
    Route("core.sync", (SYNC,), "core", sync_to_core),
)
"""Tax's results back to core, for every submit of the catalogue (``routes.tax_catalogue``)."""

"""Tax's results back to core, for every submit of the catalogue.

    tax.feedback       lane ``tax.feedback``: tax's FeedbackNotify, matched to the
                       submit it answers by the serial it echoes
    core.sync_status   lane ``core.sync``: core hears the outcome (H9201); when the
                       submit belongs to a channel application, its channel's lane
                       gets the result too (``routes.channels.push_result``)
"""

from __future__ import annotations

from typing import Final

from pydantic import ValidationError

from contracts.employee import SyncStatusUpdate, TaxFeedback
from contracts.envelope import HubMessage
from contracts.errors import TransientError, ValidationFailed
from contracts.messages import (
    FEEDBACK,
    SYNC,
    application_id_of,
    core_sync_serial,
    result_message,
    sync_message,
)
from kernel.runtime import Outcome, Route
from routes.confirmations import IDENTITY_CONFIRM, confirmation_feedback, termination_feedback
from routes.ports import FeedbackDeps, SyncDeps
from storage.journal import TxnUpdate

__all__ = ["FEEDBACK_WAIT_S", "RESULT_ROUTES", "feedback_to_core", "sync_to_core"]

FEEDBACK_WAIT_S = 0.5
"""How long a feedback waits in-process for its request to be recorded before retrying."""


async def feedback_to_core(msg: HubMessage, deps: FeedbackDeps) -> Outcome:
    try:
        fb = TaxFeedback.model_validate(msg.payload)
    except ValidationError as exc:
        raise ValidationFailed.of(exc, prefix="payload.") from None
    req = await deps.journal.request(fb.biz_msg_id, wait_s=FEEDBACK_WAIT_S)
    if req is None:
        # Tax can answer before our own record of the request is committed: wait for it.
        raise TransientError(f"feedback for serial {fb.biz_msg_id} arrived before its request "
                             "was recorded", partner="tax")
    if deps.confirmations is not None:  # the identity confirmation of a held termination
        if req.type == IDENTITY_CONFIRM and (
                held := await confirmation_feedback(msg, fb, req, deps.confirmations)):
            return held
        await termination_feedback(req, fb, deps.confirmations)
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


async def sync_to_core(msg: HubMessage, deps: SyncDeps) -> Outcome:
    try:
        update = SyncStatusUpdate.model_validate(msg.payload)
    except ValidationError as exc:
        raise ValidationFailed.of(exc, prefix="payload.") from None
    await deps.core.update_sync_status(update, serial=core_sync_serial(update,
                                                                      msg.idempotency_key))
    final = {"synced": "delivered", "rejected": "rejected", "failed": "dead"}[update.status]
    return Outcome(
        outputs=await _application_result(update, msg, deps),
        txn=TxnUpdate(update.correlation_id, update.biz_type, update.business_key, "hub", final,
                      update.reason_code, update.reason_text),
        detail={"status": update.status, "reason_code": update.reason_code},
    )


async def _application_result(update: SyncStatusUpdate, msg: HubMessage,
                              deps: SyncDeps) -> tuple[HubMessage, ...]:
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


RESULT_ROUTES: Final = (
    Route("tax.feedback", (FEEDBACK,), "tax", feedback_to_core, calls_partner=False),
    Route("core.sync", (SYNC,), "core", sync_to_core),
)
"""Tax's results back to core, for every submit (``routes.tax_submit``)."""

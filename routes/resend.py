"""F6 补发 for employees: a caseworker resends one person to tax from core's current state.

``resend_messages`` is pure: it turns a ``ResendRequest`` plus what core holds
now (H1102) into one ``HubMessage``; ``api/resend.py`` publishes it.

* ``enroll`` -> ``tax.employee.enroll`` with core's *current* enrollment as
  payload, handled by the existing ``tax.employee`` route (EmployeeEnroll).
* ``stop`` -> ``tax.employee.stop`` with an ``EmployeeStop`` from the chosen
  date, handled by the ``tax.employee_stop`` route here (EmployeeStop).

Every resend is a new business transaction: a new ``correlation_id``,
``source="resend"``, ``causation_id`` = the resend id, and an idempotency key
salted with the resend id, so idempotency does not swallow an intended resend.

Why this does not duplicate what tax already has, and where it does on purpose:
within one resend, every retry reuses the message id as the serial (ywlsh), so
tax replays its first answer and makes no second effect. A *new* resend is a
new message, hence a new serial: tax sees a new request, and that is intended;
tax's own business rules then answer it (e.g. "already enrolled"). Two
resends of the same person therefore reach tax twice. The hub does not guess
whether a caseworker meant it; the resend API records who asked and why.

Feedback for a stop comes back like an enrollment's (FeedbackNotify, echoing
the serial) and goes to core through the existing ``tax.feedback`` and
``core.sync`` routes, since the stop handler records its partner request.
"""

from __future__ import annotations

from pydantic import ValidationError

from contracts.employee import EmployeeEnrollment, EmployeeStop, ResendRequest
from contracts.envelope import HubMessage, entity_key, idempotency_key, new_id
from retry.errors import BusinessRejected, ValidationFailed
from routes.deps import Deps
from routes.employee import ENROLL, submitted_to_tax, tax_failed
from routes.runtime import Outcome, Route, validation_error

__all__ = ["RESEND_ROUTES", "RESEND_SOURCE", "STOP", "resend_messages", "stop_failed",
           "stop_to_tax"]

STOP = "tax.employee.stop"
RESEND_SOURCE = "resend"


def _stop_payload(request: ResendRequest, current: EmployeeEnrollment) -> EmployeeStop:
    if request.stop_date is None:  # ResendRequest refuses this; kept for a hand-built one
        raise ValidationFailed([("stop_date", "is required for action stop")])
    first_month = current.start_month[:4] + "-" + current.start_month[4:]
    if request.stop_date.isoformat()[:7] < first_month:
        raise BusinessRejected("STOP_BEFORE_START",
                               f"stop date {request.stop_date} is before the enrollment starts "
                               f"({current.start_month})")
    try:
        return EmployeeStop(unit_credit_code=current.unit_credit_code,
                            id_number=current.id_number, name=current.name,
                            stop_date=request.stop_date, reason_code=request.stop_reason)
    except ValidationError as exc:
        raise validation_error(exc) from None


def resend_messages(request: ResendRequest, current: EmployeeEnrollment | None, *,
                    resend_id: str, actor: str) -> HubMessage:
    """The one message a resend publishes; raises ValidationFailed or BusinessRejected.

    ``current`` is core's current state of the person (None: core has no such
    record). ``actor`` is required but not carried in the message (the envelope
    has no place for it): the API journals and audits it.
    """
    if not resend_id.strip():
        raise ValidationFailed([("resend_id", "required")])
    if not actor.strip():
        raise ValidationFailed([("actor", "required")])
    if current is None:
        raise BusinessRejected("NOT_IN_CORE", f"core has no employee {request.id_number} "
                                              f"at unit {request.unit_credit_code}")
    if current.business_key != request.business_key:
        raise ValidationFailed([("id_number", f"core answered for {current.business_key}, "
                                              f"not {request.business_key}")])
    if request.action == "enroll":
        type_, business_key = ENROLL, current.business_key
        payload = current.model_dump(mode="json")
    else:
        stop = _stop_payload(request, current)
        type_, business_key = STOP, stop.business_key
        payload = stop.model_dump(mode="json")
    return HubMessage(type=type_, source=RESEND_SOURCE, target="tax",
                      correlation_id=new_id(),
                      causation_id=resend_id,
                      idempotency_key=idempotency_key(type_, business_key, payload,
                                                      salt=resend_id),
                      entity_key=entity_key("psn", current.id_number), payload=payload)


def _parse_stop(msg: HubMessage) -> EmployeeStop:
    try:
        return EmployeeStop.model_validate(msg.payload)
    except ValidationError as exc:
        raise validation_error(exc, prefix="payload.") from None


async def stop_to_tax(msg: HubMessage, deps: Deps) -> Outcome:
    """EmployeeStop to tax; the serial is the message id, so retries are replays at tax."""
    req = _parse_stop(msg)
    ack = await deps.tax.stop_employee(req, serial=msg.message_id)
    return submitted_to_tax(msg, req.business_key, ack,
                            {"accept_no": ack.accept_no, "id_number": req.id_number,
                             "stop_date": req.stop_date.isoformat()})


stop_failed = tax_failed  # tell core why tax did not take the stop


RESEND_ROUTES = (
    Route("tax.employee_stop", (STOP,), "tax", stop_to_tax, stop_failed),
)
"""Lanes resend needs beyond ``routes.employee.ROUTES`` (enroll resends reuse ``tax.employee``)."""

"""F6 补发 for employees: a caseworker resends one person to tax from core's current state.

``resend_messages`` is pure: it turns a ``ResendRequest`` plus what core holds
now (H1102) into one ``HubMessage``; ``services/resender.py`` publishes it.

* ``enroll`` -> ``tax.employee.enroll`` with core's *current* enrollment as
  payload, handled by the existing ``tax.employee`` route (EmployeeEnroll).
* ``stop`` -> ``tax.employee.stop`` with an ``EmployeeStop`` from the chosen
  date, handled by the ``tax.employee`` lane too (EmployeeStop), so a person's
  enrollment and stop keep their order.

Units, flexible workers and residents (``record_resend_message``) are resent
the same way from core's current record (H1103) through their own lanes
(``tax.unit``, ``tax.flexible``, ``tax.resident``); ``contracts.resend`` maps
each (subject, action) to its tax operation.

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

Feedback for every resend comes back like an enrollment's (FeedbackNotify,
echoing the serial) and goes to core through ``tax.feedback`` and ``core.sync``,
since every submit handler records its partner request.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import ValidationError

from contracts.clock import today_beijing
from contracts.employee import EmployeeEnrollment, EmployeeStop, ResendRequest
from contracts.envelope import HubMessage
from contracts.errors import BusinessRejected, ValidationFailed
from contracts.messages import STOP, operation_message
from contracts.resend import UNIT_ALL, RecordResendRequest
from contracts.taxcat import model_for
from contracts.taxcat import op as catalogue_op

__all__ = ["RESEND_SOURCE", "STOP", "record_resend_message", "resend_messages",
           "unit_all_steps", "unit_is_stopped"]

RESEND_SOURCE = "resend"
_ENROLL_OP = catalogue_op("EmployeeEnroll")
_STOP_OP = catalogue_op("EmployeeStop")


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
        raise ValidationFailed.of(exc) from None


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
        o, payload = _ENROLL_OP, current.model_dump(mode="json")
    else:
        o, payload = _STOP_OP, _stop_payload(request, current).model_dump(mode="json")
    return operation_message(o, payload, source=RESEND_SOURCE, target="tax",
                             causation_id=resend_id, salt=resend_id)


# ---------------------------------------------------------------- units, flexible, residents

def unit_is_stopped(record: dict[str, Any]) -> bool:
    """Whether core's unit record is 停保 (``pay_status`` 2), so ``all`` sends its stop too."""
    return str(record.get("pay_status") or "1") == "2"


def unit_all_steps(request: RecordResendRequest,
                   record: dict[str, Any] | None) -> list[RecordResendRequest]:
    """单位信息税务补发 ``all`` (seed 1852): enrollment, basic information and, for a unit
    core holds as stopped, the stop, in that order (``UNIT_ALL``)."""
    if record is None:
        raise BusinessRejected("NOT_IN_CORE", f"core has no unit {request.key}")
    return [request.step(a) for a in UNIT_ALL if a != "stop" or unit_is_stopped(record)]


def record_resend_message(request: RecordResendRequest, current: dict[str, Any] | None, *,
                          resend_id: str, actor: str, today: date | None = None) -> HubMessage:
    """The one message of a unit / flexible / resident resend, from core's current record.

    The payload is core's record projected on the operation's fields, plus what
    the action adds (a change date of today, or the chosen stop date); the
    operation's contract then validates it, so a stale or broken record in core
    is refused here with the field named, before anything reaches tax. Same
    rules as ``resend_messages`` for serials and idempotency.
    """
    if not resend_id.strip():
        raise ValidationFailed([("resend_id", "required")])
    if not actor.strip():
        raise ValidationFailed([("actor", "required")])
    if current is None:
        raise BusinessRejected("NOT_IN_CORE", f"core has no {request.subject} {request.key}")
    o = catalogue_op(request.operation)
    names = {f.attr for f in o.wire_fields}
    extra: dict[str, Any] = {"change_date": (today or today_beijing()).isoformat(),
                             "pay_action": "1", "reason_code": request.stop_reason}
    if request.stop_date is not None:
        extra["stop_date"] = request.stop_date.isoformat()
    data = {k: v for k, v in {**current, **extra}.items() if k in names}
    try:
        payload = model_for(o.name).model_validate(data).model_dump(mode="json",
                                                                    exclude_none=True)
    except ValidationError as exc:
        raise ValidationFailed.of(exc) from None
    return operation_message(o, payload, source=RESEND_SOURCE, target="tax",
                             causation_id=resend_id, salt=resend_id)

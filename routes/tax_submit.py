"""F2: every submit of the tax catalogue, one lane per subject, one generic handler.

Every submit operation of ``contracts.taxcat`` (unit, employee, flexible,
resident, collection) goes through ``submit_to_tax``: validate the payload
against the operation's contract, call tax with a serial derived from the
idempotency key (``contracts.messages.partner_serial``: the same fact, the same
serial, even if Redis forgot it),
record the partner request so tax's FeedbackNotify finds its way back
(``routes.tax_results``), and report ``submitted``. A lane per subject keeps
per-entity ordering within a subject (the gate is per lane and entity): all
changes of one employee share the ``tax.employee`` lane, all changes of one
unit the ``tax.unit`` lane. 职工参保登记 keeps its typed hot path
(``enroll_to_tax``). When tax does not take a request, ``tax_failed`` tells core.
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ValidationError

from contracts.employee import EmployeeEnrollment, EmployeeStop, SyncStatusUpdate, TaxAck
from contracts.envelope import HubMessage
from contracts.errors import (
    BusinessRejected,
    HubError,
    PermanentError,
    UnknownMessageType,
    ValidationFailed,
)
from contracts.messages import ENROLL, partner_serial, sync_message
from contracts.taxcat import OPS_BY_TYPE, Op, model_for, ops_of
from kernel.runtime import Outcome, Route
from routes.confirmations import after_failure, hold_termination
from routes.ports import TaxSubmitDeps
from storage.journal import RequestRecord, TxnUpdate

__all__ = ["LANES", "SUBMIT_ROUTES", "contract_for", "enroll_to_tax", "parse_payload",
           "submit_to_tax", "submitted_to_tax", "tax_failed"]

LANES: Final = ("unit", "employee", "flexible", "resident", "collection")

_CONTRACTS: Final[dict[str, type[BaseModel]]] = {
    "EmployeeEnroll": EmployeeEnrollment, "EmployeeStop": EmployeeStop}
"""Operations with a hand-written contract (older than the catalogue; same fields)."""


def contract_for(o: Op) -> type[BaseModel]:
    return _CONTRACTS.get(o.name) or model_for(o.name)


def _op(msg: HubMessage) -> Op:
    o = OPS_BY_TYPE.get(msg.type)
    if o is None:
        raise UnknownMessageType(f"no tax operation for message type {msg.type}")
    return o


def parse_payload(msg: HubMessage) -> tuple[Op, BaseModel]:
    """The operation and its validated contract; ValidationFailed names ``payload.<field>``."""
    o = _op(msg)
    try:
        return o, contract_for(o).model_validate(msg.payload)
    except ValidationError as exc:
        raise ValidationFailed.of(exc, prefix="payload.") from None


async def enroll_to_tax(msg: HubMessage, deps: TaxSubmitDeps) -> Outcome:
    try:
        req = EmployeeEnrollment.model_validate(msg.payload)
    except ValidationError as exc:
        raise ValidationFailed.of(exc, prefix="payload.") from None
    ack = await deps.tax.enroll_employee(req, serial=partner_serial(msg))
    return submitted_to_tax(msg, req.business_key, ack,
                            {"accept_no": ack.accept_no, "id_number": req.id_number})


async def submit_to_tax(msg: HubMessage, deps: TaxSubmitDeps) -> Outcome:
    if msg.type == ENROLL:
        return await enroll_to_tax(msg, deps)
    o, req = parse_payload(msg)
    try:
        ack = await deps.tax.submit(o.name, req, serial=partner_serial(msg))
    except BusinessRejected as exc:
        # TX402 on a termination: held for an identity confirmation (routes.confirmations)
        held = await hold_termination(msg, o, exc, deps)
        if held is None:
            raise
        return held
    data = req.__dict__
    detail = {"accept_no": ack.accept_no, "operation": o.name,
              **{k: str(data[k]) for k in ("id_number", "unit_credit_code") if data.get(k)}}
    return submitted_to_tax(msg, o.business_key(data), ack, detail)


def submitted_to_tax(msg: HubMessage, business_key: str, ack: TaxAck,
                     detail: dict[str, str]) -> Outcome:
    """Tax acknowledged: remember the serial its feedback will echo, mark it submitted."""
    return Outcome(
        requests=(RequestRecord(serial=partner_serial(msg), partner="tax",
                                correlation_id=msg.correlation_id, type=msg.type,
                                business_key=business_key, entity_key=msg.entity_key,
                                accept_no=ack.accept_no),),
        txn=TxnUpdate(msg.correlation_id, msg.type, business_key, msg.source, "submitted",
                      attempts=msg.attempt + 1),
        detail=detail,
        result={"outcome": "submitted", "accept_no": ack.accept_no},
    )


async def tax_failed(msg: HubMessage, exc: HubError, deps: object) -> Outcome:
    """Tell core why tax did not take a request (rejected, invalid, or gave up); the
    identity confirmation of a held termination has its own ending (``after_failure``)."""
    if (identity := await after_failure(msg, exc, deps)) is not None:
        return identity
    p = msg.payload
    o = OPS_BY_TYPE.get(msg.type)
    business_key = o.business_key(p) if o else \
        f"{p.get('unit_credit_code', '')}:{p.get('id_number', '')}"
    code, text = exc.public_code, exc.public_text
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


SUBMIT_ROUTES: Final = tuple(
    Route(f"tax.{subject}", tuple(o.msg_type for o in ops_of("submit", subject)), "tax",
          submit_to_tax, tax_failed) for subject in LANES)
"""One lane per subject (F2); tax's answers come back through ``routes.tax_results``."""

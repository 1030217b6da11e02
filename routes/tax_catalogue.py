"""F2 and F3 lanes for the whole tax catalogue: one lane per subject, one generic handler.

Every submit operation of ``contracts.taxcat`` (unit, employee, flexible,
resident, collection) goes through ``submit_to_tax``: validate the payload
against the operation's contract, call tax with the message id as serial,
record the partner request so tax's FeedbackNotify finds its way back, and
report ``submitted``. A lane per subject keeps per-entity ordering within a
subject (the gate is per lane and entity): all changes of one employee share
the ``tax.employee`` lane, all changes of one unit the ``tax.unit`` lane.

F3 pushes from tax (``core.tax_push.*``) are delivered to core by
``push_to_core`` on the ``core.tax_push`` lane.
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ValidationError

from contracts.employee import EmployeeEnrollment, EmployeeStop
from contracts.envelope import HubMessage
from contracts.taxcat import OPS_BY_TYPE, Op, model_for, ops_of
from retry.errors import UnknownMessageType
from routes.deps import Deps
from routes.employee import ENROLL, enroll_to_tax, submitted_to_tax, tax_failed
from routes.runtime import Outcome, Route, validation_error
from storage.journal import TxnUpdate

__all__ = ["CATALOGUE_ROUTES", "LANES", "PUSH_LANE", "contract_for", "parse_payload",
           "push_to_core", "submit_to_tax"]

LANES: Final = ("unit", "employee", "flexible", "resident", "collection")
PUSH_LANE: Final = "core.tax_push"

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
        raise validation_error(exc, prefix="payload.") from None


async def submit_to_tax(msg: HubMessage, deps: Deps) -> Outcome:
    if msg.type == ENROLL:
        return await enroll_to_tax(msg, deps)
    o, req = parse_payload(msg)
    ack = await deps.tax.submit(o.name, req, serial=msg.message_id)
    data = req.__dict__
    detail = {"accept_no": ack.accept_no, "operation": o.name,
              **{k: str(data[k]) for k in ("id_number", "unit_credit_code") if data.get(k)}}
    return submitted_to_tax(msg, o.business_key(data), ack, detail)


async def push_to_core(msg: HubMessage, deps: Deps) -> Outcome:
    """F3: what tax pushed goes to core (core deduplicates on the hub message id)."""
    o, req = parse_payload(msg)
    await deps.core.deliver(o.core_infno, req.model_dump(mode="json"), serial=msg.message_id)
    key = o.business_key(req.__dict__)
    return Outcome(txn=TxnUpdate(msg.correlation_id, msg.type, key, "tax", "delivered"),
                   detail={"operation": o.name, "infno": o.core_infno})


CATALOGUE_ROUTES: Final = (
    *(Route(f"tax.{subject}", tuple(o.msg_type for o in ops_of("submit", subject)), "tax",
            submit_to_tax, tax_failed) for subject in LANES),
    Route(PUSH_LANE, tuple(o.msg_type for o in ops_of("push")
                           if o.name != "CompareBatchNotify"), "core", push_to_core),
)
"""Every tax lane: submits per subject (F2) and tax's pushes to core (F3); the 比对 push
(CompareBatchNotify) has its own lane, ``routes.compare``."""

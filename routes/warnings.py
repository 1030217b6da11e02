"""F8 高额费用预警: one lane per department, each message one person of a month's list.

    warnings.<department>   -> the department's receiving endpoint (``adapters.warnings``)

``send_warning`` posts the record (signed; the department deduplicates on the serial
derived from department + month + person) and records the acknowledgement on the
row (``storage.warnings``). A refusal, or retries exhausted, marks the row
``rejected``/``dead`` with the reason (the message is dead-lettered as well);
a caseworker's 补发 queues the department's list again (``services.warnings``).
Nobody upstream waits for an answer: core only supplied the figures.
"""

from __future__ import annotations

from typing import Any, Final, Protocol

from adapters.warnings.port import DepartmentPort
from contracts.envelope import HubMessage
from contracts.errors import ClientError, HubError, PermanentError
from contracts.masking import mask_id
from contracts.warnings import DEPARTMENTS, PARTNER_PREFIX, department_of_type, lane_type
from kernel.runtime import Outcome, Route
from storage.journal import TxnUpdate

__all__ = ["WARNING_ROUTES", "WarningDeps", "WarningRows", "send_warning", "warning_failed"]

OPEN: Final = ("pending", "queued", "rejected", "dead")
"""Statuses a delivery may still move (acknowledged is final)."""


class WarningRows(Protocol):
    """The part of ``storage.warnings.WarningStore`` the lanes use."""

    async def move(self, warning_id: str, *, expect: Any, status: str,
                   ack_no: str | None = None, reason_code: str | None = None,
                   reason: str | None = None, resend: bool = False) -> bool: ...


class WarningDeps(Protocol):
    """``routes.warnings``: the departments' client and the warning rows."""

    @property
    def departments(self) -> DepartmentPort | None: ...
    @property
    def warnings(self) -> WarningRows | None: ...


def _txn(msg: HubMessage, status: str, code: str = "", reason: str = "") -> TxnUpdate:
    return TxnUpdate(msg.correlation_id, msg.type, str(msg.payload.get("warning_id", "-")),
                     msg.source, status, code, reason[:1000], attempts=msg.attempt + 1)


async def send_warning(msg: HubMessage, deps: WarningDeps) -> Outcome:
    department = department_of_type(msg.type)
    if deps.departments is None:
        raise ClientError("this hub has no department client", partner=msg.target)
    ack = await deps.departments.send_warning(department, dict(msg.payload))
    if deps.warnings is not None:
        await deps.warnings.move(str(msg.payload["warning_id"]), expect=OPEN,
                                 status="acknowledged", ack_no=ack, reason_code="", reason="")
    person = msg.payload.get("person") or {}
    return Outcome(txn=_txn(msg, "delivered"),
                   detail={"department": department, "month": msg.payload.get("month"),
                           "id_number": mask_id(str(person.get("id_number", ""))),
                           "serial": msg.payload.get("serial"), "ack_no": ack},
                   result={"outcome": "acknowledged", "ack_no": ack})


async def warning_failed(msg: HubMessage, exc: HubError, deps: Any) -> Outcome | None:
    """The row says why the department has not got it; the message is parked as well."""
    rows: WarningRows | None = getattr(deps, "warnings", None)
    status = "rejected" if isinstance(exc, PermanentError) else "dead"
    if rows is not None:
        await rows.move(str(msg.payload.get("warning_id", "")), expect=OPEN, status=status,
                        reason_code=exc.public_code, reason=exc.public_text)
    return Outcome(txn=_txn(msg, status, exc.public_code, exc.public_text))


WARNING_ROUTES: Final[tuple[Route, ...]] = tuple(
    Route(name=lane_type(d), bindings=(lane_type(d),), partner=f"{PARTNER_PREFIX}{d}",
          handler=send_warning, on_failure=warning_failed)
    for d in DEPARTMENTS)

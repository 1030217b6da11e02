"""F8 department lanes (``routes.warnings``) with fakes: the acknowledgement lands on the
row; a refusal or giving up marks it; keys and serials come from department+month+person."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from contracts.errors import BusinessRejected, PartnerUnavailable
from contracts.warnings import ExpenseWarning, SelfPaid, warning_message
from routes.warnings import WARNING_ROUTES, send_warning, warning_failed

ID = "32010219880928997X"


def _w(dept: str = "agriculture", month: str = "202611", paid: int = 90000) -> ExpenseWarning:
    return ExpenseWarning(department=dept, month=month, kinds=("relapse",),  # type: ignore[arg-type]
                          line=Decimal(14000), person=SelfPaid(
                              id_number=ID, name="王小明", rural=True, insurance="none",
                              self_paid=Decimal(paid), categories=("former_registered",)))


@dataclass
class Rows:
    moves: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    async def move(self, warning_id: str, *, expect: Any, status: str, **kw: Any) -> bool:
        self.moves.append((warning_id, status, kw))
        return True


@dataclass
class Depts:
    error: Exception | None = None
    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def send_warning(self, department: str, payload: dict[str, Any]) -> str:
        self.sent.append((department, payload))
        if self.error:
            raise self.error
        return "ACK-1"

    async def aclose(self) -> None: ...


@dataclass
class Deps:
    departments: Depts = field(default_factory=Depts)
    warnings: Rows = field(default_factory=Rows)


def test_one_lane_per_department_and_keys_from_department_month_person() -> None:
    assert {r.name for r in WARNING_ROUTES} == {"warnings.civil_affairs",
                                                "warnings.agriculture", "warnings.veterans",
                                                "warnings.union"}
    a, b = warning_message(_w()), warning_message(_w(paid=120000))
    assert a.idempotency_key == b.idempotency_key  # the figure moved: the same fact
    assert a.payload["serial"] == b.payload["serial"]
    assert warning_message(_w(month="202612")).idempotency_key != a.idempotency_key
    assert warning_message(_w("civil_affairs")).payload["serial"] != a.payload["serial"]
    resent = warning_message(_w(), salt="resend:1")
    assert resent.idempotency_key != a.idempotency_key
    assert resent.payload["serial"] == a.payload["serial"]
    assert ID not in a.entity_key and a.entity_key == ""


async def test_the_acknowledgement_lands_on_the_row_and_the_log_is_masked() -> None:
    deps = Deps()
    msg = warning_message(_w())
    out = await send_warning(msg, deps)
    assert deps.departments.sent[0][0] == "agriculture"
    assert deps.warnings.moves == [(msg.correlation_id, "acknowledged",
                                    {"ack_no": "ACK-1", "reason_code": "", "reason": ""})]
    assert out.txn is not None and out.txn.status == "delivered"
    assert ID not in str(out.detail) and out.result["ack_no"] == "ACK-1"


async def test_a_failure_reaches_the_handler_and_marks_the_row() -> None:
    deps = Deps(Depts(error=PartnerUnavailable("down", partner="dept.agriculture")))
    msg = warning_message(_w())
    with pytest.raises(PartnerUnavailable):
        await send_warning(msg, deps)
    assert deps.warnings.moves == []
    await warning_failed(msg, PartnerUnavailable("down", partner="dept.agriculture"), deps)
    await warning_failed(msg, BusinessRejected("E1", "not ours", partner="dept.x"), deps)
    assert [m[1] for m in deps.warnings.moves] == ["dead", "rejected"]
    assert deps.warnings.moves[1][2]["reason_code"] == "E1"

"""灵活信息税务补发 detection (seed 1862-1865) and 单位补发 all (1852): the pure rules."""

from __future__ import annotations

import random
from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.errors import BusinessRejected
from contracts.ids import make_id_number
from contracts.resend import RecordResendRequest
from services.flexible_gaps import find_gaps, gap_of
from services.resend import unit_all_steps
from tests.support.fakes import FakeCore, FakeTax

RNG = random.Random(1862)
ID = make_id_number(RNG, area="320102")


def core(status: str = "1") -> dict[str, Any]:
    return {"id_number": ID, "name": "王芳", "status": status}


def tax(status: str) -> list[dict[str, Any]]:
    return [{"id_number": ID, "status": status}]


@pytest.mark.parametrize(("core_status", "tax_rows", "action"), [
    ("1", [], "enroll"),             # normal in core, missing at tax
    ("2", tax("1"), "stop"),         # 暂停 in core only
    ("3", tax("1"), "terminate"),    # 终止 in core only
    ("4", tax("2"), "terminate"),    # 中止 in core: terminated at tax too
    ("1", tax("2"), None),           # tax ahead of core: a caseworker decides
    ("3", [], None),                 # nothing to stop at tax
])
def test_a_difference_names_the_resend_that_fixes_it(core_status: str,
                                                     tax_rows: list[dict[str, Any]],
                                                     action: str | None) -> None:
    gap = gap_of(core(core_status), tax_rows)
    assert gap is not None and gap.action == action
    public = gap.public()
    assert public["id_number"] != ID and public["name"] != "王芳"  # masked
    assert public["why"].startswith("core ")


@pytest.mark.parametrize(("core_status", "tax_status"), [("1", "1"), ("2", "2"), ("3", "3"),
                                                         ("4", "3")])
def test_agreeing_records_are_no_gap(core_status: str, tax_status: str) -> None:
    assert gap_of(core(core_status), tax(tax_status)) is None


async def test_every_core_record_is_asked_about_once_up_to_the_limit() -> None:
    fake_core = FakeCore()
    people = [make_id_number(RNG, area="320102") for _ in range(5)]
    fake_core.snapshots["flexible"] = [core("1") | {"id_number": p} for p in people]
    fake_tax = FakeTax()
    fake_tax.rows = []  # tax knows nobody
    checked, gaps = await find_gaps(fake_core, fake_tax, limit=3)
    assert checked == 3 and [g.action for g in gaps] == ["enroll"] * 3
    assert [(op, req.id_number) for op, req, _ in fake_tax.queries] == [
        ("QueryFlexibleEnrollment", p) for p in people[:3]]


def test_terminate_and_all_are_checked_like_the_other_actions() -> None:
    base = {"subject": "flexible", "key": ID, "reason": "补发"}
    RecordResendRequest.model_validate(base | {"action": "terminate",
                                               "stop_date": date.today().isoformat()})
    with pytest.raises(ValidationError, match="stop_date is required for action terminate"):
        RecordResendRequest.model_validate(base | {"action": "terminate"})
    with pytest.raises(ValidationError, match="action all is for units"):
        RecordResendRequest.model_validate(base | {"action": "all"})


def test_a_units_all_sends_its_stop_only_when_core_holds_it_stopped() -> None:
    uscc = "91320106R8JM88BRJM"
    req = RecordResendRequest(subject="unit", key=uscc, action="all", reason="整体补发")
    assert [s.action for s in unit_all_steps(req, {"pay_status": "1"})] == ["enroll", "update"]
    assert [s.action for s in unit_all_steps(req, {"pay_status": "2"})] == [
        "enroll", "update", "stop"]
    with pytest.raises(BusinessRejected, match="NOT_IN_CORE"):
        unit_all_steps(req, None)

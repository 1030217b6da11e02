"""Issue 10 items 10 and 11: the catalogue against the procurement seed (003, lines 2244,
2299-2475); the readings are written in contracts/tax/CATALOGUE.md."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from contracts.clock import BEIJING
from contracts.errors import ValidationFailed
from contracts.taxcat import STORED_ANSWERS, core_to_canonical, model_for, op, ops_of, to_wire
from contracts.taxcat_xsd import render_catalogue

REFUND = {"refund_no": "TF2026110001", "review_result": "1"}
UNIT = "91320117HW1Y4LE9W7"
PERSON = "320117197208305970"


def test_refund_review_feedback_requires_the_review_time() -> None:
    with pytest.raises(ValidationError) as caught:
        model_for("RefundReviewFeedback").model_validate(REFUND)
    assert ValidationFailed.of(caught.value).field == "review_time"
    with pytest.raises(ValidationError) as caught:
        model_for("RefundReviewFeedback").model_validate(
            {"refund_no": "TF1", "review_time": "2026-11-24T09:00:00+08:00"})
    assert ValidationFailed.of(caught.value).field == "review_result"


@pytest.mark.parametrize(("sent", "beijing"), [
    ("2026-11-24T09:15:00+08:00", "2026-11-24T09:15:00+08:00"),
    ("2026-11-24T01:15:00Z", "2026-11-24T09:15:00+08:00"),        # UTC, converted
    ("2026-11-24 09:15:00.123456", "2026-11-24T09:15:00+08:00"),  # no offset: Beijing's
])
def test_the_review_time_goes_to_tax_in_beijing_time(sent: str, beijing: str) -> None:
    o = op("RefundReviewFeedback")
    payload = model_for(o.name).model_validate(REFUND | {"review_time": sent})
    assert payload.review_time.utcoffset() == timedelta(hours=8)  # type: ignore[attr-defined]
    assert to_wire(o, payload) == {"tfbh": "TF2026110001", "hyjg": "1", "hysj": beijing}


def test_core_sends_both_review_fields_by_their_national_names() -> None:
    o = op("RefundReviewFeedback")
    at = datetime(2026, 11, 24, 1, 15, tzinfo=UTC)
    data = core_to_canonical(o, {"refd_no": "TF1", "rvw_rslt": "2",
                                 "rvw_time": at.isoformat()})
    payload = model_for(o.name).model_validate(data)
    assert payload.review_time == at.astimezone(BEIJING)  # type: ignore[attr-defined]
    assert {"review_result", "review_time"} <= payload.model_fields_set


def test_unit_arrears_needs_its_start_period_and_person_arrivals_take_a_package() -> None:
    with pytest.raises(ValidationError) as caught:
        model_for("QueryUnitArrears").model_validate({"unit_credit_code": UNIT})
    assert ValidationFailed.of(caught.value).field == "period_start"
    asked = model_for("QueryPersonArrivals").model_validate(
        {"id_number": PERSON, "period_start": "202601", "period_end": "202603",
         "package_no": "SJB202601001"})
    assert to_wire(op("QueryPersonArrivals"), asked)["sjbbh"] == "SJB202601001"
    assert "package_no" in {f.attr for f in op("QueryPersonArrivals").reply_fields}


@pytest.mark.parametrize("name", [
    "QueryUnitEnrollment", "QueryFlexibleEnrollment", "QueryFlexibleCollection",
    "QueryFlexibleSpecialPayment", "QueryFlexibleArrivals", "QueryFlexibleInTransit",
    "QueryFlexiblePaymentInfo", "QueryFlexibleDeduction"])
def test_the_seeds_missing_queries_are_hub_to_tax_queries(name: str) -> None:
    assert op(name) in ops_of("query")


def test_tax_asks_core_for_employee_and_special_arrivals() -> None:
    assert (op("CoreQueryEmployeeArrivals").core_infno,
            op("CoreQuerySpecialArrivals").core_infno) == ("H1205", "H1206")
    assert {"CoreQueryEmployeeArrivals", "CoreQuerySpecialArrivals"} <= {
        o.name for o in ops_of("core_query")}


def test_only_the_deduction_query_is_answered_from_stored_return_files() -> None:
    assert STORED_ANSWERS == {"QueryFlexibleDeduction": ("flex_deduct", "special_deduct")}
    with pytest.raises(ValidationError) as caught:
        model_for("QueryFlexibleDeduction").model_validate({"id_number": PERSON,
                                                            "period_start": "202601"})
    assert ValidationFailed.of(caught.value).field == "period_end"


def test_the_catalogue_writes_its_readings_with_seed_lines() -> None:
    text = render_catalogue()
    assert "## Readings" in text
    for line in ("2244", "2438", "2469", "2475", "2331", "2379"):
        assert line in text, line

"""The simulated bureau and core on the seed's refund review feedback and the new queries."""

from __future__ import annotations

from datetime import date
from typing import Any

from contracts.employee import EmployeeEnrollment
from contracts.taxcat import model_for, op, to_wire
from simulators.core import CoreStore
from simulators.tax_rules import TaxBook

TODAY = date(2026, 11, 24)
UNIT = "91320117HW1Y4LE9W7"
PERSON = "320117197208305970"


def refund(**extra: str) -> dict[str, Any]:
    return {"tfbh": "TF2026110001", "hyjg": "1", **extra}


def test_a_refund_review_feedback_without_its_time_is_refused() -> None:
    book = TaxBook()
    assert book.decide("RefundReviewFeedback", refund(), TODAY).code == "TX606"
    assert book.decide("RefundReviewFeedback", refund(hysj="2026-11-24 09:15"),
                       TODAY).code == "TX606"  # no offset: not a Beijing time
    assert book.decide("RefundReviewFeedback", refund(hysj="yesterday"), TODAY).code == "TX606"
    assert book.decide("RefundReviewFeedback", {"tfbh": "T", "hysj": "2026-11-24T09:15:00+08:00"},
                       TODAY).code == "TX605"
    assert not book.records


def test_a_refund_review_feedback_with_result_and_time_is_accepted() -> None:
    book = TaxBook()
    o = op("RefundReviewFeedback")
    wire = to_wire(o, model_for(o.name).model_validate(
        {"refund_no": "TF2026110001", "review_result": "2",
         "review_time": "2026-11-24T01:15:00Z"}))
    assert book.decide(o.name, wire, TODAY).ok
    [kept] = book.records.values()
    assert (kept["hyjg"], kept["hysj"]) == ("2", "2026-11-24T09:15:00+08:00")


def flexible_book() -> TaxBook:
    book = TaxBook()
    book.persons[("flexible", PERSON)] = {"status": "active", "xm": "王伟",
                                          "jcybqh": "320106001001", "ksjfny": "202601"}
    return book


def test_flexible_queries_answer_from_the_persons_record() -> None:
    book, ask = flexible_book(), {"id_number": PERSON, "period_start": "202609",
                                  "period_end": "202612"}
    [enrolled] = book.answer("QueryFlexibleEnrollment", {"id_number": PERSON}, TODAY)
    assert (enrolled["status"], enrolled["start_month"]) == ("1", "202601")
    collection = book.answer("QueryFlexibleCollection", ask, TODAY)
    assert [r["status"] for r in collection] == ["2", "2", "1", "1"]
    assert [r["period_start"] for r in book.answer("QueryFlexibleInTransit", ask, TODAY)] == [
        "202611", "202612"]
    arrivals = book.answer("QueryFlexibleArrivals", ask, TODAY)
    assert {r["insutype"] for r in arrivals} == {"310", "330"} and len(arrivals) == 4
    assert len(book.answer("QueryFlexiblePaymentInfo", ask, TODAY)) == 8
    assert len(book.answer("QueryFlexibleDeduction", ask, TODAY)) == 2
    [special] = book.answer("QueryFlexibleSpecialPayment", ask, TODAY)
    assert special["insutype"] == "310"
    assert TaxBook().answer("QueryFlexibleCollection", ask, TODAY) == []  # unknown person


def test_unit_enrollment_arrears_since_and_arrival_packages() -> None:
    book = TaxBook()
    assert book.answer("QueryUnitEnrollment", {"unit_credit_code": UNIT}, TODAY) == []
    book.units[UNIT] = {"status": "stopped", "dwmc": "南京紫金软件有限公司",
                        "sbjbjgdm": "320102", "ksjfny": "202401"}
    [unit] = book.answer("QueryUnitEnrollment", {"unit_credit_code": UNIT}, TODAY)
    assert (unit["status"], unit["admdvs"]) == ("2", "320102")
    book.arrears[UNIT] = 250_000
    [owed] = book.answer("QueryUnitArrears", {"unit_credit_code": UNIT,
                                              "period_start": "202605"}, TODAY)
    assert (owed["period_start"], owed["period_end"]) == ("202605", "202611")
    ask = {"id_number": PERSON, "period_start": "202610", "period_end": "202610"}
    [arrival] = book.answer("QueryPersonArrivals", ask, TODAY)
    package = arrival["package_no"]
    assert book.answer("QueryPersonArrivals", ask | {"package_no": package}, TODAY)
    assert book.answer("QueryPersonArrivals", ask | {"package_no": "SJB000000000"}, TODAY) == []


def test_core_answers_employee_and_special_arrivals() -> None:
    store = CoreStore.seed(1, 2, rng_seed=11)
    e: EmployeeEnrollment = next(iter(store.persons.values()))
    months = store.answer_query("CoreQueryEmployeeArrivals", {
        "id_number": e.id_number, "period_start": "200001", "period_end": e.start_month})
    assert [r["period_start"] for r in months] == [e.start_month]
    assert months[0]["paid_amount"] == e.wage * 2 // 100
    asked = {"unit_credit_code": UNIT, "period_start": "202601", "period_end": "202612"}
    assert store.answer_query("CoreQuerySpecialArrivals", asked) == []
    store.pushes["S1"] = {"infno": "H3001", "data": {
        "spec_pay_mode": "1", "pay_bill_no": "JF1", "uscc": UNIT, "begn_ym_pay": "202603",
        "endn_ym_pay": "202603", "amt": 125_000}}
    [special] = store.answer_query("CoreQuerySpecialArrivals", asked)
    assert (special["bill_no"], special["paid_amount"]) == ("JF1", 125_000)
    assert store.answer_query("CoreQuerySpecialArrivals",
                              asked | {"unit_credit_code": "91320000MA1XXXXX0X"}) == []

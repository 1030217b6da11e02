"""The seed's F1 business rules, as pure functions."""

from __future__ import annotations

from datetime import date

import pytest

from contracts.channels import CollectionPeriods
from contracts.errors import BusinessRejected
from routes.channel_rules import (
    ResidentYear,
    check_arrears,
    check_community,
    check_transfer_destination,
    newborn_insure_year,
    normal_employee_contribution,
    prenewborn_paid,
    prenewborn_to_convert,
    resident_insure_year,
    retirement_start_month,
)
from simulators.tax_rules import TaxBook


def test_birth_rule_paid_prenewborn_means_next_year() -> None:
    assert newborn_insure_year(True, date(2026, 11, 24)) == "2027"
    assert newborn_insure_year(False, date(2026, 11, 24)) == "2026"


def test_retirement_rule_contribution_this_month_means_next_month() -> None:
    assert retirement_start_month(True, date(2026, 12, 31)) == "202701"
    assert retirement_start_month(True, date(2026, 1, 31)) == "202602"
    assert retirement_start_month(False, date(2026, 12, 31)) == "202612"


def test_arrears_refuse_transfer_out_and_retirement_only() -> None:
    with pytest.raises(BusinessRejected) as e:
        check_arrears("transfer_out", 12_345)
    assert e.value.reason_code == "ARREARS" and "123.45" in e.value.reason_text
    with pytest.raises(BusinessRejected):
        check_arrears("retire", 1)
    check_arrears("resident_enroll", 99_999)
    check_arrears("retire", 0)


def test_unknown_community_is_refused_naming_the_field() -> None:
    with pytest.raises(BusinessRejected) as e:
        check_community("320102999999", False)
    assert e.value.reason_text.startswith("payload.community:")
    check_community("320102001001", True)


def test_tax_knows_whether_a_prenewborn_was_paid() -> None:
    book = TaxBook(prenewborn_paid={("320106199401120521", "1"): True})
    q = {"mother_id_number": "320106199401120521", "birth_order": "1", "insure_year": "2026"}
    assert book.answer("QueryPreNewbornPayment", q)[0]["paid_amount"] == 38_000
    assert book.answer("QueryPreNewbornPayment", q | {"birth_order": "2"}) == []


# ---------------------------------------------------------------- 出生一件事 (seed 2555)


def _pre(**change: str) -> dict[str, str]:
    return {"mother_id_number": "320106199401120521", "birth_order": "2",
            "insure_year": "2026", "paid_amount": "38000", "status": "1"} | change


def test_a_prenewborn_counts_as_paid_only_with_an_amount_and_a_paid_status() -> None:
    assert prenewborn_paid([_pre()], "2026")
    assert not prenewborn_paid([], "2026")  # no 准新生儿 record
    assert not prenewborn_paid([_pre(paid_amount="0", status="0")], "2026")  # enrolled, unpaid
    assert not prenewborn_paid([_pre(status="0")], "2026")  # status says unpaid
    assert not prenewborn_paid([_pre(paid_amount="0")], "2026")  # nothing paid
    assert not prenewborn_paid([_pre(insure_year="2025")], "2026")  # last year's fee
    assert not prenewborn_paid([_pre(paid_amount="abc")], "2026")  # unreadable: not paid
    no_status = {k: v for k, v in _pre().items() if k != "status"}
    assert prenewborn_paid([no_status], "2026")  # an answer without status: the amount


def test_tax_answers_an_unpaid_prenewborn_record_with_amount_zero() -> None:
    book = TaxBook(prenewborn_paid={("320106199401120521", "1"): False})
    q = {"mother_id_number": "320106199401120521", "birth_order": "1", "insure_year": "2026"}
    [row] = book.answer("QueryPreNewbornPayment", q)
    assert (row["paid_amount"], row["status"]) == (0, "0")
    book.prenewborns[("320106199401120521", "2")] = {"cbnd": "2025", "paid": True}
    assert book.answer("QueryPreNewbornPayment", q | {"birth_order": "2"}) == []  # 2025 only


# ---------------------------------------------------------------- 退休一件事 (seed 2544)


def _paid(**change: str) -> dict[str, str]:
    return {"id_number": "320111196510080017", "period_start": "202611", "insutype": "310",
            "status": "1", "paid_amount": "60000"} | change


def test_only_a_normal_310_contribution_of_the_month_counts() -> None:
    assert normal_employee_contribution([_paid()], "202611")
    assert normal_employee_contribution([_paid(insutype="390"), _paid()], "202611")
    assert not normal_employee_contribution([], "202611")
    assert not normal_employee_contribution([_paid(insutype="390")], "202611")  # 城乡居民
    assert not normal_employee_contribution([_paid(insutype="510")], "202611")  # 生育
    assert not normal_employee_contribution([_paid(status="2")], "202611")  # 欠缴
    assert not normal_employee_contribution([_paid(status="3")], "202611")  # 作废
    assert not normal_employee_contribution([_paid(paid_amount="0")], "202611")
    assert not normal_employee_contribution([_paid(period_start="202610")], "202611")
    no_type = {k: v for k, v in _paid().items() if k != "insutype"}
    assert not normal_employee_contribution([no_type], "202611")  # 险种 must be named


def test_tax_knows_who_contributed_to_employee_insurance() -> None:
    book = TaxBook()
    ask = {"id_number": "320111196510080017", "period_start": "202611", "period_end": "202611"}
    assert book.answer("QueryPaymentInfo", ask) == []  # not employed at tax: nothing paid
    book.persons[("employee", ask["id_number"])] = {"status": "active", "shxydm": "U1"}
    [row] = book.answer("QueryPaymentInfo", ask)
    assert (row["insutype"], row["status"], row["unit_credit_code"]) == ("310", "1", "U1")
    assert normal_employee_contribution([{k: str(v) for k, v in row.items()}], "202611")
    book.pay(ask["id_number"], "202611", insutype="390")  # set data wins over the derived
    [row] = book.answer("QueryPaymentInfo", ask)
    assert row["insutype"] == "390"
    book.pay(ask["id_number"], "202610")
    assert len(book.answer("QueryPaymentInfo", ask | {"period_start": "202601"})) == 2
    unit = book.answer("QueryPaymentInfo", {"unit_credit_code": "U1", "period_start": "202601",
                                            "period_end": "202603"})
    assert [r["period_start"] for r in unit] == ["202601", "202602", "202603"]


# ---------------------------------------------------------------- 居民参保年度 (seed 1781-1782)

DEFAULT = CollectionPeriods()


def test_inside_the_collection_period_a_resident_enrolls_for_next_year() -> None:
    assert resident_insure_year(date(2026, 9, 1), DEFAULT) == ResidentYear("2027")
    assert resident_insure_year(date(2026, 12, 31), DEFAULT) == ResidentYear("2027")
    assert resident_insure_year(date(2026, 8, 31), DEFAULT) == ResidentYear("2026")
    assert resident_insure_year(date(2027, 1, 1), DEFAULT) == ResidentYear("2027")
    assert ResidentYear("2027").overrides() == {"insure_year": "2027"}


def test_a_midyear_flag_enrolls_for_this_year_from_the_day_of_enrollment() -> None:
    for day in (date(2026, 11, 24), date(2026, 5, 10)):  # inside and outside the period
        decided = resident_insure_year(day, DEFAULT, "1")
        assert decided == ResidentYear(str(day.year), "1", day)
        assert decided.overrides() == {"insure_year": str(day.year), "midyear_flag": "1",
                                       "insure_start_date": day.isoformat()}
    with pytest.raises(ValueError, match="中途参保标志"):
        resident_insure_year(date(2026, 5, 10), DEFAULT, "9")


def test_a_notice_moves_the_collection_period_of_its_year() -> None:
    notice = CollectionPeriods(years={2027: (date(2026, 10, 1), date(2027, 2, 28))})
    assert resident_insure_year(date(2026, 9, 15), notice).insure_year == "2026"  # not yet
    assert resident_insure_year(date(2026, 10, 1), notice).insure_year == "2027"
    assert resident_insure_year(date(2027, 2, 28), notice).insure_year == "2027"
    assert resident_insure_year(date(2027, 3, 1), notice).insure_year == "2027"  # this year
    assert resident_insure_year(date(2027, 9, 1), notice).insure_year == "2028"  # default


# ------------------------------------------------ 新生儿参保登记: 准新生儿转新生儿 (seed 1750)


def _record(order: int, status: str = "1") -> dict[str, str]:
    return {"mother_id_number": "320106199401120521", "birth_order": str(order),
            "insure_year": "2026", "prenewborn_status": status}


def test_the_mothers_only_enrolled_prenewborn_is_converted() -> None:
    assert prenewborn_to_convert([_record(1)], None) == 1
    assert prenewborn_to_convert([_record(1), _record(2, status="2")], None) == 1


def test_no_enrolled_prenewborn_means_a_direct_newborn_enrollment() -> None:
    assert prenewborn_to_convert([], None) is None
    assert prenewborn_to_convert([_record(1, status="2")], None) is None
    assert prenewborn_to_convert([_record(1)], 2) is None  # the first child's, not this one


def test_a_given_birth_order_picks_its_own_record() -> None:
    assert prenewborn_to_convert([_record(1), _record(2)], 2) == 2


def test_two_enrolled_prenewborns_without_a_birth_order_are_refused_naming_it() -> None:
    with pytest.raises(BusinessRejected, match=r"\] payload\.birth_order: .*胎次 1, 2"):
        prenewborn_to_convert([_record(2), _record(1)], None)


# ------------------------------------------------------ 基本医疗保险转出 (seed 1841, 2526)


def test_a_ready_destination_lets_the_transfer_out_through() -> None:
    check_transfer_destination("310104", insured=True, pending_business=False)


@pytest.mark.parametrize(("insured", "pending", "code"), [
    (False, False, "DESTINATION_NOT_INSURED"), (True, True, "DESTINATION_PENDING"),
    (False, True, "DESTINATION_NOT_INSURED")])
def test_a_destination_not_ready_refuses_naming_the_target_division(
        insured: bool, pending: bool, code: str) -> None:
    with pytest.raises(BusinessRejected) as caught:
        check_transfer_destination("310104", insured, pending, "转入地说明")
    assert caught.value.reason_code == code
    assert caught.value.public_text.startswith("payload.target_division: ")
    assert "310104" in caught.value.public_text and "转入地说明" in caught.value.public_text

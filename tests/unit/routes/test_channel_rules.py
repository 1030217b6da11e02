"""The seed's F1 business rules, as pure functions."""

from __future__ import annotations

from datetime import date

import pytest

from contracts.errors import BusinessRejected
from routes.channel_rules import (
    check_arrears,
    check_community,
    newborn_insure_year,
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

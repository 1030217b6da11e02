"""EmployeeEnrollment: every rule fails naming its field; derived facts agree with the ID."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.employee import (
    EmployeeEnrollment,
    EmployeeStop,
    ResendRequest,
    SyncStatusUpdate,
    TaxFeedback,
    check_stop_date,
    normalise_cert_type,
)
from contracts.ids import make_credit_code, make_id_number

RNG = random.Random(20240601)
ID_MALE = make_id_number(RNG, born=date(1990, 5, 17), male=True, area="320102")
USCC = make_credit_code(RNG)


def _payload(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "unit_credit_code": USCC, "unit_name": "南京示例科技有限公司", "id_number": ID_MALE,
        "name": "张三", "gender": "1", "birth_date": "1990-05-17", "phone": "13812345678",
        "start_month": "202406", "admdvs": "320102",
    }
    return base | over


def _errors(**over: Any) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as ei:
        EmployeeEnrollment.model_validate(_payload(**over))
    return ei.value.errors()


def test_a_valid_enrollment() -> None:
    e = EmployeeEnrollment.model_validate(_payload())
    assert e.psn_cert_type == "01"
    assert e.insutype == "310"
    assert e.birth_date == date(1990, 5, 17)
    assert e.business_key == f"{USCC}:{ID_MALE}"


@pytest.mark.parametrize(("field", "value"), [
    ("name", "张3"),
    ("name", "John2 Smith"),
    ("name", "张"),
    ("name", "张三!"),
    ("phone", "12812345678"),
    ("phone", "1381234567"),
    ("phone", "138-1234-5678"),
    ("start_month", "202413"),
    ("start_month", "2024-06"),
    ("start_month", "180001"),
    ("admdvs", "320200"),
    ("admdvs", "110105"),
    ("id_number", ID_MALE[:17] + ("0" if ID_MALE[-1] != "0" else "1")),
    ("id_number", "12345"),
    ("unit_credit_code", USCC[:17] + ("0" if USCC[-1] != "0" else "1")),
    ("psn_cert_type", "5"),
    ("psn_cert_type", "ABC"),
    ("gender", "3"),
    ("insutype", "999"),
    ("wage", -1),
    ("unit_name", "x"),
])
def test_each_rule_fails_naming_its_field(field: str, value: Any) -> None:
    errs = _errors(**{field: value})
    assert [e["loc"] for e in errs] == [(field,)]


def test_missing_fields_are_named() -> None:
    payload = _payload()
    del payload["phone"], payload["admdvs"]
    with pytest.raises(ValidationError) as ei:
        EmployeeEnrollment.model_validate(payload)
    assert {e["loc"] for e in ei.value.errors()} == {("phone",), ("admdvs",)}


def test_unknown_fields_are_refused() -> None:
    assert _errors(surprise="x")[0]["loc"] == ("surprise",)


def test_birth_date_must_agree_with_the_id() -> None:
    errs = _errors(birth_date="1990-05-18")
    assert len(errs) == 1
    assert "birth_date 1990-05-18 disagrees with the ID number (1990-05-17)" in errs[0]["msg"]


def test_gender_must_agree_with_the_id() -> None:
    errs = _errors(gender="2")
    assert len(errs) == 1
    assert "gender 2 disagrees with the ID number (1)" in errs[0]["msg"]


def test_derived_rules_apply_only_to_resident_id_cards() -> None:
    e = EmployeeEnrollment.model_validate(_payload(psn_cert_type="02", gender="2"))
    assert e.psn_cert_type == "02"


@pytest.mark.parametrize("raw", ["1", 1, " 1 ", "01"])
def test_cert_type_one_is_normalised_to_01(raw: Any) -> None:
    assert EmployeeEnrollment.model_validate(_payload(psn_cert_type=raw)).psn_cert_type == "01"


def test_normalise_cert_type() -> None:
    assert normalise_cert_type("1") == "01"
    assert normalise_cert_type("6") == "06"
    assert normalise_cert_type("90") == "90"
    assert normalise_cert_type("X") == "X"


def test_id_number_is_stripped_and_upper_cased() -> None:
    female_x = "11010519491231002X"
    e = EmployeeEnrollment.model_validate(_payload(
        id_number=f" {female_x.lower()} ", gender="2", birth_date="1949-12-31"))
    assert e.id_number == female_x


@pytest.mark.parametrize("name", ["张三", "欧阳娜娜", "阿卜杜·热合曼", "John Smith",
                                  "Anne-Marie O"])
def test_acceptable_names(name: str) -> None:
    assert EmployeeEnrollment.model_validate(_payload(name=name)).name == name


def test_name_is_stripped() -> None:
    assert EmployeeEnrollment.model_validate(_payload(name=" 张三 ")).name == "张三"


def test_every_nanjing_district_is_accepted() -> None:
    for code in ("320100", "320115", "320118"):
        assert EmployeeEnrollment.model_validate(_payload(admdvs=code)).admdvs == code


def test_tax_feedback_and_sync_status_are_strict() -> None:
    fb = TaxFeedback(accept_no="A1", biz_msg_id="m1", operation="enroll", status="accepted")
    assert fb.reason_code == ""
    with pytest.raises(ValidationError):
        TaxFeedback(accept_no="A1", biz_msg_id="m1", operation="enroll", status="maybe")
    with pytest.raises(ValidationError):
        SyncStatusUpdate(correlation_id="c", biz_type="t", business_key="k", status="done")


# ------------------------------------------------------------------ EmployeeStop, ResendRequest

def _stop(**over: Any) -> dict[str, Any]:
    return {"unit_credit_code": USCC, "id_number": ID_MALE, "name": "张三",
            "stop_date": "2025-03-31", "reason_code": "02"} | over


def test_a_valid_stop() -> None:
    s = EmployeeStop.model_validate(_stop(id_number=ID_MALE.lower(), name=" 张三 "))
    assert (s.id_number, s.name, s.stop_date) == (ID_MALE, "张三", date(2025, 3, 31))
    assert s.business_key == f"{USCC}:{ID_MALE}"
    without_reason = {k: v for k, v in _stop().items() if k != "reason_code"}
    assert EmployeeStop.model_validate(without_reason).reason_code == "01"


@pytest.mark.parametrize(("over", "field"), [
    ({"unit_credit_code": "91320100MA1XXXXXX0"}, "unit_credit_code"),
    ({"id_number": ID_MALE[:-1] + ("0" if ID_MALE[-1] != "0" else "1")}, "id_number"),
    ({"name": "张3"}, "name"),
    ({"stop_date": "2025-02-30"}, "stop_date"),
    ({"stop_date": (date.today() + timedelta(days=400)).isoformat()}, "stop_date"),
    ({"reason_code": "7"}, "reason_code"),
    ({"extra": 1}, "extra"),
])
def test_stop_rules_name_their_field(over: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as ei:
        EmployeeStop.model_validate(_stop(**over))
    assert [e["loc"][0] for e in ei.value.errors()] == [field]


def test_stop_date_may_be_up_to_a_year_ahead() -> None:
    assert check_stop_date(date(2025, 2, 28), today=date(2024, 2, 29)) == date(2025, 2, 28)
    with pytest.raises(ValueError, match="one year ahead"):
        check_stop_date(date(2025, 3, 1), today=date(2024, 2, 29))
    assert check_stop_date(date(1999, 1, 1)) == date(1999, 1, 1)


def _resend(**over: Any) -> dict[str, Any]:
    return {"id_number": ID_MALE, "unit_credit_code": USCC, "action": "enroll",
            "reason": "税务未收到"} | over


def test_resend_request_rules() -> None:
    r = ResendRequest.model_validate(_resend(action="stop", stop_date="2025-03-31"))
    assert r.business_key == f"{USCC}:{ID_MALE}" and r.stop_reason == "01"
    assert ResendRequest.model_validate(_resend()).stop_date is None
    for over, needle in [({"action": "stop"}, "stop_date is required"),
                         ({"stop_date": "2025-03-31"}, "only for action stop"),
                         ({"reason": " x "}, "at least 2"),
                         ({"action": "change"}, "enroll"),
                         ({"stop_reason": "5"}, "unknown stop reason")]:
        with pytest.raises(ValidationError, match=needle):
            ResendRequest.model_validate(_resend(**over))

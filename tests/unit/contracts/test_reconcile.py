"""参保信息比对 contracts: normalised to compare; every failure names its field."""

from __future__ import annotations

import random
from datetime import date
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from contracts.ids import make_credit_code, make_id_number
from contracts.reconcile import (
    COMPARABLE_FIELDS,
    DEFAULT_FIELDS,
    DISPLAY_FIELD,
    FIELD_LABELS,
    KEY_FIELDS,
    KINDS,
    RECORD_TYPES,
    BatchHeader,
    Difference,
    DiffKind,
    EmployeeRecord,
    FieldDiff,
    FieldError,
    ReconcileSummary,
    ResidentRecord,
    UnitRecord,
    normalise_month,
    normalise_text,
)

RNG = random.Random(20241124)
USCC = make_credit_code(RNG)
ID = make_id_number(RNG, born=date(1988, 3, 9), male=False, area="320104")
ID_X = next(i for i in (make_id_number(RNG) for _ in range(10_000)) if i.endswith("X"))


def _unit(**over: Any) -> dict[str, Any]:
    return {"uscc": USCC, "unit_name": "南京示例科技有限公司", "insured_status": "1",
            "start_month": "201901"} | over


def _employee(**over: Any) -> dict[str, Any]:
    return {"uscc": USCC, "id_number": ID, "name": "张三", "insutype": "310",
            "insured_status": "1", "start_month": "202301", "pay_base": "350000"} | over


def _resident(**over: Any) -> dict[str, Any]:
    return {"id_number": ID, "name": "李四", "community_code": "320104001001",
            "psn_type": "11", "insured_status": "1", "insu_year": "2024"} | over


PAYLOADS = {"unit": _unit, "employee": _employee, "resident": _resident}


def _loc(cls: type[BaseModel], payload: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as ei:
        cls.model_validate(payload)
    return [".".join(str(p) for p in e["loc"]) for e in ei.value.errors()]


def test_valid_records_and_their_keys() -> None:
    u = UnitRecord.model_validate(_unit())
    e = EmployeeRecord.model_validate(_employee())
    r = ResidentRecord.model_validate(_resident())
    assert (u.key, e.key, r.key) == ((USCC,), (USCC, ID), (ID,))
    assert e.cert_type == "01" and e.pay_base == 350_000
    assert r.insu_year == 2024
    assert u.pay_status == "" and u.legal_rep_name == ""


def test_normalisation() -> None:
    e = EmployeeRecord.model_validate(_employee(
        uscc=f"  {USCC.lower()} ", id_number=ID_X.lower(), name="　张三 ", cert_type="1",
        start_month="2023-01", pay_base=350000.0, insutype=310, insured_status=1))
    assert e.uscc == USCC and e.id_number == ID_X and e.name == "张三"
    assert e.cert_type == "01" and e.start_month == "202301" and e.pay_base == 350_000
    assert e.insutype == "310" and e.insured_status == "1"
    u = UnitRecord.model_validate(_unit(unit_name="南京示例（江宁）  有限公司", start_month=201901,
                                        legal_rep_name=" 王　五 "))
    assert u.unit_name == "南京示例(江宁) 有限公司"
    assert u.start_month == "201901" and u.legal_rep_name == "王 五"
    assert EmployeeRecord.model_validate(_employee(cert_type="")).cert_type == "01"
    assert ResidentRecord.model_validate(_resident(insu_year=2024.0)).insu_year == 2024


@pytest.mark.parametrize(("value", "expected"), [
    ("202301", "202301"), ("2023-01", "202301"), ("2023/01", "202301"),
    ("20230115", "202301"), ("2023-01-15", "202301"),
])
def test_normalise_month(value: str, expected: str) -> None:
    assert normalise_month(value) == expected


@pytest.mark.parametrize("value", ["202313", "202300", "2023", "23-01", "1899-01", "abcdef"])
def test_normalise_month_refuses(value: str) -> None:
    with pytest.raises(ValueError, match="yyyyMM"):
        normalise_month(value)


def test_normalise_text() -> None:
    assert normalise_text(" Ａｂ（c）\t d ") == "Ab(c) d"


@pytest.mark.parametrize(("kind", "field", "value"), [
    ("unit", "uscc", USCC[:-1] + ("0" if USCC[-1] != "0" else "1")),
    ("unit", "uscc", "91320100ABC"),
    ("unit", "unit_name", "  "),
    ("unit", "insured_status", "1-2"),
    ("unit", "pay_status", "正常"),
    ("unit", "start_month", "201913"),
    ("unit", "legal_rep_name", "王5"),
    ("employee", "id_number", ID[:-1] + ("0" if ID[-1] != "0" else "1")),
    ("employee", "id_number", "320104198802309999"),
    ("employee", "name", "张3"),
    ("employee", "name", ""),
    ("employee", "insutype", "31"),
    ("employee", "pay_base", "3500.00"),
    ("employee", "pay_base", -1),
    ("employee", "pay_base", 350000.5),
    ("employee", "pay_base", 100_000_001),
    ("employee", "cert_type", "passport"),
    ("resident", "community_code", "110101001001"),
    ("resident", "community_code", "3201040010"),
    ("resident", "psn_type", ""),
    ("resident", "insu_year", "1999"),
    ("resident", "insu_year", "二〇二四"),
])
def test_invalid_field_is_named(kind: str, field: str, value: Any) -> None:
    assert field in _loc(RECORD_TYPES[kind], PAYLOADS[kind](**{field: value}))


@pytest.mark.parametrize("kind", KINDS)
def test_missing_and_extra_fields_are_named(kind: str) -> None:
    payload = PAYLOADS[kind](备注="x")
    del payload[KEY_FIELDS[kind][-1]]
    assert set(_loc(RECORD_TYPES[kind], payload)) == {KEY_FIELDS[kind][-1], "备注"}


def test_other_certificate_types_skip_the_id_checksum() -> None:
    e = EmployeeRecord.model_validate(_employee(cert_type="02", id_number=" e1234567 "))
    assert e.id_number == "E1234567"
    assert "id_number" in _loc(EmployeeRecord, _employee(cert_type="02", id_number="a\x00b"))


def test_records_are_frozen() -> None:
    e = EmployeeRecord.model_validate(_employee())
    with pytest.raises(ValidationError):
        e.name = "李四"  # type: ignore[misc]


def test_field_tables_agree() -> None:
    for kind, cls in RECORD_TYPES.items():
        fields = set(cls.model_fields) - {"kind"}
        assert set(COMPARABLE_FIELDS[kind]) == fields - set(KEY_FIELDS[kind])
        assert set(DEFAULT_FIELDS[kind]) <= set(COMPARABLE_FIELDS[kind])
        assert fields <= set(FIELD_LABELS)
        assert DISPLAY_FIELD[kind] in fields


def test_batch_header() -> None:
    h = BatchHeader(batch_id="SW20241124-0001", kind="employee", as_of=date(2024, 11, 23),
                    record_count=1000)
    assert h.record_count == 1000
    bad_values: list[tuple[dict[str, Any], str]] = [
        ({"batch_id": "批次 1"}, "batch_id"), ({"record_count": -1}, "record_count"),
        ({"kind": "flexible"}, "kind"), ({"extra": 1}, "extra")]
    for bad, field in bad_values:
        payload: dict[str, Any] = {"batch_id": "B1", "kind": "unit", "as_of": "2024-11-23",
                                   "record_count": 1}
        assert field in _loc(BatchHeader, payload | bad)


def test_difference_shapes() -> None:
    ok = Difference(kind="employee", diff=DiffKind.FIELD_MISMATCH, key=(USCC, ID), name="张三",
                    side="tax", row=2, other_row=5,
                    fields=(FieldDiff(field="name", tax_value="张三", core_value="张叁"),))
    assert ok.key_text == f"{USCC}/{ID}"
    with pytest.raises(ValidationError, match="at least one field"):
        Difference(kind="employee", diff=DiffKind.FIELD_MISMATCH, key=(USCC, ID))
    with pytest.raises(ValidationError, match="field error"):
        Difference(kind="unit", diff=DiffKind.INVALID, key=(USCC,), side="tax", row=1)
    with pytest.raises(ValidationError, match="side"):
        Difference(kind="unit", diff=DiffKind.INVALID, key=(USCC,),
                   errors=(FieldError(field="uscc", reason="bad"),))
    with pytest.raises(ValidationError, match="side"):
        Difference(kind="unit", diff=DiffKind.DUPLICATE, key=(USCC,), row=3, other_row=1)
    with pytest.raises(ValidationError):
        Difference(kind="unit", diff=DiffKind.ONLY_AT_TAX, key=(USCC,), row=0)


def test_summary_properties() -> None:
    s = ReconcileSummary(kind="unit", fields=("unit_name",), declared_tax_records=10,
                         tax_records=9, field_mismatch=2, only_at_tax=1, invalid_core=3)
    assert s.differences == 6
    assert s.count_mismatch
    assert not ReconcileSummary(kind="unit", fields=(), tax_records=9).count_mismatch

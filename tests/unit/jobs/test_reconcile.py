"""参保信息比对 engine: each kind of difference, invalid and duplicate input, and a 100k run."""

from __future__ import annotations

import logging
import random
import time
from datetime import date
from typing import Any

import pytest

from contracts.errors import ValidationFailed
from contracts.ids import make_credit_code, make_id_number
from contracts.reconcile import (
    DEFAULT_FIELDS,
    BatchHeader,
    Difference,
    DiffKind,
    EmployeeRecord,
    ResidentRecord,
    UnitRecord,
)
from jobs.reconcile import (
    CoreSnapshot,
    InMemoryCoreSnapshot,
    compared_fields,
    parse_record,
    reconcile,
    reconcile_batch,
)

RNG = random.Random(7)
USCC = [make_credit_code(RNG) for _ in range(3)]
IDS = sorted({make_id_number(RNG) for _ in range(12)})


def emp(i: int, **over: Any) -> dict[str, Any]:
    return {"uscc": USCC[i % 3], "id_number": IDS[i], "name": "张三", "insutype": "310",
            "insured_status": "1", "start_month": "202301", "pay_base": "350000"} | over


def unit(i: int, **over: Any) -> dict[str, Any]:
    return {"uscc": USCC[i], "unit_name": "南京示例有限公司", "legal_rep_name": "王五",
            "insured_status": "1", "start_month": "201901", "pay_status": "1"} | over


def res(i: int, **over: Any) -> dict[str, Any]:
    return {"id_number": IDS[i], "name": "李四", "community_code": "320104001001",
            "psn_type": "11", "insured_status": "1", "insu_year": "2024"} | over


BUILD = {"unit": unit, "employee": emp, "resident": res}
OTHER = {"unit_name": "另一家公司", "legal_rep_name": "赵六", "insured_status": "2",
         "start_month": "202002", "pay_status": "3", "cert_type": "02", "name": "张叁",
         "insutype": "320", "pay_base": "360000", "community_code": "320105002003",
         "psn_type": "21", "insu_year": "2025"}


def diffs(kind: str, tax: list[Any], core: list[Any], **kw: Any) -> list[Difference]:
    return list(reconcile(kind, tax, core, **kw))  # type: ignore[arg-type]


def test_identical_sides_have_no_differences() -> None:
    r = reconcile("employee", [emp(i) for i in range(5)], [emp(i) for i in reversed(range(5))])
    assert list(r) == []
    s = r.summary
    assert (s.tax_records, s.core_records, s.matched, s.identical) == (5, 5, 5, 5)
    assert s.differences == 0 and s.complete


def test_only_at_tax_and_only_in_core() -> None:
    out = diffs("employee", [emp(0), emp(1, name="李四")], [emp(0), emp(2, pay_base="1")])
    assert [d.diff for d in out] == [DiffKind.ONLY_AT_TAX, DiffKind.ONLY_IN_CORE]
    tax_only, core_only = out
    assert tax_only.key == (USCC[1], IDS[1]) and tax_only.name == "李四"
    assert (tax_only.side, tax_only.row) == ("tax", 2)
    assert {f.field: f.tax_value for f in tax_only.fields}["name"] == "李四"
    assert all(f.core_value == "" for f in tax_only.fields)
    assert (core_only.side, core_only.row) == ("core", 2)
    assert {f.field: f.core_value for f in core_only.fields}["pay_base"] == "1"


@pytest.mark.parametrize(("kind", "field"),
                         [(k, f) for k, fs in DEFAULT_FIELDS.items() for f in fs])
def test_mismatch_of_each_field(kind: str, field: str) -> None:
    build = BUILD[kind]
    over = {field: OTHER[field]}
    if field == "cert_type":  # another certificate type keeps the same number
        over["id_number"] = IDS[1]
    r = reconcile(kind, [build(0), build(1)], [build(0), build(1, **over)])  # type: ignore[arg-type]
    (d,) = list(r)
    assert d.diff is DiffKind.FIELD_MISMATCH
    assert [f.field for f in d.fields] == [field]
    tax_value, core_value = d.fields[0].tax_value, d.fields[0].core_value
    assert core_value == str(OTHER[field]) and tax_value != core_value
    assert (d.side, d.row, d.other_row) == ("tax", 2, 2)
    assert r.summary.field_mismatch == 1 and r.summary.field_counts == {field: 1}


def test_several_fields_in_one_mismatch() -> None:
    (d,) = diffs("employee", [emp(0)], [emp(0, name="张叁", pay_base="1")])
    assert {(f.field, f.tax_value, f.core_value) for f in d.fields} == {
        ("name", "张三", "张叁"), ("pay_base", "350000", "1")}


def test_normalisation_hides_formatting_differences() -> None:
    tax = [emp(0, id_number=IDS[0].lower(), name=" 张三 ", start_month="2023-01",
               uscc=USCC[0].lower()),
           unit(0, unit_name="南京示例（江宁）有限公司")]
    core = [emp(0, pay_base=350000), unit(0, unit_name="南京示例(江宁)有限公司")]
    assert diffs("employee", tax[:1], core[:1]) == []
    assert diffs("unit", tax[1:], core[1:]) == []


def test_invalid_records_become_differences_and_the_run_goes_on() -> None:
    tax = [emp(0, id_number="123", pay_base="35.00"), None, emp(1), EmployeeRecord.model_validate(
        emp(2)), UnitRecord.model_validate(unit(0))]
    core = [emp(1), emp(2), emp(3, start_month="202399")]
    r = reconcile("employee", tax, core)
    out = list(r)
    invalid = [d for d in out if d.diff is DiffKind.INVALID]
    assert [(d.side, d.row) for d in invalid] == [("core", 3), ("tax", 1), ("tax", 2), ("tax", 5)]
    core_bad, tax_bad, not_a_record, wrong_kind = invalid
    assert [e.field for e in core_bad.errors] == ["start_month"]
    assert core_bad.key == (USCC[0], IDS[3])
    assert {e.field for e in tax_bad.errors} == {"id_number", "pay_base"}
    assert {e.field: e.value for e in tax_bad.errors}["id_number"] == "123"
    assert not_a_record.errors[0].field == "record"
    assert "unit" in wrong_kind.errors[0].reason
    s = r.summary
    assert (s.invalid_tax, s.invalid_core, s.identical, s.only_at_tax) == (3, 1, 2, 0)


def test_missing_field_reports_no_value() -> None:
    raw = emp(0)
    del raw["name"]
    (d,) = diffs("employee", [raw], [])
    assert (d.errors[0].field, d.errors[0].value) == ("name", "")


def test_duplicates_within_one_side() -> None:
    tax = [emp(0), emp(1), emp(0, name="张叁"), emp(5), emp(5)]
    core = [emp(1), emp(2), emp(1, pay_base="1"), emp(0)]
    r = reconcile("employee", tax, core)
    out = list(r)
    dups = [(d.side, d.row, d.other_row, d.key) for d in out if d.diff is DiffKind.DUPLICATE]
    assert dups == [("core", 3, 1, (USCC[1], IDS[1])), ("tax", 3, 1, (USCC[0], IDS[0])),
                    ("tax", 5, 4, (USCC[2], IDS[5]))]
    # the first occurrence is the one compared: both first records agree with core
    assert not [d for d in out if d.diff is DiffKind.FIELD_MISMATCH]
    s = r.summary
    assert (s.duplicate_tax, s.duplicate_core, s.identical, s.only_at_tax, s.only_in_core) == (
        2, 1, 2, 1, 1)


def test_index_side_does_not_change_the_differences() -> None:
    tax = [emp(0), emp(1, name="李四"), emp(2), emp(2), emp(3, pay_base="x")]
    core = [emp(0, insured_status="2"), emp(2), emp(4), emp(4)]

    def norm(ds: list[Difference]) -> set[tuple[Any, ...]]:
        return {(d.diff, d.key, d.side, d.row, d.other_row, d.fields, d.errors) for d in ds}

    by_core = diffs("employee", tax, core)
    by_tax = diffs("employee", tax, core, index_side="tax")
    assert norm(by_core) == norm(by_tax) and len(by_core) == 6


def test_configurable_fields() -> None:
    tax, core = [emp(0)], [emp(0, name="张叁", pay_base="1")]
    (d,) = diffs("employee", tax, core, fields=["pay_base"])
    assert [f.field for f in d.fields] == ["pay_base"]
    assert diffs("employee", tax, core, fields=["insutype", " start_month"]) == []
    with pytest.raises(ValidationFailed) as ei:
        reconcile("employee", tax, core, fields=["id_number", "wage"])
    assert ei.value.field == "fields" and len(ei.value.errors) == 2
    with pytest.raises(ValidationFailed):
        compared_fields("employee", [" "])
    with pytest.raises(ValidationFailed) as bad_kind:
        compared_fields("flexible", None)  # type: ignore[arg-type]
    assert bad_kind.value.field == "kind"


def test_header_checks_kind_and_reports_the_count() -> None:
    header = BatchHeader(batch_id="B1", kind="resident", as_of=date(2024, 11, 1), record_count=3)
    with pytest.raises(ValidationFailed, match="resident batch"):
        reconcile("unit", [], [], header=header)
    snapshot: CoreSnapshot = InMemoryCoreSnapshot([ResidentRecord.model_validate(res(0)),
                                                   {"kind": "resident", **res(1)}])
    r = reconcile_batch(header, [res(0), res(1)], snapshot)
    assert not r.summary.complete
    assert list(r) == []
    s = r.summary
    assert s.complete and s.batch_id == "B1" and s.as_of == date(2024, 11, 1)
    assert s.declared_tax_records == 3 and s.count_mismatch


def test_in_memory_snapshot() -> None:
    snap = InMemoryCoreSnapshot()
    snap.add(UnitRecord.model_validate(unit(0)), {"kind": "employee", **emp(0)})
    assert len(list(snap.records("unit"))) == 1
    assert list(snap.records("employee")) == [emp(0)]
    assert list(snap.records("resident")) == []
    with pytest.raises(ValidationFailed, match="kind"):
        snap.add(emp(1))


def test_numbered_input_keeps_the_given_rows() -> None:
    r = reconcile("employee", [(2, emp(0)), (7, emp(1))], [(2, emp(0, name="张叁"))],
                  numbered=True)
    out = list(r)
    assert [(d.diff, d.row, d.other_row) for d in out] == [
        (DiffKind.FIELD_MISMATCH, 2, 2), (DiffKind.ONLY_AT_TAX, 7, None)]
    with pytest.raises(TypeError, match="pair"):
        list(reconcile("employee", [emp(0)], [], numbered=True))


def test_iterates_once() -> None:
    r = reconcile("employee", [], [])
    assert list(r) == []
    with pytest.raises(RuntimeError):
        iter(r)


def test_parse_record() -> None:
    assert parse_record("resident", res(0)).key == (IDS[0],)
    with pytest.raises(ValidationFailed) as ei:
        parse_record("resident", res(0, name="李4"))
    assert ei.value.errors[0][0] == "name"


def test_logs_mask_personal_data(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="jobs.reconcile")
    bad = emp(0, name="张3")
    list(reconcile("employee", [bad], [emp(1)]))
    assert "invalid tax record" in caplog.text
    assert IDS[0] not in caplog.text and IDS[1] not in caplog.text
    assert IDS[0][:6] in caplog.text and "张" not in caplog.text


def test_100k_records_per_side_finish_fast() -> None:
    n = 100_000
    rng = random.Random(11)
    ids: set[str] = set()
    while len(ids) < n + 10:
        ids.add(make_id_number(rng))
    people = sorted(ids)
    units = [make_credit_code(rng) for _ in range(200)]
    tax = [{"uscc": units[i % 200], "id_number": p, "name": "张三", "insutype": "310",
            "insured_status": "1", "start_month": "202301", "pay_base": str(300_000 + i % 97)}
           for i, p in enumerate(people[:n])]
    # core's adapter hands over trusted models; build them without re-validating
    core = [EmployeeRecord.model_construct(
        uscc=t["uscc"], cert_type="01", id_number=t["id_number"], name=t["name"],
        insutype="310", insured_status="2" if i % 1000 == 0 else "1", start_month="202301",
        pay_base=int(t["pay_base"])) for i, t in enumerate(tax[5:], start=5)]
    core += [EmployeeRecord.model_construct(
        uscc=units[0], cert_type="01", id_number=p, name="李四", insutype="310",
        insured_status="1", start_month="202301", pay_base=1) for p in people[n:]]
    started = time.perf_counter()
    r = reconcile("employee", tax, core)
    counts: dict[DiffKind, int] = {}
    for d in r:
        counts[d.diff] = counts.get(d.diff, 0) + 1
    elapsed = time.perf_counter() - started
    assert counts == {DiffKind.ONLY_AT_TAX: 5, DiffKind.ONLY_IN_CORE: 10,
                      DiffKind.FIELD_MISMATCH: 99}
    assert r.summary.identical == n - 5 - 99
    assert elapsed < 8, f"100k records took {elapsed:.1f}s"

"""Difference reports: CSV with BOM and XLSX (write-only) read back, Chinese headers, text cells."""

from __future__ import annotations

import csv
import io
import logging
import random
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from contracts.ids import make_credit_code, make_id_number
from contracts.reconcile import (
    BatchHeader,
    Difference,
    DiffKind,
    FieldError,
    ReconcileSummary,
)
from jobs.reconcile import Reconciliation, reconcile
from jobs.reconcile_report import (
    REPORT_COLUMNS,
    SUMMARY_SHEET,
    CsvReport,
    XlsxReport,
    report_rows,
    summary_rows,
    write_csv,
    write_reports,
    write_xlsx,
)

RNG = random.Random(99)
USCC = make_credit_code(RNG)
IDS = sorted({make_id_number(RNG) for _ in range(6)})


def emp(i: int, **over: Any) -> dict[str, Any]:
    return {"uscc": USCC, "id_number": IDS[i], "name": "张三", "insutype": "310",
            "insured_status": "1", "start_month": "202301", "pay_base": "350000"} | over


def run() -> Reconciliation:
    """One of each: mismatch (2 fields), only at tax, only in core, invalid, duplicate."""
    tax = [emp(0), emp(1, name="李四", pay_base="360000"), emp(2), emp(3, id_number="123"),
           emp(0)]
    core = [emp(0), emp(1), emp(4, name="王五")]
    header = BatchHeader(batch_id="SW-1", kind="employee", as_of=date(2024, 10, 31),
                         record_count=5)
    return reconcile("employee", tax, core, header=header)


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.reader(f))


def test_report_rows_flatten_each_kind() -> None:
    rows = [[tuple(str(v) for v in r) for r in report_rows(d)] for d in run()]
    by_kind = {r[0][1]: r for r in rows}
    assert len(by_kind["字段不一致"]) == 2
    assert {r[5] for r in by_kind["字段不一致"]} == {"姓名", "缴费基数(分)"}
    (only_tax,) = by_kind["税务有、核心无"]
    assert only_tax[3] == IDS[2] and "姓名=张三" in only_tax[7] and only_tax[8] == ""
    (only_core,) = by_kind["核心有、税务无"]
    assert only_core[4] == "王五" and "姓名=王五" in only_core[8] and only_core[10] == "3"
    (invalid,) = by_kind["数据无效"]
    assert invalid[5:8] == ("证件号码", "id_number", "123") and "税务数据无效" in invalid[11]
    (dup,) = by_kind["主键重复"]
    assert dup[9] == "5" and "第1行" in dup[11]


def test_csv_has_bom_chinese_headers_and_full_ids(tmp_path: Path) -> None:
    path = tmp_path / "report.csv"
    n = write_csv(path, run())
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw.decode("utf-8-sig").startswith("序号,比对类别,差异类型")
    rows = read_csv(path)
    assert tuple(rows[0]) == REPORT_COLUMNS
    assert n == len(rows) - 1 == 6
    assert [r[0] for r in rows[1:]] == [str(i) for i in range(1, 7)]
    assert IDS[1] in {r[4] for r in rows}  # not masked: caseworkers need it


def test_csv_to_a_stream_and_formula_guard() -> None:
    buf = io.StringIO()
    (d,) = list(reconcile("employee", [emp(0, name="=HYPERLINK")], []))
    write_csv(buf, [d])
    text = buf.getvalue()
    assert text.startswith("\ufeff")
    assert "'=HYPERLINK" in text and "\r\n" in text


def test_xlsx_summary_and_differences(tmp_path: Path) -> None:
    path = tmp_path / "report.xlsx"
    r = run()
    n = write_xlsx(path, r, lambda: r.summary)
    wb = load_workbook(path)
    assert wb.sheetnames == [SUMMARY_SHEET, "差异明细"]
    summary = {row[0]: row[1] for row in wb[SUMMARY_SHEET].iter_rows(values_only=True)}
    assert summary["项目"] == "值"
    assert summary["比对类别"] == "职工参保信息" and summary["税务批次号"] == "SW-1"
    assert summary["数据截止日期"] == "2024-10-31"
    assert (summary["税务记录数"], summary["核心记录数"], summary["完全一致"]) == (5, 3, 1)
    assert summary["字段不一致: 姓名"] == 1 and summary["差异合计"] == 5
    ws = wb["差异明细"]
    assert ws.freeze_panes == "A2"
    rows = list(ws.iter_rows(values_only=True))
    assert tuple(rows[0]) == REPORT_COLUMNS and n == len(rows) - 1 == 6
    id_cells = [row[4] for row in ws.iter_rows(min_row=2)]
    assert all(c.data_type == "s" for c in id_cells)
    assert IDS[1] in {c.value for c in id_cells}


def test_xlsx_keeps_formulas_and_control_characters_as_text(tmp_path: Path) -> None:
    path = tmp_path / "r.xlsx"
    d = Difference(kind="unit", diff=DiffKind.INVALID, key=(USCC,), name="=1+1", side="core",
                   row=1, errors=(FieldError(field="unit_name", reason="bad", value="a\x01b"),))
    write_xlsx(path, [d], ReconcileSummary(kind="unit", fields=("unit_name",), complete=True))
    ws = load_workbook(path)["差异明细"]
    name, value = ws["F2"], ws["J2"]
    assert (name.value, name.data_type) == ("=1+1", "s")
    assert value.value == "a\ufffdb"


def test_xlsx_rolls_over_to_a_new_sheet(tmp_path: Path) -> None:
    path = tmp_path / "big.xlsx"
    r = run()
    n = write_xlsx(path, r, lambda: r.summary, max_rows_per_sheet=3)
    wb = load_workbook(path, read_only=True)
    assert wb.sheetnames == [SUMMARY_SHEET, "差异明细", "差异明细2", "差异明细3"]
    data = [list(wb[s].iter_rows(values_only=True)) for s in wb.sheetnames[1:]]
    assert all(tuple(rows[0]) == REPORT_COLUMNS for rows in data)
    assert [row[0] for rows in data for row in rows[1:]] == list(range(1, n + 1))
    wb.close()
    with pytest.raises(ValueError):
        XlsxReport(tmp_path / "x.xlsx", max_rows_per_sheet=1)


def test_one_pass_feeds_both_writers(tmp_path: Path) -> None:
    r = run()
    csv_report, xlsx_report = CsvReport(tmp_path / "a.csv"), XlsxReport(tmp_path / "a.xlsx")
    assert write_reports(r, [csv_report, xlsx_report], lambda: r.summary) == 5
    assert csv_report.rows == xlsx_report.rows == 6
    assert len(read_csv(tmp_path / "a.csv")) == 7
    assert load_workbook(tmp_path / "a.xlsx").sheetnames[0] == SUMMARY_SHEET


def test_a_failing_stream_aborts_the_writers(tmp_path: Path) -> None:
    def broken() -> Iterator[Difference]:
        yield from run()
        raise OSError("core went away")

    csv_path, xlsx_path = tmp_path / "a.csv", tmp_path / "a.xlsx"
    with pytest.raises(OSError, match="core went away"):
        write_reports(broken(), [CsvReport(csv_path), XlsxReport(xlsx_path)],
                      ReconcileSummary(kind="employee", fields=()))
    assert not csv_path.exists() and not xlsx_path.exists()
    with pytest.raises(OSError):
        write_csv(csv_path, broken())
    assert not csv_path.exists()


def test_summary_rows_warn() -> None:
    s = ReconcileSummary(kind="resident", fields=("name",), declared_tax_records=3,
                         tax_records=2)
    items = dict(summary_rows(s))
    assert items["比对类别"] == "居民参保信息" and items["税务声明记录数"] == 3
    notes = [v for k, v in summary_rows(s) if k == "注意"]
    assert any("实际收到 2 条" in str(v) for v in notes)
    assert any("未完成" in str(v) for v in notes)


def test_logs_carry_no_personal_data(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    r = run()
    write_reports(r, [CsvReport(tmp_path / "a.csv"), XlsxReport(tmp_path / "a.xlsx")],
                  lambda: r.summary)
    assert "rows written" in caplog.text
    assert not any(i in caplog.text for i in IDS)
    assert "张三" not in caplog.text and "王五" not in caplog.text

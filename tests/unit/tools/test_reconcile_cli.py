"""reconcile_cli: CSV/XLSX inputs in, report.csv + report.xlsx out, diff-like exit status."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from contracts.ids import make_credit_code, make_id_number
from tools.reconcile_cli import column_map, main, read_records, sniff_encoding

RNG = random.Random(2024)
USCC = make_credit_code(RNG)
IDS = sorted({make_id_number(RNG) for _ in range(5)})
FIELDS = ["uscc", "id_number", "name", "insutype", "insured_status", "start_month", "pay_base"]
LABELS = ["统一社会信用代码", "证件号码", "姓名", "险种", "参保状态", "参保开始年月",
          "缴费基数(分)"]


def row(i: int, **over: Any) -> list[Any]:
    base = {"uscc": USCC, "id_number": IDS[i], "name": "张三", "insutype": "310",
            "insured_status": "1", "start_month": "202301", "pay_base": "350000"} | over
    return [base[f] for f in FIELDS]


def write_csv(path: Path, header: list[str], rows: list[list[Any]],
              encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def cli(*args: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([str(a) for a in args], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_differences_found(tmp_path: Path) -> None:
    tax = write_csv(tmp_path / "tax.csv", FIELDS, [row(0), row(1, name="李四"), row(2)])
    core = write_csv(tmp_path / "core.csv", FIELDS, [row(0), row(1), row(3)])
    code, out, err = cli("--kind", "employee", "--tax", tax, "--core", core,
                         "--out", tmp_path / "report", "--batch-id", "SW-9", "--declared", "3")
    assert code == 1, err
    assert "税务批次号: SW-9" in out and "字段不一致: 1" in out and "差异合计: 3" in out
    assert "注意" not in out
    with (tmp_path / "report.csv").open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][:3] == ["序号", "比对类别", "差异类型"]
    mismatch = next(r for r in rows if r[2] == "字段不一致")
    assert (mismatch[8], mismatch[9], mismatch[10], mismatch[11]) == ("李四", "张三", "3", "3")
    wb = load_workbook(tmp_path / "report.xlsx", read_only=True)
    assert wb.sheetnames == ["汇总", "差异明细"]
    wb.close()


def test_identical_exits_0_and_out_suffix_is_dropped(tmp_path: Path) -> None:
    tax = write_csv(tmp_path / "tax.csv", FIELDS, [row(0), row(1)])
    core = write_csv(tmp_path / "core.csv", FIELDS, [row(1), row(0)])
    code, out, _ = cli("--kind", "employee", "--tax", tax, "--core", core,
                       "--out", tmp_path / "r.xlsx", "--index-side", "tax")
    assert code == 0 and "差异合计: 0" in out and "数据截止日期: \n" in out
    assert (tmp_path / "r.csv").exists() and (tmp_path / "r.xlsx").exists()


def test_gb18030_chinese_headers_and_xlsx_cells(tmp_path: Path) -> None:
    tax = write_csv(tmp_path / "tax.csv", [*LABELS, "备注"],
                    [[*row(0), "x"], ["", "", "", "", "", "", "", ""], [*row(1), ""]],
                    encoding="gb18030")
    wb = Workbook()
    ws = wb.active
    ws.append(["缴费基数", *LABELS[:6]])
    ws.append([350000, *row(0)[:5], 202301])  # numbers as Excel holds them
    ws.append([350000.0, *row(1)[:5], 202302])
    wb.save(tmp_path / "core.xlsx")
    code, out, err = cli("--kind", "employee", "--tax", tax, "--core", tmp_path / "core.xlsx",
                         "--out", tmp_path / "rep")
    assert "ignoring column(s) 备注" in err
    assert code == 1 and "税务记录数: 2" in out and "完全一致: 1" in out
    with (tmp_path / "rep.csv").open(encoding="utf-8-sig", newline="") as f:
        (_, diff) = list(csv.reader(f))
    # file rows: the tax record sits on line 4 (header, record, blank line), core's on row 3
    assert (diff[6], diff[10], diff[11]) == ("参保开始年月", "4", "3")


def test_resident_from_xlsx_named_sheet(tmp_path: Path) -> None:
    wb = Workbook()
    wb.active.title = "说明"
    ws = wb.create_sheet("居民")
    ws.append(["id_number", "name", "community_code", "psn_type", "insured_status",
               "insu_year"])
    ws.append([IDS[0], "李四", 320104001001, "11", 1, 2024])
    wb.save(tmp_path / "tax.xlsx")
    core = tmp_path / "core.csv"
    core.write_text("ID_NUMBER,姓名,基层医保区划,人员类别,参保状态,参保年度\n"
                    f"{IDS[0]},李四,320104001001,11,1,2025\n", encoding="utf-8")
    code, out, _ = cli("--kind", "resident", "--tax", tmp_path / "tax.xlsx",
                       "--tax-sheet", "居民", "--core", core, "--out", tmp_path / "r")
    assert code == 1 and "字段不一致: 参保年度: 1" in out
    code, _, err = cli("--kind", "resident", "--tax", tmp_path / "tax.xlsx",
                       "--tax-sheet", "无", "--core", core, "--out", tmp_path / "r")
    assert code == 2 and "no sheet '无'" in err


@pytest.mark.parametrize(("args", "message"), [
    (["--fields", "wage"], "'wage' cannot be compared"),
    (["--core", "missing.csv"], "no such file"),
    (["--out", "nodir/report"], "no such directory"),
])
def test_bad_usage_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str],
                           message: str) -> None:
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "t.csv", FIELDS, [row(0)])
    base = {"--kind": "employee", "--tax": "t.csv", "--core": "t.csv", "--out": "r"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    code, _, err = cli(*[x for kv in base.items() for x in kv])
    assert code == 2 and message in err


def test_missing_column_exits_2_and_leaves_no_report(tmp_path: Path) -> None:
    tax = write_csv(tmp_path / "tax.csv", FIELDS, [row(0)])
    core = write_csv(tmp_path / "core.csv", FIELDS[:-1], [row(0)[:-1]])
    code, _, err = cli("--kind", "employee", "--tax", tax, "--core", core,
                       "--out", tmp_path / "r")
    assert code == 2 and "missing column(s): pay_base (缴费基数(分))" in err
    assert not (tmp_path / "r.csv").exists() and not (tmp_path / "r.xlsx").exists()


def test_unknown_kind_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--kind", "flexible", "--tax", "a", "--core", "b", "--out", "c"]) == 2
    assert "expected one of unit, employee, resident" in capsys.readouterr().err


def test_column_map() -> None:
    mapping, ignored = column_map("unit", ["\ufeff统一社会信用代码", "UNIT_NAME", "参保状态",
                                           "参保开始年月", "序号", None])
    assert mapping == {0: "uscc", 1: "unit_name", 2: "insured_status", 3: "start_month"}
    assert ignored == ["序号"]
    with pytest.raises(Exception, match="appears twice"):
        column_map("unit", ["uscc", "统一社会信用代码"])


def test_sniff_encoding_and_read_records(tmp_path: Path) -> None:
    gbk = tmp_path / "g.csv"
    gbk.write_bytes(",".join(FIELDS).encode() + b"\n" + ",".join(
        str(v) for v in row(0, name="张三")).encode("gb18030") + b"\n")
    assert sniff_encoding(gbk) == "gb18030"
    utf = write_csv(tmp_path / "u.csv", FIELDS, [row(0)])
    assert sniff_encoding(utf) == "utf-8-sig"
    ((line, rec),) = list(read_records(gbk, "employee"))
    assert line == 2 and rec["name"] == "张三" and rec["pay_base"] == "350000"

"""The student batch pipeline with a hand-written fake of the tax port (no sockets)."""

from __future__ import annotations

import csv
import random
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from adapters.tax.student_batch import serial_for
from contracts.errors import ValidationFailed
from contracts.ids import make_id_number
from contracts.student_batch import (
    ENROLL_COLUMNS,
    BatchOp,
    StudentEnrollRow,
)
from jobs.student_batch import (
    ChunkRetry,
    batch_id_for,
    read_and_validate,
    run_batch,
)
from tests.support.fakes import FakeStudentBatchTax
from tools import student_batch_cli

TODAY = date(2025, 10, 1)
FAST = ChunkRetry(attempts=3, min_wait_s=0.0, max_wait_s=0.0)
HEADER = list(ENROLL_COLUMNS)
STOP_HEADER = ["身份证号", "姓名", "停保日期", "停保原因", "备注"]


def student(i: int, rng: random.Random, **over: Any) -> list[Any]:
    values: dict[str, Any] = {
        "学校名称": "南京大学", "院校代码": "10284", "学号": f"MF24{i:05d}",
        "身份证号": make_id_number(rng, born=date(2004, 1 + i % 12, 1 + i % 28)),
        "姓名": "张思雨", "性别": None, "出生日期": None, "手机号": "13812345678",
        "入学年月": "2024-09", "参保年度": "2026", "基层医保区划": "320102001001",
        "困难人员类别": None, **over}
    return [values[h] for h in HEADER]


def students(n: int, seed: int = 1) -> list[list[Any]]:
    rng = random.Random(seed)
    return [student(i, rng) for i in range(n)]


def write_xlsx(path: Path, header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(list(header))
    for row in rows:
        ws.append(list(row))
    wb.save(path)
    wb.close()
    return path


def write_csv(path: Path, header: Sequence[Any], rows: Sequence[Sequence[Any]], *,
              encoding: str = "utf-8", delimiter: str = ",") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(["" if c is None else c for c in row] for row in rows)
    return path


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))


def read_xlsx(path: Path) -> list[tuple[Any, ...]]:
    wb = openpyxl.load_workbook(path, read_only=True)
    try:
        return list(wb.worksheets[0].iter_rows(values_only=True))
    finally:
        wb.close()


async def run(source: Path, out: Path, tax: FakeStudentBatchTax, op: BatchOp = "enroll",
              **kw: Any) -> Any:
    kw.setdefault("retry", FAST)
    return await run_batch(op, source, tax, out, today=TODAY, **kw)


# ---------------------------------------------------------------- validation and report

async def test_invalid_rows_are_reported_with_row_number_and_column(tmp_path: Path) -> None:
    rows = students(5)
    rows[1][HEADER.index("手机号")] = "0258888"
    rows[2][HEADER.index("身份证号")] = "32010220040101001X"
    rows[2][HEADER.index("基层医保区划")] = "110101001001"
    numbered = [[i, *r] for i, r in enumerate(rows, start=1)]
    numbered.insert(3, [None] * (len(HEADER) + 1))  # a blank row is skipped, not counted
    source = write_xlsx(tmp_path / "students.xlsx", ["序号", *HEADER], numbered)
    summary = await run(source, tmp_path / "out", FakeStudentBatchTax())

    assert (summary.total_rows, summary.valid_rows, summary.invalid_rows) == (5, 3, 2)
    assert summary.ignored_columns == ("序号",)
    report = read_csv(summary.files["invalid.csv"])
    assert report[0][:4] == ["行号", "错误列", "错误原因", "序号"]
    assert [(r[0], r[1]) for r in report[1:]] == [
        ("3", "手机号"), ("4", "身份证号"), ("4", "基层医保区划")]
    assert {p.name for p in summary.files.values()} == {
        f"students.{g}.{x}" for g in ("invalid", "success", "failure", "difficulty")
        for x in ("csv", "xlsx")}
    assert "0258888" in report[1][2] and report[1][3 + 1 + HEADER.index("手机号")] == "0258888"
    assert "校验位" in report[2][2]
    sheet = read_xlsx(summary.files["invalid.xlsx"])
    assert sheet[0][:3] == ("行号", "错误列", "错误原因")
    assert [(r[0], r[1]) for r in sheet[1:]] == [
        (3, "手机号"), (4, "身份证号"), (4, "基层医保区划")]


def test_duplicate_id_is_an_error_on_its_second_occurrence(tmp_path: Path) -> None:
    rows = students(4)
    rows[2][HEADER.index("身份证号")] = str(rows[0][HEADER.index("身份证号")]).lower()
    vf = read_and_validate("enroll", write_csv(tmp_path / "dup.csv", HEADER, rows), today=TODAY)
    assert [n for n, _ in vf.valid] == [2, 3, 5]
    assert [(e.row_no, e.column, e.reason) for e in vf.errors] == [(4, "身份证号", "与第2行重复")]


@pytest.mark.parametrize(("encoding", "delimiter"), [
    ("utf-8", ","), ("utf-8-sig", ","), ("gbk", ","), ("gb18030", "\t")])
def test_csv_encodings_and_delimiters(tmp_path: Path, encoding: str, delimiter: str) -> None:
    rows = students(3)
    rows[1][HEADER.index("姓名")] = "欧阳·娜娜"
    rows[2][HEADER.index("困难人员类别")] = "低保对象"
    source = write_csv(tmp_path / "s.csv", HEADER, rows, encoding=encoding, delimiter=delimiter)
    vf = read_and_validate("enroll", source, today=TODAY)
    assert not vf.errors
    names = [r.name for _, r in vf.valid]
    assert names == ["张思雨", "欧阳·娜娜", "张思雨"]
    last = vf.valid[2][1]
    assert isinstance(last, StudentEnrollRow) and last.difficulty_type == "02"


@pytest.mark.parametrize(("name", "content", "fragment"), [
    ("bad.xlsx", b"PK\x03\x04 this is not a workbook", "XLSX"),
    ("old.xls", b"\xd0\xcf\x11\xe0", ".xls"),
    ("empty.csv", b"\n\n", "文件为空"),
    ("nocols.csv", "姓名,身份证号\n张三,1\n".encode(), "缺少必填列"),
])
def test_unreadable_files_fail_the_whole_job(tmp_path: Path, name: str, content: bytes,
                                            fragment: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValidationFailed) as exc:
        read_and_validate("enroll", path, today=TODAY)
    assert any(fragment in reason for _, reason in exc.value.errors)


def test_cli_exits_non_zero_when_the_file_cannot_be_read(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"not a zip")
    code = student_batch_cli.main(["enroll", str(bad), "--tax-url", "http://127.0.0.1:9/tax/ws",
                                   "--out", str(tmp_path / "out"), "--no-progress"])
    assert code == student_batch_cli.EXIT_UNREADABLE
    assert "文件" in capsys.readouterr().err


# ---------------------------------------------------------------- chunks, retries, split

async def test_chunks_are_bounded_and_in_row_order(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "s.csv", HEADER, students(23))
    tax = FakeStudentBatchTax()
    progress: list[tuple[int, int]] = []
    summary = await run(source, tmp_path / "out", tax, chunk_size=5, concurrency=2,
                        progress=lambda done, total: progress.append((done, total)))
    assert sorted(len(c[3]) for c in tax.calls) == [3, 5, 5, 5, 5]
    assert {c[2] for c in tax.calls} == {5}
    assert tax.max_in_flight == 2
    assert summary.chunks == 5 and summary.success == 23
    assert progress[0] == (0, 23) and progress[-1] == (23, 23)
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)
    rows = read_csv(summary.files["success.csv"])
    assert [int(r[0]) for r in rows[1:]] == list(range(2, 25))


async def test_retries_reuse_the_serial(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "s.csv", HEADER, students(10))
    tax = FakeStudentBatchTax(transient={2: 2})
    summary = await run(source, tmp_path / "out", tax, chunk_size=4, batch_id="UNIV_A")
    chunk2 = [c for c in tax.calls if c[1] == 2]
    assert [c[0] for c in chunk2] == ["UNIV_A-2"] * 3
    assert len({c[3] for c in chunk2}) == 1
    assert (summary.retries, summary.chunks_failed, summary.success) == (2, 0, 10)


async def test_exhausted_retries_fail_the_chunk_rows_not_the_job(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "s.csv", HEADER, students(6))
    tax = FakeStudentBatchTax(transient={1: 99})
    summary = await run(source, tmp_path / "out", tax, chunk_size=3)
    assert len([c for c in tax.calls if c[1] == 1]) == FAST.attempts
    assert (summary.chunks_failed, summary.failure, summary.success) == (1, 3, 3)
    failed = read_csv(summary.files["failure.csv"])[1:]
    assert {r[7] for r in failed} == {"UNAVAILABLE"}
    assert all("同一批次号" in r[8] for r in failed)


async def test_rejected_chunk_is_not_retried(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "s.csv", HEADER, students(4))
    tax = FakeStudentBatchTax(reject={2})
    summary = await run(source, tmp_path / "out", tax, chunk_size=2)
    assert len(tax.calls) == 2 and summary.retries == 0
    failed = read_csv(summary.files["failure.csv"])[1:]
    assert [(r[0], r[7]) for r in failed] == [("4", "TX399"), ("5", "TX399")]


async def test_results_split_into_success_failure_and_difficulty(tmp_path: Path) -> None:
    rows = students(6)
    rows[1][HEADER.index("基层医保区划")] = "320102099099"
    rows[3][HEADER.index("困难人员类别")] = "01"
    rows[4][HEADER.index("困难人员类别")] = "孤儿"
    source = write_xlsx(tmp_path / "mix.xlsx", HEADER, rows)
    tax = FakeStudentBatchTax(drop_rows={7})
    summary = await run(source, tmp_path / "out", tax)
    assert (summary.success, summary.failure, summary.difficulty) == (2, 2, 2)
    failure = read_csv(summary.files["failure.csv"])
    assert failure[0] == ["行号", "身份证号", "姓名", "学号", "院校代码", "困难人员类别", "结果",
                          "原因代码", "原因说明"]
    assert [(r[0], r[6], r[7]) for r in failure[1:]] == [
        ("3", "失败", "TX301"), ("7", "失败", "HUB_NO_RESULT")]
    difficulty = read_xlsx(summary.files["difficulty.xlsx"])
    assert [(r[0], r[5], r[6], r[7]) for r in difficulty[1:]] == [
        (5, "01 特困供养人员", "困难人员", "KN01"), (6, "05 孤儿", "困难人员", "KN05")]
    assert [r[0] for r in read_csv(summary.files["success.csv"])[1:]] == ["2", "4"]


async def test_stop_batch_from_csv(tmp_path: Path) -> None:
    rng = random.Random(3)
    ids = [make_id_number(rng, born=date(2003, 5, 1 + i)) for i in range(3)]
    rows = [[ids[0], "王小明", "2026-06-30", "毕业", ""],
            [ids[1], "李华", "2026/7/1", "02", "本人申请"],
            [ids[2], "赵四", "2026-07-01", "放暑假", ""]]
    source = write_csv(tmp_path / "grads.csv", STOP_HEADER, rows, encoding="gbk")
    tax = FakeStudentBatchTax()
    summary = await run(source, tmp_path / "out", tax, op="stop")
    assert (summary.valid_rows, summary.invalid_rows, summary.success) == (2, 1, 2)
    success = read_csv(summary.files["success.csv"])
    assert success[0][3:5] == ["停保日期", "停保原因"]
    assert success[1][3:5] == ["2026-06-30", "01 毕业"]
    assert read_csv(summary.files["invalid.csv"])[1][:2] == ["4", "停保原因"]


def test_batch_id_follows_file_and_chunking(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "s.csv", HEADER, students(2))
    digest = read_and_validate("enroll", source, today=TODAY).digest
    assert batch_id_for("enroll", digest, 500) == batch_id_for("enroll", digest, 500)
    assert batch_id_for("enroll", digest, 500) != batch_id_for("enroll", digest, 400)
    assert batch_id_for("enroll", digest, 500) != batch_id_for("stop", digest, 500)
    assert len(serial_for(batch_id_for("enroll", digest, 1000), 99999)) <= 80


async def test_the_hubs_difficulty_store_marks_held_students(tmp_path: Path) -> None:
    """1816: a student the hub's 困难人员库 holds (an identity in force) is 困难人员 even when
    tax does not say so; a failure stays a failure; no lookup, tax's answer alone."""
    rows = students(4)
    rows[1][HEADER.index("基层医保区划")] = "320102099099"  # tax fails row 3
    ids = [r[HEADER.index("身份证号")] for r in rows]
    source = write_csv(tmp_path / "s.csv", HEADER, rows)
    asked: list[list[str]] = []

    async def held(id_numbers: list[str]) -> dict[str, list[str]]:
        asked.append(list(id_numbers))
        return {ids[0]: ["01", "07"], ids[1]: ["06"]}

    plain = await run(source, tmp_path / "plain", FakeStudentBatchTax())
    assert (plain.success, plain.failure, plain.difficulty) == (3, 1, 0)
    summary = await run(source, tmp_path / "out", FakeStudentBatchTax(), held=held)
    assert (summary.success, summary.failure, summary.difficulty) == (2, 1, 1)
    assert asked == [sorted({ids[0], ids[2], ids[3]})]  # only rows tax enrolled
    marked = read_csv(summary.files["difficulty.csv"])[1:]
    assert [(r[0], r[6], r[7], r[8]) for r in marked] == [
        ("2", "困难人员", "HUB_DIFFICULTY", "困难人员库: 01 低保、07 建档立卡")]
    assert [r[0] for r in read_csv(summary.files["failure.csv"])[1:]] == ["3"]

    async def down(id_numbers: list[str]) -> dict[str, list[str]]:
        raise ConnectionError("database gone")

    kept = await run(source, tmp_path / "down", FakeStudentBatchTax(), held=down)
    assert (kept.success, kept.failure, kept.difficulty) == (3, 1, 0)  # tax's answer kept

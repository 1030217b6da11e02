"""Student batch files past the limits of ``contracts.student_batch`` are refused before
they cost memory or minutes: an XLSX by its zip directory before openpyxl opens it, every
file by its row count while it streams, every row at ``MAX_FILE_COLUMNS`` cells."""

from __future__ import annotations

import zipfile
from pathlib import Path

import openpyxl
import pytest

from contracts.errors import ValidationFailed
from contracts.student_batch import (
    ENROLL_COLUMNS,
    MAX_FILE_COLUMNS,
    MAX_FILE_ROWS,
    MAX_XLSX_MEMBERS,
    MAX_XLSX_RATIO,
    MAX_XLSX_UNZIPPED_BYTES,
)
from jobs import student_batch
from jobs.student_batch import (
    FILE_COLUMN,
    check_readable,
    check_xlsx_archive,
    read_and_validate,
)
from tests.unit.jobs.test_student_batch import TODAY, students, write_csv, write_xlsx

HEADER = list(ENROLL_COLUMNS)
MiB = 1024 * 1024


def _student_xlsx(path: Path, rows: int = 3) -> Path:
    return write_xlsx(path, HEADER, students(rows))


def _add_zeros(path: Path, name: str, size: int) -> None:
    """A member of ``size`` zero bytes, written in 1 MiB pieces (deflate: ~1000:1)."""
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf, \
            zf.open(name, "w") as member:
        left = size
        while left:
            n = min(left, MiB)
            member.write(bytes(n))
            left -= n


def _refused(call: object, path: Path, fragment: str) -> str:
    with pytest.raises(ValidationFailed) as e:
        call(path)  # type: ignore[operator]
    assert e.value.field == FILE_COLUMN
    [(_, reason)] = e.value.errors
    assert fragment in reason, reason
    return reason


@pytest.fixture
def no_openpyxl(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("openpyxl opened a file the archive check should have refused")

    monkeypatch.setattr(student_batch.openpyxl, "load_workbook", refuse)


# ---------------------------------------------------------------- the XLSX archive


def test_a_zip_bomb_is_refused_by_its_unzipped_size_before_openpyxl_opens_it(
        tmp_path: Path, no_openpyxl: None) -> None:
    path = _student_xlsx(tmp_path / "bomb.xlsx")
    _add_zeros(path, "xl/media/image1.bin", MAX_XLSX_UNZIPPED_BYTES + MiB)
    assert path.stat().st_size < 2 * MiB  # small on the wire
    reason = _refused(check_xlsx_archive, path, "解压后")
    assert str(MAX_XLSX_UNZIPPED_BYTES) in reason
    _refused(lambda p: read_and_validate("enroll", p, today=TODAY), path, "解压后")


def test_a_member_inflating_past_the_ratio_is_refused(tmp_path: Path, no_openpyxl: None) -> None:
    path = _student_xlsx(tmp_path / "ratio.xlsx")
    _add_zeros(path, "xl/worksheets/sheet9.xml", 4 * MiB)
    reason = _refused(check_xlsx_archive, path, "压缩比")
    assert f"{MAX_XLSX_RATIO}:1" in reason and "sheet9.xml" in reason


def test_too_many_members_are_refused_from_the_zip_directory(tmp_path: Path,
                                                              no_openpyxl: None) -> None:
    path = _student_xlsx(tmp_path / "many.xlsx")
    with zipfile.ZipFile(path, "a") as zf:
        for i in range(MAX_XLSX_MEMBERS):
            zf.writestr(f"customXml/item{i}.xml", b"<a/>")
    _refused(check_xlsx_archive, path, f"{MAX_XLSX_MEMBERS} 个的上限")


def test_a_file_without_a_zip_directory_is_unreadable(tmp_path: Path, no_openpyxl: None) -> None:
    path = tmp_path / "bad.xlsx"
    path.write_bytes(b"PK\x03\x04 not a workbook")
    _refused(check_xlsx_archive, path, "XLSX")


def test_a_real_student_file_is_well_inside_the_archive_limits(tmp_path: Path) -> None:
    from bench.student_batch import make_students_xlsx

    path = tmp_path / "students.xlsx"
    make_students_xlsx(path, 5_000, difficulty=10, unknown_community=5)
    check_xlsx_archive(path)
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    assert sum(i.file_size for i in infos) * 10 < MAX_XLSX_UNZIPPED_BYTES  # 5,000 of 50,000
    assert max(i.file_size / max(i.compress_size, 1) for i in infos) < MAX_XLSX_RATIO / 2
    assert check_readable(path) == 5_001


# ---------------------------------------------------------------- rows and columns


def test_an_xlsx_with_a_row_past_the_limit_is_refused(tmp_path: Path) -> None:
    """One stray cell at the bottom of the sheet: a tiny file that openpyxl would pad
    with empty rows all the way down."""
    path = tmp_path / "long.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(HEADER)
    ws.cell(row=1_048_576, column=1, value="x")
    wb.save(path)
    assert path.stat().st_size < 20_000
    reason = _refused(check_readable, path, f"超过 {MAX_FILE_ROWS} 行的上限")
    _refused(lambda p: read_and_validate("enroll", p, today=TODAY), path, reason)


def test_a_csv_with_a_row_past_the_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text(",".join(HEADER) + "\n" + "x\n" * MAX_FILE_ROWS, encoding="utf-8")
    _refused(check_readable, path, f"超过 {MAX_FILE_ROWS} 行的上限")


def test_a_file_of_exactly_the_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "full.csv"
    path.write_text(",".join(HEADER) + "\n" + "x\n" * (MAX_FILE_ROWS - 1), encoding="utf-8")
    assert check_readable(path) == MAX_FILE_ROWS


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
def test_a_row_is_read_at_most_max_columns_wide(tmp_path: Path, kind: str) -> None:
    """A bad row with a cell in the sheet's last column is kept for the report at the
    header's width, not 16,384 cells wide; a header far to the right is not read."""
    rows = students(2)
    if kind == "xlsx":
        path = _student_xlsx(tmp_path / "wide.xlsx", 0)
        wb = openpyxl.load_workbook(path)
        ws = wb.active
        assert ws is not None
        for r, row in enumerate(rows, start=2):
            for c, value in enumerate(row, start=1):
                ws.cell(row=r, column=c, value=value)
        ws.cell(row=2, column=4, value="not an id")
        ws.cell(row=2, column=16_384, value="far")
        ws.cell(row=1, column=MAX_FILE_COLUMNS + 1, value="备注")
        wb.save(path)
    else:
        bad = [*rows[0][:3], "not an id", *rows[0][4:]] + [""] * 50_000 + ["far"]
        path = write_csv(tmp_path / "wide.csv", [*HEADER, *[""] * (MAX_FILE_COLUMNS - 12),
                                                 "备注"], [bad, rows[1]])
    vf = read_and_validate("enroll", path, today=TODAY)
    assert len(vf.valid) == 1 and list(vf.invalid_cells) == [2]
    assert len(vf.invalid_cells[2]) <= MAX_FILE_COLUMNS
    assert "备注" not in vf.headers and len(vf.headers) <= MAX_FILE_COLUMNS

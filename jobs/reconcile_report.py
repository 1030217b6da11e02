"""参保信息比对 difference reports: CSV and XLSX, streamed from the difference iterator.

Both formats carry the same rows under the same Chinese headers
(``REPORT_COLUMNS``), one row per differing field for a mismatch, one per bad
field for an invalid record, and one per record otherwise; see
``contracts/RECONCILE.md`` for the layout.

* CSV is UTF-8 *with* a BOM: without it Excel opens the file as GBK and the
  Chinese headers and names turn to mojibake. Excel still shows an 18-digit ID
  number of a CSV as a rounded number, so caseworkers should open the XLSX; the
  CSV is for machines and for importing elsewhere.
* XLSX is written with openpyxl's write-only mode (rows go to a temporary
  file as they come, strings inline): memory stays flat however many
  differences there are. Sheet 1 汇总 holds the counts, sheet 2 差异明细 the
  rows; past Excel's 1,048,576 rows the rows continue on 差异明细2, 差异明细3, ...
  Every value is a text cell, so ID numbers keep all 18 digits.

The report carries full ID numbers and names (caseworkers have to find the
person); it is a protected file. Log lines here carry counts and paths only.
Cell values that a spreadsheet would run as a formula (=, +, -, @ first) are
kept as text: in the CSV they get a leading apostrophe, in the XLSX they are
typed as strings.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol, TextIO

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.utils import get_column_letter

from contracts.clock import now_beijing
from contracts.reconcile import (
    DIFF_LABELS,
    FIELD_LABELS,
    KEY_FIELDS,
    KIND_LABELS,
    SIDE_LABELS,
    Difference,
    DiffKind,
    ReconcileSummary,
)

__all__ = [
    "EXCEL_MAX_ROWS",
    "REPORT_COLUMNS",
    "SUMMARY_SHEET",
    "CsvReport",
    "ReportWriter",
    "XlsxReport",
    "report_rows",
    "summary_rows",
    "write_csv",
    "write_reports",
    "write_xlsx",
]

log = logging.getLogger(__name__)

REPORT_COLUMNS: tuple[str, ...] = (
    "序号", "比对类别", "差异类型", "统一社会信用代码", "证件号码", "姓名/单位名称", "字段",
    "字段代码", "税务值", "核心值", "税务行号", "核心行号", "说明",
)
SUMMARY_SHEET = "汇总"
DIFF_SHEET = "差异明细"
EXCEL_MAX_ROWS = 1_048_576
_COLUMN_WIDTHS = (8, 14, 14, 22, 22, 24, 14, 14, 28, 28, 12, 12, 48)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

Cell = str | int
Row = tuple[Cell, ...]
PathOrText = str | os.PathLike[str] | TextIO
PathOrBinary = str | os.PathLike[str] | IO[bytes]
SummarySource = ReconcileSummary | Callable[[], ReconcileSummary]


def _label(field: str) -> str:
    return FIELD_LABELS.get(field, field)


def _row_cells(d: Difference) -> tuple[int | str, int | str]:
    """(税务行号, 核心行号) of one difference."""
    if d.diff is DiffKind.FIELD_MISMATCH:
        return d.row or "", d.other_row or ""
    row = d.row or ""
    return (row, "") if d.side == "tax" else ("", row)


def report_rows(d: Difference) -> list[tuple[Cell, ...]]:
    """The report rows of one difference, without the leading 序号."""
    keys = dict(zip(KEY_FIELDS[d.kind], d.key, strict=False))
    tax_row, core_row = _row_cells(d)
    head: tuple[Cell, ...] = (KIND_LABELS[d.kind], DIFF_LABELS[d.diff], keys.get("uscc", ""),
                              keys.get("id_number", ""), d.name)
    tail: tuple[Cell, ...] = (tax_row, core_row)
    side = SIDE_LABELS.get(d.side or "", "")
    if d.diff is DiffKind.FIELD_MISMATCH:
        return [(*head, _label(f.field), f.field, f.tax_value, f.core_value, *tail, d.note)
                for f in d.fields]
    if d.diff is DiffKind.INVALID:
        return [(*head, _label(e.field), e.field,
                 e.value if d.side == "tax" else "", e.value if d.side == "core" else "",
                 *tail, f"{side}数据无效: {e.reason}") for e in d.errors]
    if d.diff is DiffKind.DUPLICATE:
        note = f"与{side}第{d.other_row}行记录主键重复，仅比对第{d.other_row}行"
        return [(*head, "", "", "", "", *tail, note)]
    values = "；".join(f"{_label(f.field)}={f.tax_value or f.core_value}" for f in d.fields)
    if d.diff is DiffKind.ONLY_AT_TAX:
        return [(*head, "", "", values, "", *tail, d.note or "医保核心无此记录")]
    return [(*head, "", "", "", values, *tail, d.note or "税务无此记录")]


def summary_rows(summary: ReconcileSummary) -> list[tuple[str, Cell]]:
    """(项目, 值) pairs of the summary sheet (also what the CLI prints)."""
    s = summary
    rows: list[tuple[str, Cell]] = [
        ("比对类别", KIND_LABELS[s.kind]),
        ("税务批次号", s.batch_id),
        ("数据截止日期", s.as_of.isoformat() if s.as_of else ""),
        ("比对字段", "、".join(_label(f) for f in s.fields)),
    ]
    if s.declared_tax_records is not None:
        rows.append(("税务声明记录数", s.declared_tax_records))
    rows += [
        ("税务记录数", s.tax_records),
        ("核心记录数", s.core_records),
        ("双方均有", s.matched),
        ("完全一致", s.identical),
        (DIFF_LABELS[DiffKind.FIELD_MISMATCH], s.field_mismatch),
        (DIFF_LABELS[DiffKind.ONLY_AT_TAX], s.only_at_tax),
        (DIFF_LABELS[DiffKind.ONLY_IN_CORE], s.only_in_core),
        ("税务数据无效", s.invalid_tax),
        ("核心数据无效", s.invalid_core),
        ("税务主键重复", s.duplicate_tax),
        ("核心主键重复", s.duplicate_core),
        ("差异合计", s.differences),
    ]
    rows += [(f"字段不一致: {_label(f)}", s.field_counts.get(f, 0)) for f in s.fields]
    if s.count_mismatch:
        rows.append(("注意", f"税务声明 {s.declared_tax_records} 条，实际收到 {s.tax_records} 条"))
    if not s.complete:
        rows.append(("注意", "比对未完成，报告不完整"))
    rows.append(("报告生成时间", now_beijing().strftime("%Y-%m-%d %H:%M:%S")))
    return rows


def _csv_safe(value: Cell) -> Cell:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


class ReportWriter(Protocol):
    """One output format; ``write_reports`` feeds several from one pass over the differences."""

    def add(self, difference: Difference) -> None: ...

    def close(self, summary: ReconcileSummary) -> None: ...

    def abort(self) -> None: ...


class CsvReport:
    """Differences as CSV (UTF-8 with BOM, CRLF). A path it opened is deleted on ``abort``.

    A text stream given instead of a path gets the BOM as its first character
    unless ``bom=False`` (e.g. when appending to a stream that already has one).
    """

    def __init__(self, target: PathOrText, *, bom: bool = True) -> None:
        self._path: Path | None = None
        if isinstance(target, (str, os.PathLike)):
            self._path = Path(target)
            self._stream: TextIO = self._path.open(
                "w", encoding="utf-8-sig" if bom else "utf-8", newline="")
        else:
            self._stream = target
            if bom:
                target.write("\ufeff")
        self._csv = csv.writer(self._stream, lineterminator="\r\n")
        self._csv.writerow(REPORT_COLUMNS)
        self.rows = 0

    def add(self, difference: Difference) -> None:
        for row in report_rows(difference):
            self.rows += 1
            self._csv.writerow([self.rows, *(_csv_safe(v) for v in row)])

    def close(self, summary: ReconcileSummary | None = None) -> None:
        """The CSV holds the differences only; the summary lives in the XLSX and the CLI."""
        if self._path is not None:
            self._stream.close()
            log.info("reconcile report: %d rows written to %s", self.rows, self._path)
        else:
            self._stream.flush()

    def abort(self) -> None:
        if self._path is not None:
            self._stream.close()
            self._path.unlink(missing_ok=True)

    def __enter__(self) -> CsvReport:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if et is not None:
            self.abort()


class XlsxReport:
    """Differences and summary as XLSX in openpyxl write-only mode (constant memory).

    ``max_rows_per_sheet`` (header included) is Excel's limit; lower it only in tests.
    """

    def __init__(self, target: PathOrBinary, *, max_rows_per_sheet: int = EXCEL_MAX_ROWS) -> None:
        if max_rows_per_sheet < 2:
            raise ValueError("max_rows_per_sheet must leave room for the header and a row")
        self._target = target
        self._max = max_rows_per_sheet
        self._wb = Workbook(write_only=True)
        self._summary: Any = self._wb.create_sheet(SUMMARY_SHEET)
        self._summary.column_dimensions["A"].width = 28
        self._summary.column_dimensions["B"].width = 60
        self._sheets = 0
        self._sheet = self._new_sheet()
        self.rows = 0

    def _new_sheet(self) -> Any:
        """A differences sheet with its header row (openpyxl is untyped: ``Any``)."""
        self._sheets += 1
        title = DIFF_SHEET if self._sheets == 1 else f"{DIFF_SHEET}{self._sheets}"
        ws = self._wb.create_sheet(title)
        for i, width in enumerate(_COLUMN_WIDTHS, start=1):
            ws.column_dimensions[get_column_letter(i)].width = width
        ws.freeze_panes = "A2"
        ws.append(list(REPORT_COLUMNS))
        self._in_sheet = 1
        return ws

    def _cell(self, ws: Any, value: Cell) -> Any:
        if not isinstance(value, str):
            return value
        text = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)  # openpyxl refuses control chars
        if text.startswith("="):  # openpyxl would store it as a formula
            cell = WriteOnlyCell(ws, value=text)
            cell.data_type = "s"
            return cell
        return text

    def add(self, difference: Difference) -> None:
        for row in report_rows(difference):
            if self._in_sheet >= self._max:
                self._sheet = self._new_sheet()
            self.rows += 1
            self._in_sheet += 1
            ws = self._sheet
            ws.append([self.rows, *(self._cell(ws, v) for v in row)])

    def close(self, summary: ReconcileSummary) -> None:
        self._summary.append(["项目", "值"])
        for item, value in summary_rows(summary):
            self._summary.append([item, self._cell(self._summary, value)])
        self._wb.save(self._target)
        log.info("reconcile report: %d rows written to %s", self.rows,
                 self._target if isinstance(self._target, (str, os.PathLike)) else "a stream")

    def abort(self) -> None:
        """Discard: saving to a throwaway buffer removes openpyxl's temporary files."""
        self._wb.save(io.BytesIO())


def _resolve(summary: SummarySource) -> ReconcileSummary:
    return summary() if callable(summary) else summary


def write_reports(differences: Iterable[Difference], writers: Sequence[ReportWriter],
                  summary: SummarySource) -> int:
    """Feed every writer from one pass; ``summary`` is read after the last difference.

    Pass ``lambda: reconciliation.summary`` so the counts are the final ones.
    On an error every writer is aborted (no partial file is left) and the
    error propagates. Returns the number of differences.
    """
    n = 0
    try:
        for d in differences:
            n += 1
            for w in writers:
                w.add(d)
        final = _resolve(summary)
        for w in writers:
            w.close(final)
    except BaseException:
        for w in writers:
            try:
                w.abort()
            except Exception:  # the first error is the one to report
                log.exception("reconcile report: abort failed")
        raise
    return n


def write_csv(target: PathOrText, differences: Iterable[Difference]) -> int:
    """Write the CSV report; returns the number of rows (not differences) written."""
    w = CsvReport(target)
    with w:
        for d in differences:
            w.add(d)
    w.close()
    return w.rows


def write_xlsx(target: PathOrBinary, differences: Iterable[Difference],
               summary: SummarySource, *, max_rows_per_sheet: int = EXCEL_MAX_ROWS) -> int:
    """Write the XLSX report; returns the number of difference rows written."""
    w = XlsxReport(target, max_rows_per_sheet=max_rows_per_sheet)
    write_reports(differences, [w], summary)
    return w.rows

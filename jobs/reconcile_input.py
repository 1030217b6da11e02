"""Reading one side of a 比对 from a file: CSV (UTF-8 or GB18030) or XLSX, streaming.

Row 1 holds the column names: field names or their Chinese labels
(``contracts.reconcile.FIELD_LABELS``), in any order; other columns are ignored
with a warning, blank rows skipped. Used by the ``tax.compare`` lane and by
``tools/reconcile_cli.py``.
"""

from __future__ import annotations

import codecs
import csv
import re
import sys
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TextIO

from openpyxl import load_workbook

from contracts.reconcile import FIELD_LABELS, RECORD_TYPES

__all__ = ["InputError", "Numbered", "column_map", "read_records", "sniff_encoding"]

_SNIFF_BYTES = 1 << 20
_PAREN = re.compile(r"[(（][^)）]*[)）]")

Numbered = tuple[int, dict[str, object]]


class InputError(Exception):
    """A comparison input that cannot be read at all (missing file, sheet or column)."""


def _input_fields(kind: str) -> tuple[str, ...]:
    return tuple(f for f in RECORD_TYPES[kind].model_fields if f != "kind")


def _required(kind: str) -> tuple[str, ...]:
    fields = RECORD_TYPES[kind].model_fields
    return tuple(f for f in _input_fields(kind) if fields[f].is_required())


def column_map(kind: str, headers: Sequence[object]) -> tuple[dict[int, str], list[str]]:
    """Header cells -> {column index: field}, plus the ignored headers.

    A column is known by its field name (any case) or its Chinese label, with
    or without the unit in brackets (缴费基数(分) or 缴费基数). Raises
    ``InputError`` naming a missing required column or a field given twice.
    """
    names: dict[str, str] = {}
    for f in _input_fields(kind):
        names[f] = f
        label = FIELD_LABELS.get(f, f)
        names[label] = f
        names[_PAREN.sub("", label)] = f
    mapping: dict[int, str] = {}
    ignored: list[str] = []
    for i, cell in enumerate(headers):
        h = str(cell if cell is not None else "").strip().lstrip("\ufeff").strip()
        field = names.get(h) or names.get(h.lower()) or names.get(_PAREN.sub("", h))
        if field is None:
            if h:
                ignored.append(h)
            continue
        if field in mapping.values():
            raise InputError(f"column {field} ({FIELD_LABELS.get(field, field)}) appears twice")
        mapping[i] = field
    missing = [f for f in _required(kind) if f not in mapping.values()]
    if missing:
        raise InputError("missing column(s): " + ", ".join(
            f"{f} ({FIELD_LABELS.get(f, f)})" for f in missing))
    return mapping, ignored


def sniff_encoding(path: Path) -> str:
    """utf-8-sig when the head decodes as UTF-8 (BOM or not), else gb18030 (Excel's ANSI)."""
    with path.open("rb") as f:
        head = f.read(_SNIFF_BYTES)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8-sig"


def _cell(value: object) -> object:
    """Spreadsheet cells as the text a CSV would hold."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else str(value)


def _rows(mapping: dict[int, str], rows: Iterator[tuple[int, Sequence[object]]],
          ) -> Iterator[Numbered]:
    for line, cells in rows:
        values = [_cell(c) for c in cells]
        if not any(str(v).strip() for v in values):
            continue
        yield line, {f: values[i] if i < len(values) else "" for i, f in mapping.items()}


def _csv_rows(path: Path, kind: str, encoding: str, warn: TextIO) -> Iterator[Numbered]:
    enc = sniff_encoding(path) if encoding == "auto" else encoding
    with path.open(encoding=enc, newline="") as f:
        reader = csv.reader(f)
        headers = next(reader, None)
        if headers is None:
            raise InputError(f"{path}: empty file, expected a header row")
        mapping, ignored = column_map(kind, headers)
        if ignored:
            print(f"reconcile_cli: {path}: ignoring column(s) {', '.join(ignored)}", file=warn)
        yield from _rows(mapping, ((reader.line_num, r) for r in reader))


def _xlsx_rows(path: Path, kind: str, sheet: str | None, warn: TextIO) -> Iterator[Numbered]:
    wb = load_workbook(path, read_only=True, data_only=True)
    try:
        if sheet is not None and sheet not in wb.sheetnames:
            raise InputError(f"{path}: no sheet {sheet!r} (sheets: {', '.join(wb.sheetnames)})")
        ws = wb[sheet] if sheet is not None else wb.worksheets[0]
        rows = ws.iter_rows(values_only=True)
        headers = next(rows, None)
        if headers is None:
            raise InputError(f"{path}: empty sheet, expected a header row")
        mapping, ignored = column_map(kind, headers)
        if ignored:
            print(f"reconcile_cli: {path}: ignoring column(s) {', '.join(ignored)}", file=warn)
        yield from _rows(mapping, enumerate(rows, start=2))
    finally:
        wb.close()


def read_records(path: Path, kind: str, *, encoding: str = "auto", sheet: str | None = None,
                 warn: TextIO = sys.stderr) -> Iterator[Numbered]:
    """(row number, {field: text}) of every non-blank data row of a CSV or XLSX file."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return _xlsx_rows(path, kind, sheet, warn)
    return _csv_rows(path, kind, encoding, warn)

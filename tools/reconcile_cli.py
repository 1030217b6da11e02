"""参保信息比对 from files: compare a tax batch with a core extract, write the difference report.

    python -m tools.reconcile_cli --kind employee --tax tax.csv --core core.csv --out report
        [--fields name,pay_base] [--batch-id B] [--as-of 2024-06-30] [--declared N]
        [--index-side core|tax] [--encoding auto] [--tax-sheet S] [--core-sheet S]

Writes ``report.csv`` and ``report.xlsx`` (``--out`` without its suffix) and
prints the summary. Inputs are CSV (UTF-8 with or without BOM, or GB18030 as
Excel saves it in China; ``--encoding`` overrides the guess) or XLSX (first
sheet unless ``--tax-sheet``/``--core-sheet``). Row 1 holds the column names:
the field names below or their Chinese labels (``contracts.reconcile.FIELD_LABELS``,
e.g. 证件号码 for id_number), in any order. Other columns are ignored with a
warning; blank rows are skipped. Report rows point at the file's row numbers.

    unit:     uscc, unit_name, insured_status, start_month, [legal_rep_name], [pay_status]
    employee: uscc, id_number, name, insutype, insured_status, start_month, pay_base,
              [cert_type]
    resident: id_number, name, community_code, psn_type, insured_status, insu_year,
              [cert_type]

Exit status (like diff): 0 no differences, 1 differences found, 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import codecs
import csv
import re
import sys
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TextIO, cast

from openpyxl import load_workbook

from contracts.reconcile import (
    FIELD_LABELS,
    KINDS,
    RECORD_TYPES,
    BatchHeader,
    ReconcileKind,
    ReconcileSummary,
)
from retry.errors import ValidationFailed
from routes.reconcile import Reconciliation
from routes.reconcile_report import CsvReport, XlsxReport, summary_rows, write_reports

__all__ = ["build_parser", "column_map", "main", "read_records", "sniff_encoding"]

_SNIFF_BYTES = 1 << 20
_PAREN = re.compile(r"[(（][^)）]*[)）]")

Numbered = tuple[int, dict[str, object]]


class CliError(Exception):
    """Reported as ``reconcile_cli: <message>`` with exit status 2."""


def _input_fields(kind: str) -> tuple[str, ...]:
    return tuple(f for f in RECORD_TYPES[kind].model_fields if f != "kind")


def _required(kind: str) -> tuple[str, ...]:
    fields = RECORD_TYPES[kind].model_fields
    return tuple(f for f in _input_fields(kind) if fields[f].is_required())


def column_map(kind: str, headers: Sequence[object]) -> tuple[dict[int, str], list[str]]:
    """Header cells -> {column index: field}, plus the ignored headers.

    A column is known by its field name (any case) or its Chinese label, with
    or without the unit in brackets (缴费基数(分) or 缴费基数). Raises
    ``CliError`` naming a missing required column or a field given twice.
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
            raise CliError(f"column {field} ({FIELD_LABELS.get(field, field)}) appears twice")
        mapping[i] = field
    missing = [f for f in _required(kind) if f not in mapping.values()]
    if missing:
        raise CliError("missing column(s): " + ", ".join(
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
            raise CliError(f"{path}: empty file, expected a header row")
        mapping, ignored = column_map(kind, headers)
        if ignored:
            print(f"reconcile_cli: {path}: ignoring column(s) {', '.join(ignored)}", file=warn)
        yield from _rows(mapping, ((reader.line_num, r) for r in reader))


def _xlsx_rows(path: Path, kind: str, sheet: str | None, warn: TextIO) -> Iterator[Numbered]:
    wb = load_workbook(path, read_only=True, data_only=True)
    try:
        if sheet is not None and sheet not in wb.sheetnames:
            raise CliError(f"{path}: no sheet {sheet!r} (sheets: {', '.join(wb.sheetnames)})")
        ws = wb[sheet] if sheet is not None else wb.worksheets[0]
        rows = ws.iter_rows(values_only=True)
        headers = next(rows, None)
        if headers is None:
            raise CliError(f"{path}: empty sheet, expected a header row")
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
        raise CliError(f"{path}: no such file")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return _xlsx_rows(path, kind, sheet, warn)
    return _csv_rows(path, kind, encoding, warn)


def _kind(value: str) -> str:
    if value not in KINDS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(KINDS)}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.reconcile_cli", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kind", required=True, type=_kind, help="unit, employee or resident")
    p.add_argument("--tax", required=True, type=Path, help="tax's batch (CSV or XLSX)")
    p.add_argument("--core", required=True, type=Path, help="core's extract (CSV or XLSX)")
    p.add_argument("--out", required=True, type=Path,
                   help="report path without suffix: writes OUT.csv and OUT.xlsx")
    p.add_argument("--fields", help="comma-separated fields to compare (default: all usual)")
    p.add_argument("--batch-id", help="tax's batch id, shown in the summary")
    p.add_argument("--as-of", type=date.fromisoformat, help="数据截止日期 yyyy-mm-dd")
    p.add_argument("--declared", type=int, help="record count in tax's batch header")
    p.add_argument("--index-side", choices=("core", "tax"), default="core",
                   help="side held in memory; choose the smaller (default %(default)s)")
    p.add_argument("--encoding", default="auto", help="CSV encoding (default: guess)")
    p.add_argument("--tax-sheet", help="sheet of an XLSX tax file (default: the first)")
    p.add_argument("--core-sheet", help="sheet of an XLSX core file (default: the first)")
    return p


def _header(args: argparse.Namespace) -> BatchHeader | None:
    """A batch header when any of its parts was given (for the summary sheet)."""
    if args.batch_id is None and args.as_of is None and args.declared is None:
        return None
    return BatchHeader(batch_id=args.batch_id or "cli", kind=args.kind,
                       as_of=args.as_of or date.today(),
                       record_count=args.declared if args.declared is not None else 0)


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    kind = cast(ReconcileKind, args.kind)
    stem = args.out.with_suffix("") if args.out.suffix.lower() in (".csv", ".xlsx") else args.out
    csv_path, xlsx_path = Path(f"{stem}.csv"), Path(f"{stem}.xlsx")
    if not csv_path.parent.is_dir():
        raise CliError(f"{csv_path.parent}: no such directory")
    tax = read_records(args.tax, kind, encoding=args.encoding, sheet=args.tax_sheet, warn=err)
    core = read_records(args.core, kind, encoding=args.encoding, sheet=args.core_sheet, warn=err)
    fields = args.fields.split(",") if args.fields else None
    rec = Reconciliation(kind, tax, core, fields=fields, header=_header(args),
                         index_side=args.index_side, numbered=True)

    def final() -> ReconcileSummary:
        """The header's stand-ins for parts not given (count 0, today) are no facts."""
        unset = {"declared_tax_records": args.declared, "as_of": args.as_of}
        return rec.summary.model_copy(update={k: None for k, v in unset.items() if v is None})

    write_reports(rec, [CsvReport(csv_path), XlsxReport(xlsx_path)], final)
    summary = final()
    for item, value in summary_rows(summary):
        print(f"{item}: {value}", file=out)
    print(f"报告: {csv_path} {xlsx_path}", file=out)
    return 1 if summary.differences else 0


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return run(args, out, err)
    except CliError as exc:
        print(f"reconcile_cli: {exc}", file=err)
    except ValidationFailed as exc:
        print(f"reconcile_cli: {exc.reason}", file=err)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        print(f"reconcile_cli: {exc}", file=err)
    return 2


if __name__ == "__main__":
    sys.exit(main())

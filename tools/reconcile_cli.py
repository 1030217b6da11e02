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
import csv
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TextIO, cast

from contracts.errors import ValidationFailed
from contracts.reconcile import (
    KINDS,
    BatchHeader,
    ReconcileKind,
    ReconcileSummary,
)
from jobs.reconcile import Reconciliation
from jobs.reconcile_input import InputError, column_map, read_records, sniff_encoding
from jobs.reconcile_report import CsvReport, XlsxReport, summary_rows, write_reports

__all__ = ["build_parser", "column_map", "main", "read_records", "sniff_encoding"]

CliError = InputError
"""Reported as ``reconcile_cli: <message>`` with exit status 2."""


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

"""F3 比对: tax pushes a comparison batch; the hub compares it with core and reports.

    core.tax_push.compare_batch   lane ``tax.compare``: fetch the batch file named in the
                                  push from tax's FTP, read it (CSV/XLSX, streaming), take
                                  core's current records of the kind (H1105), compare
                                  (``jobs.reconcile``) and write the difference report
                                  as CSV and XLSX under ``reports_dir/<batch_id>.*``

The comparison runs in a worker thread (it is CPU work over possibly a million
rows); the lane's prefetch bounds how many run at once. A retried batch
rewrites the same report files, so a retry is harmless. Caseworkers download
the reports from ``GET /admin/reports/compare/{batch_id}.{csv|xlsx}``.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError

from contracts.clock import today_beijing
from contracts.envelope import HubMessage
from contracts.errors import ValidationFailed
from contracts.messages import COMPARE
from contracts.reconcile import BatchHeader
from jobs.reconcile import InMemoryCoreSnapshot, reconcile_batch
from jobs.reconcile_input import InputError, read_records
from jobs.reconcile_report import CsvReport, XlsxReport, write_reports
from kernel.runtime import Outcome, Route
from routes.ports import CompareDeps
from routes.tax_submit import parse_payload
from storage.journal import TxnUpdate

__all__ = ["COMPARE_ROUTE", "KIND_OF", "REPORTS_DIR", "compare"]

KIND_OF: Final = {"1": "unit", "2": "employee", "3": "resident"}
REPORTS_DIR: Final = Path(".run") / "reports" / "compare"


def _run(header: BatchHeader, source: Path, core: list[dict[str, Any]],
         out: Path) -> dict[str, Any]:
    """The CPU part, in a thread: read, compare, write both reports in one pass."""
    warnings = io.StringIO()
    try:
        tax_rows = (row for _, row in read_records(source, header.kind, warn=warnings))
        result = reconcile_batch(header, tax_rows,
                                 InMemoryCoreSnapshot({**r, "kind": header.kind} for r in core))
        out.parent.mkdir(parents=True, exist_ok=True)
        n = write_reports(result, [CsvReport(out.with_suffix(".csv")),
                                   XlsxReport(out.with_suffix(".xlsx"))],
                          lambda: result.summary)
    except InputError as exc:
        raise ValidationFailed([("wjlj", str(exc))], partner="tax") from None
    s = result.summary
    return {"differences": n, "tax_records": s.tax_records, "core_records": s.core_records,
            "identical": s.identical, "field_mismatch": s.field_mismatch,
            "only_at_tax": s.only_at_tax, "only_in_core": s.only_in_core,
            "warnings": warnings.getvalue()[:300]}


async def compare(msg: HubMessage, deps: CompareDeps) -> Outcome:
    _, push = parse_payload(msg)
    p = push.__dict__
    if deps.tax_files is None:
        raise ValidationFailed([("wjlj", "this hub has no access to tax's files")])
    try:
        header = BatchHeader(batch_id=p["batch_id"], kind=KIND_OF[p["compare_kind"]],
                             as_of=today_beijing(), record_count=p["record_count"])
    except ValidationError as exc:
        raise ValidationFailed.of(exc, prefix="payload.") from None
    spool = deps.spool_dir / "compare" / Path(p["file_path"]).name
    await deps.tax_files.fetch_path(p["file_path"], spool)
    core = await deps.core.snapshot(header.kind)
    out = REPORTS_DIR / header.batch_id
    summary = await asyncio.to_thread(_run, header, spool, core, out)
    return Outcome(txn=TxnUpdate(msg.correlation_id, msg.type, header.batch_id, "tax",
                                 "delivered"),
                   detail={"batch_id": header.batch_id, "kind": header.kind, **summary},
                   result={"outcome": "compared", "differences": summary["differences"]})


COMPARE_ROUTE: Final = Route("tax.compare", (COMPARE,), "tax_ftp", compare)
"""Its own partner name: an FTP outage must not open the breaker of tax's SOAP lanes."""

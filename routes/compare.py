"""F3 比对: tax pushes a comparison batch; the hub compares it with core and reports.

    core.tax_push.compare_batch   lane ``tax.compare``: fetch the batch file named in the
                                  push from tax's FTP, read it (CSV/XLSX, streaming), take
                                  core's current records of the kind (H1105, spooled
                                  page by page), compare (``jobs.reconcile``, the smaller
                                  side indexed) and write the difference report
                                  as CSV and XLSX under ``reports_dir/<batch_id>.*``

The comparison runs in a worker thread (it is CPU work over possibly a million
rows); the lane's prefetch bounds how many run at once. A retried batch
rewrites the same report files, so a retry is harmless. Caseworkers download
the reports from ``GET /admin/reports/compare/{batch_id}.{csv|xlsx}``.
"""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import IO, Any, Final

from pydantic import ValidationError

from adapters.core.port import CorePort
from contracts.clock import today_beijing
from contracts.envelope import HubMessage
from contracts.errors import ValidationFailed
from contracts.messages import COMPARE
from contracts.reconcile import BatchHeader, Side
from jobs.reconcile import JsonLinesCoreSnapshot, reconcile_batch
from jobs.reconcile_input import InputError, read_records
from jobs.reconcile_report import CsvReport, XlsxReport, write_reports
from kernel.runtime import Outcome, Route
from routes.ports import CompareDeps
from routes.tax_submit import parse_payload
from storage.journal import TxnUpdate

__all__ = ["COMPARE_ROUTE", "KIND_OF", "REPORTS_DIR", "compare"]

KIND_OF: Final = {"1": "unit", "2": "employee", "3": "resident"}
REPORTS_DIR: Final = Path(".run") / "reports" / "compare"


def _run(header: BatchHeader, source: Path, core: Path, core_count: int,
         out: Path) -> dict[str, Any]:
    """The CPU part, in a thread: read, compare, write both reports in one pass.

    The smaller side is indexed (about 300 bytes a record) and the other streamed from
    its file: a batch of a district against the city's extract holds the batch, not the
    city."""
    warnings = io.StringIO()
    index_side: Side = "tax" if header.record_count < core_count else "core"
    try:
        tax_rows = (row for _, row in read_records(source, header.kind, warn=warnings))
        result = reconcile_batch(header, tax_rows, JsonLinesCoreSnapshot(core, header.kind),
                                 index_side=index_side)
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
            "indexed": index_side, "warnings": warnings.getvalue()[:300]}


def _append(f: IO[str], page: list[dict[str, Any]]) -> None:
    f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in page))


async def spool_core(core: CorePort, kind: str, path: Path) -> int:
    """Core's records of ``kind`` (H1105, page by page) to ``path``, one JSON object a line;
    returns how many. Only a page is in memory at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8") as f:
        async for page in core.snapshot_pages(kind):
            await asyncio.to_thread(_append, f, page)
            n += len(page)
    return n


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
    core_file = spool.with_name(spool.name + ".core.jsonl")
    try:
        core_count = await spool_core(deps.core, header.kind, core_file)
        out = REPORTS_DIR / header.batch_id
        summary = await asyncio.to_thread(_run, header, spool, core_file, core_count, out)
    finally:
        core_file.unlink(missing_ok=True)  # the city's personal data: not kept at rest
    return Outcome(txn=TxnUpdate(msg.correlation_id, msg.type, header.batch_id, "tax",
                                 "delivered"),
                   detail={"batch_id": header.batch_id, "kind": header.kind, **summary},
                   result={"outcome": "compared", "differences": summary["differences"]})


COMPARE_ROUTE: Final = Route("tax.compare", (COMPARE,), "tax_ftp", compare)
"""Its own partner name: an FTP outage must not open the breaker of tax's SOAP lanes."""

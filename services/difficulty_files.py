"""F7 status back by file (seed 1532): a list that came in as a file gets a status file back.

"各部门获取每条记录的救助待遇标识同步情况" by the way the list came in: a department's
system hears each record on its callback (``routes.difficulty``); a department that
sent a CSV/XLSX file gets a file. The file a caseworker imported is kept
(``keep``, beside the list under ``<difficulty_files.dir>/<namespace>/<list id>/``);
once every row is settled (synced, or refused at 校验, 比对, review or by core) the
status file is produced there (``produce``; ``sweep`` finds the lists just settled) and,
when the department has a drop folder (``difficulty_files.drops``), written there too.
A caseworker downloads it at any time, rebuilt from the current state
(``GET /admin/difficulty/lists/{id}/status-file``, audited): the same columns as the
department's file, its rows in its order, plus 同步情况 and 原因
(``contracts.difficulty_files``); encoded like the file that came in (GBK in, GBK out;
else UTF-8 with BOM; XLSX in, XLSX out). The personal data in it is the department's
own, so it is not masked; the audit entry is.

A list whose file was not kept (imported before this, or the folder lost) is rebuilt
from the stored records: the import's columns with the hub's normalised values, and
only the row number of a row refused at 校验 (the hub keeps no cells of those).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import openpyxl
from sqlalchemy import exists, select

from contracts.difficulty_files import (
    STANDARD_HEADER,
    FileFormat,
    csv_delimiter,
    csv_encoding,
    file_format,
    record_cells,
    render_csv,
    row_statuses,
    split_table,
    status_counts,
    status_file_name,
    status_table,
)
from contracts.masking import mask_text
from jobs.student_batch import read_table
from services.audit import Actor, Audit
from storage.difficulty import DifficultyListRow, DifficultyRecordRow, DifficultyStore
from storage.times import utc_now

__all__ = ["SWEEP_DAYS", "DirShelf", "StatusFile", "StatusFiles"]

log = logging.getLogger("hub.difficulty.files")

SWEEP_DAYS: Final = 120
"""Lists received this long ago or less are looked at by ``sweep`` (a list still in
review after four months is answered on demand only)."""
_PENDING: Final = ("first_review", "second_review", "approved")
_XLSX: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class DirShelf:
    """The folder of one hub's kept files: ``<root>/<list id>/`` holds ``meta.json``, the
    original (``original.<csv|xlsx>``) and the status file produced (``status.<ext>``,
    ``produced.json``). Writes are atomic (a temporary file renamed)."""

    root: Path

    def path(self, list_id: str, name: str) -> Path:
        return self.root / list_id / name

    async def read(self, list_id: str, name: str) -> bytes | None:
        p = self.path(list_id, name)
        try:
            return await asyncio.to_thread(p.read_bytes)
        except FileNotFoundError:
            return None

    async def write(self, list_id: str, name: str, data: bytes) -> Path:
        return await asyncio.to_thread(_write, self.path(list_id, name), data)


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class StatusFile:
    """A status file as built now: its bytes, name, media type and row counts."""

    list_id: str
    department: str
    month: str
    name: str
    format: FileFormat
    media_type: str
    data: bytes
    counts: dict[str, int]
    rebuilt: bool
    """True when the department's file was not kept (rows rebuilt from the records)."""

    @property
    def settled(self) -> bool:
        return self.counts["pending"] == 0


@dataclass(frozen=True)
class StatusFiles:
    store: DifficultyStore
    shelf: DirShelf
    drops: Mapping[str, str] = field(default_factory=dict)
    audit: Audit | None = None

    # ------------------------------------------------------------ the file that came in

    async def keep(self, receipt: Mapping[str, Any], *, filename: str, raw: bytes) -> None:
        """Keep an imported file beside its list (once: a re-import of the same file is
        the same list). Nothing for a file refused whole (no list)."""
        if not receipt.get("accepted") or not receipt.get("list_id"):
            return
        list_id = str(receipt["list_id"])
        if await self.shelf.read(list_id, "meta.json") is not None:
            return
        fmt = file_format(filename, raw)
        meta = {"list_id": list_id, "department": receipt.get("department"),
                "month": receipt.get("month"), "filename": filename, "format": fmt,
                "encoding": csv_encoding(raw) if fmt == "csv" else "",
                "delimiter": csv_delimiter(raw) if fmt == "csv" else "",
                "bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest(),
                "kept_at": utc_now().isoformat()}
        await self.shelf.write(list_id, f"original.{fmt}", raw)
        await self.shelf.write(list_id, "meta.json", json.dumps(meta, ensure_ascii=False)
                               .encode())

    # ------------------------------------------------------------ the status file

    async def build(self, list_id: str) -> StatusFile | None:
        """The list's status file from the current state; None for an unknown list."""
        lst = await self.store.get_list(list_id)
        if lst is None:
            return None
        department, month = str(lst["department"]), str(lst["month"])
        records = [r for r in await self.store.records_of_month(department, month)
                   if r["list_id"] == list_id]
        refusals = json.loads(lst["refusals"]) if isinstance(lst["refusals"], str) \
            else list(lst["refusals"] or [])
        statuses = row_statuses(records, refusals)
        meta_raw = await self.shelf.read(list_id, "meta.json")
        meta: dict[str, Any] = json.loads(meta_raw) if meta_raw else {}
        original = await self.shelf.read(list_id, f"original.{meta['format']}") \
            if meta else None
        if meta and original is not None:
            fmt: FileFormat = meta["format"]
            header, rows = await asyncio.to_thread(
                _read_original, self.shelf.path(list_id, f"original.{fmt}"), original)
            encoding, delimiter = meta.get("encoding") or "utf-8-sig", \
                meta.get("delimiter") or ","
        else:
            fmt, header, rows = "csv", list(STANDARD_HEADER), list(record_cells(records,
                                                                                refusals))
            encoding, delimiter = "utf-8-sig", ","
        table = status_table(header, rows, statuses)
        shown = {n for n, _ in rows}
        counts = status_counts({n: s for n, s in statuses.items() if n in shown})
        if fmt == "xlsx":
            data, media = await asyncio.to_thread(_xlsx, table), _XLSX
        else:
            data = render_csv(table, encoding=encoding, delimiter=delimiter)
            media = f"text/csv; charset={'gbk' if encoding == 'gbk' else 'utf-8'}"
        return StatusFile(list_id, department, month,
                          status_file_name(str(meta.get("filename") or ""), list_id, fmt),
                          fmt, media, data, counts, rebuilt=original is None)

    async def produce(self, list_id: str) -> StatusFile | None:
        """Write the status file of a settled list beside it (``status.<ext>``) and to the
        department's drop folder when it has one; None when the list is unknown or a row
        is not settled yet. A drop that fails is an alert (the file stays beside the list,
        and the caseworker can download it)."""
        got = await self.build(list_id)
        if got is None or not got.settled:
            return None
        await self.shelf.write(list_id, f"status.{got.format}", got.data)
        dropped, error = "", ""
        folder = self.drops.get(got.department)
        if folder:
            try:
                dropped = str(await asyncio.to_thread(_write, Path(folder) / got.name, got.data))
            except OSError as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.warning("ALERT 提醒预警: status file of list %s not written to the drop "
                            "folder of %s: %s", list_id, got.department, error)
        await self.shelf.write(list_id, "produced.json", json.dumps(
            {"at": utc_now().isoformat(), "name": got.name, **got.counts,
             "dropped": dropped, "drop_error": error}, ensure_ascii=False).encode())
        return got

    async def produced(self, list_id: str) -> dict[str, Any] | None:
        raw = await self.shelf.read(list_id, "produced.json")
        return json.loads(raw) if raw else None

    async def sweep(self) -> list[str]:
        """Produce the status file of every list that came in as a file, has no record
        waiting any more and has no status file yet; the list ids produced."""
        lst, rec = DifficultyListRow, DifficultyRecordRow
        waiting = exists().where(rec.list_id == lst.id, rec.status.in_(_PENDING))
        q = (select(lst.id).where(lst.channel == "file", lst.received_at >= utc_now()
                                  - timedelta(days=SWEEP_DAYS), ~waiting)
             .order_by(lst.received_at))
        async with self.store.engine.connect() as conn:
            ids = [str(i) for i in (await conn.execute(q)).scalars().all()]
        done = []
        for list_id in ids:
            if await self.shelf.read(list_id, "produced.json") is not None:
                continue
            if await self.produce(list_id) is not None:
                done.append(list_id)
        return done

    async def tick(self) -> None:
        """The hub's ticker (every ``difficulty_files.check_s``): ``sweep``."""
        await self.sweep()

    async def download(self, list_id: str, actor: Actor) -> StatusFile | None:
        """The status file now (audited as ``difficulty.status_file``; target masked). A
        settled list whose file was not produced yet is produced now."""
        got = await self.build(list_id)
        if got is None:
            return None
        if got.settled and await self.produced(list_id) is None:
            got = await self.produce(list_id) or got
        if self.audit is not None:
            await self.audit.record(
                actor.user, actor.role, "difficulty.status_file",
                mask_text(f"{got.department}/{got.month}/{list_id}"),
                {"file": mask_text(got.name), **got.counts, "rebuilt": got.rebuilt},
                "ok" if got.settled else "pending")
        return got


def _read_original(path: Path, raw: bytes) -> tuple[list[object], list[tuple[int, list[object]]]]:
    """The kept file's header and data rows with their row numbers, as the import read
    them (``contracts.difficulty_files.split_table``)."""
    with contextlib.closing(read_table(path, raw)) as table:
        return split_table(table)


def _xlsx(table: list[list[object]]) -> bytes:
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("同步情况")
    for row in table:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()

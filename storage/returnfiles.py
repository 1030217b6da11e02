"""The return-file store: claim a file, insert its records in large chunks, finish atomically.

Crash safety without holding a file in one transaction: ``claim`` inserts the
file row as ``processing`` and deletes whatever an earlier, crashed attempt
left behind; chunks go in their own transactions (insert-or-ignore on
``(file_sha, line_no)``); ``finish``/``reject`` write the last chunk and the
final status in one transaction. So a file is either finished with exactly
its lines, or still ``processing`` and re-done from line 1 by the next poll
(after ``lease_s`` without progress, so two hubs never work on one file).

SQLite gives timestamps back without a zone; every timestamp is UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts.masking import mask_text
from contracts.returnfile import LineError, ReturnFileName, ReturnRecord
from storage.returnfile_models import (
    ReturnFileNameRow,
    ReturnFileRow,
    ReturnLineErrorRow,
    ReturnRecordRow,
)
from storage.times import as_utc, utc_now

__all__ = ["FileCounts", "ReturnFileStore", "StoredFile"]

_RECORD_COLS = ("file_sha", *ReturnRecord._fields)
_SELECT_RECORD = [getattr(ReturnRecordRow, f) for f in ReturnRecord._fields]
_COMPLETE = ("stored", "delivered", "failed")
"""File statuses whose records are all there (``failed``: stored, core refused a batch)."""




@dataclass(frozen=True)
class FileCounts:
    """The final tally of one file, written with its status."""

    lines: int = 0
    records: int = 0
    line_errors: int = 0
    amount_fen: int = 0
    arrivals: int = 0


@dataclass(frozen=True)
class StoredFile:
    """One row of ``returnfile_files`` as the service sees it."""

    sha256: str
    name: str
    kind: str
    file_date: str
    batch_no: str
    status: str
    size: int
    lines: int
    records: int
    line_errors: int
    amount_fen: int
    arrivals: int
    delivered_batches: int
    delivered_through: int
    reason_code: str
    reason: str
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, row: Any) -> StoredFile:
        d = dict(row)
        for k in ("started_at", "updated_at", "finished_at"):
            d[k] = as_utc(d[k])
        return cls(**d)


class ReturnFileStore:
    """Async store of return files on any SQLAlchemy async engine (SQLite, PostgreSQL)."""

    def __init__(self, engine: AsyncEngine, *, lease_s: float = 120.0) -> None:
        self.engine = engine
        self.lease_s = lease_s
        self._insert = (postgresql.insert if engine.dialect.name == "postgresql"
                        else sqlite.insert)

    # -- reads --------------------------------------------------------------------------------

    async def get(self, sha256: str) -> StoredFile | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(ReturnFileRow).where(
                ReturnFileRow.sha256 == sha256))).mappings().first()
        return StoredFile.of(row) if row else None

    async def known_names(self, names: Sequence[str]) -> dict[str, str]:
        """``name -> status`` of its file, for the names already recorded."""
        if not names:
            return {}
        q = (select(ReturnFileNameRow.name, ReturnFileRow.status)
             .join(ReturnFileRow, ReturnFileRow.sha256 == ReturnFileNameRow.sha256)
             .where(ReturnFileNameRow.name.in_(list(names))))
        async with self.engine.connect() as conn:
            return {n: s for n, s in (await conn.execute(q)).all()}

    async def files(self, status: str | None = None) -> list[StoredFile]:
        q = select(ReturnFileRow).order_by(ReturnFileRow.kind, ReturnFileRow.file_date,
                                           ReturnFileRow.batch_no)
        if status is not None:
            q = q.where(ReturnFileRow.status == status)
        async with self.engine.connect() as conn:
            return [StoredFile.of(r) for r in (await conn.execute(q)).mappings().all()]

    async def records(self, sha256: str, *, after_line: int = 0, limit: int = 1000,
                      arrivals_only: bool = False) -> list[ReturnRecord]:
        """Records in line order after ``after_line`` (keyset paging: no OFFSET scans)."""
        q = (select(*_SELECT_RECORD)
             .where(ReturnRecordRow.file_sha == sha256, ReturnRecordRow.line_no > after_line)
             .order_by(ReturnRecordRow.line_no).limit(limit))
        if arrivals_only:
            q = q.where(ReturnRecordRow.result == "1")
        async with self.engine.connect() as conn:
            return [ReturnRecord._make(r) for r in (await conn.execute(q)).all()]

    async def payer_records(self, kinds: Sequence[str], payer_code: str, period_start: str,
                            period_end: str, *, mode: str | None = None,
                            limit: int = 1000) -> list[tuple[str, ReturnRecord]]:
        """``(kind, record)`` of one payer in ``period_start..period_end`` (yyyyMM) from the
        files of ``kinds`` that are complete (not ``processing``, not ``rejected``); ``mode``
        keeps the special kinds' records of that 特殊缴费模式 (others carry ``""``).
        Uses the ``(payer_code, period)`` index; ordered by period, file and line."""
        q = (select(ReturnFileRow.kind, *_SELECT_RECORD)
             .join(ReturnFileRow, ReturnFileRow.sha256 == ReturnRecordRow.file_sha)
             .where(ReturnRecordRow.payer_code == payer_code,
                    ReturnRecordRow.period >= period_start, ReturnRecordRow.period <= period_end,
                    ReturnFileRow.kind.in_(list(kinds)),
                    ReturnFileRow.status.in_(_COMPLETE))
             .order_by(ReturnRecordRow.period, ReturnFileRow.file_date, ReturnFileRow.batch_no,
                       ReturnRecordRow.line_no).limit(limit))
        if mode is not None:
            q = q.where(ReturnRecordRow.mode.in_(("", mode)))
        async with self.engine.connect() as conn:
            return [(r[0], ReturnRecord._make(r[1:])) for r in (await conn.execute(q)).all()]

    async def line_errors(self, sha256: str, *, limit: int = 1000) -> list[LineError]:
        q = (select(ReturnLineErrorRow.line_no, ReturnLineErrorRow.field,
                    ReturnLineErrorRow.reason)
             .where(ReturnLineErrorRow.file_sha == sha256)
             .order_by(ReturnLineErrorRow.line_no).limit(limit))
        async with self.engine.connect() as conn:
            return [LineError._make(r) for r in (await conn.execute(q)).all()]

    # -- the processing protocol ----------------------------------------------------------------

    async def claim(self, sha256: str, name: str, parsed: ReturnFileName, size: int) -> bool:
        """Start (or take over a stale) processing of a file; False if it is not ours to do."""
        at = utc_now()
        async with self.engine.begin() as conn:
            row = (await conn.execute(select(ReturnFileRow.status, ReturnFileRow.updated_at)
                                      .where(ReturnFileRow.sha256 == sha256))).first()
            if row is None:
                await conn.execute(self._insert(ReturnFileRow).values(
                    sha256=sha256, name=name, kind=parsed.kind, file_date=parsed.file_date,
                    batch_no=parsed.batch_no, status="processing", size=size, lines=0,
                    records=0, line_errors=0, amount_fen=0, arrivals=0, delivered_batches=0,
                    delivered_through=0, reason_code="", reason="", started_at=at,
                    updated_at=at).on_conflict_do_nothing())
            elif row.status != "processing" or not self._stale(row.updated_at, at):
                return False
            else:
                taken = await conn.execute(
                    update(ReturnFileRow)
                    .where(ReturnFileRow.sha256 == sha256, ReturnFileRow.status == "processing",
                           ReturnFileRow.updated_at == row.updated_at)
                    .values(started_at=at, updated_at=at))
                if taken.rowcount != 1:
                    return False
            await self._clear(conn, sha256)
            await self._name(conn, name, sha256, "first")
        return True

    def _stale(self, updated_at: datetime, at: datetime) -> bool:
        seen = as_utc(updated_at)
        return seen is not None and at - seen >= timedelta(seconds=self.lease_s)

    async def add_name(self, name: str, sha256: str, outcome: str = "duplicate") -> None:
        """Remember another name for known content (insert-or-ignore)."""
        async with self.engine.begin() as conn:
            await self._name(conn, name, sha256, outcome)

    async def add_chunk(self, sha256: str, records: Sequence[ReturnRecord],
                        errors: Sequence[LineError]) -> None:
        """One chunk in its own transaction; also proves the claim is alive (lease)."""
        async with self.engine.begin() as conn:
            await self._rows(conn, sha256, records, errors)
            await conn.execute(update(ReturnFileRow).where(ReturnFileRow.sha256 == sha256)
                               .values(updated_at=utc_now()))

    async def finish(self, sha256: str, records: Sequence[ReturnRecord],
                     errors: Sequence[LineError], counts: FileCounts) -> None:
        """The last chunk and ``stored`` (``delivered`` if nothing arrives) in one transaction."""
        status = "stored" if counts.arrivals else "delivered"
        async with self.engine.begin() as conn:
            await self._rows(conn, sha256, records, errors)
            await self._close(conn, sha256, status, counts)

    async def reject(self, sha256: str, errors: Sequence[LineError], counts: FileCounts,
                     reason_code: str, reason: str) -> None:
        """Drop the file's records, keep its line errors, record why (one transaction)."""
        async with self.engine.begin() as conn:
            await conn.execute(delete(ReturnRecordRow).where(ReturnRecordRow.file_sha == sha256))
            await self._rows(conn, sha256, (), errors)
            await self._close(conn, sha256, "rejected", counts, reason_code, reason)

    async def mark_delivered(self, sha256: str, *, batches: int, through_line: int,
                             done: bool) -> None:
        """Progress of delivery to core: resumable after a crash or a core outage."""
        values: dict[str, Any] = {"delivered_batches": batches, "delivered_through": through_line,
                                  "updated_at": utc_now()}
        if done:
            values |= {"status": "delivered", "finished_at": values["updated_at"]}
        async with self.engine.begin() as conn:
            await conn.execute(update(ReturnFileRow).where(ReturnFileRow.sha256 == sha256)
                               .values(**values))

    async def fail(self, sha256: str, reason_code: str, reason: str) -> None:
        """Core refused a batch for good: stop retrying, keep the reason for an operator."""
        async with self.engine.begin() as conn:
            await conn.execute(update(ReturnFileRow).where(ReturnFileRow.sha256 == sha256)
                               .values(status="failed", reason_code=reason_code,
                                       reason=mask_text(reason)[:2000], updated_at=utc_now()))

    # -- helpers ----------------------------------------------------------------------------------

    async def _clear(self, conn: AsyncConnection, sha256: str) -> None:
        await conn.execute(delete(ReturnRecordRow).where(ReturnRecordRow.file_sha == sha256))
        await conn.execute(delete(ReturnLineErrorRow)
                           .where(ReturnLineErrorRow.file_sha == sha256))

    async def _name(self, conn: AsyncConnection, name: str, sha256: str, outcome: str) -> None:
        await conn.execute(self._insert(ReturnFileNameRow).values(
            name=name, sha256=sha256, outcome=outcome, seen_at=utc_now()).on_conflict_do_nothing())

    async def _rows(self, conn: AsyncConnection, sha256: str, records: Iterable[ReturnRecord],
                    errors: Iterable[LineError]) -> None:
        rows = [dict(zip(_RECORD_COLS, (sha256, *r), strict=True)) for r in records]
        if rows:
            await conn.execute(self._insert(ReturnRecordRow).on_conflict_do_nothing(), rows)
        erows = [{"file_sha": sha256, "line_no": e.line_no, "field": e.field[:40],
                  "reason": mask_text(e.reason)[:1000]} for e in errors]
        if erows:
            await conn.execute(self._insert(ReturnLineErrorRow).on_conflict_do_nothing(), erows)

    async def _close(self, conn: AsyncConnection, sha256: str, status: str, counts: FileCounts,
                     reason_code: str = "", reason: str = "") -> None:
        at = utc_now()
        await conn.execute(update(ReturnFileRow).where(ReturnFileRow.sha256 == sha256).values(
            status=status, lines=counts.lines, records=counts.records,
            line_errors=counts.line_errors, amount_fen=counts.amount_fen,
            arrivals=counts.arrivals, reason_code=reason_code,
            reason=mask_text(reason)[:2000], updated_at=at, finished_at=at))


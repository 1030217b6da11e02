"""The journal: interaction log, transaction state and partner requests, group-committed.

Handlers ``await journal.write(...)``: the entries join the current batch and
the call returns once that batch is committed, so a message is acked only
after its outcome is recorded, while the database sees one transaction per
batch instead of one per message (the benchmark's hot path).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    DateTime,
    String,
    and_,
    bindparam,
    event,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import Mapped, mapped_column

from contracts.errors import is_infrastructure
from contracts.masking import mask_text, mask_value
from contracts.subjects import SubjectKind, subject_hash, subject_hashes
from storage.models import Base, InteractionLog, PartnerRequest, Transaction
from storage.times import utc_now

__all__ = ["Journal", "LogEntry", "RequestRecord", "TransactionSubject", "TxnUpdate",
           "make_engine"]


class TransactionSubject(Base):
    """Who a transaction is about: keyed hashes of the ID numbers and credit codes in its
    business key (``contracts.subjects``), so a person's transactions are found by hash.
    Alembic revision 0015 creates the table; kept here, next to the only writer."""

    __tablename__ = "transaction_subjects"

    correlation_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject_hash: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    kind: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class LogEntry:
    message_id: str
    correlation_id: str
    type: str
    partner: str
    direction: str
    hop: str
    outcome: str
    attempt: int = 0
    duration_ms: int = 0
    detail: Any = ""
    at: datetime = field(default_factory=utc_now)

    def row(self) -> dict[str, Any]:
        d = self.detail
        text = mask_text(d) if isinstance(d, str) else mask_text(str(mask_value(d)))
        return {"at": self.at, "message_id": self.message_id,
                "correlation_id": self.correlation_id, "type": self.type,
                "partner": self.partner, "direction": self.direction, "hop": self.hop,
                "outcome": self.outcome, "attempt": self.attempt,
                "duration_ms": self.duration_ms, "detail": text[:4000]}


@dataclass(frozen=True)
class TxnUpdate:
    correlation_id: str
    type: str
    business_key: str
    source: str
    status: str
    reason_code: str = ""
    reason: str = ""
    attempts: int = 0
    at: datetime = field(default_factory=utc_now)
    only_if_new: bool = False
    only_if_exists: bool = False
    subjects: tuple[str, ...] = ()
    """More text to find ID numbers / credit codes in (e.g. from the payload) besides the
    business key, for the subject hashes (``TransactionSubject``); never stored itself."""


@dataclass(frozen=True)
class RequestRecord:
    serial: str
    partner: str
    correlation_id: str
    type: str
    business_key: str
    entity_key: str = ""
    accept_no: str = ""
    created_at: datetime = field(default_factory=utc_now)


Item = LogEntry | TxnUpdate | RequestRecord


TERMINAL = ("delivered", "rejected", "dead", "duplicate")


def _txn_row(t: TxnUpdate) -> dict[str, Any]:
    return {"correlation_id": t.correlation_id, "type": t.type, "business_key": t.business_key,
            "source": t.source, "status": t.status, "reason_code": t.reason_code,
            "reason": mask_text(t.reason), "attempts": t.attempts, "created_at": t.at,
            "updated_at": t.at}


def make_engine(url: str, *, connect_timeout_s: float = 5.0,
                command_timeout_s: float = 15.0) -> AsyncEngine:
    """An async engine; SQLite gets WAL so readers do not block the writer.

    PostgreSQL gets connect and command timeouts and a bounded pool wait: a
    database that stops answering fails a call within seconds (and the runtime
    backs off) instead of holding a message's handler for ever.
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # One connection: SQLite has one writer, and writers on several connections wait
        # for each other in SQLite's busy handler, which sleeps (up to 100 ms a turn). On
        # one connection they queue in the pool instead, in order, without sleeping.
        engine = create_async_engine(url, connect_args={"timeout": 30}, pool_size=1,
                                     max_overflow=0, pool_timeout=60)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(conn: Any, _rec: Any) -> None:
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_async_engine(
        url, pool_size=10, max_overflow=10, pool_pre_ping=True, pool_timeout=command_timeout_s,
        connect_args={"timeout": connect_timeout_s, "command_timeout": command_timeout_s})


RECENT_REQUESTS = 50_000
SUBJECTS_SEEN = 50_000
"""Transactions whose subjects this process has recorded (bounded): a transaction's
later steps carry the same business key, and need not be hashed and written again."""


class Journal:
    def __init__(self, engine: AsyncEngine, *, flush_ms: int = 20, max_batch: int = 1000,
                 subject_key: bytes | None = None) -> None:
        """``subject_key``: the HMAC key of the subject hashes (``subject_hash_key``); None
        (tools, the benchmark) records no subjects."""
        self.engine = engine
        self._subject_key = subject_key
        self._subjects_seen: OrderedDict[str, None] = OrderedDict()
        self._flush_s = flush_ms / 1000
        self._max_batch = max_batch
        self._pending: list[tuple[Sequence[Item], asyncio.Future[None]]] = []
        self._waiters: dict[str, list[asyncio.Future[RequestRecord]]] = {}
        self._recent: OrderedDict[str, RequestRecord] = OrderedDict()
        """Partner requests written by this process, newest last (bounded): tax's answer can
        come back before the group commit, and waiting for the commit would cost a retry."""
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._insert = (postgresql.insert if engine.dialect.name == "postgresql"
                        else sqlite.insert)
        self._stmts = self._statements()

    def _statements(self) -> dict[str, Any]:
        """The flush's statements, built once: each is executed with many parameter sets
        (executemany), so SQLAlchemy compiles it once per engine and caches it, instead of
        compiling a new multi-row ``VALUES`` for every flush (the benchmark's profile)."""
        ins = self._insert
        txn = ins(Transaction)
        ex = txn.excluded
        req = ins(PartnerRequest)
        return {
            "log": insert(InteractionLog),
            "fresh": ins(Transaction).on_conflict_do_nothing(),
            # A redelivered step must not move a finished transaction back.
            "txn": txn.on_conflict_do_update(
                index_elements=["correlation_id"],
                set_={"status": ex.status, "reason_code": ex.reason_code,
                      "reason": ex.reason, "attempts": ex.attempts,
                      "updated_at": ex.updated_at},
                # spelt out, not IN (...): an expanding IN cannot be executed many times
                where=or_(and_(*(Transaction.status != st for st in TERMINAL)),
                          *(ex.status == st for st in TERMINAL))),
            "subject": ins(TransactionSubject).on_conflict_do_nothing(),
            "known": update(Transaction)
            .where(Transaction.correlation_id == bindparam("cid"))
            .where(or_(and_(*(Transaction.status != st for st in TERMINAL)),
                       bindparam("fin")))
            .values(status=bindparam("st"), reason_code=bindparam("rc"),
                    reason=bindparam("rs"), attempts=bindparam("at"),
                    updated_at=bindparam("ua")),
            "request": req.on_conflict_do_update(
                index_elements=["serial"], set_={"accept_no": req.excluded.accept_no}),
        }

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="journal-writer")

    async def stop(self) -> None:
        """Flush what is pending and end the writer; never strands a waiting writer."""
        self._closing = True
        self._wake.set()
        if self._task:
            await self._task
            self._task = None
        if self._pending:
            await self._flush()

    async def write(self, *items: Item) -> None:
        """Return once ``items`` are committed (raises if the commit failed)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for item in items:
            if isinstance(item, RequestRecord):
                known = self._recent.get(item.serial)  # as in the table: only accept_no moves
                if known is not None and known.correlation_id != item.correlation_id:
                    # The same serial for another transaction: the flush closes that one
                    # as a duplicate; the serial keeps answering for the first.
                    continue
                item = item if known is None else replace(known, accept_no=item.accept_no)
                self._recent[item.serial] = item
                if len(self._recent) > RECENT_REQUESTS:
                    self._recent.popitem(last=False)
                for waiter in self._waiters.pop(item.serial, ()):
                    if not waiter.done():
                        waiter.set_result(item)
        self._pending.append((items, fut))
        self._wake.set()
        if self._task is None:
            await self._flush()
        await fut

    async def _run(self) -> None:
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            if not self._closing and len(self._pending) < self._max_batch:
                await asyncio.sleep(self._flush_s)
            try:
                await self._flush()
            except Exception:
                await asyncio.sleep(0.5)

    async def _flush(self) -> None:
        """Commit everything pending as one transaction (group commit).

        A data error of one writer (an over-long value, a constraint) must not fail
        the unrelated writers that share its group: such a group is committed again
        writer by writer, and only the offending writer gets the error. An outage
        fails the whole group at once (its writers wait it out themselves).
        """
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            await self._commit(batch)
        except Exception as exc:
            if len(batch) > 1 and not is_infrastructure(exc):
                for one in batch:
                    try:
                        await self._commit([one])
                    except Exception as own:
                        if not one[1].done():
                            one[1].set_exception(own)
                    else:
                        if not one[1].done():
                            one[1].set_result(None)
                return
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            raise
        for _, fut in batch:
            if not fut.done():
                fut.set_result(None)

    async def _commit(self, batch: Sequence[tuple[Sequence[Item], asyncio.Future[None]]]
                      ) -> None:
        logs: list[dict[str, Any]] = []
        txns: dict[str, TxnUpdate] = {}
        fresh: dict[str, TxnUpdate] = {}
        known: dict[str, TxnUpdate] = {}
        reqs: dict[str, RequestRecord] = {}
        clash: dict[str, tuple[RequestRecord, str]] = {}
        for items, _ in batch:
            for it in items:
                if isinstance(it, LogEntry):
                    logs.append(it.row())
                elif isinstance(it, TxnUpdate):
                    bucket = known if it.only_if_exists else txns
                    prev = bucket.get(it.correlation_id)
                    if it.only_if_new:
                        if it.correlation_id not in txns:
                            fresh[it.correlation_id] = it
                    elif not (prev and prev.status in TERMINAL and it.status not in TERMINAL):
                        bucket[it.correlation_id] = it
                else:
                    first = reqs.get(it.serial)
                    if first is None or first.correlation_id == it.correlation_id:
                        reqs[it.serial] = it
                    else:
                        clash[it.correlation_id] = (it, first.correlation_id)
        async with self.engine.begin() as conn:
            if reqs:
                # A serial is derived from the business fact (contracts.messages.partner_serial):
                # a second transaction under a known serial is the same fact posted again
                # (e.g. after Redis lost its keys); the partner replayed its first answer, so
                # this transaction is closed as a duplicate of the first, never left waiting.
                known_rows = (await conn.execute(
                    select(PartnerRequest.serial, PartnerRequest.correlation_id)
                    .where(PartnerRequest.serial.in_(list(reqs))))).all()
                for serial, first_cid in known_rows:
                    r = reqs[serial]
                    if first_cid != r.correlation_id:
                        clash[r.correlation_id] = (r, first_cid)
                        del reqs[serial]
            for cid, (r, first_cid) in clash.items():
                base = txns.get(cid) or TxnUpdate(cid, r.type, r.business_key, "hub", "duplicate")
                txns[cid] = replace(base, status="duplicate", reason_code="DUPLICATE",
                                    reason=f"same as transaction {first_cid}",
                                    only_if_new=False, only_if_exists=False)
            st = self._stmts
            if logs:
                await conn.execute(st["log"], logs)
            if fresh:
                await conn.execute(st["fresh"], [_txn_row(t) for t in fresh.values()])
            if txns:
                await conn.execute(st["txn"], [_txn_row(t) for t in txns.values()])
            subjects = self._subject_rows([*fresh.values(), *txns.values()])
            if subjects:
                await conn.execute(st["subject"], subjects)
            if known:
                await conn.execute(st["known"], [
                    {"cid": t.correlation_id, "st": t.status, "rc": t.reason_code,
                     "rs": mask_text(t.reason), "at": t.attempts, "ua": t.at,
                     "fin": t.status in TERMINAL}
                    for t in known.values()])
            if reqs:
                await conn.execute(st["request"], [dict(vars(r)) for r in reqs.values()])
        for row in subjects:
            self._subjects_seen[row["correlation_id"]] = None
        while len(self._subjects_seen) > SUBJECTS_SEEN:
            self._subjects_seen.popitem(last=False)

    def _subject_rows(self, updates: Sequence[TxnUpdate]) -> list[dict[str, Any]]:
        """Subject rows of transactions this process has not recorded yet (an insert that
        keeps existing rows: another process may have written them)."""
        if self._subject_key is None:
            return []
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for t in updates:
            if t.correlation_id in self._subjects_seen:
                continue
            for kind, digest in subject_hashes(self._subject_key, t.business_key, *t.subjects):
                rows[(t.correlation_id, digest)] = {
                    "correlation_id": t.correlation_id, "subject_hash": digest,
                    "kind": kind, "created_at": t.at}
        return list(rows.values())

    # -- reads (admin API, feedback correlation, demo summary) --------------------------

    async def request(self, serial: str, *, wait_s: float = 0.0) -> RequestRecord | None:
        """The partner request sent with ``serial``: this process's recent ones first, so an
        answer faster than the group commit finds it; else the table (other replicas).

        ``wait_s``: a partner can answer before the request's handler got to record it
        (tax's callback racing its own acknowledgement); wait that long for it to appear.
        """
        if (recent := self._recent.get(serial)) is not None:
            return recent
        found = await self._stored_request(serial)
        if found is not None or wait_s <= 0:
            return found
        waiter: asyncio.Future[RequestRecord] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(serial, []).append(waiter)
        try:
            return await asyncio.wait_for(waiter, wait_s)
        except TimeoutError:
            return await self._stored_request(serial)
        finally:
            left = [w for w in self._waiters.get(serial, ()) if w is not waiter]
            if left:
                self._waiters[serial] = left
            else:
                self._waiters.pop(serial, None)

    async def _stored_request(self, serial: str) -> RequestRecord | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(PartnerRequest).where(
                PartnerRequest.serial == serial))).mappings().first()
        return RequestRecord(**dict(row)) if row else None

    async def transaction(self, correlation_id: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(Transaction).where(
                Transaction.correlation_id == correlation_id))).mappings().first()
        return dict(row) if row else None

    async def status_counts(self, type_: str | None = None) -> dict[str, int]:
        q = select(Transaction.status, func.count()).group_by(Transaction.status)
        if type_:
            q = q.where(Transaction.type == type_)
        async with self.engine.connect() as conn:
            return {s: n for s, n in (await conn.execute(q)).all()}

    async def reasons(self, status: str, limit: int = 10) -> list[tuple[str, str, int]]:
        q = (select(Transaction.reason_code, Transaction.reason, func.count())
             .where(Transaction.status == status)
             .group_by(Transaction.reason_code, Transaction.reason)
             .order_by(func.count().desc()).limit(limit))
        async with self.engine.connect() as conn:
            return [(c, r, n) for c, r, n in (await conn.execute(q)).all()]

    def subject_hash(self, kind: SubjectKind, value: str) -> str:
        """The hash a subject is stored under (``contracts.subjects.subject_hash``)."""
        if self._subject_key is None:
            raise RuntimeError("this journal has no subject_hash_key: it records no subjects")
        return subject_hash(self._subject_key, kind, value)

    async def by_subject(self, kind: SubjectKind, digest: str, *, limit: int = 50,
                         offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """The transactions about one subject (by its hash), newest first, and how many."""
        s, t = TransactionSubject, Transaction
        where = (s.subject_hash == digest, s.kind == kind)
        q = (select(t).join(s, s.correlation_id == t.correlation_id).where(*where)
             .order_by(t.updated_at.desc(), t.correlation_id).limit(limit).offset(offset))
        n = select(func.count()).select_from(s).join(
            t, s.correlation_id == t.correlation_id).where(*where)
        async with self.engine.connect() as conn:
            rows = [dict(r) for r in (await conn.execute(q)).mappings().all()]
            total = int((await conn.execute(n)).scalar_one())
        return rows, total

    async def log_for(self, correlation_id: str) -> list[dict[str, Any]]:
        q = (select(InteractionLog).where(InteractionLog.correlation_id == correlation_id)
             .order_by(InteractionLog.id))
        async with self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(q)).mappings().all()]

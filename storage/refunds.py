"""F10 退费: refund orders and their state machine, 销号 batches and their items, imports.

Alembic revision 0013 creates the tables. Every state change is a compare-and-set
(``move``): a change is made only from the states the caller expects, so two racing
writers (finance's 已退费 callback and a 退费回退, say) cannot both win, and the loser
sees what happened. States (``contracts.finance.STATUSES``)::

    received ──到账 ok──> queued ──finance success──> sent ──已退费──> refunded
        │                   │  └─finance failure─> failed ──账户更正 (version+1)──> queued
        │                   └──────────────┐
        ├── no 到账 / 不通过 ──> refused     ├── 退费回退 ──> withdrawing ──finance──> withdrawn
                                            │                     └─ finance paid first ─> refunded

A 已退费 for an order that is ``withdrawn`` (or ``refused``) is not a success: the
order keeps its state and gets an ``alert`` (``services.refunds``).

销号 batches (``refund_closures``): one row per target and period, its items
(``refund_closure_items``) frozen once with their count and total; items go
pending -> queued (published) -> sent (the partner took the page), so a batch
resumes where it stopped and a period run again sends nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import DateTime, Integer, String, Text, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from contracts.finance import PAGE_SIZE, STATUSES, RefundOrder
from contracts.masking import mask_id, mask_name, mask_text
from storage.models import Base
from storage.times import as_utc, utc_now

__all__ = ["ClosureItemRow", "ClosureRow", "ImportRowRow", "RefundImportRow", "RefundOrderRow",
           "RefundStore", "masked_order"]

_TIMES: Final = ("created_at", "updated_at", "approved_at", "paid_at")


class RefundOrderRow(Base):
    """One refund order, at its latest version."""

    __tablename__ = "refund_orders"

    order_no: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12), index=True)
    source: Mapped[str] = mapped_column(String(1))
    refund_no: Mapped[str] = mapped_column(String(40), default="")
    payer_kind: Mapped[str] = mapped_column(String(6))
    payer: Mapped[str] = mapped_column(String(18), index=True)
    name: Mapped[str] = mapped_column(String(100))
    period_start: Mapped[str] = mapped_column(String(6))
    period_end: Mapped[str] = mapped_column(String(6))
    amount: Mapped[str] = mapped_column(String(20))
    payload: Mapped[str] = mapped_column(Text)
    """The order as core approved it (account as corrected last), JSON; personal data."""
    reason_field: Mapped[str] = mapped_column(String(80), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    finance_no: Mapped[str] = mapped_column(String(64), default="")
    alert: Mapped[str] = mapped_column(Text, default="")
    refunded_on: Mapped[str] = mapped_column(String(10), default="", index=True)
    """The Beijing day the hub recorded the 已退费 flag: the 销号 period it belongs to."""
    approved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ClosureRow(Base):
    """A 销号 batch: a target (finance, tax) and a period (旬, month)."""

    __tablename__ = "refund_closures"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    target: Mapped[str] = mapped_column(String(8))
    period: Mapped[str] = mapped_column(String(12))
    start_date: Mapped[str] = mapped_column(String(10))
    end_date: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(12))
    """collecting -> sending -> done | failed"""
    count: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[str] = mapped_column(String(20), default="0.00")
    pages: Mapped[int] = mapped_column(Integer, default=0)
    runs: Mapped[int] = mapped_column(Integer, default=0)
    actor: Mapped[str] = mapped_column(String(64), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ClosureItemRow(Base):
    """One refunded order in a 销号 batch; frozen with the batch."""

    __tablename__ = "refund_closure_items"

    closure_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_no: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    refund_no: Mapped[str] = mapped_column(String(40), default="")
    amount: Mapped[str] = mapped_column(String(20))
    refunded_on: Mapped[str] = mapped_column(String(10))
    page: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10))
    """pending -> queued -> sent"""


class RefundImportRow(Base):
    """A refund import file (1918): its report; the same content again is a replay."""

    __tablename__ = "refund_imports"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    filename: Mapped[str] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[int] = mapped_column(Integer)
    report: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ImportRowRow(Base):
    """A good row of an import: who and which months, and the 到账 tax answered."""

    __tablename__ = "refund_import_rows"

    import_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    row_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    id_number: Mapped[str] = mapped_column(String(18), index=True)
    period_start: Mapped[str] = mapped_column(String(6))
    period_end: Mapped[str] = mapped_column(String(6))
    arrived_fen: Mapped[int] = mapped_column(Integer)


def _as_dict(row: Any) -> dict[str, Any]:
    d = dict(row)
    for k in _TIMES:
        if k in d:
            d[k] = as_utc(d[k])
    return d


def _iso(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in d.items()}


def masked_order(row: Mapping[str, Any]) -> dict[str, Any]:
    """An order as the API answers it: payer and name masked, account number shortened,
    the payload left out."""
    out = {k: v for k, v in row.items() if k != "payload"}
    payer = str(row.get("payer", ""))
    out["payer"] = mask_id(payer) if row.get("payer_kind") == "person" else payer
    out["name"] = mask_name(str(row.get("name", ""))) if row.get("payer_kind") == "person" \
        else row.get("name")
    out["reason"] = mask_text(str(row.get("reason", "")))
    payee = json.loads(str(row.get("payload") or "{}")).get("payee") or {}
    account = str(payee.get("account_no", ""))
    out["account_no"] = f"****{account[-4:]}" if account else ""
    return _iso(out)


class RefundStore:
    """Async store of F10 on any SQLAlchemy async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._insert = (postgresql.insert if engine.dialect.name == "postgresql"
                        else sqlite.insert)

    # -- orders ----------------------------------------------------------------------------

    async def add_order(self, order: RefundOrder) -> tuple[dict[str, Any], bool]:
        """Record an approved order (``received``, version 1); the row and whether it is new
        (an order number already there is kept as it is)."""
        now = utc_now()
        values = {"order_no": order.order_no, "version": 1, "status": "received",
                  "source": order.source, "refund_no": order.refund_no or "",
                  "payer_kind": order.payer_kind, "payer": order.payer[:18],
                  "name": order.name[:100], "period_start": order.period_start,
                  "period_end": order.period_end, "amount": f"{order.amount:.2f}",
                  "payload": order.model_dump_json(), "reason_field": "", "reason": "",
                  "finance_no": "", "alert": "", "refunded_on": "",
                  "approved_at": order.reviewed_at, "paid_at": None, "created_at": now,
                  "updated_at": now}
        async with self.engine.begin() as conn:
            new = (await conn.execute(self._insert(RefundOrderRow).values(**values)
                                      .on_conflict_do_nothing()
                                      .returning(RefundOrderRow.order_no))).first()
        row = await self.get(order.order_no)
        assert row is not None
        return row, new is not None

    async def get(self, order_no: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(RefundOrderRow.__table__).where(
                RefundOrderRow.order_no == order_no))).mappings().first()
        return _as_dict(row) if row else None

    async def move(self, order_no: str, *, expect: Iterable[str], status: str,
                   version: int | None = None, reason_field: str | None = None,
                   reason: str | None = None, finance_no: str | None = None,
                   refunded_on: date | None = None, paid_at: datetime | None = None,
                   payload: str | None = None, new_version: int | None = None,
                   alert: str | None = None) -> bool:
        """Compare-and-set from one of ``expect`` (and ``version``) to ``status``."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        values: dict[str, Any] = {"status": status, "updated_at": utc_now()}
        for k, v in (("reason_field", reason_field), ("finance_no", finance_no),
                     ("payload", payload), ("version", new_version), ("paid_at", paid_at)):
            if v is not None:
                values[k] = v
        if reason is not None:
            values["reason"] = mask_text(reason)[:2000]
        if refunded_on is not None:
            values["refunded_on"] = refunded_on.isoformat()
        if alert is not None:
            values["alert"] = mask_text(alert)[:2000]
        q = update(RefundOrderRow).where(RefundOrderRow.order_no == order_no,
                                         RefundOrderRow.status.in_(tuple(expect)))
        if version is not None:
            q = q.where(RefundOrderRow.version == version)
        async with self.engine.begin() as conn:
            result = await conn.execute(q.values(**values))
        return bool(result.rowcount)

    async def set_alert(self, order_no: str, alert: str) -> None:
        """An alert on an order whatever its state (a 已退费 for a withdrawn order)."""
        async with self.engine.begin() as conn:
            await conn.execute(update(RefundOrderRow).where(
                RefundOrderRow.order_no == order_no).values(
                alert=mask_text(alert)[:2000], updated_at=utc_now()))

    async def orders(self, *, status: str | None = None, limit: int = 100,
                     offset: int = 0) -> list[dict[str, Any]]:
        q = select(RefundOrderRow.__table__)
        if status is not None:
            q = q.where(RefundOrderRow.status == status)
        q = q.order_by(RefundOrderRow.created_at, RefundOrderRow.order_no)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q.limit(limit).offset(offset))).mappings().all()
        return [_as_dict(r) for r in rows]

    async def counts(self) -> dict[str, int]:
        q = select(RefundOrderRow.status, func.count()).group_by(RefundOrderRow.status)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        return {s: 0 for s in STATUSES} | {str(s): int(n) for s, n in rows}

    async def refunded_between(self, start: date, end: date) -> list[dict[str, Any]]:
        """Orders refunded (已退费 recorded) on a Beijing day from ``start`` to ``end``."""
        q = (select(RefundOrderRow.__table__)
             .where(RefundOrderRow.status == "refunded",
                    RefundOrderRow.refunded_on >= start.isoformat(),
                    RefundOrderRow.refunded_on <= end.isoformat())
             .order_by(RefundOrderRow.refunded_on, RefundOrderRow.order_no))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).mappings().all()
        return [_as_dict(r) for r in rows]

    # -- 销号 batches ------------------------------------------------------------------------

    async def closure(self, closure_id: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(ClosureRow.__table__).where(
                ClosureRow.id == closure_id))).mappings().first()
        return _iso(_as_dict(row)) if row else None

    async def open_closure(self, closure_id: str, target: str, period: str, start: date,
                           end: date, actor: str) -> dict[str, Any]:
        """The batch, created ``collecting`` if new; its ``runs`` counted either way."""
        now = utc_now()
        stmt = self._insert(ClosureRow).values(
            id=closure_id, target=target, period=period, start_date=start.isoformat(),
            end_date=end.isoformat(), status="collecting", count=0, total="0.00", pages=0,
            runs=1, actor=actor[:64], reason="", created_at=now, updated_at=now)
        stmt = stmt.on_conflict_do_update(index_elements=["id"], set_={
            "runs": ClosureRow.runs + 1, "actor": actor[:64], "updated_at": now})
        async with self.engine.begin() as conn:
            await conn.execute(stmt)
        row = await self.closure(closure_id)
        assert row is not None
        return row

    async def freeze(self, closure_id: str, orders: Sequence[Mapping[str, Any]]) -> bool:
        """Fix the batch's items, count, total and pages, in one transaction, once: a batch
        no longer ``collecting`` is left as it is (whether it froze now)."""
        total = sum((Decimal(str(o["amount"])) for o in orders), Decimal("0"))
        items = [{"closure_id": closure_id, "order_no": o["order_no"],
                  "version": int(o["version"]), "refund_no": str(o.get("refund_no") or ""),
                  "amount": str(o["amount"]), "refunded_on": str(o["refunded_on"]),
                  "page": i // PAGE_SIZE + 1, "status": "pending"}
                 for i, o in enumerate(orders)]
        pages = (len(items) + PAGE_SIZE - 1) // PAGE_SIZE
        async with self.engine.begin() as conn:
            moved = await conn.execute(update(ClosureRow).where(
                ClosureRow.id == closure_id, ClosureRow.status == "collecting").values(
                status="sending", count=len(items), total=f"{total:.2f}", pages=pages,
                updated_at=utc_now()))
            if not moved.rowcount:
                return False
            for i in range(0, len(items), 500):
                await conn.execute(self._insert(ClosureItemRow).values(items[i:i + 500])
                                   .on_conflict_do_nothing())
        return True

    async def items(self, closure_id: str, *, statuses: Iterable[str] | None = None,
                    page: int | None = None) -> list[dict[str, Any]]:
        q = select(ClosureItemRow.__table__).where(ClosureItemRow.closure_id == closure_id)
        if statuses is not None:
            q = q.where(ClosureItemRow.status.in_(tuple(statuses)))
        if page is not None:
            q = q.where(ClosureItemRow.page == page)
        q = q.order_by(ClosureItemRow.page, ClosureItemRow.refunded_on, ClosureItemRow.order_no)
        async with self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(q)).mappings().all()]

    async def move_items(self, closure_id: str, *, expect: Iterable[str], status: str,
                         page: int | None = None, order_no: str | None = None) -> int:
        q = update(ClosureItemRow).where(ClosureItemRow.closure_id == closure_id,
                                         ClosureItemRow.status.in_(tuple(expect)))
        if page is not None:
            q = q.where(ClosureItemRow.page == page)
        if order_no is not None:
            q = q.where(ClosureItemRow.order_no == order_no)
        async with self.engine.begin() as conn:
            return int((await conn.execute(q.values(status=status))).rowcount)

    async def end_closure(self, closure_id: str, status: str, *, expect: Iterable[str],
                          reason: str = "") -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(update(ClosureRow).where(
                ClosureRow.id == closure_id, ClosureRow.status.in_(tuple(expect))).values(
                status=status, reason=mask_text(reason)[:2000], updated_at=utc_now()))
        return bool(result.rowcount)

    async def closures(self, *, statuses: Iterable[str]) -> list[dict[str, Any]]:
        q = select(ClosureRow.__table__).where(ClosureRow.status.in_(tuple(statuses)))
        async with self.engine.connect() as conn:
            return [_iso(_as_dict(r)) for r in (await conn.execute(q)).mappings().all()]

    # -- imports ---------------------------------------------------------------------------

    async def import_report(self, import_id: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(RefundImportRow.report).where(
                RefundImportRow.id == import_id))).first()
        return json.loads(row[0]) if row else None

    async def save_import(self, import_id: str, filename: str, actor: str, rows: int,
                          good: Sequence[Mapping[str, Any]], report: Mapping[str, Any]) -> bool:
        """The good rows and the report in one transaction (nothing half-applied); False
        when this import (its content) was stored before."""
        now = utc_now()
        async with self.engine.begin() as conn:
            new = (await conn.execute(self._insert(RefundImportRow).values(
                id=import_id, filename=filename[:200], actor=actor[:64], rows=rows,
                accepted=len(good), report=json.dumps(report, ensure_ascii=False),
                created_at=now).on_conflict_do_nothing()
                .returning(RefundImportRow.id))).first()
            if new is None:
                return False
            for i in range(0, len(good), 500):
                await conn.execute(self._insert(ImportRowRow).values(
                    [{"import_id": import_id, **g} for g in good[i:i + 500]]))
        return True

    async def import_rows(self, import_id: str) -> list[dict[str, Any]]:
        q = (select(ImportRowRow.__table__).where(ImportRowRow.import_id == import_id)
             .order_by(ImportRowRow.row_no))
        async with self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(q)).mappings().all()]

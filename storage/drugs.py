"""F11 线上购药: the catalogue synced from core, pharmacies' stock, orders and their events,
and each pharmacy's daily 对账. Alembic revision 0014 creates the tables.

    drug_catalogue         core's drugs: 处方药 flag (3271), 医保目录, 单次购药量 limit (3310)
    drug_stock             what each pharmacy has on hand, per drug (3140, 3331)
    drug_orders            one row per accepted order, through paid, 接单, 发货, 收货 or a
                           return and its refund (``contracts.drugs.ORDER_STATUSES``)
    drug_order_events      what happened to an order (and refused sales), by whom; ``ref``
                           (unique) makes a partner's repeated event a replay
    drug_reconciliations   one pharmacy's day: the hub's totals, the ERP's, the differences

Stock is held by conditional updates (``quantity >= :q``), never read-then-write, so two
orders cannot both take the last box: an order that would take a stock below zero is
refused whole, nothing held. Money is kept as decimal text (``"12.50"``): exact on SQLite
and PostgreSQL alike. Personal data is masked in every answer (``masked``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import (
    Boolean,
    DateTime,
    Integer,
    String,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from contracts.clock import BEIJING
from contracts.drugs import (
    CatalogueDrug,
    DrugOrder,
    ReconLine,
    ReconResult,
    StockPush,
    money,
    money_text,
)
from contracts.masking import mask_address, mask_id, mask_name, mask_phone, mask_text
from storage.models import Base
from storage.times import as_utc, utc_now

__all__ = ["DrugStore", "EventOutcome", "StockOutcome", "beijing_day", "masked"]


class DrugCatalogueRow(Base):
    __tablename__ = "drug_catalogue"

    drug_code: Mapped[str] = mapped_column(String(30), primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    rx: Mapped[bool] = mapped_column(Boolean)
    insured: Mapped[bool] = mapped_column(Boolean)
    max_qty: Mapped[int | None] = mapped_column(Integer, nullable=True)
    synced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DrugStockRow(Base):
    __tablename__ = "drug_stock"

    pharmacy_code: Mapped[str] = mapped_column(String(20), primary_key=True)
    drug_code: Mapped[str] = mapped_column(String(30), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DrugOrderRow(Base):
    __tablename__ = "drug_orders"

    order_no: Mapped[str] = mapped_column(String(40), primary_key=True)
    pharmacy_code: Mapped[str] = mapped_column(String(20), index=True)
    id_number: Mapped[str] = mapped_column(String(18), index=True)
    name: Mapped[str] = mapped_column(String(60))
    phone: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), index=True)
    total: Mapped[str] = mapped_column(String(20))
    items: Mapped[str] = mapped_column(Text)
    hi_rxno: Mapped[str] = mapped_column(String(40))
    delivery: Mapped[str] = mapped_column(String(8))
    address: Mapped[str] = mapped_column(String(200))
    payment: Mapped[str] = mapped_column(Text)
    logistics: Mapped[str] = mapped_column(Text)
    return_kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    refund_amount: Mapped[str] = mapped_column(String(20))
    supervision: Mapped[str] = mapped_column(String(12))
    paid_day: Mapped[str] = mapped_column(String(10), index=True)
    refund_day: Mapped[str] = mapped_column(String(10), index=True)
    auto_received: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    shipped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True,
                                                        index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DrugOrderEventRow(Base):
    __tablename__ = "drug_order_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ref: Mapped[str | None] = mapped_column(String(100), unique=True, nullable=True)
    order_no: Mapped[str] = mapped_column(String(40), index=True)
    event: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DrugReconciliationRow(Base):
    __tablename__ = "drug_reconciliations"

    pharmacy_code: Mapped[str] = mapped_column(String(20), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    balanced: Mapped[bool] = mapped_column(Boolean)
    hub: Mapped[str] = mapped_column(Text)
    erp: Mapped[str] = mapped_column(Text)
    differences: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


_TIMES = ("created_at", "paid_at", "shipped_at", "updated_at", "synced_at", "at")
_JSON = ("items", "payment", "logistics", "hub", "erp", "differences", "detail")


def beijing_day(at: datetime) -> str:
    return as_utc(at).astimezone(BEIJING).date().isoformat()  # type: ignore[union-attr]


def _row(r: Any) -> dict[str, Any]:
    d = dict(r)
    for k in _TIMES:
        if k in d:
            d[k] = as_utc(d[k])
    return d


def masked(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row as the API answers it: ID numbers, names, phones, addresses masked;
    JSON columns parsed; times ISO."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if k == "id_number":
            v = mask_id(str(v))
        elif k == "name" and "order_no" in row:
            v = mask_name(str(v))
        elif k == "phone":
            v = mask_phone(str(v)) if v else ""
        elif k == "address":
            v = mask_address(str(v)) if v else ""
        elif k == "reason" and isinstance(v, str):
            v = mask_text(v)
        if k in _JSON and isinstance(v, str):
            v = json.loads(v) if v else None
        if isinstance(v, (date, datetime)):
            v = v.isoformat()
        out[k] = v
    return out


@dataclass(frozen=True)
class StockOutcome:
    """``applied``, ``replay`` (this push was taken before) or ``refused`` (each bad line;
    nothing applied)."""

    outcome: Literal["applied", "replay", "refused"]
    refusals: tuple[tuple[str, str], ...] = ()
    lines: int = 0


@dataclass(frozen=True)
class EventOutcome:
    """``ok``, ``replay`` (the event's ``ref`` was seen), ``not_found`` or ``conflict`` (the
    order is not where the event expects it: ``order`` says where it is)."""

    outcome: Literal["ok", "replay", "not_found", "conflict"]
    order: dict[str, Any] | None = None


class _Short(Exception):
    """Lines the stock cannot cover: raised inside the transaction to roll it back."""

    def __init__(self, lines: list[tuple[int, Any]]) -> None:
        super().__init__("short")
        self.lines = lines


class DrugStore:
    """Async store of F11 on any SQLAlchemy async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    # ------------------------------------------------------------ catalogue

    async def replace_catalogue(self, drugs: Sequence[CatalogueDrug]) -> dict[str, int]:
        """Core's catalogue becomes the hub's, in one transaction: counts of drugs kept,
        处方药 among them, and drugs core no longer lists (removed)."""
        now = utc_now()
        rows = [{"drug_code": d.drug_code, "name": d.name, "rx": d.rx, "insured": d.insured,
                 "max_qty": d.max_qty, "synced_at": now} for d in drugs]
        async with self.engine.begin() as conn:
            before = {r[0] for r in await conn.execute(select(DrugCatalogueRow.drug_code))}
            await conn.execute(delete(DrugCatalogueRow))
            if rows:
                await conn.execute(insert(DrugCatalogueRow), rows)
        codes = {d.drug_code for d in drugs}
        return {"drugs": len(rows), "rx": sum(1 for d in drugs if d.rx),
                "removed": len(before - codes), "added": len(codes - before)}

    async def catalogue(self, codes: Iterable[str] | None = None) -> dict[str, CatalogueDrug]:
        q = select(DrugCatalogueRow.__table__)
        if codes is not None:
            q = q.where(DrugCatalogueRow.drug_code.in_(list(codes)))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q.order_by(DrugCatalogueRow.drug_code))).mappings().all()
        return {r["drug_code"]: CatalogueDrug(drug_code=r["drug_code"], name=r["name"],
                                              rx=r["rx"], insured=r["insured"],
                                              max_qty=r["max_qty"]) for r in rows}

    async def catalogue_synced_at(self) -> datetime | None:
        async with self.engine.connect() as conn:
            at = (await conn.execute(select(func.max(DrugCatalogueRow.synced_at)))).scalar()
        return as_utc(at)

    # ------------------------------------------------------------ stock

    async def stock(self, pharmacy_code: str) -> dict[str, int]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(DrugStockRow.drug_code, DrugStockRow.quantity)
                                      .where(DrugStockRow.pharmacy_code == pharmacy_code))
            return {r[0]: int(r[1]) for r in rows}

    async def apply_stock(self, push: StockPush, *, actor: str) -> StockOutcome:
        """A snapshot sets each listed drug; deltas change them. A delta that would take a
        drug below zero refuses the whole push (field, reason per line); a push already
        taken (``push_id``) is a replay."""
        now = utc_now()
        ref = f"stock:{push.pharmacy_code}:{push.push_id}"
        async with self.engine.begin() as conn:
            if await self._seen(conn, ref):
                return StockOutcome("replay")
            have = {r[0]: int(r[1]) for r in await conn.execute(
                select(DrugStockRow.drug_code, DrugStockRow.quantity).where(
                    DrugStockRow.pharmacy_code == push.pharmacy_code,
                    DrugStockRow.drug_code.in_([ln.drug_code for ln in push.items])))}
            refusals = []
            new: dict[str, int] = {}
            for i, line in enumerate(push.items):
                value = line.quantity if push.mode == "snapshot" \
                    else have.get(line.drug_code, 0) + line.quantity
                if value < 0:
                    refusals.append((f"items.{i}.quantity", f"stock would go negative: "
                                     f"{have.get(line.drug_code, 0)} on hand, delta "
                                     f"{line.quantity}"))
                new[line.drug_code] = value
            if refusals:
                return StockOutcome("refused", tuple(refusals))
            for code, value in new.items():
                if code in have:
                    await conn.execute(update(DrugStockRow).where(
                        DrugStockRow.pharmacy_code == push.pharmacy_code,
                        DrugStockRow.drug_code == code).values(quantity=value, updated_at=now))
                else:
                    await conn.execute(insert(DrugStockRow).values(
                        pharmacy_code=push.pharmacy_code, drug_code=code, quantity=value,
                        updated_at=now))
            await self._event(conn, ref, "", f"stock_{push.mode}", actor,
                              {"pharmacy_code": push.pharmacy_code, "lines": len(new)})
        return StockOutcome("applied", lines=len(new))

    async def _take(self, conn: AsyncConnection, pharmacy: str, code: str, qty: int) -> bool:
        r = await conn.execute(update(DrugStockRow).where(
            DrugStockRow.pharmacy_code == pharmacy, DrugStockRow.drug_code == code,
            DrugStockRow.quantity >= qty).values(quantity=DrugStockRow.quantity - qty,
                                                 updated_at=utc_now()))
        return bool(r.rowcount)

    async def _give_back(self, conn: AsyncConnection, order: dict[str, Any]) -> None:
        for item in json.loads(order["items"]):
            await conn.execute(update(DrugStockRow).where(
                DrugStockRow.pharmacy_code == order["pharmacy_code"],
                DrugStockRow.drug_code == item["drug_code"]).values(
                quantity=DrugStockRow.quantity + int(item["quantity"]), updated_at=utc_now()))

    # ------------------------------------------------------------ orders

    async def create_order(self, order: DrugOrder, *, actor: str
                           ) -> tuple[dict[str, Any] | None, bool, list[tuple[str, str]]]:
        """Hold the stock of every line and store the order, in one transaction:
        ``(row, True, [])``; an order already stored gives ``(its row, False, [])``; a line
        the stock cannot cover refuses the whole order: ``(None, False, refusals)``, nothing
        held (the transaction is rolled back)."""
        now = utc_now()
        row = {"order_no": order.order_no, "pharmacy_code": order.pharmacy_code,
               "id_number": order.id_number, "name": order.name, "phone": order.phone,
               "status": "created", "total": money_text(order.total),
               "items": json.dumps([{"drug_code": i.drug_code, "name": i.name,
                                     "quantity": i.quantity,
                                     "unit_price": money_text(i.unit_price),
                                     "amount": money_text(i.amount)} for i in order.items],
                                   ensure_ascii=False),
               "hi_rxno": order.prescription.hi_rxno if order.prescription else "",
               "delivery": order.delivery, "address": order.address, "payment": "",
               "logistics": "", "return_kind": "", "reason": "", "refund_amount": "",
               "supervision": "", "paid_day": "", "refund_day": "", "auto_received": False,
               "created_at": now, "paid_at": None, "shipped_at": None, "updated_at": now}
        try:
            async with self.engine.begin() as conn:
                existing = await self._order(conn, order.order_no)
                if existing is not None:
                    return existing, False, []
                short = [(i, item) for i, item in enumerate(order.items)
                         if not await self._take(conn, order.pharmacy_code, item.drug_code,
                                                 item.quantity)]
                if short:
                    raise _Short(short)  # rolls back: the lines taken are given back
                await conn.execute(insert(DrugOrderRow).values(row))
                await self._event(conn, f"order:{order.order_no}", order.order_no, "created",
                                  actor, {"total": row["total"], "lines": len(order.items)})
        except _Short as exc:
            async with self.engine.connect() as conn:
                have = await self._have(conn, order.pharmacy_code,
                                        [item.drug_code for _, item in exc.lines])
            return None, False, [
                (f"items.{i}.quantity", f"stock would go negative: the pharmacy has "
                 f"{have.get(item.drug_code, 0)} of {item.name}, the order takes "
                 f"{item.quantity}") for i, item in exc.lines]
        except IntegrityError:  # the same order raced in: the other one stored it
            return await self.order(order.order_no), False, []
        return _row(row), True, []

    async def _have(self, conn: AsyncConnection, pharmacy: str,
                    codes: list[str]) -> dict[str, int]:
        return {r[0]: int(r[1]) for r in await conn.execute(
            select(DrugStockRow.drug_code, DrugStockRow.quantity).where(
                DrugStockRow.pharmacy_code == pharmacy, DrugStockRow.drug_code.in_(codes)))}

    async def _order(self, conn: AsyncConnection, order_no: str) -> dict[str, Any] | None:
        r = (await conn.execute(select(DrugOrderRow.__table__).where(
            DrugOrderRow.order_no == order_no))).mappings().first()
        return _row(r) if r else None

    async def order(self, order_no: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            return await self._order(conn, order_no)

    async def orders(self, *, status: str | None = None, pharmacy_code: str | None = None,
                     limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        q = select(DrugOrderRow.__table__).order_by(DrugOrderRow.created_at,
                                                    DrugOrderRow.order_no)
        if status is not None:
            q = q.where(DrugOrderRow.status == status)
        if pharmacy_code is not None:
            q = q.where(DrugOrderRow.pharmacy_code == pharmacy_code)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q.limit(limit).offset(offset))).mappings().all()
        return [_row(r) for r in rows]

    async def counts(self) -> dict[str, int]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(DrugOrderRow.status, func.count()).group_by(
                DrugOrderRow.status))
            return {r[0]: int(r[1]) for r in rows}

    async def move(self, order_no: str, *, expect: tuple[str, ...], status: str, actor: str,
                   event: str, ref: str | None = None, restock: bool = False,
                   detail: dict[str, Any] | None = None, **values: Any) -> EventOutcome:
        """Compare-and-set of an order's status with its event, in one transaction: the
        event's ``ref`` seen before is a replay (nothing changes); ``restock`` gives the
        order's stock back (a refund, a pharmacy's refusal)."""
        try:
            return await self._move(order_no, expect=expect, status=status, actor=actor,
                                    event=event, ref=ref, restock=restock, detail=detail,
                                    values=values)
        except IntegrityError:  # the same event raced in: the other one took it
            return EventOutcome("replay", await self.order(order_no))

    async def _move(self, order_no: str, *, expect: tuple[str, ...], status: str, actor: str,
                    event: str, ref: str | None, restock: bool,
                    detail: dict[str, Any] | None, values: dict[str, Any]) -> EventOutcome:
        async with self.engine.begin() as conn:
            if ref is not None and await self._seen(conn, ref):
                return EventOutcome("replay", await self._order(conn, order_no))
            current = await self._order(conn, order_no)
            if current is None:
                return EventOutcome("not_found")
            if current["status"] not in expect:
                return EventOutcome("conflict", current)
            r = await conn.execute(update(DrugOrderRow).where(
                DrugOrderRow.order_no == order_no, DrugOrderRow.status == current["status"])
                .values(status=status, updated_at=utc_now(), **values))
            if not r.rowcount:
                return EventOutcome("conflict", await self._order(conn, order_no))
            if restock:
                await self._give_back(conn, current)
            await self._event(conn, ref, order_no, event, actor, detail or {})
            return EventOutcome("ok", await self._order(conn, order_no))

    async def set_supervision(self, order_no: str, status: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(DrugOrderRow).where(DrugOrderRow.order_no == order_no)
                               .values(supervision=status))

    async def note(self, order_no: str, event: str, actor: str, detail: dict[str, Any],
                   ref: str | None = None) -> bool:
        """An event without a status change (a refused sale, a 补发, a failed push);
        False when ``ref`` was seen."""
        async with self.engine.begin() as conn:
            if ref is not None and await self._seen(conn, ref):
                return False
            await self._event(conn, ref, order_no, event, actor, detail)
        return True

    async def events(self, order_no: str) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(DrugOrderEventRow.__table__).where(
                DrugOrderEventRow.order_no == order_no).order_by(DrugOrderEventRow.id))
            ).mappings().all()
        return [_row(r) for r in rows]

    async def due_for_receipt(self, shipped_before: datetime, limit: int = 500) -> list[str]:
        """Orders shipped before ``shipped_before`` the buyer has not confirmed (3084)."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(DrugOrderRow.order_no).where(
                DrugOrderRow.status == "shipped", DrugOrderRow.shipped_at < shipped_before)
                .order_by(DrugOrderRow.shipped_at).limit(limit))
            return [r[0] for r in rows]

    async def _seen(self, conn: AsyncConnection, ref: str) -> bool:
        return (await conn.execute(select(DrugOrderEventRow.id).where(
            DrugOrderEventRow.ref == ref))).first() is not None

    async def _event(self, conn: AsyncConnection, ref: str | None, order_no: str, event: str,
                     actor: str, detail: dict[str, Any]) -> None:
        await conn.execute(insert(DrugOrderEventRow).values(
            ref=ref, order_no=order_no, event=event, actor=actor[:64],
            detail=mask_text(json.dumps(detail, ensure_ascii=False, default=str)),
            at=utc_now()))

    # ------------------------------------------------------------ 对账

    async def day_lines(self, pharmacy_code: str, day: date) -> list[ReconLine]:
        """The hub's sales (orders paid that Beijing day) and refunds (refunded that day)
        of one pharmacy."""
        d = day.isoformat()
        async with self.engine.connect() as conn:
            sales = await conn.execute(select(DrugOrderRow.order_no, DrugOrderRow.total).where(
                DrugOrderRow.pharmacy_code == pharmacy_code, DrugOrderRow.paid_day == d))
            out = [ReconLine(order_no=r[0], kind="sale", amount=money(r[1])) for r in sales]
            refunds = await conn.execute(select(DrugOrderRow.order_no,
                                                DrugOrderRow.refund_amount).where(
                DrugOrderRow.pharmacy_code == pharmacy_code, DrugOrderRow.refund_day == d))
            out += [ReconLine(order_no=r[0], kind="refund", amount=money(r[1]))
                    for r in refunds]
        return out

    async def pharmacies_of(self, day: date) -> list[str]:
        d = day.isoformat()
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(DrugOrderRow.pharmacy_code).where(
                (DrugOrderRow.paid_day == d) | (DrugOrderRow.refund_day == d)).distinct())
            return sorted(r[0] for r in rows)

    async def save_reconciliation(self, pharmacy_code: str, day: date, result: ReconResult, *,
                                  actor: str) -> dict[str, Any]:
        """The latest 对账 of a pharmacy's day (a re-run replaces it)."""
        row = {"pharmacy_code": pharmacy_code, "day": day.isoformat(),
               "balanced": result.balanced, "hub": json.dumps(result.hub),
               "erp": json.dumps(result.erp), "differences": json.dumps(result.differences,
                                                                      ensure_ascii=False),
               "actor": actor[:64], "at": utc_now()}
        async with self.engine.begin() as conn:
            await conn.execute(delete(DrugReconciliationRow).where(
                DrugReconciliationRow.pharmacy_code == pharmacy_code,
                DrugReconciliationRow.day == row["day"]))
            await conn.execute(insert(DrugReconciliationRow).values(row))
        return _row(row)

    async def reconciliation(self, pharmacy_code: str, day: date) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(select(DrugReconciliationRow.__table__).where(
                DrugReconciliationRow.pharmacy_code == pharmacy_code,
                DrugReconciliationRow.day == day.isoformat()))).mappings().first()
        return _row(r) if r else None


def total_of(row: dict[str, Any]) -> Decimal:
    return money(row["total"])

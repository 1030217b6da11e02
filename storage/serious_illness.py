"""F15 大病保险: the shares sent to the insurer, batches, financing notices, clues.

Alembic revision 0019 creates the tables; plain types only. Every state change is a
compare-and-set (``set_*`` with ``expect``), every insert an insert-or-keep, so a fact
recorded twice is one row and two racing writers cannot both win.

    serious_illness_shares     one row per core settlement id (a settlement or a 冲销):
                               received -> queued -> delivered | rejected | dead, or
                               ``none`` (no 大病 segment: nothing to send); the claim's
                               due day and payment day (111) once delivered
    serious_illness_batches    one row per kind and period (赔付明细, 分析报告, 清算, 轧差):
                               the header and rows (JSON), frozen once
    serious_illness_financing  one row per year and paying-resident count (a notice)
    serious_illness_clues      one row per 疑点 clue id

The paying residents of a year are read from the return files the hub recorded
(``storage.returnfile_models``): see ``paying_residents``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import DateTime, Integer, String, Text, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from contracts.masking import mask_id, mask_name
from storage.models import Base
from storage.returnfile_models import ReturnFileRow, ReturnRecordRow
from storage.times import as_utc, utc_now

__all__ = ["BatchRow", "ClueRow", "FinancingRow", "SeriousIllnessStore", "ShareRow",
           "masked_share"]

RESIDENT_INSUTYPES: Final = ("390", "392")
"""城乡居民基本医疗保险 and 城乡居民大病医疗保险: what a paying resident paid for."""
_COMPLETE: Final = ("stored", "delivered", "failed")
"""Return files whose records are all there (as ``storage.returnfiles``)."""


class ShareRow(Base):
    """One settlement (or 冲销) core reported, and its share's way to the insurer."""

    __tablename__ = "serious_illness_shares"

    setl_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    orig_setl_id: Mapped[str] = mapped_column(String(40), default="", index=True)
    id_number: Mapped[str] = mapped_column(String(18), index=True)
    name: Mapped[str] = mapped_column(String(60), default="")
    settled_at: Mapped[str] = mapped_column(String(19))
    year: Mapped[str] = mapped_column(String(4), index=True)
    institution_code: Mapped[str] = mapped_column(String(30), default="")
    share: Mapped[str] = mapped_column(String(20))
    payload: Mapped[str] = mapped_column(Text)
    idem_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    delivered_on: Mapped[str] = mapped_column(String(10), default="")
    due_on: Mapped[str] = mapped_column(String(10), default="", index=True)
    paid_on: Mapped[str] = mapped_column(String(10), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class BatchRow(Base):
    """A batch exchanged with the insurer, frozen once: header and rows as JSON."""

    __tablename__ = "serious_illness_batches"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))
    period: Mapped[str] = mapped_column(String(8))
    direction: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(12))
    """in: received; out: frozen -> sent | failed (a later run sends the same again)"""
    count: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[str] = mapped_column(String(20), default="0.00")
    payload: Mapped[str] = mapped_column(Text)
    serial: Mapped[str] = mapped_column(String(40), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    runs: Mapped[int] = mapped_column(Integer, default=0)
    actor: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FinancingRow(Base):
    """A financing notice: the year, the paying residents counted, 筹资, the schedule."""

    __tablename__ = "serious_illness_financing"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    year: Mapped[str] = mapped_column(String(4), index=True)
    payers: Mapped[int] = mapped_column(Integer)
    total: Mapped[str] = mapped_column(String(20))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ClueRow(Base):
    """A 疑点数据 clue passed to the insurer."""

    __tablename__ = "serious_illness_clues"

    clue_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    institution_code: Mapped[str] = mapped_column(String(30))
    id_number: Mapped[str] = mapped_column(String(18), default="")
    category: Mapped[str] = mapped_column(String(40))
    amount: Mapped[str] = mapped_column(String(20))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def _row(r: Any) -> dict[str, Any]:
    out = dict(r._mapping)
    for k in ("created_at", "updated_at"):
        if isinstance(out.get(k), datetime):
            out[k] = as_utc(out[k])
    return out


def masked_share(row: Mapping[str, Any]) -> dict[str, Any]:
    """A share as a caseworker's list shows it: the person masked, no payload."""
    return {"setl_id": row["setl_id"], "kind": row["kind"], "orig_setl_id": row["orig_setl_id"],
            "id_number": mask_id(str(row["id_number"])), "name": mask_name(str(row["name"])),
            "settled_at": row["settled_at"], "institution_code": row["institution_code"],
            "serious_illness_pay": row["share"], "status": row["status"],
            "reason": row["reason"], "delivered_on": row["delivered_on"],
            "due_on": row["due_on"], "paid_on": row["paid_on"]}


class SeriousIllnessStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._insert = (postgresql.insert if engine.dialect.name == "postgresql"
                        else sqlite.insert)

    # -- shares ----------------------------------------------------------------------------

    async def record_share(self, payload: Mapping[str, Any], *, idem_key: str,
                           status: str) -> tuple[dict[str, Any], bool]:
        """Record a settlement or 冲销 once per settlement id; the row and whether it is new
        (a settlement core reports twice keeps its first row)."""
        now = utc_now()
        values = {"setl_id": payload["setl_id"], "kind": payload["kind"],
                  "orig_setl_id": payload.get("orig_setl_id") or "",
                  "id_number": payload["id_number"], "name": payload.get("name") or "",
                  "settled_at": str(payload["settled_at"])[:19],
                  "year": str(payload["settled_at"])[:4],
                  "institution_code": payload.get("institution_code") or "",
                  "share": payload["serious_illness_pay"],
                  "payload": json.dumps(dict(payload), ensure_ascii=False),
                  "idem_key": idem_key, "status": status, "created_at": now, "updated_at": now}
        async with self.engine.begin() as conn:
            new = (await conn.execute(self._insert(ShareRow).values(**values)
                                      .on_conflict_do_nothing()
                                      .returning(ShareRow.setl_id))).first()
        row = await self.share(str(payload["setl_id"]))
        assert row is not None
        return row, new is not None

    async def share(self, setl_id: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(select(ShareRow.__table__)
                                    .where(ShareRow.setl_id == setl_id))).first()
        return None if r is None else _row(r)

    async def reversal_of(self, setl_id: str) -> dict[str, Any] | None:
        """The 冲销 recorded for an original, if any."""
        async with self.engine.connect() as conn:
            r = (await conn.execute(select(ShareRow.__table__).where(
                ShareRow.orig_setl_id == setl_id, ShareRow.kind == "reverse"))).first()
        return None if r is None else _row(r)

    async def set_share(self, setl_id: str, status: str, *, expect: Iterable[str],
                        reason: str = "", delivered_on: str = "", due_on: str = "") -> bool:
        values: dict[str, Any] = {"status": status, "reason": reason[:1000],
                                  "updated_at": utc_now()}
        if delivered_on:
            values |= {"delivered_on": delivered_on, "due_on": due_on}
        async with self.engine.begin() as conn:
            done = await conn.execute(update(ShareRow).where(
                ShareRow.setl_id == setl_id, ShareRow.status.in_(tuple(expect))).values(**values))
        return bool(done.rowcount)

    async def mark_paid(self, setl_id: str, paid_on: str) -> bool:
        """The insurer paid a delivered claim (first payment day kept)."""
        async with self.engine.begin() as conn:
            done = await conn.execute(update(ShareRow).where(
                ShareRow.setl_id == setl_id, ShareRow.kind == "settle",
                ShareRow.status == "delivered", ShareRow.paid_on == "").values(
                paid_on=paid_on, updated_at=utc_now()))
        return bool(done.rowcount)

    async def overdue(self, as_of: date, *, limit: int = 100,
                      offset: int = 0) -> list[dict[str, Any]]:
        """Delivered claims unpaid after their due day, or paid late (111), oldest due first;
        a claim reversed (冲销 delivered) is no claim any more."""
        day = as_of.isoformat()
        reversed_ = select(ShareRow.orig_setl_id).where(ShareRow.kind == "reverse",
                                                        ShareRow.status == "delivered")
        q = (select(ShareRow.__table__).where(
            ShareRow.kind == "settle", ShareRow.status == "delivered", ShareRow.due_on != "",
            ShareRow.setl_id.not_in(reversed_),
            or_(and_(ShareRow.paid_on == "", ShareRow.due_on < day),
                and_(ShareRow.paid_on != "", ShareRow.paid_on > ShareRow.due_on)))
             .order_by(ShareRow.due_on, ShareRow.setl_id).limit(limit).offset(offset))
        async with self.engine.connect() as conn:
            return [_row(r) for r in await conn.execute(q)]

    async def year_claims(self, year: str) -> list[dict[str, Any]]:
        """The year's delivered settlement shares not reversed: what 清算 covers."""
        reversed_ = select(ShareRow.orig_setl_id).where(ShareRow.kind == "reverse",
                                                        ShareRow.status == "delivered")
        q = (select(ShareRow.__table__).where(
            ShareRow.year == year, ShareRow.kind == "settle", ShareRow.status == "delivered",
            ShareRow.setl_id.not_in(reversed_)).order_by(ShareRow.setl_id))
        async with self.engine.connect() as conn:
            return [_row(r) for r in await conn.execute(q)]

    async def share_counts(self) -> dict[str, int]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(ShareRow.status, func.count())
                                      .group_by(ShareRow.status))
            return {str(s): int(n) for s, n in rows}

    # -- paying residents (39) -------------------------------------------------------------

    async def paying_residents(self, year: str) -> int:
        """Residents who paid for ``year``: distinct ID numbers on arrival lines (result
        ``1``) of the return files recorded whole, for 城乡居民 insurance (390/392) and a
        period in the year: 城乡居民缴费 and 扣款 files, and special payments in resident mode
        (``3``)."""
        kinds = ReturnFileRow.kind.in_(("resident_pay", "resident_deduct"))
        special = and_(ReturnFileRow.kind.in_(("special_pay", "special_deduct")),
                       ReturnRecordRow.mode == "3")
        q = (select(func.count(func.distinct(ReturnRecordRow.payer_code)))
             .select_from(ReturnRecordRow)
             .join(ReturnFileRow, ReturnFileRow.sha256 == ReturnRecordRow.file_sha)
             .where(ReturnFileRow.status.in_(_COMPLETE), or_(kinds, special),
                    ReturnRecordRow.payer_type == "P", ReturnRecordRow.result == "1",
                    ReturnRecordRow.insutype.in_(RESIDENT_INSUTYPES),
                    ReturnRecordRow.period.like(f"{year}%")))
        async with self.engine.connect() as conn:
            return int((await conn.execute(q)).scalar() or 0)

    # -- batches ---------------------------------------------------------------------------

    async def batch(self, batch_id: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(select(BatchRow.__table__)
                                    .where(BatchRow.id == batch_id))).first()
        return None if r is None else _row(r)

    async def put_batch(self, batch_id: str, *, kind: str, period: str, direction: str,
                        status: str, count: int, total: str, payload: Mapping[str, Any],
                        serial: str = "", actor: str = "") -> tuple[dict[str, Any], bool]:
        """Freeze a batch once (a second put keeps the first); counts the run either way."""
        now = utc_now()
        async with self.engine.begin() as conn:
            new = (await conn.execute(self._insert(BatchRow).values(
                id=batch_id, kind=kind, period=period, direction=direction, status=status,
                count=count, total=total, payload=json.dumps(dict(payload), ensure_ascii=False),
                serial=serial, runs=0, actor=actor[:64], created_at=now, updated_at=now)
                .on_conflict_do_nothing().returning(BatchRow.id))).first()
            await conn.execute(update(BatchRow).where(BatchRow.id == batch_id)
                               .values(runs=BatchRow.runs + 1))
        row = await self.batch(batch_id)
        assert row is not None
        return row, new is not None

    async def set_batch(self, batch_id: str, status: str, *, expect: Iterable[str],
                        reason: str = "") -> bool:
        async with self.engine.begin() as conn:
            done = await conn.execute(update(BatchRow).where(
                BatchRow.id == batch_id, BatchRow.status.in_(tuple(expect))).values(
                status=status, reason=reason[:1000], updated_at=utc_now()))
        return bool(done.rowcount)

    async def batches(self, *, limit: int = 100) -> list[dict[str, Any]]:
        q = (select(*(c for c in BatchRow.__table__.c if c.name != "payload"))
             .order_by(BatchRow.updated_at.desc()).limit(limit))
        async with self.engine.connect() as conn:
            return [_row(r) for r in await conn.execute(q)]

    # -- financing notices -----------------------------------------------------------------

    async def add_financing(self, payload: Mapping[str, Any], actor: str
                            ) -> tuple[dict[str, Any], bool]:
        fid = f"{payload['year']}:{payload['payers']}"
        now = utc_now()
        async with self.engine.begin() as conn:
            new = (await conn.execute(self._insert(FinancingRow).values(
                id=fid, year=str(payload["year"]), payers=int(payload["payers"]),
                total=str(payload["total"]), payload=json.dumps(dict(payload),
                                                                ensure_ascii=False),
                status="queued", actor=actor[:64], created_at=now, updated_at=now)
                .on_conflict_do_nothing().returning(FinancingRow.id))).first()
            r = (await conn.execute(select(FinancingRow.__table__)
                                    .where(FinancingRow.id == fid))).first()
        assert r is not None
        return _row(r), new is not None

    async def latest_financing(self, year: str) -> dict[str, Any] | None:
        """The year's latest notice the insurer took (delivered), else None."""
        q = (select(FinancingRow.__table__).where(FinancingRow.year == year,
                                                  FinancingRow.status == "delivered")
             .order_by(FinancingRow.created_at.desc()).limit(1))
        async with self.engine.connect() as conn:
            r = (await conn.execute(q)).first()
        return None if r is None else _row(r)

    async def set_financing(self, fid: str, status: str, *, reason: str = "") -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(FinancingRow).where(FinancingRow.id == fid).values(
                status=status, reason=reason[:1000], updated_at=utc_now()))

    # -- clues -----------------------------------------------------------------------------

    async def add_clue(self, payload: Mapping[str, Any], actor: str
                       ) -> tuple[dict[str, Any], bool]:
        now = utc_now()
        async with self.engine.begin() as conn:
            new = (await conn.execute(self._insert(ClueRow).values(
                clue_id=payload["clue_id"], institution_code=payload["institution_code"],
                id_number=payload.get("id_number") or "", category=payload["category"],
                amount=str(payload["amount"]),
                payload=json.dumps(dict(payload), ensure_ascii=False), status="queued",
                actor=actor[:64], created_at=now, updated_at=now)
                .on_conflict_do_nothing().returning(ClueRow.clue_id))).first()
            r = (await conn.execute(select(ClueRow.__table__)
                                    .where(ClueRow.clue_id == payload["clue_id"]))).first()
        assert r is not None
        return _row(r), new is not None

    async def set_clue(self, clue_id: str, status: str, *, reason: str = "") -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(ClueRow).where(ClueRow.clue_id == clue_id).values(
                status=status, reason=reason[:1000], updated_at=utc_now()))

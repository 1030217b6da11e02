"""F9 转移接续: transfers by application number, their status history, the platform cursor
and the 参保凭证 PDFs. Alembic revision 0012 creates the tables.

    transfers               one row per application number (whichever way it came in)
    transfer_events         every status change and every push to core/the platform
    transfer_cursors        the durable pull cursor (one row per platform feed)
    transfer_certificates   the 参保凭证 PDF of an offline (未联网地区) transfer

A transfer's status (``contracts.transfer.STATUS_LABELS``)::

    received        stored; the intake lane checks it
    refused         the application itself is bad (field and reason); never processed
    out_failed      转出失败: arrears at tax, or the 转入地 not ready (field and reason)
    out_approved    转出 checks passed (core and the platform hear it)
    offline_issued  未联网地区: checks passed, the 参保凭证 PDF produced and stored
    in_accepted     a 转入 taken (core and the platform hear it)
    failed          a partner could not be asked after every retry (dead-lettered)

An application number is stored once (``receive`` is insert-or-read): the same
application seen twice (a page repeating it, a pull after a lost cursor, a second
window entry) is processed once. Status changes are compare-and-set from ``received``,
so a redelivered intake changes nothing. Plain types: SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Final

from sqlalchemy import (
    Boolean,
    DateTime,
    Integer,
    LargeBinary,
    String,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from contracts.masking import mask_id, mask_name, mask_phone, mask_text, mask_value
from contracts.transfer import Refusal, TransferApplication
from storage.models import Base
from storage.times import as_utc, utc_now

__all__ = ["PLATFORM_FEED", "TransferStore", "masked"]

PLATFORM_FEED: Final = "platform"
"""The cursor of the national platform's application feed (T2401)."""


class TransferRow(Base):
    __tablename__ = "transfers"

    application_no: Mapped[str] = mapped_column(String(40), primary_key=True)
    source: Mapped[str] = mapped_column(String(12))
    channel_app_id: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(3))
    id_number: Mapped[str] = mapped_column(String(18), index=True)
    name: Mapped[str] = mapped_column(String(60))
    insutype: Mapped[str] = mapped_column(String(3))
    source_division: Mapped[str] = mapped_column(String(6))
    target_division: Mapped[str] = mapped_column(String(6))
    offline: Mapped[bool] = mapped_column(Boolean)
    application: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason_code: Mapped[str] = mapped_column(String(40))
    reason_field: Mapped[str] = mapped_column(String(60))
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TransferEventRow(Base):
    __tablename__ = "transfer_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_no: Mapped[str] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    ok: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TransferCursorRow(Base):
    __tablename__ = "transfer_cursors"

    feed: Mapped[str] = mapped_column(String(20), primary_key=True)
    cursor: Mapped[str] = mapped_column(String(64))
    pulled: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TransferCertificateRow(Base):
    __tablename__ = "transfer_certificates"

    application_no: Mapped[str] = mapped_column(String(40), primary_key=True)
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def _row(r: Any) -> dict[str, Any]:
    d = dict(r)
    for k in ("received_at", "updated_at", "at", "created_at"):
        if k in d:
            d[k] = as_utc(d[k])
    return d


def masked(row: dict[str, Any]) -> dict[str, Any]:
    """A stored transfer as the API answers it: ID numbers, names, phones masked;
    JSON-ready."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if k == "id_number":
            v = mask_id(str(v))
        elif k == "name":
            v = mask_name(str(v))
        elif k == "phone":
            v = mask_phone(str(v))
        elif k == "application":
            v = mask_value(json.loads(v) if isinstance(v, str) else v)
        elif isinstance(v, datetime):
            v = v.isoformat()
        elif isinstance(v, str):
            v = mask_text(v)
        elif isinstance(v, list):
            v = [masked(x) if isinstance(x, dict) else x for x in v]
        elif isinstance(v, dict):
            v = masked(v)
        out[k] = v
    return out


class TransferStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    # ------------------------------------------------------------ transfers

    async def receive(self, app: TransferApplication, *, source: str, offline: bool,
                      actor: str, channel_app_id: str = "") -> tuple[dict[str, Any], bool]:
        """Store an application once: ``(row, True)``; a number already stored gives
        ``(its row, False)`` and changes nothing."""
        now = utc_now()
        row = {"application_no": app.application_no, "source": source,
               "channel_app_id": channel_app_id[:64], "direction": app.direction,
               "id_number": app.id_number, "name": app.name[:60], "insutype": app.insutype,
               "source_division": app.source_division, "target_division": app.target_division,
               "offline": offline, "application": json.dumps(app.as_dict(), ensure_ascii=False),
               "status": "received", "reason_code": "", "reason_field": "", "reason": "",
               "actor": actor[:64], "received_at": now, "updated_at": now}
        try:
            async with self.engine.begin() as conn:
                existing = await self._get(conn, app.application_no)
                if existing is not None:
                    return existing, False
                await conn.execute(insert(TransferRow).values(row))
                await self._event(conn, app.application_no, "status", "received", True,
                                  f"{source} by {actor}")
        except IntegrityError:  # the same number stored meanwhile by another delivery
            async with self.engine.connect() as conn:
                existing = await self._get(conn, app.application_no)
            if existing is None:
                raise
            return existing, False
        return _row(row), True

    async def refuse(self, application_no: str, *, source: str, raw: dict[str, Any],
                     refusals: list[Refusal], actor: str) -> tuple[dict[str, Any], bool]:
        """Record a refused application (bad fields) under its number, once; the raw
        application is kept masked. ``(row, True)`` when recorded now."""
        first = refusals[0] if refusals else Refusal("application", "refused")
        now = utc_now()
        reason = mask_text("; ".join(f"{r.field}: {r.reason}" for r in refusals))
        row: dict[str, Any] = {
               "application_no": application_no, "source": source, "channel_app_id": "",
               "direction": "", "id_number": str(raw.get("id_number") or "")[:18],
               "name": str(raw.get("name") or "")[:60], "insutype": "",
               "source_division": str(raw.get("source_division") or "")[:6],
               "target_division": str(raw.get("target_division") or "")[:6], "offline": False,
               "application": json.dumps(mask_value(raw), ensure_ascii=False, default=str),
               "status": "refused", "reason_code": "INVALID", "reason_field": first.field[:60],
               "reason": reason, "actor": actor[:64], "received_at": now, "updated_at": now}
        try:
            async with self.engine.begin() as conn:
                existing = await self._get(conn, application_no)
                if existing is not None:
                    return existing, False
                await conn.execute(insert(TransferRow).values(row))
                await self._event(conn, application_no, "status", "refused", False, reason)
        except IntegrityError:
            async with self.engine.connect() as conn:
                existing = await self._get(conn, application_no)
            if existing is None:
                raise
            return existing, False
        return _row(row), True

    async def get(self, application_no: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            return await self._get(conn, application_no)

    async def set_status(self, application_no: str, status: str, *,
                         expect: tuple[str, ...] = ("received",), reason_code: str = "",
                         reason_field: str = "", reason: str = "") -> bool:
        """Compare-and-set from one of ``expect``; False when the transfer is elsewhere
        (decided already: a redelivery changes nothing)."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(TransferRow).where(TransferRow.application_no == application_no,
                                          TransferRow.status.in_(expect))
                .values(status=status, reason_code=reason_code[:40],
                        reason_field=reason_field[:60],
                        reason=mask_text(reason), updated_at=utc_now()))
            if not result.rowcount:
                return False
            await self._event(conn, application_no, "status", status,
                              status not in ("out_failed", "failed", "refused"),
                              reason)
        return True

    async def log(self, application_no: str, kind: str, status: str, ok: bool,
                  detail: str = "") -> None:
        """A push to core or the platform (``kind`` core / platform / certificate)."""
        async with self.engine.begin() as conn:
            await self._event(conn, application_no, kind, status, ok, detail)

    async def events(self, application_no: str) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(
                select(TransferEventRow.kind, TransferEventRow.status, TransferEventRow.ok,
                       TransferEventRow.detail, TransferEventRow.at)
                .where(TransferEventRow.application_no == application_no)
                .order_by(TransferEventRow.id))).mappings().all()
        return [_row(r) for r in rows]

    async def counts(self) -> dict[str, int]:
        """Transfers per status (the demo and ops)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(TransferRow.status, func.count())
                                       .group_by(TransferRow.status))).all()
        return {str(s): int(n) for s, n in rows}

    # ------------------------------------------------------------ the pull cursor

    async def cursor(self, feed: str = PLATFORM_FEED) -> str:
        async with self.engine.connect() as conn:
            got = (await conn.execute(select(TransferCursorRow.cursor)
                                      .where(TransferCursorRow.feed == feed))).scalar()
        return str(got or "")

    async def set_cursor(self, cursor: str, pulled: int, *, feed: str = PLATFORM_FEED,
                         expect: str | None = None) -> bool:
        """Move the cursor past a page whose applications are stored; with ``expect``,
        only from that cursor (two pulls at once: the second one's move is refused)."""
        now = utc_now()
        async with self.engine.begin() as conn:
            current = (await conn.execute(
                select(TransferCursorRow.cursor, TransferCursorRow.pulled)
                .where(TransferCursorRow.feed == feed))).first()
            if current is None:
                try:
                    await conn.execute(insert(TransferCursorRow).values(
                        feed=feed, cursor=cursor, pulled=pulled, updated_at=now))
                except IntegrityError:
                    return False
                return True
            if expect is not None and current[0] != expect:
                return False
            result = await conn.execute(
                update(TransferCursorRow).where(TransferCursorRow.feed == feed,
                                                TransferCursorRow.cursor == current[0])
                .values(cursor=cursor, pulled=int(current[1]) + pulled, updated_at=now))
            return bool(result.rowcount)

    # ------------------------------------------------------------ 参保凭证

    async def save_certificate(self, application_no: str, pdf: bytes) -> str:
        """Store the PDF once (the first one stays: a redelivery renders it again but
        keeps what was issued); its sha256."""
        digest = hashlib.sha256(pdf).hexdigest()
        try:
            async with self.engine.begin() as conn:
                have = (await conn.execute(
                    select(TransferCertificateRow.sha256)
                    .where(TransferCertificateRow.application_no == application_no))).scalar()
                if have is not None:
                    return str(have)
                await conn.execute(insert(TransferCertificateRow).values(
                    application_no=application_no, pdf=pdf, sha256=digest, size=len(pdf),
                    created_at=utc_now()))
                await self._event(conn, application_no, "certificate", "issued", True,
                                  f"sha256 {digest}, {len(pdf)} bytes")
        except IntegrityError:
            got = await self.certificate(application_no)
            if got is None:
                raise
            return got[1]
        return digest

    async def certificate(self, application_no: str) -> tuple[bytes, str] | None:
        async with self.engine.connect() as conn:
            got = (await conn.execute(
                select(TransferCertificateRow.pdf, TransferCertificateRow.sha256)
                .where(TransferCertificateRow.application_no == application_no))).first()
        return None if got is None else (bytes(got[0]), str(got[1]))

    # ------------------------------------------------------------ internals

    async def _get(self, conn: AsyncConnection, application_no: str) -> dict[str, Any] | None:
        got = (await conn.execute(select(TransferRow.__table__)
                                  .where(TransferRow.application_no == application_no))
               ).mappings().first()
        return None if got is None else _row(got)

    async def _event(self, conn: AsyncConnection, application_no: str, kind: str, status: str,
                     ok: bool, detail: str) -> None:
        await conn.execute(insert(TransferEventRow).values(
            application_no=application_no, kind=kind, status=status, ok=ok,
            detail=mask_text(detail)[:2000], at=utc_now()))

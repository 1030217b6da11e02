"""Identity-confirmation cases (灵活就业终止 身份确认): one row per termination tax held.

When tax refuses a 灵活就业终止参保 with TX402 (身份信息不唯一), the hub opens a case
(``routes.confirmations``): who, which termination, the confirmation number it
sent tax, and the termination message itself, so the termination can be re-driven
once tax has confirmed the identity. Alembic revision 0007 creates the table.

The case id is derived from the termination's correlation id (``case_id_for``), and
``open`` inserts or finds: a redelivered termination finds its case instead of
opening a second one. Status changes are compare-and-set on the current status
(``move``), so of two feedbacks racing only one confirms.

Statuses::

    open       a confirmation is under way, or was refused / could not start (reason)
    confirmed  tax confirmed; the held termination has been re-driven
    closed     tax took the re-driven termination (or refused it: reason)
    cancelled  a caseworker gave up on it (reason)

The held message keeps the personal data tax needs (as the dead-letter archive
keeps raw bodies); every answer outside the hub is masked (``masked_case``).
SQLite gives timestamps back without a zone; every timestamp is UTC.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import DateTime, Integer, String, Text, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from contracts.masking import mask_id, mask_name, mask_phone, mask_text
from storage.models import Base
from storage.times import as_utc, utc_now

__all__ = ["OPEN_STATUSES", "STATUSES", "ConfirmationStore", "IdentityCaseRow", "NewCase",
           "case_id_for", "confirm_no_for", "masked_case"]

STATUSES: Final = ("open", "confirmed", "closed", "cancelled")
OPEN_STATUSES: Final = frozenset({"open"})


def case_id_for(correlation_id: str) -> str:
    """The case of a termination: one per transaction, whatever redelivers it."""
    return hashlib.sha256(f"identity-case:{correlation_id}".encode()).hexdigest()[:32]


def confirm_no_for(case_id: str) -> str:
    """The 身份确认号 (``sfqrh``) the hub gives tax for a case: stable, 18 characters."""
    return "QR" + case_id[:16].upper()


class IdentityCaseRow(Base):
    """One held termination and its identity confirmation."""

    __tablename__ = "identity_confirmations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    correlation_id: Mapped[str] = mapped_column(String(64), unique=True)
    type: Mapped[str] = mapped_column(String(80))
    business_key: Mapped[str] = mapped_column(String(120))
    entity_key: Mapped[str] = mapped_column(String(120), default="")
    id_number: Mapped[str] = mapped_column(String(18))
    name: Mapped[str] = mapped_column(String(60))
    phone: Mapped[str] = mapped_column(String(20), default="")
    confirm_no: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(12), index=True)
    reason_code: Mapped[str] = mapped_column(String(40), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    """Confirmations sent to tax so far (each a new serial at tax)."""
    held_message: Mapped[str] = mapped_column(Text)
    """The termination's envelope (JSON), re-driven once tax confirms."""
    actor: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


@dataclass(frozen=True)
class NewCase:
    """What opening a case records."""

    correlation_id: str
    type: str
    business_key: str
    entity_key: str
    id_number: str
    name: str
    held_message: str
    reason_code: str = ""
    reason: str = ""

    @property
    def id(self) -> str:
        return case_id_for(self.correlation_id)


def _as_dict(row: Any) -> dict[str, Any]:
    d = dict(row)
    for k in ("created_at", "updated_at", "closed_at"):
        d[k] = as_utc(d[k])
    return d


def masked_case(case: dict[str, Any]) -> dict[str, Any]:
    """A case as the API answers it: personal data masked, the held message left out."""
    out = {k: v for k, v in case.items() if k != "held_message"}
    out["id_number"] = mask_id(str(case.get("id_number", "")))
    out["name"] = mask_name(str(case.get("name", "")))
    out["phone"] = mask_phone(str(case.get("phone") or "")) if case.get("phone") else ""
    out["reason"] = mask_text(str(case.get("reason", "")))
    out["business_key"] = mask_text(str(case.get("business_key", "")))
    for k in ("created_at", "updated_at", "closed_at"):
        if isinstance(out.get(k), datetime):
            out[k] = out[k].isoformat()
    return out


class ConfirmationStore:
    """Async store of identity-confirmation cases on any SQLAlchemy async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._insert = (postgresql.insert if engine.dialect.name == "postgresql"
                        else sqlite.insert)

    async def open(self, case: NewCase) -> tuple[dict[str, Any], bool]:
        """``(row, True)`` for a new case, ``(the existing row, False)`` for a repeat."""
        now = utc_now()
        row = {"id": case.id, "correlation_id": case.correlation_id[:64], "type": case.type,
               "business_key": case.business_key[:120], "entity_key": case.entity_key[:120],
               "id_number": case.id_number[:18], "name": case.name[:60], "phone": "",
               "confirm_no": confirm_no_for(case.id), "status": "open",
               "reason_code": case.reason_code[:40], "reason": mask_text(case.reason),
               "attempts": 0, "held_message": case.held_message, "actor": "",
               "created_at": now, "updated_at": now, "closed_at": None}
        stmt = (self._insert(IdentityCaseRow).values(row).on_conflict_do_nothing()
                .returning(IdentityCaseRow.id))
        async with self.engine.begin() as conn:
            inserted = (await conn.execute(stmt)).first()
        if inserted is not None:
            return _as_dict(row), True
        existing = await self.get(case.id)
        if existing is None:  # pragma: no cover - a conflict on correlation id alone
            raise RuntimeError(f"identity case {case.id} conflicts but cannot be read")
        return existing, False

    async def get(self, case_id: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(IdentityCaseRow.__table__).where(
                IdentityCaseRow.id == case_id))).mappings().first()
        return _as_dict(row) if row else None

    async def list(self, *, status: str | None = "open", limit: int = 100,
                   offset: int = 0) -> list[dict[str, Any]]:
        """Cases, oldest first; ``status`` None for all."""
        q = select(IdentityCaseRow.__table__).order_by(IdentityCaseRow.created_at,
                                                       IdentityCaseRow.id)
        if status is not None:
            q = q.where(IdentityCaseRow.status == status)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q.limit(limit).offset(offset))).mappings().all()
        return [_as_dict(r) for r in rows]

    async def counts(self) -> dict[str, int]:
        """Cases per status (every status present, zero where none)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(IdentityCaseRow.status, func.count())
                                       .group_by(IdentityCaseRow.status))).all()
        return {s: 0 for s in STATUSES} | {str(s): int(n) for s, n in rows}

    async def move(self, case_id: str, *, expect: tuple[str, ...], status: str,
                   reason_code: str | None = None, reason: str | None = None,
                   phone: str | None = None, attempts: int | None = None,
                   actor: str | None = None, expect_attempts: int | None = None) -> bool:
        """Compare-and-set: the case goes to ``status`` only from one of ``expect`` (and,
        when given, with ``expect_attempts`` confirmations sent); whether it did. Only the
        columns given change (besides the times)."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        now = utc_now()
        values: dict[str, Any] = {"status": status, "updated_at": now}
        if status in ("closed", "cancelled"):
            values["closed_at"] = now
        if reason_code is not None:
            values["reason_code"] = reason_code[:40]
        if reason is not None:
            values["reason"] = mask_text(reason)
        if phone is not None:
            values["phone"] = phone[:20]
        if attempts is not None:
            values["attempts"] = attempts
        if actor is not None:
            values["actor"] = actor[:64]
        where = [IdentityCaseRow.id == case_id, IdentityCaseRow.status.in_(expect)]
        if expect_attempts is not None:
            where.append(IdentityCaseRow.attempts == expect_attempts)
        async with self.engine.begin() as conn:
            result = await conn.execute(update(IdentityCaseRow).where(*where).values(**values))
        return bool(result.rowcount)

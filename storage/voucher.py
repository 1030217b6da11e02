"""F13: settlements and kiosk business by request key, and each voucher's one use.

Alembic revision 0017 creates the tables. ``claim`` is the one-time-use check, atomic
in the database: in one transaction it inserts the voucher's use (``voucher_uses``,
primary key = the token's digest) and the request (``voucher_requests``, primary key =
caller + serial). A second settlement with the same voucher fails the first insert
(``replayed``), whichever process or replica it reaches; the same request again (an
institution retrying after a lost answer) finds its row (``repeat``: the answer so
far, no second effect); the same key with other content is a ``conflict``. States:
``queued`` -> ``done`` | ``rejected`` | ``dead``; a ``dead`` request re-driven from the DLQ
may still become ``done`` or ``rejected``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from sqlalchemy import DateTime, String, Text, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from contracts.masking import mask_id, mask_value
from storage.models import Base
from storage.times import utc, utc_now

__all__ = ["Claim", "VoucherRequestRow", "VoucherStore", "VoucherUseRow", "masked"]

FINAL: Final = ("done", "rejected", "dead")


class VoucherUseRow(Base):
    """A voucher spent: its token's digest, and the request that spent it."""

    __tablename__ = "voucher_uses"

    token_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_key: Mapped[str] = mapped_column(String(100))
    used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class VoucherRequestRow(Base):
    """A settlement (outpatient, discharge, pharmacy) or a kiosk business request."""

    __tablename__ = "voucher_requests"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))
    caller: Mapped[str] = mapped_column(String(40), index=True)
    id_number: Mapped[str] = mapped_column(String(18))
    amount: Mapped[str] = mapped_column(String(20))
    digest: Mapped[str] = mapped_column(String(64))
    """sha256 of the request's content: the same key with other content is a conflict."""
    status: Mapped[str] = mapped_column(String(12), index=True)
    result: Mapped[str] = mapped_column(Text)
    reason_field: Mapped[str] = mapped_column(String(80))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class Claim:
    outcome: Literal["new", "repeat", "conflict", "replayed"]
    request: dict[str, Any] | None = None
    """The stored request (``repeat``, ``conflict``); None for ``new`` and ``replayed``."""


def _row(r: Any) -> dict[str, Any]:
    return {"key": r.key, "kind": r.kind, "caller": r.caller, "id_number": r.id_number,
            "amount": r.amount, "status": r.status, "result": json.loads(r.result or "{}"),
            "reason_field": r.reason_field, "reason": r.reason,
            "created_at": utc(r.created_at).isoformat(),
            "updated_at": utc(r.updated_at).isoformat()}


class VoucherStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def claim(self, key: str, *, kind: str, caller: str, id_number: str, digest: str,
                    amount: str = "", token: str | None = None) -> Claim:
        """Take ``key`` (and spend the voucher ``token``, a digest) in one transaction."""
        known = await self.get(key)
        if known is not None:
            return Claim("repeat" if known["digest"] == digest else "conflict", known)
        now = utc_now()
        try:
            async with self.engine.begin() as conn:
                if token is not None:
                    await conn.execute(insert(VoucherUseRow).values(
                        token_digest=token, request_key=key, used_at=now))
                await conn.execute(insert(VoucherRequestRow).values(
                    key=key, kind=kind, caller=caller, id_number=id_number, amount=amount,
                    digest=digest, status="queued", result="{}", reason_field="", reason="",
                    created_at=now, updated_at=now))
        except IntegrityError:  # raced: the same request, or the voucher spent elsewhere
            known = await self.get(key)
            if known is not None:
                return Claim("repeat" if known["digest"] == digest else "conflict", known)
            return Claim("replayed")
        return Claim("new")

    async def get(self, key: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(select(VoucherRequestRow.__table__).where(
                VoucherRequestRow.key == key))).first()
        return None if r is None else _row(r) | {"digest": r.digest}

    async def finish(self, key: str, status: Literal["done", "rejected", "dead"], *,
                     result: dict[str, Any] | None = None, field: str = "",
                     reason: str = "") -> bool:
        """Move ``key`` out of ``queued``; False when it was not there. A message re-driven
        from the DLQ may still end a ``dead`` request (``done``/``rejected``): what the
        partner finally did wins over the hub having given up."""
        since = ("queued",) if status == "dead" else ("queued", "dead")
        async with self.engine.begin() as conn:
            n = (await conn.execute(update(VoucherRequestRow).where(
                VoucherRequestRow.key == key, VoucherRequestRow.status.in_(since)).values(
                status=status, result=json.dumps(result or {}, ensure_ascii=False,
                                                 default=str),
                reason_field=field[:80], reason=reason[:2000],
                updated_at=utc_now()))).rowcount
        return bool(n)

    async def spent_by(self, token: str) -> str | None:
        """The request that spent the voucher with this digest, if any."""
        async with self.engine.connect() as conn:
            r = (await conn.execute(select(VoucherUseRow.request_key).where(
                VoucherUseRow.token_digest == token))).first()
        return None if r is None else str(r[0])


def masked(request: dict[str, Any]) -> dict[str, Any]:
    """A request as an answer shows it (the ID number masked, no digest)."""
    return {k: v for k, v in request.items() if k != "digest"} | {
        "id_number": mask_id(str(request.get("id_number") or "")),
        "result": mask_value(request.get("result") or {})}

"""SQL tables of the operations side: archived dead letters and the audit log.

On the same ``Base`` as ``storage.models`` so that one metadata describes the
whole schema; alembic revision 0002 creates them. Kept apart from
``storage/models.py`` so the hot-path tables and these evolve independently.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base

__all__ = ["STATUSES", "AuditRow", "DeadLetterRow"]

#: A dead letter is ``dead`` until an operator retries or archives it.
STATUSES = ("dead", "retried", "archived")


class DeadLetterRow(Base):
    """One message parked in a DLQ, kept with its raw body so it can be retried.

    ``reason`` is masked at rest; ``body`` is not (a retry needs the original
    bytes) and is only ever shown masked by the admin API.
    """

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    route: Mapped[str] = mapped_column(String(40))
    queue: Mapped[str] = mapped_column(String(120))
    message_id: Mapped[str] = mapped_column(String(64), index=True)
    correlation_id: Mapped[str] = mapped_column(String(64), index=True)
    type: Mapped[str] = mapped_column(String(80))
    partner: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(40))
    reason_code: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    dead_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    headers: Mapped[str] = mapped_column(Text)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(12))
    retried_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_dead_letters_partner_type_status", "partner", "type", "status"),
        Index("ix_dead_letters_dead_at", "dead_at"),
        Index("ix_dead_letters_reason_code", "reason_code"),
    )


class AuditRow(Base):
    """Who did what to which target, when, and how it ended (including refusals)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(80), index=True)
    role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(80))
    target: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(20), index=True)

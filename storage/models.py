"""SQL tables: the interaction log (交互日志), business-transaction state, partner requests.

SQLite file by default, PostgreSQL by URL; the schema is owned by alembic
(``alembic/versions``), these models are its source.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from contracts.envelope import SERIAL_MAX_LENGTH

__all__ = ["Base", "InteractionLog", "PartnerRequest", "Transaction"]


class Base(DeclarativeBase):
    pass


class InteractionLog(Base):
    """One hop of one message: who, what, how long, what came of it. Details are masked."""

    __tablename__ = "interaction_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    # Message and correlation ids (64), or the 业务流水号 of a question tax asked core,
    # logged under its serial: as long as a serial may be (alembic 0006).
    message_id: Mapped[str] = mapped_column(String(SERIAL_MAX_LENGTH), index=True)
    correlation_id: Mapped[str] = mapped_column(String(SERIAL_MAX_LENGTH), index=True)
    type: Mapped[str] = mapped_column(String(80))
    partner: Mapped[str] = mapped_column(String(40))
    direction: Mapped[str] = mapped_column(String(8))
    hop: Mapped[str] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(20), index=True)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[str] = mapped_column(Text, default="")


class Transaction(Base):
    """The state of one business transaction (one application / one core event)."""

    __tablename__ = "transactions"

    correlation_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(80))
    business_key: Mapped[str] = mapped_column(String(120), index=True)
    source: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), index=True)
    reason_code: Mapped[str] = mapped_column(String(40), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)

    __table_args__ = (Index("ix_transactions_type_status", "type", "status"),)


class PartnerRequest(Base):
    """A request a partner will answer later, keyed by the serial it echoes back."""

    __tablename__ = "partner_requests"

    serial: Mapped[str] = mapped_column(String(SERIAL_MAX_LENGTH), primary_key=True)
    partner: Mapped[str] = mapped_column(String(40))
    correlation_id: Mapped[str] = mapped_column(String(64), index=True)
    type: Mapped[str] = mapped_column(String(80))
    business_key: Mapped[str] = mapped_column(String(120))
    entity_key: Mapped[str] = mapped_column(String(120), default="")
    accept_no: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

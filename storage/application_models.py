"""SQL table of channel applications (flow F1): one row per application a channel submitted.

On the same ``Base`` as ``storage.models``; alembic revision 0004 creates it.
``(channel, request_id)`` is unique: a channel's repeat of a request finds the
first application instead of creating a second enrollment. The payload is
kept masked (``contracts.masking``): the full personal data travels in the
broker message only; ``payload_hash`` (SHA-256 of type and unmasked payload)
tells a true repeat from a reused request id with different content.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, PrimaryKeyConstraint, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base

__all__ = ["FINAL_STATUSES", "STATUSES", "ApplicationPartRow", "ApplicationRow"]

#: In order; ``completed`` and ``rejected`` are final (never overwritten). ``awaiting_review``:
#: registered at core, whose review (审核) must pass before anything is sent to tax.
STATUSES = ("received", "validated", "awaiting_review", "registered", "synced", "completed",
            "rejected")
FINAL_STATUSES = frozenset({"completed", "rejected"})


class ApplicationRow(Base):
    """One application: who sent it, where it stands, why it was rejected."""

    __tablename__ = "applications"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel: Mapped[str] = mapped_column(String(40))
    request_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(12), index=True)
    reason_field: Mapped[str] = mapped_column(String(120), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    payload_masked: Mapped[str] = mapped_column(Text)
    payload_hash: Mapped[str] = mapped_column(String(64))
    core_ref: Mapped[str] = mapped_column(String(64), default="")
    tax_serials: Mapped[str] = mapped_column(Text, default="[]")
    parts: Mapped[str] = mapped_column(Text, default="{}")
    """The pipeline's bookkeeping of a multi-part application (JSON: ``expected``)."""
    final_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    """The message that pushes the final result (``claim_final``); None until one does."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        UniqueConstraint("channel", "request_id", name="uq_applications_channel_request"),
        Index("ix_applications_channel_created", "channel", "created_at"),
    )


class ApplicationPartRow(Base):
    """One part's result (one tax submit of the application), written once (revision 0005)."""

    __tablename__ = "application_parts"

    app_id: Mapped[str] = mapped_column(String(32))
    correlation_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12))
    reason_code: Mapped[str] = mapped_column(String(40), default="")
    reason_field: Mapped[str] = mapped_column(String(120), default="")
    reason_text: Mapped[str] = mapped_column(Text, default="")
    accept_no: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (PrimaryKeyConstraint("app_id", "correlation_id"),)

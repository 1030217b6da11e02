"""SQL tables of tax return files (回盘文件, flow F5): files, names, records, line errors.

On the same ``Base`` as ``storage.models``; alembic revision 0003 creates them.
A file is keyed by the SHA-256 of its content (the same bytes are the same
batch of payments, whatever the name); every name it was seen under is kept
in ``returnfile_names`` so a name already handled is not even downloaded again.
Records and line errors are keyed by ``(file_sha, line_no)``, so re-inserting
a chunk after a crash cannot duplicate a line.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base

__all__ = ["FILE_STATUSES", "ReturnFileNameRow", "ReturnFileRow", "ReturnLineErrorRow",
           "ReturnRecordRow"]

#: processing -> stored -> delivered; or rejected (trailer/header) or failed (core refused).
FILE_STATUSES = ("processing", "stored", "delivered", "rejected", "failed")


class ReturnFileRow(Base):
    """One return file by content; ``delivered_*`` lets delivery to core resume mid-file."""

    __tablename__ = "returnfile_files"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(24))
    file_date: Mapped[str] = mapped_column(String(8))
    batch_no: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(12), index=True)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    lines: Mapped[int] = mapped_column(Integer, default=0)
    records: Mapped[int] = mapped_column(Integer, default=0)
    line_errors: Mapped[int] = mapped_column(Integer, default=0)
    amount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    arrivals: Mapped[int] = mapped_column(Integer, default=0)
    delivered_batches: Mapped[int] = mapped_column(Integer, default=0)
    delivered_through: Mapped[int] = mapped_column(Integer, default=0)
    reason_code: Mapped[str] = mapped_column(String(40), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (Index("ix_returnfile_files_kind_date", "kind", "file_date"),)


class ReturnFileNameRow(Base):
    """Every name a file was fetched under; ``outcome`` says whether it was a duplicate."""

    __tablename__ = "returnfile_names"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(12))
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReturnRecordRow(Base):
    """One valid detail line. Holds ID numbers and names: core needs them; logs never do."""

    __tablename__ = "returnfile_records"

    file_sha: Mapped[str] = mapped_column(String(64), primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[str] = mapped_column(String(40))
    payer_type: Mapped[str] = mapped_column(String(1))
    payer_code: Mapped[str] = mapped_column(String(18))
    payer_name: Mapped[str] = mapped_column(String(200))
    unit_code: Mapped[str] = mapped_column(String(18))
    insutype: Mapped[str] = mapped_column(String(3))
    period: Mapped[str] = mapped_column(String(6))
    pay_base_fen: Mapped[int] = mapped_column(BigInteger)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    value_date: Mapped[str] = mapped_column(String(8))
    result: Mapped[str] = mapped_column(String(1))
    fail_reason: Mapped[str] = mapped_column(String(100))
    mode: Mapped[str] = mapped_column(String(1))

    __table_args__ = (Index("ix_returnfile_records_payer_period", "payer_code", "period"),)


class ReturnLineErrorRow(Base):
    """A reported and skipped detail line: where and why (masked), never its content."""

    __tablename__ = "returnfile_line_errors"

    file_sha: Mapped[str] = mapped_column(String(64), primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    field: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text)

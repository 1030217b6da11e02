"""Which records a bulk 补发 picks: one query over the transactions table.

A record is picked by a transaction of its subject in the given status (and
type, and ``created_at >= since``) that is still the *latest* transaction of
its record (``business_key``; for an employee ``unit_credit_code:id_number``),
one per record. A record resent once has a newer transaction, so running the
same bulk request again does not resend it a second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import aliased

from contracts.messages import ENROLL, STOP
from contracts.taxcat import ops_of
from storage.models import Transaction

__all__ = ["EMPLOYEE_TYPES", "SUBJECT_TYPES", "ResendFilter", "Target", "TxnStatus",
           "select_resend_targets", "still_latest"]

EMPLOYEE_TYPES: Final = (ENROLL, STOP)
SUBJECT_TYPES: Final[dict[str, tuple[str, ...]]] = {
    "employee": EMPLOYEE_TYPES,
    **{subject: tuple(o.msg_type for o in ops_of("submit", subject))
       for subject in ("unit", "flexible", "resident")},
}
"""The transaction types a bulk resend of each subject selects from."""

TxnStatus = Literal["received", "submitted", "retrying", "accepted", "rejected", "dead",
                    "delivered"]


class ResendFilter(BaseModel):
    """Which transactions a bulk resend picks (employee types only)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: TxnStatus
    type: str | None = Field(default=None, description="one of the subject's message types")
    since: AwareDatetime | None = Field(default=None, description="created at or after")

    @field_validator("since")
    @classmethod
    def _has_utc(cls, v: AwareDatetime | None) -> AwareDatetime | None:
        """A time the table can be compared with in UTC (one at the calendar's edge has
        none: a 422 naming ``filter.since``, not an OverflowError in the query)."""
        if v is not None:
            try:
                v.astimezone(UTC)
            except OverflowError:
                raise ValueError("is out of range: it has no UTC equivalent") from None
        return v


@dataclass(frozen=True)
class Target:
    """One record to resend, and the transaction that picked it."""

    correlation_id: str
    type: str
    business_key: str


async def select_resend_targets(engine: AsyncEngine, f: ResendFilter, limit: int,
                                subject: str = "employee") -> list[Target]:
    """Transactions matching ``f`` that are their record's latest, oldest first, one each."""
    types = SUBJECT_TYPES[subject]
    newer = aliased(Transaction)
    q = (select(Transaction.correlation_id, Transaction.type, Transaction.business_key)
         .where(Transaction.status == f.status,
                Transaction.type.in_((f.type,) if f.type else types),
                ~exists().where(newer.business_key == Transaction.business_key,
                                newer.type.in_(types),
                                newer.created_at > Transaction.created_at))
         .order_by(Transaction.created_at).limit(limit))
    if f.since is not None:
        # Stored in UTC (SQLite keeps no offset): compare in UTC.
        q = q.where(Transaction.created_at >= f.since.astimezone(UTC))
    async with engine.connect() as conn:
        rows = (await conn.execute(q)).all()
    seen: set[str] = set()
    out: list[Target] = []
    for cid, type_, key in rows:
        if key not in seen:
            seen.add(key)
            out.append(Target(cid, type_, key))
    return out


async def still_latest(engine: AsyncEngine, t: Target, subject: str = "employee") -> bool:
    """Whether ``t`` is still its record's latest transaction of the subject's types: a
    record resent since it was selected (by another job that has ended) is not again."""
    picked = (select(Transaction.created_at)
              .where(Transaction.correlation_id == t.correlation_id).scalar_subquery())
    q = (select(Transaction.correlation_id)
         .where(Transaction.business_key == t.business_key,
                Transaction.type.in_(SUBJECT_TYPES[subject]),
                Transaction.created_at > picked).limit(1))
    async with engine.connect() as conn:
        newer = (await conn.execute(q)).scalar_one_or_none()
    return newer is None

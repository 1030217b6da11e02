"""The dead-letter archive: every message parked in a DLQ, searchable and retryable.

The DLQs themselves are drained into this table by ``broker.dlq``: a queue
cannot be filtered, grouped or paged, and an operator's decision (retried,
archived) has to outlive the message. Rows keep the raw body (a retry sends
exactly those bytes back); the reason and headers are masked at rest.

SQLite stores timestamps without a zone, so every timestamp goes in as UTC
and comes out zone-aware in UTC.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.masking import mask_text, mask_value
from storage.ops_models import DeadLetterRow
from storage.times import utc, utc_now

__all__ = ["ID_HEADERS", "DeadLetter", "DeadLetterFilter", "DeadLetterGroup", "DeadLetterStore",
           "Status", "jsonable", "mask_headers"]

Status = Literal["dead", "retried", "archived"]


def jsonable(value: Any) -> Any:
    """AMQP header values (bytes, datetimes, decimals, nested tables) as plain JSON."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, datetime):
        return utc(value).isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


@dataclass(frozen=True)
class DeadLetter:
    """One archived dead letter; ``id`` is 0 until stored."""

    route: str
    queue: str
    message_id: str
    correlation_id: str
    type: str
    partner: str
    source: str
    reason_code: str
    reason: str
    attempts: int
    first_seen: datetime
    dead_at: datetime
    headers: dict[str, Any]
    body: bytes
    status: Status = "dead"
    #: How often an operator sent it back (a send that failed still counts).
    retried_count: int = 0
    updated_at: datetime = field(default_factory=utc_now)
    id: int = 0


@dataclass(frozen=True)
class DeadLetterFilter:
    """Every field narrows the selection; ``None`` means any."""

    partner: str | None = None
    type: str | None = None
    reason_code: str | None = None
    status: Status | None = None
    route: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    ids: Sequence[int] | None = None
    after_id: int | None = None

    def where(self) -> list[ColumnElement[bool]]:
        t = DeadLetterRow
        out: list[ColumnElement[bool]] = []
        for col, val in ((t.partner, self.partner), (t.type, self.type),
                         (t.reason_code, self.reason_code), (t.status, self.status),
                         (t.route, self.route)):
            if val is not None:
                out.append(col == val)
        if self.since is not None:
            out.append(t.dead_at >= utc(self.since))
        if self.until is not None:
            out.append(t.dead_at < utc(self.until))
        if self.ids is not None:
            out.append(t.id.in_(list(self.ids)))
        if self.after_id is not None:
            out.append(t.id > self.after_id)
        return out


@dataclass(frozen=True)
class DeadLetterGroup:
    """Dead letters that failed the same way: the unit an operator retries or archives."""

    reason_code: str
    reason: str
    partner: str
    type: str
    count: int
    first_dead_at: datetime
    last_dead_at: datetime


# Hub id headers: opaque hex/uuid values that the phone pattern could mangle, and
# that a retry sends on as they are. Every other header is masked at rest.
ID_HEADERS = frozenset({"x-idempotency-key", "x-causation-id", "x-entity", "x-source",
                        "x-target", "x-route", "x-attempt", "x-first-seen", "x-retry-of"})


def mask_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-able headers with personal data masked, the hub's id headers untouched."""
    return {k: v if k in ID_HEADERS else mask_value(v, k)
            for k, v in jsonable(dict(headers)).items()}


_LIMITS = {"route": 40, "queue": 120, "message_id": 64, "correlation_id": 64, "type": 80,
           "partner": 40, "source": 40, "reason_code": 40}
_REASON_MAX = 4000


def _row(d: DeadLetter) -> dict[str, Any]:
    """Column values, clipped to the column sizes: an odd message must not fail the insert."""
    row: dict[str, Any] = {k: str(getattr(d, k))[:n] for k, n in _LIMITS.items()}
    return row | {
        "reason": mask_text(d.reason)[:_REASON_MAX], "attempts": int(d.attempts),
        "first_seen": utc(d.first_seen), "dead_at": utc(d.dead_at),
        "headers": json.dumps(mask_headers(d.headers), ensure_ascii=False),
        "body": bytes(d.body), "status": d.status, "retried_count": d.retried_count,
        "updated_at": utc(d.updated_at),
    }


def _letter(m: Any) -> DeadLetter:
    try:
        headers = json.loads(m["headers"] or "{}")
    except ValueError:
        headers = {}
    return DeadLetter(
        id=m["id"], route=m["route"], queue=m["queue"], message_id=m["message_id"],
        correlation_id=m["correlation_id"], type=m["type"], partner=m["partner"],
        source=m["source"], reason_code=m["reason_code"], reason=m["reason"],
        attempts=m["attempts"], first_seen=utc(m["first_seen"]), dead_at=utc(m["dead_at"]),
        headers=headers if isinstance(headers, dict) else {}, body=bytes(m["body"]),
        status=m["status"], retried_count=m["retried_count"], updated_at=utc(m["updated_at"]))


class DeadLetterStore:
    """Reads and writes of ``dead_letters``; each call is its own short transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def add(self, letter: DeadLetter) -> int:
        """Store one dead letter; returns once committed (the archiver acks only then)."""
        async with self.engine.begin() as conn:
            res = await conn.execute(insert(DeadLetterRow).values(_row(letter))
                                     .returning(DeadLetterRow.id))
            return int(res.scalar_one())

    async def get(self, id_: int) -> DeadLetter | None:
        async with self.engine.connect() as conn:
            m = (await conn.execute(select(DeadLetterRow.__table__).where(
                DeadLetterRow.id == id_))).mappings().first()
        return _letter(m) if m else None

    async def list(self, filter: DeadLetterFilter | None = None, *, limit: int = 100,
                   offset: int = 0, oldest_first: bool = False) -> builtins.list[DeadLetter]:
        """Newest first for people; ``oldest_first`` (by id) for batch work with ``after_id``."""
        t = DeadLetterRow
        order = (t.id.asc(),) if oldest_first else (t.dead_at.desc(), t.id.desc())
        q: Select[Any] = (select(t.__table__).where(*(filter or DeadLetterFilter()).where())
                          .order_by(*order).limit(limit).offset(offset))
        async with self.engine.connect() as conn:
            return [_letter(m) for m in (await conn.execute(q)).mappings().all()]

    async def count(self, filter: DeadLetterFilter | None = None) -> int:
        q = select(func.count()).select_from(DeadLetterRow).where(
            *(filter or DeadLetterFilter()).where())
        async with self.engine.connect() as conn:
            return int((await conn.execute(q)).scalar_one())

    async def groups(self, filter: DeadLetterFilter | None = None, *,
                     limit: int = 200) -> builtins.list[DeadLetterGroup]:
        """Counts by (reason_code, reason, partner, type), biggest first; default: ``dead``."""
        t = DeadLetterRow
        flt = filter or DeadLetterFilter(status="dead")
        n = func.count().label("n")
        q = (select(t.reason_code, t.reason, t.partner, t.type, n,
                    func.min(t.dead_at), func.max(t.dead_at))
             .where(*flt.where())
             .group_by(t.reason_code, t.reason, t.partner, t.type)
             .order_by(n.desc(), t.reason_code).limit(limit))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        return [DeadLetterGroup(code, reason, partner, type_, int(count), utc(first), utc(last))
                for code, reason, partner, type_, count, first, last in rows]

    async def mark(self, ids: Iterable[int], status: Status, *,
                   only_from: Collection[Status] | None = None) -> builtins.list[int]:
        """Set ``status`` on ``ids``; returns the ids that changed.

        ``only_from`` makes it a compare-and-set, so two operators retrying the
        same rows at once send each message back only once.
        """
        wanted = sorted(set(ids))
        if not wanted:
            return []
        t = DeadLetterRow
        q = (update(t).where(t.id.in_(wanted))
             .values(status=status, updated_at=utc_now(),
                     retried_count=t.retried_count + (1 if status == "retried" else 0))
             .returning(t.id))
        if only_from is not None:
            q = q.where(t.status.in_(list(only_from)))
        async with self.engine.begin() as conn:
            return sorted(int(i) for i in (await conn.execute(q)).scalars().all())

"""Caseworker worklists: what waits for a person to act, across the flows, in one place.

Each list is a read-only query on the tables the flows already keep (no state of its
own, so nothing can drift), oldest first, paginated and counted:

    failed_syncs            transactions dead or rejected (the seed's 同步失败 提醒预警),
                            unless a later transaction of the same business key (a 补发, or
                            core's next event; a duplicate does not count) superseded it,
                            or its dead letter was archived (no retry intended) or is
                            being retried
    identity_confirmations  灵活就业终止 held by tax (TX402): cases still open
    difficulty_reviews      F7 records waiting for 初审 or 复核 (two steps, two caseworkers)
    difficulty_cases        F7: a treatment identity ended; choose which one carries it
    union_cases             F12 union cases not yet refused or archived, with their timer
    transfers_failed        F9 transfers a partner could not be told of after every retry
    refunds                 F10 orders finance failed, or with an alert (已退费 on a
                            withdrawn order)

An item is a ``WorkItem``: its kind, the subject masked, since when it waits, and the
JSON paths to look at it (``link``) and to act on it (``action``, when there is one).
A list appears only when the hub has its flow (``available``). ``WorkItem`` and
``Worklist`` are plain dataclasses; the console and ``api.worklists`` share them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Final, TypeAlias

from sqlalchemy import Select, and_, exists, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import aliased

from contracts.masking import mask_id, mask_text
from services.deps import Deps
from services.transactions import mask_business_key
from storage.confirmations import IdentityCaseRow
from storage.difficulty import DifficultyCaseRow, DifficultyRecordRow
from storage.models import Transaction
from storage.ops_models import DeadLetterRow
from storage.refunds import RefundOrderRow
from storage.times import utc
from storage.transfer import TransferRow
from storage.union import CLOSED_STATUSES, UnionCaseRow

__all__ = ["FAILED", "MAX_LIMIT", "SOURCES", "TITLES", "UnknownWorklist", "WorkItem",
           "Worklist", "available", "counts", "worklist"]

FAILED: Final = ("dead", "rejected")
"""Journal statuses of a transaction that did not get through."""

TITLES: Final[dict[str, str]] = {
    "failed_syncs": "Failed syncs to act on (dead or rejected, not resent since)",
    "identity_confirmations": "Open identity confirmations (灵活就业终止, TX402)",
    "difficulty_reviews": "F7 records waiting for 初审 or 复核",
    "difficulty_cases": "F7: choose the identity that carries the treatment",
    "union_cases": "F12 union cases open",
    "transfers_failed": "F9 transfers a partner could not be told of",
    "refunds": "F10 refund orders failed at finance or with an alert",
}
MAX_LIMIT: Final = 500
Query: TypeAlias = Select[*tuple[Any, ...]]


class UnknownWorklist(LookupError):
    """No such list in this hub (``name`` unknown, or its flow not configured)."""


@dataclass(frozen=True)
class WorkItem:
    kind: str
    ref: str
    """The item's own id (correlation id, case id, record id, application or order no)."""
    subject: str
    """Who it is about, masked (an ID number masked; a unit's credit code as it is)."""
    since: datetime
    link: str
    """The JSON path to look at it."""
    action: str = ""
    """The JSON path to act on it (POST), when there is one."""
    detail: str = ""
    """Status, reason or due date, masked."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"since": self.since.isoformat()}


@dataclass(frozen=True)
class Worklist:
    name: str
    title: str
    total: int
    limit: int
    offset: int
    items: list[WorkItem] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "total": self.total,
                "limit": self.limit, "offset": self.offset,
                "items": [i.as_dict() for i in self.items]}


@dataclass(frozen=True)
class _Source:
    query: Callable[[], Query]
    item: Callable[[dict[str, Any]], WorkItem]
    present: Callable[[Deps], bool]


# -- failed syncs --------------------------------------------------------------------------

_RESEND: Final = {"tax.employee.": "/admin/resend/employee", "tax.unit.": "/admin/resend/record",
                  "tax.flexible.": "/admin/resend/record", "tax.resident.": "/admin/resend/record"}


def _failed_query() -> Query:
    t, later = Transaction, aliased(Transaction)
    newest_dl = (select(DeadLetterRow.id).where(DeadLetterRow.correlation_id == t.correlation_id)
                 .order_by(DeadLetterRow.id.desc()).limit(1).correlate(t).scalar_subquery())
    dl_status = (select(DeadLetterRow.status)
                 .where(DeadLetterRow.correlation_id == t.correlation_id)
                 .order_by(DeadLetterRow.id.desc()).limit(1).correlate(t).scalar_subquery())
    superseded = exists().where(later.business_key == t.business_key,
                                later.created_at > t.created_at,
                                later.status != "duplicate")
    return (select(t.correlation_id, t.type, t.business_key, t.status, t.reason_code,
                   t.reason, t.updated_at, newest_dl.label("dead_letter"),
                   dl_status.label("dead_letter_status"))
            .where(t.status.in_(FAILED))
            .where(or_(t.business_key.in_(("-", "")), ~superseded))
            .where(or_(dl_status.is_(None), dl_status == "dead"))
            .order_by(t.updated_at, t.correlation_id))


def _failed_item(r: dict[str, Any]) -> WorkItem:
    cid, type_ = str(r["correlation_id"]), str(r["type"])
    if r["dead_letter"] is not None:
        link, action = f"/admin/dead-letters/{r['dead_letter']}", "/admin/dead-letters/retry"
    else:
        link = f"/transactions/{cid}"
        action = next((p for prefix, p in _RESEND.items() if type_.startswith(prefix)), "")
    reason = mask_text(f"{r['reason_code']} {r['reason']}".strip())
    return WorkItem(kind=f"sync_{r['status']}", ref=cid,
                    subject=mask_business_key(str(r["business_key"])), since=utc(r["updated_at"]),
                    link=link, action=action, detail=f"{type_}: {reason}"[:500])


# -- the flows' queues ---------------------------------------------------------------------

def _confirmations_query() -> Query:
    c = IdentityCaseRow
    return (select(c.id, c.id_number, c.reason_code, c.reason, c.created_at)
            .where(c.status == "open").order_by(c.created_at, c.id))


def _confirmation_item(r: dict[str, Any]) -> WorkItem:
    path = f"/admin/confirmations/{r['id']}"
    return WorkItem(kind="identity_confirmation", ref=str(r["id"]),
                    subject=mask_id(str(r["id_number"])), since=utc(r["created_at"]),
                    link=path, action=path,
                    detail=mask_text(f"{r['reason_code']} {r['reason']}".strip())[:500])


def _reviews_query() -> Query:
    d = DifficultyRecordRow
    return (select(d.id, d.id_number, d.status, d.department, d.change, d.identity,
                   d.updated_at)
            .where(d.status.in_(("first_review", "second_review")))
            .order_by(d.updated_at, d.id))


def _review_item(r: dict[str, Any]) -> WorkItem:
    return WorkItem(kind=str(r["status"]), ref=str(r["id"]), subject=mask_id(str(r["id_number"])),
                    since=utc(r["updated_at"]), link=f"/admin/difficulty/records/{r['id']}",
                    action="/admin/difficulty/reviews",
                    detail=f"{r['department']} {r['change']} identity {r['identity']}")


def _cases_query() -> Query:
    c = DifficultyCaseRow
    return (select(c.id, c.record_id, c.id_number, c.ended_identity, c.created_at)
            .where(c.status == "open").order_by(c.created_at, c.id))


def _case_item(r: dict[str, Any]) -> WorkItem:
    return WorkItem(kind="treatment_choice", ref=str(r["id"]),
                    subject=mask_id(str(r["id_number"])), since=utc(r["created_at"]),
                    link=f"/admin/difficulty/records/{r['record_id']}",
                    action=f"/admin/difficulty/cases/{r['id']}",
                    detail=f"identity {r['ended_identity']} ended")


def _union_query() -> Query:
    u = UnionCaseRow
    due = func.coalesce(u.archive_due, u.close_due, u.accept_due, literal(""))
    return (select(u.id, u.case_no, u.applicant_id, u.status, u.urgent, u.received_at,
                   due.label("due"))
            .where(u.status.not_in(CLOSED_STATUSES))
            .order_by(u.received_at, u.id))


def _union_item(r: dict[str, Any]) -> WorkItem:
    path = f"/admin/union/cases/{r['id']}"
    urgent = " urgent" if r["urgent"] else ""
    return WorkItem(kind=f"union_{r['status']}", ref=str(r["id"]),
                    subject=mask_id(str(r["applicant_id"])), since=utc(r["received_at"]),
                    link=path, action=path,
                    detail=f"case {r['case_no']}{urgent}, due {r['due'] or '-'}")


def _transfers_query() -> Query:
    t = TransferRow
    return (select(t.application_no, t.id_number, t.direction, t.reason_code, t.reason,
                   t.updated_at)
            .where(t.status == "failed").order_by(t.updated_at, t.application_no))


def _transfer_item(r: dict[str, Any]) -> WorkItem:
    no = str(r["application_no"])
    return WorkItem(kind="transfer_failed", ref=no, subject=mask_id(str(r["id_number"])),
                    since=utc(r["updated_at"]), link=f"/admin/transfers/{no}",
                    action=f"/admin/transfers/{no}/resend",
                    detail=mask_text(f"{r['direction']} {r['reason_code']} "
                                     f"{r['reason']}".strip())[:500])


def _refunds_query() -> Query:
    o = RefundOrderRow
    return (select(o.order_no, o.status, o.payer_kind, o.payer, o.amount, o.alert, o.reason,
                   o.updated_at)
            .where(or_(o.status == "failed", and_(o.alert != "", o.alert.is_not(None))))
            .order_by(o.updated_at, o.order_no))


def _refund_item(r: dict[str, Any]) -> WorkItem:
    no, alert = str(r["order_no"]), str(r["alert"] or "")
    payer = mask_id(str(r["payer"])) if r["payer_kind"] == "person" else str(r["payer"])
    return WorkItem(kind="refund_alert" if alert else "refund_failed", ref=no, subject=payer,
                    since=utc(r["updated_at"]), link=f"/admin/refunds/orders/{no}",
                    detail=mask_text(f"{r['status']} {r['amount']}: {alert or r['reason']}")[:500])


SOURCES: Final[dict[str, _Source]] = {
    "failed_syncs": _Source(_failed_query, _failed_item, lambda d: True),
    "identity_confirmations": _Source(_confirmations_query, _confirmation_item,
                                      lambda d: d.confirmations is not None),
    "difficulty_reviews": _Source(_reviews_query, _review_item,
                                  lambda d: d.difficulty is not None),
    "difficulty_cases": _Source(_cases_query, _case_item, lambda d: d.difficulty is not None),
    "union_cases": _Source(_union_query, _union_item, lambda d: d.union is not None),
    "transfers_failed": _Source(_transfers_query, _transfer_item,
                                lambda d: d.transfers is not None),
    "refunds": _Source(_refunds_query, _refund_item, lambda d: d.refunds is not None),
}


def available(deps: Deps) -> list[str]:
    """The lists this hub has (its flows configured), in a fixed order."""
    return [name for name, src in SOURCES.items() if src.present(deps)]


async def _count(engine: AsyncEngine, q: Query) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(
            select(func.count()).select_from(q.order_by(None).subquery()))).scalar_one())


async def counts(deps: Deps) -> dict[str, int]:
    """Items per list, for every list this hub has."""
    engine = deps.journal.engine
    return {name: await _count(engine, SOURCES[name].query()) for name in available(deps)}


async def worklist(deps: Deps, name: str, *, limit: int = 50, offset: int = 0) -> Worklist:
    """One page of list ``name``, oldest first; ``UnknownWorklist`` when this hub has no
    such list."""
    if name not in available(deps):
        raise UnknownWorklist(name)
    src, engine = SOURCES[name], deps.journal.engine
    limit, offset = max(1, min(limit, MAX_LIMIT)), max(0, offset)
    q = src.query()
    async with engine.connect() as conn:
        rows = (await conn.execute(q.limit(limit).offset(offset))).mappings().all()
    return Worklist(name=name, title=TITLES[name], total=await _count(engine, q), limit=limit,
                    offset=offset, items=[src.item(dict(r)) for r in rows])

"""The audit log: who did what to which target, when, and how it ended.

Every operator action on the admin API is written here, refused ones too
(outcome ``forbidden``), so a retry of a thousand dead letters or a poke at an
endpoint outside one's role can be traced to a person. Details are masked
before they are stored: an edited ID number must not leak through the audit.
"""

from __future__ import annotations

import builtins
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.masking import mask_value
from storage.deadletters import jsonable
from storage.ops_models import AuditRow
from storage.times import utc

__all__ = ["AuditEntry", "AuditLog"]

_DETAIL_MAX = 16_000


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    role: str
    action: str
    target: str
    detail: dict[str, Any]
    outcome: str


class AuditLog:
    """Append-only: there is no update or delete."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def record(self, actor: str, role: str, action: str, target: str,
                     detail: dict[str, Any] | None = None, outcome: str = "ok") -> int:
        """Write one entry (committed on return); returns its id."""
        text = json.dumps(mask_value(jsonable(detail or {})), ensure_ascii=False)
        if len(text) > _DETAIL_MAX:
            text = json.dumps({"truncated": True, "head": text[:_DETAIL_MAX - 100]},
                              ensure_ascii=False)
        row = {"at": datetime.now(UTC), "actor": actor[:80], "role": role[:20],
               "action": action[:80], "target": target[:200], "detail": text,
               "outcome": outcome[:20]}
        async with self.engine.begin() as conn:
            res = await conn.execute(insert(AuditRow).values(row).returning(AuditRow.id))
            return int(res.scalar_one())

    async def list(self, *, actor: str | None = None, action: str | None = None,
                   outcome: str | None = None, since: datetime | None = None,
                   until: datetime | None = None, limit: int = 100,
                   offset: int = 0) -> builtins.list[AuditEntry]:
        """Newest first."""
        t = AuditRow
        where: builtins.list[ColumnElement[bool]] = [
            col == val for col, val in ((t.actor, actor), (t.action, action),
                                        (t.outcome, outcome)) if val is not None]
        if since is not None:
            where.append(t.at >= utc(since))
        if until is not None:
            where.append(t.at < utc(until))
        q = (select(t.__table__).where(*where).order_by(t.id.desc())
             .limit(limit).offset(offset))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).mappings().all()
        out = []
        for m in rows:
            try:
                detail = json.loads(m["detail"] or "{}")
            except ValueError:
                detail = {"raw": m["detail"]}
            out.append(AuditEntry(id=m["id"], at=utc(m["at"]), actor=m["actor"], role=m["role"],
                                  action=m["action"], target=m["target"],
                                  detail=detail if isinstance(detail, dict) else {"value": detail},
                                  outcome=m["outcome"]))
        return out

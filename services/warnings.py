"""F8 高额费用预警: run a month, show where it stands, 补发 one department's list.

A run (``run``) is resumable and idempotent per month:

1. the lines of the month's year (``settings.warnings.years``; none: refused);
2. core's yearly 个人自付 up to that month (H1107);
3. the lists (``jobs.warnings.compute``), recorded once per department+month+person
   (``WarningStore.add`` keeps rows already there, whatever core says now);
4. every row still ``pending`` is published to its department's lane and marked
   ``queued``. A run stopped between 3 and 4 publishes the rest next time; a row
   published twice (two runs racing, a crash after publishing) carries the same
   idempotency key and serial, which Redis and the department absorb.

So the second run of a month publishes nothing. ``resend`` (补发, caseworker) puts a
department's rows of a month on its lane again, salted with the resend id (a new
attempt on purpose) under the same serial: a department that has the record
replays its acknowledgement, one that lost it takes it.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from adapters.core.port import CorePort
from config.warnings import WarningSettings
from contracts.envelope import HubMessage
from contracts.errors import ValidationFailed
from contracts.warnings import (
    DEPARTMENTS,
    ExpenseWarning,
    SelfPaid,
    parse_month,
    warning_message,
)
from jobs.warnings import compute
from kernel.deps import Publisher
from storage.audit import AuditLog
from storage.warnings import WarningStore, masked_row

__all__ = ["WarningRuns", "message_of"]

log = logging.getLogger("hub.warnings")


def message_of(row: dict[str, Any], *, salt: str = "") -> HubMessage:
    """The lane message of a stored row: rebuilt from the payload it was recorded with."""
    payload = json.loads(row["payload"])
    w = ExpenseWarning(department=row["department"], month=row["month"],
                       person=SelfPaid.model_validate(payload["person"]),
                       kinds=tuple(payload["kinds"]), line=payload["line"])
    msg = warning_message(w, salt=salt)
    if salt:
        return msg.model_copy(update={"payload": msg.payload | {"resend": int(row["resends"])
                                                                + 1}})
    return msg


@dataclass
class WarningRuns:
    """The F8 desk behind ``api.warnings`` and ``tools.warnings_cli``."""

    store: WarningStore
    core: CorePort
    publisher: Publisher
    settings: WarningSettings
    audit: AuditLog | None = None

    async def run(self, month: str, actor: str = "system", role: str = "") -> dict[str, Any]:
        year, _ = parse_month(month)
        lines = self.settings.lines(year)
        if lines is None:
            raise ValidationFailed([("month", f"no warning lines for {year}: set "
                                              f"[warnings.years.\"{year}\"]")])
        await self.store.start_run(month, actor)
        try:
            people = await self.core.yearly_self_paid(year, month)
            warnings = compute(month, people, lines, self.settings.departments)
            new = await self.store.add(warnings)
            published = await self._publish(await self.store.rows(month, statuses=("pending",)))
        except Exception:
            await self.store.fail_run(month)
            raise
        await self.store.finish_run(month, people=len({p.id_number for p in people}),
                                    warnings=len(warnings), published=published)
        if self.audit is not None:
            await self.audit.record(actor, role, "warnings.run", month,
                                    {"warnings": len(warnings), "new": new,
                                     "published": published})
        log.info("F8 run %s: %d people, %d warnings, %d new, %d published", month,
                 len(people), len(warnings), new, published)
        return {"month": month, "people": len(people), "warnings": len(warnings), "new": new,
                "published": published}

    async def _publish(self, rows: list[dict[str, Any]]) -> int:
        """Publish each pending row, then mark it queued; returns how many were published.

        The lane may take a row (and move it past ``queued``) before the mark: the row was
        published all the same, so it counts whether or not the mark applied."""
        for row in rows:
            await self.publisher.publish(message_of(row))
            await self.store.move(row["id"], expect=("pending",), status="queued")
        return len(rows)

    async def status(self, month: str, *, detail: bool = False,
                     department: str | None = None) -> dict[str, Any] | None:
        run = await self.store.run(month)
        if run is None:
            return None
        summary = await self.store.summary(month)
        out: dict[str, Any] = {"run": run, "departments": summary,
                               "acknowledged": sum(s.get("acknowledged", 0)
                                                   for s in summary.values()),
                               "total": sum(sum(s.values()) for s in summary.values())}
        if detail:
            out["warnings"] = [masked_row(r) for r in await self.store.rows(
                month, department=department, limit=1000)]
        return out

    async def resend(self, month: str, department: str, actor: str,
                     role: str = "caseworker", *, only_unacknowledged: bool = False
                     ) -> dict[str, Any]:
        """补发: a department's list of ``month`` on its lane again (every row, or only rows
        the department has not acknowledged)."""
        parse_month(month)
        if department not in DEPARTMENTS:
            raise ValidationFailed([("department", f"unknown department {department!r}")])
        statuses = ("pending", "queued", "rejected", "dead") if only_unacknowledged else None
        rows = await self.store.rows(month, department=department, statuses=statuses)
        resend_id = uuid.uuid4().hex
        for row in rows:
            await self.publisher.publish(message_of(row, salt=f"resend:{resend_id}"))
            if row["status"] != "acknowledged":
                await self.store.move(row["id"], expect=(row["status"],), status="queued",
                                      resend=True)
        if self.audit is not None:
            await self.audit.record(actor, role, "warnings.resend", f"{month}/{department}",
                                    {"resend_id": resend_id, "rows": len(rows)})
        return {"month": month, "department": department, "resend_id": resend_id,
                "resent": len(rows)}

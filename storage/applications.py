"""The application store (flow F1): one row per channel application, race-safe on repeats.

``create`` inserts or finds: ``(channel, request_id)`` is unique and the
insert does nothing on a conflict, so two identical requests racing on two
replicas still make one application, and both callers get the same row.
``set_status`` only moves forward (received -> validated -> registered ->
synced -> completed | rejected) and never overwrites a final status, so a
late or redelivered step cannot undo a result the channel was already told;
it is a compare-and-set on the current status (and recorded tax serials),
retried when another writer got there first.

The payload is stored masked (``mask_payload``); the hash of the unmasked
payload tells a true repeat from a request id reused for something else.
SQLite gives timestamps back without a zone; every timestamp is UTC.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Final

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.envelope import canonical_json, new_id
from contracts.masking import mask_id, mask_name, mask_text, mask_value
from storage.application_models import (
    FINAL_STATUSES,
    STATUSES,
    ApplicationPartRow,
    ApplicationRow,
)
from storage.times import as_utc, utc_now

__all__ = ["FINAL_STATUSES", "STATUSES", "ApplicationStore", "mask_payload", "payload_hash"]

_RANK: Final = {"received": 0, "validated": 1, "awaiting_review": 2, "registered": 3,
                "synced": 4, "completed": 5, "rejected": 5}
_ID_LIKE: Final = frozenset({"temp_id_number", "unemployment_cert_no", "veteran_cert_no"})
_ADDRESSES: Final = frozenset({"household_address", "residence_address"})
_CAS_TRIES: Final = 5
_PART_FIELDS: Final = ("status", "reason_code", "reason_field", "reason_text", "accept_no")


def mask_payload(value: Any, key: str = "") -> Any:
    """``contracts.masking`` plus the application's own personal fields.

    Temporary IDs embed the mother's ID, certificate numbers and a unit's legal
    representative name a person, addresses keep their district only, birth
    dates their year only (the masked ID number hides the birth date; the
    payload must not give it back).
    """
    if isinstance(value, dict):
        return {k: mask_payload(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_payload(v, key) for v in value]
    if isinstance(value, str):
        if key in _ID_LIKE:
            return mask_id(value)
        if key in _ADDRESSES:
            return value[:6] + "***"
        if key == "birth_date":
            return value[:4] + "-**-**"
        if key == "legal_rep":
            return mask_name(value)
    return mask_value(value, key)


def payload_hash(app_type: str, payload: dict[str, Any]) -> str:
    """SHA-256 of the type and the unmasked payload: the same request, or not."""
    return hashlib.sha256(canonical_json({"type": app_type, "payload": payload}).encode()
                          ).hexdigest()


def _as_dict(row: Any) -> dict[str, Any]:
    d = dict(row)
    d["payload_masked"] = json.loads(d["payload_masked"] or "{}")
    d["tax_serials"] = json.loads(d["tax_serials"] or "[]")
    d["parts"] = json.loads(d["parts"] or "{}")
    for k in ("created_at", "updated_at", "completed_at"):
        d[k] = as_utc(d[k])
    return d


def _status_values(status: str, reason_field: str | None, reason: str | None,
                   core_ref: str | None, parts: dict[str, Any] | None) -> dict[str, Any]:
    """The columns a status change writes (only what is given, besides the times)."""
    now = utc_now()
    values: dict[str, Any] = {"status": status, "updated_at": now,
                              "completed_at": now if status in FINAL_STATUSES else None}
    if reason_field is not None:
        values["reason_field"] = reason_field[:120]
    if reason is not None:
        values["reason"] = mask_text(reason)
    if core_ref is not None:
        values["core_ref"] = core_ref[:64]
    if parts is not None:
        values["parts"] = json.dumps(parts, ensure_ascii=False, default=str)
    return values


class ApplicationStore:
    """Async store of channel applications on any SQLAlchemy async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._insert = (postgresql.insert if engine.dialect.name == "postgresql"
                        else sqlite.insert)

    async def create(self, channel: str, request_id: str, type: str, payload: dict[str, Any],
                     *, status: str = "received") -> tuple[dict[str, Any], bool]:
        """``(row, True)`` for a new application, ``(first row, False)`` for a repeat."""
        if status not in _RANK:
            raise ValueError(f"unknown status {status!r}")
        for _ in range(3):
            now = utc_now()
            row = {"id": new_id(), "channel": channel, "request_id": request_id, "type": type,
                   "status": status, "reason_field": "", "reason": "",
                   "payload_masked": json.dumps(mask_payload(payload), ensure_ascii=False),
                   "payload_hash": payload_hash(type, payload), "core_ref": "",
                   "tax_serials": "[]", "parts": "{}", "created_at": now, "updated_at": now,
                   "completed_at": now if status in FINAL_STATUSES else None}
            stmt = (self._insert(ApplicationRow).values(row).on_conflict_do_nothing()
                    .returning(ApplicationRow.id))
            async with self.engine.begin() as conn:
                inserted = (await conn.execute(stmt)).first()
            if inserted is not None:
                return _as_dict(row), True
            existing = await self.get_by_request(channel, request_id)
            if existing is not None:
                return existing, False
            # the conflict was on the generated id (practically never): try a new one
        raise RuntimeError("could not store the application: id conflicts")  # pragma: no cover

    async def _one(self, *where: Any) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(ApplicationRow.__table__).where(*where))
                   ).mappings().first()
        return _as_dict(row) if row else None

    async def get(self, app_id: str) -> dict[str, Any] | None:
        return await self._one(ApplicationRow.id == app_id)

    async def get_for_channel(self, channel: str, app_id: str) -> dict[str, Any] | None:
        """Only ``channel``'s own application: another channel's is as good as absent."""
        return await self._one(ApplicationRow.id == app_id, ApplicationRow.channel == channel)

    async def get_by_request(self, channel: str, request_id: str) -> dict[str, Any] | None:
        return await self._one(ApplicationRow.channel == channel,
                               ApplicationRow.request_id == request_id)

    async def set_parts(self, app_id: str, parts: dict[str, Any]) -> None:
        """Replace the pipeline's part bookkeeping (expected submits, results so far).

        The pipeline serializes one application's results (ordering gate), so a
        plain overwrite is enough here.
        """
        async with self.engine.begin() as conn:
            await conn.execute(update(ApplicationRow).where(ApplicationRow.id == app_id)
                               .values(parts=json.dumps(parts, ensure_ascii=False,
                                                        default=str),
                                       updated_at=utc_now()))

    async def record_part(self, app_id: str, correlation_id: str,
                          result: dict[str, Any]) -> int:
        """Record one part's result (a repeat of the same part changes nothing) and return
        how many parts of ``app_id`` have a result now. One statement each, no read-modify-
        write: parts of one application never wait for each other."""
        fields = {k: str(result.get(k) or "") for k in _PART_FIELDS}
        fields["reason_text"] = mask_text(fields["reason_text"])
        row = {"app_id": app_id, "correlation_id": correlation_id[:64], "at": utc_now(),
               **fields}
        async with self.engine.begin() as conn:
            await conn.execute(self._insert(ApplicationPartRow).values(row)
                               .on_conflict_do_nothing())
            n = (await conn.execute(select(func.count()).select_from(ApplicationPartRow)
                                    .where(ApplicationPartRow.app_id == app_id))).scalar_one()
        return int(n)

    async def part_results(self, app_id: str) -> dict[str, dict[str, str]]:
        """Every recorded part of ``app_id``: correlation id -> result fields."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(ApplicationPartRow.__table__).where(
                ApplicationPartRow.app_id == app_id))).mappings().all()
        return {r["correlation_id"]: {k: r[k] for k in _PART_FIELDS} for r in rows}

    async def claim_final(self, app_id: str, by: str) -> bool:
        """Whether ``by`` (a message's idempotency key) is the one to push the final result.

        The first claimer wins; the same claimer asking again (its message redelivered
        after a crash) still wins, so a claimed push is never lost."""
        async with self.engine.begin() as conn:
            await conn.execute(update(ApplicationRow).where(
                ApplicationRow.id == app_id, ApplicationRow.final_by.is_(None))
                .values(final_by=by[:200]))
            owner = (await conn.execute(select(ApplicationRow.final_by).where(
                ApplicationRow.id == app_id))).scalar_one_or_none()
        return owner == by[:200]

    async def _advance(self, app_id: str, status: str, *, reason_field: str | None,
                       reason: str | None, core_ref: str | None,
                       parts: dict[str, Any] | None) -> bool:
        """The pipeline's common case in one statement: move forward from any earlier,
        non-final status (the WHERE clause is the rule, so no read is needed)."""
        values = _status_values(status, reason_field, reason, core_ref, parts)
        earlier = [s for s, rank in _RANK.items()
                   if rank <= _RANK[status] and s not in FINAL_STATUSES]
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(ApplicationRow)
                .where(ApplicationRow.id == app_id, ApplicationRow.status.in_(earlier))
                .values(**values))
        return bool(result.rowcount == 1)

    async def count(self, channel: str | None = None) -> int:
        q = select(func.count()).select_from(ApplicationRow)
        if channel is not None:
            q = q.where(ApplicationRow.channel == channel)
        async with self.engine.connect() as conn:
            return int((await conn.execute(q)).scalar_one())

    async def set_status(self, app_id: str, status: str, *, reason_field: str | None = None,
                         reason: str | None = None, core_ref: str | None = None,
                         tax_serials: list[str] | None = None,
                         parts: dict[str, Any] | None = None,
                         only_if_not_final: bool = True) -> bool:
        """Move ``app_id`` to ``status``; False when absent, final or already further on.

        With ``only_if_not_final`` (the default) a status only moves forward and
        a final one stays; ``False`` is for an operator's correction.
        ``tax_serials`` are added to the ones recorded (duplicates ignored);
        ``parts`` replaces the pipeline's bookkeeping in the same statement.
        """
        if status not in _RANK:
            raise ValueError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
        if tax_serials is None and only_if_not_final:
            return await self._advance(app_id, status, reason_field=reason_field,
                                       reason=reason, core_ref=core_ref, parts=parts)
        for _ in range(_CAS_TRIES):
            async with self.engine.begin() as conn:
                current = (await conn.execute(
                    select(ApplicationRow.status, ApplicationRow.tax_serials)
                    .where(ApplicationRow.id == app_id).with_for_update())).first()
                if current is None:
                    return False
                if only_if_not_final and (current.status in FINAL_STATUSES
                                          or _RANK[status] < _RANK[current.status]):
                    return False
                values = _status_values(status, reason_field, reason, core_ref, parts)
                if tax_serials:
                    known: list[str] = json.loads(current.tax_serials or "[]")
                    values["tax_serials"] = json.dumps(
                        known + [s for s in dict.fromkeys(tax_serials) if s not in known])
                result = await conn.execute(
                    update(ApplicationRow)
                    .where(ApplicationRow.id == app_id,
                           ApplicationRow.status == current.status,
                           ApplicationRow.tax_serials == current.tax_serials)
                    .values(**values))
                if result.rowcount == 1:
                    return True
        return False  # pragma: no cover  (lost the race _CAS_TRIES times)

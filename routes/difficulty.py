"""F7 困难人员: the lanes after 复核 (seed 003 lines 1482, 1527, 1532).

    assistance.push      an approved record to the 医疗救助平台 (1527)
    core.difficulty      进入/退出 of the identity to core in real time (1482, H4001),
                         ordered per person by the entity gate
    difficulty.<dept>    救助待遇标识同步情况 back to the department (1532), partner
                         ``difficulty_<dept>``

Core's answer decides what the department hears: synced when core took the
进入/退出, refused with the reason when core refused it or it was given up on. A
failed sync (refused, or dead-lettered after its retries) raises an alert (提醒预警:
an error log line ``ALERT 提醒预警``) and is written to the 同步日志
(``storage.difficulty``); so is a failed push to the platform. Everything the
caseworkers did before (比对, 初审, 复核) is in ``services.difficulty``.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any, Final, Protocol

from adapters.core.port import CorePort
from adapters.difficulty.port import DifficultyPort
from contracts.difficulty import (
    ASSISTANCE,
    CORE_SYNC,
    DEPARTMENTS,
    PLATFORM_PUSH,
    STATUS_PREFIX,
    partner_of,
    status_message,
    status_type,
)
from contracts.envelope import HubMessage
from contracts.errors import ClientError, HubError, PermanentError
from contracts.masking import mask_text
from contracts.messages import partner_serial
from kernel.runtime import Outcome, Route
from storage.journal import TxnUpdate

__all__ = ["CORE_LANE", "CORE_ROUTE", "DIFFICULTY_ROUTES", "PLATFORM_LANE", "PLATFORM_ROUTE",
           "STATUS_ROUTES", "DifficultyDeps", "DifficultyRecords", "core_failed",
           "platform_failed", "platform_payload", "push_status", "push_to_platform",
           "status_outputs", "status_payload", "sync_payload", "sync_to_core"]

log = logging.getLogger("hub.difficulty")

PLATFORM_LANE: Final = "assistance.push"
CORE_LANE: Final = "core.difficulty"


class DifficultyRecords(Protocol):
    """The part of ``storage.difficulty.DifficultyStore`` the lanes use."""

    async def set_status(self, record_id: str, status: str, *, expect: tuple[str, ...],
                         reason: str | None = None) -> bool: ...

    async def set_platform(self, record_id: str, status: str) -> None: ...

    async def log_sync(self, record_id: str, *, target: str, action: str, id_number: str,
                       identity: str, ok: bool, reason: str = "") -> None: ...


class DifficultyDeps(Protocol):
    """``routes.difficulty``: core, the F7 partners and the F7 store."""

    @property
    def core(self) -> CorePort: ...
    @property
    def difficulty(self) -> DifficultyRecords | None: ...
    @property
    def difficulty_partners(self) -> DifficultyPort | None: ...


def _iso(value: object) -> str:
    return value.isoformat() if isinstance(value, date) else str(value or "")


def platform_payload(rec: dict[str, Any], list_ref: str) -> dict[str, Any]:
    """What the platform gets of an approved record."""
    return {"record_id": rec["id"], "list_ref": list_ref, "row": rec["row_no"],
            "department": rec["department"], "change": rec["change"],
            "action": "enter" if rec["change"] == "add" else "exit",
            "identity": rec["identity"], "id_number": rec["id_number"], "name": rec["name"],
            "start_date": _iso(rec["start_date"]), "end_date": _iso(rec["end_date"]),
            "phone": rec.get("phone") or "", "source": rec.get("source") or "1",
            "comparison": rec.get("comparison") or ""}


def sync_payload(rec: dict[str, Any], list_ref: str, *, primary: bool,
                 case_id: str = "") -> dict[str, Any]:
    """进入/退出 of ``rec``'s identity for core; ``case_id`` when a caseworker's choice
    (1487) moves the treatment to another identity (no department hears of it)."""
    out = platform_payload(rec, list_ref) | {"primary": primary}
    if case_id:
        out |= {"case_id": case_id, "action": "enter"}
    return out


def status_payload(rec: dict[str, Any], list_ref: str, status: str,
                   reason: str = "") -> dict[str, Any]:
    """One record's 救助待遇标识同步情况 for its department."""
    return {"record_id": rec.get("record_id") or rec["id"], "list_ref": list_ref,
            "row": rec.get("row") or rec.get("row_no"), "department": rec["department"],
            "id_number": rec["id_number"], "identity": rec["identity"],
            "change": rec["change"], "status": status, "reason": reason[:500]}


def status_outputs(payload: dict[str, Any], status: str,
                   reason: str = "") -> tuple[HubMessage, ...]:
    """The status message of a record, for a department's record (not a case choice, not
    the bureau's own registration)."""
    if payload.get("case_id") or payload.get("department") not in DEPARTMENTS:
        return ()
    return (status_message(str(payload["department"]), status_payload(
        payload, str(payload.get("list_ref") or ""), status, reason)),)


def _partners(deps: DifficultyDeps, partner: str) -> DifficultyPort:
    if deps.difficulty_partners is None:
        raise ClientError("this hub has no F7 partner client", partner=partner)
    return deps.difficulty_partners


def _txn(msg: HubMessage, status: str, exc: HubError | None = None) -> TxnUpdate:
    return TxnUpdate(msg.correlation_id, msg.type, str(msg.payload.get("record_id") or "-"),
                     msg.source, status, exc.public_code if exc else "",
                     exc.public_text if exc else "", attempts=msg.attempt + 1)


def _detail(msg: HubMessage) -> dict[str, Any]:
    p = msg.payload
    return {"record_id": p.get("record_id"), "action": p.get("action"),
            "identity": p.get("identity"), "department": p.get("department")}


async def _log(deps: DifficultyDeps, msg: HubMessage, target: str, ok: bool,
               reason: str = "") -> None:
    if deps.difficulty is None:
        return
    p = msg.payload
    await deps.difficulty.log_sync(str(p.get("record_id") or ""), target=target,
                                   action=str(p.get("action") or ""),
                                   id_number=str(p.get("id_number") or ""),
                                   identity=str(p.get("identity") or ""), ok=ok, reason=reason)


def _alert(msg: HubMessage, target: str, exc: HubError) -> None:
    log.error("ALERT 提醒预警: F7 %s of record %s to %s failed: %s",
              msg.payload.get("action"), msg.payload.get("record_id"), target,
              mask_text(exc.public_text))


async def push_to_platform(msg: HubMessage, deps: DifficultyDeps) -> Outcome:
    await _partners(deps, ASSISTANCE).push_assistance(msg.payload, serial=partner_serial(msg))
    if deps.difficulty is not None:
        await deps.difficulty.set_platform(str(msg.payload["record_id"]), "delivered")
    await _log(deps, msg, "assistance", True)
    return Outcome(txn=_txn(msg, "delivered"), detail=_detail(msg))


async def platform_failed(msg: HubMessage, exc: HubError, deps: DifficultyDeps) -> Outcome:
    """The platform refused the push or could not be reached in time: alert, 同步日志."""
    _alert(msg, "assistance", exc)
    if deps.difficulty is not None:
        await deps.difficulty.set_platform(str(msg.payload.get("record_id") or ""), "failed")
    await _log(deps, msg, "assistance", False, exc.public_text)
    return Outcome(txn=_txn(msg, "rejected" if isinstance(exc, PermanentError) else "dead",
                            exc))


async def sync_to_core(msg: HubMessage, deps: DifficultyDeps) -> Outcome:
    """H4001 to core; the record is synced and its department hears so."""
    await deps.core.sync_difficulty(msg.payload, serial=partner_serial(msg))
    rid = str(msg.payload["record_id"])
    if deps.difficulty is not None and not msg.payload.get("case_id"):
        await deps.difficulty.set_status(rid, "synced", expect=("approved", "sync_failed"),
                                         reason="")
    await _log(deps, msg, "core", True)
    return Outcome(outputs=status_outputs(msg.payload, "synced"), txn=_txn(msg, "delivered"),
                   detail=_detail(msg))


async def core_failed(msg: HubMessage, exc: HubError, deps: DifficultyDeps) -> Outcome:
    """Core refused the 进入/退出, or it was given up on: alert, 同步日志, the record
    ``sync_failed`` and its department told ``refused`` with the reason."""
    _alert(msg, "core", exc)
    reason = f"{exc.public_code}: {exc.public_text}"
    if deps.difficulty is not None and not msg.payload.get("case_id"):
        await deps.difficulty.set_status(str(msg.payload.get("record_id") or ""), "sync_failed",
                                         expect=("approved",), reason=reason)
    await _log(deps, msg, "core", False, reason)
    return Outcome(outputs=status_outputs(msg.payload, "refused", reason),
                   txn=_txn(msg, "rejected" if isinstance(exc, PermanentError) else "dead",
                            exc))


async def push_status(msg: HubMessage, deps: DifficultyDeps) -> Outcome:
    department = msg.type.removeprefix(STATUS_PREFIX)
    await _partners(deps, partner_of(department)).push_status(department, msg.payload,
                                                  serial=partner_serial(msg))
    return Outcome(txn=_txn(msg, "delivered"),
                   detail={"record_id": msg.payload.get("record_id"),
                           "status": msg.payload.get("status")})


PLATFORM_ROUTE: Final = Route(PLATFORM_LANE, (PLATFORM_PUSH,), ASSISTANCE, push_to_platform,
                              platform_failed)
CORE_ROUTE: Final = Route(CORE_LANE, (CORE_SYNC,), "core", sync_to_core, core_failed)
STATUS_ROUTES: Final = tuple(Route(f"difficulty.{d}", (status_type(d),), partner_of(d),
                                   push_status) for d in DEPARTMENTS)
DIFFICULTY_ROUTES: Final[tuple[Route, ...]] = (PLATFORM_ROUTE, CORE_ROUTE, *STATUS_ROUTES)

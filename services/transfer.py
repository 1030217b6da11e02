"""F9 转移接续: the ways in that the hub drives (the platform pull, the window) and the
caseworker's view by application number.

    pull      the national platform's applications after the durable cursor, page by page
              (T2401): each one checked (bad ones refused with field and reason, and the
              platform told), stored once by its number, handed to ``transfer.intake``;
              the cursor moves past a page only once its applications are stored. Run by
              the hub's ticker (``settings.transfer.pull_s``) and on demand.
    enter     a caseworker's window (offline) application (1839).
    get       one transfer by application number with its history, masked.
    resend    补发 of a decided transfer's current status to the platform and/or core,
              salted by the caller's ``resend_id`` (issue 12).

我的南京's ``transfer_out`` comes in through the channel door (F1) and is handed to the same
lane by the channel intake (``routes.channels``). Seed lines: ``contracts/TRANSFER.md``.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from adapters.transfer.port import TransferPlatformPort
from config.transfer import TransferSettings
from contracts.clock import today_beijing
from contracts.envelope import HubMessage, idempotency_key
from contracts.errors import HubError
from contracts.masking import mask_text
from contracts.transfer import (
    Refusal,
    TransferApplication,
    check_application,
    check_application_no,
    core_status_message,
    from_wire,
    intake_message,
    platform_status_message,
    status_payload,
    to_wire,
)
from kernel.deps import Publisher
from services.audit import Actor, Audit, Caller
from storage.transfer import TransferStore, masked

__all__ = ["RESEND_TARGETS", "SCHEDULER", "PullResult", "ResendTarget", "TransferDesk"]

log = logging.getLogger("hub.transfer")

SCHEDULER: Final = Caller("scheduler", "system")
"""The actor of the scheduled pull in the audit log."""

ResendTarget = Literal["platform", "core"]
RESEND_TARGETS: Final[tuple[ResendTarget, ...]] = ("platform", "core")
"""Where a 补发 can go: the national platform (T2402) and core (H4201)."""


@dataclass
class PullResult:
    """What one pull did: pages read, applications new, seen before, refused; the cursor
    it left; ``error`` when the platform failed (the cursor stays where it was)."""

    pages: int = 0
    items: int = 0
    new: int = 0
    duplicates: int = 0
    refused: int = 0
    cursor: str = ""
    more: bool = False
    error: str = ""
    refusals: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"pages": self.pages, "items": self.items, "new": self.new,
                "duplicates": self.duplicates, "refused": self.refused, "cursor": self.cursor,
                "more": self.more, "error": self.error, "refusals": self.refusals[:50]}


def _refusal_dicts(refused: list[Refusal]) -> list[dict[str, str]]:
    return [{"field": r.field, "reason": mask_text(r.reason)} for r in refused]


@dataclass(frozen=True)
class TransferDesk:
    store: TransferStore
    publisher: Publisher
    settings: TransferSettings
    platform: TransferPlatformPort | None = None
    audit: Audit | None = None

    # ------------------------------------------------------------ the platform pull

    async def pull(self, actor: Actor = SCHEDULER) -> PullResult:
        """Read the platform's new applications from the stored cursor on."""
        out = PullResult(cursor=await self.store.cursor())
        if self.platform is None:
            out.error = "partners.transfer is not configured"
            return out
        for _ in range(self.settings.max_pages):
            cursor = out.cursor
            try:
                page = await self.platform.pull(cursor, self.settings.page_size)
            except HubError as exc:
                out.error = f"{exc.public_code}: {exc.public_text}"
                log.warning("F9 pull stopped at cursor %r: %s", cursor, out.error)
                break
            out.pages += 1
            for item in page.items:
                await self._take(item, out)
            if not await self.store.set_cursor(page.next_cursor, len(page.items),
                                               expect=cursor):
                out.error = "another pull moved the cursor meanwhile"
                break
            out.cursor, out.more = page.next_cursor, page.more
            if not page.more:
                break
        if self.audit is not None and (out.items or out.error or actor is not SCHEDULER):
            await self.audit.record(actor.user, actor.role, "transfer_pull", out.cursor,
                                    {k: v for k, v in out.as_dict().items()
                                     if k != "refusals"}, "failed" if out.error else "ok")
        return out

    async def pull_tick(self) -> None:
        """The scheduled pull (the hub's ticker, every ``settings.transfer.pull_s``)."""
        await self.pull(SCHEDULER)

    async def _take(self, item: Mapping[str, Any], out: PullResult) -> None:
        """One application of a page: refused (the platform hears why), or stored once and
        handed to the intake lane while it waits there (a repeat is not processed again:
        the intake message is one fact per application number)."""
        out.items += 1
        values = from_wire(item)
        no = str(item.get("aply_no") or "")
        got = check_application(values)
        if isinstance(got, list):
            out.refused += 1
            out.refusals.append({"application_no": no, "refused": _refusal_dicts(got)})
            if check_application_no(no) is not None:
                log.warning("F9 pulled an application without a usable number: %s",
                            mask_text(str(got[0])))
                return
            row, new = await self.store.refuse(no, source="platform", raw=values, refusals=got,
                                               actor="platform")
            if new:
                await self.publisher.publish(platform_status_message(status_payload(
                    values | {"application_no": no}, "refused", reason_code="INVALID",
                    reason_field=got[0].field, reason=mask_text(str(row["reason"])),
                    source="platform")))
            return
        row, new = await self.store.receive(got, source="platform", actor="platform",
                                            offline=self.settings.is_offline(
                                                got.other_division))
        if not new:
            out.duplicates += 1
        else:
            out.new += 1
        if row["status"] == "received":
            await self.publisher.publish(intake_message(got.as_dict(), "platform"))

    # ------------------------------------------------------------ the window

    async def enter(self, values: Mapping[str, Any], actor: Actor) -> tuple[int, dict[str, Any]]:
        """A window (offline) application by a caseworker: 202 and its number; 200 with
        ``duplicate`` for a number already held; 422 with each field and reason."""
        data = dict(values)
        if not data.get("application_no"):
            data["application_no"] = f"CK{today_beijing():%Y%m%d}{uuid.uuid4().hex[:12].upper()}"
        if not data.get("apply_date"):
            data["apply_date"] = today_beijing().isoformat()
        got = check_application(data)
        if isinstance(got, list):
            await self._audit(actor, "transfer_window", str(data["application_no"]),
                              {"refused": _refusal_dicts(got)}, "refused")
            return 422, {"accepted": False, "refused": _refusal_dicts(got)}
        row, new = await self.store.receive(got, source="window", actor=actor.user,
                                            offline=self.settings.is_offline(
                                                got.other_division))
        if row["status"] == "received":
            await self.publisher.publish(intake_message(got.as_dict(), "window"))
        await self._audit(actor, "transfer_window", got.application_no,
                          {"direction": got.direction, "duplicate": not new},
                          "ok" if new else "duplicate")
        answer = {"accepted": True, "duplicate": not new,
                  "application_no": got.application_no, "direction": got.direction,
                  "offline": bool(row["offline"]), "status": row["status"]}
        return (202 if new else 200), answer

    # ------------------------------------------------------------ by application number

    async def get(self, application_no: str) -> dict[str, Any] | None:
        row = await self.store.get(application_no)
        if row is None:
            return None
        row["events"] = await self.store.events(application_no)
        cert = await self.store.certificate(application_no)
        row["certificate"] = None if cert is None else {
            "sha256": cert[1], "size": len(cert[0]),
            "href": f"/admin/transfers/{application_no}/certificate"}
        return masked(row)

    async def certificate(self, application_no: str, actor: Actor) -> tuple[bytes, str] | None:
        """The 参保凭证 PDF (it names the person in full: a printed certificate); the
        download is audited."""
        got = await self.store.certificate(application_no)
        await self._audit(actor, "transfer_certificate", application_no, {},
                          "ok" if got else "not_found")
        return got

    # ------------------------------------------------------------ 补发 (issue 12)

    async def resend(self, application_no: str, *, reason: str, actor: Actor,
                     targets: tuple[ResendTarget, ...] | None = None,
                     resend_id: str | None = None) -> tuple[int, dict[str, Any]]:
        """补发 of a decided transfer's CURRENT status (the stored row, not the first
        message) to the platform (lane ``transfer.platform``) and/or core
        (``core.transfer``): for a partner that lost or refused it, or a dead-lettered push.

        Only where the decision itself would have sent it (``routes.transfer.
        decision_outputs``): core when the application was usable, the platform for its
        own applications and for an approved local one (filed with the application), never
        for a 未联网地区. ``targets`` None means every one of those; a named target that
        the transfer never goes to is 409 (field ``targets``). The messages are salted with
        ``resend_id`` (generated when absent): a new 补发 is a new delivery with a new
        serial, the same ``resend_id`` again (the caller's retry) is the same delivery.
        404 unknown, 409 while still being checked (``received``: nothing decided to send
        yet). Audited as ``transfer.resend`` (ID numbers masked in the target)."""
        resend_id = resend_id or uuid.uuid4().hex
        target_text = mask_text(application_no)
        detail: dict[str, Any] = {"reason": mask_text(reason)[:200], "resend_id": resend_id}
        row = await self.store.get(application_no)
        if row is None:
            await self._audit(actor, "transfer.resend", target_text, detail, "not_found")
            return 404, _resend_refused(application_no, "application_no",
                                        f"no transfer {application_no}")
        status = str(row["status"])
        if status == "received":
            await self._audit(actor, "transfer.resend", target_text, detail | {
                "status": status}, "conflict")
            return 409, _resend_refused(application_no, "application_no", (
                f"transfer {application_no} is not decided yet (still being checked): "
                "nothing to resend"))
        app = _stored_application(row)
        due = _resend_messages(row, app, status, await self._certificate_digest(
            application_no, status))
        wanted = targets or tuple(t for t in RESEND_TARGETS if t in due)
        missing = [t for t in wanted if t not in due]
        if missing or not wanted:
            why = _not_due(row, app, missing[0] if missing else "")
            await self._audit(actor, "transfer.resend", target_text, detail | {
                "status": status, "targets": list(wanted)}, "conflict")
            return 409, _resend_refused(application_no, "targets", why)
        for t in wanted:
            await self.publisher.publish(_salted(due[t], resend_id))
        await self.store.log(application_no, "resend", status, True,
                             f"补发 {resend_id} to {', '.join(wanted)} by {actor.user}: "
                             f"{reason}")
        await self._audit(actor, "transfer.resend", target_text, detail | {
            "status": status, "targets": list(wanted)}, "accepted")
        return 200, {"application_no": application_no, "resend_id": resend_id,
                     "status": status, "sent": list(wanted)}

    async def _certificate_digest(self, application_no: str, status: str) -> str:
        if status != "offline_issued":
            return ""
        got = await self.store.certificate(application_no)
        return "" if got is None else got[1]

    async def _audit(self, actor: Actor, action: str, target: str, detail: dict[str, Any],
                     outcome: str) -> None:
        if self.audit is not None:
            await self.audit.record(actor.user, actor.role, action, target, detail, outcome)


# ------------------------------------------------------------ 补发 helpers

def _resend_refused(application_no: str, field_: str, reason: str) -> dict[str, Any]:
    return {"application_no": application_no, "accepted": False,
            "refused": [{"field": field_, "reason": mask_text(reason)}]}


def _stored_application(row: Mapping[str, Any]) -> TransferApplication | None:
    """The application as stored (unmasked for a usable one); None for one refused as bad
    (kept masked, so it does not pass the checks again: core never heard of it)."""
    try:
        raw = json.loads(str(row.get("application") or "{}"))
    except ValueError:
        return None
    got = check_application(raw) if isinstance(raw, dict) else []
    return None if isinstance(got, list) else got


def _resend_messages(row: Mapping[str, Any], app: TransferApplication | None, status: str,
                     certificate: str) -> dict[ResendTarget, HubMessage]:
    """The current status per target it goes to (unsalted), by the decision's rules."""
    facts = app.as_dict() if app is not None else dict(row)
    payload = status_payload(facts, status, reason_code=str(row.get("reason_code") or ""),
                             reason_field=str(row.get("reason_field") or ""),
                             reason=str(row.get("reason") or ""), source=str(row["source"]),
                             certificate=certificate)
    out: dict[ResendTarget, HubMessage] = {}
    if app is not None:
        out["core"] = core_status_message(payload)
    online = not row.get("offline")
    if online and row["source"] == "platform":
        out["platform"] = platform_status_message(payload)
    elif online and app is not None and status in ("out_approved", "in_accepted"):
        out["platform"] = platform_status_message(payload, application=to_wire(app))
    return out


def _not_due(row: Mapping[str, Any], app: TransferApplication | None, target: str) -> str:
    no = row["application_no"]
    if target == "core" or (not target and app is None):
        return f"transfer {no} was refused as a bad application: core never heard of it"
    if row.get("offline"):
        return f"transfer {no} is offline (未联网地区): nothing goes to the platform"
    return (f"transfer {no} ({row['source']}, {row['status']}) was never sent to the "
            "platform: only its own applications and approved local ones are")


def _salted(msg: HubMessage, resend_id: str) -> HubMessage:
    """The message as a 补发: ``resend_id`` in the payload and in the idempotency key (hence
    a new partner serial, ``contracts.messages.partner_serial``)."""
    p = msg.payload
    key = idempotency_key(msg.type, f"{p['application_no']}:{p['status']}",
                          {"status": p["status"]}, f"resend:{resend_id}")
    return msg.model_copy(update={"idempotency_key": key,
                                  "payload": p | {"resend_id": resend_id}})

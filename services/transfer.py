"""F9 转移接续: the ways in that the hub drives (the platform pull, the window) and the
caseworker's view by application number.

    pull      the national platform's applications after the durable cursor, page by page
              (T2401): each one checked (bad ones refused with field and reason, and the
              platform told), stored once by its number, handed to ``transfer.intake``;
              the cursor moves past a page only once its applications are stored. Run by
              the hub's ticker (``settings.transfer.pull_s``) and on demand.
    enter     a caseworker's window (offline) application (1839).
    get       one transfer by application number with its history, masked.

我的南京's ``transfer_out`` comes in through the channel door (F1) and is handed to the same
lane by the channel intake (``routes.channels``). Seed lines: ``contracts/TRANSFER.md``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from adapters.transfer.port import TransferPlatformPort
from config.transfer import TransferSettings
from contracts.clock import today_beijing
from contracts.errors import HubError
from contracts.masking import mask_text
from contracts.transfer import (
    Refusal,
    check_application,
    check_application_no,
    from_wire,
    intake_message,
    platform_status_message,
    status_payload,
)
from kernel.deps import Publisher
from services.audit import Actor, Audit, Caller
from storage.transfer import TransferStore, masked

__all__ = ["SCHEDULER", "PullResult", "TransferDesk"]

log = logging.getLogger("hub.transfer")

SCHEDULER: Final = Caller("scheduler", "system")
"""The actor of the scheduled pull in the audit log."""


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

    async def _audit(self, actor: Actor, action: str, target: str, detail: dict[str, Any],
                     outcome: str) -> None:
        if self.audit is not None:
            await self.audit.record(actor.user, actor.role, action, target, detail, outcome)

"""F15 大病保险承办机构: the lanes to the insurer (seed 004 lines 29, 39, 77, 111, 123, 126).

    insurer.shares     a settlement's 大病 segment, or its 冲销 (77): ordered per person by
                       the entity gate; a 冲销 carries ``after`` (its original's idempotency
                       key), so the runtime holds it until the original has its final answer,
                       and this lane refuses it unless the original was delivered
    insurer.financing  a financing notice (29, 39)
    insurer.clues      a 疑点数据 clue (123, 126)

A share's row (``storage.serious_illness``) says where it stands: delivered (with the claim's
due day, 111), rejected (the insurer refused it, or its original never reached the insurer)
or dead (retries exhausted; the message is parked in the DLQ). What comes before (core's
event) is ``services.serious_illness``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date
from typing import Any, Final, Protocol

from adapters.insurer.port import InsurerPort
from contracts.clock import today_beijing
from contracts.envelope import HubMessage
from contracts.errors import BusinessRejected, ClientError, HubError, PermanentError
from contracts.masking import mask_text
from contracts.messages import partner_serial
from contracts.serious_illness import CLUE, FINANCING, PARTNER, SHARE, due_date
from kernel.runtime import Outcome, Route
from storage.journal import TxnUpdate

__all__ = ["CLUE_LANE", "FINANCING_LANE", "SERIOUS_ILLNESS_ROUTES", "SHARE_LANE",
           "InsurerDeps", "SeriousIllnessRecords", "push_clue", "push_financing", "push_share",
           "share_failed"]

log = logging.getLogger("hub.serious_illness")

SHARE_LANE: Final = "insurer.shares"
FINANCING_LANE: Final = "insurer.financing"
CLUE_LANE: Final = "insurer.clues"
OPEN: Final = ("received", "queued", "rejected", "dead")


class SeriousIllnessRecords(Protocol):
    """The part of ``storage.serious_illness.SeriousIllnessStore`` the lanes use."""

    async def share(self, setl_id: str) -> dict[str, Any] | None: ...

    async def set_share(self, setl_id: str, status: str, *, expect: Iterable[str],
                        reason: str = "", delivered_on: str = "", due_on: str = "") -> bool: ...

    async def set_financing(self, fid: str, status: str, *, reason: str = "") -> None: ...

    async def set_clue(self, clue_id: str, status: str, *, reason: str = "") -> None: ...


class InsurerDeps(Protocol):
    """``routes.serious_illness``: the insurer's client and the F15 store."""

    @property
    def insurer(self) -> InsurerPort | None: ...
    @property
    def serious_illness(self) -> SeriousIllnessRecords | None: ...


def _insurer(deps: InsurerDeps) -> InsurerPort:
    if deps.insurer is None:
        raise ClientError("this hub has no insurer client (partners.insurer)", partner=PARTNER)
    return deps.insurer


def _txn(msg: HubMessage, status: str, key: str, exc: HubError | None = None) -> TxnUpdate:
    return TxnUpdate(msg.correlation_id, msg.type, key, msg.source, status,
                     exc.public_code if exc else "", exc.public_text if exc else "",
                     attempts=msg.attempt + 1)


async def push_share(msg: HubMessage, deps: InsurerDeps, *, today: date | None = None
                     ) -> Outcome:
    """The share to the insurer. A 冲销 goes only after its original was delivered (the
    runtime held it until the original's final answer): an original rejected or dead
    means the insurer never had it, and the 冲销 is refused naming ``orig_setl_id``."""
    p = msg.payload
    setl_id = str(p["setl_id"])
    store = deps.serious_illness
    if p.get("kind") == "reverse" and store is not None:
        orig = await store.share(str(p["orig_setl_id"]))
        if orig is None or orig["status"] != "delivered":
            raise BusinessRejected("ORIGINAL_NOT_DELIVERED", "orig_setl_id: the original "
                                   f"settlement is {orig['status'] if orig else 'unknown'}, "
                                   "the insurer never had it: nothing to reverse",
                                   partner=PARTNER)
    await _insurer(deps).push_share(p, serial=partner_serial(msg))
    if store is not None:
        day = today or today_beijing()
        due = due_date(day).isoformat() if p.get("kind") == "settle" else ""
        await store.set_share(setl_id, "delivered", expect=OPEN,
                              delivered_on=day.isoformat(), due_on=due)
    return Outcome(txn=_txn(msg, "delivered", setl_id),
                   detail={"setl_id": setl_id, "kind": p.get("kind"),
                           "serious_illness_pay": p.get("serious_illness_pay")})


async def share_failed(msg: HubMessage, exc: HubError, deps: Any) -> Outcome:
    """The insurer refused the share, its original never reached it, or it was given up on:
    the row says why (the message itself is parked when dead)."""
    status = "rejected" if isinstance(exc, PermanentError) else "dead"
    setl_id = str(msg.payload.get("setl_id") or "")
    log.error("ALERT F15 %s of settlement %s to the insurer %s: %s", msg.payload.get("kind"),
              setl_id, status, mask_text(exc.public_text))
    store: SeriousIllnessRecords | None = getattr(deps, "serious_illness", None)
    if store is not None:
        await store.set_share(setl_id, status, expect=OPEN,
                              reason=f"{exc.public_code}: {exc.public_text}")
    return Outcome(txn=_txn(msg, status, setl_id, exc))


async def push_financing(msg: HubMessage, deps: InsurerDeps) -> Outcome:
    await _insurer(deps).push_financing(msg.payload, serial=partner_serial(msg))
    fid = f"{msg.payload['year']}:{msg.payload['payers']}"
    if deps.serious_illness is not None:
        await deps.serious_illness.set_financing(fid, "delivered")
    return Outcome(txn=_txn(msg, "delivered", fid),
                   detail={"year": msg.payload.get("year"), "payers": msg.payload.get("payers"),
                           "total": msg.payload.get("total")})


async def financing_failed(msg: HubMessage, exc: HubError, deps: Any) -> Outcome:
    status = "rejected" if isinstance(exc, PermanentError) else "dead"
    fid = f"{msg.payload.get('year')}:{msg.payload.get('payers')}"
    store: SeriousIllnessRecords | None = getattr(deps, "serious_illness", None)
    if store is not None:
        await store.set_financing(fid, status, reason=f"{exc.public_code}: {exc.public_text}")
    return Outcome(txn=_txn(msg, status, fid, exc))


async def push_clue(msg: HubMessage, deps: InsurerDeps) -> Outcome:
    await _insurer(deps).push_clue(msg.payload, serial=partner_serial(msg))
    cid = str(msg.payload["clue_id"])
    if deps.serious_illness is not None:
        await deps.serious_illness.set_clue(cid, "delivered")
    return Outcome(txn=_txn(msg, "delivered", cid), detail={"clue_id": cid})


async def clue_failed(msg: HubMessage, exc: HubError, deps: Any) -> Outcome:
    status = "rejected" if isinstance(exc, PermanentError) else "dead"
    cid = str(msg.payload.get("clue_id") or "")
    store: SeriousIllnessRecords | None = getattr(deps, "serious_illness", None)
    if store is not None:
        await store.set_clue(cid, status, reason=f"{exc.public_code}: {exc.public_text}")
    return Outcome(txn=_txn(msg, status, cid, exc))


SERIOUS_ILLNESS_ROUTES: Final[tuple[Route, ...]] = (
    Route(SHARE_LANE, (SHARE,), PARTNER, push_share, share_failed),
    Route(FINANCING_LANE, (FINANCING,), PARTNER, push_financing, financing_failed),
    Route(CLUE_LANE, (CLUE,), PARTNER, push_clue, clue_failed))

"""F7 医疗救助平台: the lane of 结算费用同步 (seed 003 line 1497).

    assistance.settlements   a recipient's settlement core reported (H4005) -> the
                             platform's ``POST <endpoint>/settlements``

One message per settlement id (``contracts.assistance.settlement_message``); the
platform drops a repeated ``X-Hub-Serial`` (derived from the message's idempotency
key), so a retry after a lost answer is one effect. The settlement's row
(``storage.assistance``) says where it stands: delivered, or rejected (the platform
refused it, with its reason) or dead (retries exhausted, the message parked in the
DLQ); each failure is an alert (``ALERT 提醒预警``). What comes before (core's event,
the recipient check) is ``services.assistance``.
"""

from __future__ import annotations

import logging
from typing import Any, Final, Protocol

from adapters.difficulty.port import DifficultyPort
from contracts.assistance import SETTLEMENT_LANE, SETTLEMENT_SYNC
from contracts.difficulty import ASSISTANCE
from contracts.envelope import HubMessage
from contracts.errors import ClientError, HubError, PermanentError
from contracts.masking import mask_text
from contracts.messages import partner_serial
from kernel.runtime import Outcome, Route
from storage.journal import TxnUpdate

__all__ = ["SETTLEMENT_ROUTE", "AssistanceDeps", "SettlementRows", "push_settlement",
           "settlement_failed"]

log = logging.getLogger("hub.assistance")

OPEN: Final = ("pending", "queued", "rejected", "dead")


class SettlementRows(Protocol):
    """The part of ``storage.assistance.AssistanceStore`` the lane uses."""

    async def set_sync(self, ref: str, status: str, *, expect: Any,
                       reason: str = "") -> bool: ...


class AssistanceDeps(Protocol):
    """``routes.assistance``: the platform's client and the settlement rows."""

    @property
    def difficulty_partners(self) -> DifficultyPort | None: ...
    @property
    def assistance(self) -> SettlementRows | None: ...


def _txn(msg: HubMessage, status: str, exc: HubError | None = None) -> TxnUpdate:
    return TxnUpdate(msg.correlation_id, msg.type, str(msg.payload.get("ref") or "-"),
                     msg.source, status, exc.public_code if exc else "",
                     exc.public_text if exc else "", attempts=msg.attempt + 1)


async def push_settlement(msg: HubMessage, deps: AssistanceDeps) -> Outcome:
    if deps.difficulty_partners is None:
        raise ClientError("this hub has no F7 partner client", partner=ASSISTANCE)
    await deps.difficulty_partners.push_settlement(msg.payload, serial=partner_serial(msg))
    if deps.assistance is not None:
        await deps.assistance.set_sync(str(msg.payload["ref"]), "delivered", expect=OPEN)
    return Outcome(txn=_txn(msg, "delivered"),
                   detail={"ref": msg.payload.get("ref"), "month": msg.payload.get("month"),
                           "identity": msg.payload.get("identity")})


async def settlement_failed(msg: HubMessage, exc: HubError, deps: Any) -> Outcome:
    """The platform refused it or could not be reached in time: alert, the row says why;
    the message is parked as well."""
    status = "rejected" if isinstance(exc, PermanentError) else "dead"
    log.error("ALERT 提醒预警: F7 结算费用同步 of settlement %s to the platform failed: %s",
              msg.payload.get("ref"), mask_text(exc.public_text))
    rows: SettlementRows | None = getattr(deps, "assistance", None)
    if rows is not None:
        await rows.set_sync(str(msg.payload.get("ref") or ""), status, expect=OPEN,
                            reason=f"{exc.public_code}: {exc.public_text}")
    return Outcome(txn=_txn(msg, status, exc))


SETTLEMENT_ROUTE: Final = Route(SETTLEMENT_LANE, (SETTLEMENT_SYNC,), ASSISTANCE,
                                push_settlement, settlement_failed)

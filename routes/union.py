"""F12 union notices: 受理结果, 结案 result files and 档案返还, delivered to the union side.

    union.notice.acceptance   受理结果, one message to the applicant unit and one to the
                              city union (seed line 67)
    union.notice.closure      结案/理算结果及结论 as the agreed file (43, 60;
                              contracts/UNION_CASES.md)
    union.notice.archive      档案返还 done (75)

One lane, ``union.notify`` (partner ``trade_union``: its breaker and retry policy):
the union's endpoint is called with the notice and the serial it deduplicates on
(``partner_serial``), retried through the wait tiers, then dead-lettered, from where
operations re-drive it; a caseworker can also resend (补发) a case's notice
(``services.union.UnionDesk``). Cases themselves change in ``services.union``; a
notice delivered is recorded in the journal as the case's transaction leg.
"""

from __future__ import annotations

from typing import Final, Protocol

from adapters.union.port import UnionPort
from contracts.envelope import HubMessage
from contracts.errors import ClientError
from contracts.messages import partner_serial
from contracts.union import NOTICE_TYPES
from kernel.runtime import Outcome, Route
from storage.journal import TxnUpdate

__all__ = ["UNION_ROUTE", "UnionNotifyDeps", "deliver_notice"]

PARTNER: Final = "trade_union"


class UnionNotifyDeps(Protocol):
    """``deliver_notice``: the union's endpoint (None in a hub without F12)."""

    @property
    def union_client(self) -> UnionPort | None: ...


async def deliver_notice(msg: HubMessage, deps: UnionNotifyDeps) -> Outcome:
    """POST the notice; delivered once the union answered 2xx (a repeat is its replay)."""
    if deps.union_client is None:
        raise ClientError("this hub has no trade_union partner configured", partner=PARTNER)
    serial = partner_serial(msg)
    await deps.union_client.deliver(dict(msg.payload), serial=serial)
    p = msg.payload
    key = f"{p.get('case_no')}:{p.get('kind')}:{p.get('recipient')}"
    return Outcome(txn=TxnUpdate(msg.correlation_id, msg.type, key, msg.source, "delivered",
                                 attempts=msg.attempt + 1),
                   detail={"case_no": p.get("case_no"), "kind": p.get("kind"),
                           "recipient": p.get("recipient"), "serial": serial})


UNION_ROUTE: Final = Route("union.notify", NOTICE_TYPES, PARTNER, deliver_notice)

"""F3: what tax pushes (核定, 缴费, 清册...) is delivered to core on the ``core.tax_push`` lane.

Tax hears ``S`` only after the push is confirmed by the broker (``api.ingress``);
core deduplicates on a content-derived serial. The 比对 push has its own lane
(``routes.compare``).
"""

from __future__ import annotations

from typing import Final

from contracts.envelope import HubMessage
from contracts.messages import COMPARE, partner_serial
from contracts.taxcat import ops_of
from kernel.runtime import Outcome, Route
from routes.ports import PushDeps
from routes.tax_submit import parse_payload
from storage.journal import TxnUpdate

__all__ = ["PUSH_LANE", "PUSH_ROUTE", "push_to_core"]

PUSH_LANE: Final = "core.tax_push"


async def push_to_core(msg: HubMessage, deps: PushDeps) -> Outcome:
    """F3: what tax pushed goes to core; core deduplicates on a serial derived from the
    push's content, so tax pushing the same thing again is delivered once."""
    o, req = parse_payload(msg)
    await deps.core.deliver(o.core_infno, req.model_dump(mode="json"),
                            serial=partner_serial(msg))
    key = o.business_key(req.__dict__)
    return Outcome(txn=TxnUpdate(msg.correlation_id, msg.type, key, "tax", "delivered"),
                   detail={"operation": o.name, "infno": o.core_infno})


PUSH_ROUTE: Final = Route(PUSH_LANE, tuple(o.msg_type for o in ops_of("push")
                                           if o.msg_type != COMPARE), "core", push_to_core)

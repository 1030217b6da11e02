"""The caseworker's desk for identity confirmations (灵活就业终止, TX402).

A termination tax refused as not unique is held in a case (``routes.confirmations``
opens it and starts the confirmation). Here a caseworker:

    lists cases (masked; open ones by default) with the count per status
    confirms again  an open case: a new FlexibleIdentityConfirm to tax (a new
                    attempt, so a new serial at tax), with a phone if core had none;
                    tax's answer comes back through the feedback lane as before
    cancels         an open case: it closes as ``cancelled`` with the reason, and core
                    hears the termination rejected (IDENTITY_CANCELLED) with it

Only an open case can be acted on (a confirmed one has been re-driven already);
each action is a compare-and-set on the case, so two caseworkers cannot both send.
Every action, refusals included, is written to the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from contracts.checks import check_mobile
from contracts.envelope import HubMessage
from contracts.messages import partner_serial
from kernel.deps import Publisher
from routes.confirmations import confirmation_message, core_rejection
from services.audit import Actor, Audit
from services.deps import Deps
from storage.confirmations import ConfirmationStore, masked_case

__all__ = ["CANCELLED", "ActResult", "CaseAction", "ConfirmationDesk", "count_cases"]

CANCELLED: Final = "IDENTITY_CANCELLED"
_ACTION: Final = "identity_confirmation"


class CaseAction(BaseModel):
    """What a caseworker does with an open case."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    action: Literal["confirm", "cancel"] = Field(description="confirm again, or cancel")
    reason: str = Field(min_length=1, max_length=200, description="why (the audit log's)")
    phone: Annotated[str, AfterValidator(check_mobile)] | None = Field(
        default=None, description="a mobile phone for tax, when core had none (confirm)")


@dataclass(frozen=True)
class ActResult:
    """``outcome`` ok, not_found, conflict (the case is not open, or changed meanwhile) or
    invalid (no phone to confirm with); ``case`` masked."""

    outcome: Literal["ok", "not_found", "conflict", "invalid"]
    case: dict[str, Any] | None = None
    detail: str = ""
    serial: str = ""


@dataclass(frozen=True)
class ConfirmationDesk:
    store: ConfirmationStore
    publisher: Publisher
    audit: Audit

    async def list(self, *, status: str | None = "open", limit: int = 100,
                   offset: int = 0) -> dict[str, Any]:
        rows = await self.store.list(status=status, limit=limit, offset=offset)
        return {"counts": await self.store.counts(), "items": [masked_case(r) for r in rows]}

    async def get(self, case_id: str) -> dict[str, Any] | None:
        case = await self.store.get(case_id)
        return masked_case(case) if case else None

    async def act(self, case_id: str, req: CaseAction, actor: Actor) -> ActResult:
        case = await self.store.get(case_id)
        if case is None:
            result = ActResult("not_found", detail=f"no identity case {case_id}")
        elif case["status"] != "open":
            result = ActResult("conflict", masked_case(case),
                               f"the case is {case['status']}, not open")
        elif req.action == "confirm":
            result = await self._confirm(case, req, actor)
        else:
            result = await self._cancel(case, req, actor)
        await self.audit.record(actor.user, actor.role, f"{_ACTION}.{req.action}", case_id,
                                {"reason": req.reason, "detail": result.detail,
                                 "serial": result.serial}, result.outcome)
        return result

    async def _confirm(self, case: dict[str, Any], req: CaseAction, actor: Actor) -> ActResult:
        phone = req.phone or str(case.get("phone") or "")
        if not phone:
            return ActResult("invalid", masked_case(case),
                             "no phone to confirm with: give one (core has none)")
        attempt = int(case["attempts"]) + 1
        if not await self.store.move(case["id"], expect=("open",), status="open", phone=phone,
                                     attempts=attempt, expect_attempts=int(case["attempts"]),
                                     reason_code="", reason=f"confirming again: {req.reason}",
                                     actor=actor.user):
            return ActResult("conflict", None, "the case changed meanwhile: look again")
        msg = confirmation_message(case, phone, attempt)
        await self.publisher.publish(msg)
        return ActResult("ok", masked_case(await self.store.get(case["id"]) or case),
                         f"confirmation {attempt} sent", partner_serial(msg))

    async def _cancel(self, case: dict[str, Any], req: CaseAction, actor: Actor) -> ActResult:
        if not await self.store.move(case["id"], expect=("open",), status="cancelled",
                                     reason_code=CANCELLED, reason=req.reason,
                                     actor=actor.user):
            return ActResult("conflict", None, "the case changed meanwhile: look again")
        held = HubMessage.model_validate_json(case["held_message"])
        await self.publisher.publish(core_rejection(
            case, held, CANCELLED, f"身份确认已撤销: {req.reason}"))
        return ActResult("ok", masked_case(await self.store.get(case["id"]) or case),
                         "cancelled; core told the termination is rejected")


async def count_cases(deps: Deps) -> dict[str, int]:
    """Identity-confirmation cases per status (open, confirmed, closed, cancelled), for the
    demo and ops; all zero in a hub that keeps no cases."""
    store = deps.confirmations
    if not isinstance(store, ConfirmationStore):
        return {"open": 0, "confirmed": 0, "closed": 0, "cancelled": 0}
    return await store.counts()

"""灵活就业终止: the identity confirmation tax asks for when a person is not unique (TX402).

Seed (003, 灵活终止参保): tax confirms the person is unique before it records a
termination; when not, it tells the medical-insurance side and both start the
identity-confirmation process. In the hub:

1. ``hold_termination`` (``routes.tax_submit``, on tax's TX402 for a
   FlexibleTerminate): open a case (``storage.confirmations``) holding the
   termination, and send tax a FlexibleIdentityConfirm (the person, a phone from
   core's record H1103, the case's 身份确认号). The termination's transaction is
   ``held``; the message itself is done (delivered into the case).
2. ``confirmation_feedback`` (``routes.tax_results``, tax's FeedbackNotify of the
   confirmation): accepted -> the case moves ``open -> confirmed`` and the held
   termination is re-driven with the 身份确认号 (``redrive_message``: one idempotency
   key per case, so a duplicate feedback re-publishes the same fact, which Redis and
   tax's serial deduplication absorb: tax terminates once); refused -> the case stays
   open with tax's reason and core hears the termination rejected with it.
3. ``after_failure`` (``routes.tax_submit.tax_failed``): a confirmation tax refused
   at once (its 受理回执 F), or one that could not be delivered, is handled as a
   refusal; a re-driven termination tax refused closes its case.
4. ``termination_feedback``: the re-driven termination's result closes the case.

A caseworker lists cases and confirms again or cancels (``services.confirmations``).
``decide`` is the one decision table, pure for unit tests.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from contracts.employee import SyncStatusUpdate, TaxFeedback
from contracts.envelope import HubMessage
from contracts.errors import BusinessRejected, HubError, PermanentError, TransientError
from contracts.messages import operation_message, partner_serial, sync_message
from contracts.taxcat import Op, op
from kernel.runtime import Outcome
from routes.ports import IdentityCases, TaxSubmitDeps
from storage.confirmations import NewCase, case_id_for
from storage.journal import RequestRecord, TxnUpdate

__all__ = [
    "IDENTITY_CONFIRM",
    "NOT_UNIQUE",
    "TERMINATE",
    "Decision",
    "after_failure",
    "confirmation_feedback",
    "confirmation_message",
    "core_rejection",
    "decide",
    "hold_termination",
    "is_redrive",
    "redrive_message",
    "refusal_outcome",
    "termination_feedback",
]

_CONFIRM_OP: Final = op("FlexibleIdentityConfirm")
_TERMINATE_OP: Final = op("FlexibleTerminate")
IDENTITY_CONFIRM: Final = _CONFIRM_OP.msg_type
TERMINATE: Final = _TERMINATE_OP.msg_type
NOT_UNIQUE: Final = "TX402"
NO_PHONE: Final = "NO_PHONE"

Decision = Literal["redrive", "refuse", "ignore"]


def decide(status: str, accepted: bool) -> Decision:
    """What tax's answer to a confirmation does, given where the case stands.

    open + accepted       -> redrive (the case becomes confirmed)
    open + refused        -> refuse  (the case stays open with the reason; core told)
    confirmed + accepted  -> redrive again: the same idempotency key, absorbed downstream
                             (a duplicate feedback, or a redelivery after a crash)
    anything else         -> ignore  (a late answer to an older attempt, a closed or
                             cancelled case)
    """
    if status == "open":
        return "redrive" if accepted else "refuse"
    if status == "confirmed" and accepted:
        return "redrive"
    return "ignore"


def is_redrive(msg: HubMessage, case: dict[str, Any]) -> bool:
    """The termination the hub re-drove for ``case`` (it carries the case's 身份确认号)."""
    return str(msg.payload.get("confirm_no") or "") == str(case["confirm_no"])


def _cases(deps: object) -> IdentityCases | None:
    cases: IdentityCases | None = getattr(deps, "confirmations", None)
    return cases


def confirmation_message(case: dict[str, Any], phone: str, attempt: int, *,
                         cause: str | None = None) -> HubMessage:
    """The FlexibleIdentityConfirm of ``case``'s ``attempt``-th confirmation; correlated by
    the case id. The same attempt always has the same key (and serial at tax)."""
    payload = {"id_number": case["id_number"], "name": case["name"], "phone": phone,
               "confirm_no": case["confirm_no"]}
    return operation_message(_CONFIRM_OP, payload, source="hub", target="tax",
                             correlation_id=case["id"], causation_id=cause,
                             salt=f"identity:{case['id']}:{attempt}")


def redrive_message(case: dict[str, Any], *, cause: str | None = None) -> HubMessage:
    """The held termination again, with the case's 身份确认号, in its own transaction
    (the termination's correlation id). One key per case: re-driving twice is one fact."""
    held = HubMessage.model_validate_json(case["held_message"])
    payload = dict(held.payload) | {"confirm_no": case["confirm_no"]}
    return operation_message(_TERMINATE_OP, payload, source=held.source, target=held.target,
                             correlation_id=held.correlation_id, causation_id=cause,
                             salt=f"identity-redrive:{case['id']}")


async def _phone(case: dict[str, Any], deps: TaxSubmitDeps) -> str:
    """The phone the confirmation gives tax: the case's (a caseworker's), else core's record.
    A transient failure of core propagates (the termination is retried; tax replays its
    TX402 for the same serial)."""
    if case.get("phone"):
        return str(case["phone"])
    try:
        record = await deps.core.get_record("flexible", {"id_number": case["id_number"]})
    except PermanentError:
        return ""
    return str((record or {}).get("phone") or "")


async def hold_termination(msg: HubMessage, o: Op, exc: BusinessRejected,
                           deps: TaxSubmitDeps) -> Outcome | None:
    """Tax refused a submit: for a termination refused as not unique, hold it in a case and
    start the confirmation. None when this is not such a refusal (or the hub keeps no
    cases, or the re-driven termination was refused again): the caller raises as before."""
    cases = deps.confirmations
    if cases is None or o.name != _TERMINATE_OP.name or exc.reason_code != NOT_UNIQUE:
        return None
    p = msg.payload
    case, _ = await cases.open(NewCase(
        correlation_id=msg.correlation_id, type=msg.type,
        business_key=o.business_key(p), entity_key=msg.entity_key,
        id_number=str(p.get("id_number", "")), name=str(p.get("name", "")),
        held_message=msg.model_dump_json(), reason_code=exc.reason_code,
        reason=exc.reason_text))
    if is_redrive(msg, case):
        # Confirmed, re-driven, and still not unique: no loop. The case opens again with
        # the reason for a caseworker; core hears the rejection (tax_failed).
        await cases.move(case["id"], expect=("confirmed", "open"), status="open",
                         reason_code=exc.reason_code,
                         reason=f"tax still holds the identity as not unique after "
                                f"confirmation: {exc.reason_text}")
        return None
    if case["status"] != "open":  # the original redelivered after its case moved on
        return Outcome(detail={"case_id": case["id"], "held": "already " + case["status"]},
                       result={"outcome": "held", "case_id": case["id"]})
    attempt = max(int(case["attempts"]), 1)
    phone = await _phone(case, deps)
    held = TxnUpdate(msg.correlation_id, msg.type, case["business_key"], msg.source, "held",
                     exc.reason_code, exc.reason_text, attempts=msg.attempt + 1)
    if not phone:
        await cases.move(case["id"], expect=("open",), status="open", reason_code=NO_PHONE,
                         reason="core has no phone for the identity confirmation: a "
                                "caseworker confirms with one")
        return Outcome(txn=held, detail={"case_id": case["id"], "held": NOT_UNIQUE,
                                         "confirmation": "needs a phone"},
                       result={"outcome": "held", "case_id": case["id"]})
    if int(case["attempts"]) == 0:
        await cases.move(case["id"], expect=("open",), status="open", phone=phone,
                         attempts=1, expect_attempts=0)
    confirm = confirmation_message(case, phone, attempt, cause=msg.message_id)
    return Outcome(outputs=(confirm,), txn=held,
                   detail={"case_id": case["id"], "held": NOT_UNIQUE,
                           "confirmation_serial": partner_serial(confirm)},
                   result={"outcome": "held", "case_id": case["id"]})


def core_rejection(case: dict[str, Any], cause: HubMessage, code: str,
                   text: str) -> HubMessage:
    """The message telling core the held termination of ``case`` is rejected, and why."""
    update = SyncStatusUpdate(correlation_id=case["correlation_id"], biz_type=case["type"],
                              business_key=case["business_key"],
                              id_number=str(case["id_number"])[:18], status="rejected",
                              reason_code=code[:40] or "REJECTED", reason_text=text[:500])
    return sync_message(update, cause=cause, entity_key=case["entity_key"])


def refusal_outcome(case: dict[str, Any], cause: HubMessage, code: str, text: str,
                    confirm_txn: TxnUpdate) -> Outcome:
    """Core hears the held termination rejected with tax's reason for the confirmation."""
    return Outcome(outputs=(core_rejection(case, cause, code, text),), txn=confirm_txn,
                   detail={"case_id": case["id"], "confirmation": "refused", "reason_code": code})


async def _refuse(cases: IdentityCases, case: dict[str, Any], cause: HubMessage, code: str,
                  text: str, confirm_txn: TxnUpdate) -> Outcome:
    await cases.move(case["id"], expect=("open",), status="open", reason_code=code,
                     reason=text)
    return refusal_outcome(case, cause, code, text, confirm_txn)


async def confirmation_feedback(msg: HubMessage, fb: TaxFeedback, req: RequestRecord,
                                cases: IdentityCases) -> Outcome | None:
    """Tax's FeedbackNotify of a confirmation the hub started for a case; None for one that
    is no case's (core's own H2205 event: its feedback goes to core as usual)."""
    accepted = fb.status == "accepted"
    txn = TxnUpdate(req.correlation_id, req.type, req.business_key, "tax",
                    "delivered" if accepted else "rejected", fb.reason_code, fb.reason_text)
    detail = {"serial": fb.biz_msg_id, "status": fb.status, "reason_code": fb.reason_code,
              "case_id": req.correlation_id}
    for _ in range(3):  # a compare-and-set lost to a concurrent writer: look again
        case = await cases.get(req.correlation_id)
        if case is None:
            return None
        decision = decide(case["status"], accepted)
        if decision == "ignore":
            return Outcome(txn=txn, detail=detail | {"decision": decision})
        if decision == "refuse":
            return await _refuse(cases, case, msg, fb.reason_code or "REJECTED",
                                 fb.reason_text, txn)
        if case["status"] == "confirmed" or await cases.move(
                case["id"], expect=("open",), status="confirmed", reason_code="", reason=""):
            return Outcome(outputs=(redrive_message(case, cause=msg.message_id),), txn=txn,
                           detail=detail | {"decision": decision})
    raise TransientError(f"identity case {req.correlation_id} keeps changing", partner="tax")


async def termination_feedback(req: RequestRecord, fb: TaxFeedback,
                               cases: IdentityCases | None) -> None:
    """The result of a re-driven termination closes its case (core hears it as usual)."""
    if cases is None or req.type != TERMINATE:
        return
    case_id = case_id_for(req.correlation_id)
    rejected = fb.status != "accepted"
    await cases.move(case_id, expect=("confirmed",), status="closed",
                     reason_code=fb.reason_code if rejected else "",
                     reason=fb.reason_text if rejected else "")


async def after_failure(msg: HubMessage, exc: HubError, deps: object) -> Outcome | None:
    """``tax_failed`` of the identity flow: None when the usual rejection applies.

    A confirmation refused (its 受理回执 F, a bad phone) or given up on: the case stays
    open with the reason, core hears the termination rejected. A re-driven termination
    refused: its case closes with the reason (and core hears it as usual: None).
    """
    cases = _cases(deps)
    if cases is None or msg.type not in (IDENTITY_CONFIRM, TERMINATE):
        return None
    if msg.type == TERMINATE:
        case = await cases.get(case_id_for(msg.correlation_id))
        if case is not None and is_redrive(msg, case):
            await cases.move(case["id"], expect=("confirmed",), status="closed",
                             reason_code=exc.public_code, reason=exc.public_text)
        return None
    case = await cases.get(msg.correlation_id)
    status = "rejected" if isinstance(exc, PermanentError) else "dead"
    txn = TxnUpdate(msg.correlation_id, msg.type, _CONFIRM_OP.business_key(msg.payload),
                    msg.source, status, exc.public_code, exc.public_text,
                    attempts=msg.attempt + 1)
    if case is None or case["status"] != "open":
        return Outcome(txn=txn, detail={"case_id": msg.correlation_id, "decision": "ignore"}) \
            if case is not None else None
    return await _refuse(cases, case, msg, exc.public_code, exc.public_text, txn)

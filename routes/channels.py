"""F1 citizen applications across the hub: intake -> core -> tax -> result -> channel.

    channel.application          lane ``channel.intake``: facts from tax (community,
                                 arrears, contributions), the seed's business rules,
                                 core registers (H2501), then one tax submit per
                                 catalogue operation the application ends in
    tax.<subject>.*              the catalogue lanes; tax's feedback -> core.sync
    channel.result.<channel>     lane ``channel.<channel>``: collects the results of an
                                 application's tax submits and, once all are in, pushes
                                 the signed final result to the channel (retried,
                                 dead-lettered if the channel stays down)

The tax submits carry the application id as correlation id (``<id>-<n>`` when an
application becomes several submits, e.g. 大学生毕业停保), so ``core.sync`` can
tell an application's result from any other (``result_message``). One lane per
channel keeps one channel's outage from delaying another's results; results of
one application are serialized by the ordering gate (entity = the application).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, Final

from contracts.channels import (
    CHANNEL_NAMES,
    RESIDENT_YEAR_TYPES,
    REVIEWED_TYPES,
    ApplicationPayload,
    ApplicationReview,
    BirthNewbornEnroll,
    CollectionPeriods,
    NewbornEnroll,
    TransferDestination,
    TransferOut,
    midyear_flag_of,
    to_tax_payload,
    validate_payload,
)
from contracts.clock import BEIJING
from contracts.envelope import HubMessage, new_id
from contracts.errors import HubError, PermanentError, ValidationFailed
from contracts.messages import (
    APPLICATION,
    REVIEW,
    operation_message,
    result_message,
    result_type,
)
from contracts.taxcat import model_for
from contracts.taxcat import op as catalogue_op
from contracts.transfer import from_channel, intake_message
from kernel.runtime import Outcome, Route
from retry.memo import TtlMemo
from routes.channel_rules import (
    check_arrears,
    check_community,
    check_transfer_destination,
    newborn_insure_year,
    normal_employee_contribution,
    prenewborn_paid,
    prenewborn_to_convert,
    resident_insure_year,
    retirement_start_month,
)
from routes.ports import ChannelPushDeps, IntakeDeps
from storage.journal import TxnUpdate

__all__ = ["CHANNEL_ROUTES", "Ask", "decide", "intake", "intake_failed", "push_result",
           "received_on"]

ORDERED_AFTER_FIRST: Final = frozenset({"NewbornEnroll"})
"""Submits that queue behind the application's first submit (``PreNewbornStop``)."""

Ask = Callable[[str, dict[str, Any]], Awaitable[list[dict[str, str]]]]
"""A catalogue query to tax: operation and canonical parameters -> the answer's records."""

Destination = Callable[[str, str], Awaitable[TransferDestination]]
"""Core's view of a transfer's 转入地: (ID number, target division) -> the answer (H1106)."""


async def decide(app_type: str, model: ApplicationPayload, ask: Ask, *, today: date,
                 periods: CollectionPeriods, memo: TtlMemo | None = None,
                 destination: Destination | None = None) -> dict[str, str]:
    """Ask tax what the seed's rules need and apply them (``routes.channel_rules``).

    Raises ``BusinessRejected`` naming the field when a rule refuses; returns the
    decisions for ``to_tax_payload`` (start month, insure year, 中途参保 start).
    ``today`` is the day the hub received the application, so a redelivery (or a
    re-drive days later) decides the same way and reaches tax under the same key.
    ``destination`` answers for a 转出's 转入地 (core, H1106); without it (a fixture that
    states no answer) the 转入地 is taken as ready.
    """
    community = getattr(model, "community", None)
    if isinstance(community, str) and not (memo and memo.get(f"community:{community}")):
        rows = await ask("QueryCommunity", {"community": community})
        check_community(community, bool(rows) and rows[0].get("valid") == "1")
        if memo is not None:
            memo.put(f"community:{community}", True)  # only a known one is remembered
    id_number = getattr(model, "id_number", None)
    if isinstance(id_number, str) and app_type in ("transfer_out", "retire"):
        rows = await ask("QueryPersonArrears", {"id_number": id_number})
        check_arrears(app_type, sum(int(r.get("arrears") or 0) for r in rows))
    if isinstance(model, TransferOut) and destination is not None:
        d = await destination(model.id_number, model.target_division)
        check_transfer_destination(model.target_division, d.insured, d.pending_business,
                                   d.detail)
    if isinstance(model, NewbornEnroll):
        out = await _newborn(model, ask)
        if isinstance(model, BirthNewbornEnroll):
            year = str(today.year)
            rows = await ask("QueryPreNewbornPayment", {
                "mother_id_number": model.mother_id_number, "birth_order": model.birth_order,
                "insure_year": year})
            out["insure_year"] = newborn_insure_year(prenewborn_paid(rows, year), today)
        return out
    if app_type == "retirement_flexible_enroll" and isinstance(id_number, str):
        month = f"{today:%Y%m}"
        rows = await ask("QueryPaymentInfo", {"id_number": id_number, "period_start": month,
                                              "period_end": month})
        paid = normal_employee_contribution(rows, month)
        return {"start_month": retirement_start_month(paid, today)}
    if app_type in RESIDENT_YEAR_TYPES:
        return resident_insure_year(today, periods, midyear_flag_of(model)).overrides()
    return {}


async def _newborn(model: NewbornEnroll, ask: Ask) -> dict[str, str]:
    """The 准新生儿 this newborn converts: the one the channel names (its temp ID), else
    the mother's one still enrolled at tax (``prenewborn_to_convert``)."""
    if model.temp_id_number is not None and model.birth_order is not None:
        return {"convert_birth_order": str(model.birth_order)}
    params: dict[str, Any] = {"mother_id_number": model.mother_id_number}
    if model.birth_order is not None:
        params["birth_order"] = model.birth_order
    order = prenewborn_to_convert(await ask("QueryPreNewborn", params), model.birth_order)
    return {} if order is None else {"convert_birth_order": str(order)}


def received_on(msg: HubMessage) -> date:
    """The Beijing day the hub received the application (its message's creation)."""
    return msg.created_at.astimezone(BEIJING).date()


async def intake(msg: HubMessage, deps: IntakeDeps) -> Outcome:
    app: dict[str, Any] = msg.payload
    app_id, channel, app_type = app["application_id"], app["channel"], app["type"]
    assert deps.applications is not None, "the channel lanes need deps.applications"
    today = received_on(msg)
    model = validate_payload(app_type, app["payload"], today=today)
    if app_type == "transfer_out":  # F9: every 转出 goes through one flow (routes.transfer)
        return _to_transfer(msg, app, today)

    async def ask(operation: str, params: dict[str, Any]) -> list[dict[str, str]]:
        return await deps.tax.query(operation, model_for(operation).model_validate(params),
                                    serial=new_id())

    periods = (deps.settings.resident_collection if app_type in RESIDENT_YEAR_TYPES
               else CollectionPeriods())
    overrides = await decide(app_type, model, ask, today=today, periods=periods,
                             memo=deps.memo, destination=deps.core.check_transfer_destination)
    submits = to_tax_payload(app_type, model, today=today, **overrides)
    core_ref = await deps.core.register_application(
        {"application_id": app_id, "channel": channel, "type": app_type,
         "request_id": app["request_id"], "data": app["payload"]})
    source = f"channel.{channel}"
    if app_type in REVIEWED_TYPES:  # core reviews first; its verdict (channel.review) goes on
        await deps.applications.set_status(app_id, "awaiting_review", core_ref=core_ref)
        return Outcome(txn=TxnUpdate(app_id, APPLICATION, f"{channel}:{app['request_id']}",
                                     source, "awaiting_review", attempts=msg.attempt + 1),
                       detail={"core_ref": core_ref, "awaiting": "core review", **overrides})
    outputs = _submit_messages(app_id, source, submits, msg)
    # Only the count: part results live in their own rows, so a redelivered intake
    # (same outputs, same keys) cannot wipe results already recorded.
    await deps.applications.set_status(app_id, "registered", core_ref=core_ref,
                                       parts={"expected": len(outputs)})
    return Outcome(outputs=tuple(outputs),
                   txn=TxnUpdate(app_id, APPLICATION, f"{channel}:{app['request_id']}", source,
                                 "submitted", attempts=msg.attempt + 1),
                   detail={"core_ref": core_ref, "submits": [n for n, _ in submits],
                           **overrides})


def _to_transfer(msg: HubMessage, app: dict[str, Any], today: date) -> Outcome:
    """我的南京's 基本医疗保险转出 handed to F9's lane (``transfer.intake``): the same checks
    (arrears, the 转入地), the same record by application number and results to core and
    the platform as a 转出 pulled from the platform or entered at a window; the channel
    hears the outcome on its own lane (contracts/TRANSFER.md)."""
    app_id, channel = app["application_id"], app["channel"]
    transfer = from_channel(app_id, app["payload"], received=today)
    return Outcome(outputs=(intake_message(transfer, "my_nanjing", channel_app_id=app_id,
                                           causation_id=msg.message_id),),
                   txn=TxnUpdate(app_id, APPLICATION, f"{channel}:{app['request_id']}",
                                 f"channel.{channel}", "submitted", attempts=msg.attempt + 1),
                   detail={"transfer": transfer["application_no"]})


def _submit_messages(app_id: str, source: str, submits: list[tuple[str, dict[str, Any]]],
                     cause: HubMessage) -> list[HubMessage]:
    """One tax submit per operation, correlated to the application (``<id>-<n>`` for more)."""
    outputs: list[HubMessage] = []
    for i, (name, payload) in enumerate(submits):
        cid = app_id if len(submits) == 1 else f"{app_id}-{i + 1}"
        # Steps tax must see in order (准新生儿 stop, then the newborn) share the first
        # step's ordering entity and name it as the step they follow: the runtime holds
        # the second until the first is done, whichever reaches a consumer first.
        first = outputs[0] if outputs and name in ORDERED_AFTER_FIRST else None
        outputs.append(operation_message(catalogue_op(name), payload, source=source,
                                         target="tax", correlation_id=cid,
                                         causation_id=cause.message_id, salt=app_id,
                                         entity=first.entity_key if first else None,
                                         after=first.idempotency_key if first else ""))
    return outputs


async def reviewed(msg: HubMessage, deps: IntakeDeps) -> Outcome:
    """Core's review (seed 1679, 2070, 2126): approved -> the reviewed data goes to tax now;
    not approved -> the channel hears core's reason. Anything but an application waiting
    for its review (a repeat, a late verdict) changes nothing."""
    assert deps.applications is not None, "the channel lanes need deps.applications"
    review = ApplicationReview.model_validate(msg.payload)
    app = await deps.applications.get(review.application_id)
    if app is None:
        raise ValidationFailed([("data.application_id",
                                 f"no application {review.application_id}")])
    if app["status"] != "awaiting_review":
        return Outcome(detail={"application_id": review.application_id,
                               "ignored": f"status is {app['status']}"})
    app_id, channel, app_type = app["id"], app["channel"], app["type"]
    source = f"channel.{channel}"
    txn_key = f"{channel}:{app['request_id']}"
    if not review.approved:
        await deps.applications.set_status(app_id, "rejected", reason=f"CORE_REVIEW: "
                                           f"{review.reason}")
        result = {"application_id": app_id, "correlation_id": app_id, "status": "rejected",
                  "reason_code": "CORE_REVIEW_REFUSED", "reason_field": "",
                  "reason_text": review.reason, "final": True}
        return Outcome(outputs=(result_message(channel, result, cause=msg),),
                       txn=TxnUpdate(app_id, APPLICATION, txn_key, source, "rejected",
                                     "CORE_REVIEW_REFUSED", review.reason[:1000]),
                       detail={"application_id": app_id, "approved": False})
    day = app["created_at"].astimezone(BEIJING).date()
    submits = to_tax_payload(app_type, review.data or {}, today=day)
    outputs = _submit_messages(app_id, source, submits, msg)
    await deps.applications.set_status(app_id, "registered", parts={"expected": len(outputs)})
    return Outcome(outputs=tuple(outputs),
                   txn=TxnUpdate(app_id, APPLICATION, txn_key, source, "submitted"),
                   detail={"application_id": app_id, "approved": True,
                           "submits": [n for n, _ in submits]})


def _reason_field(text: str) -> tuple[str | None, str]:
    """Rules name the field first (``payload.community: ...``)."""
    head, sep, rest = text.partition(": ")
    return (head, rest) if sep and head.startswith("payload.") else (None, text)


async def intake_failed(msg: HubMessage, exc: HubError, deps: object) -> Outcome:
    """Refused by a rule, by core or by a bad catalogue payload: tell the channel why."""
    app = msg.payload
    code, text = exc.public_code, exc.public_text
    field, reason = _reason_field(text)
    if isinstance(exc, ValidationFailed) and exc.errors:
        field, reason = exc.errors[0]
    status = "rejected" if isinstance(exc, PermanentError) else "failed"
    result = {"application_id": app["application_id"], "correlation_id": msg.correlation_id,
              "status": status, "reason_code": code, "reason_field": field or "",
              "reason_text": reason, "final": True}
    return Outcome(outputs=(result_message(app["channel"], result, cause=msg),),
                   txn=TxnUpdate(msg.correlation_id, APPLICATION, app.get("request_id", "-"),
                                 msg.source, "rejected" if status == "rejected" else "dead",
                                 code, text, attempts=msg.attempt + 1))


async def push_result(msg: HubMessage, deps: ChannelPushDeps) -> Outcome:
    """Record one part; the part that completes the application pushes the final result.

    Each part is its own row (a repeat changes nothing), so parts never wait for
    each other and a 1,000-part application costs 1,000 writes, not 1,000 rounds;
    exactly one message claims the final push (``claim_final``), and a redelivery
    of that message pushes again (the channel deduplicates on the serial).
    """
    assert deps.applications is not None and deps.channels is not None
    part = msg.payload
    app_id = str(part["application_id"])
    app = await deps.applications.get(app_id)
    if app is None:
        raise ValidationFailed([("application_id", f"no application {app_id}")])
    expected = int((app.get("parts") or {}).get("expected") or 1)
    have = await deps.applications.record_part(app_id, str(part["correlation_id"]), part)
    if not part.get("final") and have < expected:
        return Outcome(detail={"application_id": app_id, "parts": have,
                               "expected": expected})
    if not await deps.applications.claim_final(app_id, msg.idempotency_key):
        return Outcome(detail={"application_id": app_id, "final": "pushed by another part"})
    results = await deps.applications.part_results(app_id)
    parts = {"expected": expected, "results": results}
    bad = [r for _, r in sorted(results.items()) if r["status"] != "synced"]
    if bad:
        await deps.applications.set_status(app_id, "rejected", reason_field=(
            bad[0]["reason_field"] or None), reason=f"{bad[0]['reason_code']}: "
            f"{bad[0]['reason_text']}", parts=parts)
    final = {"application_id": app_id, "request_id": app["request_id"], "type": app["type"],
             "status": "rejected" if bad else "completed",
             "reason_code": bad[0]["reason_code"] if bad else "",
             "reason_field": bad[0]["reason_field"] if bad else "",
             "reason": bad[0]["reason_text"] if bad else "",
             "parts": [{"correlation_id": k, **v} for k, v in sorted(results.items())]}
    channel = str(app["channel"])
    try:
        await deps.channels.push_result(channel, final, serial=app_id)
    except Exception:
        if not bad:  # synced at tax and core; the channel has yet to hear it
            await deps.applications.set_status(app_id, "synced", parts=parts)
        raise
    if not bad:  # one write in the common case: the channel heard it, so it is completed
        await deps.applications.set_status(app_id, "completed", parts=parts)
    return Outcome(txn=TxnUpdate(app_id, APPLICATION, f"{channel}:{app['request_id']}",
                                 f"channel.{channel}", "delivered" if not bad else "rejected",
                                 final["reason_code"] or "", final["reason"] or ""),
                   detail={"application_id": app_id, "status": final["status"]})


CHANNEL_ROUTES: Final = (
    Route("channel.intake", (APPLICATION,), "core", intake, intake_failed),
    Route("channel.review", (REVIEW,), "core", reviewed, calls_partner=False),
    *(Route(f"channel.{name}", (result_type(name),), f"channel.{name}", push_result)
      for name in CHANNEL_NAMES),
)

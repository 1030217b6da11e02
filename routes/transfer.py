"""F9 转移接续: the lanes of one flow for every way in (seed 003 1834-1847, 2526-2527, 2571).

    transfer.intake     an application (platform pull, window entry, 我的南京 transfer_out):
                        stored once by its number; 转出: tax asked for arrears, then (unless
                        the 转入地 is a 未联网地区) core for the 转入地 (normal 参保, no
                        pending 代办, H1106); 未联网地区: the 参保凭证 PDF produced and stored;
                        转入: accepted. The decision goes out as messages below.
    transfer.platform   a status (result) back to the national platform (T2402)
    core.transfer       a status (result) to core (H4201)

A refusal (arrears, the 转入地 not ready, a bad application) is 转出失败 with the field and
the reason, sent back to whoever asked: the platform (``transfer.platform``), the window
(the caseworker reads it by application number), 我的南京 (its channel lane,
``channel.result.my_nanjing``: the F1 callback). A 转出 that passes ends the contribution
at tax when the person has an employer (``EmployeeStop`` reason 02, as F1 did): for
我的南京 that submit carries the channel application's id, so tax's answer reaches the
channel through F1's own result path.

Every decision is compare-and-set from ``received``; a redelivered intake re-emits the
decided status's messages (their keys are one fact per application and status), so a
crash between deciding and publishing loses nothing and repeats nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date
from typing import Any, Final, Protocol

from adapters.core.port import CorePort
from adapters.tax.port import TaxPort
from adapters.transfer.port import TransferPlatformPort
from config.transfer import TransferSettings
from contracts.clock import BEIJING, today_beijing
from contracts.envelope import HubMessage, new_id
from contracts.errors import (
    BusinessRejected,
    ClientError,
    HubError,
    PermanentError,
    ValidationFailed,
)
from contracts.masking import mask_text
from contracts.messages import operation_message, partner_serial, result_message
from contracts.taxcat import model_for
from contracts.taxcat import op as catalogue_op
from contracts.transfer import (
    CORE_STATUS,
    INTAKE,
    PARTNER,
    PLATFORM_STATUS,
    Refusal,
    TransferApplication,
    check_application,
    check_application_no,
    core_status_message,
    platform_status_message,
    status_payload,
    to_wire,
)
from jobs.transfer_certificate import render_certificate
from kernel.runtime import Outcome, Route
from routes.channel_rules import check_arrears, check_transfer_destination
from routes.ports import Applications
from storage.journal import TxnUpdate

__all__ = ["CORE_LANE", "INTAKE_LANE", "PLATFORM_LANE", "TRANSFER_ROUTES", "TransferDeps",
           "TransferRecords", "decision_outputs", "intake", "intake_failed", "push_core",
           "push_platform", "split_reason"]

log = logging.getLogger("hub.transfer")

INTAKE_LANE: Final = "transfer.intake"
PLATFORM_LANE: Final = "transfer.platform"
CORE_LANE: Final = "core.transfer"
CHANNEL: Final = "my_nanjing"
FAILED: Final = frozenset({"out_failed", "refused", "failed"})


class TransferRecords(Protocol):
    """The part of ``storage.transfer.TransferStore`` the lanes use."""

    async def receive(self, app: TransferApplication, *, source: str, offline: bool,
                      actor: str, channel_app_id: str = "") -> tuple[dict[str, Any], bool]: ...

    async def get(self, application_no: str) -> dict[str, Any] | None: ...

    async def set_status(self, application_no: str, status: str, *,
                         expect: tuple[str, ...] = ("received",), reason_code: str = "",
                         reason_field: str = "", reason: str = "") -> bool: ...

    async def log(self, application_no: str, kind: str, status: str, ok: bool,
                  detail: str = "") -> None: ...

    async def refuse(self, application_no: str, *, source: str, raw: dict[str, Any],
                     refusals: list[Refusal], actor: str) -> tuple[dict[str, Any], bool]: ...

    async def save_certificate(self, application_no: str, pdf: bytes) -> str: ...

    async def certificate(self, application_no: str) -> tuple[bytes, str] | None: ...


class _Settings(Protocol):
    @property
    def transfer(self) -> TransferSettings: ...


class TransferDeps(Protocol):
    """``routes.transfer``: tax (arrears), core (转入地, results), the platform, the store,
    and the channel applications (我的南京)."""

    @property
    def settings(self) -> _Settings: ...
    @property
    def tax(self) -> TaxPort: ...
    @property
    def core(self) -> CorePort: ...
    @property
    def transfers(self) -> TransferRecords | None: ...
    @property
    def transfer_platform(self) -> TransferPlatformPort | None: ...
    @property
    def applications(self) -> Applications | None: ...


def _store(deps: TransferDeps) -> TransferRecords:
    if deps.transfers is None:
        raise ClientError("this hub has no F9 transfer store", partner=PARTNER)
    return deps.transfers


def split_reason(exc: HubError) -> tuple[str, str]:
    """(field, reason) of a refusal: a rule names its field first (``payload.id_number:
    ...``), a validation failure in its errors; the field without ``payload.``."""
    if isinstance(exc, ValidationFailed) and exc.errors:
        field, reason = exc.errors[0]
        return field.removeprefix("payload."), reason
    head, sep, rest = exc.public_text.partition(": ")
    if sep and head.startswith("payload."):
        return head.removeprefix("payload."), rest
    return "", exc.public_text


def _application(p: Mapping[str, Any], channel: bool) -> TransferApplication:
    got = check_application(p.get("application") or {})
    if isinstance(got, list):
        pre = "payload." if channel else ""
        raise ValidationFailed([(pre + r.field, r.reason) for r in got], partner=PARTNER)
    return got


def _employee_stop(app: TransferApplication, cause: HubMessage, channel_app_id: str,
                   stop_day: date) -> HubMessage:
    """终止参保 at tax (reason 02) for a 转出 with an employer; for 我的南京 correlated to the
    channel application, so tax's answer reaches the channel (F1's result path)."""
    o = catalogue_op("EmployeeStop")
    data = model_for("EmployeeStop").model_validate({
        "unit_credit_code": app.unit_credit_code, "id_number": app.id_number,
        "name": app.name, "stop_date": app.stop_date or stop_day, "reason_code": "02",
    }).model_dump(mode="json", exclude_none=True)
    return operation_message(o, data, source=f"channel.{CHANNEL}" if channel_app_id
                             else "transfer", target="tax",
                             correlation_id=channel_app_id or app.application_no,
                             causation_id=cause.message_id,
                             salt=channel_app_id or app.application_no)


def _channel_result(row: Mapping[str, Any], cause: HubMessage) -> HubMessage:
    app_id = str(row["channel_app_id"])
    failed = row["status"] in FAILED
    field = str(row.get("reason_field") or "")
    return result_message(CHANNEL, {
        "application_id": app_id, "correlation_id": app_id,
        "status": ("failed" if row["status"] == "failed" else "rejected") if failed
        else "synced", "reason_code": str(row.get("reason_code") or ""),
        "reason_field": f"payload.{field}" if field else "",
        "reason_text": str(row.get("reason") or ""), "final": True,
        "transfer_status": row["status"], "application_no": row["application_no"]},
        cause=cause)


async def decision_outputs(row: Mapping[str, Any], app: TransferApplication | None,
                           cause: HubMessage, deps: TransferDeps, *,
                           certificate: str = "") -> tuple[HubMessage, ...]:
    """The messages of a decided transfer: core always; the platform for its own
    applications and for an approved local one (filed there with the application), never
    for a 未联网地区; the asker (我的南京) and tax's 终止参保 of an approved 转出."""
    status, source = str(row["status"]), str(row["source"])
    facts = app.as_dict() if app is not None else dict(row)
    payload = status_payload(facts, status, reason_code=str(row.get("reason_code") or ""),
                             reason_field=str(row.get("reason_field") or ""),
                             reason=str(row.get("reason") or ""), source=source,
                             certificate=certificate)
    out: list[HubMessage] = []
    if app is not None:
        out.append(core_status_message(payload))
    online = not row.get("offline")
    if online and source == "platform":
        out.append(platform_status_message(payload))
    elif online and app is not None and status in ("out_approved", "in_accepted"):
        out.append(platform_status_message(payload, application=to_wire(app)))
    channel_app_id = str(row.get("channel_app_id") or "")
    stops = (app is not None and app.direction == "out" and bool(app.unit_credit_code)
             and status in ("out_approved", "offline_issued"))
    if stops and app is not None:
        at = row.get("received_at")
        day = at.astimezone(BEIJING).date() if at is not None else today_beijing()
        out.append(_employee_stop(app, cause, channel_app_id, day))
        if channel_app_id and deps.applications is not None:
            await deps.applications.set_status(channel_app_id, "registered",
                                               parts={"expected": 1})
    elif source == CHANNEL and channel_app_id:
        out.append(_channel_result(row, cause))
    return tuple(out)


def _txn(msg: HubMessage, no: str, status: str, exc: HubError | None = None) -> TxnUpdate:
    return TxnUpdate(msg.correlation_id, msg.type, no, msg.source, status,
                     exc.public_code if exc else "", exc.public_text if exc else "",
                     attempts=msg.attempt + 1)


async def intake(msg: HubMessage, deps: TransferDeps) -> Outcome:
    store = _store(deps)
    p = msg.payload
    source = str(p["source"])
    channel_app_id = str(p.get("channel_app_id") or "")
    app = _application(p, channel=source == CHANNEL)
    settings = deps.settings.transfer
    row, _ = await store.receive(app, source=source, offline=settings.is_offline(
        app.other_division), actor=source, channel_app_id=channel_app_id)
    no = app.application_no
    if row["status"] != "received":  # decided before (a redelivery): its messages again
        return Outcome(outputs=await decision_outputs(row, app, msg, deps),
                       txn=_txn(msg, no, "delivered"),
                       detail={"application_no": no, "status": row["status"], "again": True})
    certificate = ""
    if app.direction == "in":
        status = "in_accepted"
    else:
        rows = await deps.tax.query("QueryPersonArrears", model_for(
            "QueryPersonArrears").model_validate({"id_number": app.id_number}),
            serial=new_id())
        check_arrears("transfer_out", sum(int(r.get("arrears") or 0) for r in rows))
        if row["offline"]:
            pdf = render_certificate(app, issued=today_beijing(), issuer=settings.issuer)
            certificate = await store.save_certificate(no, pdf)
            status = "offline_issued"
        else:
            d = await deps.core.check_transfer_destination(app.id_number, app.target_division)
            check_transfer_destination(app.target_division, d.insured, d.pending_business,
                                       d.detail)
            status = "out_approved"
    await store.set_status(no, status)
    row = await store.get(no) or row
    return Outcome(outputs=await decision_outputs(row, app, msg, deps,
                                                  certificate=certificate),
                   txn=_txn(msg, no, "delivered"),
                   detail={"application_no": no, "direction": app.direction,
                           "status": row["status"], "offline": bool(row["offline"])})


async def intake_failed(msg: HubMessage, exc: HubError, deps: TransferDeps) -> Outcome:
    """转出失败 (a rule refused: arrears, the 转入地), refused (a bad application) or failed
    (a partner could not be asked after every retry): recorded with the field and the
    reason, and sent back to whoever asked."""
    p = msg.payload
    source = str(p.get("source") or "")
    raw = dict(p.get("application") or {})
    no = str(raw.get("application_no") or msg.correlation_id)
    field, reason = split_reason(exc)
    permanent = isinstance(exc, PermanentError)
    status = ("out_failed" if isinstance(exc, BusinessRejected) else "refused") if permanent \
        else "failed"
    log.warning("F9 transfer %s %s: %s %s", no, status, field, mask_text(reason))
    app: TransferApplication | None = None
    got = check_application(raw)
    if not isinstance(got, list):
        app = got
    row: dict[str, Any] | None = None
    if deps.transfers is not None and check_application_no(no) is None:
        if isinstance(got, list):  # the application itself is bad: kept, refused, masked
            await deps.transfers.refuse(no, source=source, raw=raw, refusals=got,
                                        actor=source)
        else:
            await deps.transfers.set_status(no, status, reason_code=exc.public_code,
                                            reason_field=field, reason=reason)
        row = await deps.transfers.get(no)
    if row is None:  # nothing stored: answer the asker from the message alone
        row = {"application_no": no, "source": source, "status": status,
               "channel_app_id": str(p.get("channel_app_id") or ""), "offline": False,
               "reason_code": exc.public_code, "reason_field": field, "reason": reason}
    outputs = await decision_outputs(row, app, msg, deps)
    return Outcome(outputs=outputs, txn=_txn(msg, no, "rejected" if permanent else "dead", exc),
                   detail={"application_no": no, "status": row["status"], "field": field})


async def push_platform(msg: HubMessage, deps: TransferDeps) -> Outcome:
    """T2402: one status to the platform; the platform drops a repeated serial."""
    if deps.transfer_platform is None:
        raise ClientError("partners.transfer is not configured", partner=PARTNER)
    body = dict(msg.payload)
    application = body.pop("application", None)
    await deps.transfer_platform.push_status(body, serial=partner_serial(msg),
                                             application=application)
    no = str(body["application_no"])
    if deps.transfers is not None:
        await deps.transfers.log(no, "platform", str(body["status"]), True)
    return Outcome(txn=_txn(msg, no, "delivered"),
                   detail={"application_no": no, "status": body["status"]})


async def push_core(msg: HubMessage, deps: TransferDeps) -> Outcome:
    """H4201: one status to core; core drops a repeated serial."""
    await deps.core.sync_transfer(dict(msg.payload), serial=partner_serial(msg))
    no = str(msg.payload["application_no"])
    if deps.transfers is not None:
        await deps.transfers.log(no, "core", str(msg.payload["status"]), True)
    return Outcome(txn=_txn(msg, no, "delivered"),
                   detail={"application_no": no, "status": msg.payload["status"]})


async def push_failed(msg: HubMessage, exc: HubError, deps: TransferDeps) -> Outcome:
    """Core or the platform refused a status, or it was given up on (then dead-lettered):
    written to the transfer's history, where a caseworker sees it by application number."""
    no = str(msg.payload.get("application_no") or "")
    kind = "platform" if msg.type == PLATFORM_STATUS else "core"
    log.error("ALERT F9 %s status %s of %s failed: %s", kind, msg.payload.get("status"), no,
              mask_text(exc.public_text))
    if deps.transfers is not None and no:
        await deps.transfers.log(no, kind, str(msg.payload.get("status") or ""), False,
                                 f"{exc.public_code}: {exc.public_text}")
    return Outcome(txn=_txn(msg, no, "rejected" if isinstance(exc, PermanentError) else "dead",
                            exc))


TRANSFER_ROUTES: Final[tuple[Route, ...]] = (
    Route(INTAKE_LANE, (INTAKE,), "core", intake, intake_failed),
    Route(PLATFORM_LANE, (PLATFORM_STATUS,), PARTNER, push_platform, push_failed),
    Route(CORE_LANE, (CORE_STATUS,), "core", push_core, push_failed),
)

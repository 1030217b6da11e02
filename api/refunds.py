"""F10 退费 doors (``contracts/FINANCE.md``).

    POST /partners/core/refunds                  core's H7001 退费审核 / H7002 退费回退 /
                                                 H7003 退费账户更正 (national envelope, signed
                                                 as ``core``); 422 names ``data.<field>``
    POST /partners/erp_finance/callback          finance's 已退费 flag or failure per order
                                                 (JSON, signed as ``erp_finance``); answered
                                                 ``{code, message, data}``
    POST /channels/online_hall/refunds/payments  网办大厅: finance's payments to a unit
                                                 (signed as the channel, X-Channel-*)
    POST /admin/refunds/closures                 ``{"target", "period"}``: a 销号 batch now
                                                 (operations or caseworker)
    GET  /admin/refunds/closures/{target}/{period}  where a batch stands (any role)
    POST /admin/refunds/imports?filename=x.csv   the 1918 template as CSV/XLSX (caseworker)
    GET  /admin/refunds/imports/{import_id}      an import's report (any role)
    GET  /admin/refunds/orders/{order_no}        an order, masked (any role)
    POST /admin/refunds/orders/{order_no}/resend  补发 of the order's current final status
                                                 to core (H7101; caseworker; audited as
                                                 refund.resend); never a payment to finance
    GET  /admin/refunds                          orders per status (any role)

Core's and finance's doors use the one partner HMAC scheme (``api.callers``); their
bodies are bounded before parsing. Core's events have their own door beside
``/partners/core/events`` because they are not tax catalogue events: the same envelope
and signature, another path.
"""

from __future__ import annotations

from typing import IO, Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.channels.auth import ChannelAuthError, verify_request
from adapters.core.translate import parse_national_request
from api.auth import Principal
from api.batches import receive_upload
from api.body import BodyRefused, json_too_deep, read_body
from api.callers import (
    PARTNER_PARAMETERS,
    CallerRefused,
    authenticate_partner,
    refusals,
    who_knocks,
)
from api.deps import Caseworker, Reader, State, require
from api.problems import answer, field_errors_of, hub_problem, problem
from contracts.errors import (
    HubError,
    PermanentError,
    TransientError,
    ValidationFailed,
    field_errors,
)
from contracts.finance import (
    INFNO_APPROVED,
    INFNO_CORRECTED,
    INFNO_WITHDRAW,
    PARTNER,
    TARGETS,
    PaymentQuery,
)
from contracts.national import NationalResponse
from contracts.signing import request_target
from services.refunds import CallbackRefused, RefundDesk
from services.resender import ANONYMOUS
from storage.audit import AuditLog
from storage.refunds import RefundStore

__all__ = ["router"]

router = APIRouter(tags=["F10 退费 (用友 finance)"])

HALL: Final = "online_hall"
MAX_FILE_BYTES: Final = 20 * 1024 * 1024
_DOC = {"parameters": PARTNER_PARAMETERS}
RunRole = Annotated[Principal, Depends(require("operations", "caseworker"))]


class ClosureRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    target: Literal["finance", "tax"]
    period: str


def desk_of(state: Any) -> RefundDesk:
    d = state.deps
    store = getattr(d, "refunds", None)
    if not isinstance(store, RefundStore):
        raise RuntimeError("no refund store in this hub")
    journal = d.journal if hasattr(d.journal, "write") else None
    return RefundDesk(store=store, publisher=d.publisher, journal=journal, tax=d.tax,
                      finance=getattr(d, "finance", None), audit=AuditLog(d.journal.engine))


async def _desk(state: State) -> RefundDesk:
    return desk_of(state)


Desk = Annotated[RefundDesk, Depends(_desk)]


def _error(exc: HubError) -> JSONResponse:
    return hub_problem(exc, 503 if isinstance(exc, TransientError) else 422)


# ------------------------------------------------------------------ core

@router.post("/partners/core/refunds", openapi_extra=_DOC,
             summary="Core's 退费审核 (H7001), 退费回退 (H7002), 退费账户更正 (H7003)")
async def core_refund(request: Request, state: State, desk: Desk) -> JSONResponse:
    door = "core refunds"
    try:
        body = await read_body(request, state.deps.settings.max_body_bytes)
        await authenticate_partner(state, request, body, door=door, allowed=("core",))
        if json_too_deep(body):
            raise BodyRefused(422, "TOO_DEEP", "body", "nested too deep")
    except (BodyRefused, CallerRefused) as exc:
        resp = NationalResponse.failure(f"{exc.field}: {exc.reason}", code=exc.code)
        return JSONResponse(resp.model_dump(mode="json"), status_code=exc.status)
    try:
        req = parse_national_request(body, state.deps.settings.max_body_bytes,
                                     known_infnos=(INFNO_APPROVED, INFNO_WITHDRAW,
                                                   INFNO_CORRECTED))
        out = await desk.core_event(req.infno, req.msgid, req.input)
    except ValidationFailed as exc:
        resp = NationalResponse.failure(exc.reason, code=exc.code)
        return JSONResponse(resp.model_dump(mode="json") | {"errors": [
            {"field": f, "reason": r} for f, r in exc.errors]},
            status_code=400 if exc.field == "body" else 422)
    except TransientError as exc:
        resp = NationalResponse.failure(exc.public_text, code=exc.public_code)
        return JSONResponse(resp.model_dump(mode="json"), status_code=503)
    return JSONResponse(NationalResponse.success(out, refmsgid=req.msgid).model_dump(
        mode="json"))


# ------------------------------------------------------------------ finance

def _answer(code: str, message: str, data: dict[str, Any] | None = None,
            status: int = 200) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "data": data or {}},
                        status_code=status)


@router.post(f"/partners/{PARTNER}/callback", openapi_extra=_DOC,
             summary="用友 finance: an order's 已退费 flag or failure")
async def finance_callback(request: Request, state: State, desk: Desk) -> JSONResponse:
    try:
        body = await read_body(request, state.deps.settings.max_body_bytes)
        await authenticate_partner(state, request, body, door="finance callback",
                                   allowed=(PARTNER,))
    except (BodyRefused, CallerRefused) as exc:
        return _answer(str(exc.status), f"{exc.field}: {exc.reason}", status=exc.status)
    try:
        out = await desk.callback(body)
    except CallbackRefused as exc:
        return _answer(exc.code, f"{exc.field}: {exc.reason}",
                       {"field": exc.field, "reason": exc.reason}, status=exc.status)
    except TransientError as exc:
        return _answer("5030", exc.public_text, status=503)
    return _answer("200", "received", out)


# ------------------------------------------------------------------ 网办大厅

@router.post(f"/channels/{HALL}/refunds/payments",
             summary="网办大厅: finance's payments to a unit's account (2576, 2596)")
async def hall_payments(request: Request, state: State, desk: Desk) -> JSONResponse:
    cfg = state.deps.settings.channels.get(HALL)
    try:
        body = await read_body(request, state.deps.settings.max_body_bytes)
        if cfg is None or state.deps.nonces is None:
            raise ChannelAuthError("channel", f"{HALL} is not configured")
        await verify_request(HALL, cfg, request.headers, body, state.deps.nonces,
                             method=request.method, target=request_target(request.scope),
                             now=state.clock() if state.clock else None)
    except BodyRefused as exc:
        return problem(exc.status, f"{exc.field}: {exc.reason}", code=exc.code,
                       errors=field_errors_of([(exc.field, exc.reason)]))
    except ChannelAuthError as exc:
        field, reason = exc.errors[0] if exc.errors else ("request", exc.code)
        refusals.refused("hall payments", who_knocks(request), exc.status, field, reason)
        return problem(exc.status, "; ".join(f"{f}: {r}" for f, r in exc.errors) or exc.code,
                       code=exc.code, errors=field_errors_of(exc.errors))
    except TransientError as exc:
        return problem(503, exc.public_text, code="UNAVAILABLE")
    try:
        query = PaymentQuery.model_validate_json(body)
    except ValidationError as exc:
        pairs = field_errors(exc, default="body")
        return problem(422, "; ".join(f"{f}: {r}" for f, r in pairs), code="VALIDATION",
                       errors=field_errors_of(pairs))
    try:
        return JSONResponse(await desk.payments(query))
    except (PermanentError, TransientError) as exc:
        return _error(exc)


# ------------------------------------------------------------------ admin

@router.post("/admin/refunds/closures", summary="A 销号 batch of a period now (F10)")
async def run_closure(body: ClosureRequest, principal: RunRole, desk: Desk) -> JSONResponse:
    try:
        out = await desk.run_closure(body.target, body.period, principal.user, principal.role)
    except (PermanentError, TransientError) as exc:
        return _error(exc)
    return JSONResponse(out, status_code=202)


@router.get("/admin/refunds/closures/{target}/{period}", summary="Where a 销号 batch stands")
async def closure_status(target: Annotated[str, Path(pattern="^(finance|tax)$")],
                         period: Annotated[str, Path(max_length=12)], principal: Reader,
                         desk: Desk) -> JSONResponse:
    assert target in TARGETS
    row = await desk.store.closure(f"{target}:{period}")
    if row is None:
        return problem(404, f"no 销号 batch {target} {period}")
    items = await desk.store.items(row["id"])
    by: dict[str, int] = {}
    for i in items:
        by[i["status"]] = by.get(i["status"], 0) + 1
    return JSONResponse(row | {"items": by})


@router.post("/admin/refunds/imports", summary="A refund import file (序号, 姓名, 身份证, "
             "退费起始时间, 退费终止时间; CSV UTF-8/GBK or XLSX)")
async def import_file(filename: str, request: Request, principal: Caseworker,
                      desk: Desk) -> JSONResponse:
    who = getattr(principal, "user", ANONYMOUS.user)

    async def start(spool: IO[bytes]) -> JSONResponse:
        try:
            report = await desk.import_file(filename, spool.read(), who)
        except TransientError as exc:
            return _error(exc)
        except ValidationFailed as exc:  # the whole file: unreadable, no header, too long
            return answer(422, {"code": "VALIDATION", "accepted": 0, "refused": [
                {"row": 0, "field": f, "reason": r} for f, r in exc.errors]})
        return JSONResponse(report, status_code=200 if report.get("duplicate") else 201)

    return await receive_upload(request, filename, MAX_FILE_BYTES, start)


@router.get("/admin/refunds/imports/{import_id}", summary="An import's report (masked)")
async def import_report(import_id: Annotated[str, Path(max_length=40)], principal: Reader,
                        desk: Desk) -> JSONResponse:
    report = await desk.store.import_report(import_id)
    if report is None:
        return problem(404, f"no import {import_id}")
    return JSONResponse(report)


@router.get("/admin/refunds/orders/{order_no}", summary="A refund order (masked)")
async def order(order_no: Annotated[str, Path(max_length=40)], principal: Reader,
                desk: Desk) -> JSONResponse:
    row = await desk.order(order_no)
    if row is None:
        return problem(404, f"no order {order_no}")
    return JSONResponse(row)


class Resend(BaseModel):
    """补发 of an order's final status to core: why, and the caller's id of this 补发."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    reason: str = Field(min_length=1, max_length=200)
    resend_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{8,64}$",
                                  description="the caller's id of this 补发: the same id "
                                  "again is a retry of it, not a new delivery")


@router.post("/admin/refunds/orders/{order_no}/resend",
             summary="补发 of a refund order's final status to core (never to finance)")
async def resend(order_no: Annotated[str, Path(min_length=1, max_length=40)], body: Resend,
                 principal: Caseworker, desk: Desk) -> JSONResponse:
    status, got = await desk.resend(order_no, reason=body.reason,
                                    actor=principal or ANONYMOUS, resend_id=body.resend_id)
    return answer(status, got)


@router.get("/admin/refunds", summary="Refund orders per status")
async def summary(principal: Reader, desk: Desk) -> JSONResponse:
    return JSONResponse(await desk.summary())

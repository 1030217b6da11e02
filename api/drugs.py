"""F11 线上购药: the online mall's and the pharmacy ERP's doors, and the caseworkers' desk.

    POST /partners/drugs/orders                  下单: the sale gate (signed as drug_mall)
    GET  /partners/drugs/orders/{no}             订单状态查询 (drug_mall)
    POST /partners/drugs/orders/{no}/payment     在线支付 done (drug_mall)
    POST /partners/drugs/orders/{no}/receipt     确认收货 (drug_mall)
    POST /partners/drugs/orders/{no}/returns     订单退货 (drug_mall)
    POST /partners/pharmacy/events               接单, 发货, 退款, refusal (pharmacy_erp)
    POST /partners/pharmacy/stock                stock snapshot or deltas (pharmacy_erp)
    POST /admin/drugs/catalogue/sync             pull core's 处方药 flags now (caseworker)
    GET  /admin/drugs/catalogue                  the catalogue the gate uses
    GET  /admin/drugs/stock/{pharmacy}           a pharmacy's stock at the hub
    POST /admin/drugs/stock/{pharmacy}/pull      ask the ERP for its stock (caseworker)
    GET  /admin/drugs/orders                     orders (``?status=``, ``?pharmacy_code=``)
    GET  /admin/drugs/orders/{no}                one order and its events
    POST /admin/drugs/orders/{no}/resend         补发 to the pharmacy or supervision (audited)
    POST /admin/drugs/reconciliations            对账 of a pharmacy's day (caseworker)
    GET  /admin/drugs/reconciliations/{pharmacy}/{day}
    POST /admin/drugs/clock                      one round of the clock now (operator)

A refusal names each field and its reason (422); a partner the gate needs that cannot
answer now is 503 (nothing stored). Every answer is masked. The work is
``services.drugs``.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any, Final, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api import problems
from api.body import BodyRefused, read_body
from api.callers import PARTNER_PARAMETERS, CallerRefused, authenticate_partner, note
from api.deps import Caseworker, Operator, Reader, State
from contracts.drugs import (
    MALL,
    ORDER_STATUSES,
    PHARMACY,
    DrugOrder,
    PaidNotice,
    PharmacyEvent,
    ReturnRequest,
    StockPush,
    refusals,
)
from contracts.masking import mask_text
from services.drugs import Answer, DrugDesk
from services.resender import ANONYMOUS
from storage.drugs import DrugStore, masked

__all__ = ["router"]

router = APIRouter(tags=["F11 线上购药"])

OrderNo = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{6,40}$")]
Pharmacy = Annotated[str, Path(pattern=r"^[A-Z0-9]{6,20}$")]
M = TypeVar("M", bound=BaseModel)
MAX_STOCK_BODY: Final = 2 * 1024 * 1024


async def _desk(state: State) -> DrugDesk:
    d = state.deps
    if not isinstance(d.drugs, DrugStore):
        raise RuntimeError("no F11 store in this hub")
    return DrugDesk(store=d.drugs, publisher=d.publisher, core=d.core,
                    settings=d.settings.drugs, prescription=d.prescription,
                    pharmacy=d.pharmacy, audit=state.audit)


Desk = Annotated[DrugDesk, Depends(_desk)]


def _answer(a: Answer) -> JSONResponse:
    return JSONResponse(json.loads(json.dumps(a.body, default=str)), status_code=a.status)


def _desk_answer(a: Answer) -> JSONResponse:
    """The desk's answers are the hub's own: an error is a problem document."""
    return problems.answer(a.status, json.loads(json.dumps(a.body, default=str)))


async def _signed(request: Request, state: State, partner: str, door: str,
                  limit: int | None = None) -> bytes | JSONResponse:
    """The body of a request ``partner`` signed, or the refusal to answer."""
    try:
        body = await read_body(request, limit or state.deps.settings.max_body_bytes)
        config = state.deps.settings.partners.get(partner)
        if config is None or not config.secret.get_secret_value():
            raise note(door, request, CallerRefused(
                401, "UNAUTHORIZED", "partner", f"this hub takes no calls from {partner} "
                f"(partners.{partner} with a secret)"))
        await authenticate_partner(state, request, body, door=door, allowed=(partner,))
    except (BodyRefused, CallerRefused) as exc:
        return JSONResponse({"code": exc.code, "refused": [{"field": exc.field,
                                                            "reason": exc.reason}]},
                            status_code=exc.status)
    return body


def _parse(model: type[M], body: bytes) -> M | JSONResponse:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        return JSONResponse({"accepted": False, "code": "INVALID", "refused": [
            {"field": f, "reason": mask_text(r)} for f, r in refusals(exc)]}, status_code=422)


async def _mall(request: Request, state: State, model: type[M]) -> M | JSONResponse:
    body = await _signed(request, state, MALL, "drug mall")
    return body if isinstance(body, JSONResponse) else _parse(model, body)


# ---------------------------------------------------------------- the mall

@router.post("/partners/drugs/orders", openapi_extra={"parameters": PARTNER_PARAMETERS},
             summary="下单: the sale gate (处方, 医保资格, 单次购药量, stock)")
async def place_order(request: Request, state: State, desk: Desk) -> JSONResponse:
    order = await _mall(request, state, DrugOrder)
    return order if isinstance(order, JSONResponse) else _answer(await desk.place(order))


@router.get("/partners/drugs/orders/{order_no}",
            openapi_extra={"parameters": PARTNER_PARAMETERS}, summary="订单状态查询")
async def order_status(order_no: OrderNo, request: Request, state: State,
                       desk: Desk) -> JSONResponse:
    body = await _signed(request, state, MALL, "drug mall")
    return body if isinstance(body, JSONResponse) else _answer(await desk.order(order_no))


@router.post("/partners/drugs/orders/{order_no}/payment",
             openapi_extra={"parameters": PARTNER_PARAMETERS}, summary="在线支付 done")
async def payment(order_no: OrderNo, request: Request, state: State,
                  desk: Desk) -> JSONResponse:
    notice = await _mall(request, state, PaidNotice)
    return notice if isinstance(notice, JSONResponse) \
        else _answer(await desk.paid(order_no, notice))


@router.post("/partners/drugs/orders/{order_no}/receipt",
             openapi_extra={"parameters": PARTNER_PARAMETERS}, summary="确认收货")
async def receipt(order_no: OrderNo, request: Request, state: State,
                  desk: Desk) -> JSONResponse:
    body = await _signed(request, state, MALL, "drug mall")
    return body if isinstance(body, JSONResponse) else _answer(await desk.received(order_no))


@router.post("/partners/drugs/orders/{order_no}/returns",
             openapi_extra={"parameters": PARTNER_PARAMETERS}, summary="订单退货")
async def returns(order_no: OrderNo, request: Request, state: State,
                  desk: Desk) -> JSONResponse:
    req = await _mall(request, state, ReturnRequest)
    return req if isinstance(req, JSONResponse) \
        else _answer(await desk.return_order(order_no, req))


# ---------------------------------------------------------------- the pharmacy ERP

@router.post("/partners/pharmacy/events", openapi_extra={"parameters": PARTNER_PARAMETERS},
             summary="The pharmacy ERP: 接单, 发货, 退款 done, or its refusal of an order")
async def pharmacy_event(request: Request, state: State, desk: Desk) -> JSONResponse:
    body = await _signed(request, state, PHARMACY, "pharmacy events")
    if isinstance(body, JSONResponse):
        return body
    ev = _parse(PharmacyEvent, body)
    return ev if isinstance(ev, JSONResponse) else _answer(await desk.erp_event(ev))


@router.post("/partners/pharmacy/stock", openapi_extra={"parameters": PARTNER_PARAMETERS},
             summary="The pharmacy ERP's stock: a snapshot or deltas (never below zero)")
async def pharmacy_stock(request: Request, state: State, desk: Desk) -> JSONResponse:
    body = await _signed(request, state, PHARMACY, "pharmacy stock", MAX_STOCK_BODY)
    if isinstance(body, JSONResponse):
        return body
    push = _parse(StockPush, body)
    return push if isinstance(push, JSONResponse) else _answer(await desk.stock_push(push))


# ---------------------------------------------------------------- the desk

@router.post("/admin/drugs/catalogue/sync", summary="Pull core's catalogue (处方药 flags) now")
async def catalogue_sync(principal: Caseworker, desk: Desk) -> JSONResponse:
    return _desk_answer(await desk.sync_catalogue(principal or ANONYMOUS))


@router.get("/admin/drugs/catalogue", summary="The catalogue the sale gate uses")
async def catalogue(principal: Reader, desk: Desk) -> JSONResponse:
    drugs = await desk.store.catalogue()
    return JSONResponse({"drugs": [d.model_dump() for d in drugs.values()],
                         "synced_at": str(await desk.store.catalogue_synced_at() or "")})


@router.get("/admin/drugs/stock/{pharmacy_code}", summary="A pharmacy's stock at the hub")
async def stock(pharmacy_code: Pharmacy, principal: Reader, desk: Desk) -> JSONResponse:
    return JSONResponse({"pharmacy_code": pharmacy_code,
                         "stock": await desk.store.stock(pharmacy_code)})


@router.post("/admin/drugs/stock/{pharmacy_code}/pull", summary="Ask the ERP for its stock")
async def stock_pull(pharmacy_code: Pharmacy, principal: Caseworker,
                     desk: Desk) -> JSONResponse:
    return _desk_answer(await desk.pull_stock(pharmacy_code, principal or ANONYMOUS))


@router.get("/admin/drugs/orders", summary="Orders, by status or pharmacy")
async def orders(principal: Reader, desk: Desk, status: str | None = None,
                 pharmacy_code: Annotated[str | None, Query(pattern=r"^[A-Z0-9]{6,20}$")] = None,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                 offset: Annotated[int, Query(ge=0, le=2**31)] = 0) -> JSONResponse:
    if status is not None and status not in ORDER_STATUSES:
        return problems.answer(422, {"refused": [{"field": "status", "reason": "one of "
                                                  + ", ".join(ORDER_STATUSES)}]})
    rows = await desk.store.orders(status=status, pharmacy_code=pharmacy_code, limit=limit,
                                   offset=offset)
    return _desk_answer(Answer(200, {"counts": await desk.store.counts(),
                                "orders": [masked(r) for r in rows]}))


@router.get("/admin/drugs/orders/{order_no}", summary="One order and its events")
async def one_order(order_no: OrderNo, principal: Reader, desk: Desk) -> JSONResponse:
    got = await desk.order(order_no)
    if got.status == 200:
        got.body["events"] = [masked(e) for e in await desk.store.events(order_no)]
    return _desk_answer(got)


class Resend(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    target: Literal["pharmacy", "supervision"]
    reason: str = Field(min_length=1, max_length=200)


@router.post("/admin/drugs/orders/{order_no}/resend",
             summary="补发 of an order to the pharmacy ERP or the supervision platform")
async def resend(order_no: OrderNo, body: Resend, principal: Caseworker,
                 desk: Desk) -> JSONResponse:
    return _desk_answer(await desk.resend(order_no, body.target, body.reason,
                                     principal or ANONYMOUS))


class Reconcile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    pharmacy_code: str = Field(pattern=r"^[A-Z0-9]{6,20}$")
    day: date


@router.post("/admin/drugs/reconciliations", summary="药店订单对账 of one pharmacy's day")
async def run_reconciliation(body: Reconcile, principal: Caseworker,
                             desk: Desk) -> JSONResponse:
    return _desk_answer(await desk.reconcile(body.pharmacy_code, body.day,
                                        principal or ANONYMOUS))


@router.get("/admin/drugs/reconciliations/{pharmacy_code}/{day}",
            summary="The latest 对账 of a pharmacy's day")
async def reconciliation(pharmacy_code: Pharmacy, day: date, principal: Reader,
                         desk: Desk) -> JSONResponse:
    row = await desk.store.reconciliation(pharmacy_code, day)
    if row is None:
        return problems.answer(404, {"refused": [{"field": "day", "reason": "not reconciled"}]})
    return _desk_answer(Answer(200, masked(row)))


@router.post("/admin/drugs/clock", summary="One round of the F11 clock now (收货, 对账, 目录)")
async def clock(principal: Operator, desk: Desk) -> JSONResponse:
    got: dict[str, Any] = await desk.tick()
    return JSONResponse(got)

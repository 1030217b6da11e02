"""The pharmacy ERP (药房ERP) of F11, on a real socket, and core's sample drug catalogue.

The hub calls it, signed as ``hub`` with ``partners.pharmacy_erp.secret``:

    POST /erp/orders          a paid order to take (接单); effect ``order:<no>``
    POST /erp/refunds         a 退货退款 request; effect ``refund:<no>``
    GET  /erp/stock           ``?pharmacy_code=``: what it has on hand
    GET  /erp/reconciliation  ``?pharmacy_code=&day=``: its day's sales and refunds (对账)

A repeated ``X-Hub-Serial`` is a replay (counted in ``replays``, no effect). The ERP
answers ``{"code": "0", ...}``; its refusal is another code. After taking an order it
tells the hub 接单 (``accepted``) and after a refund 退款 done (``refunded``), signed as
``pharmacy_erp``, at ``POST <hub>/partners/pharmacy/events``; ``ship`` sends 发货.

Fault switches (``/_sim/faults``, matched on ``order:<no>`` / ``refund:<no>``, operation
``orders`` or ``refunds``): ``http_5xx`` (503, nothing taken), ``timeout`` (taken, the
answer late), ``slow`` (late, then taken), ``reject`` (its refusal: code and text, e.g.
缺货), ``http_4xx``, ``duplicate`` (taken, and its 接单 event sent to the hub twice).
``book.drop_from_recon`` leaves orders out of its 对账 answer (a difference to find).
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from adapters.signing import SignedAuth
from contracts.clock import today_beijing
from contracts.drugs import PHARMACY
from simulators.simkit import SimState, fault_response, refused, signed_body, sim_router

__all__ = ["SAMPLE_DRUGS", "ErpBook", "create_app", "push_stock", "sample_drug_catalogue",
           "send_event"]

SAMPLE_DRUGS: tuple[dict[str, Any], ...] = (
    {"med_list_codg": "XJ01CAA040A001010100001", "med_list_name": "阿莫西林胶囊",
     "rx_flag": "1", "hi_flag": "1", "lmt_qty": "5"},
    {"med_list_codg": "XN02BEA001A001010100002", "med_list_name": "对乙酰氨基酚片",
     "rx_flag": "0", "hi_flag": "1", "lmt_qty": "10"},
    {"med_list_codg": "XC10AAA040A001010100003", "med_list_name": "阿托伐他汀钙片",
     "rx_flag": "1", "hi_flag": "1", "lmt_qty": "6"},
    {"med_list_codg": "XR06AXL010A001010100004", "med_list_name": "氯雷他定片",
     "rx_flag": "0", "hi_flag": "1", "lmt_qty": ""},
    {"med_list_codg": "XA02BCA010A001010100005", "med_list_name": "奥美拉唑肠溶胶囊",
     "rx_flag": "1", "hi_flag": "1", "lmt_qty": ""},
    {"med_list_codg": "ZA04BAA001A001010100006", "med_list_name": "板蓝根颗粒",
     "rx_flag": "0", "hi_flag": "0", "lmt_qty": "20"},
    {"med_list_codg": "XA10BAA017A001010101445", "med_list_name": "二甲双胍片",
     "rx_flag": "1", "hi_flag": "1", "lmt_qty": "4"},
    {"med_list_codg": "XC09AAA068A001010100722", "med_list_name": "卡托普利片",
     "rx_flag": "1", "hi_flag": "1", "lmt_qty": "4"},
)
"""Core's drug catalogue in the simulators (H6102 wire names): 处方药 and OTC, limits."""


def sample_drug_catalogue() -> list[dict[str, Any]]:
    return [dict(d) for d in SAMPLE_DRUGS]


def _ok(data: Any = None, message: str = "ok") -> JSONResponse:
    return JSONResponse({"code": "0", "message": message, "data": data})


@dataclass
class ErpBook:
    """What the ERP holds and did: stock, orders taken, refunds, its day's lines."""

    stock: dict[tuple[str, str], int] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    serials: set[str] = field(default_factory=set)
    sale_day: dict[str, str] = field(default_factory=dict)
    refund_day: dict[str, str] = field(default_factory=dict)
    drop_from_recon: set[str] = field(default_factory=set)
    bad_signatures: int = 0
    auto_accept: bool = True
    auto_refund: bool = True
    hub_url: str = ""
    secret: str = ""
    """What the ERP signs its calls to the hub with (``partners.pharmacy_erp.secret``)."""
    event_answers: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    """event id -> the hub's HTTP status for each time it was sent."""
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def seed(self, pharmacy_code: str, quantities: dict[str, int]) -> None:
        for code, n in quantities.items():
            self.stock[(pharmacy_code, code)] = n

    def stock_of(self, pharmacy_code: str) -> dict[str, int]:
        return {d: n for (p, d), n in self.stock.items() if p == pharmacy_code}

    async def tell_hub(self, event: dict[str, Any], times: int = 1) -> None:
        """Send the hub an event (``times`` > 1: the same event again, a duplicate)."""
        if not self.hub_url:
            return
        async with httpx.AsyncClient(timeout=10) as http:
            for _ in range(times):
                try:
                    r = await send_event(http, self.hub_url, self.secret, event)
                    self.event_answers[str(event["event_id"])].append(r.status_code)
                except httpx.HTTPError:
                    self.event_answers[str(event["event_id"])].append(0)

    def later(self, event: dict[str, Any], times: int = 1) -> None:
        task = asyncio.get_running_loop().create_task(self.tell_hub(event, times))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def ship(self, order_no: str, logistics_no: str = "") -> int:
        """发货: tell the hub (answers its status)."""
        event = {"event_id": f"ship-{order_no}", "order_no": order_no, "event": "shipped",
                 "logistics_company": "顺丰", "logistics_no": logistics_no or f"SF{order_no}"}
        await self.tell_hub(event)
        return self.event_answers[event["event_id"]][-1]

    async def settle(self) -> None:
        """Wait for the events still being sent."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def create_app(secret: str, state: SimState | None = None,
               book: ErpBook | None = None) -> FastAPI:
    sim = state or SimState()
    erp = book if book is not None else ErpBook()
    app = FastAPI(title="药房ERP simulator (F11)")
    app.state.sim = sim
    app.state.book = erp
    app.include_router(sim_router(sim))

    async def take(request: Request, operation: str) -> JSONResponse:
        body = await signed_body(request, secret, erp)
        if isinstance(body, JSONResponse):
            return body
        payload = json.loads(body)
        no = str(payload.get("order_no") or "")
        kind = "order" if operation == "orders" else "refund"
        fault = sim.draw(f"{kind}:{no}", operation)
        if (early := fault_response(fault, "ERP", reject_answers=True)) is not None:
            return early
        if fault is not None and fault.kind == "slow":
            await sim.sleep_for(fault)
        serial = request.headers.get("x-hub-serial", "")
        if serial and serial in erp.serials:
            sim.log.replays += 1
            return _ok({"order_no": no}, "duplicate")
        erp.serials.add(serial)
        sim.log.record(key=f"{kind}:{no}", entity=no, value=kind)
        day = today_beijing().isoformat()
        pharmacy = str(payload.get("pharmacy_code") or "")
        if kind == "order":
            erp.orders[no] = payload
            erp.sale_day[no] = day
            for item in payload.get("items") or []:
                key = (pharmacy, str(item["drug_code"]))
                erp.stock[key] = erp.stock.get(key, 0) - int(item["quantity"])
            if erp.auto_accept:
                erp.later({"event_id": f"accept-{no}", "order_no": no, "event": "accepted"},
                          times=2 if fault is not None and fault.kind == "duplicate" else 1)
        else:
            erp.refunds[no] = payload
            erp.refund_day[no] = day
            for item in payload.get("items") or []:
                key = (pharmacy, str(item["drug_code"]))
                erp.stock[key] = erp.stock.get(key, 0) + int(item["quantity"])
            if erp.auto_refund:
                erp.later({"event_id": f"refund-{no}", "order_no": no, "event": "refunded",
                           "refund_amount": str(payload.get("amount"))},
                          times=2 if fault is not None and fault.kind == "duplicate" else 1)
        if fault is not None and fault.kind == "timeout":  # took it, the answer is late
            await sim.sleep_for(fault)
        return _ok({"order_no": no})

    @app.post("/erp/orders")
    async def orders(request: Request) -> JSONResponse:
        return await take(request, "orders")

    @app.post("/erp/refunds")
    async def refunds(request: Request) -> JSONResponse:
        return await take(request, "refunds")

    @app.get("/erp/stock")
    async def stock(request: Request, pharmacy_code: str) -> JSONResponse:
        if (denied := refused(secret, request, b"", erp)) is not None:
            return denied
        return _ok({"items": [{"drug_code": d, "quantity": max(0, n)}
                              for d, n in sorted(erp.stock_of(pharmacy_code).items())]})

    @app.get("/erp/reconciliation")
    async def reconciliation(request: Request, pharmacy_code: str, day: str) -> JSONResponse:
        if (denied := refused(secret, request, b"", erp)) is not None:
            return denied
        if (fault := sim.draw(f"recon:{pharmacy_code}", "reconciliation")) is not None \
                and fault.kind in ("http_5xx", "soap_fault"):
            return JSONResponse({"detail": "ERP unavailable (simulated)"}, status_code=503)
        lines = [{"order_no": no, "kind": "sale", "amount": str(o["total"])}
                 for no, o in erp.orders.items() if erp.sale_day.get(no) == day
                 and o.get("pharmacy_code") == pharmacy_code and no not in erp.drop_from_recon]
        lines += [{"order_no": no, "kind": "refund", "amount": str(r["amount"])}
                  for no, r in erp.refunds.items() if erp.refund_day.get(no) == day
                  and r.get("pharmacy_code") == pharmacy_code]
        sales = [Decimal(x["amount"]) for x in lines if x["kind"] == "sale"]
        refunds = [Decimal(x["amount"]) for x in lines if x["kind"] == "refund"]
        return _ok({"pharmacy_code": pharmacy_code, "day": day, "sales": len(sales),
                    "sales_amount": str(sum(sales, Decimal("0.00"))),
                    "refunds": len(refunds),
                    "refund_amount": str(sum(refunds, Decimal("0.00"))), "lines": lines})

    return app


async def send_event(http: httpx.AsyncClient, hub_url: str, secret: str,
                     event: dict[str, Any]) -> httpx.Response:
    """The ERP tells the hub of an order (接单, 发货, 退款 done, refusal)."""
    return await http.post(f"{hub_url}/partners/pharmacy/events", json=event,
                           auth=SignedAuth(PHARMACY, secret))


async def push_stock(http: httpx.AsyncClient, hub_url: str, secret: str,
                     push: dict[str, Any]) -> httpx.Response:
    """The ERP pushes its stock (snapshot or deltas) to the hub."""
    return await http.post(f"{hub_url}/partners/pharmacy/stock", json=push,
                           auth=SignedAuth(PHARMACY, secret))

"""The 医保监管平台 of F11 on a real socket: ``POST /supervision/records`` takes each paid
online-drug order with its 用药情况 (``kind`` order) and each refund (``kind`` refund).

It verifies the hub's signature (``X-Partner: hub``, ``partners.supervision.secret``),
drops a repeated ``X-Hub-Serial`` as a replay, and counts each record it takes in its
``EffectLog`` (key ``<kind>:<order_no>``). Fault switches (``/_sim/faults``, matched on
``<kind>:<order_no>``): ``http_5xx`` (nothing taken), ``timeout`` (taken, the answer late),
``slow``, ``reject`` (its refusal, code and text), ``http_4xx``, ``duplicate`` (taken, but
the answer is lost: a 502, so the hub sends the same record again, which must count once).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from simulators.simkit import SimState, fault_response, signed_body, sim_router

__all__ = ["SupervisionBook", "create_app"]


@dataclass
class SupervisionBook:
    """What the platform holds: ``<kind>:<order_no>`` -> the record."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    serials: set[str] = field(default_factory=set)
    bad_signatures: int = 0

    def orders(self) -> set[str]:
        return {k.split(":", 1)[1] for k in self.records if k.startswith("order:")}

    def refunds(self) -> set[str]:
        return {k.split(":", 1)[1] for k in self.records if k.startswith("refund:")}


def create_app(secret: str, state: SimState | None = None,
               book: SupervisionBook | None = None) -> FastAPI:
    sim = state or SimState()
    kept = book if book is not None else SupervisionBook()
    app = FastAPI(title="医保监管平台 simulator (F11)")
    app.state.sim = sim
    app.state.book = kept
    app.include_router(sim_router(sim))

    @app.post("/supervision/records")
    async def records(request: Request) -> JSONResponse:
        body = await signed_body(request, secret, kept)
        if isinstance(body, JSONResponse):
            return body
        record = json.loads(body)
        key = f"{record.get('kind')}:{record.get('order_no')}"
        fault = sim.draw(key, "records")
        if (early := fault_response(fault, "platform", reject_answers=True)) is not None:
            return early
        if fault is not None and fault.kind == "slow":
            await sim.sleep_for(fault)
        serial = request.headers.get("x-hub-serial", "")
        if serial and serial in kept.serials:
            sim.log.replays += 1
            return JSONResponse({"code": "0", "message": "duplicate", "data": None})
        kept.serials.add(serial)
        sim.log.record(key=key, entity=str(record.get("order_no") or ""),
                       value=record.get("kind"))
        kept.records[key] = record
        if fault is not None and fault.kind == "duplicate":
            return JSONResponse({"detail": "answer lost (simulated)"}, status_code=502)
        if fault is not None and fault.kind == "timeout":
            await sim.sleep_for(fault)
        return JSONResponse({"code": "0", "message": "ok", "data": None})

    return app

"""The 医疗救助平台 (medical-assistance platform) of F7: it receives the records the hub
approved (1527) on ``POST /assistance/recipients``.

It verifies the hub's signature (``X-Partner: hub``, ``partners.assistance.secret``),
drops a repeated ``X-Hub-Serial`` as a replay, and counts each record it takes in its
``EffectLog`` (key ``push:<record_id>:<action>``). Fault switches (``/_sim/faults``):
``http_5xx``, ``timeout``/``slow``, ``http_4xx``/``reject``, matched on the record id.

The platform also asks the hub (1497): ``query_person`` is its 人员认定 call, signed as
``assistance`` with the same secret.

阳光惠民 (1497) is served by the same app: ``POST /sunshine/recipients`` takes a page of
the day's 救助人员 table (``sunshine_secret``, ``partners.sunshine``), drops a repeated
``X-Hub-Serial``, and counts each row (key ``sunshine:<day>:<ref>``) in its
``SunshineBook``; fault switches match ``sunshine:<day>``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from adapters.signing import SignedAuth
from contracts.difficulty import ASSISTANCE
from contracts.signing import PARTNER_HEADERS, SignatureRefused, check_request, request_target
from simulators.simkit import SimState, sim_router

__all__ = ["AssistanceBook", "SunshineBook", "create_app", "query_person"]


@dataclass
class AssistanceBook:
    """The platform's 救助对象: record id -> what it took; persons in force."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    serials: set[str] = field(default_factory=set)
    bad_signatures: int = 0

    def in_force(self) -> set[tuple[str, str]]:
        """(ID number, identity) entered and not exited, in arrival order."""
        out: set[tuple[str, str]] = set()
        for r in self.records.values():
            key = (str(r["id_number"]), str(r["identity"]))
            if r.get("action") == "enter":
                out.add(key)
            else:
                out.discard(key)
        return out


@dataclass
class SunshineBook:
    """What 阳光惠民 took: day -> ref -> row; its own effect log (``state``)."""

    days: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    serials: set[str] = field(default_factory=set)
    pages: int = 0
    bad_signatures: int = 0
    state: SimState = field(default_factory=SimState)

    def rows(self, day: str) -> dict[str, dict[str, Any]]:
        return self.days.setdefault(day, {})


def create_app(secret: str, state: SimState | None = None,
               book: AssistanceBook | None = None, *, sunshine_secret: str | None = None,
               sunshine: SunshineBook | None = None) -> FastAPI:
    sim = state or SimState()
    kept = book if book is not None else AssistanceBook()
    sun = sunshine if sunshine is not None else SunshineBook()
    sun_secret = secret if sunshine_secret is None else sunshine_secret
    app = FastAPI(title="医疗救助平台 simulator (F7)")
    app.state.sim = sim
    app.state.book = kept
    app.state.sunshine = sun
    app.include_router(sim_router(sim))

    @app.post("/sunshine/recipients")
    async def sunshine_rows(request: Request) -> JSONResponse:
        body = await request.body()
        lower = {k.lower(): v for k, v in request.headers.items()}
        try:
            check_request(sun_secret, method="POST", target=request_target(request.scope),
                          caller=lower.get((PARTNER_HEADERS.caller or "").lower(), ""),
                          headers=lower, body=body, names=PARTNER_HEADERS)
        except SignatureRefused as exc:
            sun.bad_signatures += 1
            return JSONResponse({"detail": exc.reason}, status_code=401)
        page = json.loads(body)
        day = str(page.get("day") or "")
        fault = sun.state.draw(f"sunshine:{day}", "recipients")
        if fault is not None and fault.kind in ("http_5xx", "soap_fault"):
            return JSONResponse({"detail": "阳光惠民 unavailable (simulated)"}, status_code=503)
        if fault is not None and fault.kind in ("http_4xx", "reject"):
            return JSONResponse({"detail": fault.text}, status_code=400)
        await sun.state.sleep_for(fault)
        serial = request.headers.get("x-hub-serial", "")
        if serial and serial in sun.serials:
            sun.state.log.replays += 1
            return JSONResponse({"status": "replay"})
        sun.serials.add(serial)
        sun.pages += 1
        for row in page.get("rows") or []:
            ref = str(row.get("ref") or "")
            sun.state.log.record(key=f"sunshine:{day}:{ref}", entity=ref, value=day)
            sun.rows(day)[ref] = row
        return JSONResponse({"status": "ok", "rows": len(page.get("rows") or [])})

    @app.post("/assistance/recipients")
    async def recipients(request: Request) -> JSONResponse:
        body = await request.body()
        lower = {k.lower(): v for k, v in request.headers.items()}
        try:
            check_request(secret, method="POST", target=request_target(request.scope),
                          caller=lower.get((PARTNER_HEADERS.caller or "").lower(), ""),
                          headers=lower, body=body, names=PARTNER_HEADERS)
        except SignatureRefused as exc:
            kept.bad_signatures += 1
            return JSONResponse({"detail": exc.reason}, status_code=401)
        payload = json.loads(body)
        rid = str(payload.get("record_id") or "")
        fault = sim.draw(rid, "recipients")
        if fault is not None and fault.kind in ("http_5xx", "soap_fault"):
            return JSONResponse({"detail": "platform unavailable (simulated)"}, status_code=503)
        if fault is not None and fault.kind in ("http_4xx", "reject"):
            return JSONResponse({"detail": fault.text}, status_code=400)
        if fault is not None and fault.kind == "slow":
            await sim.sleep_for(fault)
        serial = request.headers.get("x-hub-serial", "")
        if serial and serial in kept.serials:
            sim.log.replays += 1
        else:
            kept.serials.add(serial)
            sim.log.record(key=f"push:{rid}:{payload.get('action')}",
                           entity=str(payload.get("id_number") or ""), value=payload.get("action"))
            kept.records[rid] = payload
        if fault is not None and fault.kind == "timeout":  # took it, the answer is late
            await sim.sleep_for(fault)
        return JSONResponse({"status": "ok", "record_id": rid})

    return app


async def query_person(http: httpx.AsyncClient, hub_url: str, id_number: str,
                       secret: str) -> httpx.Response:
    """人员认定: the platform asks the hub whether ``id_number`` is a recognised 困难人员."""
    return await http.post(f"{hub_url}/partners/assistance/queries/person",
                           json={"id_number": id_number}, auth=SignedAuth(ASSISTANCE, secret))

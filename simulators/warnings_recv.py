"""The departments' side of F8 高额费用预警: they receive signed warning lists and acknowledge.

One app for the four departments (民政 ``civil_affairs``, 农业农村 ``agriculture``,
退役军人事务 ``veterans``, 工会 ``union``). ``POST /warnings/{department}`` verifies
the hub's HMAC signature (``X-Partner: hub``, keyed with the department's secret;
a bad one is 401 and counted), deduplicates on the record's serial (a repeat gets
the first acknowledgement and counts as a replay, not an effect) and answers
``{"code": "0", "ack_no": ...}``. Each record taken is one effect in
``SimState.log`` keyed ``<department>:<month>:<serial>``: tests count at the
department, never in the hub's log.

Faults from ``/_sim/faults`` (``operation`` = department, ``match`` on the key):
http_5xx/soap_fault 503 and http_4xx 400 before any effect; reject answers
``code`` != 0 (no effect); slow answers after the delay; timeout takes the record,
then sleeps (the hub gives up and sends again: a replay); duplicate takes the
record twice, as a network repeating it would (the second is a replay).

Routes: ``POST /warnings/{department}``, ``GET /warnings/{department}``,
``GET /warnings/health``, ``/_sim/*``. ``sample_people`` makes a population that
exercises every rule (``jobs.warnings``).
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from adapters.signing import MemoryNonceStore, verify_signed
from adapters.warnings.client import SIGNER
from config.warnings import DepartmentConfig, department_secret
from contracts.errors import PermanentError
from contracts.ids import make_id_number
from contracts.signing import PARTNER_HEADERS, request_target
from contracts.warnings import SelfPaid, Thresholds
from simulators.simkit import Fault, SimState, sim_router

__all__ = ["WarningInbox", "create_app", "sample_people"]


@dataclass
class WarningInbox:
    """What the departments took: department -> serial -> record; the acks they gave."""

    received: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    acks: dict[str, str] = field(default_factory=dict)
    bad_signatures: int = 0

    def of(self, department: str) -> dict[str, dict[str, Any]]:
        return self.received.get(department, {})

    def ids(self, department: str) -> set[str]:
        """ID numbers on the department's lists (all months)."""
        return {r["person"]["certno"] for r in self.of(department).values()}


def create_app(departments: Mapping[str, DepartmentConfig], state: SimState | None = None,
               inbox: WarningInbox | None = None) -> FastAPI:
    sim = state or SimState()
    box = inbox or WarningInbox()
    nonces = MemoryNonceStore()
    app = FastAPI(title="Department simulators: F8 warning lists (民政, 农业农村, 退役军人, 工会)")
    app.state.sim, app.state.inbox = sim, box
    app.include_router(sim_router(sim))

    def take(department: str, record: dict[str, Any]) -> str:
        serial = str(record["serial"])
        if serial in box.acks:
            sim.log.replays += 1
            return box.acks[serial]
        ack = f"ACK-{department[:4].upper()}-{len(box.acks) + 1:06d}"
        box.acks[serial] = ack
        box.received.setdefault(department, {})[serial] = record
        sim.log.record(f"{department}:{record.get('month')}:{serial}", entity=department,
                       value=serial)
        return ack

    @app.post("/warnings/{department}")
    async def receive(department: str, request: Request) -> JSONResponse:
        cfg = departments.get(department)
        if cfg is None:
            return JSONResponse({"code": "E404", "msg": f"no department {department}"}, 404)
        body = await request.body()
        try:
            secret = department_secret(department, cfg, development=True)
            await verify_signed(SIGNER, secret, method=request.method,
                                target=request_target(request.scope), headers=request.headers,
                                body=body, nonces=nonces, names=PARTNER_HEADERS,
                                scope=department)
        except PermanentError as exc:
            box.bad_signatures += 1
            return JSONResponse({"code": "E401", "msg": exc.reason}, 401)
        try:
            record = json.loads(body)
            serial = str(record["serial"])
            _ = record["person"]["certno"]  # a record without a person is refused
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"code": "E400", "msg": "not a warning record"}, 400)
        fault: Fault | None = sim.draw(f"{department}:{serial}", operation=department)
        kind = fault.kind if fault else None
        if kind in ("http_5xx", "soap_fault"):
            return JSONResponse({"detail": "department unavailable (simulated)"}, 503)
        if kind == "http_4xx":
            return JSONResponse({"code": "E400", "msg": "bad request (simulated)"}, 400)
        if kind in ("reject", "bad_signature") and fault is not None:
            return JSONResponse({"code": fault.code, "msg": fault.text})
        if kind == "slow":
            await sim.sleep_for(fault)
        ack = take(department, record)
        if kind == "duplicate":
            take(department, record)
        if kind == "timeout":
            await sim.sleep_for(fault)
        return JSONResponse({"code": "0", "msg": "received", "ack_no": ack})

    @app.get("/warnings/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "received": sum(len(v) for v in box.received.values()),
                "bad_signatures": box.bad_signatures}

    @app.get("/warnings/{department}")
    async def received(department: str) -> dict[str, Any]:
        return box.of(department)

    return app


def sample_people(year: int, lines: Thresholds, *, seed: int = 8,
                  extra: int = 20) -> list[SelfPaid]:
    """A population core could report for ``year``: one person per rule branch (named in
    ``name``: each side of each line, urban and rural, each department's remit) plus
    ``extra`` ordinary people far below every line."""
    rng = random.Random(seed * 10_000 + year)
    one = Decimal("0.01")
    cases: list[tuple[str, bool, str, Decimal, tuple[str, ...]]] = [
        # name, rural, insurance, self paid, categories
        ("城镇致贫职工", False, "employee", lines.urban_income + one, ()),
        ("城镇未超线", False, "employee", lines.urban_income, ()),
        ("农村致贫居民", True, "resident", lines.rural_income + one, ()),
        ("农村未超线", True, "resident", lines.rural_income, ()),
        ("城镇致贫军人", False, "resident", lines.urban_income + 100, ("veteran",)),
        ("城镇致贫困难职工", False, "resident", lines.urban_income + 200, ("union_hardship",)),
        ("农村低收入返贫", True, "resident", lines.rural_dibao + one, ("rural_low_income",)),
        ("农村低收入未超", True, "resident", lines.rural_dibao, ("rural_low_income",)),
        ("原建档立卡退保", True, "none", lines.rural_dibao + 50, ("former_registered",)),
        ("农村低保原建档立卡", True, "resident", lines.rural_dibao + 50,
         ("dibao", "former_registered")),
        ("城镇低保未到致贫线", False, "resident", lines.urban_dibao + 50, ("dibao",)),
    ]
    seen: set[str] = set()
    out: list[SelfPaid] = []

    def new_id() -> str:
        while (n := make_id_number(rng)) in seen:
            pass
        seen.add(n)
        return n

    for name, rural, insurance, paid, cats in cases:
        out.append(SelfPaid(id_number=new_id(), name=name, rural=rural, insurance=insurance,
                            self_paid=paid, categories=cats))
    for i in range(extra):
        out.append(SelfPaid(id_number=new_id(), name=f"普通参保人{i + 1}", rural=bool(i % 2),
                            insurance="resident", self_paid=Decimal(rng.randrange(0, 5000)),
                            categories=()))
    return out

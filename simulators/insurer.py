"""The 大病保险承办机构 (critical-illness insurer) of F15, and core's side of its settlements.

The insurer takes, under ``/insurer`` (each call signed by the hub with
``partners.insurer.secret``, ``X-Partner: hub``; a repeated ``X-Hub-Serial`` is a replay,
answered as the first time and counted in ``EffectLog.replays``):

    POST shares                  a settlement's 大病 segment or its 冲销 (effect
                                 ``share:<setl_id>``; per person in arrival order in
                                 ``EffectLog.order``); a 冲销 of a settlement it never took is
                                 refused 422 (``orphans``: the hub must never send one)
    POST financing               a financing notice (effect ``financing:<year>:<payers>``)
    POST clues                   a 疑点数据 clue (effect ``clue:<clue_id>``)
    GET  batches/<kind>/<period> 赔付明细 (claims, a quarter) or 分析报告 (analysis, a year),
                                 built from the shares it took; ``bad_batches`` serve a header
                                 one fen off (the hub must refuse it)
    POST batches/<kind>/<period> 清算 or 轧差: refused 422 with field and reason unless the
                                 header's count and total equal the rows' (effect
                                 ``batch:<kind>:<period>``)

Fault switches (``/_sim/faults``, matched on the setl_id, ``financing:<year>``, the clue
id or ``batch:<kind>:<period>``; operations ``shares``, ``financing``, ``clues``,
``batches``): ``http_5xx``; ``timeout``/``slow`` (a timeout takes it and answers late);
``reject`` (a business rejection, 422 ``{code, field, reason}``); ``duplicate`` (takes it,
then the answer is lost: 503, so the hub sends it again and meets a replay).

``pay`` is the insurer reporting a claim paid to the hub; ``settlement_event`` and
``emit`` are core reporting a one-stop settlement or 冲销 (H8501) to the hub.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import SecretStr

from adapters.signing import SignedAuth
from config.settings import HubSettings, PartnerConfig
from contracts.assistance import Settlement, settlement_to_wire
from contracts.national import NationalRequest, format_inf_time, make_msgid, now_cst
from contracts.serious_illness import INFNO_SETTLEMENT, PARTNER, check_batch
from simulators.serving import serve_app
from simulators.simkit import SimState, signed_body, sim_router

__all__ = ["InsurerBook", "InsurerSim", "create_app", "emit", "pay", "reversal_data",
           "settlement_data", "settlement_event", "start_serious_illness"]


@dataclass
class InsurerBook:
    """What the insurer holds: shares by settlement id, reversals by original, notices,
    clues, the batches it took, and the answers it gave by serial."""

    shares: dict[str, dict[str, Any]] = field(default_factory=dict)
    reversed: dict[str, dict[str, Any]] = field(default_factory=dict)
    financing: list[dict[str, Any]] = field(default_factory=list)
    clues: dict[str, dict[str, Any]] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    bad_batches: set[str] = field(default_factory=set)
    """``<kind>:<period>`` whose header the insurer gets wrong by a fen."""
    orphans: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    bad_signatures: int = 0

    def open_shares(self) -> list[dict[str, Any]]:
        """Shares not reversed, by settlement id."""
        return [s for k, s in sorted(self.shares.items()) if k not in self.reversed]

    def claims(self, period: str) -> dict[str, Any]:
        """赔付明细 of a quarter (``yyyyQn``): each open share settled in it, paid in full."""
        year, q = period[:4], int(period[-1])
        rows = [{"setl_id": s["setl_id"], "id_number": s["id_number"],
                 "settled_at": s["settled_at"], "paid": s["serious_illness_pay"]}
                for s in self.open_shares() if s["settled_at"][:4] == year
                and (int(s["settled_at"][5:7]) - 1) // 3 + 1 == q]
        return self._batch("claims", period, rows, "paid")

    def analysis(self, period: str) -> dict[str, Any]:
        """分析报告 of a year: cases and amount per 医疗类别."""
        cases: Counter[str] = Counter()
        amounts: defaultdict[str, Decimal] = defaultdict(Decimal)
        for s in self.open_shares():
            if s["settled_at"][:4] == period:
                cases[s["med_type"]] += 1
                amounts[s["med_type"]] += Decimal(s["serious_illness_pay"])
        rows = [{"category": k, "cases": cases[k], "amount": f"{amounts[k]:.2f}"}
                for k in sorted(cases)]
        return self._batch("analysis", period, rows, "amount")

    def _batch(self, kind: str, period: str, rows: list[dict[str, Any]],
               amount: str) -> dict[str, Any]:
        total = sum((Decimal(r[amount]) for r in rows), Decimal("0.00"))
        if f"{kind}:{period}" in self.bad_batches:
            total += Decimal("0.01")
        return {"header": {"kind": kind, "period": period, "count": len(rows),
                           "total": f"{total:.2f}"}, "rows": rows}


@dataclass
class InsurerSim:
    state: SimState
    book: InsurerBook
    secret: str
    url: str = ""
    """The simulator's base URL (``<url>/insurer`` is the hub's ``partners.insurer``)."""


def create_app(sim: InsurerSim) -> FastAPI:
    app = FastAPI(title="大病保险承办机构 simulator (F15)")
    app.state.sim = sim
    app.include_router(sim_router(sim.state))
    r = APIRouter(prefix="/insurer")
    state, book = sim.state, sim.book

    async def take(request: Request, operation: str,
                   key: str | Callable[[dict[str, Any]], str], act: Any) -> JSONResponse:
        """Check the signature, draw a fault on ``key``, take the payload once per serial
        (``act(payload)`` -> the answer, or a JSONResponse refusing it)."""
        body = await signed_body(request, sim.secret, book)
        if isinstance(body, JSONResponse):
            return body
        payload = json.loads(body) if body else {}
        fault = state.draw(key(payload) if callable(key) else key, operation)
        if fault is not None and fault.kind == "http_5xx":
            return JSONResponse({"detail": "insurer unavailable (simulated)"}, status_code=503)
        if fault is not None and fault.kind in ("reject", "http_4xx"):
            book.refused[operation] += 1
            return JSONResponse({"code": fault.code, "field": "", "reason": fault.text},
                                status_code=422)
        if fault is not None and fault.kind == "slow":
            await state.sleep_for(fault)
        serial = request.headers.get("x-hub-serial", "")
        if serial and serial in book.answers:
            state.log.replays += 1
            answer: dict[str, Any] | JSONResponse = book.answers[serial]
        else:
            answer = act(payload)
            if isinstance(answer, JSONResponse):
                return answer
            if serial:
                book.answers[serial] = answer
        if fault is not None and fault.kind == "timeout":  # took it, the answer is late
            await state.sleep_for(fault)
        if fault is not None and fault.kind == "duplicate":  # took it, the answer is lost
            return JSONResponse({"detail": "answer lost (simulated)"}, status_code=503)
        return JSONResponse(answer)

    @r.post("/shares")
    async def shares(request: Request) -> JSONResponse:
        def act(p: dict[str, Any]) -> dict[str, Any] | JSONResponse:
            setl_id = str(p.get("setl_id") or "")
            if p.get("kind") == "reverse":
                orig = str(p.get("orig_setl_id") or "")
                if orig not in book.shares:
                    book.orphans += 1
                    return JSONResponse({"code": "UNKNOWN_ORIGINAL", "field": "orig_setl_id",
                                         "reason": f"no settlement {orig} was received"},
                                        status_code=422)
                book.reversed[orig] = p
            else:
                book.shares[setl_id] = p
            state.log.record(f"share:{setl_id}", entity=str(p.get("id_number") or ""),
                             value=f"{p.get('kind')}:{setl_id}")
            return {"status": "ok", "setl_id": setl_id}

        return await take(request, "shares", lambda p: str(p.get("setl_id") or ""), act)

    @r.post("/financing")
    async def financing(request: Request) -> JSONResponse:
        def act(p: dict[str, Any]) -> dict[str, Any]:
            book.financing.append(p)
            state.log.record(f"financing:{p.get('year')}:{p.get('payers')}")
            return {"status": "ok", "year": p.get("year"), "total": p.get("total")}

        return await take(request, "financing", lambda p: f"financing:{p.get('year')}", act)

    @r.post("/clues")
    async def clues(request: Request) -> JSONResponse:
        def act(p: dict[str, Any]) -> dict[str, Any]:
            cid = str(p.get("clue_id") or "")
            book.clues[cid] = p
            state.log.record(f"clue:{cid}")
            return {"status": "ok", "clue_id": cid}

        return await take(request, "clues", lambda p: str(p.get("clue_id") or ""), act)

    @r.get("/batches/{kind}/{period}")
    async def fetch(kind: str, period: str, request: Request) -> JSONResponse:
        if kind not in ("claims", "analysis"):
            return JSONResponse({"code": "NO_SUCH_BATCH", "field": "kind",
                                 "reason": f"the insurer provides no {kind} batch"},
                                status_code=404)
        return await take(request, "batches", f"batch:{kind}:{period}",
                          lambda _: book.claims(period) if kind == "claims"
                          else book.analysis(period))

    @r.post("/batches/{kind}/{period}")
    async def put(kind: str, period: str, request: Request) -> JSONResponse:
        def act(p: dict[str, Any]) -> dict[str, Any] | JSONResponse:
            header, rows = p.get("header"), p.get("rows")
            if not isinstance(header, dict) or not isinstance(rows, list):
                return JSONResponse({"code": "BAD_BATCH", "field": "header",
                                     "reason": "a batch is a header and rows"},
                                    status_code=422)
            got = check_batch(kind, period, header, rows)
            if isinstance(got, list):
                book.refused["batches"] += 1
                return JSONResponse({"code": "BAD_TOTALS", "field": got[0][0],
                                     "reason": got[0][1]}, status_code=422)
            book.batches[f"{kind}:{period}"] = p
            state.log.record(f"batch:{kind}:{period}")
            return {"status": "ok", "count": got.count, "total": f"{got.total:.2f}"}

        if kind not in ("clearing", "netting"):
            return JSONResponse({"code": "NO_SUCH_BATCH", "field": "kind",
                                 "reason": f"the insurer takes no {kind} batch"},
                                status_code=404)
        return await take(request, "batches", f"batch:{kind}:{period}", act)

    app.include_router(r)
    return app


# ---------------------------------------------------------------- core's and insurer's calls

def settlement_data(s: Settlement) -> dict[str, Any]:
    """H8501 ``input.data`` of a settlement (``setl_type`` 1)."""
    return {"setl_type": "1", **settlement_to_wire(s)}


def reversal_data(setl_id: str, orig: Settlement, when: datetime | None = None,
                  *, orig_setl_id: str | None = None) -> dict[str, Any]:
    """H8501 ``input.data`` of a 冲销 of ``orig`` (``setl_type`` 2)."""
    at = when or orig.settled_at
    return {"setl_type": "2", "setl_id": setl_id, "orig_setl_id": orig_setl_id or orig.setl_id,
            "certno": orig.id_number, "setl_time": at.strftime("%Y-%m-%d %H:%M:%S")}


def settlement_event(data: dict[str, Any], seq: int = 0) -> dict[str, Any]:
    now = now_cst()
    return NationalRequest(infno=INFNO_SETTLEMENT,
                           msgid=make_msgid("NJYBCORE0001", now, seq % 10000),
                           recer_sys_code="NJYBHUB", opter="core", opter_name="医保核心",
                           inf_time=format_inf_time(now), input={"data": data}).to_wire()


async def emit(http: httpx.AsyncClient, hub_url: str, data: dict[str, Any], secret: str,
               seq: int = 0) -> httpx.Response:
    """Core reports one settlement or 冲销 (H8501) to the hub, signed as core."""
    return await http.post(f"{hub_url}/partners/core/serious-illness/settlements",
                           json=settlement_event(data, seq), auth=SignedAuth("core", secret))


async def pay(http: httpx.AsyncClient, hub_url: str, setl_id: str, paid_on: date,
              secret: str) -> httpx.Response:
    """The insurer reports a claim paid to the hub, signed as ``insurer``."""
    return await http.post(f"{hub_url}/partners/insurer/payments",
                           json={"setl_id": setl_id, "paid_on": paid_on.isoformat()},
                           auth=SignedAuth(PARTNER, secret))


async def start_serious_illness(stack: contextlib.AsyncExitStack, s: HubSettings,
                                sims: dict[str, Any]) -> HubSettings:
    """Serve the insurer simulator on ``stack``; ``sims["serious_illness"]`` is its
    ``InsurerSim``; the answer points ``partners.insurer`` at it (a development secret when
    none is configured)."""
    base = s.partners.get(PARTNER)
    secret = base.secret if base is not None and base.secret.get_secret_value() \
        else SecretStr(f"dev-{PARTNER}-secret")
    sim = InsurerSim(SimState(), InsurerBook(), secret=secret.get_secret_value())
    sim.url = await stack.enter_async_context(serve_app(create_app(sim)))
    sims["serious_illness"] = sim
    cfg = (base or PartnerConfig(protocol="rest", endpoint=sim.url)).model_copy(
        update={"endpoint": f"{sim.url}/insurer", "secret": secret})
    return s.model_copy(update={"partners": {**s.partners, PARTNER: cfg}})


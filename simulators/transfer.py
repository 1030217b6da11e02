"""The national transfer platform (国家医保信息平台, 转移接续) simulator, in the national envelope.

One endpoint, ``POST /transfer/api``, takes ``NationalRequest`` JSON signed by the hub
(``X-Partner-*``, ``partners.transfer.secret``; a bad signature is 401 and counted):

    T2401  a page of applications to and from Nanjing after ``cursor`` (an index here);
           ``output``: ``{"list": [...], "next_cursor", "more"}``
    T2402  one application's status back; one effect per ``serial`` (a replay is
           answered again, counted as a replay), keyed ``status:<aply_no>:<stas>``

Failure switches (``simkit.Fault`` over ``/_sim/faults``, ``operation`` T2401 or T2402):

    http_5xx / http_4xx   503 / 400 before anything happens
    reject                infcode -1 (``fault.code``, ``fault.text``), no effect
    slow                  sleep ``delay_s``, then answer normally
    timeout               T2402: the effect is made, then the answer sleeps (the caller
                          gives up; the effect stays); T2401: sleeps (a read)
    duplicate             T2401: the page carries its first application twice

``PlatformBook.replay_from`` makes the next pull ignore the cursor and serve again from
that index (a platform that re-serves applications the hub already has).
"""

from __future__ import annotations

import contextlib
import itertools
import random
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import SecretStr

from config.settings import HubSettings, PartnerConfig
from contracts.ids import make_id_number
from contracts.national import NationalRequest, NationalResponse, make_refmsgid, now_cst
from contracts.transfer import (
    INFNO_PULL,
    INFNO_STATUS,
    MAX_PAGE,
    PARTNER,
    InsurancePeriod,
    TransferApplication,
    to_wire,
)
from simulators.serving import serve_app
from simulators.simkit import SimState, signed_national, sim_router

__all__ = ["PATH", "PlatformBook", "TransferSims", "create_app", "make_application",
           "start_transfer"]

PATH = "/transfer/api"
_AREA = "110000"
_NAMES = ("王建国", "李秀英", "张伟", "刘洋", "陈静", "杨帆", "赵敏", "黄磊", "周杰", "吴婷")
_ELSEWHERE = ("310104", "110105", "440106", "330106", "510107", "420106")
_NANJING = ("320102", "320104", "320105", "320106", "320113", "320115")


@dataclass
class PlatformBook:
    """What the platform holds: its application feed, the statuses the hub sent back."""

    applications: list[dict[str, Any]] = field(default_factory=list)
    """The feed in order (wire names); the cursor is an index into it."""
    statuses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """aply_no -> each status the hub sent (T2402 ``data``), one per serial."""
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    """serial -> the T2402 answer given (replayed as-is)."""
    filed: dict[str, dict[str, Any]] = field(default_factory=dict)
    """aply_no -> an application the hub filed (a local 转出 approved: ``aply_info``)."""
    replay_from: int | None = None
    pulls: int = 0
    bad_signatures: int = 0

    def add(self, *items: dict[str, Any]) -> None:
        self.applications.extend(items)

    def status_of(self, aply_no: str) -> str | None:
        got = self.statuses.get(aply_no)
        return str(got[-1]["stas"]) if got else None


def make_application(rng: random.Random, no: str, *, direction: str = "out",
                     other: str | None = None, born: date | None = None,
                     id_number: str | None = None, periods: int = 2) -> dict[str, Any]:
    """A valid application in wire names: 转出 from a Nanjing district to ``other`` (or a
    city elsewhere), or 转入 from ``other`` to Nanjing."""
    nj, away = rng.choice(_NANJING), other or rng.choice(_ELSEWHERE)
    source, target = (nj, away) if direction == "out" else (away, nj)
    months = []
    year = 2012
    for _ in range(periods):
        months.append({"begin_month": f"{year}01", "end_month": f"{year + 3}12",
                       "insutype": "310", "unit_name": "南京紫金科技有限公司"})
        year += 4
    app = TransferApplication(
        application_no=no, id_number=id_number or make_id_number(
            rng, born=born or date(1985, 6, 1), area=nj),
        name=rng.choice(_NAMES), source_division=source, target_division=target,
        apply_date=date(2026, 11, 20), periods=tuple(InsurancePeriod(**m) for m in months),
        phone=f"139{rng.randrange(10**8):08d}")
    return to_wire(app)


def create_app(secret: str, state: SimState | None = None,
               book: PlatformBook | None = None) -> FastAPI:
    sim = state or SimState()
    kept = book if book is not None else PlatformBook()
    serials = itertools.count(1)
    app = FastAPI(title="National transfer platform simulator (转移接续)")
    app.state.sim, app.state.book = sim, kept
    app.include_router(sim_router(sim))

    def ref() -> str:
        return make_refmsgid(_AREA, now_cst(), next(serials))

    def answer(response: NationalResponse) -> JSONResponse:
        return JSONResponse(response.model_dump(mode="json"))

    def early(fault: Any) -> JSONResponse | None:
        if fault is None:
            return None
        if fault.kind in ("http_5xx", "soap_fault"):
            return JSONResponse({"detail": "platform unavailable (simulated)"}, status_code=503)
        if fault.kind == "http_4xx":
            return JSONResponse({"detail": "bad request (simulated)"}, status_code=400)
        if fault.kind in ("reject", "bad_signature"):
            return answer(NationalResponse.failure(fault.text, code=fault.code, refmsgid=ref()))
        return None

    async def pull(req: NationalRequest) -> JSONResponse:
        data = req.input.get("data") if isinstance(req.input, dict) else None
        if not isinstance(data, dict):
            return answer(NationalResponse.failure("input.data is required", code="INVALID",
                                                   refmsgid=ref()))
        cursor = str(data.get("cursor") or "0")
        size = int(str(data.get("page_size") or "50")) if str(
            data.get("page_size") or "50").isdigit() else 50
        if not cursor.isdigit():
            return answer(NationalResponse.failure(f"bad cursor {cursor!r}", code="INVALID",
                                                   refmsgid=ref()))
        fault = sim.draw(f"{INFNO_PULL}:{cursor}", INFNO_PULL)
        if (e := early(fault)) is not None:
            return e
        await sim.sleep_for(fault)
        start = int(cursor)
        if kept.replay_from is not None:
            start, kept.replay_from = kept.replay_from, None
        size = max(1, min(size, MAX_PAGE - 1))
        items = [dict(i) for i in kept.applications[start:start + size]]
        end = start + len(items)
        if fault is not None and fault.kind == "duplicate" and items:
            items.append(dict(items[0]))
        kept.pulls += 1
        return answer(NationalResponse.success({
            "list": items, "next_cursor": str(end) if items else cursor,
            "more": "1" if end < len(kept.applications) else "0"}, refmsgid=ref()))

    async def status(req: NationalRequest) -> JSONResponse:
        serial = req.input.get("serial") if isinstance(req.input, dict) else None
        data = req.input.get("data") if isinstance(req.input, dict) else None
        if not isinstance(serial, str) or not serial or not isinstance(data, dict) \
                or not data.get("aply_no") or not data.get("stas"):
            return answer(NationalResponse.failure("input.serial, data.aply_no and data.stas "
                                                   "are required", code="INVALID",
                                                   refmsgid=ref()))
        key = f"{data['aply_no']}:{data['stas']}"
        fault = sim.draw(f"{INFNO_STATUS}:{key}", INFNO_STATUS)
        if (e := early(fault)) is not None:
            return e
        if fault is not None and fault.kind == "slow":
            await sim.sleep_for(fault)
        got = kept.answers.get(serial)
        if got is None:
            sim.log.record(key=f"status:{key}", entity=str(data["aply_no"]), value=data["stas"])
            kept.statuses.setdefault(str(data["aply_no"]), []).append(dict(data))
            if isinstance(data.get("aply_info"), dict):
                kept.filed[str(data["aply_no"])] = dict(data["aply_info"])
            got = NationalResponse.success({"aply_no": data["aply_no"]},
                                           refmsgid=ref()).model_dump(mode="json")
            kept.answers[serial] = got
        else:
            sim.log.replays += 1
        if fault is not None and fault.kind == "timeout":
            await sim.sleep_for(fault)
        return JSONResponse(got)

    @app.post(PATH)
    async def api(request: Request) -> JSONResponse:
        req = await signed_national(request, secret, kept, invalid_code="INVALID_ENVELOPE")
        if isinstance(req, JSONResponse):
            return req
        if req.infno == INFNO_PULL:
            return await pull(req)
        if req.infno == INFNO_STATUS:
            return await status(req)
        return answer(NationalResponse.failure(f"unknown infno {req.infno}", code="INVALID",
                                               refmsgid=ref()))

    return app


@dataclass
class TransferSims:
    state: SimState
    book: PlatformBook
    url: str
    secret: str


async def start_transfer(stack: contextlib.AsyncExitStack, s: HubSettings,
                         sims: dict[str, Any]) -> HubSettings:
    """The platform on a real socket in ``stack``; ``sims["transfer"]`` its handles; the
    settings with ``partners.transfer`` pointed at it (its secret, or a development one)."""
    base = s.partners.get(PARTNER) or PartnerConfig(protocol="http-json", endpoint="http://x")
    secret = base.secret.get_secret_value() or f"dev-{PARTNER}-secret"
    state, book = SimState(), PlatformBook()
    url = await stack.enter_async_context(serve_app(create_app(secret, state, book)))
    sims[PARTNER] = TransferSims(state, book, url, secret)
    partner = base.model_copy(update={"endpoint": f"{url}{PATH}", "secret": SecretStr(secret)})
    return s.model_copy(update={"partners": {**s.partners, PARTNER: partner}})

"""F14 simulators: the designated institutions' HIS, the core's settlement ledger, 移动支付.

Both speak the national envelope, signed by the hub as ``hub`` (``X-Partner-*``; a bad
signature is 401 and counted in ``ReconBook.bad_signatures``):

    POST /his/{fixmedins_code}/national   (secret of partners.institutions)
    POST /core-ledger/national            (secret of partners.core_ledger)

    3201   the side's totals of the day (``output.stmtinfo``)
    3202   the side's detail of the day as a file -> ``output.fileinfo.file_qury_no``
    9102   that file (``output.file``: the ZIP, base64)
    2208   HIS only: 冲正 of a settlement (it leaves the day); one effect per ``serial``,
           keyed ``reverse:<code>:<setl_id>``; a repeat is answered again (a replay)
    H3203  HIS only: 补记 of a core-only settlement; ``complete:<code>:<setl_id>``

Failure switches (``simkit.Fault`` over ``/_sim/faults``, ``operation`` = the infno,
``match`` against ``<code>:<setl_id>`` or ``<code>:<day>``):

    http_5xx / http_4xx   503 / 400 before anything happens
    reject                infcode -1 (``fault.code``, ``fault.text``), no effect
    slow                  sleep ``delay_s``, then answer normally
    timeout               2208/H3203: the effect is made, then the answer sleeps (the hub
                          gives up and retries: the retry is a replay); reads: sleeps
    duplicate             2208/H3203: the answer is sent twice as one body (a replay)

Planting (``ReconBook``): ``settle`` puts a settlement on both sides, ``plant_one_sided``
on one side only (a 单边帐: local / provincial / national by the 参保地), ``plant_difference``
makes a field differ. ``HisSide`` plays an institution calling the hub's door (3201, 9101,
3202, 9102) and ``MobilePay`` the 移动支付 platform's H3205 notices; ``start_reconciliation``
serves it all for the harness (``sims["reconciliation"]``).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import SecretStr, ValidationError

from adapters.signing import SignedAuth
from config.settings import HubSettings, PartnerConfig
from contracts.institution_recon import (
    GATEWAY,
    INFNO_COMPLETE,
    INFNO_DETAIL,
    INFNO_DOWNLOAD,
    INFNO_NOTICE,
    INFNO_REVERSE,
    INFNO_TOTALS,
    INFNO_UPLOAD,
    LEDGER,
    MOBILE,
    DetailRow,
    partner_of,
    totals_of,
    write_detail_file,
)
from contracts.national import NationalRequest, NationalResponse, make_msgid, now_cst
from simulators.serving import serve_app
from simulators.simkit import Fault, SimState, signed_national, sim_router

__all__ = ["CODES", "HisSide", "MobilePay", "ReconBook", "ReconSims", "create_his_app",
           "create_ledger_app", "serve_reconciliation_at", "start_reconciliation"]

CODES = ("H32010200001", "H32010600002", "H32011500003")
"""The simulated designated institutions (their partners: ``inst_<code lower>``)."""
_AREAS = {"local": "320106", "provincial": "320500", "national": "110105"}
_AREA = "320100"


@dataclass
class ReconBook:
    """What each side holds: code -> day -> setl_id -> row; what the HIS was told to do."""

    his: dict[str, dict[str, dict[str, DetailRow]]] = field(default_factory=dict)
    core: dict[str, dict[str, dict[str, DetailRow]]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    """serial -> the 2208/H3203 answer given (replayed as-is)."""
    bad_signatures: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    """``<infno>:<code>:<setl_id>`` -> how many times the HIS refused it (a ``reject``
    switch): the demo counts rejections here, at the partner."""
    seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def side(self, which: str) -> dict[str, dict[str, dict[str, DetailRow]]]:
        return self.his if which == "his" else self.core

    def rows(self, which: str, code: str, day: date) -> list[DetailRow]:
        return sorted(self.side(which).get(code, {}).get(day.isoformat(), {}).values(),
                      key=lambda r: r.setl_id)

    def put(self, which: str, code: str, day: date, row: DetailRow) -> None:
        self.side(which).setdefault(code, {}).setdefault(day.isoformat(), {})[row.setl_id] = row

    def make_row(self, day: date, *, scope: str = "local", chnl_type: str = "0",
                 amount: str = "", age_minutes: int = 120, rng: random.Random | None = None
                 ) -> DetailRow:
        """A settlement of ``day`` whose fund + account + cash add up to the fee."""
        n = next(self.seq)
        r = rng or random.Random(n)
        fee = Decimal(amount) if amount else Decimal(r.randrange(2000, 90000)) / 100
        fund = (fee * Decimal("0.7")).quantize(Decimal("0.01"))
        acct = (fee * Decimal("0.1")).quantize(Decimal("0.01"))
        when = datetime.combine(day, datetime.min.time()) + timedelta(hours=8, minutes=n % 600)
        now = now_cst().replace(tzinfo=None)
        if when > now - timedelta(minutes=age_minutes):
            when = now - timedelta(minutes=age_minutes)
        return DetailRow(setl_id=f"S{day:%Y%m%d}{n:08d}", mdtrt_id=f"M{day:%Y%m%d}{n:08d}",
                         psn_no=f"32010000000{n:08d}", medfee_sumamt=fee,
                         fund_pay_sumamt=fund, acct_pay=acct, cash_payamt=fee - fund - acct,
                         insuplc_admdvs=_AREAS[scope], chnl_type=chnl_type,
                         setl_time=when.strftime("%Y-%m-%d %H:%M:%S"))

    def settle(self, code: str, day: date, count: int = 1, **kw: Any) -> list[DetailRow]:
        """``count`` settlements recorded on both sides (a normal day)."""
        out = []
        for _ in range(count):
            row = self.make_row(day, **kw)
            self.put("his", code, day, row)
            self.put("core", code, day, row)
            out.append(row)
        return out

    def plant_one_sided(self, code: str, day: date, side: str, **kw: Any) -> DetailRow:
        """A 单边帐: a settlement only ``side`` (``his`` or ``core``) recorded."""
        row = self.make_row(day, **kw)
        self.put(side, code, day, row)
        return row

    def plant_difference(self, code: str, day: date, setl_id: str,
                         cash_delta: str = "1.00") -> None:
        """The HIS's copy of ``setl_id`` differs: more cash (and so a higher fee)."""
        row = self.his[code][day.isoformat()][setl_id]
        d = Decimal(cash_delta)
        self.put("his", code, day, row.model_copy(update={
            "cash_payamt": row.cash_payamt + d, "medfee_sumamt": row.medfee_sumamt + d}))


def _early(fault: Fault | None) -> JSONResponse | None:
    if fault is None:
        return None
    if fault.kind in ("http_5xx", "soap_fault"):
        return JSONResponse({"detail": "unavailable (simulated)"}, status_code=503)
    if fault.kind == "http_4xx":
        return JSONResponse({"detail": "bad request (simulated)"}, status_code=400)
    if fault.kind in ("reject", "bad_signature"):
        return _answer(NationalResponse.failure(fault.text, code=fault.code))
    return None


def _answer(r: NationalResponse) -> JSONResponse:
    return JSONResponse(r.model_dump(mode="json"))


def _day(req: NationalRequest) -> date | None:
    data = req.input.get("data")
    try:
        return date.fromisoformat(str(data["stmt_begndate"])) if isinstance(data, dict) \
            else None
    except (KeyError, ValueError):
        return None


async def _read(which: str, code: str, req: NationalRequest, sim: SimState,
                book: ReconBook) -> JSONResponse:
    """3201, 3202, 9102 of one side."""
    day = _day(req)
    fault = sim.draw(f"{code}:{day}", req.infno)
    if (e := _early(fault)) is not None:
        return e
    await sim.sleep_for(fault)
    if req.infno == INFNO_DOWNLOAD:
        down = req.input.get("fsDownloadIn") or {}
        raw = book.files.get(str(down.get("file_qury_no")))
        if raw is None:
            return _answer(NationalResponse.failure("no such file", code="NOT_FOUND"))
        return _answer(NationalResponse.success({"file": base64.b64encode(raw).decode()}))
    if day is None:
        return _answer(NationalResponse.failure("input.data.stmt_begndate is required",
                                                code="INVALID"))
    rows = book.rows(which, code, day)
    if req.infno == INFNO_TOTALS:
        return _answer(NationalResponse.success({"stmtinfo": totals_of(code, day, rows)
                                                 .wire()}))
    name, raw = write_detail_file(code, day, rows)
    no = f"{which}{next(book.seq):010d}"
    book.files[no] = raw
    return _answer(NationalResponse.success({"fileinfo": {"file_qury_no": no,
                                                          "filename": name}}))


def create_his_app(secret: str, state: SimState | None = None,
                   book: ReconBook | None = None) -> FastAPI:
    """The institutions' HIS behind their gateway (every code in ``CODES`` and any other)."""
    sim, kept = state or SimState(), book if book is not None else ReconBook()
    app = FastAPI(title="Designated institutions' HIS simulator (对账)")
    app.state.sim, app.state.book = sim, kept
    app.include_router(sim_router(sim))

    async def act(code: str, req: NationalRequest) -> JSONResponse:
        serial = str(req.input.get("serial") or "")
        data = req.input.get("data")
        if not serial or not isinstance(data, dict) or not data.get("setl_id"):
            return _answer(NationalResponse.failure("input.serial and data.setl_id are "
                                                    "required", code="INVALID"))
        sid = str(data["setl_id"])
        fault = sim.draw(f"{code}:{sid}", req.infno)
        if fault is not None and fault.kind == "reject":
            key = f"{req.infno}:{code}:{sid}"
            kept.refused[key] = kept.refused.get(key, 0) + 1
        if (e := _early(fault)) is not None:
            return e
        if fault is not None and fault.kind == "slow":
            await sim.sleep_for(fault)
        got = kept.answers.get(serial)
        if got is None:
            if req.infno == INFNO_REVERSE:
                row = kept.his.get(code, {})
                held = next((d for d in row.values() if sid in d), None)
                if held is None:
                    return _answer(NationalResponse.failure(f"no settlement {sid} to reverse",
                                                            code="NOT_FOUND"))
                del held[sid]
                sim.log.record(f"reverse:{code}:{sid}", entity=code, value=sid)
            else:
                try:
                    new = DetailRow.model_validate(data)
                except ValidationError as exc:
                    return _answer(NationalResponse.failure(str(exc)[:200], code="INVALID"))
                day = date.fromisoformat(new.setl_time[:10]) if new.setl_time else None
                if day is None:
                    return _answer(NationalResponse.failure("data.setl_time is required",
                                                            code="INVALID"))
                kept.put("his", code, day, new)
                sim.log.record(f"complete:{code}:{sid}", entity=code, value=sid)
            got = NationalResponse.success({"setl_id": sid}).model_dump(mode="json")
            kept.answers[serial] = got
        else:
            sim.log.replays += 1
        if fault is not None and fault.kind == "timeout":
            await sim.sleep_for(fault)
        return JSONResponse(got)

    @app.post("/his/{code}/national")
    async def national(code: str, request: Request) -> JSONResponse:
        req = await signed_national(request, secret, kept)
        if isinstance(req, JSONResponse):
            return req
        if req.infno in (INFNO_TOTALS, INFNO_DETAIL, INFNO_DOWNLOAD):
            return await _read("his", code, req, sim, kept)
        if req.infno in (INFNO_REVERSE, INFNO_COMPLETE):
            return await act(code, req)
        return _answer(NationalResponse.failure(f"unknown infno {req.infno}", code="INVALID"))

    return app


def create_ledger_app(secret: str, state: SimState | None = None,
                      book: ReconBook | None = None) -> FastAPI:
    """The core's settlement ledger: its own totals and detail of any institution."""
    sim, kept = state or SimState(), book if book is not None else ReconBook()
    app = FastAPI(title="Core settlement ledger simulator (对账)")
    app.state.sim, app.state.book = sim, kept
    app.include_router(sim_router(sim))

    @app.post("/core-ledger/national")
    async def national(request: Request) -> JSONResponse:
        req = await signed_national(request, secret, kept)
        if isinstance(req, JSONResponse):
            return req
        if req.infno in (INFNO_TOTALS, INFNO_DETAIL, INFNO_DOWNLOAD):
            return await _read("core", req.fixmedins_code, req, sim, kept)
        return _answer(NationalResponse.failure(f"unknown infno {req.infno}", code="INVALID"))

    return app


class _Caller:
    """Calls the hub's national door signed as ``partner``."""

    def __init__(self, hub_url: str, partner: str, secret: str, sender: str) -> None:
        self.url = f"{hub_url}/partners/institutions/national"
        self.auth = SignedAuth(partner, secret)
        self.sender = sender
        self._seq = itertools.count(1)

    def envelope(self, infno: str, input: dict[str, Any], code: str = "") -> dict[str, Any]:
        return NationalRequest(infno=infno, msgid=make_msgid(self.sender, now_cst(),
                                                             next(self._seq) % 10000),
                               fixmedins_code=code, input=input).to_wire()

    async def call(self, http: httpx.AsyncClient, infno: str, input: dict[str, Any],
                   code: str = "", raw: dict[str, Any] | None = None) -> httpx.Response:
        return await http.post(self.url, json=raw or self.envelope(infno, input, code),
                               auth=self.auth)


class HisSide(_Caller):
    """An institution calling the hub: its totals (3201), its detail (9101 + 3202), a file
    back (9102). Signs as ``inst_<code lower>``."""

    def __init__(self, hub_url: str, code: str, secret: str, book: ReconBook) -> None:
        super().__init__(hub_url, partner_of(code), secret, f"{code[1:]}0")
        self.code = code
        self.book = book

    def totals(self, day: date) -> dict[str, Any]:
        return totals_of(self.code, day, self.book.rows("his", self.code, day)).wire()

    async def send_totals(self, http: httpx.AsyncClient, day: date,
                          data: dict[str, Any] | None = None) -> httpx.Response:
        return await self.call(http, INFNO_TOTALS, {"data": data or self.totals(day)},
                               self.code)

    async def send_detail(self, http: httpx.AsyncClient, day: date,
                          totals: dict[str, Any] | None = None) -> httpx.Response:
        """9101 of its detail file, then 3202 naming it (the 3202 answer is returned)."""
        name, raw = write_detail_file(self.code, day, self.book.rows("his", self.code, day))
        up = await self.call(http, INFNO_UPLOAD, {"fsUploadIn": {
            "in": base64.b64encode(raw).decode(), "filename": name}}, self.code)
        if up.status_code != 200:
            return up
        no = up.json()["output"]["file_qury_no"]
        return await self.call(http, INFNO_DETAIL, {"data": {
            **(totals or self.totals(day)), "file_qury_no": no}}, self.code)

    async def download(self, http: httpx.AsyncClient, file_qury_no: str) -> httpx.Response:
        return await self.call(http, INFNO_DOWNLOAD, {"fsDownloadIn": {
            "file_qury_no": file_qury_no}}, self.code)


class MobilePay(_Caller):
    """The 移动支付 platform: a settlement on both sides and its H3205 notice to the hub."""

    def __init__(self, hub_url: str, secret: str, book: ReconBook) -> None:
        super().__init__(hub_url, MOBILE, secret, "MOBILEPAY001")
        self.book = book

    async def settle(self, http: httpx.AsyncClient, code: str, day: date,
                     chnl_type: str = "1") -> tuple[DetailRow, httpx.Response]:
        row = self.book.settle(code, day, chnl_type=chnl_type)[0]
        r = await self.call(http, INFNO_NOTICE, {"data": {
            "fixmedins_code": code, "setl_date": day.isoformat(), "row": row.wire()}})
        return row, r


@dataclass
class ReconSims:
    his_state: SimState
    ledger_state: SimState
    book: ReconBook
    his_url: str
    ledger_url: str
    secrets: dict[str, str]

    def his_side(self, hub_url: str, code: str) -> HisSide:
        return HisSide(hub_url, code, self.secrets[partner_of(code)], self.book)

    def mobile(self, hub_url: str) -> MobilePay:
        return MobilePay(hub_url, self.secrets[MOBILE], self.book)


def _secret(s: HubSettings, name: str) -> str:
    p = s.partners.get(name)
    return (p.secret.get_secret_value() if p else "") or f"dev-{name}-secret"


async def start_reconciliation(stack: contextlib.AsyncExitStack, s: HubSettings,
                               sims: dict[str, Any]) -> HubSettings:
    """The HIS and the core ledger on real sockets in ``stack``; ``sims["reconciliation"]``
    their handles; the settings pointing partners.institutions / core_ledger at them and
    giving every F14 partner its secret (configured, or the development one)."""
    book = ReconBook()
    his_state, ledger_state = SimState(), SimState()
    names = (GATEWAY, LEDGER, MOBILE, *(partner_of(c) for c in CODES))
    secrets = {n: _secret(s, n) for n in names}
    his_url = await stack.enter_async_context(serve_app(
        create_his_app(secrets[GATEWAY], his_state, book)))
    ledger_url = await stack.enter_async_context(serve_app(
        create_ledger_app(secrets[LEDGER], ledger_state, book)))
    sims["reconciliation"] = ReconSims(his_state, ledger_state, book, his_url, ledger_url,
                                       secrets)
    partners = dict(s.partners)
    endpoints = {GATEWAY: f"{his_url}/his", LEDGER: f"{ledger_url}/core-ledger/national",
                 MOBILE: f"{his_url}/mobile",
                 **{partner_of(c): f"{his_url}/his/{c}/national" for c in CODES}}
    for name in names:
        base = partners.get(name) or PartnerConfig(protocol="http-json", endpoint="http://x")
        partners[name] = base.model_copy(update={"endpoint": endpoints[name],
                                                 "secret": SecretStr(secrets[name])})
    return s.model_copy(update={"partners": partners})


async def serve_reconciliation_at(stack: contextlib.AsyncExitStack, s: HubSettings,
                                  host: str, serve: Any = serve_app) -> list[str]:
    """``make simulate``: the HIS and the core ledger on the ports of their configured
    endpoints (8141, 8142 in config/hub.toml), a few settled days on both sides; ``serve``
    is ``simulators.serving.serve_app`` (the caller's, so a test can stand in for it)."""
    book = ReconBook()
    today = now_cst().date()
    for code in CODES:
        for back in (1, 2):
            book.settle(code, today - timedelta(days=back), 5)
    ports = {n: urlsplit(s.partners[n].endpoint).port if n in s.partners else None
             for n in (GATEWAY, LEDGER)}
    his = await stack.enter_async_context(serve(create_his_app(
        _secret(s, GATEWAY), book=book), host=host, port=ports[GATEWAY] or 8141))
    ledger = await stack.enter_async_context(serve(create_ledger_app(
        _secret(s, LEDGER), book=book), host=host, port=ports[LEDGER] or 8142))
    return [f"F14 institutions' HIS {his}/his/<fixmedins_code>/national",
            f"F14 core settlement ledger {ledger}/core-ledger/national"]

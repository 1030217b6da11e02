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
``SunshineBook``; fault switches match ``sunshine:<day>``. Its 救助费用 and 机构 tables
come to ``POST /sunshine/fees`` and ``/sunshine/institutions``, by the same rules, each
row counted in ``SunshineBook.tables_log`` (keys ``fees:<day>:<ref>``,
``institutions:<day>:<code>``; the 救助人员 counts stay as they were); their fault key
is ``sunshine:<day>:<table>``.

The platform's side of the settlements (1487, 1497): ``POST /assistance/settlements``
takes one settlement core reported (结算费用同步; effect ``settlement:<ref>``, fault key
the ref), ``POST /assistance/settlement-data`` a page of a month's 医疗救助结算数据 with
the month's header (effect ``data:<month>:<ref>``; fault key ``data:<month>``); the
platform checks a month whose rows have all come against its header, to the fen
(``AssistanceBook.month_check``). ``query_expenses`` is its 医疗费用查询 call.

Core's side lives here too: ``CoreSettlements`` is what core knows of settlements (a
deterministic few per person and month, derived from the ID number, plus the ones
``emit_settlement`` reported as H4005 events) and its 定点医疗机构; the core simulator
answers H4002-H4004 from it.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from adapters.signing import SignedAuth
from contracts.assistance import AMOUNTS, Settlement, Totals, month_bounds, settlement_to_wire
from contracts.difficulty import ASSISTANCE
from contracts.national import NationalRequest, format_inf_time, make_msgid, now_cst
from simulators.simkit import EffectLog, SimState, fault_response, signed_body, sim_router

__all__ = ["INSTITUTIONS", "AssistanceBook", "CoreSettlements", "SunshineBook", "create_app",
           "emit_settlement", "make_settlement", "query_expenses", "query_person"]

INSTITUTIONS: tuple[tuple[str, str, str, str], ...] = (
    ("H32010200001", "南京市第一医院", "A", "3"), ("H32010200002", "南京鼓楼医院", "A", "3"),
    ("H32010400003", "南京市中医院", "B", "3"), ("H32011300004", "栖霞区医院", "A", "2"),
    ("H32011500005", "江宁医院", "A", "2"), ("H32010600006", "鼓楼区社区卫生服务中心", "C", "1"),
    ("P32010200007", "南京医药大药房新街口店", "D", ""),
    ("H32011600008", "六合区人民医院", "A", "2"))
"""Core's 定点医疗机构 (code, name, kind, level): synthetic, in Nanjing's divisions."""
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明"
_MED_TYPES = ("11", "14", "21", "41")


def make_settlement(id_number: str, when: datetime, total_fen: int, *, setl_id: str,
                    name: str, institution: int = 0, med_type: str = "11") -> Settlement:
    """A settlement whose parts add up: 统筹 60%, 大病 5% above 10000 yuan, 救助 10%,
    the rest 自付 (all in fen, so exact)."""
    fund = total_fen * 60 // 100
    serious = total_fen * 5 // 100 if total_fen > 1_000_000 else 0
    maf = total_fen * 10 // 100
    code, inst_name, _, _ = INSTITUTIONS[institution % len(INSTITUTIONS)]

    def yuan(f: int) -> str:
        return f"{Decimal(f) / 100:.2f}"

    return Settlement(setl_id=setl_id, id_number=id_number, name=name, settled_at=when,
                      institution_code=code, institution_name=inst_name, med_type=med_type,
                      medfee_total=yuan(total_fen), fund_pay=yuan(fund),
                      serious_illness_pay=yuan(serious), assistance_pay=yuan(maf),
                      self_pay=yuan(total_fen - fund - serious - maf))


@dataclass
class CoreSettlements:
    """What core knows of settlements (H4002, H4003) and 定点医疗机构 (H4004).

    Each person has, in each month, 0-2 settlements derived from their ID number and the
    month (the same every time: a deterministic store for any seeded person), plus those
    ``added`` (reported to the hub as H4005 events). ``bad_headers``: months whose H4003
    header core gets wrong by one fen (the hub must notice)."""

    added: dict[str, Settlement] = field(default_factory=dict)
    bad_headers: set[str] = field(default_factory=set)
    institutions: list[dict[str, str]] = field(default_factory=lambda: [
        {"fixmedins_code": c, "fixmedins_name": n, "fixmedins_type": k, "hosp_lv": lv,
         "admdvs": c[1:7]} for c, n, k, lv in INSTITUTIONS])
    names: dict[str, str] = field(default_factory=dict)
    """ID number -> name core holds (else a name derived from the ID number)."""

    def name_of(self, id_number: str) -> str:
        if id_number in self.names:
            return self.names[id_number]
        h = hashlib.sha256(id_number.encode()).digest()
        return _SURNAMES[h[0] % len(_SURNAMES)] + _GIVEN[h[1] % len(_GIVEN)]

    def derived(self, id_number: str, month: str) -> list[Settlement]:
        """The person's settlements of ``month`` (yyyyMM) core made by itself."""
        h = hashlib.sha256(f"settlements:{id_number}:{month}".encode()).digest()
        first, last = month_bounds(month)
        out = []
        for i in range(h[0] % 3):
            day = first + timedelta(days=h[1 + i] % (last.day))
            when = datetime(day.year, day.month, day.day, 8 + h[3 + i] % 10, h[5 + i] % 60)
            total = 2_000 + int.from_bytes(h[7 + 3 * i:10 + 3 * i], "big") % 1_500_000
            out.append(make_settlement(
                id_number, when, total, setl_id=f"S{month}{h[20:26].hex()}{i}",
                name=self.name_of(id_number), institution=h[16 + i],
                med_type=_MED_TYPES[h[18 + i] % len(_MED_TYPES)]))
        return out

    def of(self, id_number: str, month: str) -> list[Settlement]:
        own = [s for s in self.added.values() if s.id_number == id_number and s.month == month]
        return sorted(self.derived(id_number, month) + own, key=lambda s: s.settled_at)

    def between(self, id_number: str, start: date, end: date) -> list[Settlement]:
        out: list[Settlement] = []
        y, m = start.year, start.month
        while (y, m) <= (end.year, end.month):
            out.extend(s for s in self.of(id_number, f"{y:04d}{m:02d}")
                       if start <= s.setl_date <= end)
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return out

    def month_answer(self, month: str, id_numbers: list[str]) -> dict[str, Any]:
        """H4003's output: the records and core's header (wrong by a fen in a bad month)."""
        rows = [s for n in id_numbers for s in self.of(n, month)]
        header = Totals.of(rows).to_wire()
        if month in self.bad_headers:
            header["maf_pay"] = f"{Decimal(header['maf_pay']) + Decimal('0.01'):.2f}"
        return {"header": header, "records": [settlement_to_wire(s) for s in rows]}


@dataclass
class AssistanceBook:
    """The platform's 救助对象: record id -> what it took; persons in force; the settlements
    core synced (结算费用同步) and each month's 医疗救助结算数据 with its header."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    serials: set[str] = field(default_factory=set)
    bad_signatures: int = 0
    settlements: dict[str, dict[str, Any]] = field(default_factory=dict)
    """ref -> a settlement synced (结算费用同步)."""
    data: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """month (yyyy-MM) -> ref -> a row of its 医疗救助结算数据."""
    headers: dict[str, dict[str, Any]] = field(default_factory=dict)
    """month -> the latest header the hub sent with it."""
    data_pages: int = 0

    def month_check(self, month: str) -> str:
        """``complete`` when the month's rows add up to its header (count and every amount,
        to the fen), ``incomplete`` while rows are missing, ``mismatch`` otherwise."""
        header = self.headers.get(month)
        if header is None:
            return "incomplete"
        rows = list(self.data.get(month, {}).values())
        want = Totals(int(header["count"]), **{k: Decimal(header[k]) for k in AMOUNTS})
        if len(rows) < want.count:
            return "incomplete"
        return "complete" if not want.differences(Totals.of(rows)) else "mismatch"

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
    tables: dict[str, dict[str, dict[str, dict[str, Any]]]] = field(default_factory=dict)
    """救助费用 (``fees``) and 机构 (``institutions``): table -> day -> ref -> row."""
    table_pages: Counter[str] = field(default_factory=Counter)
    tables_log: EffectLog = field(default_factory=EffectLog)
    """The 救助费用 and 机构 rows taken (``fees:<day>:<ref>``, ``institutions:<day>:<code>``)."""

    def rows(self, day: str) -> dict[str, dict[str, Any]]:
        return self.days.setdefault(day, {})

    def table(self, name: str, day: str) -> dict[str, dict[str, Any]]:
        return self.tables.setdefault(name, {}).setdefault(day, {})


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
        body = await signed_body(request, sun_secret, sun)
        if isinstance(body, JSONResponse):
            return body
        page = json.loads(body)
        day = str(page.get("day") or "")
        fault = sun.state.draw(f"sunshine:{day}", "recipients")
        if (early := fault_response(fault, "阳光惠民")) is not None:
            return early
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

    @app.post("/sunshine/{table}")
    async def sunshine_table(table: str, request: Request) -> JSONResponse:
        """救助费用 (``fees``) and 机构 (``institutions``): a page of the day's table."""
        if table not in ("fees", "institutions"):
            return JSONResponse({"detail": f"no table {table}"}, status_code=404)
        body = await signed_body(request, sun_secret, sun)
        if isinstance(body, JSONResponse):
            return body
        page = json.loads(body)
        day = str(page.get("day") or "")
        fault = sun.state.draw(f"sunshine:{day}:{table}", table)
        if (early := fault_response(fault, "阳光惠民")) is not None:
            return early
        await sun.state.sleep_for(fault)
        serial = request.headers.get("x-hub-serial", "")
        if serial and serial in sun.serials:
            sun.tables_log.replays += 1
            return JSONResponse({"status": "replay"})
        sun.serials.add(serial)
        sun.table_pages[table] += 1
        for row in page.get("rows") or []:
            ref = str(row.get("ref") or row.get("code") or "")
            sun.tables_log.record(key=f"{table}:{day}:{ref}", entity=ref, value=day)
            sun.table(table, day)[ref] = row
        return JSONResponse({"status": "ok", "rows": len(page.get("rows") or [])})

    async def take_once(request: Request, operation: str, match: Callable[[dict[str, Any]], str],
                        take: Callable[[dict[str, Any]], None]
                        ) -> tuple[dict[str, Any], JSONResponse | None]:
        """What every platform door does: check the hub's signature, draw a fault (matched on
        ``match(payload)``), then ``take`` the payload once per ``X-Hub-Serial`` (a repeat is
        a replay); ``timeout`` takes it and answers late. Returns the payload, and the
        refusal to answer instead when there is one."""
        body = await signed_body(request, secret, kept)
        if isinstance(body, JSONResponse):
            return {}, body
        payload = json.loads(body)
        fault = sim.draw(match(payload), operation)
        if (early := fault_response(fault, "platform")) is not None:
            return payload, early
        if fault is not None and fault.kind == "slow":
            await sim.sleep_for(fault)
        serial = request.headers.get("x-hub-serial", "")
        if serial and serial in kept.serials:
            sim.log.replays += 1
        else:
            kept.serials.add(serial)
            take(payload)
        if fault is not None and fault.kind == "timeout":  # took it, the answer is late
            await sim.sleep_for(fault)
        return payload, None

    @app.post("/assistance/settlements")
    async def settlements(request: Request) -> JSONResponse:
        """结算费用同步: one recipient's settlement (its ``ref``)."""

        def take(payload: dict[str, Any]) -> None:
            ref = str(payload.get("ref") or "")
            sim.log.record(key=f"settlement:{ref}", entity=str(payload.get("id_number") or ""),
                           value=payload.get("setl_id"))
            kept.settlements[ref] = payload

        payload, refused = await take_once(request, "settlements",
                                           lambda p: str(p.get("ref") or ""), take)
        return refused or JSONResponse({"status": "ok", "ref": str(payload.get("ref") or "")})

    @app.post("/assistance/settlement-data")
    async def settlement_data(request: Request) -> JSONResponse:
        """A page of a month's 医疗救助结算数据, with the month's header."""

        def take(page: dict[str, Any]) -> None:
            month = str(page.get("month") or "")
            kept.data_pages += 1
            kept.headers[month] = dict(page.get("header") or {})
            for row in page.get("rows") or []:
                ref = str(row.get("ref") or "")
                sim.log.record(key=f"data:{month}:{ref}", entity=str(row.get("id_number")),
                               value=month)
                kept.data.setdefault(month, {})[ref] = row

        page, refused = await take_once(request, "settlement-data",
                                        lambda p: f"data:{p.get('month') or ''}", take)
        if refused is not None:
            return refused
        month = str(page.get("month") or "")
        return JSONResponse({"status": "ok", "month": month,
                             "check": kept.month_check(month)})

    @app.post("/assistance/recipients")
    async def recipients(request: Request) -> JSONResponse:

        def take(payload: dict[str, Any]) -> None:
            rid = str(payload.get("record_id") or "")
            sim.log.record(key=f"push:{rid}:{payload.get('action')}",
                           entity=str(payload.get("id_number") or ""), value=payload.get("action"))
            kept.records[rid] = payload

        payload, refused = await take_once(request, "recipients",
                                           lambda p: str(p.get("record_id") or ""), take)
        return refused or JSONResponse({"status": "ok",
                                        "record_id": str(payload.get("record_id") or "")})

    return app


async def query_person(http: httpx.AsyncClient, hub_url: str, id_number: str,
                       secret: str) -> httpx.Response:
    """人员认定: the platform asks the hub whether ``id_number`` is a recognised 困难人员."""
    return await http.post(f"{hub_url}/partners/assistance/queries/person",
                           json={"id_number": id_number}, auth=SignedAuth(ASSISTANCE, secret))


async def query_expenses(http: httpx.AsyncClient, hub_url: str, id_number: str, start: str,
                         end: str, secret: str) -> httpx.Response:
    """医疗费用查询: the platform asks for a recognised person's expenses in a period."""
    return await http.post(f"{hub_url}/partners/assistance/queries/expenses",
                           json={"id_number": id_number, "start_date": start,
                                 "end_date": end}, auth=SignedAuth(ASSISTANCE, secret))


async def emit_settlement(http: httpx.AsyncClient, hub_url: str, settlement: Settlement,
                          secret: str, *, seq: int = 0,
                          book: CoreSettlements | None = None) -> httpx.Response:
    """Core reports one settlement (H4005, 结算费用同步) to the hub, signed as core; kept in
    ``book`` (core's settlements) when given."""
    if book is not None:
        book.added[settlement.setl_id] = settlement
    now = now_cst()
    req = NationalRequest(infno="H4005", msgid=make_msgid("NJYBCORE0001", now, seq % 10000),
                          recer_sys_code="NJYBHUB", opter="core", opter_name="医保核心",
                          inf_time=format_inf_time(now),
                          input={"data": settlement_to_wire(settlement)})
    return await http.post(f"{hub_url}/partners/core/settlements", json=req.to_wire(),
                           auth=SignedAuth("core", secret))

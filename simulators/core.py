"""Medical-insurance core simulator (医保核心业务系统) speaking the national envelope.

It acts like the partner the hub has to survive, not like a mock. It validates
the envelope and payload, deduplicates H9201 on ``serial`` (a replay gets the
first answer again), and counts each real side effect in ``SimState.log``. The
hub's own log is never used for that count. Faults come from ``SimState.draw``,
so tests and the demo switch them over ``/_sim``:

    http_5xx, soap_fault  HTTP 503 before any effect
    http_4xx              HTTP 400 before any effect
    reject, bad_signature infcode -1 with ``fault.code`` / ``fault.text``, no effect
    slow                  sleep, then answer normally
    timeout               make the effect, then sleep (the caller gives up; the effect stays)
    duplicate             answer normally (core's dedup on ``serial`` is the point)

Core is also a source of events: ``emit_enrollments`` posts H2101 职工参保登记
events to the hub, as core does when a unit enrolls an employee, each signed with
core's partner secret (``contracts.signing``; the hub refuses unsigned calls).

Routes: ``POST /fsi/api/hub``, ``GET /core/sync-status``,
``GET /core/sync-status/{business_key}``, ``GET /core/health``, ``/_sim/*``.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from adapters.core.translate import (
    INFNO_APPLICATION,
    INFNO_ARRIVALS,
    INFNO_DIFFICULTY,
    INFNO_DRUG_CATALOGUE,
    INFNO_DRUG_ELIGIBILITY,
    INFNO_EMPLOYEE_QUERY,
    INFNO_ENROLL,
    INFNO_EXPENSES,
    INFNO_INSTITUTIONS,
    INFNO_RECORD_QUERY,
    INFNO_REVIEW,
    INFNO_SELF_PAID,
    INFNO_SETTLEMENTS,
    INFNO_SNAPSHOT,
    INFNO_SYNC_STATUS,
    INFNO_TRANSFER_CHECK,
    INFNO_TRANSFER_RESULT,
    NOT_FOUND,
    PAGE_SIZE_MAX,
    PARTNER,
    RECORD_OPS,
    enrollment_to_event,
    input_to_sync_status,
    parse_national_request,
    query_from_input,
    self_paid_to_wire,
)
from adapters.signing import SignedAuth
from contracts.assistance import settlement_to_wire
from contracts.channels import REVIEWED_TYPES
from contracts.employee import EmployeeEnrollment
from contracts.errors import ValidationFailed
from contracts.finance import INFNO_STATUS as INFNO_REFUND_STATUS
from contracts.ids import (
    NANJING_DIVISIONS,
    birth_date_of,
    gender_of,
    make_credit_code,
    make_id_number,
)
from contracts.national import (
    NationalRequest,
    NationalResponse,
    format_inf_time,
    make_msgid,
    make_refmsgid,
    now_cst,
)
from contracts.taxcat import canonical_to_core, core_to_canonical, op_for_infno, ops_of
from contracts.warnings import SelfPaid
from simulators.assistance import CoreSettlements
from simulators.pharmacy import sample_drug_catalogue
from simulators.simkit import Fault, SimState, sim_router
from simulators.tax_rules import community_for, months_between

__all__ = ["CORE_SENDER", "SYNC_EFFECT_PREFIX", "CoreStore", "corrupt_check_char", "create_app",
           "emit_enrollments", "sync_effect_statuses"]

CORE_SENDER = "NJYBCORE0001"
"""Core's 12-character sender code: the first part of every msgid it emits."""

SYNC_EFFECT_PREFIX = f"{INFNO_SYNC_STATUS}:"
"""Key prefix of core's H9201 (sync status) effects in its ``EffectLog``."""

INVALID_INPUT = "INVALID_INPUT"
INVALID_ENVELOPE = "INVALID_ENVELOPE"
_AREA = "320100"
_ID_CHARS = "0123456789X"
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红建文辉力"
_UNIT_WORDS = ("紫金", "钟山", "秦淮", "玄武", "金陵", "石城", "栖霞", "雨花", "江宁", "鼓楼")
_UNIT_TRADES = ("科技", "医药", "物流", "建设", "软件", "贸易", "餐饮", "制造", "咨询", "电子")


def _person_name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.choices(_GIVEN, k=rng.randint(1, 2)))


def _phone(rng: random.Random) -> str:
    return f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"


def corrupt_check_char(id_number: str) -> str:
    """The same ID number with a wrong check character (for invalid demo events)."""
    last = id_number[-1].upper()
    return id_number[:-1] + _ID_CHARS[(_ID_CHARS.index(last) + 1) % len(_ID_CHARS)]


@dataclass
class CoreStore:
    """What core holds: units, their employees, sync statuses, and answered serials."""

    units: dict[str, str] = field(default_factory=dict)
    """uscc -> unit name."""
    persons: dict[str, EmployeeEnrollment] = field(default_factory=dict)
    """business_key (``uscc:id_number``) -> the employee's current enrollment."""
    sync_status: dict[str, dict[str, Any]] = field(default_factory=dict)
    """business_key -> the latest H9201 status, in canonical names plus ``serial``."""
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    """serial -> the H9201 answer already given (replayed as-is)."""
    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """subject (unit, flexible, resident) -> key (uscc or ID) -> current record, canonical."""
    arrivals: dict[str, int] = field(default_factory=dict)
    """到账 batch id -> records in it (F5, H3101)."""
    applications: dict[str, dict[str, Any]] = field(default_factory=dict)
    """application id -> a channel application core registered (F1, H2501)."""
    pushes: dict[str, dict[str, Any]] = field(default_factory=dict)
    """serial -> a push from tax (F3) core took: infno and data."""
    reviewed: dict[str, bool] = field(default_factory=dict)
    """application id -> core's verdict already sent to the hub (H2502)."""
    years_short: set[str] = field(default_factory=set)
    """ID numbers whose 在职转退休 lacks the 医保年限: reviewed as 年限补缴审核, not 人员复核."""
    transfer_uninsured: set[str] = field(default_factory=set)
    """ID numbers the 转入地 holds no normal enrollment for (H1106 answers insured 0)."""
    transfer_pending: set[str] = field(default_factory=set)
    """ID numbers with 代办 business pending at the 转入地 (H1106 answers pending 1)."""
    difficulty: dict[str, dict[str, Any]] = field(default_factory=dict)
    """F7: ``certno:identity`` -> the latest 进入/退出 (H4001) core took, wire names."""
    self_paid: dict[int, list[SelfPaid]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    """F10: order number -> the latest refund status core took (H7101)."""
    drug_uninsured: set[str] = field(default_factory=set)
    """F11: ID numbers H6101 answers not insured (no 医保资格)."""
    drug_abnormal: set[str] = field(default_factory=set)
    """F11: ID numbers H6101 answers insured but not normal (暂停, 终止...)."""
    drugs: list[dict[str, Any]] = field(default_factory=sample_drug_catalogue)
    """F11: core's drug catalogue H6102 answers (wire names, ``rx_flag`` 1 处方药)."""
    """F8: year -> each person's yearly 个人自付 core answers H1107 with."""
    transfers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """F9: application number -> each 转移接续 status (H4201) core took, wire names."""
    settlements: CoreSettlements = field(default_factory=CoreSettlements)
    """F7 医疗救助平台: settlements per person and month (H4002, H4003, H4005) and the
    定点医疗机构 (H4004), ``simulators.assistance.CoreSettlements``."""
    _cursor: int = 0
    _emitted: int = 0

    def awaiting_review(self) -> list[dict[str, Any]]:
        """Registered applications core reviews before tax (在职转退休, 单位信息维护) and has
        not reviewed yet."""
        return [a for app_id, a in self.applications.items()
                if a.get("type") in REVIEWED_TYPES and app_id not in self.reviewed]

    def review_request(self, app: Mapping[str, Any], *, approved: bool, reason: str = "",
                       seq: int = 0) -> dict[str, Any]:
        """The H2502 event core sends once a caseworker reviewed ``app`` (national envelope,
        JSON-ready); the reviewed data is the registered data. Marks it reviewed."""
        data = dict(app.get("data") or {})
        kind = ("unit_review" if app.get("type") == "unit_maintain" else
                "years_backpay_review" if data.get("id_number") in self.years_short
                else "person_review")
        self.reviewed[str(app["application_id"])] = approved
        review = {"application_id": app["application_id"], "approved": approved,
                  "review_kind": kind, "reason": reason,
                  "reviewed_at": now_cst().isoformat(), "data": data if approved else None}
        return NationalRequest(infno=INFNO_REVIEW, msgid=make_msgid(CORE_SENDER, now_cst(), seq),
                               input={"data": review}).model_dump(mode="json",
                                                                  exclude_none=True)

    @classmethod
    def seed(cls, n_units: int, n_persons: int, rng_seed: int) -> CoreStore:
        """A store of synthetic units and employees; the same seed gives the same store."""
        if n_units < 0 or n_persons < 0 or (n_persons and not n_units):
            raise ValueError("need n_units >= 1 to seed persons, and no negative counts")
        rng = random.Random(rng_seed)
        store = cls()
        while len(store.units) < n_units:
            name = f"南京{rng.choice(_UNIT_WORDS)}{rng.choice(_UNIT_TRADES)}有限公司"
            store.units.setdefault(make_credit_code(rng), name)
        units = list(store.units.items())
        seen: set[str] = set()
        for i in range(n_persons):
            uscc, unit_name = units[i % len(units)]
            id_number = make_id_number(rng)
            while id_number in seen:
                id_number = make_id_number(rng)
            seen.add(id_number)
            store.add(EmployeeEnrollment(
                unit_credit_code=uscc, unit_name=unit_name, id_number=id_number,
                name=rng.choice(_SURNAMES) + "".join(rng.choices(_GIVEN, k=rng.randint(1, 2))),
                gender=gender_of(id_number),
                birth_date=birth_date_of(id_number),
                phone=f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}",
                start_month=f"{rng.randint(2015, 2024)}{rng.randint(1, 12):02d}",
                admdvs=uscc[2:8], wage=rng.randrange(250_000, 3_000_000, 100), entity_seq=1,
            ))
        store.seed_records(rng, n_persons)
        return store

    def seed_records(self, rng: random.Random, n: int) -> None:
        """Units' enrollment records, and ``n`` flexible workers and ``n`` residents."""
        units = self.records.setdefault("unit", {})
        for i, (uscc, name) in enumerate(self.units.items()):
            units[uscc] = {
                "unit_credit_code": uscc, "unit_name": name, "legal_rep": _person_name(rng),
                "unit_address": f"南京市{NANJING_DIVISIONS[uscc[2:8]]}中山路{i + 1}号",
                "unit_type": "10", "industry": "I65", "admdvs": uscc[2:8],
                "phone": _phone(rng), "start_month": f"{rng.randint(2010, 2020)}01"}
        divisions = [d for d in NANJING_DIVISIONS if d != "320100"]
        for subject in ("flexible", "resident"):
            book = self.records.setdefault(subject, {})
            for i in range(n):
                id_number = make_id_number(rng)
                division = divisions[i % len(divisions)]
                district = NANJING_DIVISIONS[division]
                common = {
                    "psn_cert_type": "01", "id_number": id_number, "name": _person_name(rng),
                    "gender": gender_of(id_number), "birth_date": birth_date_of(id_number),
                    "phone": _phone(rng), "household_address": f"南京市{district}户籍路{i + 1}号",
                    "residence_address": f"南京市{district}居住路{i + 1}号",
                    "community": community_for(division, i)}
                if subject == "flexible":
                    book[id_number] = {**common, "start_month": f"{rng.randint(2016, 2024)}01",
                                       "contribution_base": rng.randrange(400_000, 2_000_000,
                                                                          100)}
                else:
                    book[id_number] = {**common, "resident_type": "11", "subsidy_type": "00",
                                       "insure_year": "2026"}

    def add(self, e: EmployeeEnrollment) -> None:
        self.persons[e.business_key] = e

    def find(self, id_number: str, unit_credit_code: str) -> EmployeeEnrollment | None:
        return self.persons.get(f"{unit_credit_code}:{id_number}")

    def next_event(self) -> EmployeeEnrollment:
        """The next employee in turn, with ``entity_seq`` bumped, as core does on each change."""
        if not self.persons:
            raise ValueError("the store has no persons to emit")
        keys = list(self.persons)
        key = keys[self._cursor % len(keys)]
        self._cursor += 1
        current = self.persons[key]
        bumped = current.model_copy(update={"entity_seq": current.entity_seq + 1})
        self.persons[key] = bumped
        return bumped

    def snapshot(self, kind: str) -> list[dict[str, Any]]:
        """Records of one kind as 比对 compares them (``contracts/RECONCILE.md``)."""
        if kind == "unit":
            return [{"uscc": u["unit_credit_code"], "unit_name": u["unit_name"],
                     "legal_rep_name": u["legal_rep"], "insured_status": "1",
                     "start_month": u["start_month"], "pay_status": "1"}
                    for u in self.records.get("unit", {}).values()]
        if kind == "employee":
            return [{"uscc": e.unit_credit_code, "cert_type": e.psn_cert_type,
                     "id_number": e.id_number, "name": e.name, "insutype": e.insutype,
                     "insured_status": "1", "start_month": e.start_month, "pay_base": e.wage}
                    for e in self.persons.values()]
        if kind == "flexible":  # 灵活补发 detection: status 1 正常 2 暂停 3 终止 4 中止
            return [{"id_number": r["id_number"], "name": r["name"],
                     "status": str(r.get("status") or "1")}
                    for r in self.records.get("flexible", {}).values()]
        return [{"cert_type": "01", "id_number": r["id_number"], "name": r["name"],
                 "community_code": r["community"], "psn_type": r["resident_type"],
                 "insured_status": "1", "insu_year": int(r["insure_year"])}
                for r in self.records.get("resident", {}).values()]

    def answer_query(self, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Tax's questions (F4) answered from what core holds (canonical names)."""
        uscc, id_number = params.get("unit_credit_code"), params.get("id_number")
        if name == "CoreQueryUnitEnrollment":
            unit = self.records.get("unit", {}).get(str(uscc))
            return [] if unit is None else [{**unit, "status": "1"}]
        if name == "CoreQueryEmployee":
            return [{"unit_credit_code": e.unit_credit_code, "id_number": e.id_number,
                     "name": e.name, "start_month": e.start_month, "wage": e.wage, "status": "1"}
                    for e in self.persons.values() if e.id_number == id_number
                    and (uscc is None or e.unit_credit_code == uscc)]
        if name == "CoreQueryUnitCollection":
            return [] if uscc not in self.units else [{
                "unit_credit_code": uscc, "bill_no": f"ZJ{uscc[-6:]}{params['period_start']}",
                "period_start": params["period_start"], "amount": 1_250_000}]
        if name == "CoreQueryResidentCollection":
            person = self.records.get("resident", {}).get(str(id_number))
            return [] if person is None else [{
                "id_number": id_number, "collection_no": f"JM{str(id_number)[-8:]}",
                "insure_year": params["insure_year"], "amount": 38_000, "status": "1"}]
        if name == "CoreQueryEmployeeArrivals":  # H1205: 职工缴费到账, per month from enrollment
            start, end = str(params["period_start"]), str(params["period_end"])
            return [{"unit_credit_code": e.unit_credit_code, "id_number": e.id_number,
                     "period_start": m, "insutype": "310", "paid_amount": e.wage * 2 // 100,
                     "arrival_date": f"{m[:4]}-{m[4:]}-15"}
                    for e in self.persons.values() if e.id_number == id_number
                    and (uscc is None or e.unit_credit_code == uscc)
                    for m in months_between(max(start, e.start_month), end)]
        if name == "CoreQuerySpecialArrivals":  # H1206: the 特殊缴费 core took (H3001 pushes)
            o = op_for_infno("H3001")
            found = [core_to_canonical(o, p["data"]) for p in self.pushes.values()
                     if o is not None and p["infno"] == "H3001"]
            return [{"bill_no": d["bill_no"], "unit_credit_code": d.get("unit_credit_code"),
                     "id_number": d.get("id_number"), "period_start": d["period_start"],
                     "insutype": "310", "paid_amount": d["amount"]}
                    for d in found if (uscc or id_number) and uscc in (None, d.get(
                        "unit_credit_code")) and id_number in (None, d.get("id_number"))
                    and d["period_start"] <= params["period_end"]
                    and d["period_end"] >= params["period_start"]]
        return []

    def sync_status_of(self, correlation_id: str) -> str | None:
        """Core's recorded sync status (synced, rejected, failed) of one transaction.

        None when core has none for it, or when a later transaction of the same
        business key has replaced it (core keeps the latest per business key).
        """
        for entry in self.sync_status.values():
            if entry.get("correlation_id") == correlation_id:
                return str(entry.get("status"))
        return None

    def arrivals_of(self, batch_prefix: str) -> int:
        """到账 records core holds from the batches whose id starts with ``batch_prefix``."""
        return sum(n for batch, n in self.arrivals.items() if batch.startswith(batch_prefix))

    def take_msg_numbers(self, n: int) -> range:
        """Reserve ``n`` event numbers. msgids derived from them stay unique across calls."""
        first = self._emitted
        self._emitted += n
        return range(first, first + n)


def sync_effect_statuses(effects: Mapping[str, int]) -> Counter[str]:
    """H9201 effects per status (synced, rejected, failed) among core's effects per key.

    ``effects`` is core's ``EffectLog.effects`` or a window of it (``EffectLog.since``);
    H9201 effects are keyed ``H9201:{business_key}:{status}``.
    """
    out: Counter[str] = Counter()
    for key, n in effects.items():
        if key.startswith(SYNC_EFFECT_PREFIX):
            out[key.rpartition(":")[2]] += n
    return out


def _json(response: NationalResponse, status_code: int = 200) -> JSONResponse:
    return JSONResponse(response.model_dump(mode="json"), status_code=status_code)


def _early_fault(fault: Fault | None, refmsgid: str) -> JSONResponse | None:
    """The answer of a fault that acts before any effect, if this is one."""
    if fault is None:
        return None
    if fault.kind in ("http_5xx", "soap_fault"):
        return JSONResponse({"detail": "core unavailable (simulated)"}, status_code=503)
    if fault.kind == "http_4xx":
        return JSONResponse({"detail": "bad request (simulated)"}, status_code=400)
    if fault.kind in ("reject", "bad_signature"):
        return _json(NationalResponse.failure(fault.text, code=fault.code, refmsgid=refmsgid))
    return None


def paged(rows: list[Any], input: Any, key: str = "records") -> dict[str, Any] | str:
    """A list query's output: with ``page_num`` (from 1) and ``page_size`` (1..10,000) in
    the input, that page of ``rows`` with the ``total``; without them, every row (as a
    core that does not page answers). A bad paging field gives the error text naming it."""
    given = input if isinstance(input, dict) else {}
    if "page_num" not in given and "page_size" not in given:
        return {key: rows}
    num, size = given.get("page_num"), given.get("page_size")
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        return "input.page_num must be a whole number from 1"
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= PAGE_SIZE_MAX:
        return f"input.page_size must be a whole number from 1 to {PAGE_SIZE_MAX}"
    start = (num - 1) * size
    return {key: rows[start:start + size], "page_num": num, "page_size": size,
            "total": len(rows)}


def _page_answer(rows: list[Any], input: Any, ref: str, key: str = "records") -> JSONResponse:
    out = paged(rows, input, key)
    if isinstance(out, str):
        return _json(NationalResponse.failure(out, code=INVALID_INPUT, refmsgid=ref))
    return _json(NationalResponse.success(out, refmsgid=ref))


def create_app(state: SimState | None = None, *, store: CoreStore | None = None) -> FastAPI:
    """The core simulator; ``store`` defaults to a deterministic seed of 5 units, 50 persons."""
    sim = state or SimState()
    core = store if store is not None else CoreStore.seed(5, 50, rng_seed=2101)
    serials = itertools.count(1)
    app = FastAPI(title="Core simulator (医保核心业务系统)")
    app.state.sim = sim
    app.state.store = core
    app.include_router(sim_router(sim))
    traceparents: deque[str] = deque(maxlen=1000)
    """The W3C ``traceparent`` header of each national call, newest last ("" when absent):
    a test follows one trace from a hub door to here (``GET /_sim/traceparents``)."""

    @app.get("/_sim/traceparents")
    async def seen_traceparents() -> list[str]:
        return list(traceparents)

    def refmsgid() -> str:
        return make_refmsgid(_AREA, now_cst(), next(serials))

    async def faulted(key: str, infno: str, ref: str) -> JSONResponse | None:
        """A read-like call's faults: an early answer, or a delay before the normal one."""
        fault = sim.draw(key, infno)
        if (early := _early_fault(fault, ref)) is not None:
            return early
        await sim.sleep_for(fault)
        return None

    async def sync_status(req: NationalRequest) -> JSONResponse:
        ref = refmsgid()
        try:
            update = input_to_sync_status(req.input)
            serial = req.input.get("serial")
            if not isinstance(serial, str) or not serial:
                raise ValidationFailed([("serial", "required")])
        except ValidationFailed as exc:
            return _json(NationalResponse.failure(exc.reason, code=INVALID_INPUT, refmsgid=ref))
        fault = sim.draw(f"{INFNO_SYNC_STATUS}:{update.business_key}", INFNO_SYNC_STATUS)
        if (early := _early_fault(fault, ref)) is not None:
            return early
        if fault and fault.kind == "slow":
            await sim.sleep_for(fault)
        answer = core.answers.get(serial)
        if answer is not None:
            sim.log.replays += 1
        else:
            sim.log.record(key=f"{INFNO_SYNC_STATUS}:{update.business_key}:{update.status}",
                           entity=update.id_number or update.business_key, value=update.status)
            core.sync_status[update.business_key] = {**update.model_dump(), "serial": serial,
                                                     "updated_at": format_inf_time(now_cst())}
            answer = NationalResponse.success({"biz_key": update.business_key},
                                              refmsgid=ref).model_dump(mode="json")
            core.answers[serial] = answer
        if fault and fault.kind == "timeout":
            await sim.sleep_for(fault)
        return JSONResponse(answer)

    async def employee_query(req: NationalRequest) -> JSONResponse:
        ref = refmsgid()
        try:
            id_number, uscc = query_from_input(req.input)
        except ValidationFailed as exc:
            return _json(NationalResponse.failure(exc.reason, code=INVALID_INPUT, refmsgid=ref))
        fault = sim.draw(f"{INFNO_EMPLOYEE_QUERY}:{uscc}:{id_number}", INFNO_EMPLOYEE_QUERY)
        if (early := _early_fault(fault, ref)) is not None:
            return early
        await sim.sleep_for(fault)  # slow or timeout: a read has no effect to make first
        person = core.find(id_number, uscc)
        if person is None:
            return _json(NationalResponse.failure(f"person {id_number} of unit {uscc} not found",
                                                  code=NOT_FOUND, refmsgid=ref))
        return _json(NationalResponse.success({"data": enrollment_to_event(person)},
                                              refmsgid=ref))

    async def record_query(req: NationalRequest) -> JSONResponse:
        ref = refmsgid()
        data = req.input.get("data") if isinstance(req.input, dict) else None
        subject = data.get("subject") if isinstance(data, dict) else None
        o = RECORD_OPS.get(str(subject))
        if not isinstance(data, dict) or o is None:
            return _json(NationalResponse.failure("data.subject must be unit, flexible or "
                                                  "resident", code=INVALID_INPUT, refmsgid=ref))
        early = await faulted(f"{INFNO_RECORD_QUERY}:{subject}", INFNO_RECORD_QUERY, ref)
        if early is not None:
            return early
        key = data.get("uscc") if subject == "unit" else data.get("certno")
        record = core.records.get(str(subject), {}).get(str(key))
        if record is None:
            return _json(NationalResponse.failure(f"no {subject} {key}", code=NOT_FOUND,
                                                  refmsgid=ref))
        status = {"pay_stas": str(record.get("pay_status") or "1")}  # 1 正常 2 停保
        return _json(NationalResponse.success(
            {"data": canonical_to_core(o.wire_fields, record), "status": status},
            refmsgid=ref))

    async def push(req: NationalRequest) -> JSONResponse:
        """F3: what tax pushed; deduplicated on serial, one effect per serial."""
        ref = refmsgid()
        serial = req.input.get("serial") if isinstance(req.input, dict) else None
        data = req.input.get("data") if isinstance(req.input, dict) else None
        if not isinstance(serial, str) or not serial or not isinstance(data, dict):
            return _json(NationalResponse.failure("input.serial and input.data are required",
                                                  code=INVALID_INPUT, refmsgid=ref))
        if (early := await faulted(f"{req.infno}:{serial}", req.infno, ref)) is not None:
            return early
        if serial in core.pushes:
            sim.log.replays += 1
        else:
            o = op_for_infno(req.infno)
            key = o.business_key(core_to_canonical(o, data)) if o else serial
            sim.log.record(key=f"{req.infno}:{key}", entity=key, value=serial)
            core.pushes[serial] = {"infno": req.infno, "data": data}
        return _json(NationalResponse.success({"serial": serial}, refmsgid=ref))

    async def tax_query(req: NationalRequest) -> JSONResponse:
        """F4: tax asks core; answered from the store."""
        ref = refmsgid()
        o = op_for_infno(req.infno)
        data = req.input.get("data") if isinstance(req.input, dict) else None
        if o is None or not isinstance(data, dict):
            return _json(NationalResponse.failure("input.data is required",
                                                  code=INVALID_INPUT, refmsgid=ref))
        if (early := await faulted(f"{req.infno}:query", req.infno, ref)) is not None:
            return early
        rows = [canonical_to_core(o.reply_fields, r)
                for r in core.answer_query(o.name, core_to_canonical(o, data))]
        return _json(NationalResponse.success({"records": rows}, refmsgid=ref))

    async def register_application(req: NationalRequest) -> JSONResponse:
        """F1: one registration per application id; a repeat gets the same reference."""
        ref = refmsgid()
        data = req.input.get("data") if isinstance(req.input, dict) else None
        app_id = data.get("application_id") if isinstance(data, dict) else None
        if not isinstance(data, dict) or not isinstance(app_id, str) or not app_id:
            return _json(NationalResponse.failure("data.application_id is required",
                                                  code=INVALID_INPUT, refmsgid=ref))
        early = await faulted(f"{INFNO_APPLICATION}:{app_id}", INFNO_APPLICATION, ref)
        if early is not None:
            return early
        known = core.applications.get(app_id)
        if known is not None:
            sim.log.replays += 1
        else:
            known = {**data, "core_ref": f"CR{len(core.applications) + 1:010d}"}
            core.applications[app_id] = known
            sim.log.record(key=f"{INFNO_APPLICATION}:{app_id}", entity=app_id,
                           value=str(data.get("type")))
        return _json(NationalResponse.success({"core_ref": known["core_ref"]}, refmsgid=ref))

    async def arrivals(req: NationalRequest) -> JSONResponse:
        """F5: a 到账 batch; one effect per batch id, a repeat is a replay."""
        ref = refmsgid()
        serial = req.input.get("serial") if isinstance(req.input, dict) else None
        records = req.input.get("records") if isinstance(req.input, dict) else None
        if not isinstance(serial, str) or not serial or not isinstance(records, list):
            return _json(NationalResponse.failure("input.serial and input.records are required",
                                                  code=INVALID_INPUT, refmsgid=ref))
        if (early := await faulted(f"{INFNO_ARRIVALS}:{serial}", INFNO_ARRIVALS, ref)) is not None:
            return early
        if serial in core.arrivals:
            sim.log.replays += 1
        else:
            core.arrivals[serial] = len(records)
            sim.log.record(key=f"{INFNO_ARRIVALS}:{serial}", entity=serial,
                           value=str(req.input.get("kind")))
        return _json(NationalResponse.success({"serial": serial, "records": len(records)},
                                              refmsgid=ref))

    async def snapshot(req: NationalRequest) -> JSONResponse:
        """比对: core's records of one kind, in the reconciliation field names."""
        ref = refmsgid()
        kind = req.input.get("kind") if isinstance(req.input, dict) else None
        if kind not in ("unit", "employee", "resident", "flexible"):
            return _json(NationalResponse.failure("input.kind must be unit, employee, "
                                                  "resident or flexible", code=INVALID_INPUT,
                                                  refmsgid=ref))
        if (early := await faulted(f"{INFNO_SNAPSHOT}:{kind}", INFNO_SNAPSHOT, ref)) is not None:
            return early
        return _page_answer(core.snapshot(str(kind)), req.input, ref)

    async def transfer_check(req: NationalRequest) -> JSONResponse:
        """转出: the 转入地's view of the person (switches: ``transfer_uninsured``,
        ``transfer_pending``); a question, so no effect is counted."""
        ref = refmsgid()
        data = req.input.get("data") if isinstance(req.input, dict) else None
        certno = data.get("certno") if isinstance(data, dict) else None
        target = data.get("target_admdvs") if isinstance(data, dict) else None
        if not isinstance(certno, str) or not isinstance(target, str):
            return _json(NationalResponse.failure("data.certno and data.target_admdvs are "
                                                  "required", code=INVALID_INPUT, refmsgid=ref))
        if (early := await faulted(f"{INFNO_TRANSFER_CHECK}:{certno}", INFNO_TRANSFER_CHECK,
                                   ref)) is not None:
            return early
        insured = certno not in core.transfer_uninsured
        pending = certno in core.transfer_pending
        detail = ("转入地无正常参保信息" if not insured
                  else "转入地有未办结的代办业务" if pending else "")
        return _json(NationalResponse.success({"data": {
            "insured": "1" if insured else "0", "pending": "1" if pending else "0",
            "detail": detail}}, refmsgid=ref))

    async def self_paid(req: NationalRequest) -> JSONResponse:
        """F8: yearly 个人自付 per person (``CoreStore.self_paid``); a question, no effect."""
        ref = refmsgid()
        year = str(req.input.get("year", "")) if isinstance(req.input, dict) else ""
        if not (year.isdigit() and len(year) == 4):
            return _json(NationalResponse.failure("input.year must be YYYY",
                                                  code=INVALID_INPUT, refmsgid=ref))
        if (early := await faulted(f"{INFNO_SELF_PAID}:{year}", INFNO_SELF_PAID,
                                   ref)) is not None:
            return early
        return _page_answer([self_paid_to_wire(p) for p in core.self_paid.get(int(year), [])],
                            req.input, ref)

    async def difficulty(req: NationalRequest) -> JSONResponse:
        """F7 H4001: 进入/退出 of an assistance identity; one effect per serial."""
        ref = refmsgid()
        data = req.input.get("data") if isinstance(req.input, dict) else None
        serial = req.input.get("serial") if isinstance(req.input, dict) else None
        if not isinstance(data, dict) or not isinstance(serial, str) or not serial \
                or data.get("chg_type") not in ("1", "2") or not data.get("certno"):
            return _json(NationalResponse.failure("input.serial, data.certno and data.chg_type "
                                                  "are required", code=INVALID_INPUT,
                                                  refmsgid=ref))
        key = f"{data['certno']}:{data.get('psn_idet_type')}"
        fault = sim.draw(f"{INFNO_DIFFICULTY}:{key}", INFNO_DIFFICULTY)
        if (early := _early_fault(fault, ref)) is not None:
            return early
        await sim.sleep_for(fault)
        answer = core.answers.get(serial)
        if answer is None:
            sim.log.record(key=f"{INFNO_DIFFICULTY}:{key}:{data['chg_type']}:{data.get('rec_id')}",
                           entity=str(data["certno"]), value=data["chg_type"])
            core.difficulty[key] = dict(data)
            answer = NationalResponse.success({"rec_id": data.get("rec_id")},
                                              refmsgid=ref).model_dump(mode="json")
            core.answers[serial] = answer
        else:
            sim.log.replays += 1
        return JSONResponse(answer)

    async def drug_eligibility(req: NationalRequest) -> JSONResponse:
        """F11 H6101 医保资格 (switches ``drug_uninsured``, ``drug_abnormal``); no effect."""
        ref = refmsgid()
        data = req.input.get("data") if isinstance(req.input, dict) else None
        certno = data.get("certno") if isinstance(data, dict) else None
        if not isinstance(certno, str) or not certno:
            return _json(NationalResponse.failure("data.certno is required",
                                                  code=INVALID_INPUT, refmsgid=ref))
        if (early := await faulted(f"{INFNO_DRUG_ELIGIBILITY}:{certno}",
                                   INFNO_DRUG_ELIGIBILITY, ref)) is not None:
            return early
        insured = certno not in core.drug_uninsured
        normal = insured and certno not in core.drug_abnormal
        detail = "" if normal else "未参保" if not insured else "参保状态暂停"
        return _json(NationalResponse.success({"data": {
            "insured": "1" if insured else "0", "psn_stas": "1" if normal else "2",
            "psn_type": "11", "detail": detail}}, refmsgid=ref))

    async def drug_catalogue(req: NationalRequest) -> JSONResponse:
        """F11 H6102: the drug catalogue with the 处方药 flag (``CoreStore.drugs``)."""
        ref = refmsgid()
        if (early := await faulted(INFNO_DRUG_CATALOGUE, INFNO_DRUG_CATALOGUE,
                                   ref)) is not None:
            return early
        return _page_answer([dict(d) for d in core.drugs], req.input, ref, key="drugs")

    async def transfer_result(req: NationalRequest) -> JSONResponse:
        """F9 H4201: a transfer's status change; one effect per serial (a replay answers
        the first answer again)."""
        ref = refmsgid()
        data = req.input.get("data") if isinstance(req.input, dict) else None
        serial = req.input.get("serial") if isinstance(req.input, dict) else None
        if not isinstance(data, dict) or not isinstance(serial, str) or not serial \
                or not data.get("aply_no") or not data.get("stas"):
            return _json(NationalResponse.failure("input.serial, data.aply_no and data.stas "
                                                  "are required", code=INVALID_INPUT,
                                                  refmsgid=ref))
        key = f"{data['aply_no']}:{data['stas']}"
        fault = sim.draw(f"{INFNO_TRANSFER_RESULT}:{key}", INFNO_TRANSFER_RESULT)
        if (early := _early_fault(fault, ref)) is not None:
            return early
        await sim.sleep_for(fault)
        answer = core.answers.get(serial)
        if answer is None:
            sim.log.record(key=f"{INFNO_TRANSFER_RESULT}:{key}", entity=str(data["aply_no"]),
                           value=data["stas"])
            core.transfers.setdefault(str(data["aply_no"]), []).append(dict(data))
            answer = NationalResponse.success({"aply_no": data["aply_no"]},
                                              refmsgid=ref).model_dump(mode="json")
            core.answers[serial] = answer
        else:
            sim.log.replays += 1
        return JSONResponse(answer)

    async def refund_status(req: NationalRequest) -> JSONResponse:
        """F10 H7101: a refund order's status; one effect per serial
        (key ``H7101:<order_no>:<version>:<status>``)."""
        ref = refmsgid()
        data = req.input.get("data") if isinstance(req.input, dict) else None
        serial = req.input.get("serial") if isinstance(req.input, dict) else None
        if not isinstance(data, dict) or not isinstance(serial, str) or not serial \
                or not data.get("order_no") or not data.get("status"):
            return _json(NationalResponse.failure("input.serial, data.order_no and data.status "
                                                  "are required", code=INVALID_INPUT,
                                                  refmsgid=ref))
        key = f"{INFNO_REFUND_STATUS}:{data['order_no']}:{data.get('version')}:{data['status']}"
        fault = sim.draw(key, INFNO_REFUND_STATUS)
        if (early := _early_fault(fault, ref)) is not None:
            return early
        await sim.sleep_for(fault)
        answer = core.answers.get(serial)
        if answer is None:
            sim.log.record(key=key, entity=str(data["order_no"]), value=data["status"])
            core.refunds[str(data["order_no"])] = dict(data)
            answer = NationalResponse.success({}, refmsgid=ref).model_dump(mode="json")
            core.answers[serial] = answer
        else:
            sim.log.replays += 1
        return JSONResponse(answer)

    async def expenses(req: NationalRequest) -> JSONResponse:
        """F7 H4002 医疗费用查询: one person's settlements in a period; a question, no
        effect."""
        ref = refmsgid()
        data = req.input.get("data") if isinstance(req.input, dict) else None
        try:
            certno = str(data["certno"])  # type: ignore[index]
            start = date.fromisoformat(str(data["begndate"]))  # type: ignore[index]
            end = date.fromisoformat(str(data["enddate"]))  # type: ignore[index]
        except (TypeError, KeyError, ValueError):
            return _json(NationalResponse.failure("data.certno, data.begndate and "
                                                  "data.enddate (yyyy-MM-dd) are required",
                                                  code=INVALID_INPUT, refmsgid=ref))
        if (early := await faulted(f"{INFNO_EXPENSES}:{certno}", INFNO_EXPENSES,
                                   ref)) is not None:
            return early
        rows = core.settlements.between(certno, start, end)
        return _json(NationalResponse.success({"records": [
            settlement_to_wire(x) for x in rows]}, refmsgid=ref))

    async def month_settlements(req: NationalRequest) -> JSONResponse:
        """F7 H4003: a month's settlements of the listed persons, with core's header."""
        ref = refmsgid()
        data = req.input.get("data") if isinstance(req.input, dict) else None
        month = data.get("month") if isinstance(data, dict) else None
        certnos = data.get("certnos") if isinstance(data, dict) else None
        if not isinstance(month, str) or len(month) != 6 or not month.isdigit() \
                or not isinstance(certnos, list):
            return _json(NationalResponse.failure("data.month (yyyyMM) and data.certnos are "
                                                  "required", code=INVALID_INPUT,
                                                  refmsgid=ref))
        if (early := await faulted(f"{INFNO_SETTLEMENTS}:{month}", INFNO_SETTLEMENTS,
                                   ref)) is not None:
            return early
        return _json(NationalResponse.success(core.settlements.month_answer(
            month, [str(c) for c in certnos]), refmsgid=ref))

    async def institutions(req: NationalRequest) -> JSONResponse:
        """F7 H4004: the 定点医疗机构 list."""
        ref = refmsgid()
        if (early := await faulted(INFNO_INSTITUTIONS, INFNO_INSTITUTIONS, ref)) is not None:
            return early
        return _page_answer([dict(i) for i in core.settlements.institutions], req.input, ref)

    handlers = {INFNO_SYNC_STATUS: sync_status, INFNO_EMPLOYEE_QUERY: employee_query,
                INFNO_EXPENSES: expenses, INFNO_SETTLEMENTS: month_settlements,
                INFNO_INSTITUTIONS: institutions,
                INFNO_REFUND_STATUS: refund_status,
                INFNO_TRANSFER_RESULT: transfer_result,
                INFNO_DRUG_ELIGIBILITY: drug_eligibility, INFNO_DRUG_CATALOGUE: drug_catalogue,
                INFNO_DIFFICULTY: difficulty,
                INFNO_SELF_PAID: self_paid,
                INFNO_TRANSFER_CHECK: transfer_check,
                INFNO_SNAPSHOT: snapshot,
                INFNO_ARRIVALS: arrivals,
                INFNO_APPLICATION: register_application,
                INFNO_RECORD_QUERY: record_query,
                **{o.core_infno: push for o in ops_of("push")},
                **{o.core_infno: tax_query for o in ops_of("core_query")}}

    @app.post("/fsi/api/hub")
    async def hub(request: Request) -> JSONResponse:
        traceparents.append(request.headers.get("traceparent", ""))
        try:
            req = parse_national_request(await request.body(), known_infnos=handlers)
        except ValidationFailed as exc:
            return _json(NationalResponse.failure(exc.reason, code=INVALID_ENVELOPE), 400)
        return await handlers[req.infno](req)

    @app.get("/core/sync-status")
    async def all_sync_status() -> dict[str, dict[str, Any]]:
        return core.sync_status

    @app.get("/core/sync-status/{business_key}")
    async def one_sync_status(business_key: str) -> dict[str, Any]:
        if business_key not in core.sync_status:
            raise HTTPException(404, f"no sync status for {business_key}")
        return core.sync_status[business_key]

    @app.get("/core/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "units": len(core.units), "persons": len(core.persons),
                "sync_status": len(core.sync_status)}

    return app


async def emit_enrollments(hub_url: str, store: CoreStore, n: int, *, client: httpx.AsyncClient,
                           secret: str, concurrency: int = 20,
                           invalid_every: int = 0) -> list[str]:
    """Post ``n`` H2101 events to ``{hub_url}/partners/core/events``; returns their msgids.

    Each post is signed as partner ``core`` with ``secret`` (the hub's
    ``partners.core.secret``; ``contracts.signing``), as the hub's door requires.

    Employees are taken in turn from ``store``, and each event bumps the
    employee's ``seq``. msgids never repeat for one store, even across calls
    within the same second. ``invalid_every=k`` gives every k-th event (k, 2k, ...) a
    wrong ID check character, to show the demo the hub refusing it. The hub's
    answers are the hub's business: 2xx and 4xx are accepted. A 404/405 (a
    misrouted URL) or a 5xx raises ``httpx.HTTPStatusError``, because then the
    events did not reach the hub at all.
    """
    if n < 0 or concurrency < 1 or invalid_every < 0:
        raise ValueError("need n >= 0, concurrency >= 1 and invalid_every >= 0")
    url = f"{hub_url.rstrip('/')}/partners/core/events"
    start = now_cst()
    requests: list[NationalRequest] = []
    for i, number in enumerate(store.take_msg_numbers(n)):
        data = enrollment_to_event(store.next_event())
        if invalid_every and (i + 1) % invalid_every == 0:
            data["certno"] = corrupt_check_char(data["certno"])
        # One second per 10000 events keeps (time, seq) unique for this store's lifetime.
        when = start + timedelta(seconds=number // 10000)
        requests.append(NationalRequest(
            infno=INFNO_ENROLL, msgid=make_msgid(CORE_SENDER, when, number % 10000),
            insuplc_admdvs=data["insu_admdvs"], recer_sys_code="NJYBHUB", opter="core",
            opter_name="医保核心", inf_time=format_inf_time(start), input={"data": data},
        ))
    gate = asyncio.Semaphore(concurrency)
    signer = SignedAuth(PARTNER, secret)

    async def send(req: NationalRequest) -> None:
        async with gate:
            r = await client.post(url, json=req.to_wire(), auth=signer)
        if r.status_code >= 500 or r.status_code in (404, 405):
            r.raise_for_status()

    try:
        async with asyncio.TaskGroup() as tg:
            for req in requests:
                tg.create_task(send(req))
    except ExceptionGroup as group:
        raise group.exceptions[0] from None
    return [r.msgid for r in requests]

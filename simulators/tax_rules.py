"""What the simulated tax bureau knows and how it decides: plausible rules, no I/O.

The simulator (``simulator.py``) speaks SOAP; this module is its memory and its
judgement, kept apart so the rules can be read and tested on their own. It
works on tax's wire names (pinyin), as the real bureau would.

Rules (each rejection has a reason code; codes are the simulator's own):

    TX101  agency/division code not in Nanjing (unit and employee enrollment)
    TX102  unit not registered at tax (unit operations other than enrollment)
    TX103  unit already enrolled            TX104  unit already stopped / not stopped
    TX106  unit has arrears: cannot be cancelled
    TX107  transfer to the same unit
    TX203  arrears: 在职转退休 refused
    TX301  community (基层医保区划) unknown to tax (flexible, resident, collection)
    TX302  already enrolled (flexible)      TX303  not enrolled (flexible)
    TX402  identity not unique: confirm it (FlexibleIdentityConfirm) before terminating
           (an ID with NON_UNIQUE_SUFFIX, or one a test put in ``not_unique``)
    TX403  identity confirmation refused (an ID a test put in ``confirm_refusals``)
    TX502  already enrolled this year (resident)   TX503  newborn older than two years
    TX504  not enrolled (resident)
    TX505  newborn's 参保日期 is not the birth date   TX506  no enrolled 准新生儿 to stop
    TX507  the mother's 准新生儿 is still enrolled: stop it (PreNewbornStop) first
    TX601  bill number already used         TX602  no such bill
    TX603  collection number already used   TX604  no such collection
    TX605  退费复核核验反馈 without 核验结果   TX606  ... without (or with an unreadable) 核验时间
    TX201  (feedback, not ack) the employee has an active enrollment at another unit

Data that queries answer is kept in dictionaries a test may set (``arrears``,
``payments``, ``prenewborn_paid``); otherwise it is derived deterministically from
the ID or from what the book holds, so runs are repeatable:

    QueryPaymentInfo        ``payments[key]`` when set; else an employee active at tax
                            paid 310 (职工医保) every month asked, anyone else nothing
    QueryPreNewbornPayment  the 准新生儿 record of (mother, 胎次) for the year asked:
                            paid_amount 38000 status 1 when paid, 0 / 0 when enrolled
                            but unpaid, no record when tax has none
    QueryUnitEnrollment     the unit as tax holds it (status 1 正常, 2 停保, 3 注销)
    QueryFlexible*          nothing for a person tax has no 灵活就业 record of; else per
                            month asked (at most 36): months before this one paid (310 and
                            330), this month and later 待缴 / 在途; 扣款 as paid
    QueryPersonArrivals     one record per query, its 数据包编号 ``SJB<yyyyMM><3 digits>``;
                            a ``package_no`` asked that is not it answers nothing
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final

from contracts.clock import today_beijing
from contracts.ids import NANJING_DIVISIONS

__all__ = ["KNOWN_COMMUNITIES", "NON_UNIQUE_SUFFIX", "PRENEWBORN_FEE", "Decision", "TaxBook",
           "community_for", "months_between"]

NON_UNIQUE_SUFFIX: Final = "7777"
"""ID numbers whose 4 digits before the check char are these are 'not unique' at tax."""

PRENEWBORN_FEE: Final = 38_000
"""A year's 城乡居民 fee of a 准新生儿 in fen (380 yuan)."""

KNOWN_COMMUNITIES: Final = frozenset(
    f"{division}{street:03d}{community:03d}"
    for division in NANJING_DIVISIONS for street in range(1, 6) for community in range(1, 5))
"""Communities tax knows: 20 per Nanjing division (street 001-005, community 001-004)."""


def community_for(division: str, n: int = 0) -> str:
    """A community tax knows inside ``division`` (for fixtures and simulators)."""
    return f"{division}{n % 5 + 1:03d}{n // 5 % 4 + 1:03d}"


def months_between(start: str, end: str, limit: int = 36) -> list[str]:
    """yyyyMM from ``start`` to ``end`` (at most ``limit`` of them)."""
    year, month = int(start[:4]), int(start[4:])
    out: list[str] = []
    while f"{year:04d}{month:02d}" <= end and len(out) < limit:
        out.append(f"{year:04d}{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def _h(value: str) -> int:
    return int(hashlib.sha256(value.encode()).hexdigest()[:8], 16)


@dataclass(frozen=True)
class Decision:
    """Accepted (``code`` empty) or refused with tax's reason."""

    code: str = ""
    text: str = ""

    @property
    def ok(self) -> bool:
        return not self.code


_OK: Final = Decision()


@dataclass
class TaxBook:
    """The bureau's state: units, persons per scheme, bills, collections, confirmations."""

    units: dict[str, dict[str, str]] = field(default_factory=dict)
    persons: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    """(scheme, zjhm) -> status and details; scheme is employee, flexible or resident."""
    bills: dict[str, dict[str, str]] = field(default_factory=dict)
    collections: dict[str, dict[str, str]] = field(default_factory=dict)
    confirmed: dict[str, str] = field(default_factory=dict)
    """zjhm -> confirm number of a completed identity confirmation."""
    not_unique: set[str] = field(default_factory=set)
    """The switch: zjhm tax holds as not unique (TX402 on termination until confirmed),
    besides the IDs ending in ``NON_UNIQUE_SUFFIX``."""
    confirm_refusals: dict[str, str] = field(default_factory=dict)
    """zjhm -> the reason tax refuses its identity confirmation with (TX403)."""
    arrears: dict[str, int] = field(default_factory=dict)
    """zjhm or shxydm -> arrears in fen; when absent, derived from the key (about 1 in 10)."""
    prenewborns: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    """(mother's ID, birth order) -> a 准新生儿 enrollment: its year and whether it is paid."""
    prenewborn_paid: dict[tuple[str, str], bool] = field(default_factory=dict)
    """(mother's ID, birth order) -> whether this year's fee is paid (a test or the demo sets
    it); ``False`` alone stands for a record enrolled but unpaid."""
    payments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """zjhm or shxydm -> contribution records (canonical names: period_start yyyyMM,
    insutype, paid_amount, status 1 正常 / 2 欠缴 / 3 作废); when absent, derived."""
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    """op:business key -> the last accepted body, for inspection."""
    arrivals: dict[str, int] = field(default_factory=dict)
    """F10 退费: zjhm or shxydm -> the fen tax says arrived (QueryPerson/UnitArrivals);
    0: nothing arrived (no record); when absent, derived (``base_of`` / 10)."""

    # ------------------------------------------------------------ facts

    def arrears_of(self, key: str) -> int:
        if key in self.arrears:
            return self.arrears[key]
        return (_h(key) % 9000 + 1000) * 100 if _h("arrears" + key) % 10 == 0 else 0

    def base_of(self, key: str) -> int:
        return (_h("base" + key) % 20000 + 4000) * 100

    def pay(self, key: str, month: str, *, insutype: str = "310", status: str = "1",
            paid_amount: int | None = None) -> None:
        """Record a contribution of ``key`` (a person or unit) for ``month`` (yyyyMM)."""
        self.payments.setdefault(key, []).append({
            "period_start": month, "insutype": insutype, "status": status,
            "paid_amount": self.base_of(key) // 10 if paid_amount is None else paid_amount})

    def payments_of(self, f: Mapping[str, Any]) -> list[dict[str, Any]]:
        """QueryPaymentInfo: the records of the person (or unit) in the months asked."""
        start, end = str(f["period_start"]), str(f["period_end"])
        id_number, uscc = f.get("id_number"), f.get("unit_credit_code")
        key = str(id_number or uscc or "")
        base = {"unit_credit_code": uscc, "id_number": id_number}
        if key in self.payments:
            return [base | r for r in self.payments[key] if start <= r["period_start"] <= end]
        if id_number:  # a person pays 职工医保 through an active employment at tax
            person = self.persons.get(("employee", str(id_number)))
            if person is None or person["status"] != "active":
                return []
            base["unit_credit_code"] = uscc or person.get("shxydm")
        return [base | {"period_start": m, "insutype": "310", "status": "1",
                        "paid_amount": self.base_of(key) // 10} for m in months_between(start, end)]

    # ------------------------------------------------------------ submits

    def decide(self, op: str, f: Mapping[str, Any], today: date | None = None) -> Decision:
        """Accept or refuse one new request; accepted requests change the book."""
        today = today or today_beijing()
        rule = getattr(self, f"_{op}", None)
        decision: Decision = rule(f, today) if rule else _OK
        if decision.ok:
            self.records[f"{op}:{f.get('shxydm', '')}:{f.get('zjhm', '')}"] = dict(f)
        return decision

    def _unit(self, f: Mapping[str, Any]) -> dict[str, str] | None:
        return self.units.get(str(f.get("shxydm", "")))

    def _known_unit(self, f: Mapping[str, Any]) -> Decision:
        if self._unit(f) is None:
            return Decision("TX102", f"单位 {f.get('shxydm')} 未在税务机关登记")
        return _OK

    def _UnitEnroll(self, f: Mapping[str, Any], today: date) -> Decision:
        if f["sbjbjgdm"] not in NANJING_DIVISIONS:
            return Decision("TX101", f"社保经办机构代码 {f['sbjbjgdm']} 不是南京市区划")
        unit = self._unit(f)
        if unit is not None and unit["status"] == "active":
            return Decision("TX103", "单位已参保登记")
        self.units[f["shxydm"]] = {"status": "active", "dwmc": f["dwmc"],
                                   "sbjbjgdm": f["sbjbjgdm"], "ksjfny": f["ksjfny"]}
        return _OK

    def _UnitUpdate(self, f: Mapping[str, Any], today: date) -> Decision:
        if not (d := self._known_unit(f)).ok:
            return d
        self.units[f["shxydm"]]["dwmc"] = f["dwmc"]
        return _OK

    def _UnitPayStatusChange(self, f: Mapping[str, Any], today: date) -> Decision:
        if not (d := self._known_unit(f)).ok:
            return d
        unit = self.units[f["shxydm"]]
        want = "stopped" if f["jfztbg"] == "1" else "active"
        if unit["status"] == want:
            return Decision("TX104", f"单位缴费状态已是{'停保' if want == 'stopped' else '正常'}")
        unit["status"] = want
        return _OK

    def _UnitTransfer(self, f: Mapping[str, Any], today: date) -> Decision:
        if not (d := self._known_unit(f)).ok:
            return d
        if f["shxydm"] == f["zrdwshxydm"]:
            return Decision("TX107", "转入单位与转出单位相同")
        return _OK

    def _UnitCancel(self, f: Mapping[str, Any], today: date) -> Decision:
        if not (d := self._known_unit(f)).ok:
            return d
        if self.arrears_of(f["shxydm"]):
            return Decision("TX106", f"单位存在欠费 {self.arrears_of(f['shxydm'])} 分，不能注销")
        self.units[f["shxydm"]]["status"] = "cancelled"
        return _OK

    def _UnitBackPayAssess(self, f: Mapping[str, Any], today: date) -> Decision:
        return self._known_unit(f)

    _UnitArrearsWriteOff = _UnitArrearsPay = _UnitSettlementAdjust = _UnitBackPayAssess

    def _EmployeeEnroll(self, f: Mapping[str, Any], today: date) -> Decision:
        if f["sbjbjgdm"] not in NANJING_DIVISIONS:
            return Decision("TX101", f"社保经办机构代码 {f['sbjbjgdm']} 不是南京市区划")
        self.units.setdefault(f["shxydm"], {"status": "active", "dwmc": f["dwmc"],
                                            "sbjbjgdm": f["sbjbjgdm"], "ksjfny": f["ksjfny"]})
        self.persons[("employee", f["zjhm"])] = {"status": "active", "shxydm": f["shxydm"]}
        return _OK

    def _EmployeeStop(self, f: Mapping[str, Any], today: date) -> Decision:
        self.persons[("employee", f["zjhm"])] = {"status": "stopped", "shxydm": f["shxydm"]}
        return _OK

    def _EmployeeRetire(self, f: Mapping[str, Any], today: date) -> Decision:
        if owed := self.arrears_of(f["zjhm"]):
            return Decision("TX203", f"存在欠费 {owed} 分，不能办理在职转退休")
        self.persons[("employee", f["zjhm"])] = {"status": "retired", "shxydm": f["shxydm"]}
        return _OK

    def _community(self, f: Mapping[str, Any]) -> Decision:
        community = f.get("jcybqh")
        if community is not None and community not in KNOWN_COMMUNITIES:
            return Decision("TX301", f"基层医保区划 {community} 税务不认可")
        return _OK

    def _enroll(self, scheme: str, f: Mapping[str, Any], code: str, text: str) -> Decision:
        if not (d := self._community(f)).ok:
            return d
        current = self.persons.get((scheme, f["zjhm"]))
        if current is not None and current["status"] == "active" and \
                current.get("cbnd", "") == f.get("cbnd", ""):
            return Decision(code, text)
        self.persons[(scheme, f["zjhm"])] = {"status": "active", "jcybqh": f.get("jcybqh", ""),
                                             "xm": f.get("xm", ""), "cbnd": f.get("cbnd", ""),
                                             "ksjfny": f.get("ksjfny", "")}
        return _OK

    def _change(self, scheme: str, f: Mapping[str, Any], status: str | None,
                code: str) -> Decision:
        if not (d := self._community(f)).ok:
            return d
        current = self.persons.get((scheme, f["zjhm"]))
        if current is None or current["status"] != "active":
            return Decision(code, "该人员在税务无有效参保记录")
        if status:
            current["status"] = status
        if f.get("jcybqh"):
            current["jcybqh"] = f["jcybqh"]
        return _OK

    def _FlexibleEnroll(self, f: Mapping[str, Any], today: date) -> Decision:
        return self._enroll("flexible", f, "TX302", "该人员已灵活就业参保")

    def _FlexibleUpdate(self, f: Mapping[str, Any], today: date) -> Decision:
        return self._change("flexible", f, None, "TX303")

    def _FlexibleSuspend(self, f: Mapping[str, Any], today: date) -> Decision:
        return self._change("flexible", f, "suspended", "TX303")

    def is_unique(self, zjhm: str) -> bool:
        return zjhm[-5:-1] != NON_UNIQUE_SUFFIX and zjhm not in self.not_unique

    def _FlexibleIdentityConfirm(self, f: Mapping[str, Any], today: date) -> Decision:
        if f["zjhm"] in self.confirm_refusals:
            return Decision("TX403", self.confirm_refusals[f["zjhm"]] or "身份确认未通过")
        self.confirmed[f["zjhm"]] = f["sfqrh"]
        return _OK

    def _FlexibleTerminate(self, f: Mapping[str, Any], today: date) -> Decision:
        if not self.is_unique(f["zjhm"]) and (
                not f.get("sfqrh") or self.confirmed.get(f["zjhm"]) != f.get("sfqrh")):
            return Decision("TX402", "身份信息不唯一，请先完成身份确认(FlexibleIdentityConfirm)")
        return self._change("flexible", f, "terminated", "TX303")

    def _ResidentEnroll(self, f: Mapping[str, Any], today: date) -> Decision:
        return self._enroll("resident", f, "TX502", f"该居民 {f.get('cbnd')} 年度已参保")

    def _NewbornEnroll(self, f: Mapping[str, Any], today: date) -> Decision:
        born = date.fromisoformat(f["csrq"])
        if (today - born).days > 730:
            return Decision("TX503", f"出生日期 {born} 已超过两年，不能按新生儿参保")
        if f.get("cbrq") != f["csrq"]:
            return Decision("TX505", f"新生儿参保日期 {f.get('cbrq')} 应为出生日期 {born}")
        mother, order = str(f["mqzjhm"]), f.get("tc")
        live = [k for k, v in self.prenewborns.items()
                if k[0] == mother and v.get("status", "1") == "1"
                and (order is None or k[1] == str(order))]
        if live:
            return Decision("TX507", f"母亲名下准新生儿(胎次 {live[0][1]})尚未停保，"
                                     "请先办理准新生儿转新生儿")
        return self._ResidentEnroll(f, today)

    def _PreNewbornStop(self, f: Mapping[str, Any], today: date) -> Decision:
        key = (str(f["mqzjhm"]), str(f["tc"]))
        pre = self.prenewborns.get(key)
        if pre is None or pre.get("status", "1") != "1":
            return Decision("TX506", f"无在保的准新生儿参保记录(胎次 {key[1]})")
        pre["status"] = "2"
        return _OK

    def _PreNewbornEnroll(self, f: Mapping[str, Any], today: date) -> Decision:
        if not (d := self._community(f)).ok:
            return d
        key = (str(f["mqzjhm"]), str(f["tc"]))
        self.prenewborns[key] = {"cbnd": str(f.get("cbnd", "")), "status": "1",
                                 "cbrq": str(f.get("cbrq", "")),
                                 "paid": self.prenewborn_paid.get(key, False)}
        return _OK

    def _ResidentUpdate(self, f: Mapping[str, Any], today: date) -> Decision:
        return self._change("resident", f, None, "TX504")

    def _ResidentSuspend(self, f: Mapping[str, Any], today: date) -> Decision:
        return self._change("resident", f, "suspended", "TX504")

    def _ResidentTerminate(self, f: Mapping[str, Any], today: date) -> Decision:
        return self._change("resident", f, "terminated", "TX504")

    def _PaymentBillCreate(self, f: Mapping[str, Any], today: date) -> Decision:
        if f["jfdjh"] in self.bills:
            return Decision("TX601", f"缴费单据号 {f['jfdjh']} 已存在")
        self.bills[f["jfdjh"]] = {"shxydm": f["shxydm"], "je": f["je"], "status": "open"}
        return _OK

    def _PaymentBillCancel(self, f: Mapping[str, Any], today: date) -> Decision:
        bill = self.bills.get(f["jfdjh"])
        if bill is None or bill["status"] != "open":
            return Decision("TX602", f"缴费单据 {f['jfdjh']} 不存在或已撤销")
        bill["status"] = "cancelled"
        return _OK

    _SpecialPaymentCancel = _PaymentBillCancel

    def _ResidentCollection(self, f: Mapping[str, Any], today: date) -> Decision:
        if not (d := self._community(f)).ok:
            return d
        if f["zjlsh"] in self.collections:
            return Decision("TX603", f"征集流水号 {f['zjlsh']} 已存在")
        self.collections[f["zjlsh"]] = {"zjhm": f["zjhm"], "je": f["je"], "status": "open"}
        return _OK

    def _CollectionCancel(self, f: Mapping[str, Any], today: date) -> Decision:
        c = self.collections.get(f["zjlsh"])
        if c is None or c["status"] != "open":
            return Decision("TX604", f"征集流水 {f['zjlsh']} 不存在或已撤销")
        c["status"] = "cancelled"
        return _OK

    def _RefundReviewFeedback(self, f: Mapping[str, Any], today: date) -> Decision:
        """退费复核核验: tax needs both the result and the time of 医保's review (seed 2244)."""
        if f.get("hyjg") not in ("1", "2"):
            return Decision("TX605", "缺少医保部门核验结果(hyjg)")
        try:
            at = datetime.fromisoformat(str(f.get("hysj") or ""))
        except ValueError:
            return Decision("TX606", "缺少医保部门核验时间(hysj)或格式不正确")
        if at.tzinfo is None:
            return Decision("TX606", "医保部门核验时间(hysj)须带时区(北京时间 +08:00)")
        return _OK

    # ------------------------------------------------------------ queries

    def package_of(self, key: str, month: str) -> str:
        """The 数据包编号 a person's arrival of ``month`` came in (deterministic)."""
        return f"SJB{month}{_h('pkg' + key) % 1000:03d}"

    def _flexible(self, op: str, f: Mapping[str, Any], today: date) -> list[dict[str, Any]]:
        """The 灵活就业 queries: derived from the person's record at tax, per month asked."""
        id_number = str(f["id_number"])
        p = self.persons.get(("flexible", id_number))
        if p is None:
            return []
        base, this_month = self.base_of(id_number), f"{today:%Y%m}"
        if op == "QueryFlexibleEnrollment":
            return [{"id_number": id_number, "name": p.get("xm"), "community": p.get("jcybqh"),
                     "start_month": p.get("ksjfny") or None, "contribution_base": base,
                     "status": {"active": "1", "suspended": "2"}.get(p["status"], "3")}]
        months = months_between(str(f["period_start"]), str(f["period_end"]))
        paid = [m for m in months if m < this_month]
        due = [m for m in months if m >= this_month]
        tail = id_number[-6:]
        match op:
            case "QueryFlexibleCollection":
                return [{"id_number": id_number, "collection_no": f"LH{tail}{m}",
                         "period_start": m, "amount": base // 10,
                         "status": "2" if m in paid else "1"} for m in months]
            case "QueryFlexibleSpecialPayment":
                return [{"id_number": id_number, "bill_no": f"TS{tail}{months[0]}",
                         "period_start": months[0], "insutype": "310", "amount": base // 10,
                         "status": "1"}] if months else []
            case "QueryFlexibleArrivals":
                return [{"id_number": id_number, "period_start": m, "insutype": t,
                         "paid_amount": amount, "arrival_date": f"{m[:4]}-{m[4:]}-15"}
                        for m in paid for t, amount in (("310", base // 10), ("330", 1_000))]
            case "QueryFlexibleInTransit":
                return [{"id_number": id_number, "bill_no": f"ZT{tail}{m}", "period_start": m,
                         "amount": base // 10, "status": "1"} for m in due]
            case "QueryFlexiblePaymentInfo":
                return [{"id_number": id_number, "period_start": m, "insutype": t,
                         "paid_amount": amount if m in paid else 0,
                         "status": "1" if m in paid else "2"}
                        for m in months for t, amount in (("310", base // 10), ("330", 1_000))]
            case "QueryFlexibleDeduction":
                return [{"id_number": id_number, "period_start": m, "insutype": "310",
                         "amount": base // 10, "deduct_date": f"{m[:4]}-{m[4:]}-15",
                         "status": "1"} for m in paid]
        return []

    def answer(self, op: str, f: Mapping[str, Any], today: date | None = None,
               ) -> list[dict[str, Any]]:
        """Records a query returns (canonical names); empty when tax has nothing."""
        today = today or today_beijing()
        month = f"{today:%Y%m}"
        key = str(f.get("id_number") or f.get("unit_credit_code") or "")
        match op:
            case "QueryCommunity":
                return [{"community": f["community"],
                         "valid": "1" if f["community"] in KNOWN_COMMUNITIES else "0"}]
            case "QueryContributionBase":
                return [{"id_number": f["id_number"],
                         "unit_credit_code": f.get("unit_credit_code"),
                         "contribution_base": self.base_of(key), "start_month": month}]
            case "QueryPersonArrears" | "QueryUnitArrears":
                owed = self.arrears_of(key)
                if not owed:
                    return []
                since = str(f.get("period_start") or f"{today.year}01")  # 开始期号 (unit)
                return [{**dict(f), "period_start": since, "period_end": max(since, month),
                         "arrears": owed, "arrears_months": max(1, owed // 100_000)}]
            case "QueryPersonArrivals" | "QueryUnitArrivals":
                if self.arrivals.get(key) == 0:
                    return []  # F10: tax has no 到账 of this payer
                record = {**{k: v for k, v in f.items() if k in ("id_number", "unit_credit_code")},
                          "period_start": f["period_start"],
                          "paid_amount": self.arrivals.get(key, self.base_of(key) // 10),
                          "arrival_date": today.replace(day=1).isoformat()}
                if op == "QueryUnitArrivals":
                    return [record]
                package = self.package_of(key, str(f["period_start"]))
                if f.get("package_no") not in (None, package):
                    return []  # 数据包编号 asked is not the one the arrival came in
                return [record | {"package_no": package}]
            case "QueryUnitEnrollment":
                unit = self.units.get(str(f["unit_credit_code"]))
                return [] if unit is None else [{
                    "unit_credit_code": f["unit_credit_code"], "unit_name": unit.get("dwmc"),
                    "admdvs": unit.get("sbjbjgdm"), "start_month": unit.get("ksjfny"),
                    "status": {"active": "1", "stopped": "2"}.get(unit["status"], "3")}]
            case _ if op.startswith("QueryFlexible"):
                return self._flexible(op, f, today)
            case "QueryPaymentInfo":
                return self.payments_of(f)
            case "QueryUnpaid":
                owed = self.arrears_of(key)
                return [{**dict(f), "period_start": month, "amount": owed}] if owed else []
            case "QueryResidentEnrollment":
                p = self.persons.get(("resident", f["id_number"]))
                return [] if p is None else [{
                    "id_number": f["id_number"], "name": p.get("xm"),
                    "community": p.get("jcybqh"), "insure_year": p.get("cbnd"),
                    "status": "1" if p["status"] == "active" else "2"}]
            case "QueryResidentPayment" | "QueryResidentDeduction":
                p = self.persons.get(("resident", f["id_number"]))
                if p is None:
                    return []
                rec = {"id_number": f["id_number"], "insure_year": f["insure_year"]}
                if op == "QueryResidentPayment":
                    return [{**rec, "paid_amount": 38_000, "arrival_date": today.isoformat()}]
                return [{**rec, "amount": 38_000, "status": "1"}]
            case "QueryPreNewborn":
                mother, order = str(f["mother_id_number"]), f.get("birth_order")
                return [{"mother_id_number": m, "birth_order": o, "insure_year": v["cbnd"],
                         "prenewborn_status": v.get("status", "1")}
                        for (m, o), v in sorted(self.prenewborns.items())
                        if m == mother and (order is None or o == str(order))]
            case "QueryPreNewbornPayment":
                child = (str(f["mother_id_number"]), str(f["birth_order"]))
                pre = self.prenewborns.get(child)
                if pre is None and child not in self.prenewborn_paid:
                    return []  # no 准新生儿 of this mother and birth order
                if pre and pre["cbnd"] and pre["cbnd"] != f["insure_year"]:
                    return []  # enrolled for another year
                paid = self.prenewborn_paid.get(child, bool(pre and pre["paid"]))
                return [{"mother_id_number": child[0], "birth_order": child[1],
                         "insure_year": f["insure_year"],
                         "paid_amount": PRENEWBORN_FEE if paid else 0,
                         "status": "1" if paid else "0"}]
            case "QuerySpecialPayment":
                bill = self.bills.get(f["bill_no"])
                return [] if bill is None else [{
                    "bill_no": f["bill_no"], "amount": bill["je"], "paid_amount": 0,
                    "status": "1" if bill["status"] == "open" else "2"}]
            case "QueryUnitSpecialPayment":
                return [{"unit_credit_code": f["unit_credit_code"], "bill_no": no,
                         "amount": b["je"], "status": "1" if b["status"] == "open" else "2"}
                        for no, b in self.bills.items() if b["shxydm"] == f["unit_credit_code"]]
        return []

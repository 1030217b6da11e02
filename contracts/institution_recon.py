"""F14 对账 with designated institutions (定点医药机构) and 单边帐: the pure part.

The national platform's reconciliation, per institution (``fixmedins_code``) and day
(``stmt_begndate`` = ``stmt_enddate``), in the national envelope (``contracts.national``):

    3201  totals (总额对账): medfee_sumamt, fund_pay_sumamt, acct_pay, cash_payamt,
          fixmedins_setl_cnt per clr_type/insutype; the answer is stmt_rslt 0 平 / 1 不平
    3202  detail (明细对账): the rows of the day in a file exchanged by
    9101  file upload (the bytes base64 in ``input.fsUploadIn.in``) -> ``file_qury_no``
    9102  file download by ``file_qury_no``
    2208  冲正 of one settlement at the institution (an institution-only 单边帐, by rule
          or by a caseworker; the national 2208 is 门诊结算撤销)
    H3203 补记 of a core-only settlement at the institution (hub-assigned number)
    H3205 移动支付 / 电子处方 settlement notice to the hub (hub-assigned number)

The detail file is a ZIP holding one UTF-8 text file ``<fixmedins_code>_<yyyyMMdd>.txt``,
tab-separated, no header, one settlement per line, columns ``DETAIL_COLUMNS`` (the
national platform ships its detail as zipped txt; the column order is the hub's,
documented in contracts/INSTITUTION_RECON.md). Money is Decimal, fen-exact; a float is
refused (binary floats cannot carry fen exactly), as is a total that does not add up.

This reconciliation is not ``contracts.reconcile`` (tax vs core 比对 of contributions).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from contracts.envelope import HubMessage, entity_key, idempotency_key
from contracts.errors import ValidationFailed

__all__ = [
    "AMOUNT_DIFFERS", "CHANNELS", "DETAIL_COLUMNS", "GATEWAY", "INFNO_COMPLETE",
    "INFNO_DETAIL", "INFNO_DOWNLOAD", "INFNO_NOTICE", "INFNO_REVERSE", "INFNO_TOTALS",
    "INFNO_UPLOAD", "INSTITUTION_PREFIX", "LEDGER", "MOBILE", "RESOLVE_COMPLETE",
    "RESOLVE_REVERSE", "RESOLVE_TYPES", "SCOPES", "DayTotals", "DetailRow", "Diagnosis",
    "Finding", "ResolveAction", "SettlementNotice", "case_id", "case_kind", "check_detail",
    "compare_totals", "diagnose", "money", "partner_of", "read_detail_file",
    "resolve_message", "rule_action", "scope_of", "totals_of", "write_detail_file",
]

INFNO_TOTALS: Final = "3201"
INFNO_DETAIL: Final = "3202"
INFNO_UPLOAD: Final = "9101"
INFNO_DOWNLOAD: Final = "9102"
INFNO_REVERSE: Final = "2208"
INFNO_COMPLETE: Final = "H3203"
INFNO_NOTICE: Final = "H3205"

GATEWAY: Final = "institutions"
"""The partner of the hub's calls to the institutions' HIS (secret, retry policy, breaker)."""
INSTITUTION_PREFIX: Final = "inst_"
"""``partners.inst_<fixmedins_code lower>``: one institution, the key it signs its calls with."""
LEDGER: Final = "core_ledger"
"""The core's settlement ledger (结算库), asked for its own 3201 totals and 3202 detail."""
MOBILE: Final = "mobile_payment"
"""The 移动支付 platform, which sends settlement notices (H3205)."""

RESOLVE_REVERSE: Final = "recon.resolve.reverse"
RESOLVE_COMPLETE: Final = "recon.resolve.complete"
RESOLVE_TYPES: Final = (RESOLVE_REVERSE, RESOLVE_COMPLETE)

CHANNELS: Final[dict[str, str]] = {"0": "HIS 窗口", "1": "移动支付", "2": "电子处方"}
"""``chnl_type`` of a settlement: how it was paid (the notices carry 1 and 2)."""
SCOPES: Final = ("local", "provincial", "national")
"""本地 (Nanjing 3201xx), 异地 in-province (32xxxx), 跨省 (any other province)."""

DETAIL_COLUMNS: Final = ("setl_id", "mdtrt_id", "psn_no", "medfee_sumamt", "fund_pay_sumamt",
                         "acct_pay", "cash_payamt", "refd_setl_flag", "insuplc_admdvs",
                         "chnl_type", "setl_time")
MONEY_FIELDS: Final = ("medfee_sumamt", "fund_pay_sumamt", "acct_pay", "cash_payamt")
_FEN: Final = Decimal("0.01")
CODE_PATTERN: Final = r"^[HPY][0-9]{11}$"
"""定点医药机构编码: H hospital / P pharmacy (Y accepted), 6-digit division + 5 digits."""
DATE_FORMAT: Final = "%Y-%m-%d"
SETL_TIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"


def money(v: object, name: str = "amount") -> Decimal:
    """A fen-exact Decimal from a string, int or Decimal; floats and 3+ decimals refused."""
    if isinstance(v, bool | float):
        raise ValueError(f"{name} must be a decimal string (fen-exact), not a "
                         f"{type(v).__name__}")
    if not isinstance(v, str | int | Decimal):
        raise ValueError(f"{name} must be a decimal string, got {type(v).__name__}")
    try:
        d = Decimal(str(v).strip())
    except InvalidOperation:
        raise ValueError(f"{name} is not a number: {str(v)[:20]!r}") from None
    if not d.is_finite():
        raise ValueError(f"{name} must be finite")
    if d != d.quantize(_FEN):
        raise ValueError(f"{name} has more than 2 decimals (fen): {d}")
    return d.quantize(_FEN)


def _money_field(v: object) -> Decimal:
    return money(v)


def partner_of(code: str) -> str:
    """The partner name an institution signs as: ``inst_`` + its code in lower case."""
    return f"{INSTITUTION_PREFIX}{code.lower()}"


def scope_of(insuplc_admdvs: str) -> str:
    """本地 / 异地 (in-province) / 跨省, from the insured person's 参保地 division."""
    if insuplc_admdvs.startswith("3201"):
        return "local"
    if insuplc_admdvs.startswith("32"):
        return "provincial"
    return "national"


class DayTotals(BaseModel):
    """3201 input ``data`` (and the totals either side answers): one institution, one day."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    fixmedins_code: str = Field(pattern=CODE_PATTERN, description="定点医药机构编码")
    stmt_begndate: date = Field(description="对账开始日期 yyyy-MM-dd")
    stmt_enddate: date = Field(description="对账结束日期 yyyy-MM-dd (the same day)")
    clr_type: str = Field(default="11", pattern=r"^[0-9]{2,6}$", description="清算类别")
    insutype: str = Field(default="310", pattern=r"^[0-9]{3}$", description="险种类型")
    medfee_sumamt: Decimal = Field(description="医疗费总额")
    fund_pay_sumamt: Decimal = Field(description="基金支付总额")
    acct_pay: Decimal = Field(description="个人账户支付金额")
    cash_payamt: Decimal = Field(description="现金支付金额")
    fixmedins_setl_cnt: int = Field(ge=0, le=10_000_000, description="定点医药机构结算笔数")

    _money = field_validator(*MONEY_FIELDS, mode="before")(
        classmethod(lambda cls, v: _money_field(v)))

    @field_validator("fixmedins_setl_cnt", mode="before")
    @classmethod
    def _count(cls, v: object) -> object:
        if isinstance(v, bool | float):
            raise ValueError("must be a whole number")
        return int(v) if isinstance(v, str) and v.isdigit() else v

    @model_validator(mode="after")
    def _adds_up(self) -> DayTotals:
        if self.stmt_begndate != self.stmt_enddate:
            raise ValueError("stmt_enddate: reconciliation is per day: stmt_enddate must "
                             "equal stmt_begndate")
        paid = self.fund_pay_sumamt + self.acct_pay + self.cash_payamt
        if paid != self.medfee_sumamt:
            raise ValueError(f"medfee_sumamt: {self.medfee_sumamt} != fund_pay_sumamt + "
                             f"acct_pay + cash_payamt = {paid}")
        if self.fixmedins_setl_cnt == 0 and self.medfee_sumamt != 0:
            raise ValueError("fixmedins_setl_cnt: 0 settlements cannot carry a medfee_sumamt")
        return self

    @property
    def day(self) -> date:
        return self.stmt_begndate

    def wire(self) -> dict[str, Any]:
        """The national ``data`` object: dates yyyy-MM-dd, money as strings."""
        return {"fixmedins_code": self.fixmedins_code,
                "stmt_begndate": self.stmt_begndate.isoformat(),
                "stmt_enddate": self.stmt_enddate.isoformat(), "clr_type": self.clr_type,
                "insutype": self.insutype,
                **{k: str(getattr(self, k)) for k in MONEY_FIELDS},
                "fixmedins_setl_cnt": self.fixmedins_setl_cnt}

    @classmethod
    def parse(cls, data: object, *, prefix: str = "data.") -> DayTotals:
        """``data`` checked; ``ValidationFailed`` naming each field and reason."""
        if not isinstance(data, Mapping):
            raise ValidationFailed([(prefix.rstrip(".") or "data", "must be an object")])
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise ValidationFailed(_named(exc, prefix)) from None


def _named(exc: ValidationError, prefix: str) -> list[tuple[str, str]]:
    """pydantic errors as (field, reason); a model-level ``"name: reason"`` names its field."""
    out: list[tuple[str, str]] = []
    for e in exc.errors():
        reason = str(e["msg"]).removeprefix("Value error, ")
        loc = ".".join(str(p) for p in e["loc"])
        if not loc:
            head, _, rest = reason.partition(": ")
            if rest and head.replace("_", "").isalnum():
                loc, reason = head, rest
        out.append((prefix + loc if loc else prefix.rstrip("."), reason))
    return out


class DetailRow(BaseModel):
    """One settlement of the 3202 detail (a line of the detail file)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    setl_id: str = Field(pattern=r"^[0-9A-Za-z]{1,30}$", description="结算ID")
    mdtrt_id: str = Field(pattern=r"^[0-9A-Za-z]{1,30}$", description="就诊ID")
    psn_no: str = Field(pattern=r"^[0-9A-Za-z]{1,30}$", description="人员编号")
    medfee_sumamt: Decimal
    fund_pay_sumamt: Decimal
    acct_pay: Decimal
    cash_payamt: Decimal
    refd_setl_flag: Literal["0", "1"] = Field(default="0", description="退费结算标志")
    insuplc_admdvs: str = Field(default="320100", pattern=r"^[0-9]{6}$", description="参保地")
    chnl_type: Literal["0", "1", "2"] = Field(default="0", description="0 HIS 1 移动支付 "
                                              "2 电子处方")
    setl_time: str = Field(default="", description="结算时间 yyyy-MM-dd HH:mm:ss")

    _money = field_validator(*MONEY_FIELDS, mode="before")(
        classmethod(lambda cls, v: _money_field(v)))

    @field_validator("setl_time")
    @classmethod
    def _time(cls, v: str) -> str:
        if v:
            datetime.strptime(v, SETL_TIME_FORMAT)
        return v

    @model_validator(mode="after")
    def _adds_up(self) -> DetailRow:
        paid = self.fund_pay_sumamt + self.acct_pay + self.cash_payamt
        if paid != self.medfee_sumamt:
            raise ValueError(f"medfee_sumamt: {self.medfee_sumamt} != fund_pay_sumamt + "
                             f"acct_pay + cash_payamt = {paid}")
        if self.medfee_sumamt < 0 and self.refd_setl_flag != "1":
            raise ValueError("medfee_sumamt: a negative amount needs refd_setl_flag 1 (退费)")
        return self

    @property
    def scope(self) -> str:
        return scope_of(self.insuplc_admdvs)

    def wire(self) -> dict[str, str]:
        return {k: str(getattr(self, k)) for k in DETAIL_COLUMNS}


def write_detail_file(code: str, day: date, rows: Iterable[DetailRow]) -> tuple[str, bytes]:
    """(file name, ZIP bytes) of a detail file: one tab-separated UTF-8 txt inside."""
    name = f"{code}_{day:%Y%m%d}"
    text = "".join("\t".join(r.wire()[c] for c in DETAIL_COLUMNS) + "\n" for r in rows)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{name}.txt", text.encode("utf-8"))
    return f"{name}.zip", buf.getvalue()


MAX_FILE_BYTES: Final = 20 * 1024 * 1024


def read_detail_file(raw: bytes) -> list[DetailRow]:
    """The rows of a detail file; ``ValidationFailed`` with ``line N.field`` on any bad line
    (nothing half-read: one bad line refuses the file)."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            names = [n for n in z.namelist() if n.endswith(".txt")]
            if len(names) != 1:
                raise ValidationFailed([("file", f"must hold exactly one .txt, holds "
                                                 f"{len(names)}")])
            info = z.getinfo(names[0])
            if info.file_size > MAX_FILE_BYTES:
                raise ValidationFailed([("file", f"{info.file_size} bytes unpacked is over "
                                                 f"{MAX_FILE_BYTES}")])
            text = z.read(names[0]).decode("utf-8")
    except (zipfile.BadZipFile, UnicodeDecodeError, KeyError) as exc:
        raise ValidationFailed([("file", f"not a zipped UTF-8 detail file: {exc}")]) from None
    rows: list[DetailRow] = []
    errors: list[tuple[str, str]] = []
    seen: set[str] = set()
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) != len(DETAIL_COLUMNS):
            errors.append((f"line {n}", f"{len(cells)} columns, expected "
                                        f"{len(DETAIL_COLUMNS)}"))
            continue
        try:
            row = DetailRow.model_validate(dict(zip(DETAIL_COLUMNS, cells, strict=True)))
        except ValidationError as exc:
            errors.extend(_named(exc, f"line {n}."))
            continue
        if row.setl_id in seen:
            errors.append((f"line {n}.setl_id", f"{row.setl_id} appears twice"))
        seen.add(row.setl_id)
        rows.append(row)
    if errors:
        raise ValidationFailed(errors[:50])
    return rows


def decode_file(b64: object, field_name: str = "input.fsUploadIn.in") -> bytes:
    """9101's file content: base64 text (the platform's clients send a byte array or
    base64; the hub takes base64)."""
    if not isinstance(b64, str) or not b64:
        raise ValidationFailed([(field_name, "the file as base64 text is required")])
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed([(field_name, "not valid base64")]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ValidationFailed([(field_name, f"{len(raw)} bytes is over {MAX_FILE_BYTES}")])
    return raw


def totals_of(code: str, day: date, rows: Sequence[DetailRow], *, clr_type: str = "11",
              insutype: str = "310") -> DayTotals:
    """The 3201 totals a set of rows adds up to."""
    sums = {k: sum((getattr(r, k) for r in rows), Decimal("0.00")) for k in MONEY_FIELDS}
    return DayTotals(fixmedins_code=code, stmt_begndate=day, stmt_enddate=day,
                     clr_type=clr_type, insutype=insutype, fixmedins_setl_cnt=len(rows), **sums)


def check_detail(totals: DayTotals, rows: Sequence[DetailRow]) -> list[tuple[str, str]]:
    """(field, reason) where the detail does not add up to the totals it came with."""
    got = totals_of(totals.fixmedins_code, totals.day, rows)
    return [(f"data.{k}", f"the detail file adds up to {getattr(got, k)}, the request says "
                          f"{getattr(totals, k)}")
            for k in (*MONEY_FIELDS, "fixmedins_setl_cnt")
            if getattr(got, k) != getattr(totals, k)]


def compare_totals(institution: DayTotals, core: DayTotals) -> dict[str, list[str]]:
    """Fields whose totals differ: name -> [institution's, core's]; empty is 平."""
    return {k: [str(getattr(institution, k)), str(getattr(core, k))]
            for k in (*MONEY_FIELDS, "fixmedins_setl_cnt")
            if getattr(institution, k) != getattr(core, k)}


FindingKind = Literal["institution_only", "core_only", "differs"]
AMOUNT_DIFFERS: Final = "amount_differs"
"""A held case of a settlement both sides have with different money (same setl_id)."""
CaseKind = Literal["institution_only", "core_only", "amount_differs"]


@dataclass(frozen=True)
class Finding:
    """One transaction that makes the day 不平: on one side only, or different in fields."""

    setl_id: str
    kind: FindingKind
    scope: str
    chnl_type: str
    fields: dict[str, list[str]] = field(default_factory=dict)
    """For ``differs``: name -> [institution's, core's]."""
    row: dict[str, str] = field(default_factory=dict)
    """The row of the side that has it (the institution's for ``differs``)."""
    core_row: dict[str, str] = field(default_factory=dict)
    """For ``differs``: the core's row (what a caseworker's correction aligns the HIS to)."""

    def as_dict(self) -> dict[str, Any]:
        return {"setl_id": self.setl_id, "kind": self.kind, "scope": self.scope,
                "chnl_type": self.chnl_type, "fields": self.fields, "row": self.row}


@dataclass(frozen=True)
class Diagnosis:
    """The transactions behind a 不平 day (73), in setl_id order."""

    findings: tuple[Finding, ...]
    matched: int

    @property
    def one_sided(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.kind != "differs")

    def as_dict(self) -> dict[str, Any]:
        return {"matched": self.matched, "findings": [f.as_dict() for f in self.findings]}


_COMPARED: Final = ("mdtrt_id", "psn_no", *MONEY_FIELDS, "refd_setl_flag")


def diagnose(institution: Sequence[DetailRow], core: Sequence[DetailRow]) -> Diagnosis:
    """Down to the transaction: each setl_id only one side has, each field that differs."""
    mine = {r.setl_id: r for r in institution}
    theirs = {r.setl_id: r for r in core}
    out: list[Finding] = []
    matched = 0
    for sid in sorted(mine.keys() | theirs.keys()):
        a, b = mine.get(sid), theirs.get(sid)
        if a is not None and b is not None:
            diff = {k: [str(getattr(a, k)), str(getattr(b, k))] for k in _COMPARED
                    if getattr(a, k) != getattr(b, k)}
            if diff:
                out.append(Finding(sid, "differs", a.scope, a.chnl_type, diff, a.wire(),
                                   b.wire()))
            else:
                matched += 1
        elif a is not None:
            out.append(Finding(sid, "institution_only", a.scope, a.chnl_type, row=a.wire()))
        elif b is not None:
            out.append(Finding(sid, "core_only", b.scope, b.chnl_type, row=b.wire()))
    return Diagnosis(tuple(out), matched)


def case_kind(f: Finding) -> CaseKind | None:
    """The held case a finding becomes: each one-sided settlement, and a settlement whose
    money differs (``amount_differs``); a difference in other fields only (mdtrt_id,
    psn_no, refd_setl_flag) stays in the diagnosis, as no resolution here could fix it."""
    if f.kind != "differs":
        return f.kind
    return AMOUNT_DIFFERS if any(k in MONEY_FIELDS for k in f.fields) else None


RuleAction = Literal["reverse", "complete", "wait", "caseworker"]


def rule_action(kind: str, scope: str, setl_time: str, now: datetime,
                hold_minutes: int) -> RuleAction:
    """What the rule does with a 单边帐 (75, 159):

    - 跨省 (national) and field differences (``amount_differs``): a caseworker decides
      (the 跨省 half lives at the national platform; which amount is right is a judgement);
    - institution-only: the core has no record ``hold_minutes`` after the settlement, so
      the institution's half is reversed (冲正 2208); younger ones wait (core may still
      be writing it; the next reconciliation sees it);
    - core-only: the fund paid, the institution's HIS lost it: 补记 at the institution.
    """
    if kind in ("differs", AMOUNT_DIFFERS) or scope == "national":
        return "caseworker"
    if kind == "core_only":
        return "complete"
    try:
        at = datetime.strptime(setl_time, SETL_TIME_FORMAT)
    except ValueError:
        return "caseworker"
    age_min = (now.replace(tzinfo=None) - at).total_seconds() / 60
    return "reverse" if age_min >= hold_minutes else "wait"


def case_id(code: str, day: date, setl_id: str) -> str:
    """The one 单边帐 case of a settlement on a day at an institution."""
    return hashlib.sha256(f"one-sided:{code}:{day}:{setl_id}".encode()).hexdigest()[:32]


ResolveAction = Literal["reverse", "complete", "correct"]
"""reverse: 2208 冲正 of an institution-only settlement; complete: H3203 补记 of a core-only
one; correct: H3203 of the core's row over the HIS's copy of an ``amount_differs`` one
(the same message type as complete: the same operation at the HIS)."""


def resolve_message(case: Mapping[str, Any], action: ResolveAction) -> HubMessage:
    """The resolution of a held case for the ``institution.resolve`` lane: one per case and
    action (resolving twice is the same message: one effect at the institution)."""
    type_ = RESOLVE_REVERSE if action == "reverse" else RESOLVE_COMPLETE
    payload = {"case_id": case["id"], "fixmedins_code": case["fixmedins_code"],
               "stmt_date": case["stmt_date"], "setl_id": case["setl_id"],
               "action": action, "row": case["row"]}
    key = f"{case['id']}:{action}"
    return HubMessage(type=type_, source="hub", target=GATEWAY, correlation_id=case["id"],
                      idempotency_key=idempotency_key(type_, key, {"case": key}),
                      entity_key=entity_key("recon_case", str(case["id"])), payload=payload)


class SettlementNotice(BaseModel):
    """H3205: a 移动支付 / 电子处方 settlement notice; it becomes a transaction row at the hub."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    fixmedins_code: str = Field(pattern=CODE_PATTERN)
    setl_date: date
    row: DetailRow

    @field_validator("row")
    @classmethod
    def _channel(cls, v: DetailRow) -> DetailRow:
        if v.chnl_type == "0":
            raise ValueError("chnl_type must be 1 (移动支付) or 2 (电子处方) in a notice")
        return v

    @classmethod
    def parse(cls, data: object) -> SettlementNotice:
        if not isinstance(data, Mapping):
            raise ValidationFailed([("input.data", "must be an object")])
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise ValidationFailed(_named(exc, "data.")) from None

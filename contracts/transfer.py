"""F9 转移接续: the national transfer platform's applications and the hub's messages about them.

Seed ``003`` lines 1834-1847 (转出申请, 基本医疗保险转出(线下)), 2526-2527 (我的南京 转出),
2571/2676/2761 (未联网地区: 参保凭证); readings in ``contracts/TRANSFER.md``.

Three ways in share one canonical application (``TransferApplication``) and one lane
(``transfer.intake``):

    platform     pulled from the 国家医保信息平台 in the national envelope (``T2401``)
    window       a caseworker's entry at the 经办机构 window (offline application, 1839)
    my_nanjing   我的南京's ``transfer_out`` channel application (F1), handed over by the
                 channel intake (``intake_message`` from ``from_channel``)

The platform's wire names (``aply_no``, ``certno``, ``out_admdvs``...) are national-style
abbreviations the hub defines (the platform's 转移接续 interface is not public; the
layout is documented and versioned in TRANSFER.md). ``check_application`` refuses a bad
application naming the field and the reason (``Refusal``); nothing is stored then.

Only stdlib, pydantic and other contracts: this is the ground floor.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from contracts.employee import check_name
from contracts.envelope import HubMessage, entity_key, idempotency_key
from contracts.ids import NANJING_DIVISIONS, division_name, is_valid_credit_code, validate_id_number

__all__ = [
    "CORE_STATUS",
    "DIRECTIONS",
    "FINAL_STATUSES",
    "INFNO_PULL",
    "INFNO_STATUS",
    "INSUTYPES",
    "INTAKE",
    "MAX_PAGE",
    "NANJING",
    "PARTNER",
    "PLATFORM_STATUS",
    "SOURCES",
    "STATUS_CODES",
    "STATUS_LABELS",
    "Direction",
    "InsurancePeriod",
    "PullPage",
    "Refusal",
    "Source",
    "TransferApplication",
    "certificate_lines",
    "check_application",
    "check_application_no",
    "core_input",
    "core_status_message",
    "from_channel",
    "from_wire",
    "intake_message",
    "is_nanjing",
    "parse_pull_output",
    "platform_status_message",
    "pull_input",
    "status_input",
    "status_payload",
    "to_wire",
]

PARTNER: Final = "transfer"
"""The national transfer platform's partner name (``partners.transfer``)."""
INFNO_PULL: Final = "T2401"
"""转移接续申请下载: a page of applications to and from Nanjing after a cursor."""
INFNO_STATUS: Final = "T2402"
"""转移接续办理状态上传: one application's status (result) back to the platform."""
NANJING: Final = "320100"
MAX_PAGE: Final = 200
"""Applications in one pull page (the hub asks for ``settings.transfer.page_size``)."""

Direction = Literal["out", "in"]
DIRECTIONS: Final[dict[str, str]] = {"out": "转出", "in": "转入"}
Source = Literal["platform", "window", "my_nanjing"]
SOURCES: Final[dict[str, str]] = {"platform": "国家医保信息平台", "window": "窗口(线下)",
                                  "my_nanjing": "我的南京"}
INSUTYPES: Final[dict[str, str]] = {"310": "职工基本医疗保险", "390": "城乡居民基本医疗保险"}
"""The 险种 a basic medical-insurance relation transfers (conventions.md code table)."""

STATUS_LABELS: Final[dict[str, str]] = {
    "received": "已接收",
    "refused": "申请信息有误",
    "out_failed": "转出失败",
    "out_approved": "转出审核通过",
    "offline_issued": "线下转出, 参保凭证已出具",
    "in_accepted": "转入受理",
    "failed": "办理失败(系统)",
}
"""The hub's statuses of a transfer (``storage.transfer``)."""
FINAL_STATUSES: Final = frozenset(STATUS_LABELS) - {"received"}
STATUS_CODES: Final[dict[str, str]] = {
    "out_approved": "11", "out_failed": "12", "offline_issued": "13", "in_accepted": "21",
    "refused": "91", "failed": "92",
}
"""``stas`` on the wire (platform T2402, core H4201)."""

_APPLICATION_NO = re.compile(r"^[A-Za-z0-9_-]{6,40}$")
_MONTH = re.compile(r"^(19|20)\d{2}(0[1-9]|1[0-2])$")
_DIVISION = re.compile(r"^\d{6}$")
_FIELD = re.compile(r"^[a-z_]+$")
_PHONE = re.compile(r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$")


def is_nanjing(division: str) -> bool:
    return division.startswith("3201")


def check_application_no(value: object) -> str | None:
    """Why ``value`` is not an application number (6-40 of ``A-Za-z0-9_-``), or None."""
    if not isinstance(value, str) or not _APPLICATION_NO.match(value):
        return "must be 6-40 letters, digits, _ or -"
    return None


def _division(v: object) -> str:
    text = str(v or "").strip()
    if not _DIVISION.match(text):
        raise ValueError("must be a 6-digit division code")
    if division_name(text) is None and text not in NANJING_DIVISIONS:
        raise ValueError(f"unknown division code {text} (GB/T 2260)")
    return text


class InsurancePeriod(BaseModel):
    """One 参保缴费期间 of the person at the 转出地 (the 参保凭证 lists them)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    begin_month: str = Field(description="起始年月 yyyyMM")
    end_month: str = Field(description="终止年月 yyyyMM")
    insutype: str = Field(default="310", description="险种 (INSUTYPES)")
    unit_name: str = Field(default="", max_length=100, description="参保单位")

    @field_validator("begin_month", "end_month")
    @classmethod
    def _month(cls, v: str) -> str:
        if not _MONTH.match(v):
            raise ValueError("must be yyyyMM")
        return v

    @field_validator("insutype")
    @classmethod
    def _insutype(cls, v: str) -> str:
        if v not in INSUTYPES:
            raise ValueError(f"unknown 险种 {v!r}; one of {', '.join(INSUTYPES)}")
        return v

    @model_validator(mode="after")
    def _order(self) -> InsurancePeriod:
        if self.end_month < self.begin_month:
            raise ValueError(f"end_month: {self.end_month} is before begin_month "
                             f"{self.begin_month}")
        return self

    @property
    def months(self) -> int:
        b, e = int(self.begin_month), int(self.end_month)
        return (e // 100 - b // 100) * 12 + e % 100 - b % 100 + 1


class TransferApplication(BaseModel):
    """基本医疗保险关系转移申请, in the hub's names, whichever way it came in."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    application_no: str = Field(description="申请编号 (the platform's, or the hub's)")
    id_number: str = Field(description="证件号码 (居民身份证, GB 11643)")
    name: str = Field(description="姓名")
    insutype: str = Field(default="310", description="险种")
    source_division: str = Field(description="转出地 医保区划 (6 digits)")
    target_division: str = Field(description="转入地 医保区划 (6 digits)")
    unit_credit_code: str = Field(default="", description="参保单位 统一社会信用代码, if any")
    phone: str = Field(default="", description="联系电话")
    apply_date: date = Field(description="申请日期")
    stop_date: date | None = Field(default=None, description="转出(终止)日期; apply_date "
                                   "when absent")
    periods: tuple[InsurancePeriod, ...] = Field(default=(), max_length=120,
                                                 description="参保缴费期间")
    remark: str = Field(default="", max_length=200)

    @field_validator("application_no")
    @classmethod
    def _no(cls, v: str) -> str:
        reason = check_application_no(v)
        if reason:
            raise ValueError(reason)
        return v

    @field_validator("id_number", mode="before")
    @classmethod
    def _id(cls, v: object) -> str:
        text = str(v or "").strip().upper()
        reason = validate_id_number(text)
        if reason:
            raise ValueError(f"not a valid ID number: {reason}")
        return text

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)

    @field_validator("insutype")
    @classmethod
    def _insutype(cls, v: str) -> str:
        if v not in INSUTYPES:
            raise ValueError(f"unknown 险种 {v!r}; one of {', '.join(INSUTYPES)}")
        return v

    @field_validator("source_division", "target_division", mode="before")
    @classmethod
    def _divisions(cls, v: object) -> str:
        return _division(v)

    @field_validator("unit_credit_code")
    @classmethod
    def _uscc(cls, v: str) -> str:
        if v:
            reason = is_valid_credit_code(v)
            if reason:
                raise ValueError(f"not a valid 统一社会信用代码: {reason}")
        return v

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str) -> str:
        if v and not _PHONE.match(v.replace(" ", "")):
            raise ValueError("must be a mobile (11 digits, 13-19) or a landline")
        return v.replace(" ", "")

    @model_validator(mode="after")
    def _between(self) -> TransferApplication:
        out, into = is_nanjing(self.source_division), is_nanjing(self.target_division)
        if out and into:
            raise ValueError("target_division: a move within Nanjing is not a transfer")
        if not out and not into:
            raise ValueError("target_division: neither 转出地 nor 转入地 is Nanjing (3201xx)")
        if self.stop_date is not None and self.stop_date < self.apply_date.replace(
                year=self.apply_date.year - 1):
            raise ValueError("stop_date: more than a year before the application")
        return self

    @property
    def direction(self) -> Direction:
        """转出 when the relation leaves Nanjing, 转入 when it comes in."""
        return "out" if is_nanjing(self.source_division) else "in"

    @property
    def other_division(self) -> str:
        """The other side of the transfer (the 转入地 of a 转出, the 转出地 of a 转入)."""
        return self.target_division if self.direction == "out" else self.source_division

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


@dataclass(frozen=True)
class Refusal:
    """A refused application: the field and why."""

    field: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


def _refusals(exc: ValidationError) -> list[Refusal]:
    out = []
    for e in exc.errors():
        msg = str(e["msg"]).removeprefix("Value error, ")
        where = ".".join(str(p) for p in e["loc"])
        head, sep, rest = msg.partition(": ")
        if sep and _FIELD.match(head):  # a whole-model check names its field first
            where, msg = f"{where}.{head}" if where else head, rest
        out.append(Refusal(where or "application", "required" if e["type"] == "missing"
                           else msg))
    return out


def check_application(values: Mapping[str, object]) -> TransferApplication | list[Refusal]:
    """The application, or each field refused with its reason."""
    try:
        return TransferApplication.model_validate(dict(values))
    except ValidationError as exc:
        return _refusals(exc)


# ------------------------------------------------------------------ the platform's wire

_WIRE: Final[dict[str, str]] = {
    "aply_no": "application_no", "certno": "id_number", "psn_name": "name",
    "insutype": "insutype", "out_admdvs": "source_division", "in_admdvs": "target_division",
    "emp_uscc": "unit_credit_code", "tel": "phone", "aply_date": "apply_date",
    "stop_date": "stop_date", "memo": "remark",
}
_PERIOD_WIRE: Final[dict[str, str]] = {"begn_ym": "begin_month", "end_ym": "end_month",
                                       "insutype": "insutype", "emp_name": "unit_name"}


def from_wire(item: Mapping[str, Any]) -> dict[str, Any]:
    """One platform application (wire names) in the hub's names; unknown wire fields are
    kept under their own name so the contract refuses them (``extra="forbid"``). The
    national ``psn_cert_type`` must be 01 (居民身份证); others are refused on ``id_number``."""
    out: dict[str, Any] = {}
    for k, v in item.items():
        if k == "psn_cert_type":
            if str(v).zfill(2) != "01":
                out["id_number"] = f"cert type {v}"  # refused by the ID check, naming it
            continue
        if k == "insu_prd_list":
            out["periods"] = [{_PERIOD_WIRE.get(pk, pk): pv for pk, pv in p.items()}
                              if isinstance(p, dict) else p for p in (v or [])]
            continue
        out[_WIRE.get(k, k)] = v
    return {k: v for k, v in out.items() if v is not None and v != ""}


def to_wire(app: TransferApplication) -> dict[str, Any]:
    """The application in the platform's names (the simulator's pages, the status push)."""
    back = {v: k for k, v in _WIRE.items()}
    period_back = {v: k for k, v in _PERIOD_WIRE.items()}
    d = app.as_dict()
    out: dict[str, Any] = {back[k]: v for k, v in d.items() if k in back and v not in (None, "")}
    out["psn_cert_type"] = "01"
    out["insu_prd_list"] = [{period_back[k]: v for k, v in p.items() if v != ""}
                            for p in d["periods"]]
    return out


@dataclass(frozen=True)
class PullPage:
    """One page of the platform's T2401 answer: the raw items, the cursor after them."""

    items: tuple[dict[str, Any], ...]
    next_cursor: str
    more: bool


def pull_input(cursor: str, page_size: int, admdvs: str = NANJING) -> dict[str, Any]:
    """T2401 ``input``: the applications to and from ``admdvs`` after ``cursor``."""
    return {"data": {"admdvs": admdvs, "cursor": cursor, "page_size": str(page_size)}}


def parse_pull_output(output: Mapping[str, Any] | None, cursor: str) -> PullPage:
    """T2401 ``output``: ``{"list": [...], "next_cursor": str, "more": "1"|"0"}``. Raises
    ValueError for an answer that is not that (the client maps it to a partner error)."""
    if not isinstance(output, Mapping):
        raise ValueError("T2401 answer without output")
    items, nxt = output.get("list"), output.get("next_cursor")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ValueError("T2401 output.list is not a list of applications")
    if len(items) > MAX_PAGE:
        raise ValueError(f"T2401 page of {len(items)} applications (at most {MAX_PAGE})")
    if not isinstance(nxt, str) or len(nxt) > 64:
        raise ValueError("T2401 output.next_cursor is not a cursor")
    more = str(output.get("more") or "0") == "1"
    if more and nxt == cursor:  # "more" at the same cursor would read this page forever
        raise ValueError("T2401 output.next_cursor did not move past the page")
    return PullPage(tuple(items), nxt, more)


# ------------------------------------------------------------------ status and results

def status_payload(app: Mapping[str, Any], status: str, *, reason_code: str = "",
                   reason_field: str = "", reason: str = "", source: str = "",
                   certificate: str = "") -> dict[str, Any]:
    """A status change of one transfer (for core and the platform): the application's
    facts, the status and its code, the reason of a refusal or failure."""
    source_division = str(app.get("source_division") or "")
    return {"application_no": app["application_no"], "status": status,
            "status_code": STATUS_CODES.get(status, "00"),
            "status_label": STATUS_LABELS.get(status, status),
            "reason_code": reason_code, "reason_field": reason_field, "reason": reason[:500],
            "direction": "out" if is_nanjing(source_division) else "in",
            "source": source, "id_number": str(app.get("id_number") or ""),
            "name": str(app.get("name") or ""), "insutype": app.get("insutype") or "310",
            "source_division": source_division,
            "target_division": str(app.get("target_division") or ""),
            "certificate": certificate}


def status_input(payload: Mapping[str, Any], *, serial: str,
                 application: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """T2402 ``input``: the status, in the platform's names. A transfer the platform does not
    have yet (a window or 我的南京 转出 filed on the platform once approved) carries the
    application itself (``aply_info``)."""
    data: dict[str, Any] = {
        "aply_no": payload["application_no"], "stas": payload["status_code"],
        "stas_name": payload["status_label"], "fail_rea": payload.get("reason") or "",
        "fail_code": payload.get("reason_code") or "",
        "fail_fld": payload.get("reason_field") or "", "certno": payload["id_number"],
        "out_admdvs": payload["source_division"], "in_admdvs": payload["target_division"]}
    if application is not None:
        data["aply_info"] = dict(application)
    return {"serial": serial, "data": data}


def core_input(payload: Mapping[str, Any], *, serial: str) -> dict[str, Any]:
    """H4201 ``input``: 转移接续结果/状态 for core, in core's names; core deduplicates on
    ``serial``."""
    return {"serial": serial, "data": {
        "aply_no": payload["application_no"], "stas": payload["status_code"],
        "trans_type": "1" if payload["direction"] == "out" else "2",
        "certno": payload["id_number"], "psn_name": payload["name"],
        "insutype": payload["insutype"], "out_admdvs": payload["source_division"],
        "in_admdvs": payload["target_division"], "fail_rea": payload.get("reason") or "",
        "aply_src": payload.get("source") or "", "cert_file": payload.get("certificate") or ""}}


# ------------------------------------------------------------------ hub messages of F9

INTAKE: Final = "transfer.application"
"""An application from any of the three ways in, lane ``transfer.intake``."""
PLATFORM_STATUS: Final = "transfer.platform_status"
"""A status change back to the national platform (T2402), lane ``transfer.platform``."""
CORE_STATUS: Final = "transfer.core_status"
"""A status change to core (H4201), lane ``core.transfer``."""


def intake_message(application: Mapping[str, Any], source: Source, *, channel_app_id: str = "",
                   causation_id: str | None = None) -> HubMessage:
    """The application for the intake lane, ordered per person; one fact per application
    number (seen twice, the same key: processed once)."""
    payload = {"source": source, "application": dict(application),
               "channel_app_id": channel_app_id}
    no = str(application["application_no"])
    return HubMessage(type=INTAKE, source=f"transfer.{source}", target="hub",
                      correlation_id=channel_app_id or no, causation_id=causation_id,
                      idempotency_key=idempotency_key(INTAKE, no, {"application_no": no}),
                      entity_key=entity_key("person", str(application["id_number"])),
                      payload=payload)


def _status_message(type_: str, target: str, payload: dict[str, Any],
                    extra: Mapping[str, Any] | None = None) -> HubMessage:
    body = payload | dict(extra or {})
    no = str(payload["application_no"])
    return HubMessage(type=type_, source="hub", target=target, correlation_id=no,
                      idempotency_key=idempotency_key(type_, f"{no}:{payload['status']}",
                                                      {"status": payload["status"]}),
                      entity_key=entity_key("transfer", no), payload=body)


def platform_status_message(payload: dict[str, Any], *,
                            application: Mapping[str, Any] | None = None) -> HubMessage:
    """One status of one transfer for the platform (one fact per application and status);
    ``application`` (wire names) when the platform does not have the application yet."""
    return _status_message(PLATFORM_STATUS, PARTNER, payload,
                           {"application": dict(application)} if application else None)


def core_status_message(payload: dict[str, Any]) -> HubMessage:
    """One status of one transfer for core (one fact per application and status)."""
    return _status_message(CORE_STATUS, "core", payload)


def from_channel(application_id: str, payload: Mapping[str, Any], *,
                 received: date) -> dict[str, Any]:
    """我的南京's ``transfer_out`` (``contracts.channels.TransferOut`` JSON) as a transfer
    application: its number is ``MN`` + the channel application's id, the 转出地 Nanjing."""
    return {"application_no": f"MN{application_id}"[:40], "id_number": payload["id_number"],
            "name": payload["name"], "insutype": "310", "source_division": NANJING,
            "target_division": payload["target_division"],
            "unit_credit_code": payload.get("unit_credit_code") or "",
            "phone": payload.get("phone") or "", "apply_date": received.isoformat(),
            "stop_date": str(payload.get("stop_date") or "") or None,
            "remark": payload.get("remark") or ""}


def certificate_lines(app: TransferApplication, *, issued: date,
                      issuer: str = "南京市医疗保障局") -> tuple[list[tuple[str, str]],
                                                           list[tuple[str, str, str, str]]]:
    """What the 参保凭证 says (2571, 2676, 2761): labelled facts and the period rows
    (起止年月, 险种, 月数, 参保单位). Pure, so the renderer only draws."""
    facts = [("申请编号", app.application_no), ("姓名", app.name), ("证件号码", app.id_number),
             ("险种", INSUTYPES.get(app.insutype, app.insutype)),
             ("转出地", division_name(app.source_division) or app.source_division),
             ("转入地", division_name(app.target_division) or app.target_division),
             ("累计缴费月数", str(sum(p.months for p in app.periods))),
             ("出具日期", issued.isoformat()), ("出具机构", issuer)]
    rows = [(f"{p.begin_month}-{p.end_month}", INSUTYPES.get(p.insutype, p.insutype),
             str(p.months), p.unit_name) for p in app.periods]
    return facts, rows


"""Core's wire format <-> the hub's canonical contracts: pure functions, no I/O.

Core (医保核心业务系统) sends and receives the national envelope
(``contracts.national``), and its payload names follow the national style
(``certno``, ``psn_name``, ``gend``, ``brdy``...). The national table has no
numbers for bureau-internal transactions, so the hub assigns them:

    H2101  core -> hub   职工参保登记 event        input  {"data": <enrollment>}
    H9201  hub -> core   税务同步状态 update       input  {"data": <sync status>, "serial": str}
    H1102  hub -> core   query one employee        input  {"data": {"certno", "uscc"}}
                                                   output {"data": <enrollment>}

The hub owns these payload layouts, so it is strict about them: an unknown
payload field is an error and is not dropped. Every error names the field by
*core's* wire name, because that is the name core's engineers will search for.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from contracts.assistance import (
    Institution,
    Settlement,
    institution_from_wire,
    settlement_from_wire,
)
from contracts.employee import EmployeeEnrollment, SyncStatusUpdate
from contracts.errors import ValidationFailed
from contracts.national import NationalRequest
from contracts.taxcat import Op, model_for, op, op_for_infno, ops_of
from contracts.warnings import SelfPaid

__all__ = [
    "CORE_EVENT_TYPES",
    "ENROLLMENT_WIRE_FIELDS",
    "INFNO_APPLICATION",
    "INFNO_ARRIVALS",
    "INFNO_DIFFICULTY",
    "INFNO_DRUG_CATALOGUE",
    "INFNO_DRUG_ELIGIBILITY",
    "INFNO_EMPLOYEE_BATCH",
    "INFNO_EMPLOYEE_QUERY",
    "INFNO_ENROLL",
    "INFNO_EXPENSES",
    "INFNO_INSTITUTIONS",
    "INFNO_RECORD_QUERY",
    "INFNO_REVIEW",
    "INFNO_SELF_PAID",
    "INFNO_SETTLEMENTS",
    "INFNO_SETTLEMENT_EVENT",
    "INFNO_SNAPSHOT",
    "INFNO_SYNC_STATUS",
    "INFNO_TRANSFER_CHECK",
    "MAX_BATCH",
    "NOT_FOUND",
    "PAGE_SIZE_MAX",
    "RECORD_OPS",
    "SYNC_STATUS_CODES",
    "SYNC_WIRE_FIELDS",
    "batch_items",
    "difficulty_to_input",
    "drug_catalogue_from_output",
    "drug_eligibility_from_output",
    "employee_query_input",
    "enrollment_to_event",
    "event_to_enrollment",
    "event_to_payload",
    "input_to_sync_status",
    "institutions_from_output",
    "parse_national_request",
    "query_from_input",
    "self_paid_from_output",
    "self_paid_to_wire",
    "settlements_from_output",
    "sync_status_to_input",
]

PARTNER = "core"
INFNO_ENROLL = "H2101"
INFNO_SYNC_STATUS = "H9201"
INFNO_EMPLOYEE_QUERY = "H1102"
INFNO_RECORD_QUERY = "H1103"
INFNO_SNAPSHOT = "H1105"
PAGE_SIZE_MAX = 10_000
"""The largest ``page_size`` core answers in its list queries (H1105, H1107, H4004, H6102)."""
INFNO_APPLICATION = "H2501"
INFNO_ARRIVALS = "H3101"
INFNO_EMPLOYEE_BATCH = "H2107"
INFNO_TRANSFER_CHECK = "H1106"
INFNO_DIFFICULTY = "H4001"
"""F7 困难人员: 进入/退出 of an assistance identity (``difficulty_to_input``)."""
INFNO_EXPENSES = "H4002"
"""F7 医疗费用查询 (1497): one person's settlements in a period (``settlements_from_output``)."""
INFNO_SETTLEMENTS = "H4003"
"""F7 救助对象结算信息提取 (1487): a month's settlements of listed persons, with core's header
(count and sums) the rows must add up to."""
INFNO_INSTITUTIONS = "H4004"
"""F7 定点医疗机构 list (阳光惠民's 机构 table, 1497)."""
INFNO_SETTLEMENT_EVENT = "H4005"
"""F7 结算费用同步 (1497): core -> hub, one settlement of a person (``POST
/partners/core/settlements``)."""
INFNO_REVIEW = "H2502"
INFNO_SELF_PAID = "H1107"
"""F8: yearly 个人自付 per person (after 基本医保 and 大病), with urban/rural and categories."""
"""Core's review (审核) of a registered application: 人员复核, 年限补缴审核, 单位信息审核."""
"""转出: does the 转入地 hold a normal enrollment, and is 代办 business pending there."""
"""职工批量参保登记: up to ``MAX_BATCH`` H2101 payloads in one event; the hub splits it."""
MAX_BATCH = 1000

RECORD_OPS: dict[str, Op] = {"unit": op("UnitEnroll"), "flexible": op("FlexibleEnroll"),
                             "resident": op("ResidentEnroll")}
"""H1103 answers a subject's current record in the fields of its enrollment operation."""

CORE_EVENT_TYPES: dict[str, str] = {o.core_infno: o.msg_type for o in ops_of("submit")}
"""Events core sends to the hub: infno -> hub message type (H2101 职工参保登记 and the
rest of the F2 catalogue, ``contracts/tax/CATALOGUE.md``)."""

NOT_FOUND = "NOT_FOUND"
"""``output.err_code`` with infcode -1 when core has no such record (not an error for H1102)."""

ENROLLMENT_WIRE_FIELDS: dict[str, str] = {
    "uscc": "unit_credit_code",
    "emp_name": "unit_name",
    "psn_cert_type": "psn_cert_type",
    "certno": "id_number",
    "psn_name": "name",
    "gend": "gender",
    "brdy": "birth_date",
    "tel": "phone",
    "insutype": "insutype",
    "psn_type": "psn_type",
    "begn_ym": "start_month",
    "insu_admdvs": "admdvs",
    "wag": "wage",
    "seq": "entity_seq",
}
"""Core wire name -> EmployeeEnrollment field."""

SYNC_WIRE_FIELDS: dict[str, str] = {
    "corr_id": "correlation_id",
    "biz_type": "biz_type",
    "biz_key": "business_key",
    "certno": "id_number",
    "sync_stas": "status",
    "fail_rea_code": "reason_code",
    "fail_rea": "reason_text",
    "tax_acpt_no": "accept_no",
}
"""Core wire name -> SyncStatusUpdate field."""

SYNC_STATUS_CODES: dict[str, str] = {"synced": "1", "rejected": "2", "failed": "3"}
"""Canonical status -> core's ``sync_stas`` code (national style: codes, not words)."""

_CODE_FIELDS = frozenset({"psn_cert_type", "gend", "insutype", "psn_type", "sync_stas"})
_WIRE_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

M = TypeVar("M", bound=BaseModel)

Decoder = Callable[[object], object]
"""Turns one wire value into its canonical value; raises ValueError with the reason."""


def _brdy(value: object) -> object:
    if not (isinstance(value, str) and _WIRE_DATE.match(value)):
        raise ValueError(f"must be a date yyyy-MM-dd, got {value!r}")
    return value


def _sync_stas(value: object) -> object:
    by_code = {code: status for status, code in SYNC_STATUS_CODES.items()}
    if not isinstance(value, str) or value not in by_code:
        raise ValueError(f"must be one of {', '.join(sorted(by_code))}, got {value!r}")
    return by_code[value]


def _data_of(input: Mapping[str, Any]) -> Mapping[str, Any]:
    """The payload object: accepts the national ``input`` ({"data": {...}}) or the bare data."""
    if not isinstance(input, Mapping):
        raise ValidationFailed([("input", "must be a JSON object")], partner=PARTNER)
    data = input.get("data", input)
    if not isinstance(data, Mapping):
        raise ValidationFailed([("data", "must be a JSON object")], partner=PARTNER)
    return data


def _reason(error: Mapping[str, Any]) -> str:
    if error["type"] == "missing":
        return "required"
    msg = str(error["msg"])
    return msg.removeprefix("Value error, ")


def _to_canonical(model: type[M], data: Mapping[str, Any], wire: Mapping[str, str],
                  decoders: Mapping[str, Decoder]) -> M:
    """Validate wire ``data`` as ``model``; errors carry wire names and plain reasons."""
    to_wire = {canonical: name for name, canonical in wire.items()}
    errors: list[tuple[str, str]] = []
    fields: dict[str, Any] = {}
    for name, value in data.items():
        if name not in wire:
            errors.append((name, "unknown field"))
            continue
        if name in _CODE_FIELDS and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # some clients send codes as numbers
        if name in decoders:
            try:
                value = decoders[name](value)
            except ValueError as exc:
                errors.append((name, str(exc)))
                continue
        fields[wire[name]] = value
    try:
        result = model.model_validate(fields)
    except ValidationError as exc:
        named = {field for field, _ in errors}
        for err in exc.errors(include_url=False):
            reason = _reason(err)
            if err["loc"]:
                field = to_wire.get(str(err["loc"][0]), str(err["loc"][0]))
            else:
                # A cross-field rule: its message starts with the canonical field it blames.
                first, _, rest = reason.partition(" ")
                field = to_wire.get(first, "data")
                if first in to_wire:
                    reason = f"{field} {rest}"
            if field not in named:
                errors.append((field, reason))
        raise ValidationFailed(errors, partner=PARTNER) from None
    if errors:
        raise ValidationFailed(errors, partner=PARTNER)
    return result


def event_to_enrollment(input: Mapping[str, Any]) -> EmployeeEnrollment:
    """Core's H2101 payload -> EmployeeEnrollment, or ValidationFailed naming core's fields."""
    return _to_canonical(EmployeeEnrollment, _data_of(input), ENROLLMENT_WIRE_FIELDS,
                         {"brdy": _brdy})


def event_to_payload(infno: str, input: Mapping[str, Any]) -> tuple[Op, BaseModel]:
    """Any F2 event of core -> (operation, validated contract); errors name core's fields.

    H2101 keeps its typed contract (``EmployeeEnrollment``); the rest use the
    catalogue's generated contracts and core wire names (``WireField.core``).
    """
    o = op_for_infno(infno)
    if o is None or o.kind != "submit":
        raise ValidationFailed([("infno", f"not a core event: {infno}")], partner=PARTNER)
    if infno == INFNO_ENROLL:
        return o, event_to_enrollment(input)
    wire = {f.core: f.attr for f in o.wire_fields}
    return o, _to_canonical(model_for(o.name), _data_of(input), wire, {})


def batch_items(input: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The rows of an H2107 batch (``{"data": [...]}``); the list itself is checked here,
    each row later on its own, so one bad row never refuses the others."""
    if not isinstance(input, Mapping) or not isinstance(input.get("data"), list):
        raise ValidationFailed([("data", "must be a list of enrollments")], partner=PARTNER)
    rows = input["data"]
    if not 1 <= len(rows) <= MAX_BATCH:
        raise ValidationFailed([("data", f"must hold 1-{MAX_BATCH} rows, got {len(rows)}")],
                               partner=PARTNER)
    return [{"data": row} for row in rows]


def enrollment_to_event(e: EmployeeEnrollment) -> dict[str, Any]:
    """The inverse of ``event_to_enrollment``: the ``data`` object of an H2101 event."""
    return {
        "uscc": e.unit_credit_code,
        "emp_name": e.unit_name,
        "psn_cert_type": e.psn_cert_type,
        "certno": e.id_number,
        "psn_name": e.name,
        "gend": e.gender,
        "brdy": e.birth_date.isoformat(),
        "tel": e.phone,
        "insutype": e.insutype,
        "psn_type": e.psn_type,
        "begn_ym": e.start_month,
        "insu_admdvs": e.admdvs,
        "wag": e.wage,
        "seq": e.entity_seq,
    }


def sync_status_to_input(u: SyncStatusUpdate) -> dict[str, Any]:
    """The H9201 ``input`` ({"data": {...}}); the caller adds ``serial``, core's dedup key."""
    return {"data": {
        "corr_id": u.correlation_id,
        "biz_type": u.biz_type,
        "biz_key": u.business_key,
        "certno": u.id_number,
        "sync_stas": SYNC_STATUS_CODES[u.status],
        "fail_rea_code": u.reason_code,
        "fail_rea": u.reason_text,
        "tax_acpt_no": u.accept_no,
    }}


def input_to_sync_status(input: Mapping[str, Any]) -> SyncStatusUpdate:
    """The inverse of ``sync_status_to_input`` (what core does with an H9201 payload)."""
    return _to_canonical(SyncStatusUpdate, _data_of(input), SYNC_WIRE_FIELDS,
                         {"sync_stas": _sync_stas})


def employee_query_input(id_number: str, unit_credit_code: str) -> dict[str, Any]:
    """The H1102 ``input``: one employee of one unit."""
    return {"data": {"certno": id_number, "uscc": unit_credit_code}}


def query_from_input(input: Mapping[str, Any]) -> tuple[str, str]:
    """The inverse of ``employee_query_input``: (id_number, unit_credit_code)."""
    data = _data_of(input)
    errors = [(name, "unknown field") for name in data if name not in ("certno", "uscc")]
    for name in ("certno", "uscc"):
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            errors.append((name, "required"))
    if errors:
        raise ValidationFailed(errors, partner=PARTNER)
    return str(data["certno"]).strip().upper(), str(data["uscc"]).strip()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_national_request(body: bytes, max_bytes: int = 1_048_576, *,
                           known_infnos: Collection[str] | None = None) -> NationalRequest:
    """Bytes from the wire -> NationalRequest, or ValidationFailed naming the field.

    The size check comes first, so an oversize body is never parsed. NaN and
    Infinity are refused because they are not JSON and no partner can read them
    back. ``known_infnos`` defaults to the events core sends (``CORE_EVENT_TYPES``).
    """
    if len(body) > max_bytes:
        raise ValidationFailed([("body", f"is {len(body)} bytes, more than the {max_bytes} "
                                         "allowed")], partner=PARTNER)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationFailed([("body", f"is not UTF-8: byte {exc.start} "
                                         f"({body[exc.start]:#04x})")], partner=PARTNER) from None
    try:
        raw = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ValidationFailed([("body", f"malformed JSON: {exc.msg} at line {exc.lineno} "
                                         f"column {exc.colno} (char {exc.pos})")],
                               partner=PARTNER) from None
    except ValueError as exc:
        raise ValidationFailed([("body", str(exc))], partner=PARTNER) from None
    except RecursionError:
        raise ValidationFailed([("body", "is nested too deeply")], partner=PARTNER) from None
    if not isinstance(raw, dict):
        raise ValidationFailed([("body", f"must be a JSON object, got {type(raw).__name__}")],
                               partner=PARTNER)
    known = CORE_EVENT_TYPES if known_infnos is None else known_infnos
    errors: list[tuple[str, str]] = []
    infno = raw.get("infno")
    if isinstance(infno, str) and re.fullmatch(r"[0-9A-Z]{4,5}", infno) and infno not in known:
        errors.append(("infno", f"unknown transaction {infno}; expected one of "
                                f"{', '.join(sorted(known))}"))
    try:
        request = NationalRequest.model_validate(raw)
    except ValidationError as exc:
        errors.extend((".".join(str(p) for p in err["loc"]) or "body", _reason(err))
                      for err in exc.errors(include_url=False))
        raise ValidationFailed(errors, partner=PARTNER) from None
    if errors:
        raise ValidationFailed(errors, partner=PARTNER)
    return request


# -- F8 yearly self-paid (H1107) ------------------------------------------------------------
# input  {"year": "YYYY", "end_month": "YYYYMM"}
# output {"records": [{"certno", "psn_name", "urbrur_type": "1" 城镇 | "2" 农村,
#                      "insutype": "310" 职工 | "390" 居民 | "" 未参保,
#                      "self_pay_sumamt": "12345.67", "psn_types": [category, ...]}]}
_INSUTYPE = {"310": "employee", "390": "resident", "": "none"}
_INSUTYPE_WIRE = {v: k for k, v in _INSUTYPE.items()}


def self_paid_to_wire(p: SelfPaid) -> dict[str, Any]:
    """One H1107 record as core sends it."""
    return {"certno": p.id_number, "psn_name": p.name, "urbrur_type": "2" if p.rural else "1",
            "insutype": _INSUTYPE_WIRE[p.insurance], "self_pay_sumamt": f"{p.self_paid:.2f}",
            "psn_types": list(p.categories)}


def self_paid_from_output(records: Any) -> list[SelfPaid]:
    """H1107 ``output.records`` in canonical form; a bad record names its index and field."""
    if not isinstance(records, list):
        raise ValidationFailed([("output.records", "must be a list")], partner=PARTNER)
    out: list[SelfPaid] = []
    errors: list[tuple[str, str]] = []
    for i, r in enumerate(records):
        where = f"output.records[{i}]"
        if not isinstance(r, dict):
            errors.append((where, "must be an object"))
            continue
        try:
            out.append(SelfPaid(
                id_number=str(r.get("certno", "")).strip().upper(),
                name=str(r.get("psn_name", "")).strip(),
                rural={"1": False, "2": True}[str(r.get("urbrur_type"))],
                insurance=_INSUTYPE[str(r.get("insutype") or "")],
                self_paid=r.get("self_pay_sumamt"),
                categories=tuple(r.get("psn_types") or ())))
        except KeyError as exc:
            errors.append((where, f"unknown code {exc.args[0]!r} (urbrur_type 1/2, "
                                  "insutype 310/390/empty)"))
        except ValidationError as exc:
            errors.extend((f"{where}.{err['loc'][0] if err['loc'] else ''}", _reason(err))
                          for err in exc.errors(include_url=False))
    if errors:
        raise ValidationFailed(errors[:20], partner=PARTNER)
    return out


DIFFICULTY_WIRE_FIELDS: dict[str, str] = {
    "certno": "id_number", "psn_name": "name", "psn_idet_type": "identity",
    "begntime": "start_date", "endtime": "end_date", "rec_id": "record_id"}
"""F7 H4001: core wire name -> canonical field; plus ``chg_type`` 1 进入 / 2 退出 and
``trt_flag`` 1 when the identity carries the person's treatment (1487)."""


def difficulty_to_input(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The H4001 ``input`` of a 进入 (enter) / 退出 (exit); the caller adds ``serial``."""
    data = {wire: payload.get(field) or "" for wire, field in DIFFICULTY_WIRE_FIELDS.items()}
    data["chg_type"] = "1" if payload.get("action") == "enter" else "2"
    data["trt_flag"] = "1" if payload.get("primary") else "0"
    return {"data": data}


# -- F11 线上购药 (contracts/DRUG_SALES.md) -------------------------------------------------

INFNO_DRUG_ELIGIBILITY = "H6101"
"""F11 医保资格 (3280): is the person insured at core, in a normal state."""
INFNO_DRUG_CATALOGUE = "H6102"
"""F11 处方药管理 (3270-3271): core's drug catalogue with the 处方药 flag."""


def drug_eligibility_from_output(output: Mapping[str, Any] | None) -> dict[str, Any]:
    """H6101 ``output.data`` (``insured`` 1/0, ``psn_stas`` 1 正常, ``psn_type``, ``detail``)
    -> ``contracts.drugs.Eligibility`` fields; ``ValidationFailed`` when it is not that."""
    data = (output or {}).get("data")
    if not isinstance(data, dict) or str(data.get("insured")) not in ("0", "1"):
        raise ValidationFailed([("output.data.insured", "core answered H6101 without 1/0")],
                               partner=PARTNER)
    return {"insured": str(data["insured"]) == "1", "normal": str(data.get("psn_stas")) == "1",
            "psn_type": str(data.get("psn_type") or ""),
            "detail": str(data.get("detail") or "")[:200]}


def drug_catalogue_from_output(output: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """H6102 ``output.drugs`` (``med_list_codg``, ``med_list_name``, ``rx_flag`` 1 处方药,
    ``hi_flag`` 1 医保目录, ``lmt_qty``) -> ``contracts.drugs.CatalogueDrug`` fields."""
    rows = (output or {}).get("drugs")
    if not isinstance(rows, list):
        raise ValidationFailed([("output.drugs", "core answered H6102 without a list")],
                               partner=PARTNER)
    out = []
    for r in rows:
        if not isinstance(r, dict):
            continue
        limit = str(r.get("lmt_qty") or "")
        out.append({"drug_code": str(r.get("med_list_codg") or ""),
                    "name": str(r.get("med_list_name") or ""),
                    "rx": str(r.get("rx_flag")) == "1", "insured": str(r.get("hi_flag")) != "0",
                    "max_qty": int(limit) if limit.isdigit() and int(limit) else None})
    return out


# -- F7 医疗救助平台 (H4002-H4005; contracts/assistance.py) ---------------------------------

def settlements_from_output(records: Any, where: str = "output.records") -> list[Settlement]:
    """Core's settlements (H4002/H4003 ``output.records``) in canonical form; a bad record
    names its index and core's field (``ValidationFailed``: core is misbehaving)."""
    if not isinstance(records, list):
        raise ValidationFailed([(where, "must be a list")], partner=PARTNER)
    out: list[Settlement] = []
    errors: list[tuple[str, str]] = []
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            errors.append((f"{where}[{i}]", "must be an object"))
            continue
        got = settlement_from_wire(r, f"{where}[{i}]")
        if isinstance(got, list):
            errors.extend(got)
        else:
            out.append(got)
    if errors:
        raise ValidationFailed(errors[:20], partner=PARTNER)
    return out


def institutions_from_output(records: Any) -> list[Institution]:
    """Core's 定点医疗机构 (H4004 ``output.records``); a bad record names its index."""
    if not isinstance(records, list):
        raise ValidationFailed([("output.records", "must be a list")], partner=PARTNER)
    out: list[Institution] = []
    errors: list[tuple[str, str]] = []
    for i, r in enumerate(records):
        got = institution_from_wire(r, f"output.records[{i}]") if isinstance(r, dict) \
            else [(f"output.records[{i}]", "must be an object")]
        if isinstance(got, list):
            errors.extend(got)
        else:
            out.append(got)
    if errors:
        raise ValidationFailed(errors[:20], partner=PARTNER)
    return out


# -- F9 转移接续 (contracts/TRANSFER.md) --------------------------------------------------

INFNO_TRANSFER_RESULT = "H4201"
"""F9 转移接续结果/状态: a transfer's status change (转出审核通过, 转出失败, 参保凭证已出具,
转入受理...) to core; ``input`` is ``contracts.transfer.core_input``, deduplicated on
``serial``."""

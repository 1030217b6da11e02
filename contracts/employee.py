"""Canonical employee contracts: 职工参保登记 and the feedback that closes it.

The validators implement the seed's rules: a legal ID number with gender and
birth date agreeing with it, a legal unit credit code, a name without special
characters, a mobile phone, a Nanjing division. Every failure names its field.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.checks import check_credit_code, check_id_number
from contracts.clock import today_beijing
from contracts.ids import (
    NANJING_DIVISIONS,
    birth_date_of,
    gender_of,
    is_valid_credit_code,
    validate_id_number,
)

__all__ = [
    "CERT_TYPES",
    "STOP_REASONS",
    "EmployeeEnrollment",
    "EmployeeStop",
    "ResendRequest",
    "SyncStatusUpdate",
    "TaxAck",
    "TaxFeedback",
    "check_stop_date",
    "check_stop_reason",
    "normalise_cert_type",
]

CERT_TYPES = {"01", "02", "06", "07", "08", "90", "99"}
_NAME = re.compile(r"^[\u4e00-\u9fff·]{2,30}$|^[A-Za-z][A-Za-z .\-]{0,58}[A-Za-z]$")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_MONTH = re.compile(r"^(19|20)\d{2}(0[1-9]|1[0-2])$")

STOP_REASONS: dict[str, str] = {
    "01": "暂停参保",
    "02": "终止参保（离职/解除劳动关系）",
    "03": "参保登记撤销",
    "99": "其他",
}
"""停保原因 (tax's ``tbyy``): the hub-owned code table of EmployeeStop."""


def check_name(v: str) -> str:
    """Names without digits or special characters (the seed's rule)."""
    if not _NAME.match(v.strip()):
        raise ValueError("must be 2-30 Chinese characters (· allowed) or a Latin name, "
                         "without digits or special characters")
    return v.strip()


def normalise_cert_type(value: str) -> str:
    """Some clients drop the leading zero ("1" for "01"): accept and normalise."""
    v = value.strip()
    return v.zfill(2) if v.isdigit() and len(v) == 1 else v


class EmployeeEnrollment(BaseModel):
    """职工参保登记: one employee enrolled by a unit, as core records it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    unit_credit_code: str = Field(description="统一社会信用代码 of the employer")
    unit_name: str = Field(min_length=2, max_length=100)
    psn_cert_type: str = "01"
    id_number: str
    name: str
    gender: Literal["1", "2"]
    birth_date: date
    phone: str
    insutype: Literal["310", "320", "330", "510"] = "310"
    psn_type: Literal["11", "12"] = "11"
    start_month: str = Field(description="参保开始年月 yyyyMM")
    admdvs: str = Field(description="参保地医保区划")
    wage: int = Field(default=0, ge=0, le=10_000_000, description="申报工资 (fen)")
    entity_seq: int = Field(default=0, ge=0, description="core's per-person sequence")

    @field_validator("psn_cert_type", mode="before")
    @classmethod
    def _cert(cls, v: object) -> object:
        if isinstance(v, (str, int)):
            v = normalise_cert_type(str(v))
            if v not in CERT_TYPES:
                raise ValueError(f"unknown certificate type {v}")
        return v

    @field_validator("unit_credit_code")
    @classmethod
    def _uscc(cls, v: str) -> str:
        if reason := is_valid_credit_code(v):
            raise ValueError(reason)
        return v

    @field_validator("id_number")
    @classmethod
    def _id(cls, v: str) -> str:
        v = v.strip().upper()
        if reason := validate_id_number(v):
            raise ValueError(reason)
        return v

    _name = field_validator("name")(check_name)

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str) -> str:
        if not _MOBILE.match(v):
            raise ValueError("must be an 11-digit mainland mobile number starting 13-19")
        return v

    @field_validator("start_month")
    @classmethod
    def _month(cls, v: str) -> str:
        if not _MONTH.match(v):
            raise ValueError("must be yyyyMM")
        return v

    @field_validator("admdvs")
    @classmethod
    def _admdvs(cls, v: str) -> str:
        if v not in NANJING_DIVISIONS:
            raise ValueError(f"{v} is not a Nanjing division code")
        return v

    @model_validator(mode="after")
    def _derived(self) -> EmployeeEnrollment:
        if self.psn_cert_type == "01":
            if birth_date_of(self.id_number) != self.birth_date:
                raise ValueError(f"birth_date {self.birth_date} disagrees with the ID number "
                                 f"({birth_date_of(self.id_number)})")
            if gender_of(self.id_number) != self.gender:
                raise ValueError(f"gender {self.gender} disagrees with the ID number "
                                 f"({gender_of(self.id_number)})")
        return self

    @property
    def business_key(self) -> str:
        return f"{self.unit_credit_code}:{self.id_number}"


class TaxAck(BaseModel):
    """Tax's synchronous acknowledgement: the request was received, result follows."""

    model_config = ConfigDict(frozen=True)

    accept_no: str
    ret_code: str = "000000"
    ret_msg: str = ""


class TaxFeedback(BaseModel):
    """Tax's asynchronous result for an earlier request (受理结果反馈)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    accept_no: str = Field(min_length=1, max_length=40)
    biz_msg_id: str = Field(min_length=1, max_length=64, description="the hub message it answers")
    operation: str = Field(min_length=1, max_length=60)
    id_number: str = Field(default="", max_length=18)
    status: Literal["accepted", "rejected"]
    reason_code: str = Field(default="", max_length=20)
    reason_text: str = Field(default="", max_length=500)


class SyncStatusUpdate(BaseModel):
    """Hub -> core: the tax sync status of one business record (税务同步状态)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    correlation_id: str
    biz_type: str
    business_key: str
    id_number: str = ""
    status: Literal["synced", "rejected", "failed"]
    reason_code: str = ""
    reason_text: str = ""
    accept_no: str = ""


# ---------------------------------------------------------------- stop and resend (补发)

def check_stop_date(v: date, *, today: date | None = None) -> date:
    """A stop date may lie in the future, but by one year at most (Beijing calendar)."""
    today = today or today_beijing()
    try:
        latest = today.replace(year=today.year + 1)
    except ValueError:  # 29 February
        latest = today.replace(year=today.year + 1, day=28)
    if v > latest:
        raise ValueError(f"{v} is more than one year ahead (latest {latest})")
    return v


def check_stop_reason(v: str) -> str:
    if v not in STOP_REASONS:
        raise ValueError(f"unknown stop reason {v!r}; expected one of "
                         f"{', '.join(sorted(STOP_REASONS))}")
    return v


class EmployeeStop(BaseModel):
    """职工暂停/终止参保: tax stops one employee of one unit from ``stop_date``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    unit_credit_code: str = Field(description="统一社会信用代码 of the employer")
    id_number: str
    name: str
    stop_date: date = Field(description="停保日期")
    reason_code: str = Field(default="01", description="停保原因, a key of STOP_REASONS")

    _uscc = field_validator("unit_credit_code")(check_credit_code)
    _id = field_validator("id_number")(check_id_number)
    _stop = field_validator("stop_date")(check_stop_date)
    _reason = field_validator("reason_code")(check_stop_reason)

    _name = field_validator("name")(check_name)

    @property
    def business_key(self) -> str:
        return f"{self.unit_credit_code}:{self.id_number}"


class ResendRequest(BaseModel):
    """职工信息税务补发: a caseworker's request to resend one employee to tax.

    ``enroll`` resends core's current enrollment; ``stop`` sends tax's stop
    call from ``stop_date`` (required then, refused otherwise). ``reason`` is
    the caseworker's why, kept for the audit.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    id_number: str
    unit_credit_code: str
    action: Literal["enroll", "stop"]
    stop_date: date | None = Field(default=None, description="停保日期, for action stop")
    stop_reason: str = Field(default="01", description="停保原因, for action stop")
    reason: str = Field(min_length=2, max_length=500, description="why the resend (audited)")

    _uscc = field_validator("unit_credit_code")(check_credit_code)
    _id = field_validator("id_number")(check_id_number)
    _reason = field_validator("stop_reason")(check_stop_reason)

    @field_validator("stop_date")
    @classmethod
    def _stop(cls, v: date | None) -> date | None:
        return None if v is None else check_stop_date(v)

    @model_validator(mode="after")
    def _action(self) -> ResendRequest:
        if self.action == "stop" and self.stop_date is None:
            raise ValueError("stop_date is required for action stop")
        if self.action == "enroll" and self.stop_date is not None:
            raise ValueError("stop_date is only for action stop")
        return self

    @property
    def business_key(self) -> str:
        return f"{self.unit_credit_code}:{self.id_number}"

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

from contracts.ids import (
    NANJING_DIVISIONS,
    birth_date_of,
    gender_of,
    is_valid_credit_code,
    validate_id_number,
)

__all__ = [
    "CERT_TYPES",
    "EmployeeEnrollment",
    "SyncStatusUpdate",
    "TaxAck",
    "TaxFeedback",
    "normalise_cert_type",
]

CERT_TYPES = {"01", "02", "06", "07", "08", "90", "99"}
_NAME = re.compile(r"^[\u4e00-\u9fff·]{2,30}$|^[A-Za-z][A-Za-z .\-]{0,58}[A-Za-z]$")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_MONTH = re.compile(r"^(19|20)\d{2}(0[1-9]|1[0-2])$")


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

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v.strip()):
            raise ValueError("must be 2-30 Chinese characters (· allowed) or a Latin name, "
                             "without digits or special characters")
        return v.strip()

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

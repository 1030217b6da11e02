"""补发 of units, flexible workers and residents (F6): what a caseworker may ask for.

单位信息税务补发 (basic info, enrollment, stop), 灵活信息税务补发 (enrollment,
change, stop) and 居民信息税务补发 (new, change, stop). The employee resend
(职工信息税务补发) has its own contract, ``contracts.employee.ResendRequest``.
"""

from __future__ import annotations

from datetime import date
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.employee import check_stop_date, check_stop_reason
from contracts.ids import is_valid_credit_code, validate_id_number

__all__ = ["RESEND_ACTIONS", "RecordResendRequest", "Subject"]

Subject = Literal["unit", "flexible", "resident"]

RESEND_ACTIONS: Final[dict[tuple[str, str], str]] = {
    ("unit", "enroll"): "UnitEnroll",            # 参保登记信息
    ("unit", "update"): "UnitUpdate",            # 基本信息
    ("unit", "stop"): "UnitPayStatusChange",     # 停保信息 (jfztbg 1)
    ("flexible", "enroll"): "FlexibleEnroll",
    ("flexible", "update"): "FlexibleUpdate",
    ("flexible", "stop"): "FlexibleSuspend",
    ("resident", "enroll"): "ResidentEnroll",    # 新增
    ("resident", "update"): "ResidentUpdate",    # 变更
    ("resident", "stop"): "ResidentSuspend",     # 停保
}
"""(subject, action) -> the tax operation a resend calls."""


class RecordResendRequest(BaseModel):
    """One resend: which record (``key``: credit code of a unit, ID number of a person),
    which action, the stop date for ``stop``, and the caseworker's reason (audited)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    subject: Subject
    key: str = Field(description="统一社会信用代码 (unit) or 身份证号 (flexible, resident)")
    action: Literal["enroll", "update", "stop"]
    stop_date: date | None = Field(default=None, description="停保日期, for action stop")
    stop_reason: str = Field(default="01", description="停保原因, for action stop")
    reason: str = Field(min_length=2, max_length=500, description="why the resend (audited)")

    @model_validator(mode="after")
    def _check(self) -> RecordResendRequest:
        if self.subject == "unit":
            if why := is_valid_credit_code(self.key):
                raise ValueError(f"key: {why}")
        elif why := validate_id_number(self.key.upper()):
            raise ValueError(f"key: {why}")
        if self.action == "stop":
            if self.stop_date is None:
                raise ValueError("stop_date is required for action stop")
            check_stop_date(self.stop_date)
        elif self.stop_date is not None:
            raise ValueError("stop_date is only for action stop")
        check_stop_reason(self.stop_reason)
        return self

    @property
    def operation(self) -> str:
        return RESEND_ACTIONS[(self.subject, self.action)]

    @property
    def record_key(self) -> dict[str, str]:
        """The key fields core's record query (H1103) takes, canonical names."""
        if self.subject == "unit":
            return {"unit_credit_code": self.key}
        return {"id_number": self.key.upper()}

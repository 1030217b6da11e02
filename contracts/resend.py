"""补发 of units, flexible workers and residents (F6): what a caseworker may ask for.

单位信息税务补发 (seed 1852): basic info, enrollment and stop, each alone or all three
at once (``all``: enrollment + basic, + stop when core's record is stopped); the
results update core's record of the unit's status at tax (H9201, as every submit).
灵活信息税务补发 (1862-1865): enrollment, change, 暂停 (``stop``) and 终止/中止
(``terminate``); which records need it can be *detected* (``services.flexible_gaps``).
居民信息税务补发: new, change, stop (and terminate). The employee resend
(职工信息税务补发) has its own contract, ``contracts.employee.ResendRequest``.
"""

from __future__ import annotations

from datetime import date
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.employee import check_stop_date, check_stop_reason
from contracts.ids import is_valid_credit_code, validate_id_number

__all__ = ["RESEND_ACTIONS", "UNIT_ALL", "RecordResendRequest", "Subject"]

Subject = Literal["unit", "flexible", "resident"]

RESEND_ACTIONS: Final[dict[tuple[str, str], str]] = {
    ("unit", "enroll"): "UnitEnroll",            # 参保登记信息
    ("unit", "update"): "UnitUpdate",            # 基本信息
    ("unit", "stop"): "UnitPayStatusChange",     # 停保信息 (jfztbg 1)
    ("flexible", "enroll"): "FlexibleEnroll",
    ("flexible", "update"): "FlexibleUpdate",
    ("flexible", "stop"): "FlexibleSuspend",    # 暂停
    ("flexible", "terminate"): "FlexibleTerminate",  # 终止 / 中止
    ("resident", "enroll"): "ResidentEnroll",    # 新增
    ("resident", "update"): "ResidentUpdate",    # 变更
    ("resident", "stop"): "ResidentSuspend",     # 停保
    ("resident", "terminate"): "ResidentTerminate",
}
"""(subject, action) -> the tax operation a resend calls."""

UNIT_ALL: Final = ("enroll", "update", "stop")
"""单位补发 ``all``: the steps, in the order tax gets them (stop only for a stopped unit).
Enrollment first: tax refuses a basic-information change of a unit it does not know
(TX102); for a unit it knows, the enrollment is answered "already enrolled" (TX103) and
the change and stop still go through."""

_DATED: Final = frozenset({"stop", "terminate"})


class RecordResendRequest(BaseModel):
    """One resend: which record (``key``: credit code of a unit, ID number of a person),
    which action, the stop date for ``stop``, and the caseworker's reason (audited)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    subject: Subject
    key: str = Field(description="统一社会信用代码 (unit) or 身份证号 (flexible, resident)")
    action: Literal["enroll", "update", "stop", "terminate", "all"]
    stop_date: date | None = Field(default=None,
                                   description="停保日期, for actions stop and terminate")
    stop_reason: str = Field(default="01", description="停保原因, for action stop")
    reason: str = Field(min_length=2, max_length=500, description="why the resend (audited)")

    @model_validator(mode="after")
    def _check(self) -> RecordResendRequest:
        if self.subject == "unit":
            if why := is_valid_credit_code(self.key):
                raise ValueError(f"key: {why}")
        elif why := validate_id_number(self.key.upper()):
            raise ValueError(f"key: {why}")
        if self.action == "all" and self.subject != "unit":
            raise ValueError("action all is for units (basic, enrollment and stop at once)")
        if (self.subject, self.action) not in RESEND_ACTIONS and self.action != "all":
            raise ValueError(f"action {self.action} is not a {self.subject} resend")
        if self.action in _DATED and self.stop_date is None:
            raise ValueError(f"stop_date is required for action {self.action}")
        if self.action not in _DATED and self.stop_date is not None:
            raise ValueError("stop_date is only for actions stop and terminate")
        if self.stop_date is not None:
            check_stop_date(self.stop_date)
        check_stop_reason(self.stop_reason)
        return self

    @property
    def operation(self) -> str:
        """The tax operation; ``all`` has several (``steps``)."""
        if self.action == "all":
            raise ValueError("action all has one operation per step (UNIT_ALL)")
        return RESEND_ACTIONS[(self.subject, self.action)]

    def step(self, action: str) -> RecordResendRequest:
        """One step of ``all`` as a resend of its own (same record, reason)."""
        return self.model_copy(update={"action": action})

    @property
    def record_key(self) -> dict[str, str]:
        """The key fields core's record query (H1103) takes, canonical names."""
        if self.subject == "unit":
            return {"unit_credit_code": self.key}
        return {"id_number": self.key.upper()}

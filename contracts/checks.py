"""Field checks shared by every contract: one definition of each rule of the seed.

Each raises ``ValueError`` with the plain reason (pydantic names the field) and
returns the normalised value, so they serve as ``AfterValidator``s.
"""

from __future__ import annotations

import re
from typing import Final

from contracts.ids import NANJING_DIVISIONS, is_valid_credit_code, validate_id_number

__all__ = ["check_community", "check_credit_code", "check_division", "check_id_number",
           "check_mobile"]

_MOBILE: Final = re.compile(r"^1[3-9]\d{9}$")
_COMMUNITY: Final = re.compile(r"^32\d{10}$")


def check_credit_code(v: str) -> str:
    """统一社会信用代码 with its GB 32100 check character."""
    v = v.strip().upper()
    if reason := is_valid_credit_code(v):
        raise ValueError(reason)
    return v


def check_id_number(v: str) -> str:
    """居民身份证号 with its GB 11643 check character (x accepted, stored as X)."""
    v = v.strip().upper()
    if reason := validate_id_number(v):
        raise ValueError(reason)
    return v


def check_division(v: str) -> str:
    if v not in NANJING_DIVISIONS:
        raise ValueError(f"{v} is not a Nanjing division code")
    return v


def check_community(v: str) -> str:
    """基层医保区划: 6-digit Nanjing division + 3-digit street + 3-digit community."""
    v = v.strip()
    if not _COMMUNITY.match(v) or v[:6] not in NANJING_DIVISIONS:
        raise ValueError("must be a 12-digit 基层医保区划 code inside a Nanjing division "
                         "(6-digit division + 3-digit street + 3-digit community)")
    return v


def check_mobile(v: str) -> str:
    if not _MOBILE.match(v):
        raise ValueError("must be an 11-digit mainland mobile number starting 13-19")
    return v

"""Masking of personal data (ID numbers, names, phones, addresses) before anything is shown.

Applied to every interaction-log detail, to API answers and to log records
through ``MaskingFilter`` (message and traceback alike): logs never carry a
full ID number, phone, name or address. By field name (canonical, tax's pinyin,
core's wire names) where the field is known, by pattern everywhere: 18-digit
IDs, the old 15-digit IDs (6-digit division + yymmdd birth date + 3 digits) and
mobile phones in free text.
"""

from __future__ import annotations

import logging
import re
from typing import Any

__all__ = ["MaskingFilter", "mask_address", "mask_id", "mask_name", "mask_phone", "mask_text",
           "mask_value"]

_ID_RE = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8})(\d{3})([0-9Xx])(?![0-9A-Za-z])")
_ID15_RE = re.compile(
    r"(?<![0-9A-Za-z])\d{6}\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}(?![0-9A-Za-z])")
_PHONE_RE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
_NAME_KEYS = {"name", "xm", "psn_name", "unit_name_contact", "mother_name", "opter_name",
              "legal_rep", "legal_rep_name", "fddbr", "legrep_name", "payer_name",
              "applicant_name", "contact_name", "guardian_name"}
_ID_KEYS = {"id_number", "zjhm", "certno", "mother_id_number", "mqzjhm", "mom_certno",
            "id_numbers", "zjhmlb", "certno_list", "temp_id_number", "guardian_id_number"}
_PHONE_KEYS = {"phone", "lxdh", "tel", "mobile"}
_ADDRESS_KEYS = {"household_address", "hjdz", "hsreg_addr", "residence_address", "jzdz",
                 "live_addr", "address", "home_address"}


def mask_id(v: str) -> str:
    return v[:6] + "*" * max(0, len(v) - 10) + v[-4:] if len(v) > 10 else "*" * len(v)


def mask_phone(v: str) -> str:
    return v[:3] + "****" + v[-4:] if len(v) >= 11 else "*" * len(v)


def mask_name(v: str) -> str:
    return v[:1] + "*" * max(1, len(v) - 1) if v else v


def mask_address(v: str) -> str:
    """The district stays (the first six characters, e.g. 南京市玄武区), the rest goes."""
    return v[:6] + "***" if len(v) > 6 else "***"


def mask_text(text: str) -> str:
    """Mask ID numbers (18 and 15 digits) and mobile phones wherever they appear."""
    text = _ID_RE.sub(lambda m: mask_id(m.group(0)), text)
    text = _ID15_RE.sub(lambda m: mask_id(m.group(0)), text)
    return _PHONE_RE.sub(lambda m: m.group(1) + "****" + m.group(3), text)


def mask_value(value: Any, key: str = "") -> Any:
    """Mask a JSON-like structure: by field name where known, by pattern everywhere."""
    if isinstance(value, dict):
        return {k: mask_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_value(v, key) for v in value]
    if isinstance(value, str):
        k = key.lower()
        if k in _ID_KEYS:
            return mask_id(value)
        if k in _PHONE_KEYS:
            return mask_phone(value)
        if k in _NAME_KEYS:
            return mask_name(value)
        if k in _ADDRESS_KEYS:
            return mask_address(value)
        return mask_text(value)
    return value


class MaskingFilter(logging.Filter):
    """Masks the rendered message, the traceback and the stack of every record.

    A traceback quotes the values it failed on (a ``KeyError`` on an ID number,
    a validation error echoing input): it is formatted here, masked, and left
    in ``exc_text``, which handlers' formatters print instead of formatting anew.
    """

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        masked = mask_text(msg)
        if masked != msg:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True

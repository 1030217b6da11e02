"""Masking of personal data (ID numbers, names, phones) before anything is logged.

Applied to every interaction-log detail and to log records through
``MaskingFilter``: logs never carry a full ID number, phone or name.
"""

from __future__ import annotations

import logging
import re
from typing import Any

__all__ = ["MaskingFilter", "mask_id", "mask_name", "mask_phone", "mask_text", "mask_value"]

_ID_RE = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8})(\d{3})([0-9Xx])(?![0-9A-Za-z])")
_PHONE_RE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
_NAME_KEYS = {"name", "xm", "psn_name", "unit_name_contact", "mother_name", "opter_name"}
_ID_KEYS = {"id_number", "zjhm", "certno", "mother_id_number"}
_PHONE_KEYS = {"phone", "lxdh", "tel", "mobile"}


def mask_id(v: str) -> str:
    return v[:6] + "*" * max(0, len(v) - 10) + v[-4:] if len(v) > 10 else "*" * len(v)


def mask_phone(v: str) -> str:
    return v[:3] + "****" + v[-4:] if len(v) >= 11 else "*" * len(v)


def mask_name(v: str) -> str:
    return v[:1] + "*" * max(1, len(v) - 1) if v else v


def mask_text(text: str) -> str:
    """Mask ID numbers and mobile phones wherever they appear in free text."""
    text = _ID_RE.sub(lambda m: mask_id(m.group(0)), text)
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
        return mask_text(value)
    return value


class MaskingFilter(logging.Filter):
    """Masks the rendered message of every record that passes through a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        masked = mask_text(msg)
        if masked != msg:
            record.msg, record.args = masked, None
        return True

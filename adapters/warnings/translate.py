"""F8 warning lists on the wire (``contracts/WARNINGS.md``): pure, no I/O.

The hub's canonical warning (``contracts.warnings.warning_message`` payload) becomes
the department's JSON record; the department's answer becomes an acknowledgement
number or a refusal. The person's fields keep core's national names (H1107), so a
department reads the same names as in the 医保信息平台.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from contracts.errors import BusinessRejected, PartnerUnavailable
from contracts.warnings import KINDS

__all__ = ["LAYOUT_VERSION", "ack_of", "warning_path", "warning_to_wire"]

LAYOUT_VERSION = "1.0"
_INSUTYPE = {"employee": "310", "resident": "390", "none": ""}


def warning_path(department: str) -> str:
    return f"/warnings/{department}"


def warning_to_wire(payload: dict[str, Any]) -> dict[str, Any]:
    """The record a department receives for one person of one month."""
    p = payload["person"]
    return {
        "version": LAYOUT_VERSION,
        "serial": payload["serial"],
        "month": payload["month"],
        "department": payload["department"],
        "warning_types": [KINDS[k] for k in payload["kinds"]],
        "line": f"{Decimal(str(payload['line'])):.2f}",
        "resend": int(payload.get("resend", 0)),
        "person": {"certno": p["id_number"], "psn_name": p["name"],
                   "urbrur_type": "2" if p["rural"] else "1",
                   "insutype": _INSUTYPE[p["insurance"]],
                   "self_pay_sumamt": f"{Decimal(str(p['self_paid'])):.2f}",
                   "psn_types": list(p["categories"])},
    }


def ack_of(department: str, answer: Any) -> str:
    """The acknowledgement number of an answer ``{"code": "0", "ack_no": ...}``; a refusal
    (``code`` not 0) is ``BusinessRejected``; anything else means the department misbehaves
    (retried)."""
    partner = f"dept.{department}"
    if not isinstance(answer, dict) or "code" not in answer:
        raise PartnerUnavailable(f"{department} answered without a code", partner=partner)
    if str(answer["code"]) != "0":
        raise BusinessRejected(str(answer["code"])[:40] or "DEPT",
                               str(answer.get("msg") or "refused")[:500], partner=partner)
    ack = answer.get("ack_no")
    if not isinstance(ack, str) or not ack:
        raise PartnerUnavailable(f"{department} acknowledged without ack_no", partner=partner)
    return ack[:64]

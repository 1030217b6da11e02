"""What the hub needs from the electronic prescription center (处方流转中心, F11).

The drug-sale flow (pharmacy orders, seed 3325-3326) asks only this: does the
prescription exist, is it valid, and whose is it. The client behind it speaks the
center's signed (SM3withSM2) and encrypted (SM4) envelope and verifies every answer;
an answer that fails verification is never passed on (``PrescriptionRefused``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

__all__ = ["PrescriptionPort", "RxDrug", "RxStatus"]


@dataclass(frozen=True)
class RxDrug:
    """One line of a prescription: the drug's national code and the quantity prescribed."""

    med_list_codg: str
    name: str
    quantity: Decimal
    unit: str = ""


@dataclass(frozen=True)
class RxStatus:
    """The center's verified answer about one prescription (``hospRxDetlQuery``)."""

    hi_rxno: str
    """The center's prescription number (``hiRxno``)."""
    found: bool
    valid: bool
    """Found, reviewed (审核通过), not revoked, not already dispensed, not expired."""
    reason: str = ""
    """Why not valid (``expired``, ``revoked``, ``dispensed``, ``not reviewed``...), empty
    when valid."""
    id_number: str = ""
    """The patient's ID number (``certno``): the sale is for this person only."""
    patient_name: str = ""
    expires_at: datetime | None = None
    drugs: tuple[RxDrug, ...] = ()


class PrescriptionPort(Protocol):
    """Raises only ``contracts.errors`` exceptions: TransientError (center down, slow) or
    PermanentError subclasses (a refused or unverifiable answer: bad signature, wrong key,
    replayed timestamp, undecryptable data)."""

    async def query_prescription(self, hi_rxno: str, *, rx_trace_code: str = "",
                                 fixmedins_code: str = "") -> RxStatus:
        """``hospRxDetlQuery``: the prescription as the center holds it, verified."""
        ...

    async def aclose(self) -> None: ...

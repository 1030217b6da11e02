"""What the hub needs from the F13 partners, independent of HTTP."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["RateLimiter", "VoucherPort"]


class VoucherPort(Protocol):
    """Raises only ``contracts.errors`` exceptions: TransientError or PermanentError subclasses.

    Every call is one national-envelope request (``infno``, ``input``) to a partner
    (``contracts.voucher``: CORE, LIBRARY, MEDTAX); ``serial`` (``X-Hub-Serial``) lets the
    partner answer a repeat with its first answer and make no second effect."""

    async def call(self, partner: str, infno: str, input: dict[str, Any], *,
                   serial: str = "", insuplc_admdvs: str = "320100") -> dict[str, Any]:
        """The partner's ``output`` (``{}`` when it gave none)."""
        ...

    async def aclose(self) -> None: ...


class RateLimiter(Protocol):
    """Calls per caller per window; ``hit`` counts one and says whether it may pass."""

    async def hit(self, scope: str, caller: str, limit: int, window_s: int = 60
                  ) -> tuple[bool, int]:
        """(allowed, seconds until the window ends: the ``Retry-After`` when not)."""
        ...

"""What the hub needs from the trade union's side (F12): somewhere to deliver case notices."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["UnionPort"]


class UnionPort(Protocol):
    """Raises only ``contracts.errors`` exceptions: TransientError or PermanentError subclasses."""

    async def deliver(self, notice: dict[str, Any], *, serial: str) -> None:
        """POST one signed notice (受理结果, 结案 result file, 档案返还) to the union's
        endpoint; ``serial`` (X-Hub-Serial) lets the union drop a repeat."""
        ...

    async def aclose(self) -> None: ...

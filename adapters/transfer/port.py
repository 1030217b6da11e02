"""What the hub needs from the national transfer platform (国家医保信息平台, 转移接续)."""

from __future__ import annotations

from typing import Any, Protocol

from contracts.transfer import PullPage

__all__ = ["TransferPlatformPort"]


class TransferPlatformPort(Protocol):
    """Raises only ``contracts.errors`` exceptions: TransientError or PermanentError subclasses."""

    async def pull(self, cursor: str, page_size: int) -> PullPage:
        """A page of applications to and from Nanjing after ``cursor`` (T2401, 1834/1847);
        the items are raw (wire names): the hub checks each one."""
        ...

    async def push_status(self, payload: dict[str, Any], *, serial: str,
                          application: dict[str, Any] | None = None) -> None:
        """One transfer's status (result) back to the platform (T2402); the platform drops a
        repeated ``serial``. ``application`` (wire names) for a transfer it does not have."""
        ...

    async def aclose(self) -> None: ...

"""What the hub needs from a citizen channel (F1): somewhere to push an application's result."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["ChannelPort"]


class ChannelPort(Protocol):
    """Raises only ``contracts.errors`` exceptions: TransientError or PermanentError subclasses."""

    async def push_result(self, channel: str, result: dict[str, Any], *, serial: str) -> None:
        """POST the signed result to the channel's callback URL; ``serial`` (X-Hub-Serial) lets
        the channel drop a repeat, since the hub retries until it gets a 2xx."""
        ...

    async def aclose(self) -> None: ...

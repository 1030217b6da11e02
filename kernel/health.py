"""Whether the hub's own stores (Redis, the database, the broker) answer right now.

When recording an outcome fails, it is not the message's fault: the runtime
keeps the delivery (and the partner's answer it already has), marks the store
down here and tries again with a bounded backoff. Every other delivery waits
at the door while a store is down, so no partner is called for work whose
outcome could not be recorded, and no message spends its delivery limit on an
outage of ours. The first success marks the store up again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from contracts.errors import is_infrastructure

__all__ = ["StoreDown", "StoreHealth"]

log = logging.getLogger("hub.health")
T = TypeVar("T")


class StoreDown(Exception):
    """A store stayed unreachable for longer than the runtime waits with one delivery."""


class StoreHealth:
    """Shared by every lane of one process."""

    def __init__(self, *, first_delay_s: float = 0.2, max_delay_s: float = 5.0,
                 give_up_s: float = 600.0) -> None:
        self.first_delay_s = first_delay_s
        self.max_delay_s = max_delay_s
        self.give_up_s = give_up_s
        self._up = asyncio.Event()
        self._up.set()
        self.down_since: float | None = None
        self.outages = 0
        self.what = ""
        self._probing = 0

    @property
    def is_up(self) -> bool:
        return self._up.is_set()

    def down(self, what: str, exc: BaseException) -> None:
        if self._up.is_set():
            self._up.clear()
            self.down_since = time.monotonic()
            self.outages += 1
            self.what = what
            log.warning("%s is unreachable (%s: %s); holding deliveries until it answers",
                        what, type(exc).__name__, exc)

    def up(self) -> None:
        if not self._up.is_set():
            gone = time.monotonic() - (self.down_since or time.monotonic())
            log.warning("%s answers again after %.1f s; deliveries go on", self.what, gone)
            self.down_since = None
            self._up.set()

    async def wait_up(self) -> None:
        """Hold a new delivery while a store is down (bounded: a probe's own wait)."""
        if not self._up.is_set():
            try:
                await asyncio.wait_for(self._up.wait(), self.give_up_s)
            except TimeoutError:
                return

    async def call(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        """``fn()`` until it succeeds, backing off while the store is down.

        Raises ``StoreDown`` after ``give_up_s``; the caller then gives the delivery
        back to the broker, the only path left that spends a delivery attempt. The
        door stays shut only while some delivery is still probing: when the last
        prober gives up or is cancelled (a shutdown), the door opens again and the
        next delivery finds out for itself.
        """
        delay, started, failed = self.first_delay_s, time.monotonic(), False
        try:
            while True:
                try:
                    result = await fn()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if not is_infrastructure(exc):
                        raise
                    if not failed:
                        failed = True
                        self._probing += 1
                    self.down(what, exc)
                    if time.monotonic() - started + delay > self.give_up_s:
                        raise StoreDown(f"{what} unreachable for {self.give_up_s:.0f} s"
                                        ) from exc
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.max_delay_s)
                    continue
                self.up()
                return result
        finally:
            if failed:
                self._probing -= 1
                if self._probing == 0 and not self._up.is_set():
                    log.warning("no delivery is waiting on %s any more; opening the door",
                                self.what)
                    self.down_since = None
                    self._up.set()

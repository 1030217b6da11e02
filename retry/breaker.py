"""A circuit breaker per partner: stop calling a partner that keeps failing.

    closed --(threshold transient failures within window_s)--> open
    open --(open_s elapsed)--> half_open: one probe call is let through
    half_open --probe succeeds--> closed;  --probe fails--> open again

While open, the runtime sends messages to delayed retry without calling the
partner and without spending an attempt, so nothing is lost and nothing
dies of the outage. State is per hub process (each replica learns on its
own, as Hystrix-style breakers do) and visible through the admin API.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["Breaker", "BreakerPolicy", "Breakers", "State"]


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerPolicy:
    threshold: int = 10
    window_s: float = 10.0
    open_s: float = 5.0


@dataclass
class Breaker:
    partner: str
    policy: BreakerPolicy = field(default_factory=BreakerPolicy)
    clock: Callable[[], float] = time.monotonic
    state: State = State.CLOSED
    opened_at: float = 0.0
    opened_count: int = 0
    _failures: deque[float] = field(default_factory=deque)
    _probe_out: bool = False

    def allow(self) -> bool:
        """May we call the partner now? In half-open, only one probe at a time."""
        if self.state is State.OPEN and self.clock() - self.opened_at >= self.policy.open_s:
            self.state, self._probe_out = State.HALF_OPEN, False
        if self.state is State.CLOSED:
            return True
        if self.state is State.HALF_OPEN and not self._probe_out:
            self._probe_out = True
            return True
        return False

    def success(self) -> None:
        if self.state is not State.CLOSED:
            self.state = State.CLOSED
        self._failures.clear()
        self._probe_out = False

    def failure(self) -> None:
        now = self.clock()
        if self.state is State.HALF_OPEN:
            self._open(now)
            return
        self._failures.append(now)
        while self._failures and now - self._failures[0] > self.policy.window_s:
            self._failures.popleft()
        if len(self._failures) >= self.policy.threshold:
            self._open(now)

    def _open(self, now: float) -> None:
        self.state, self.opened_at, self._probe_out = State.OPEN, now, False
        self.opened_count += 1
        self._failures.clear()

    def snapshot(self) -> dict[str, Any]:
        if self.state is State.OPEN and self.clock() - self.opened_at >= self.policy.open_s:
            self.state, self._probe_out = State.HALF_OPEN, False
        return {"partner": self.partner, "state": str(self.state),
                "recent_failures": len(self._failures), "opened_count": self.opened_count,
                "threshold": self.policy.threshold, "open_s": self.policy.open_s}


@dataclass
class Breakers:
    policy: BreakerPolicy = field(default_factory=BreakerPolicy)
    _by_partner: dict[str, Breaker] = field(default_factory=dict)

    def get(self, partner: str) -> Breaker:
        if partner not in self._by_partner:
            self._by_partner[partner] = Breaker(partner, self.policy)
        return self._by_partner[partner]

    def snapshot(self) -> list[dict[str, Any]]:
        return [b.snapshot() for b in self._by_partner.values()]

"""A circuit breaker per partner: stop calling a partner that keeps failing.

    closed --(threshold transient failures within window_s)--> open
    open --(open_s elapsed)--> half_open: one probe call is let through
    half_open --probe succeeds--> closed;  --probe fails--> open again
    half_open --probe inconclusive--> open (a new probe after open_s)
    half_open --probe out longer than probe_timeout_s--> open (the probe is lost)

Every probe resolves. The runtime (``kernel.runtime._run``) reports each probe's
end: the partner answered (``success``, even with a refusal), the partner failed
(``failure``; an unexpected exception during the probe counts as one too), or the
probe says nothing about this partner (``inconclusive``: another partner failed
during it, or the call was cancelled). Should a probe still never be reported (a
bug, a task killed mid-call), the half-open state times out after
``probe_timeout_s`` and goes back to open, so a new probe goes after ``open_s``:
a partner's lanes never freeze until a restart.

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
    probe_timeout_s: float = 60.0
    """A probe not reported within this is taken as lost. Longer than one in-process
    call of any partner should be (``timeout_s`` × attempts, at most the in-flight lock):
    a too-short value only lets a second probe out while the first is still running."""


@dataclass
class Breaker:
    partner: str
    policy: BreakerPolicy = field(default_factory=BreakerPolicy)
    clock: Callable[[], float] = time.monotonic
    state: State = State.CLOSED
    opened_at: float = 0.0
    opened_count: int = 0
    lost_probes: int = 0
    _failures: deque[float] = field(default_factory=deque)
    _probe_out: bool = False
    _probe_at: float = 0.0

    def _tick(self, now: float) -> None:
        """Time-driven moves: open -> half-open after open_s; a lost probe -> open."""
        if (self.state is State.HALF_OPEN and self._probe_out
                and now - self._probe_at >= self.policy.probe_timeout_s):
            self.lost_probes += 1
            self._reopen(now)
        if self.state is State.OPEN and now - self.opened_at >= self.policy.open_s:
            self.state, self._probe_out = State.HALF_OPEN, False

    def allow(self) -> bool:
        """May we call the partner now? In half-open, only one probe at a time."""
        now = self.clock()
        self._tick(now)
        if self.state is State.CLOSED:
            return True
        if self.state is State.HALF_OPEN and not self._probe_out:
            self._probe_out, self._probe_at = True, now
            return True
        return False

    @property
    def probing(self) -> bool:
        """A probe is out: true right after the ``allow()`` that let the probe through."""
        return self.state is State.HALF_OPEN and self._probe_out

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

    def inconclusive(self) -> None:
        """The probe ended without telling whether this partner is up: release the
        half-open state back to open, so a new probe is let through after ``open_s``.
        Outside half-open (an ordinary call) this changes nothing."""
        if self.state is State.HALF_OPEN and self._probe_out:
            self._reopen(self.clock())

    def reset(self) -> None:
        """An operator's manual reset (``POST /admin/breakers/{partner}/reset``): closed, its
        failure count cleared, any probe forgotten; the next call goes to the partner. A
        probe still out reports later as an ordinary call (a failure counts afresh)."""
        self.state, self._probe_out = State.CLOSED, False
        self._failures.clear()

    def _open(self, now: float) -> None:
        self._reopen(now)
        self.opened_count += 1
        self._failures.clear()

    def _reopen(self, now: float) -> None:
        self.state, self.opened_at, self._probe_out = State.OPEN, now, False

    def snapshot(self) -> dict[str, Any]:
        self._tick(self.clock())
        return {"partner": self.partner, "state": str(self.state),
                "recent_failures": len(self._failures), "opened_count": self.opened_count,
                "threshold": self.policy.threshold, "open_s": self.policy.open_s,
                "probing": self.probing, "lost_probes": self.lost_probes}


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

    def reset(self, partner: str) -> dict[str, Any] | None:
        """Close ``partner``'s breaker (``Breaker.reset``) and return its state before; None
        when the partner has no breaker yet (never called: nothing to reset)."""
        breaker = self._by_partner.get(partner)
        if breaker is None:
            return None
        before = breaker.snapshot()
        breaker.reset()
        return before

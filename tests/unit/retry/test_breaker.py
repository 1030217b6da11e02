from __future__ import annotations

from retry.breaker import Breaker, BreakerPolicy, Breakers, State


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_opens_after_threshold_failures_in_window_then_probes_once() -> None:
    clock = Clock()
    b = Breaker("tax", BreakerPolicy(threshold=3, window_s=10, open_s=5), clock=clock)
    for _ in range(2):
        b.failure()
    assert b.allow() and b.state is State.CLOSED
    b.failure()
    assert b.state is State.OPEN and not b.allow()
    clock.t = 5.0
    assert b.allow()          # the probe
    assert not b.allow()      # only one at a time
    b.failure()               # probe failed: open again
    assert b.state is State.OPEN and b.opened_count == 2
    clock.t = 10.0
    assert b.allow()
    b.success()
    assert b.state is State.CLOSED and b.allow()


def test_failures_outside_the_window_do_not_count() -> None:
    clock = Clock()
    b = Breaker("core", BreakerPolicy(threshold=2, window_s=1, open_s=5), clock=clock)
    b.failure()
    clock.t = 2.0
    b.failure()
    assert b.state is State.CLOSED


def test_snapshot_lists_each_partner() -> None:
    bs = Breakers(BreakerPolicy(threshold=1))
    bs.get("tax").failure()
    snap = {s["partner"]: s for s in bs.snapshot()}
    assert snap["tax"]["state"] == "open" and snap["tax"]["opened_count"] == 1

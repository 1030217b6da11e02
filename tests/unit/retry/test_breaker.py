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


# -- every probe resolves; a stuck half-open state times out (item 8) -----------------


def _half_open(clock: Clock, **policy: float) -> Breaker:
    b = Breaker("core", BreakerPolicy(**{"threshold": 1, "open_s": 5} | policy),  # type: ignore[arg-type]
                clock=clock)
    b.failure()
    clock.t += 5.0
    assert b.allow() and b.state is State.HALF_OPEN and b.probing
    return b


def test_an_inconclusive_probe_goes_back_to_open_and_a_new_probe_follows_open_s() -> None:
    clock = Clock()
    b = _half_open(clock)
    b.inconclusive()
    assert b.state is State.OPEN and not b.probing
    assert b.opened_count == 1  # not a new opening: nothing was learnt about the partner
    assert not b.allow()
    clock.t += 5.0
    assert b.allow() and b.probing  # the next probe
    b.success()
    assert b.state is State.CLOSED


def test_inconclusive_outside_half_open_changes_nothing() -> None:
    clock = Clock()
    b = Breaker("core", BreakerPolicy(threshold=2), clock=clock)
    b.failure()
    b.inconclusive()
    assert b.state is State.CLOSED and b.snapshot()["recent_failures"] == 1
    b.failure()
    assert b.state is State.OPEN
    b.inconclusive()
    assert b.state is State.OPEN and b.opened_at == 0.0


def test_a_lost_probe_times_out_to_open_then_a_new_probe_is_allowed() -> None:
    """Nobody reports the probe (a killed task): half-open must not last forever."""
    clock = Clock()
    b = _half_open(clock, probe_timeout_s=30)
    clock.t += 29.0
    assert not b.allow() and b.state is State.HALF_OPEN  # still within the probe timeout
    clock.t += 1.0
    assert not b.allow()  # timed out: back to open, a new probe after open_s
    assert b.state is State.OPEN and b.lost_probes == 1
    clock.t += 5.0
    assert b.allow() and b.probing
    b.success()
    assert b.state is State.CLOSED and b.allow()


def test_the_snapshot_shows_a_lost_probe_timing_out() -> None:
    clock = Clock()
    b = _half_open(clock, probe_timeout_s=30)
    assert b.snapshot()["probing"] is True
    clock.t += 30.0
    snap = b.snapshot()
    assert (snap["state"], snap["probing"], snap["lost_probes"]) == ("open", False, 1)


def test_a_late_answer_of_a_timed_out_probe_still_counts() -> None:
    clock = Clock()
    b = _half_open(clock, probe_timeout_s=30)
    clock.t += 31.0
    assert not b.allow() and b.state is State.OPEN
    b.success()  # the partner did answer, late: it is up
    assert b.state is State.CLOSED

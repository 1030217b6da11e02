"""A manual reset closes a breaker at once, whatever it was doing."""

from __future__ import annotations

from retry.breaker import Breaker, BreakerPolicy, Breakers, State


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_reset_closes_an_open_breaker_and_forgets_its_failures() -> None:
    clock = Clock()
    b = Breaker("tax", BreakerPolicy(threshold=2, window_s=60, open_s=30), clock)
    b.failure()
    b.failure()
    assert b.state is State.OPEN and not b.allow()
    b.reset()
    assert b.snapshot()["state"] == "closed" and b.allow()
    b.failure()  # one failure after the reset: the count started again
    assert b.snapshot()["state"] == "closed"


def test_reset_of_a_half_open_breaker_forgets_the_probe() -> None:
    clock = Clock()
    b = Breaker("tax", BreakerPolicy(threshold=1, open_s=5), clock)
    b.failure()
    clock.now = 6
    assert b.allow() and b.probing and not b.allow()
    b.reset()
    assert not b.probing and b.allow() and b.allow()


def test_breakers_reset_answers_the_state_before_or_none() -> None:
    breakers = Breakers(BreakerPolicy(threshold=1))
    assert breakers.reset("core") is None
    breakers.get("tax").failure()
    before = breakers.reset("tax")
    assert before is not None and before["state"] == "open"
    assert breakers.get("tax").state is State.CLOSED

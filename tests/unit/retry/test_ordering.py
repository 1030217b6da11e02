"""The ordering gate (in memory): a place is freed by leaving or by its own deadline."""

from __future__ import annotations

from retry.ordering import MemoryGate
from tests.support.fakes import FakeClock


async def test_a_later_message_waits_until_the_head_leaves() -> None:
    g = MemoryGate()
    assert await g.enter("r", "e", "a", 60)
    assert not await g.enter("r", "e", "b", 60)
    await g.leave("r", "e", "a")
    assert await g.enter("r", "e", "b", 60)


async def test_a_head_past_its_deadline_is_dropped_even_while_others_keep_waiting() -> None:
    g, clock = MemoryGate(), FakeClock()
    g.now = clock
    assert await g.enter("r", "e", "dead-head", 60)      # never reaches an outcome
    for _ in range(5):                                   # waiters come back again and again
        clock.t += 10
        assert not await g.enter("r", "e", "next", 600)
    clock.t += 11                                        # 61 s after the head arrived
    assert await g.enter("r", "e", "next", 600)
    assert g.fifo["r:e"] == ["next"]


async def test_the_caller_is_never_dropped_for_its_own_deadline() -> None:
    g, clock = MemoryGate(), FakeClock()
    g.now = clock
    assert await g.enter("r", "e", "a", 1)
    clock.t += 100
    assert await g.enter("r", "e", "a", 1)


async def test_leaving_twice_or_without_a_ticket_is_harmless() -> None:
    g = MemoryGate()
    await g.leave("r", "e", "nobody")
    assert await g.enter("r", "e", "a", 60)
    await g.leave("r", "e", "a")
    await g.leave("r", "e", "a")
    assert await g.enter("r", "e", "b", 60)

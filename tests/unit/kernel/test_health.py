"""kernel.health: an outage of the hub's own stores is waited out, and never for ever."""

from __future__ import annotations

import asyncio

import pytest

from kernel.health import StoreDown, StoreHealth


def _fast(give_up_s: float = 5.0) -> StoreHealth:
    return StoreHealth(first_delay_s=0.001, max_delay_s=0.01, give_up_s=give_up_s)


async def test_an_infrastructure_failure_is_retried_until_the_store_answers() -> None:
    h, calls = _fast(), []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise ConnectionError("refused")
        return "ok"

    assert await h.call("redis", flaky) == "ok"
    assert len(calls) == 4 and h.is_up and h.outages == 1


async def test_a_data_error_is_not_waited_out() -> None:
    h = _fast()

    async def bad() -> None:
        raise ValueError("not a store problem")

    with pytest.raises(ValueError):
        await h.call("database", bad)
    assert h.is_up and h.outages == 0


async def test_a_store_down_past_the_bound_raises_store_down_and_opens_the_door() -> None:
    h = _fast(give_up_s=0.05)

    async def down() -> None:
        raise OSError("unreachable")

    with pytest.raises(StoreDown):
        await h.call("database", down)
    assert h.is_up  # nobody probes any more: the next delivery finds out for itself


async def test_a_cancelled_prober_does_not_leave_the_door_shut() -> None:
    h = StoreHealth(first_delay_s=0.5, max_delay_s=0.5, give_up_s=600)

    async def down() -> None:
        raise ConnectionError("refused")

    task = asyncio.create_task(h.call("broker", down))
    await asyncio.sleep(0.05)
    assert not h.is_up
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert h.is_up
    await asyncio.wait_for(h.wait_up(), 0.1)  # a new delivery is not held for 600 s

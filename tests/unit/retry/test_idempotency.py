"""MemoryIdempotencyStore: absent -> inflight(owner) -> done(result), with TTLs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from retry import idempotency
from retry.idempotency import BeginState, MemoryIdempotencyStore
from tests.support.fakes import FakeClock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """A fake ``time.monotonic`` seen only by the idempotency module (not by the event loop)."""
    c = FakeClock()
    monkeypatch.setattr(idempotency, "time", SimpleNamespace(monotonic=c))
    return c


@pytest.fixture
def store() -> MemoryIdempotencyStore:
    return MemoryIdempotencyStore()


async def test_first_begin_is_new(store: MemoryIdempotencyStore) -> None:
    b = await store.begin("k", "w1", 60)
    assert b.state is BeginState.NEW
    assert b.result is None


async def test_begin_by_the_same_owner_is_new_again(store: MemoryIdempotencyStore) -> None:
    await store.begin("k", "w1", 60)
    assert (await store.begin("k", "w1", 60)).state is BeginState.NEW


async def test_begin_by_another_owner_sees_inflight(store: MemoryIdempotencyStore) -> None:
    await store.begin("k", "w1", 60)
    assert (await store.begin("k", "w2", 60)).state is BeginState.INFLIGHT


async def test_complete_makes_every_owner_see_done_with_the_result(
        store: MemoryIdempotencyStore) -> None:
    await store.begin("k", "w1", 60)
    await store.complete("k", {"outcome": "ok", "n": 1}, 3600)
    for owner in ("w1", "w2"):
        b = await store.begin("k", owner, 60)
        assert b.state is BeginState.DONE
        assert b.result == {"outcome": "ok", "n": 1}


async def test_release_only_by_the_owner(store: MemoryIdempotencyStore) -> None:
    await store.begin("k", "w1", 60)
    await store.release("k", "w2")
    assert (await store.begin("k", "w2", 60)).state is BeginState.INFLIGHT
    await store.release("k", "w1")
    assert (await store.begin("k", "w2", 60)).state is BeginState.NEW


async def test_release_does_not_undo_a_completed_key(store: MemoryIdempotencyStore) -> None:
    await store.begin("k", "w1", 60)
    await store.complete("k", {"outcome": "ok"}, 3600)
    await store.release("k", "w1")
    assert (await store.begin("k", "w1", 60)).state is BeginState.DONE


async def test_release_of_an_absent_key_is_a_no_op(store: MemoryIdempotencyStore) -> None:
    await store.release("nothing", "w1")
    assert (await store.begin("nothing", "w1", 60)).state is BeginState.NEW


async def test_forget_drops_done_and_inflight(store: MemoryIdempotencyStore) -> None:
    await store.begin("a", "w1", 60)
    await store.begin("b", "w1", 60)
    await store.complete("b", {}, 3600)
    await store.forget("a")
    await store.forget("b")
    await store.forget("never-seen")
    assert (await store.begin("a", "w2", 60)).state is BeginState.NEW
    assert (await store.begin("b", "w2", 60)).state is BeginState.NEW


async def test_keys_are_independent(store: MemoryIdempotencyStore) -> None:
    await store.begin("a", "w1", 60)
    assert (await store.begin("b", "w2", 60)).state is BeginState.NEW


async def test_a_crashed_owners_lock_expires(store: MemoryIdempotencyStore,
                                             clock: FakeClock) -> None:
    await store.begin("k", "w1", 5)
    clock.t += 4.9
    assert (await store.begin("k", "w2", 5)).state is BeginState.INFLIGHT
    clock.t += 0.2
    assert (await store.begin("k", "w2", 5)).state is BeginState.NEW
    # and now w2 holds it
    assert (await store.begin("k", "w1", 5)).state is BeginState.INFLIGHT


async def test_done_expires_after_its_ttl(store: MemoryIdempotencyStore, clock: FakeClock) -> None:
    await store.begin("k", "w1", 5)
    await store.complete("k", {"outcome": "ok"}, 10)
    clock.t += 9
    assert (await store.begin("k", "w2", 5)).state is BeginState.DONE
    clock.t += 2
    assert (await store.begin("k", "w2", 5)).state is BeginState.NEW


async def test_release_after_expiry_does_not_free_a_new_owners_lock(
        store: MemoryIdempotencyStore, clock: FakeClock) -> None:
    await store.begin("k", "w1", 5)
    clock.t += 6
    assert (await store.begin("k", "w2", 5)).state is BeginState.NEW
    await store.release("k", "w1")  # w1 comes back late
    assert (await store.begin("k", "w3", 5)).state is BeginState.INFLIGHT

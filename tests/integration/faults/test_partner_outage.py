"""Fault tests f and g on real servers: a poison message, and a partner down for a while."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest

from config.settings import load_settings
from simulators.core import CoreStore, emit_enrollments
from simulators.harness import fast_policies, running_stack, wait_until_settled
from simulators.simkit import Fault
from storage.deadletters import DeadLetterFilter, DeadLetterStore

pytestmark = pytest.mark.integration


async def test_partner_down_opens_breaker_and_everything_is_delivered_after() -> None:
    s = load_settings()
    n = 60
    store = CoreStore.seed(3, n, rng_seed=random.randrange(10**9))
    overrides = fast_policies(s, max_attempts=6) | {
        "breaker_threshold": 5, "breaker_window_s": 5.0, "breaker_open_s": 0.5}
    async with running_stack(s, store=store, overrides=overrides) as st:
        st.tax_state.faults[:] = [Fault(kind="http_5xx", operation="EmployeeEnroll")]
        async with httpx.AsyncClient(timeout=30) as client:
            await emit_enrollments(st.hub_url, store, n, client=client,
                                   secret=st.partner_secret("core"))
        await asyncio.sleep(4.0)  # tax is down for a while
        breaker = st.hub.deps.breakers.get("tax")
        opened = breaker.opened_count
        calls_while_down = st.tax_state.log.calls
        st.tax_state.faults.clear()  # tax recovers
        counts = await wait_until_settled(st, n, timeout=60)
        tax = st.tax_state.log.summary()
    print(f"\noutage test: sent={n} breaker_opened={opened} tax_calls_while_down="
          f"{calls_while_down} delivered={counts.get('delivered', 0)} "
          f"dead={counts.get('dead', 0)} tax_effects={tax['effects']}")
    assert opened >= 1
    # without the breaker each message would have called tax on every attempt
    assert calls_while_down < n * 6
    assert counts == {"delivered": n}
    assert tax["distinct"] == n and not tax["duplicates"]


async def test_poison_message_reaches_dlq_after_the_policy_attempts() -> None:
    s = load_settings()
    store = CoreStore.seed(1, 2, rng_seed=random.randrange(10**9))
    person = next(iter(store.persons.values()))
    overrides = fast_policies(s, max_attempts=4) | {"breaker_threshold": 1000}
    async with running_stack(s, store=store, overrides=overrides) as st:
        st.tax_state.faults[:] = [Fault(kind="soap_fault", match=person.id_number,
                                        operation="EmployeeEnroll")]
        async with httpx.AsyncClient(timeout=30) as client:
            await emit_enrollments(st.hub_url, store, 1, client=client,
                                   secret=st.partner_secret("core"))
        counts = await wait_until_settled(st, 1, timeout=30)
        archive = DeadLetterStore(st.hub.deps.journal.engine)
        rows = []
        for _ in range(100):
            if rows := await archive.list(DeadLetterFilter(route="tax.employee")):
                break
            await asyncio.sleep(0.1)
        # in-process attempts per broker attempt, never an endless loop
        calls = st.tax_state.log.calls
        got = store.sync_status[person.business_key]
    assert counts == {"dead": 1}
    [m] = rows  # parked once, archived from the DLQ for operations
    assert m.attempts == 4
    assert "SOAP" in m.reason or "Server" in m.reason
    assert calls == 4 * 2  # 4 broker attempts x 2 in-process attempts
    assert got["status"] == "failed"  # core was told it failed, with the reason

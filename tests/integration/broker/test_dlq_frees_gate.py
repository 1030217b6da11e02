"""A message RabbitMQ dead-letters itself (delivery limit) never reached an outcome in the
runtime; once the archiver stores it, that person's later messages go through."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest

from config.settings import load_settings
from contracts.envelope import HubMessage, entity_key
from simulators.harness import running_stack
from storage.deadletters import DeadLetterFilter, DeadLetterStore

pytestmark = pytest.mark.integration


async def test_a_broker_dead_letter_frees_its_place_in_the_ordering_gate() -> None:
    s = load_settings()
    async with running_stack(s) as st:
        gate, names = st.hub.deps.gate, st.hub.names
        assert gate is not None
        entity = entity_key("psn", "320102199005170017")
        stuck = HubMessage(type="tax.employee.enroll", source="core", target="tax",
                           correlation_id="c-stuck", idempotency_key="k-stuck",
                           entity_key=entity, payload={"x": 1})
        assert await gate.enter("tax.employee", entity, stuck.message_id, 3600)
        assert not await gate.enter("tax.employee", entity, "later", 3600)
        conn = await aio_pika.connect(s.amqp_url)
        try:
            ch = await conn.channel()
            dlx = await ch.get_exchange(names.dlx.name)
            await dlx.publish(aio_pika.Message(stuck.to_body(), headers={"x-death": [
                {"reason": "delivery_limit", "queue": names.queue("tax.employee"),
                 "count": 1, "exchange": ""}]}), routing_key=names.queue("tax.employee"))
        finally:
            await conn.close()
        store = DeadLetterStore(st.hub.deps.journal.engine)
        for _ in range(100):
            if await store.list(DeadLetterFilter(route="tax.employee")):
                break
            await asyncio.sleep(0.1)
        [letter] = await store.list(DeadLetterFilter(route="tax.employee"))
        assert letter.reason_code == "delivery_limit"
        assert await gate.enter("tax.employee", entity, "later", 3600)

"""broker.topology on the real RabbitMQ (item 11): the queues exist with the at-least-once
arguments, a wait tier sends a message back to its work queue, a reject parks it.

Each test declares in a fresh namespace and deletes it after. Whether a queue has
given arguments is checked the broker's way: re-declaring it with identical
arguments succeeds, with different ones fails with PRECONDITION_FAILED.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
from aiormq.exceptions import ChannelPreconditionFailed

from broker.rabbit import make_broker
from broker.topology import (
    DELAY_HEADER,
    INBOUND_ROUTE,
    Names,
    declare_topology,
    delete_topology,
)
from config.settings import load_settings
from routes.lanes import ROUTES

pytestmark = pytest.mark.integration

URL = load_settings().amqp_url
TIERS = (200, 1_000)
LANES = [(r.name, r.bindings) for r in ROUTES[:2]]


@pytest.fixture
async def names() -> AsyncIterator[Names]:
    n = Names(f"t{uuid.uuid4().hex[:10]}")
    broker = make_broker(URL)
    await broker.connect()
    try:
        await declare_topology(broker, n, LANES, TIERS)
        await declare_topology(broker, n, LANES, TIERS)  # safe on every start
    finally:
        await broker.stop()
    try:
        yield n
    finally:
        await delete_topology(URL, n, [r for r, _ in LANES], TIERS)


def _queues(n: Names) -> list[Any]:
    """Every queue the topology declares, as the hub declares it."""
    return ([n.work_queue(r) for r, _ in LANES] + [n.dlq_queue(r) for r, _ in LANES]
            + [n.wait_queue(t) for t in TIERS] + [n.dlq_queue(INBOUND_ROUTE)])


async def _redeclare(conn: aio_pika.abc.AbstractConnection, name: str,
                     arguments: dict[str, Any]) -> int:
    ch = await conn.channel()
    try:
        q = await ch.declare_queue(name, durable=True, arguments=arguments)
        return q.declaration_result.message_count or 0
    finally:
        if not ch.is_closed:
            await ch.close()


async def test_every_queue_exists_with_the_at_least_once_arguments(names: Names) -> None:
    conn = await aio_pika.connect(URL)
    async with conn:
        for q in _queues(names):
            # identical arguments: accepted, so the queue exists with exactly these
            assert await _redeclare(conn, q.name, dict(q.arguments)) == 0
        checks = [
            (names.work_queue(LANES[0][0]), "x-dead-letter-strategy"),
            (names.work_queue(LANES[0][0]), "x-overflow"),
            (names.wait_queue(TIERS[0]), "x-dead-letter-strategy"),
            (names.dlq_queue(LANES[0][0]), "x-delivery-limit"),
        ]
        for q, dropped in checks:
            other = {k: v for k, v in q.arguments.items() if k != dropped}
            with pytest.raises(ChannelPreconditionFailed):
                await _redeclare(conn, q.name, other)
        # what the wait tiers were before (classic, at most once): refused too
        with pytest.raises(ChannelPreconditionFailed):
            await _redeclare(conn, names.wait(TIERS[0]), {
                "x-message-ttl": TIERS[0], "x-dead-letter-exchange": names.redeliver.name})


async def _get(queue: aio_pika.abc.AbstractQueue, timeout: float = 5.0
               ) -> aio_pika.abc.AbstractIncomingMessage:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        m = await queue.get(fail=False)
        if m is not None:
            return m
        assert asyncio.get_running_loop().time() < deadline, f"nothing on {queue.name}"
        await asyncio.sleep(0.05)


async def test_a_wait_tier_returns_a_message_to_its_work_queue_and_a_reject_parks_it(
        names: Names) -> None:
    route = LANES[0][0]
    conn = await aio_pika.connect(URL)
    async with conn:
        ch = await conn.channel()
        retry = await ch.get_exchange(names.retry.name)
        await retry.publish(aio_pika.Message(
            b'{"n": 1}', headers={DELAY_HEADER: TIERS[0]}, message_id="m-1",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT), routing_key=names.queue(route))
        work = await ch.declare_queue(names.queue(route), passive=True)
        back = await _get(work)
        assert (back.body, back.message_id) == (b'{"n": 1}', "m-1")
        death = back.headers["x-death"][0]  # type: ignore[index]
        assert (death["reason"], death["queue"]) == ("expired", names.wait(TIERS[0]))
        await back.reject(requeue=False)  # dead-lettered (at least once) to the route's DLQ
        dlq = await ch.declare_queue(names.dlq(route), passive=True)
        parked = await _get(dlq)
        assert parked.message_id == "m-1"
        deaths = [(d["reason"], d["queue"]) for d in parked.headers["x-death"]]  # type: ignore[union-attr]
        assert ("rejected", names.queue(route)) in deaths
        await parked.ack()

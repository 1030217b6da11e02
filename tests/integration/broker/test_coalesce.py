"""broker.coalesce on the real RabbitMQ: publishes of one loop turn share a write, yet each
keeps its own confirm, return and failure, and aiormq's own publishes on the same channel
stay in step (the delivery tags of both count on one channel)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
from aiormq.exceptions import ChannelInvalidStateError, PublishError
from pamqp.commands import Basic

from broker.coalesce import Coalescer
from config.settings import load_settings

pytestmark = pytest.mark.integration

URL = load_settings().amqp_url


@pytest.fixture
async def chan() -> AsyncIterator[tuple[Any, str, Any]]:
    """A confirming channel (returns raise), a fresh queue and an aio-pika channel to read."""
    conn = await aio_pika.connect(URL)
    queue = f"t.coalesce.{uuid.uuid4().hex[:10]}"
    try:
        ch = await conn.channel(publisher_confirms=True, on_return_raises=True)
        await ch.declare_queue(queue, durable=True, arguments={"x-queue-type": "quorum"})
        reader = await conn.channel()
        yield await ch.get_underlay_channel(), queue, reader
        await reader.queue_delete(queue)
    finally:
        await conn.close()


def props(mid: str, **headers: Any) -> Basic.Properties:
    return Basic.Properties(delivery_mode=2, message_id=mid, headers=headers or None)


async def drain(reader: Any, queue: str, n: int) -> list[Any]:
    q = await reader.declare_queue(queue, passive=True)
    got: list[Any] = []
    for _ in range(200):
        while len(got) < n and (m := await q.get(no_ack=True, fail=False)) is not None:
            got.append(m)
        if len(got) >= n:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    extra = await q.get(no_ack=True, fail=False)
    assert extra is None, f"more than {n} messages in {queue}"
    return got


async def test_a_turn_of_publishes_arrives_whole_and_in_order(chan: Any) -> None:
    ch, queue, reader = chan
    co = Coalescer(ch)
    big = bytes(range(256)) * 2000  # 512,000 bytes: several content frames
    bodies = [f"m{i}".encode() for i in range(300)] + [big]
    before = ch.delivery_tag
    acks = await asyncio.gather(*(co.basic_publish(b, routing_key=queue, mandatory=True,
                                                   properties=props(f"id{i}"))
                                  for i, b in enumerate(bodies)))
    assert all(isinstance(a, Basic.Ack) for a in acks)
    assert ch.delivery_tag == before + len(bodies)
    got = await drain(reader, queue, len(bodies))
    assert [m.body for m in got] == bodies
    assert [m.message_id for m in got] == [f"id{i}" for i in range(len(bodies))]
    assert not ch.message_id_delivery_tag  # every confirm forgot its message id


async def test_an_unroutable_publish_fails_alone(chan: Any) -> None:
    ch, queue, reader = chan
    co = Coalescer(ch)
    res = await asyncio.gather(
        co.basic_publish(b"a", routing_key=queue, mandatory=True, properties=props("a")),
        co.basic_publish(b"x", routing_key=f"{queue}.nobody", mandatory=True,
                         properties=props("x")),
        co.basic_publish(b"b", routing_key=queue, mandatory=True, properties=props("b")),
        return_exceptions=True)
    assert isinstance(res[0], Basic.Ack) and isinstance(res[2], Basic.Ack)
    assert isinstance(res[1], PublishError)
    assert [m.body for m in await drain(reader, queue, 2)] == [b"a", b"b"]


async def test_a_message_that_cannot_be_encoded_fails_alone(chan: Any) -> None:
    ch, queue, reader = chan
    co = Coalescer(ch)
    res = await asyncio.gather(
        co.basic_publish(b"a", routing_key=queue, mandatory=True, properties=props("a")),
        co.basic_publish(b"bad", routing_key=queue, mandatory=True,
                         properties=props("bad", what=object())),
        co.basic_publish(b"b", routing_key=queue, mandatory=True, properties=props("b")),
        return_exceptions=True)
    assert isinstance(res[0], Basic.Ack) and isinstance(res[2], Basic.Ack)
    assert isinstance(res[1], Exception) and not isinstance(res[1], Basic.Ack)
    assert [m.body for m in await drain(reader, queue, 2)] == [b"a", b"b"]
    # the failed one took no delivery tag: later confirms still match their publishes
    assert isinstance(await co.basic_publish(b"c", routing_key=queue, mandatory=True,
                                             properties=props("c")), Basic.Ack)
    assert [m.body for m in await drain(reader, queue, 1)] == [b"c"]


async def test_aiormq_publishes_on_the_same_channel_stay_in_step(chan: Any) -> None:
    ch, queue, reader = chan
    co = Coalescer(ch)
    calls = []
    for i in range(100):
        if i % 3 == 0:
            calls.append(ch.basic_publish(f"{i}".encode(), routing_key=queue, mandatory=True,
                                          properties=props(f"r{i}")))
        else:
            calls.append(co.basic_publish(f"{i}".encode(), routing_key=queue, mandatory=True,
                                          properties=props(f"c{i}")))
    calls.append(co.basic_publish(b"lost", routing_key=f"{queue}.nobody", mandatory=True,
                                  properties=props("lost")))
    res = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, Basic.Ack) for r in res[:100]), res[:100]
    assert isinstance(res[100], PublishError)
    got = await drain(reader, queue, 100)
    assert sorted(int(m.body) for m in got) == list(range(100))


async def test_a_caller_that_gives_up_before_the_write_sends_nothing(chan: Any) -> None:
    ch, queue, reader = chan
    co = Coalescer(ch)
    gone = asyncio.ensure_future(co.basic_publish(b"gone", routing_key=queue, mandatory=True,
                                                  properties=props("gone")))
    kept = asyncio.ensure_future(co.basic_publish(b"kept", routing_key=queue, mandatory=True,
                                                  properties=props("kept")))
    await asyncio.sleep(0)  # both queued, the write not yet done
    gone.cancel()
    assert isinstance(await kept, Basic.Ack)
    assert [m.body for m in await drain(reader, queue, 1)] == [b"kept"]


async def test_a_closed_channel_fails_the_publish(chan: Any) -> None:
    ch, queue, _ = chan
    co = Coalescer(ch)
    await ch.close()
    with pytest.raises(ChannelInvalidStateError):
        await asyncio.wait_for(co.basic_publish(b"a", routing_key=queue, mandatory=True,
                                                properties=props("a")), 5)
    assert co.is_closed


@pytest.mark.parametrize("when", ["queued", "written"])
async def test_closing_the_channel_fails_publishes_in_flight(chan: Any, when: str) -> None:
    """Queued, or written and awaiting their confirm, when the channel closes: each is
    confirmed or raises; none hangs and none reads as a cancelled caller."""
    ch, queue, _ = chan
    co = Coalescer(ch)
    start = ch.delivery_tag
    calls = [asyncio.ensure_future(co.basic_publish(
        b"x" * 1000, routing_key=queue, mandatory=True, properties=props(f"m{i}")))
        for i in range(50)]
    await asyncio.sleep(0)
    while when == "written" and ch.delivery_tag < start + 50:
        await asyncio.sleep(0)
    await ch.close()
    res = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 10)
    assert all(isinstance(r, (Basic.Ack, Exception)) for r in res), res
    assert not any(isinstance(r, asyncio.CancelledError) for r in res)

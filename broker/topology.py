"""The broker topology, declared idempotently at start.

    <ns>.work (topic)       routing key = message type -> <ns>.q.<route>    (quorum)
    <ns>.redeliver (direct) routing key = queue name   -> <ns>.q.<route>    (back from waiting)
    <ns>.retry (headers)    hub-delay-ms = <tier>        -> <ns>.wait.<tier>ms (classic, TTL)
         a wait queue's TTL dead-letters to <ns>.redeliver, keeping the routing key
         the message was published with: the work queue it came from
    <ns>.dlx (direct)       routing key = queue name   -> <ns>.dlq.<route>  (quorum)
         explicit parking (with a reason header) and broker dead-letters
         (consumer crash loops past x-delivery-limit) both end here

Per-message TTL in one queue gets stuck behind its head, hence one wait queue
per tier (see the shared broker notes). The namespace (default ``hub``) lets
tests and demos run side by side on one broker without touching each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from faststream.rabbit import ExchangeType, QueueType, RabbitBroker, RabbitExchange, RabbitQueue

from kernel.names import QueueNames

__all__ = ["DELAY_HEADER", "DELIVERY_LIMIT", "Names", "declare_topology", "delete_topology",
           "queue_depths"]

# Not "x-...": a headers exchange ignores x- headers when matching (RabbitMQ 3.8+).
DELAY_HEADER = "hub-delay-ms"
DELIVERY_LIMIT = 10


@dataclass(frozen=True)
class Names(QueueNames):
    """The namespace's names (``kernel.names``) as RabbitMQ exchanges and queues."""

    @property
    def work(self) -> RabbitExchange:
        return RabbitExchange(f"{self.ns}.work", type=ExchangeType.TOPIC, durable=True)

    @property
    def redeliver(self) -> RabbitExchange:
        return RabbitExchange(f"{self.ns}.redeliver", type=ExchangeType.DIRECT, durable=True)

    @property
    def retry(self) -> RabbitExchange:
        return RabbitExchange(f"{self.ns}.retry", type=ExchangeType.HEADERS, durable=True)

    @property
    def dlx(self) -> RabbitExchange:
        return RabbitExchange(f"{self.ns}.dlx", type=ExchangeType.DIRECT, durable=True)

    def work_queue(self, route: str) -> RabbitQueue:
        """Quorum, dead-lettering to this route's DLQ; a crash loop ends there too."""
        return RabbitQueue(
            self.queue(route), queue_type=QueueType.QUORUM, durable=True,
            arguments={
                "x-dead-letter-exchange": self.dlx.name,
                "x-dead-letter-routing-key": self.queue(route),
                "x-delivery-limit": DELIVERY_LIMIT,
            },
        )


async def declare_topology(broker: RabbitBroker, names: Names,
                           routes: Iterable[tuple[str, Sequence[str]]],
                           tiers_ms: Sequence[int]) -> None:
    """Declare exchanges, work queues, wait tiers and DLQs; safe to run on every start."""
    work = await broker.declare_exchange(names.work)
    redeliver = await broker.declare_exchange(names.redeliver)
    retry = await broker.declare_exchange(names.retry)
    dlx = await broker.declare_exchange(names.dlx)
    for tier in tiers_ms:
        wq = await broker.declare_queue(RabbitQueue(
            names.wait(tier), durable=True,
            arguments={"x-message-ttl": tier, "x-dead-letter-exchange": redeliver.name}))
        await wq.bind(retry, arguments={"x-match": "all", DELAY_HEADER: tier})
    for route, bindings in routes:
        q = await broker.declare_queue(names.work_queue(route))
        for key in bindings:
            await q.bind(work, routing_key=key)
        await q.bind(redeliver, routing_key=names.queue(route))
        dq = await broker.declare_queue(RabbitQueue(names.dlq(route),
                                                    queue_type=QueueType.QUORUM, durable=True))
        await dq.bind(dlx, routing_key=names.queue(route))


async def delete_topology(amqp_url: str, names: Names, routes: Iterable[str],
                          tiers_ms: Sequence[int]) -> None:
    """Remove a namespace's queues and exchanges (demo and test clean-up only)."""
    import aio_pika

    conn = await aio_pika.connect(amqp_url)
    try:
        ch = await conn.channel()
        for route in routes:
            await ch.queue_delete(names.queue(route))
            await ch.queue_delete(names.dlq(route))
        for tier in tiers_ms:
            await ch.queue_delete(names.wait(tier))
        await ch.queue_delete(f"{names.ns}.q.channel.inbound")  # broker/channel_inbound.py
        for ex in (names.work, names.redeliver, names.retry, names.dlx):
            await ch.exchange_delete(ex.name)
        await ch.exchange_delete(f"{names.ns}.channels")
    finally:
        await conn.close()


async def queue_depths(amqp_url: str, queues: Iterable[str]) -> dict[str, int]:
    """Ready-message counts (passive declare): what ops would see in the UI."""
    import aio_pika

    out: dict[str, int] = {}
    conn = await aio_pika.connect(amqp_url)
    try:
        for name in queues:
            ch = await conn.channel()
            try:
                q = await ch.declare_queue(name, passive=True)
                out[name] = q.declaration_result.message_count or 0
            except aio_pika.exceptions.ChannelClosed:
                out[name] = -1
    finally:
        await conn.close()
    return out

"""The broker topology, declared idempotently at start.

    <ns>.work (topic)       routing key = message type -> <ns>.q.<route>    (quorum)
    <ns>.redeliver (direct) routing key = queue name   -> <ns>.q.<route>    (back from waiting)
    <ns>.retry (headers)    hub-delay-ms = <tier>        -> <ns>.wait.<tier>ms (quorum, TTL)
         a wait queue's TTL dead-letters to <ns>.redeliver, keeping the routing key
         the message was published with: the work queue it came from
    <ns>.dlx (direct)       routing key = queue name   -> <ns>.dlq.<route>  (quorum)
         explicit parking (with a reason header) and broker dead-letters
         (consumer crash loops past x-delivery-limit) both end here
    <ns>.q.channel.inbound  the channel AMQP door's queue (``broker.channel_inbound``),
         a work queue like the others, with its own <ns>.dlq.channel.inbound

Per-message TTL in one queue gets stuck behind its head, hence one wait queue
per tier (see the shared broker notes). The namespace (default ``hub``) lets
tests and demos run side by side on one broker without touching each other.

No message is dropped by the broker (what each queue's arguments are for):

- Dead-lettering is at-most-once by RabbitMQ's default: a dead letter in flight is
  lost if its target is unavailable or the broker stops. Every queue that
  dead-letters (work queues, the inbound door, wait tiers) is therefore a quorum
  queue with ``x-dead-letter-strategy: at-least-once``, which RabbitMQ honours only
  together with ``x-overflow: reject-publish`` (no queue here has a length limit, so
  that overflow setting never refuses anything; it only enables the strategy). The
  wait tiers were classic queues before, and classic queues cannot dead-letter
  at-least-once; quorum queues have message TTL since RabbitMQ 3.10.
- Delivery limits: work queues keep ``x-delivery-limit`` ``DELIVERY_LIMIT`` (10): a
  crash loop ends in the DLQ. Wait tiers and DLQs get an explicit
  ``PARKED_DELIVERY_LIMIT`` (1,000,000) instead of the broker's default, because
  RabbitMQ 4 gives every quorum queue a default limit of 20 and a DLQ has nowhere
  further to dead-letter: its 20th return (an archiver failing while the database is
  down) would drop the message. A million returns is years of a failing archiver. Not
  ``-1``: RabbitMQ 4 reads -1 as "no limit", but 3.10 accepts -1 at declare and then
  drops a message on its first return (checked on 3.10.8). A wait tier has a
  dead-letter target anyway, so its limit could only send a message on early.

Changing a queue's arguments makes re-declaring it fail with PRECONDITION_FAILED on a
broker that still has the old queue: see the migration note in the README.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from faststream.rabbit import ExchangeType, QueueType, RabbitBroker, RabbitExchange, RabbitQueue
from faststream.rabbit.schemas.queue import QuorumQueueArgs

from kernel.names import QueueNames

__all__ = ["AT_LEAST_ONCE", "DELAY_HEADER", "DELIVERY_LIMIT", "INBOUND_ROUTE",
           "PARKED_DELIVERY_LIMIT", "Names", "declare_topology", "delete_topology",
           "queue_depths"]

# Not "x-...": a headers exchange ignores x- headers when matching (RabbitMQ 3.8+).
DELAY_HEADER = "hub-delay-ms"
DELIVERY_LIMIT = 10
"""Returns of one message to a work queue before it is dead-lettered to its DLQ."""
PARKED_DELIVERY_LIMIT = 1_000_000
"""Explicit, never reached in practice: RabbitMQ 4's default (20) would drop parked letters."""
AT_LEAST_ONCE: QuorumQueueArgs = {"x-dead-letter-strategy": "at-least-once",
                                  "x-overflow": "reject-publish"}
"""Dead-lettering that waits for the target queue's confirm (quorum queues only)."""
INBOUND_ROUTE = "channel.inbound"
"""The channel AMQP door's queue is ``queue(INBOUND_ROUTE)``, its DLQ ``dlq(INBOUND_ROUTE)``."""


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

    def work_queue(self, route: str, routing_key: str = "") -> RabbitQueue:
        """Quorum, dead-lettering at least once to this route's DLQ; a crash loop ends
        there too. ``routing_key``: the binding of a subscriber that declares it bound."""
        args: QuorumQueueArgs = {
            "x-dead-letter-exchange": self.dlx.name,
            "x-dead-letter-routing-key": self.queue(route),
            "x-delivery-limit": DELIVERY_LIMIT,
            **AT_LEAST_ONCE,
        }
        return RabbitQueue(self.queue(route), queue_type=QueueType.QUORUM, durable=True,
                           routing_key=routing_key, arguments=args)

    def wait_queue(self, tier_ms: int) -> RabbitQueue:
        """Quorum with a queue TTL of the tier; expiry dead-letters (at least once) to
        ``redeliver`` with the routing key it came with: the work queue to go back to."""
        args: QuorumQueueArgs = {
            "x-message-ttl": tier_ms,
            "x-dead-letter-exchange": self.redeliver.name,
            "x-delivery-limit": PARKED_DELIVERY_LIMIT,
            **AT_LEAST_ONCE,
        }
        return RabbitQueue(self.wait(tier_ms), queue_type=QueueType.QUORUM, durable=True,
                           arguments=args)

    def dlq_queue(self, route: str) -> RabbitQueue:
        """Quorum, the end of the line: an explicit limit no archiver failure reaches."""
        return RabbitQueue(self.dlq(route), queue_type=QueueType.QUORUM, durable=True,
                           arguments={"x-delivery-limit": PARKED_DELIVERY_LIMIT})


async def declare_topology(broker: RabbitBroker, names: Names,
                           routes: Iterable[tuple[str, Sequence[str]]],
                           tiers_ms: Sequence[int]) -> None:
    """Declare exchanges, work queues, wait tiers and DLQs; safe to run on every start.

    The channel door's DLQ is declared here too (its queue is declared by its consumer,
    ``broker.channel_inbound``): refusals and crash loops of the door end there.
    """
    work = await broker.declare_exchange(names.work)
    redeliver = await broker.declare_exchange(names.redeliver)
    retry = await broker.declare_exchange(names.retry)
    dlx = await broker.declare_exchange(names.dlx)
    for tier in tiers_ms:
        wq = await broker.declare_queue(names.wait_queue(tier))
        await wq.bind(retry, arguments={"x-match": "all", DELAY_HEADER: tier})
    for route, bindings in routes:
        q = await broker.declare_queue(names.work_queue(route))
        for key in bindings:
            await q.bind(work, routing_key=key)
        await q.bind(redeliver, routing_key=names.queue(route))
        dq = await broker.declare_queue(names.dlq_queue(route))
        await dq.bind(dlx, routing_key=names.queue(route))
    door = await broker.declare_queue(names.dlq_queue(INBOUND_ROUTE))
    await door.bind(dlx, routing_key=names.queue(INBOUND_ROUTE))


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
        await ch.queue_delete(names.queue(INBOUND_ROUTE))  # broker/channel_inbound.py
        await ch.queue_delete(names.dlq(INBOUND_ROUTE))
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

"""The hub's hot path on AMQP: route consumers and the publishing channel, on aio-pika.

Every route delivery and every publish of the runtime goes through here rather than
through FastStream's subscriber and publisher: the runtime already parses, validates,
logs and traces each message itself, and FastStream's per-message layers (context
scopes, the logging middleware, message wrapping, its publish path) cost about a third
of the hub's CPU per message in ``bench/pipeline`` (profile in the README's capacity
note). FastStream keeps what is not per message on a hot lane: topology, the DLQ
archiver, the channel door, health pings and AsyncAPI.

The connection is not "robust": when it drops, the consumers die with it, their unacked
deliveries go back to their queues, and the hub's watchdog (``bootstrap.hub``), told
through ``on_lost``, rebuilds the broker client and this link together, as it does for
a FastStream client that comes back half closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aiormq.abc import DeliveredMessage
from pamqp.commands import Basic

from broker.topology import Names
from kernel.deps import KernelDeps
from kernel.runtime import Delivery, Route, process

__all__ = ["AmqpLink"]

log = logging.getLogger("hub.link")


class AmqpLink:
    """One AMQP connection: a confirming publishing channel and one consumer per route.

    Each route gets its own channel whose prefetch bounds that route's concurrency, as a
    FastStream subscriber did; deliveries are processed concurrently (aiormq runs each in
    its own task) and acked only after ``kernel.runtime.process`` recorded the outcome.
    """

    def __init__(self, url: str, names: Names, routes: Iterable[Route], deps: KernelDeps,
                 prefetch: int, *, graceful_s: float = 10.0,
                 on_lost: Callable[[], None] | None = None) -> None:
        self._url, self._names, self._routes = url, names, tuple(routes)
        self._deps, self._prefetch, self._graceful_s = deps, prefetch, graceful_s
        self._on_lost = on_lost
        self._conn: Any = None
        self._pub: Any = None
        self._consumers: list[tuple[Any, str]] = []
        self._inflight: set[asyncio.Task[Any]] = set()
        self._closing = False

    @property
    def publish_channel(self) -> Any:
        """The aiormq channel publishes go out on (confirms on, returns raise)."""
        if self._pub is None:
            raise ConnectionError("the AMQP link is not open")
        return self._pub

    async def open(self) -> None:
        """Connect and open the publishing channel; nothing is consumed yet."""
        self._closing = False
        self._conn = await aio_pika.connect(self._url)
        self._conn.close_callbacks.add(self._closed)
        ch = await self._conn.channel(publisher_confirms=True, on_return_raises=True)
        self._pub = await ch.get_underlay_channel()

    async def consume(self) -> None:
        """Start one manual-ack consumer per route, each on its own prefetch-bounded channel."""
        for route in self._routes:
            ch = await self._conn.channel()
            await ch.set_qos(prefetch_count=self._prefetch)
            raw = await ch.get_underlay_channel()
            ok = await raw.basic_consume(self._names.work_queue(route.name).name,
                                         self._handler(route, raw), no_ack=False)
            self._consumers.append((raw, ok.consumer_tag))

    def _handler(self, route: Route, ch: Any) -> Callable[[DeliveredMessage], Any]:
        deps = self._deps

        async def on_message(m: DeliveredMessage) -> None:
            tag = m.delivery_tag
            props = m.header.properties
            task = asyncio.current_task()
            if task is not None:
                self._inflight.add(task)
            try:
                await process(route, Delivery(
                    body=m.body, headers=dict(props.headers or {}),
                    message_id=props.message_id,
                    # queued for the writer, not awaited until written: one future less
                    ack=lambda: ch.basic_ack(tag, wait=False),
                    nack=lambda: ch.basic_nack(tag, requeue=True)), deps)
            except Exception:  # process records every outcome; only a lost channel gets here
                log.warning("delivery %s on %s ended without an ack: %s", props.message_id,
                            route.name, "channel closed" if ch.is_closed else "error",
                            exc_info=not ch.is_closed)
            finally:
                if task is not None:
                    self._inflight.discard(task)

        on_message.__name__ = f"consume_{route.name.replace('.', '_')}"
        return on_message

    def ok(self) -> bool:
        """The connection and every channel of this link are open."""
        if self._conn is None or self._conn.is_closed or self._pub is None or self._pub.is_closed:
            return False
        return not any(ch.is_closed for ch, _ in self._consumers)

    def _closed(self, *_: Any) -> None:
        if not self._closing and self._on_lost is not None:
            self._on_lost()

    async def close(self) -> None:
        """Stop taking deliveries, let those in hand finish (up to ``graceful_s``), close.

        What is still unfinished when the connection closes goes back to its queue
        unacked; idempotency absorbs a repeat of anything already done."""
        self._closing = True
        for ch, tag in self._consumers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ch.basic_cancel(tag), 5)
        self._consumers = []
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=self._graceful_s)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._conn.close(), 10)
        self._conn = self._pub = None


def properties(*, headers: dict[str, Any], message_id: str | None = None,
               correlation_id: str | None = None, message_type: str | None = None,
               ) -> Basic.Properties:
    """What every hub publish carries: persistent, JSON, timestamped, with ids.

    The same properties FastStream set on the hub's publishes before (a generated
    correlation id and message id when none is given), so consumers see no change."""
    cid = correlation_id or uuid.uuid4().hex
    return Basic.Properties(
        delivery_mode=2, content_type="application/json", headers=headers,
        message_id=message_id or uuid.uuid4().hex, correlation_id=cid,
        message_type=message_type, timestamp=datetime.now(UTC))

"""FastStream wiring: the broker client and the confirmed persistent publisher.

The route consumers and the publishing channel of the hot path live in ``broker.link``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from faststream.rabbit import RabbitBroker
from faststream.rabbit.schemas import Channel

from broker.coalesce import Coalescer
from broker.link import properties
from broker.topology import DELAY_HEADER, Names
from contracts.envelope import HubMessage
from kernel.tracing import inject as inject_trace

__all__ = ["BrokerGone", "RabbitPublisher", "make_broker"]


def make_broker(url: str, *, on_reconnected: Callable[..., Any] | None = None) -> RabbitBroker:
    """Confirms on; unroutable publishes raise (a type nobody is bound to is an error)."""
    return RabbitBroker(
        url, log_level=logging.DEBUG, graceful_timeout=10.0, apply_types=False,
        default_channel=Channel(publisher_confirms=True, on_return_raises=True),
        on_reconnected=(on_reconnected,) if on_reconnected else None,
    )


class BrokerGone(ConnectionError):
    """Publishing while the hub has no broker client (starting, or being rebuilt)."""


class RabbitPublisher:
    """Every publish is persistent, mandatory and awaited for its confirm.

    One publisher lives as long as the hub; ``bind`` points it at the broker
    client of the moment (the watchdog rebuilds that client after a loss), so
    whoever holds the publisher never holds a stale one.
    """

    def __init__(self, names: Names, broker: RabbitBroker | None = None) -> None:
        self._b = broker
        self._ch: Any = None
        self._work, self._retry, self._dlx = names.work, names.retry, names.dlx
        self._redeliver = names.redeliver

    consecutive_failures: int = 0

    def bind(self, broker: RabbitBroker | None, channel: Any = None) -> None:
        """Publish through ``channel`` (the hub's ``broker.link.AmqpLink``) when given,
        else through the FastStream ``broker`` (tools and tests that have no link)."""
        self._b = broker
        # publishes of one event-loop turn share one lock and one write (broker.coalesce)
        self._ch = Coalescer(channel) if channel is not None else None
        self.consecutive_failures = 0

    async def _send(self, body: bytes, **kw: Any) -> None:
        """Publish and keep score: the hub's watchdog rebuilds a client that keeps failing."""
        try:
            if self._b is None:
                raise BrokerGone("no broker client (starting or reconnecting)")
            # W3C trace context in the message headers; one already there is kept
            kw["headers"] = inject_trace(dict(kw.get("headers") or {}))
            if self._ch is not None:
                exchange = kw.pop("exchange")
                routing_key = kw.pop("routing_key")
                await self._ch.basic_publish(
                    body, exchange=getattr(exchange, "name", exchange), routing_key=routing_key,
                    mandatory=True, properties=properties(**kw))
            else:
                await self._b.publish(body, persist=True, content_type="application/json",
                                      **kw)
        except Exception:
            self.consecutive_failures += 1
            raise
        self.consecutive_failures = 0

    async def publish(self, msg: HubMessage) -> None:
        await self._send(
            msg.to_body(), exchange=self._work, routing_key=msg.type,
            message_id=msg.message_id, correlation_id=msg.correlation_id,
            message_type=msg.type, headers=msg.headers())

    async def delay(self, msg: HubMessage, queue: str, delay_ms: int,
                    headers: dict[str, Any]) -> None:
        await self._send(
            msg.to_body(), exchange=self._retry, routing_key=queue,
            message_id=msg.message_id, correlation_id=msg.correlation_id,
            message_type=msg.type, headers=headers | {DELAY_HEADER: delay_ms})

    async def park(self, body: bytes, queue: str, headers: dict[str, Any]) -> None:
        await self._send(body, exchange=self._dlx, routing_key=queue, headers=headers)

    async def requeue(self, body: bytes, queue: str, headers: dict[str, Any]) -> None:
        await self._send(body, exchange=self._redeliver, routing_key=queue, headers=headers)

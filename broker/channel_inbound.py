"""Channels that prefer the broker submit over AMQP, with the HTTP contract unchanged.

A channel publishes its ``ApplicationRequest`` JSON to the topic exchange
``<ns>.channels`` with routing key = its channel name, the same signature
headers as over HTTP (``X-Channel-Timestamp``, ``-Nonce``, ``-Signature``, or
``X-Api-Key``) as AMQP headers, and optionally ``reply_to`` +
``correlation_id`` to get the answer. The hub's consumer on
``<ns>.q.channel.inbound`` hands each message to the very same endpoint
(``POST /channels/{channel}/applications``) in process, so the two doors
cannot drift apart: same checks, same errors, same duplicate rule. The answer
(``{"status": 202, "body": {...}}``) goes to ``reply_to``; the delivery is
acked after that. A 5xx answer is acked too: it is the channel's to retry
(with the same request id), as over HTTP. Over AMQP a channel is also
identified by the broker user it connects as; give each channel a RabbitMQ
user allowed to publish only to ``<ns>.channels`` (documented in the README).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
from faststream import AckPolicy
from faststream.rabbit import ExchangeType, QueueType, RabbitBroker, RabbitExchange, RabbitQueue
from faststream.rabbit.message import RabbitMessage
from faststream.rabbit.schemas import Channel

from broker.topology import Names

__all__ = ["attach_channel_inbound", "inbound_exchange", "inbound_queue"]

log = logging.getLogger("hub.channels.amqp")

_HEADERS = ("x-channel-timestamp", "x-channel-nonce", "x-channel-signature", "x-api-key")


def inbound_exchange(names: Names) -> RabbitExchange:
    return RabbitExchange(f"{names.ns}.channels", type=ExchangeType.TOPIC, durable=True)


def inbound_queue(names: Names) -> RabbitQueue:
    return RabbitQueue(f"{names.ns}.q.channel.inbound", queue_type=QueueType.QUORUM,
                       durable=True, routing_key="#")


async def _raw(message: RabbitMessage) -> RabbitMessage:
    """The handler gets the message itself: it needs the routing key and reply_to."""
    return message


def attach_channel_inbound(broker: RabbitBroker, names: Names, app: Any,
                           prefetch: int = 32) -> None:
    """Consume channel submissions and answer them through the HTTP endpoint in process."""
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub")

    async def inbound(message: RabbitMessage) -> None:
        raw = message.raw_message
        channel = str(raw.routing_key or "")
        headers = {k: str(v) for k, v in (message.headers or {}).items()
                   if k.lower() in _HEADERS}
        try:
            r = await http.post(f"/channels/{channel}/applications", content=message.body,
                                headers=headers | {"Content-Type": "application/json"})
            answer = {"status": r.status_code, "body": r.json()}
        except Exception as exc:  # the endpoint answers everything; this is a last resort
            log.exception("channel AMQP submission from %s failed", channel)
            answer = {"status": 503, "body": {"detail": {"code": "UNAVAILABLE",
                                                         "reason": type(exc).__name__}}}
        if raw.reply_to:
            try:
                await broker.publish(json.dumps(answer, ensure_ascii=False).encode(),
                                     routing_key=raw.reply_to,
                                     correlation_id=raw.correlation_id,
                                     content_type="application/json", persist=True)
            except Exception:  # the answer is lost, the application is not: it has its id
                log.warning("could not answer %s on %s", raw.correlation_id, raw.reply_to)
        await message.ack()

    sub = broker.subscriber(inbound_queue(names), inbound_exchange(names),
                            ack_policy=AckPolicy.MANUAL, no_reply=True,  # we answer ourselves
                            channel=Channel(prefetch_count=prefetch), decoder=_raw)
    sub(inbound)

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

What the door trusts, and what it does not (``refusal``):

- The routing key must be exactly one configured channel name
  (``settings.channels``). It is never pasted into a path unchecked: a key such as
  ``my_nanjing/../../partners/tax/callback?`` would otherwise reach any POST
  endpoint of the hub.
- ``reply_to`` must be a queue only its sender can read: RabbitMQ's direct reply-to
  pseudo-queue (``amq.rabbitmq.reply-to``, ``amq.rabbitmq.reply-to.*``), or an
  exclusive queue of another connection (what a client's anonymous
  ``declare_queue(exclusive=True)`` is: ``amq.gen-*`` or aio-pika's ``amq_<uuid>``).
  Exclusivity is asked of the broker: a passive declare of it on a throw-away channel
  of the hub fails with RESOURCE_LOCKED. A shared queue (anyone may read it, so its
  name can be guessed and written into), a missing one, and any name in the hub's
  namespace (``<ns>.``, checked first, without asking) are refused: the door must not
  post into its own work queues, or anybody's inbox, for whoever asks.

A refused message is not handed to the endpoint and gets no answer (its reply
address is not trusted). It is dead-lettered with the reason: published (persistent,
confirmed) to ``<ns>.dlx`` with routing key ``<ns>.q.channel.inbound`` into
``<ns>.dlq.channel.inbound`` (declared by ``broker.topology``), carrying
``x-dead-reason``, ``x-dead-code`` ``REFUSED`` and the refused routing key and
reply address, then acked. Why dead-letter rather than journal or drop: a crafted
message is evidence, and the DLQ keeps its body and headers for whoever
investigates, needs no database (so a refusal cannot fail because the database is
down), and cannot be lost silently. Should that publish fail, the delivery is
rejected, and the queue's own dead-letter arguments (at least once) put it in the
same DLQ with the broker's reason. Each kind of refusal is logged once at WARNING
per routing key (then at DEBUG), so a flood cannot flood the log.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Collection
from typing import Any
from urllib.parse import quote

import aiormq
import httpx
from faststream import AckPolicy
from faststream.rabbit import ExchangeType, RabbitBroker, RabbitExchange, RabbitQueue
from faststream.rabbit.message import RabbitMessage
from faststream.rabbit.schemas import Channel

from broker.topology import INBOUND_ROUTE, Names

__all__ = ["HEADER_REFUSED_KEY", "HEADER_REFUSED_REPLY_TO", "attach_channel_inbound",
           "channel_refusal", "exclusive_to_another_connection", "inbound_exchange",
           "inbound_queue", "is_direct_reply_to", "needs_ownership_check", "refusal",
           "reply_to_refusal"]

log = logging.getLogger("hub.channels.amqp")

_HEADERS = ("x-channel-timestamp", "x-channel-nonce", "x-channel-signature", "x-api-key")
# Same names as kernel.runtime's parking headers, so the DLQ tools read them alike.
HEADER_REASON = "x-dead-reason"
HEADER_REASON_CODE = "x-dead-code"
HEADER_ROUTE = "x-route"
HEADER_REFUSED_KEY = "x-refused-routing-key"
HEADER_REFUSED_REPLY_TO = "x-refused-reply-to"
REFUSED = "REFUSED"
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
_LOGGED_MAX = 1000


def inbound_exchange(names: Names) -> RabbitExchange:
    return RabbitExchange(f"{names.ns}.channels", type=ExchangeType.TOPIC, durable=True)


def inbound_queue(names: Names) -> RabbitQueue:
    """A work queue of the namespace (``Names.work_queue``): quorum, dead-lettering at
    least once to ``<ns>.dlq.channel.inbound``, bound to every key of the exchange."""
    return names.work_queue(INBOUND_ROUTE, routing_key="#")


def channel_refusal(routing_key: str, channels: Collection[str]) -> str | None:
    """None when ``routing_key`` is exactly a configured channel name, else why not."""
    if routing_key in channels:
        return None
    shown = routing_key[:100] + ("..." if len(routing_key) > 100 else "")
    return f"routing key {shown!r} is not a configured channel"


def is_direct_reply_to(reply_to: str) -> bool:
    return reply_to == DIRECT_REPLY_TO or reply_to.startswith(f"{DIRECT_REPLY_TO}.")


def needs_ownership_check(reply_to: str | None, ns: str) -> bool:
    """Whether ``reply_to_refusal`` needs the broker's word (``exclusive_elsewhere``)."""
    if not reply_to:
        return False
    return not reply_to.startswith(f"{ns}.") and not is_direct_reply_to(reply_to)


def reply_to_refusal(reply_to: str | None, ns: str, *,
                     exclusive_elsewhere: bool = False) -> str | None:
    """None when answering to ``reply_to`` reaches only its sender (or there is none).

    ``exclusive_elsewhere``: the broker says the queue is exclusive to another
    connection (``exclusive_to_another_connection``).
    """
    if not reply_to:
        return None
    shown = reply_to[:100] + ("..." if len(reply_to) > 100 else "")
    if reply_to.startswith(f"{ns}."):
        return f"reply_to {shown!r} is a queue of the hub itself"
    if is_direct_reply_to(reply_to) or exclusive_elsewhere:
        return None
    return (f"reply_to {shown!r} is not a reply queue of the sender "
            f"({DIRECT_REPLY_TO} or an exclusive queue of its connection)")


def refusal(routing_key: str, reply_to: str | None, channels: Collection[str], ns: str, *,
            exclusive_elsewhere: bool = False) -> str | None:
    """The door's acceptance predicate: None to accept, else the reason to refuse."""
    return channel_refusal(routing_key, channels) or reply_to_refusal(
        reply_to, ns, exclusive_elsewhere=exclusive_elsewhere)


async def exclusive_to_another_connection(broker: RabbitBroker, queue: str) -> bool:
    """Ask the broker: a passive declare of another connection's exclusive queue fails
    with RESOURCE_LOCKED. A throw-away channel, since a failed declare closes it."""
    conn = await broker.connect()
    ch = await conn.channel(publisher_confirms=False)
    try:
        await ch.declare_queue(queue, passive=True)
        return False  # shared: anyone may read it
    except aiormq.exceptions.ChannelLockedResource:
        return True
    except aiormq.exceptions.ChannelNotFoundEntity:
        return False  # nowhere to answer
    finally:
        if not ch.is_closed:
            await ch.close()


async def _raw(message: RabbitMessage) -> RabbitMessage:
    """The handler gets the message itself: it needs the routing key and reply_to."""
    return message


def attach_channel_inbound(broker: RabbitBroker, names: Names, app: Any, *,
                           channels: Collection[str], prefetch: int = 32) -> None:
    """Consume channel submissions and answer them through the HTTP endpoint in process.

    ``channels``: the configured channel names (``settings.channels``); a message whose
    routing key is not one of them, or whose ``reply_to`` is not the sender's own reply
    queue, is refused (see the module docstring).
    """
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub")
    accepted = frozenset(channels)
    logged: set[tuple[str, str]] = set()

    async def refuse(message: RabbitMessage, key: str, reason: str) -> None:
        raw = message.raw_message
        first = (reason.split(" ", 1)[0], key[:100])  # ("routing" | "reply_to", key)
        if first not in logged and len(logged) < _LOGGED_MAX:
            logged.add(first)
            log.warning("channel AMQP door refused a message: %s (dead-lettered)", reason)
        else:
            log.debug("channel AMQP door refused a message: %s", reason)
        # The evidence, less the API key (a secret) and the broker's own lists.
        headers: dict[str, Any] = {k: v for k, v in (message.headers or {}).items()
                   if isinstance(v, str | int | float | bool | bytes)
                   and k.lower() != "x-api-key"}
        try:
            await broker.publish(
                message.body, exchange=names.dlx, routing_key=names.queue(INBOUND_ROUTE),
                headers=headers | {HEADER_REASON: reason[:500], HEADER_REASON_CODE: REFUSED,
                                   HEADER_ROUTE: INBOUND_ROUTE,
                                   HEADER_REFUSED_KEY: key[:255],
                                   HEADER_REFUSED_REPLY_TO: str(raw.reply_to or "")[:255]},
                message_id=raw.message_id, correlation_id=raw.correlation_id,
                content_type=raw.content_type, persist=True)
        except Exception:  # the broker's own dead-lettering (at least once) takes it there
            log.warning("could not park a refused channel message; rejecting it instead",
                        exc_info=True)
            await message.reject()
            return
        await message.ack()

    async def inbound(message: RabbitMessage) -> None:
        raw = message.raw_message
        channel = str(raw.routing_key or "")
        exclusive = False
        if channel in accepted and needs_ownership_check(raw.reply_to, names.ns):
            try:
                exclusive = await exclusive_to_another_connection(broker, str(raw.reply_to))
            except Exception:  # the broker could not say: try again later, lose nothing
                log.warning("could not check reply_to %s; returning the message", raw.reply_to,
                            exc_info=True)
                await asyncio.sleep(0.5)
                await message.nack(requeue=True)
                return
        if reason := refusal(channel, raw.reply_to, accepted, names.ns,
                             exclusive_elsewhere=exclusive):
            await refuse(message, channel, reason)
            return
        headers = {k: str(v) for k, v in (message.headers or {}).items()
                   if k.lower() in _HEADERS}
        try:
            r = await http.post(f"/channels/{quote(channel, safe='')}/applications",
                                content=message.body,
                                headers=headers | {"Content-Type": "application/json"})
            answer = {"status": r.status_code, "body": r.json()}
        except Exception as exc:  # the endpoint answers everything; this is a last resort
            log.exception("channel AMQP submission from %s failed", channel)
            answer = {"status": 503, "body": {  # an RFC 7807 problem, as the endpoint's
                "type": "urn:nanjing-hub:problem:unavailable", "title": "Service Unavailable",
                "status": 503, "detail": type(exc).__name__, "code": "UNAVAILABLE"}}
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

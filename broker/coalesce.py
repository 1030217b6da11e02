"""Publishes asked for in one event-loop turn go out together: one lock, one write.

aiormq's ``basic_publish`` takes the channel lock, arms a timeout and a drain future and
queues one frame set per message; on the hub's route that bookkeeping was about half
of the publish cost (``bench/pipeline`` profile; the other half, marshalling the frames,
stays). Here each message still gets its own delivery tag and confirm future, registered
exactly as aiormq registers them, so confirms, returns (``mandatory``) and a closing
channel resolve our futures through aiormq's own code; only the per-message locking and
queueing is shared by the messages of a turn.

Relies on aiormq 7.2's channel internals (``delivery_tag``, ``confirmations``,
``message_id_delivery_tag``, ``lock``, ``write_queue``), pinned in ``requirements.lock``;
``tests/integration/broker/test_coalesce.py`` checks them against the real broker.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from aiormq.abc import ChannelFrame
from aiormq.exceptions import ChannelInvalidStateError
from pamqp.body import ContentBody
from pamqp.commands import Basic
from pamqp.frame import marshal
from pamqp.header import ContentHeader

__all__ = ["Coalescer"]


@dataclass(slots=True)
class _Pending:
    body: bytes
    exchange: str
    routing_key: str
    mandatory: bool
    properties: Basic.Properties
    confirm: asyncio.Future[Any]


class Coalescer:
    """A confirming aiormq channel whose publishes of one loop turn share a write."""

    def __init__(self, channel: Any) -> None:
        if not channel.publisher_confirms:
            raise ValueError("the coalescer needs a channel with publisher confirms")
        self._ch = channel
        self._pending: list[_Pending] = []
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def is_closed(self) -> bool:
        return bool(self._ch.is_closed)

    async def basic_publish(self, body: bytes, *, exchange: str = "", routing_key: str = "",
                            properties: Basic.Properties, mandatory: bool = False) -> Any:
        """Publish and return the broker's confirm frame (``Basic.Ack``); raises as
        aiormq does: ``PublishError`` for a returned mandatory message, ``DeliveryError``
        for a nack, the channel's close reason when it closes first."""
        if self._ch.is_closed:
            raise ChannelInvalidStateError(f"{self._ch!r} closed")
        if not properties.message_id:  # returns are matched to publishes by message id
            properties.message_id = uuid.uuid4().hex
        confirm = self._ch.create_future()  # rejected by aiormq when the channel closes
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._start_flush)
        self._pending.append(_Pending(body, exchange, routing_key, mandatory, properties,
                                      confirm))
        try:
            return await confirm
        except asyncio.CancelledError:
            if confirm.cancelled():  # our caller is being cancelled
                raise
            # aiormq rejects pending confirms with CancelledError when the channel is
            # closed from our side: that is a failed publish, not a cancelled caller
            raise ChannelInvalidStateError(f"{self._ch!r} closed") from None

    def _start_flush(self) -> None:
        task = asyncio.ensure_future(self._flush())
        self._tasks.add(task)  # held until done: the loop keeps only a weak reference
        task.add_done_callback(self._tasks.discard)

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        ch = self._ch
        ready: list[tuple[_Pending, bytes]] = []
        for p in batch:
            if p.confirm.done():  # its caller gave up before it went out: not sent
                continue
            try:
                ready.append((p, _marshal(p, ch.number, ch.max_content_size)))
            except Exception as exc:  # this message cannot be encoded; the others go
                p.confirm.set_exception(exc)
        if not ready:
            return
        try:
            async with ch.lock:
                tags: list[tuple[int, str]] = []
                for p, _ in ready:
                    ch.delivery_tag += 1
                    tag, mid = ch.delivery_tag, p.properties.message_id or ""
                    ch.confirmations[tag] = p.confirm
                    ch.message_id_delivery_tag[mid] = tag
                    tags.append((tag, mid))
                try:
                    await ch.write_queue.put(ChannelFrame(
                        payload=b"".join(data for _, data in ready), should_close=False))
                except BaseException:
                    # Not queued, so the broker never sees these: take the tags back.
                    ch.delivery_tag -= len(ready)
                    for tag, mid in tags:
                        ch.confirmations.pop(tag, None)
                        if ch.message_id_delivery_tag.get(mid) == tag:
                            ch.message_id_delivery_tag.pop(mid)
                    raise
        except BaseException as exc:
            for p, _ in ready:
                if not p.confirm.done():
                    p.confirm.set_exception(exc if isinstance(exc, Exception)
                                            else ConnectionError("publish cancelled"))
            if not isinstance(exc, Exception):
                raise
            return
        for (tag, mid), (p, _) in zip(tags, ready, strict=True):
            p.confirm.add_done_callback(_forget(ch, mid, tag))


def _marshal(p: _Pending, channel: int, frame_max: int) -> bytes:
    """One message's publish, header and body frames, as aiormq would write them."""
    frames: list[Any] = [
        Basic.Publish(exchange=p.exchange, routing_key=p.routing_key, mandatory=p.mandatory),
        ContentHeader(properties=p.properties, body_size=len(p.body))]
    if p.body:
        frames.extend(ContentBody(p.body[i:i + frame_max])
                      for i in range(0, len(p.body), frame_max))
    return b"".join(marshal(f, channel) for f in frames)


def _forget(ch: Any, mid: str, tag: int) -> Any:
    """Drop the message id -> tag entry once confirmed, as aiormq does for its own."""
    def done(_: asyncio.Future[Any]) -> None:
        if ch.message_id_delivery_tag.get(mid) == tag:
            ch.message_id_delivery_tag.pop(mid)
    return done


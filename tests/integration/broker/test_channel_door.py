"""The channel AMQP door on the real hub and broker (item 2): a crafted routing key or a
reply address that is not the sender's own reaches nothing; it is dead-lettered with
the reason into ``<ns>.dlq.channel.inbound``, and no queue of the hub gets an answer.

What the door posts in process is recorded at ``httpx.ASGITransport`` (the door's
only way into the app; the real servers of the stack do not use it), and a valid
submission sent after the crafted ones proves the recorder sees the door's calls.
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import aio_pika
import httpx
import pytest

from adapters.channels.auth import applications_target, signed_headers
from broker.channel_inbound import (
    HEADER_REASON,
    HEADER_REASON_CODE,
    HEADER_REFUSED_KEY,
    HEADER_REFUSED_REPLY_TO,
)
from broker.topology import INBOUND_ROUTE
from config.settings import load_settings
from simulators.core import CoreStore
from simulators.harness import fast_policies, running_stack
from tools.fixtures.generate_channels import ROOT

pytestmark = pytest.mark.integration


def _body(request_id: str) -> bytes:
    payload = json.loads((ROOT / "flexible_enroll.json").read_text(encoding="utf-8"))["payload"]
    return json.dumps({"type": "flexible_enroll", "request_id": request_id,
                       "payload": payload}, ensure_ascii=False).encode()


def _signed(secret: str, body: bytes) -> dict[str, str]:
    """online_hall's headers for a submission (the request the door hands it to)."""
    return signed_headers(secret, body, method="POST",
                          target=applications_target("online_hall"), channel="online_hall")


async def _depth(ch: aio_pika.abc.AbstractChannel, queue: str) -> int:
    q = await ch.declare_queue(queue, passive=True)
    return q.declaration_result.message_count or 0


async def test_crafted_routing_keys_and_foreign_reply_queues_reach_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    posted: list[str] = []
    handle = httpx.ASGITransport.handle_async_request

    async def recording(self: httpx.ASGITransport, request: httpx.Request) -> httpx.Response:
        posted.append(request.url.raw_path.decode())
        return await handle(self, request)

    monkeypatch.setattr(httpx.ASGITransport, "handle_async_request", recording)
    s = load_settings()
    store = CoreStore.seed(2, 4, rng_seed=random.randrange(10**9))
    async with running_stack(s, store=store, overrides=fast_policies(s)) as st:
        ns = st.settings.namespace
        secret = st.settings.channels["online_hall"].secret.get_secret_value()
        conn = await aio_pika.connect_robust(st.settings.amqp_url)
        async with conn:
            ch = await conn.channel()
            victim = await ch.declare_queue(f"{ns}.probe.victim", durable=True)
            inbox = await ch.declare_queue(f"x{ns}.partner.inbox", auto_delete=True)
            replies = await ch.declare_queue(exclusive=True)  # aio-pika names it amq_<uuid>
            direct: list[Any] = []
            pseudo = await ch.declare_queue("amq.rabbitmq.reply-to", passive=True)
            await pseudo.consume(direct.append, no_ack=True)
            door = await ch.get_exchange(f"{ns}.channels")
            unknown, hubs, shared = ("is not a configured channel", "is a queue of the hub itself",
                                     "is not a reply queue of the sender")
            crafted = [
                ("../admin/resend/employee", replies.name, unknown),
                ("online_hall/../../partners/tax/callback?", replies.name, unknown),
                ("my_nanjing/../../partners/core/events", replies.name, unknown),
                ("online_hall", victim.name, hubs),  # a named queue of the hub's namespace
                ("online_hall", f"{ns}.q.{INBOUND_ROUTE}", hubs),  # the door's own queue
                ("online_hall", f"{ns}.q.{st.hub.routes[0].name}", hubs),  # a hub work queue
                ("online_hall", inbox.name, shared),  # somebody's shared queue
                ("online_hall", "nobody.home", shared),  # no such queue
            ]
            for n, (key, reply_to, _) in enumerate(crafted):
                body = _body(f"CRAFT-{n}")
                await door.publish(aio_pika.Message(
                    body, headers=_signed(secret, body), reply_to=reply_to,
                    correlation_id=f"bad{n}", message_id=f"bad{n}",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT), routing_key=key)
            good = _body("DOOR-OK")
            await door.publish(aio_pika.Message(
                good, headers=_signed(secret, good), reply_to=replies.name,
                correlation_id="good"), routing_key="online_hall")
            good2 = _body("DOOR-OK-2")
            await door.publish(aio_pika.Message(
                good2, headers=_signed(secret, good2),
                reply_to="amq.rabbitmq.reply-to", correlation_id="direct"),
                routing_key="online_hall")

            dlq = f"{ns}.dlq.{INBOUND_ROUTE}"
            for _ in range(300):
                if await _depth(ch, dlq) >= len(crafted) and len(posted) == 2:
                    break
                await asyncio.sleep(0.05)
            answers: dict[str, Any] = {}
            for _ in range(300):
                if (m := await replies.get(fail=False)) is not None:
                    answers[str(m.correlation_id)] = json.loads(m.body)
                    await m.ack()
                elif "good" in answers and direct:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # any late answer to a crafted message would show now
            while (late := await replies.get(fail=False)) is not None:
                answers[str(late.correlation_id)] = json.loads(late.body)
                await late.ack()

            # only the valid submissions reached the endpoint, and only they were answered
            assert posted == ["/channels/online_hall/applications"] * 2, (posted, answers)
            assert list(answers) == ["good"] and answers["good"]["status"] == 202, answers
            assert [m.correlation_id for m in direct] == ["direct"]
            assert json.loads(direct[0].body)["status"] == 202
            assert await _depth(ch, victim.name) == 0
            assert await _depth(ch, inbox.name) == 0
            parked: dict[str, Any] = {}
            dlq_queue = await ch.declare_queue(dlq, passive=True)
            while (m := await dlq_queue.get(fail=False)) is not None:
                parked[str(m.message_id)] = m.headers
                await m.ack()
            assert set(parked) == {f"bad{n}" for n in range(len(crafted))}, parked
            for n, (key, reply_to, why) in enumerate(crafted):
                h = parked[f"bad{n}"]
                assert h[HEADER_REASON_CODE] == "REFUSED"
                assert h[HEADER_REFUSED_KEY] == key and h[HEADER_REFUSED_REPLY_TO] == reply_to
                assert why in str(h[HEADER_REASON]), h
                assert "x-api-key" not in h
            await ch.queue_delete(victim.name)
            await ch.queue_delete(inbox.name)
        assert await st.hub.deps.applications.count() == 2  # type: ignore[union-attr]

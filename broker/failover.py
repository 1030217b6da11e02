"""Client-side failover over the nodes of a RabbitMQ cluster.

FastStream's ``RabbitBroker`` and aio-pika's robust connection take ONE URL and,
after a loss, reconnect to that same node for ever. With a cluster (quorum queues
replicated on every node) any running node serves every queue, so the hub picks
the first node that accepts a TCP connection each time it builds its broker
client: at start, and whenever the watchdog (``bootstrap.hub.Hub._watch``)
rebuilds a client whose node went away. Unacked deliveries of the lost
connection return to their queues and are absorbed by idempotency.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from urllib.parse import urlsplit

__all__ = ["node_address", "reachable_node"]


def node_address(url: str) -> tuple[str, int]:
    """(host, port) of an AMQP URL; the port defaults by scheme (5672, amqps 5671)."""
    parts = urlsplit(url)
    default = 5671 if parts.scheme == "amqps" else 5672
    return parts.hostname or "localhost", parts.port or default


async def _answers(url: str, timeout_s: float) -> bool:
    host, port = node_address(url)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (TimeoutError, OSError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def reachable_node(primary: str, others: Sequence[str] = (),
                         timeout_s: float = 1.0) -> str:
    """The first of ``primary, *others`` whose listener answers; ``primary`` when none
    does (the caller's connect then fails and its retry loop tries again later).

    Without ``others`` nothing is probed: a single-broker hub behaves as before."""
    if not others:
        return primary
    for url in (primary, *others):
        if await _answers(url, timeout_s):
            return url
    return primary

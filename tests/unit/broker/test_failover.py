"""broker.failover: the first cluster node that answers, the primary first."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from broker.failover import node_address, reachable_node


def test_node_address_defaults_the_port_by_scheme() -> None:
    assert node_address("amqp://guest:guest@10.0.0.5:5682/") == ("10.0.0.5", 5682)
    assert node_address("amqp://rabbit-2/") == ("rabbit-2", 5672)
    assert node_address("amqps://rabbit-3/vh") == ("rabbit-3", 5671)


@pytest.fixture
async def listener() -> AsyncIterator[int]:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def _closed_port() -> int:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    return port


async def test_takes_the_first_node_that_answers(listener: int) -> None:
    dead = f"amqp://127.0.0.1:{await _closed_port()}/"
    live = f"amqp://127.0.0.1:{listener}/"
    assert await reachable_node(dead, [dead, live], timeout_s=0.5) == live
    assert await reachable_node(live, [dead], timeout_s=0.5) == live  # primary first


async def test_primary_when_nothing_answers_or_no_cluster() -> None:
    dead = f"amqp://127.0.0.1:{await _closed_port()}/"
    assert await reachable_node(dead, [dead], timeout_s=0.5) == dead
    assert await reachable_node("amqp://unprobed:1/") == "amqp://unprobed:1/"  # no probe


def test_settings_take_failover_nodes_from_a_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from config.settings import HubSettings

    monkeypatch.setenv("HUB_AMQP_FAILOVER_URLS", '["amqp://r2:5672/", "amqp://r3:5672/"]')
    assert HubSettings().amqp_failover_urls == ("amqp://r2:5672/", "amqp://r3:5672/")
    monkeypatch.setenv("HUB_AMQP_FAILOVER_URLS", '["http://r2:5672/"]')
    with pytest.raises(ValidationError, match="amqp_failover_urls"):
        HubSettings()

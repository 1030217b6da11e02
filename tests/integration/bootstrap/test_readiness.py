"""Liveness and readiness of a running hub (real RabbitMQ, Redis, SQL, simulators):
``/health/ready`` is 200 while the broker, Redis and the database answer and 503 while
one does not, and back to 200 when it returns; ``/health`` stays 200 throughout (the
process serves: a restart would not help) but says ``degraded`` and names the part ``down``.
The broker is reached through a proxy the test cuts: the shared RabbitMQ is not touched."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import httpx
import pytest

from config.settings import load_settings
from simulators.harness import running_stack
from tests.support.redis_server import OwnRedis

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
PG_PORT = 5433
PG_ADMIN = os.environ.get("HUB_TEST_PG", f"postgresql://hub:hub@127.0.0.1:{PG_PORT}/hub")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _until(http: httpx.AsyncClient, url: str, status: int, timeout: float = 20) -> dict:
    """The readiness answer once it has ``status`` (the hub notices within a check)."""
    deadline = time.monotonic() + timeout
    while True:
        r = await http.get(url)
        if r.status_code == status or time.monotonic() > deadline:
            assert r.status_code == status, r.text
            return dict(r.json())
        await asyncio.sleep(0.2)


# -- the broker behind the same kind of proxy, cut and restored ----------------------------

async def test_a_hub_is_ready_and_alive_and_unready_while_its_broker_is_unreachable() -> None:
    """Healthy: ready, alive, ``ok``. Broker cut: readiness 503 naming the broker, liveness
    still 200 but ``degraded`` with the broker in ``down`` (never a bare "ok" while
    degraded). Broker back: ready again. (One stack: the hub reaches RabbitMQ through a
    proxy the test cuts; the shared broker is not touched.)"""
    from urllib.parse import urlsplit

    s = load_settings()
    amqp = urlsplit(s.amqp_url)
    proxy = CuttableProxy(amqp.port or 5672)
    await proxy.restore()
    url = f"{amqp.scheme}://{amqp.username}:{amqp.password}@127.0.0.1:{proxy.port}{amqp.path}"
    try:
        async with running_stack(s, overrides={"amqp_url": url}) as st, \
                httpx.AsyncClient(timeout=10) as http:
            ready = f"{st.hub_url}/health/ready"
            r = await http.get(ready)
            assert r.status_code == 200
            assert r.json() == {"status": "ready", "broker": True, "redis": True,
                                "database": True}
            assert (await http.get(f"{st.hub_url}/health")).json() == {
                "status": "ok", "broker": True, "redis": True, "database": True}
            assert (await http.get(f"{st.hub_url}/health/live")).json() == {"status": "alive"}
            await proxy.cut()
            got = await _until(http, ready, 503)
            assert got == {"status": "unavailable", "broker": False, "redis": True,
                           "database": True}
            alive = await http.get(f"{st.hub_url}/health")
            assert alive.status_code == 200
            assert alive.json()["status"] == "degraded" and alive.json()["down"] == ["broker"]
            await proxy.restore()
            assert (await _until(http, ready, 200, timeout=40))["broker"] is True
    finally:
        await proxy.cut()


# -- Redis of the test's own, stopped and started again ------------------------------------

async def test_a_stopped_redis_makes_the_hub_unready_until_it_is_back() -> None:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.skip("needs redis-server and redis-cli")
    redis = OwnRedis()
    redis.start()
    try:
        s = load_settings()
        async with running_stack(s, overrides={"redis_url": redis.url}) as st, \
                httpx.AsyncClient(timeout=10) as http:
            ready = f"{st.hub_url}/health/ready"
            assert (await _until(http, ready, 200))["redis"] is True
            await asyncio.to_thread(redis.stop)
            got = await _until(http, ready, 503)
            assert got == {"status": "unavailable", "broker": True, "redis": False,
                           "database": True}
            assert (await http.get(f"{st.hub_url}/health")).status_code == 200  # alive
            assert (await http.get(f"{st.hub_url}/health")).json()["down"] == ["redis"]
            assert (await http.get(f"{st.hub_url}/health/live")).status_code == 200
            await asyncio.to_thread(redis.start)
            assert (await _until(http, ready, 200))["redis"] is True
    finally:
        redis.stop()
        shutil.rmtree(redis.dir, ignore_errors=True)


# -- PostgreSQL behind a proxy the test cuts -----------------------------------------------

class CuttableProxy:
    """127.0.0.1:<port> -> PostgreSQL; ``cut`` refuses new connections and drops the open
    ones (the database unreachable), ``restore`` listens again on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = _free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def restore(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for w in list(self._writers):
            w.close()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_w}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with suppress(Exception):
                dst.close()

        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))
        self._writers -= {writer, up_w}


@asynccontextmanager
async def _fresh_pg_database() -> AsyncIterator[str]:
    import asyncpg

    if not _port_open(PG_PORT):
        if os.environ.get("CI"):
            pytest.fail(f"CI: PostgreSQL is not running on {PG_PORT} (make postgres)")
        pytest.skip(f"PostgreSQL not running on {PG_PORT} (make postgres)")
    name = f"ready_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield name
    finally:
        admin = await asyncpg.connect(PG_ADMIN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def test_an_unreachable_database_makes_the_hub_unready_until_it_is_back() -> None:
    async with _fresh_pg_database() as name:
        proxy = CuttableProxy(PG_PORT)
        await proxy.restore()
        db = f"postgresql+asyncpg://hub:hub@127.0.0.1:{proxy.port}/{name}"
        try:
            async with running_stack(load_settings(), database_url=db) as st, \
                    httpx.AsyncClient(timeout=10) as http:
                ready = f"{st.hub_url}/health/ready"
                assert (await _until(http, ready, 200))["database"] is True
                await proxy.cut()
                t0 = time.monotonic()
                got = await _until(http, ready, 503)
                assert got == {"status": "unavailable", "broker": True, "redis": True,
                               "database": False}
                assert time.monotonic() - t0 < 10  # a short timeout, not the pool's
                alive = await http.get(f"{st.hub_url}/health")
                assert alive.status_code == 200 and alive.json()["down"] == ["database"]
                await proxy.restore()
                assert (await _until(http, ready, 200))["database"] is True
        finally:
            await proxy.cut()


"""Fault tests h, i, j: the hub's own stores fail mid-batch.

h. PostgreSQL (``make postgres``) is stopped for 20 s in the middle of a batch
   and started again;
i. Redis is shut down without saving (every idempotency key and ordering
   ticket lost) and started again 5 s later;
j. combined: the hub is killed twice, Redis flushed, RabbitMQ restarted, while
   tax fails 25 % of calls transiently.

Core keeps sending through every fault (a refused post is sent again). Each
enrollment must end delivered exactly once: every transaction reaches an
outcome (delivered, or duplicate for a re-post), no side effect twice at tax or
core (counted at the simulators), nothing lost, nothing dead-lettered.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.integration.faults.hubproc import (
    ROOT,
    BatchResult,
    FaultRun,
    batch_through_fault,
    post_until_accepted,
    start_hub,
    wait_http,
)
from tests.support.redis_server import OwnRedis

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N = int(os.environ.get("FAULT_MESSAGES", "500"))
PG_ADMIN = os.environ.get("HUB_TEST_PG", "postgresql://hub:hub@127.0.0.1:5433/hub")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _check(res: BatchResult, name: str, *, replays: int = 0, forgets: bool = False) -> None:
    """Every transaction has an outcome and every enrollment reached tax and core once.

    ``forgets``: the hub lost its keys (Redis flushed), so a re-post core sent while it
    could not know better is a transaction of its own that ends *delivered* as a replay:
    tax answers it under its first serial and core under the same sync serial
    (``contracts.messages.core_sync_serial``), so the partners still see one effect each.
    """
    print(res.report(name, N))
    assert res.tax["replays"] >= replays, res.tax
    delivered = res.counts.get("delivered", 0)
    assert delivered == N or (forgets and delivered > N), res.counts
    assert set(res.counts) <= {"delivered", "duplicate"}, res.counts  # every one has an outcome
    assert res.tax["distinct"] == N and not res.tax["duplicates"]
    assert res.core["effects"] == N and not res.core["duplicates"], res.core


# -- h. PostgreSQL restart -------------------------------------------------------------

@asynccontextmanager
async def _fresh_pg_database() -> AsyncIterator[str]:
    import asyncpg

    if not _port_open(5433):
        if os.environ.get("CI"):
            pytest.fail("CI: PostgreSQL is not running on 5433 (make postgres)")
        pytest.skip("PostgreSQL not running on 5433 (make postgres)")
    name = f"fault_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{url}/{name}"
    finally:
        if not _port_open(5433):
            await asyncio.to_thread(_postgres, "start")
        admin = await asyncpg.connect(PG_ADMIN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def _postgres(action: str) -> None:
    args = ["bash", "scripts/postgres.sh"] + (["stop"] if action == "stop" else [])
    subprocess.run(args, cwd=ROOT, check=True, timeout=120, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


async def _restart_postgres(_run: FaultRun) -> None:
    await asyncio.to_thread(_postgres, "stop")
    await asyncio.sleep(20)
    await asyncio.to_thread(_postgres, "start")


async def test_database_restart_mid_batch_loses_duplicates_and_wedges_nothing(
        tmp_path: Path) -> None:
    async with _fresh_pg_database() as db:
        res = await batch_through_fault(tmp_path, "pg", N, _restart_postgres, db=db)
    _check(res, "database-restart test")


# -- i. Redis restart, keys lost -------------------------------------------------------

@asynccontextmanager
async def _own_redis() -> AsyncIterator[OwnRedis]:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.skip("needs redis-server and redis-cli")
    r = OwnRedis()
    r.start()
    try:
        yield r
    finally:
        r.stop()


async def test_redis_restart_mid_batch_losing_every_key_makes_no_duplicate(
        tmp_path: Path) -> None:
    async with _own_redis() as redis:

        async def restart(run: FaultRun) -> None:
            await asyncio.to_thread(redis.stop)
            await asyncio.sleep(5)
            await asyncio.to_thread(redis.start)
            # Core re-posts what it already sent before the fault (it lost our answers):
            # the hub no longer remembers those keys, tax must recognise the serials.
            await post_until_accepted(run.hub_url, (run.events or [])[:100])

        res = await batch_through_fault(tmp_path, "redis", N, restart,
                                        env={"HUB_REDIS_URL": redis.url})
    _check(res, "redis-restart test", replays=1, forgets=True)


# -- j. everything at once -------------------------------------------------------------

def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, timeout=120,
                   stdout=subprocess.DEVNULL)


async def _kill_and_restart(run: FaultRun) -> None:
    run.hub.send_signal(signal.SIGKILL)
    run.hub.wait(10)
    run.hub = start_hub(run.env)
    await wait_http(f"{run.hub_url}/health")


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs a local RabbitMQ node")
async def test_combined_faults_lose_nothing_and_duplicate_nothing(tmp_path: Path) -> None:
    async with _own_redis() as redis:

        async def havoc(run: FaultRun) -> None:
            await _kill_and_restart(run)
            await asyncio.sleep(1)
            await asyncio.to_thread(redis.flush)
            await asyncio.sleep(1)
            await asyncio.to_thread(_rabbitmqctl, "stop_app")
            await asyncio.sleep(2)
            await asyncio.to_thread(_rabbitmqctl, "start_app")
            await asyncio.to_thread(_rabbitmqctl, "await_startup")
            await asyncio.sleep(2)
            await _kill_and_restart(run)

        res = await batch_through_fault(tmp_path, "mix", N, havoc, tax_5xx_rate=0.25,
                                        env={"HUB_REDIS_URL": redis.url}, settle_s=300)
    _check(res, "combined test", forgets=True)

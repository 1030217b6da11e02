"""Fault test d: RabbitMQ is restarted in the middle of a batch.

Every message must still reach exactly one outcome, with no side effect twice
(counted at the simulators). The hub reconnects by itself (robust connection);
deliveries that were unacked when the broker went away are delivered again and
absorbed by idempotency and by the partners' serial deduplication.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from adapters.core.simulator import CoreStore
from adapters.core.simulator import create_app as core_app
from adapters.simkit import Fault, SimState
from adapters.tax.simulator import create_app as tax_app
from broker.topology import Names, delete_topology
from config.settings import load_settings
from storage.journal import Journal, make_engine
from tests.integration.faults.hubproc import (
    ALL_ROUTES,
    hub_env,
    post_until_accepted,
    start_hub,
    stop_hub,
    wait_http,
)
from tools.harness import _free_port
from tools.serving import serve_app

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N = int(os.environ.get("FAULT_MESSAGES", "2000"))


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, timeout=120,
                   stdout=subprocess.DEVNULL)


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs a local RabbitMQ node")
async def test_broker_restart_mid_batch_exactly_one_outcome_each(tmp_path: Path) -> None:
    base = load_settings()
    ns = f"rmq{uuid.uuid4().hex[:8]}"
    db = f"sqlite+aiosqlite:///./.run/{ns}.db"
    port = _free_port()
    hub_url = f"http://127.0.0.1:{port}"
    store = CoreStore.seed(20, N, rng_seed=int(time.time()))
    core_state, tax_state = SimState(), SimState()
    tax_state.faults[:] = [Fault(kind="slow", delay_s=0.05, operation="EmployeeEnroll")]
    counts: dict[str, int] = {}
    async with serve_app(core_app(core_state, store=store)) as core_url, \
            serve_app(tax_app(tax_state, callback_url=f"{hub_url}/partners/tax/callback",
                                     reject_suffixes=())) as tax:
        hub = start_hub(hub_env(tmp_path, ns=ns, db=db, port=port, core_url=core_url,
                                tax_url=f"{tax}/tax/ws", callback_base=hub_url))
        try:
            await wait_http(f"{hub_url}/health")
            events = [store.next_event() for _ in range(N)]
            emitter = asyncio.create_task(post_until_accepted(hub_url, events))
            while tax_state.log.summary()["effects"] < N // 4:
                await asyncio.sleep(0.02)
            restarted_at = tax_state.log.summary()["effects"]
            await asyncio.to_thread(_rabbitmqctl, "stop_app")
            await asyncio.sleep(2)
            await asyncio.to_thread(_rabbitmqctl, "start_app")
            await asyncio.to_thread(_rabbitmqctl, "await_startup")
            await emitter  # core kept sending; refused posts were sent again
            journal = Journal(make_engine(db))
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                counts = await journal.status_counts()
                if counts.get("delivered", 0) >= N and "received" not in counts \
                        and "retrying" not in counts:
                    break
                await asyncio.sleep(0.5)
            await journal.engine.dispose()
        finally:
            stop_hub(hub)
            await delete_topology(base.amqp_url, Names(ns),
                                  ALL_ROUTES,
                                  (300, 600, 1200, 2400))
    tax_sum, core_sum = tax_state.log.summary(), core_state.log.summary()
    print(f"\nbroker-restart test: sent={N} restarted_after_tax_effects={restarted_at} "
          f"tax_effects={tax_sum['effects']} tax_duplicates={len(tax_sum['duplicates'])} "
          f"tax_replays_absorbed={tax_sum['replays']} core_effects={core_sum['effects']} "
          f"core_duplicates={len(core_sum['duplicates'])} final={counts}")
    assert counts.get("delivered", 0) == N, counts
    assert set(counts) <= {"delivered", "duplicate"}, counts
    assert tax_sum["distinct"] == N and not tax_sum["duplicates"]
    assert not core_sum["duplicates"]

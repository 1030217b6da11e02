"""Fault test c: the hub is killed with SIGKILL mid-batch and restarted.

Each message must reach exactly one outcome and no side effect may happen
twice. Side effects are counted at the tax simulator (per business key), not
in the hub's own log.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from adapters.core.simulator import CoreStore, emit_enrollments
from adapters.core.simulator import create_app as core_app
from adapters.simkit import Fault, SimState
from adapters.tax.simulator import create_app as tax_app
from broker.topology import Names, delete_topology
from config.settings import load_settings
from storage.journal import Journal, make_engine
from tools.harness import _free_port
from tools.serving import serve_app

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
N = int(os.environ.get("FAULT_MESSAGES", "2000"))
_LOG = ROOT / ".run" / "fault-hub.log"


def _start_hub(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "main.py", "run"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=_LOG.open("ab"))


async def _wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as c:
        while time.monotonic() < deadline:
            try:
                if (await c.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError(url)


async def test_sigkill_mid_batch_then_restart_exactly_one_outcome_each() -> None:
    base = load_settings()
    ns = f"kill{uuid.uuid4().hex[:8]}"
    db = f"sqlite+aiosqlite:///./.run/{ns}.db"
    port = _free_port()
    hub_url = f"http://127.0.0.1:{port}"
    store = CoreStore.seed(20, N, rng_seed=int(time.time()))
    core_state, tax_state = SimState(), SimState()
    # slow tax a little so the kill lands while work is in flight
    tax_state.faults[:] = [Fault(kind="slow", delay_s=3.0, operation="EmployeeEnroll")]
    async with serve_app(core_app(core_state, store=store)) as core_url, \
            serve_app(tax_app(tax_state, callback_url=f"{hub_url}/partners/tax/callback")) as tax:
        env = {**os.environ, "HUB_NAMESPACE": ns, "HUB_DATABASE_URL": db,
               "HUB_HTTP_PORT": str(port), "HUB_CORE_URL": core_url,
               "HUB_TAX_URL": f"{tax}/tax/ws", "HUB_CALLBACK_BASE": hub_url,
               "HUB_INFLIGHT_LOCK_S": "5", "HUB_DELAY_TIERS_MS": "[300,1000,3000]"}
        hub = _start_hub(env)
        try:
            await _wait_http(f"{hub_url}/health")
            async with httpx.AsyncClient(timeout=30) as client:
                emit = asyncio.create_task(
                    emit_enrollments(hub_url, store, N, client=client, concurrency=20))
                await emit  # all events accepted by the hub (confirmed) before the kill
            # tax was slow while core emitted; now let it run and kill the hub mid-flow
            tax_state.faults[0] = Fault(kind="slow", delay_s=0.02, operation="EmployeeEnroll")
            start = tax_state.log.summary()["effects"]
            while tax_state.log.summary()["effects"] < min(N - 50, start + N // 4):
                await asyncio.sleep(0.02)
            killed_at = tax_state.log.summary()["effects"]
            hub.send_signal(signal.SIGKILL)
            hub.wait(10)
            hub = _start_hub(env)
            await _wait_http(f"{hub_url}/health")
            journal = Journal(make_engine(db))
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                counts = await journal.status_counts()
                if counts.get("delivered", 0) + counts.get("rejected", 0) + \
                        counts.get("dead", 0) >= N:
                    break
                await asyncio.sleep(0.5)
            await journal.engine.dispose()
        finally:
            hub.send_signal(signal.SIGTERM)
            try:
                hub.wait(20)
            except subprocess.TimeoutExpired:
                hub.kill()
            s = base.model_copy(update={"namespace": ns})
            await delete_topology(s.amqp_url, Names(ns),
                                  ["tax.employee", "tax.feedback", "core.sync"], (300, 1000, 3000))
    tax_sum = tax_state.log.summary()
    core_sum = core_state.log.summary()
    print(f"\nkill test: sent={N} killed_after_tax_effects={killed_at} "
          f"tax_effects={tax_sum['effects']} tax_duplicates={len(tax_sum['duplicates'])} "
          f"tax_replays_absorbed={tax_sum['replays']} core_effects={core_sum['effects']} "
          f"core_duplicates={len(core_sum['duplicates'])} final={counts}")
    assert counts.get("delivered", 0) == N, counts
    assert tax_sum["distinct"] == N and not tax_sum["duplicates"]
    assert not core_sum["duplicates"]

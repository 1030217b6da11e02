"""Two hub processes on a 3-node RabbitMQ cluster; one broker node stops mid-batch.

The cluster comes from the project's own script (scripts/rabbit_cluster.sh: nodes
rabbit1..3@localhost on 5681-5683). Both hubs take node 1 as ``amqp_url`` and
nodes 2 and 3 as ``amqp_failover_urls`` (broker.failover), so stopping node 1's
broker app takes away both hubs' connection and the leaders of the quorum queues
they declared there. Core keeps sending through both hubs (a refused post is sent
again); tax counts what it really did: every event must land exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.core.translate import enrollment_to_event
from adapters.signing import SignedAuth
from broker.topology import Names
from contracts.national import NationalRequest, make_msgid, now_cst
from simulators.core import CoreStore
from simulators.core import create_app as core_app
from simulators.harness import _free_port
from simulators.serving import serve_app
from simulators.simkit import Fault, SimState
from simulators.tax import create_app as tax_app
from storage.journal import Journal, make_engine
from tests.integration.faults.hubproc import (
    hub_env,
    partner_secret,
    start_hub,
    stop_hub,
    wait_http,
)

pytestmark = [pytest.mark.cluster, pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "rabbit_cluster.sh"
N = int(os.environ.get("HUB_CLUSTER_TEST_N", "300"))
NODE1 = "rabbit1@localhost"
BIN = Path(os.environ.get("RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))  # as the script


def _script(*args: str) -> str:
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, check=True, text=True,
                          capture_output=True, timeout=300).stdout


def _ctl(node: str, *args: str) -> str:
    """rabbitmqctl against one node of the test cluster (its own cookie under .run)."""
    env = {**os.environ, "HOME": str(ROOT / ".run" / "cluster" / "home")}
    return subprocess.run([str(BIN / "rabbitmqctl"), "-q", "-n", node, *args],
                          env=env, check=True, text=True, capture_output=True,
                          timeout=120).stdout


@pytest.fixture(scope="module")
def cluster() -> Iterator[list[str]]:
    if not (BIN / "rabbitmq-server").exists():  # the Debian package (scripts/services.sh)
        reason = f"no RabbitMQ server scripts in {BIN} to start cluster nodes with"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    t0 = time.monotonic()
    _script("start")
    urls = _script("urls").strip().split(",")
    print(f"\ncluster: 3 nodes up and clustered in {time.monotonic() - t0:.1f}s")
    try:
        yield urls
    finally:
        _script("stop")


def _quorum_members(queue: str) -> dict[str, Any]:
    rows = json.loads(_ctl(NODE1, "list_queues", "name", "type", "members",
                           "--formatter", "json") or "[]")
    return next((r for r in rows if r["name"] == queue), {})


async def _post_all(hub_urls: list[str], events: list[Any], concurrency: int = 20) -> int:
    """Send the events as core does (signed), alternating hubs; a refused or failed post
    goes again (to the other hub). Returns how many posts had to be sent again."""
    sem = asyncio.Semaphore(concurrency)
    retries = 0
    async with httpx.AsyncClient(timeout=10,
                                 auth=SignedAuth("core", partner_secret("core"))) as client:

        async def one(i: int, event: Any) -> None:
            nonlocal retries
            req = NationalRequest(infno="H2101", msgid=make_msgid("NJYBCORE0001", now_cst(), i),
                                  input={"data": enrollment_to_event(event)})
            body = req.model_dump(mode="json", exclude_none=True)
            async with sem:
                for attempt in range(10_000):
                    url = hub_urls[(i + attempt) % len(hub_urls)]
                    try:
                        r = await client.post(f"{url}/partners/core/events", json=body)
                        if r.status_code == 200:
                            return
                    except httpx.HTTPError:
                        pass
                    retries += 1
                    await asyncio.sleep(0.2)

        await asyncio.gather(*(one(i, e) for i, e in enumerate(events)))
    return retries


async def test_two_hubs_survive_a_broker_node_stopping_mid_batch(
        cluster: list[str], tmp_path: Path) -> None:
    node1, *others = cluster
    ns = f"clu{uuid.uuid4().hex[:8]}"
    db = f"sqlite+aiosqlite:///./.run/{ns}.db"
    ports = [_free_port(), _free_port()]
    hub_urls = [f"http://127.0.0.1:{p}" for p in ports]
    store = CoreStore.seed(20, N, rng_seed=int(time.time()))
    core_state, tax_state = SimState(), SimState()
    tax_state.faults[:] = [Fault(kind="slow", delay_s=0.02, operation="EmployeeEnroll")]
    counts: dict[str, int] = {}
    timings: dict[str, float] = {}
    procs = []
    stopped = False
    async with serve_app(core_app(core_state, store=store)) as core_url, \
            serve_app(tax_app(tax_state, callback_url=f"{hub_urls[0]}/partners/tax/callback",
                              callback_secret=partner_secret("tax"),
                              reject_suffixes=())) as tax:
        try:
            t0 = time.monotonic()
            for port in ports:  # one at a time: the first migrates the database
                env = hub_env(tmp_path, ns=ns, db=db, port=port, core_url=core_url,
                              tax_url=f"{tax}/tax/ws", callback_base=hub_urls[0]) | {
                    "HUB_AMQP_URL": node1, "HUB_AMQP_FAILOVER_URLS": json.dumps(others)}
                procs.append(start_hub(env))
                await wait_http(f"http://127.0.0.1:{port}/health")
            timings["hubs_up_s"] = time.monotonic() - t0
            tax_queue = Names(ns).queue("tax.employee")
            before = await asyncio.to_thread(_quorum_members, tax_queue)

            events = [store.next_event() for _ in range(N)]
            t1 = time.monotonic()
            emitter = asyncio.create_task(_post_all(hub_urls, events))
            while tax_state.log.summary()["effects"] < N // 4:
                await asyncio.sleep(0.02)
            fault_at = tax_state.log.summary()["effects"]
            t_fault = time.monotonic()
            await asyncio.to_thread(_ctl, NODE1, "stop_app")  # node 1's broker goes away
            stopped = True
            t_down = time.monotonic()
            timings["stop_app_s"] = t_down - t_fault
            down_at = tax_state.log.summary()["effects"]
            while tax_state.log.summary()["effects"] < min(N, down_at + 10):  # flowing again
                await asyncio.sleep(0.05)
            timings["failover_s"] = time.monotonic() - t_down
            retries = await emitter
            ports_now = (await asyncio.to_thread(_ctl, "rabbit2@localhost", "list_connections",
                                                 "port")).split()
            journal = Journal(make_engine(db))
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                counts = await journal.status_counts()
                if counts.get("delivered", 0) >= N and not set(counts) - {"delivered",
                                                                           "duplicate"}:
                    break
                await asyncio.sleep(0.5)
            await journal.engine.dispose()
            timings["batch_s"] = time.monotonic() - t1
        finally:
            for p in procs:
                stop_hub(p)
            if stopped:  # leave the cluster whole for a next test; `stop` removes it anyway
                await asyncio.to_thread(_ctl, NODE1, "start_app")
    tax = tax_state.log.summary()
    print(f"\ncluster test: sent={N} stopped_node1_after_tax_effects={fault_at} "
          f"tax_effects={tax['effects']} tax_distinct={tax['distinct']} "
          f"tax_duplicates={len(tax['duplicates'])} tax_replays_absorbed={tax['replays']} "
          f"connections_on_nodes_2_3={sum(p in {'5682', '5683'} for p in ports_now)} "
          f"posts_sent_again={retries} final={counts} "
          + " ".join(f"{k}={v:.1f}" for k, v in timings.items()))
    # the tax queue is a quorum queue with a member on each of the three nodes
    assert before.get("type") == "quorum", before
    assert sorted(before.get("members", [])) == [f"rabbit{n}@localhost" for n in (1, 2, 3)]
    assert 0 < fault_at < N  # the node stopped mid-batch
    # both hubs moved to the surviving nodes (at least one connection each)
    assert sum(p in {"5682", "5683"} for p in ports_now) >= 2, ports_now
    assert counts.get("delivered", 0) == N, counts  # none lost, none parked
    assert not set(counts) - {"delivered", "duplicate"}, counts
    assert tax["effects"] == N and tax["distinct"] == N  # each once at the partner
    assert not tax["duplicates"]

"""Run real hub processes (``python main.py run``) for the fault tests."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[3]
LOG = ROOT / ".run" / "fault-hub.log"


def _all_routes() -> list[str]:
    from routes.lanes import ROUTES
    return [r.name for r in ROUTES]


ALL_ROUTES = _all_routes()

FAST_TOML = """
delay_tiers_ms = [300, 600, 1200, 2400]
inflight_lock_s = 5

[partners.core]
protocol = "http-json"
endpoint = "http://127.0.0.1:1"
timeout_s = 2.0
[partners.core.policies.default]
max_attempts = 10
max_age_s = 3600
delays_ms = [300, 600, 1200, 2400]

[partners.tax]
protocol = "soap"
endpoint = "http://127.0.0.1:1/tax/ws"
timeout_s = 2.0
[partners.tax.policies.default]
max_attempts = 10
max_age_s = 3600
delays_ms = [300, 600, 1200, 2400]
"""


def hub_env(tmp: Path, *, ns: str, db: str, port: int, core_url: str, tax_url: str,
            callback_base: str) -> dict[str, str]:
    settings = tmp / f"{ns}.toml"
    settings.write_text(FAST_TOML, encoding="utf-8")
    return {**os.environ, "HUB_ENV": "development",  # simulators, development secrets
            "HUB_SETTINGS_FILE": str(settings), "HUB_NAMESPACE": ns,
            "HUB_DATABASE_URL": db, "HUB_HTTP_PORT": str(port), "HUB_CORE_URL": core_url,
            "HUB_TAX_URL": tax_url, "HUB_CALLBACK_BASE": callback_base}


def start_hub(env: dict[str, str]) -> subprocess.Popen[bytes]:
    LOG.parent.mkdir(exist_ok=True)
    return subprocess.Popen([sys.executable, "main.py", "run"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=LOG.open("ab"))


def stop_hub(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def wait_http(url: str, timeout: float = 60) -> None:
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


def partner_secret(name: str) -> str:
    """The secret a hub started by ``start_hub`` checks ``name``'s signatures with: its
    settings file names no secrets, so both sides read the same default (or the same
    ``HUB_PARTNERS__<NAME>__SECRET`` of this environment)."""
    from config.settings import load_settings

    return load_settings().partners[name].secret.get_secret_value()


async def post_until_accepted(hub_url: str, events: list[Any], concurrency: int = 20) -> None:
    """Send core events as core does (signed): a refused or failed post is sent again."""
    from adapters.core.translate import enrollment_to_event
    from adapters.signing import SignedAuth
    from contracts.national import NationalRequest, make_msgid, now_cst

    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=10,
                                 auth=SignedAuth("core", partner_secret("core"))) as client:

        async def one(i: int, event: Any) -> None:
            req = NationalRequest(infno="H2101", msgid=make_msgid("NJYBCORE0001", now_cst(), i),
                                  input={"data": enrollment_to_event(event)})
            body = req.model_dump(mode="json", exclude_none=True)
            async with sem:
                while True:
                    try:
                        r = await client.post(f"{hub_url}/partners/core/events", json=body)
                        if r.status_code == 200:
                            return
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.2)

        await asyncio.gather(*(one(i, e) for i, e in enumerate(events)))


@dataclass
class FaultRun:
    """A hub process under test; a fault may replace ``hub`` (e.g. after a kill)."""

    env: dict[str, str]
    hub: subprocess.Popen[bytes]
    hub_url: str
    events: list[Any] | None = None
    """What core sends in this run (a fault may send some of them again)."""


@dataclass
class BatchResult:
    counts: dict[str, int]
    tax: dict[str, Any]
    core: dict[str, Any]
    fault_at: int

    def report(self, name: str, n: int) -> str:
        return (f"\n{name}: sent={n} fault_after_tax_effects={self.fault_at} "
                f"tax_effects={self.tax['effects']} tax_duplicates={len(self.tax['duplicates'])} "
                f"tax_replays_absorbed={self.tax['replays']} "
                f"core_effects={self.core['effects']} "
                f"core_duplicates={len(self.core['duplicates'])} final={self.counts}")


async def batch_through_fault(tmp_path: Path, prefix: str, n: int,
                              inject: Callable[[FaultRun], Awaitable[None]], *,
                              db: str | None = None, env: dict[str, str] | None = None,
                              tax_5xx_rate: float = 0.0,
                              settle_s: float = 240) -> BatchResult:
    """Core sends ``n`` enrollments through a real hub process; ``inject`` strikes once
    a quarter of them reached tax; returns what the simulators counted.

    ``db`` another database (e.g. a fresh PostgreSQL database), ``env`` more hub
    settings (e.g. a Redis of the test's own), ``tax_5xx_rate`` tax failing
    transiently on top of the fault."""
    from broker.topology import Names, delete_topology
    from config.settings import load_settings
    from simulators.core import CoreStore
    from simulators.core import create_app as core_app
    from simulators.harness import _free_port
    from simulators.serving import serve_app
    from simulators.simkit import Fault, SimState
    from simulators.tax import create_app as tax_app
    from storage.journal import Journal, make_engine

    ns = f"{prefix}{uuid.uuid4().hex[:8]}"
    db = db or f"sqlite+aiosqlite:///./.run/{ns}.db"
    hub_url = f"http://127.0.0.1:{(port := _free_port())}"
    store = CoreStore.seed(20, n, rng_seed=int(time.time()))
    core_state, tax_state = SimState(), SimState()
    tax_state.faults[:] = [Fault(kind="slow", delay_s=0.05, operation="EmployeeEnroll")]
    if tax_5xx_rate:
        tax_state.faults.insert(0, Fault(kind="http_5xx", rate=tax_5xx_rate,
                                         operation="EmployeeEnroll"))  # first match wins
    counts: dict[str, int] = {}
    async with serve_app(core_app(core_state, store=store)) as core_url, \
            serve_app(tax_app(tax_state, callback_url=f"{hub_url}/partners/tax/callback",
                              callback_secret=partner_secret("tax"),
                              reject_suffixes=())) as tax:
        hub_vars = hub_env(tmp_path, ns=ns, db=db, port=port, core_url=core_url,
                           tax_url=f"{tax}/tax/ws", callback_base=hub_url) | (env or {})
        run = FaultRun(hub_vars, start_hub(hub_vars), hub_url)
        try:
            await wait_http(f"{hub_url}/health")
            events = [store.next_event() for _ in range(n)]
            run.events = events
            emitter = asyncio.create_task(post_until_accepted(hub_url, events))
            while tax_state.log.summary()["effects"] < n // 4:
                await asyncio.sleep(0.02)
            fault_at = tax_state.log.summary()["effects"]
            await inject(run)
            await emitter  # core kept sending; refused posts were sent again
            journal = Journal(make_engine(db))
            deadline = time.monotonic() + settle_s
            while time.monotonic() < deadline:
                counts = await journal.status_counts()
                if counts.get("delivered", 0) >= n and not set(counts) - {"delivered",
                                                                           "duplicate"}:
                    break
                await asyncio.sleep(0.5)
            await journal.engine.dispose()
        finally:
            stop_hub(run.hub)
            await delete_topology(load_settings().amqp_url, Names(ns), ALL_ROUTES,
                                  (300, 600, 1200, 2400))
    return BatchResult(counts, tax_state.log.summary(), core_state.log.summary(), fault_at)

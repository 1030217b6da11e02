"""``hub run --workers 2``: two processes consume, on one port, and stop on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from adapters.core.translate import enrollment_to_event
from config.settings import HubSettings, load_settings
from contracts.national import NationalRequest, make_msgid, now_cst
from simulators.core import CoreStore
from simulators.harness import fast_policies, running_stack
from simulators.serving import reserve_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (Decimal, Path)):
        return str(value)
    return value


def _env(s: HubSettings) -> dict[str, str]:
    """The settings as ``HUB_*`` variables (nested ones as JSON), for a hub subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    for name, value in s.model_dump(mode="python").items():
        if name == "settings_file" or value is None:
            continue
        v = _plain(value)
        env[f"HUB_{name.upper()}"] = v if isinstance(v, str) else json.dumps(v, default=str)
    return env


async def _consumers(url: str, queue: str) -> int:
    import aio_pika

    conn = await aio_pika.connect(url)
    async with conn:
        ch = await conn.channel()
        q = await ch.declare_queue(queue, passive=True)
        return int(q.declaration_result.consumer_count or 0)


async def test_two_workers_share_the_port_and_the_queues() -> None:
    s = load_settings()
    store = CoreStore.seed(1, 4, rng_seed=random.randrange(10**9))
    async with running_stack(s, store=store, overrides=fast_policies(s)) as st:
        ns = f"w{uuid.uuid4().hex[:8]}"
        sock = reserve_port()
        port = int(sock.getsockname()[1])
        sock.close()
        ws = st.settings.model_copy(update={
            "namespace": ns, "http_port": port, "http_host": "127.0.0.1",
            "database_url": f"sqlite+aiosqlite:///./.run/{ns}.db", "log_level": "WARNING"})
        errors = Path(ROOT, f".run/{ns}.log")
        with errors.open("wb") as err:  # a file: a pipe nobody reads would fill and block
            proc = subprocess.Popen([sys.executable, "main.py", "run", "--workers", "2"],
                                    cwd=ROOT, env=_env(ws), stdout=subprocess.DEVNULL,
                                    stderr=err)
        try:
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(timeout=5) as http:
                for _ in range(300):  # both workers up: readiness answers
                    try:
                        if (await http.get(f"{base}/health/ready")).status_code == 200 \
                                and await _consumers(s.amqp_url, f"{ns}.q.tax.employee") >= 2:
                            break
                    except (httpx.HTTPError, Exception):
                        pass
                    assert proc.poll() is None, errors.read_text()[-2000:]
                    await asyncio.sleep(0.2)
                assert await _consumers(s.amqp_url, f"{ns}.q.tax.employee") == 2
                persons = list(store.persons.values())
                async with httpx.AsyncClient(timeout=10, auth=st.partner_auth("core")) as c:
                    for i, person in enumerate(persons):
                        req = NationalRequest(
                            infno="H2101", msgid=make_msgid("NJYBCORE0001", now_cst(), i),
                            input={"data": enrollment_to_event(person)})
                        r = await c.post(f"{base}/partners/core/events",
                                         json=req.model_dump(mode="json", exclude_none=True))
                        assert r.status_code == 200, r.text
                for _ in range(200):
                    if st.tax_state.log.summary()["effects"] >= len(persons):
                        break
                    await asyncio.sleep(0.1)
                await asyncio.sleep(0.5)  # a duplicate would show by now
                assert st.tax_state.log.summary()["effects"] == len(persons)
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(proc.wait, 60)
            assert code == 0, errors.read_text()[-2000:]
            assert await _consumers(s.amqp_url, f"{ns}.q.tax.employee") == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            from broker.topology import Names, delete_topology
            from routes.lanes import ROUTES

            await delete_topology(s.amqp_url, Names(ns), [r.name for r in ROUTES],
                                  s.delay_tiers_ms)
            errors.unlink(missing_ok=True)
            for suffix in ("", "-wal", "-shm"):
                Path(ROOT, f".run/{ns}.db{suffix}").unlink(missing_ok=True)

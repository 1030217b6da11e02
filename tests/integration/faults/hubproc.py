"""Run real hub processes (``python main.py run``) for the fault tests."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[3]
LOG = ROOT / ".run" / "fault-hub.log"


def _all_routes() -> list[str]:
    from main import RESEND_ROUTES, ROUTES
    return [r.name for r in (*ROUTES, *RESEND_ROUTES)]


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
    return {**os.environ, "HUB_SETTINGS_FILE": str(settings), "HUB_NAMESPACE": ns,
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


async def post_until_accepted(hub_url: str, events: list[Any], concurrency: int = 20) -> None:
    """Send core events as core does: a refused or failed post is sent again."""
    from adapters.core.translate import enrollment_to_event
    from contracts.national import NationalRequest, make_msgid, now_cst

    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=10) as client:

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

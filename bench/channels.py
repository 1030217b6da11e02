"""Channel benchmark (F1): sustained applications, time from submission to the callback.

A real hub process (``python main.py run``) on the real broker, Redis and
SQLite; in this process the core, tax and channel simulators, each answering
after 10 ms, and a channel client submitting 居民参保登记 applications at a
fixed rate (each a new person) for ``--seconds`` at every rate of ``--rates``.
Each application crosses ingress -> intake (tax community query, core H2501)
-> tax submit -> tax feedback -> core sync -> signed push to the channel; the
latency is from just before the POST to the callback's arrival at the channel
simulator. Prints the database used, one line per rate (the latency curve: rate,
p50, p99, max, and the CPU per application read from ``/proc``: the hub's, its worker
processes included, and this machine's split by part: this process with the simulators,
the broker, Redis, PostgreSQL, and every CPU's busy time), then ``channels: rate=N
p50_ms=A p99_ms=B hub_cpu_ms_per_app=C machine_cpu_ms_per_app=D hub_cores_at_200=E
machine_cores_at_200=F cores=G max_rate_p99_under_1s=M`` for the highest rate whose p99
stayed under one second (rate/p50/p99/CPU of that rate; 0 when none); the cores at 200/s
are the CPU per application of the highest rate run times 200. ``--database postgres``
runs the hub on the PostgreSQL of ``scripts/postgres.sh`` (started if needed) instead of
a fresh SQLite file.
A submission the hub does not answer within 10 s counts as refused, not as a crash.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from bench.pipeline import drop_namespace_keys
from broker.topology import Names, delete_topology
from config.settings import load_settings
from contracts.ids import make_id_number
from simulators.channels import ChannelInbox, submit
from simulators.channels import create_app as channels_app
from simulators.core import CoreStore
from simulators.core import create_app as core_app
from simulators.serving import serve_app
from simulators.simkit import Fault, SimState
from simulators.tax import create_app as tax_app
from simulators.tax_rules import community_for

ROOT = Path(__file__).resolve().parents[1]
ANSWER_S = 0.010
IDLE_S = 3.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _proc_cpu() -> dict[int, tuple[int, str, float]]:
    """Every live process: pid -> (parent pid, command name, CPU seconds used so far, user
    + system), from ``/proc``; empty where there is no ``/proc``."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, tuple[int, str, float]] = {}
    try:
        pids = [int(d) for d in os.listdir("/proc") if d.isdigit()]
    except OSError:
        return out
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            raw = Path(f"/proc/{pid}/stat").read_text()
            f = raw[raw.rindex(")") + 2:].split()
            out[pid] = (int(f[1]), raw[raw.index("(") + 1:raw.rindex(")")],
                        (int(f[11]) + int(f[12])) / tick)
    return out


def _tree(stats: dict[int, tuple[int, str, float]], root: int) -> set[int]:
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, (ppid, _, _) in stats.items() if ppid in tree} - tree
        tree |= more
        grew = bool(more)
    return tree


SERVERS = {"beam.smp": "broker", "erl_child_setup": "broker", "epmd": "broker",
           "redis-server": "redis", "postgres": "database"}
"""Command names of the servers' processes, by what they are (``/proc/PID/stat``)."""


def machine_cpu_s(hub: int) -> dict[str, float]:
    """CPU seconds used so far, split by who used them: ``hub`` (its process tree),
    ``bench`` (this process: the core, tax and channel simulators and the client),
    ``broker``, ``redis``, ``database`` (a PostgreSQL; SQLite is inside the hub) and
    ``machine`` (every CPU's busy time from ``/proc/stat``, all of the above and anything
    else). Empty where there is no ``/proc``."""
    stats = _proc_cpu()
    if not stats:
        return {}
    hub_tree = _tree(stats, hub)
    out = dict.fromkeys(("hub", "bench", "broker", "redis", "database"), 0.0)
    for pid, (_, comm, cpu) in stats.items():
        who = ("hub" if pid in hub_tree else "bench" if pid == os.getpid()
               else SERVERS.get(comm))
        if who:
            out[who] += cpu
    with contextlib.suppress(OSError, ValueError):
        f = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        out["machine"] = (sum(f[:8]) - f[3] - f[4]) / os.sysconf("SC_CLK_TCK")  # - idle, iowait
    return out


def _per_s(before: dict[str, float], after: dict[str, float], seconds: float
           ) -> dict[str, float]:
    """CPU seconds each part used between two ``machine_cpu_s`` readings, per second."""
    return {who: (after[who] - before.get(who, 0.0)) / seconds for who in after}


def _shares(per_s: dict[str, float]) -> str:
    return " ".join(f"{who}={v * 100:.1f}%" for who, v in per_s.items()) + " of a core"


def _toml(core: str, tax: str, channels: str, names: list[str]) -> str:
    lines = ["log_level = \"ERROR\"", "[returnfiles]", "enabled = false",
             "[partners.core]", 'protocol = "http-json"', f'endpoint = "{core}"',
             "timeout_s = 5.0", "[partners.tax]", 'protocol = "soap"',
             f'endpoint = "{tax}/tax/ws"', "timeout_s = 5.0"]
    for name in names:
        lines += [f"[channels.{name}]", f'secret = "dev-{name}-secret"',
                  f'callback_url = "{channels}/channels/{name}/callback"']
    return "\n".join(lines) + "\n"


def _application(rng: random.Random, i: int) -> dict[str, Any]:
    id_number = make_id_number(rng, born=date(1960 + i % 40, 1 + i % 12, 1 + i % 28))
    division = ("320102", "320104", "320105", "320106", "320113")[i % 5]
    return {"id_number": id_number, "name": "赵建国", "phone": f"139{i % 10**8:08d}",
            "household_kind": "1", "household_address": "南京市玄武区户籍路2号",
            "residence_address": "南京市玄武区居住路2号",
            "community": community_for(division, i), "resident_type": "11",
            "subsidy_type": "00"}


async def _wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as c:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await c.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise TimeoutError(url)


async def _run_rate(rate: int, seconds: float, hub_url: str, inbox: ChannelInbox,
                    rng: random.Random, offset: int, prefix: str = "bench") -> dict[str, float]:
    settings = load_settings()
    cfg = settings.channels["my_nanjing"]
    n = int(rate * seconds)
    sent_at: dict[str, float] = {}
    failures = 0
    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=200)) as http:
        async def one(i: int) -> None:
            nonlocal failures
            t0 = time.monotonic()
            try:
                r = await submit(http, hub_url, "my_nanjing", cfg, "resident_enroll",
                                 f"{prefix}-{offset + i}", _application(rng, offset + i))
            except httpx.HTTPError:
                failures += 1
                return
            if r.status_code == 202:
                sent_at[r.json()["application_id"]] = t0
            else:
                failures += 1

        start = time.monotonic()
        tasks = []
        for i in range(n):
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(a not in inbox.received_at for a in sent_at):
        await asyncio.sleep(0.1)
    lat = sorted((inbox.received_at[a] - t) * 1000 for a, t in sent_at.items()
                 if a in inbox.received_at)
    lost = len(sent_at) - len(lat)
    p50 = statistics.median(lat) if lat else float("inf")
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("inf")
    return {"rate": rate, "sent": n, "accepted": len(sent_at), "refused": failures,
            "results": len(lat), "missing": lost, "p50": p50, "p99": p99,
            "max": lat[-1] if lat else float("inf")}


def _database_url(database: str, tmp: Path) -> str:
    """A fresh SQLite file, or the PostgreSQL of ``scripts/postgres.sh`` (its URL)."""
    if database == "sqlite":
        return f"sqlite+aiosqlite:///{tmp}/hub.db"
    return subprocess.run(["bash", "scripts/postgres.sh"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()


async def run(rates: list[int], seconds: float, database: str = "sqlite", workers: int = 1
              ) -> int:
    ns = f"bch{uuid.uuid4().hex[:8]}"
    tmp = Path(tempfile.mkdtemp(prefix="bench-channels-"))
    core_state, tax_state, channel_state = SimState(), SimState(), SimState()
    for state in (core_state, tax_state, channel_state):
        state.faults[:] = [Fault(kind="slow", delay_s=ANSWER_S)]
    inbox = ChannelInbox()
    hub_port = _free_port()
    hub_url = f"http://127.0.0.1:{hub_port}"
    settings = load_settings()
    async with contextlib.AsyncExitStack() as stack:
        core = await stack.enter_async_context(serve_app(core_app(
            core_state, store=CoreStore.seed(2, 4, rng_seed=1))))
        tax = await stack.enter_async_context(serve_app(tax_app(
            tax_state, callback_url=f"{hub_url}/partners/tax/callback",
            callback_secret=settings.partners["tax"].secret.get_secret_value(),
            feedback_delay_s=ANSWER_S)))
        channels = await stack.enter_async_context(serve_app(channels_app(
            settings.channels, channel_state, inbox)))
        db_url = _database_url(database, tmp)
        print(f"channels: database={database} ({db_url.split('://')[0]}) workers={workers}",
              flush=True)
        toml = tmp / "hub.toml"
        toml.write_text(_toml(core, tax, channels, list(settings.channels)), encoding="utf-8")
        env = {**os.environ, "HUB_ENV": "development",  # simulators, development secrets
               "HUB_SETTINGS_FILE": str(toml), "HUB_NAMESPACE": ns,
               "HUB_DATABASE_URL": db_url,
               "HUB_HTTP_PORT": str(hub_port), "HUB_CALLBACK_BASE": hub_url}
        log = (tmp / "hub.log").open("wb")
        hub = subprocess.Popen([sys.executable, "main.py", "run", "--workers", str(workers)],
                               cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=log)
        try:
            await _wait_http(f"{hub_url}/health")
            rng = random.Random(7)
            await _run_rate(10, 1.0, hub_url, inbox, rng, 10**6, ns)  # warm-up, not reported
            cpu0, t0 = machine_cpu_s(hub.pid), time.monotonic()
            await asyncio.sleep(IDLE_S)
            idle = _per_s(cpu0, machine_cpu_s(hub.pid), time.monotonic() - t0)  # core shares
            print(f"channels: idle cpu (timers, pings, pollers; taken out of the figures per "
                  f"application): {_shares(idle)}", flush=True)
            results = []
            for k, rate in enumerate(rates):
                cpu0, t0 = machine_cpu_s(hub.pid), time.monotonic()
                res = await _run_rate(rate, seconds, hub_url, inbox, rng, k * 10**5, ns)
                # CPU per application accepted, callbacks included, less what each part
                # spends idle over the same window
                used = _per_s(cpu0, machine_cpu_s(hub.pid), 1.0)
                took = time.monotonic() - t0
                per_app = {who: max(0.0, s - idle.get(who, 0.0) * took) * 1000
                           / max(1, res["accepted"]) for who, s in used.items()}
                res["cpu_ms"] = per_app.get("hub", float("nan"))
                res["machine_ms"] = per_app.get("machine", float("nan"))
                results.append(res)
                print(f"channels: rate={rate}/s sent={res['sent']} accepted={res['accepted']} "
                      f"refused={res['refused']} results={res['results']} "
                      f"missing={res['missing']} p50_ms={res['p50']:.0f} "
                      f"p99_ms={res['p99']:.0f} max_ms={res['max']:.0f} "
                      f"hub_cpu_ms_per_app={res['cpu_ms']:.1f} cpu_ms_per_app: "
                      + " ".join(f"{w}={v:.1f}" for w, v in per_app.items()), flush=True)
                if res["p99"] >= 5000:
                    break  # far past the target: higher rates only queue up more
        finally:
            hub.send_signal(signal.SIGTERM)
            try:
                hub.wait(30)
            except subprocess.TimeoutExpired:
                hub.kill()
            log.close()
            with contextlib.suppress(Exception):
                routes = json.loads(subprocess.run(
                    [sys.executable, "-c", "import json; from routes.lanes import ROUTES; "
                     "print(json.dumps([r.name for r in ROUTES]))"], cwd=ROOT,
                    capture_output=True, text=True, check=True).stdout)
                await delete_topology(settings.amqp_url, Names(ns), routes,
                                      settings.delay_tiers_ms)
            await drop_namespace_keys(ns)
    good = [r for r in results
            if r["p99"] < 1000 and r["missing"] == 0 and r["refused"] == 0]
    best = max(good, key=lambda r: r["rate"]) if good else None
    shown = best or results[-1]
    # what 200 applications/s would take at the CPU per application measured at the
    # highest rate run: the hub alone, and everything this machine ran for it
    last = results[-1]
    print(f"channels: rate={shown['rate']} p50_ms={shown['p50']:.0f} "
          f"p99_ms={shown['p99']:.0f} hub_cpu_ms_per_app={shown['cpu_ms']:.1f} "
          f"machine_cpu_ms_per_app={shown['machine_ms']:.1f} "
          f"hub_cores_at_200={last['cpu_ms'] * 200 / 1000:.1f} "
          f"machine_cores_at_200={last['machine_ms'] * 200 / 1000:.1f} "
          f"cores={os.cpu_count()} max_rate_p99_under_1s={best['rate'] if best else 0}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rates", default="10,20,40,60,100,150,200,300")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--workers", type=int, default=1,
                   help="hub processes (main.py run --workers N); more than one wants "
                        "--database postgres")
    args = p.parse_args(argv)
    return asyncio.run(run([int(x) for x in args.rates.split(",")], args.seconds,
                           args.database, args.workers))


if __name__ == "__main__":
    raise SystemExit(main())

"""Memory benchmark: the hub's resident memory over a long run of its route.

One hub worker process (``bench.pipeline``'s worker: the route as the hub wires it,
with its AMQP link, Redis idempotency and SQLite journal) drains ``--messages``
(100,000 by default) persistent messages; this process fills the queue and samples
the worker's RSS from ``/proc`` every half second, so the generated messages here do
not count against the hub. The baseline is the worker's RSS once 10% of the messages
are through (imports, pools and caches warm); the figure that matters is the growth
from there to the end: a leak grows with the messages, a flat line does not.
Prints ``memory: messages=N rss_base_mb=B rss_peak_mb=P rss_end_mb=E growth_mb=G
ratio_end_base=R rate=N/s``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid

import aio_pika

from bench.pipeline import (
    _drop_files,
    _prefill,
    drop_namespace_keys,
    go,
    hub_parts,
    make_messages,
    start_workers,
    stop_workers,
)
from broker.topology import delete_topology
from config.settings import load_settings

CHUNK = 10_000
STALL_S = 120


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MiB (``VmRSS`` of ``/proc/PID/status``)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


async def _depth(ch: aio_pika.abc.AbstractChannel, queue: str) -> int:
    q = await ch.declare_queue(queue, passive=True)
    return int(q.declaration_result.message_count or 0)


async def run(n: int, prefetch: int) -> dict[str, float]:
    url = load_settings().amqp_url
    ns = f"bench{uuid.uuid4().hex[:6]}"
    samples: list[tuple[int, float]] = []
    async with hub_parts(url, ns, prefetch) as (_, names, route, sink):  # topology, schema
        for i in range(0, n, CHUNK):
            await _prefill(url, names.queue(route.name),
                           make_messages(min(CHUNK, n - i), seed=int(time.time()) + i))
        [worker] = await start_workers(ns, prefetch, 1)
        try:
            go([worker])
            t0 = time.perf_counter()
            conn = await aio_pika.connect(url)
            async with conn:
                ch = await conn.channel()
                done, moved = 0, time.perf_counter()
                while done < n:
                    await asyncio.sleep(0.5)
                    now = await _depth(ch, names.queue(sink.name))
                    if now > done:
                        moved = time.perf_counter()
                    elif time.perf_counter() - moved > STALL_S:
                        raise TimeoutError(f"the sink stayed at {now} of {n} for {STALL_S} s")
                    done = now
                    samples.append((done, rss_mb(worker.pid)))
                t1 = time.perf_counter()
        finally:
            await stop_workers([worker])
    await delete_topology(url, names, [route.name, sink.name], (1000,))
    await drop_namespace_keys(ns)
    _drop_files(ns)
    base = next(rss for done, rss in samples if done >= n // 10)
    for decile in range(1, 11):
        at = next(((d, r) for d, r in samples if d >= n * decile // 10), samples[-1])
        print(f"  {at[0]:>7} messages: rss {at[1]:.1f} MiB", flush=True)
    end = samples[-1][1]
    return {"base": base, "peak": max(r for _, r in samples), "end": end,
            "growth": end - base, "ratio": end / base, "rate": n / (t1 - t0)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--messages", type=int,
                   default=int(os.environ.get("BENCH_MEMORY_MESSAGES", 100_000)))
    p.add_argument("--prefetch", type=int, default=64)
    a = p.parse_args()
    print(f"memory bench: {a.messages} messages through one hub worker, prefetch {a.prefetch}")
    r = asyncio.run(run(a.messages, a.prefetch))
    print(f"memory: messages={a.messages} rss_base_mb={r['base']:.1f} "
          f"rss_peak_mb={r['peak']:.1f} rss_end_mb={r['end']:.1f} growth_mb={r['growth']:.1f} "
          f"ratio_end_base={r['ratio']:.2f} rate={r['rate']:.0f}/s")


if __name__ == "__main__":
    main()

"""Pipeline benchmark: the hub's own route against raw aio-pika, same broker, same run.

Hub: the hub's AMQP link (``broker.link``) -> runtime (envelope parse, idempotency in Redis,
contract validation, SOAP translation, partner stub that answers at once,
confirmed persistent publish of the result, group-committed interaction log
in SQLite) -> manual ack. Raw: aio-pika consume -> confirmed persistent
republish -> ack. Both drain N prefilled persistent messages from a quorum
queue into a sink queue with the same prefetch; the clock stops when the sink
holds N. The same route is also run hand-written on aio-pika and as a Celery task.
Prints ``pipeline: hub=N/s raw=N/s handwritten=N/s celery=N/s ratio=R vs_celery=C
handwritten_ratio=H vs_handwritten=V`` (``ratio`` and ``handwritten_ratio``: the hub's
and the hand-written route's rate over raw; ``vs_*``: the hub's over theirs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import time
import uuid
from typing import Any

import aio_pika
from pydantic import ValidationError

from adapters.tax.soap import build_enroll_request
from broker.link import AmqpLink
from broker.rabbit import RabbitPublisher, make_broker
from broker.topology import Names, declare_topology, delete_topology
from config.settings import load_settings
from contracts.employee import EmployeeEnrollment, TaxAck
from contracts.envelope import HubMessage, idempotency_key
from contracts.errors import ValidationFailed
from contracts.ids import People, birth_date_of, gender_of, make_credit_code
from kernel.runtime import Outcome, Route
from retry.idempotency import RedisIdempotencyStore
from services.deps import Deps
from storage.journal import Journal, TxnUpdate, make_engine
from storage.migrate import upgrade

SINK_TYPE = "bench.sink"


class StubTax:
    """A partner that answers at once, after the real request translation."""

    async def enroll_employee(self, req: EmployeeEnrollment, *, serial: str) -> TaxAck:
        build_enroll_request(req, serial)
        return TaxAck(accept_no=serial[:20])

    async def aclose(self) -> None:
        return None


async def bench_handler(msg: HubMessage, deps: Deps) -> Outcome:
    try:
        req = EmployeeEnrollment.model_validate(msg.payload)
    except ValidationError as exc:
        raise ValidationFailed.of(exc) from None
    ack = await deps.tax.enroll_employee(req, serial=msg.message_id)
    payload = {"accept_no": ack.accept_no}
    out = HubMessage(type=SINK_TYPE, source="hub", target="core",
                     correlation_id=msg.correlation_id, causation_id=msg.message_id,
                     idempotency_key=idempotency_key(SINK_TYPE, req.business_key, payload),
                     entity_key=msg.entity_key, payload=payload)
    return Outcome(outputs=(out,),
                   txn=TxnUpdate(msg.correlation_id, msg.type, req.business_key, "core",
                                 "submitted"),
                   detail={"accept_no": ack.accept_no})


def make_messages(n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    units = [make_credit_code(rng) for _ in range(20)]
    out = []
    # a new person each message: a repeat is the same fact twice, which the hub rightly
    # acks as a duplicate with no output, and the sink then never reaches n
    people = People(rng)
    for i in range(n):
        pid = people.new()
        payload = {"unit_credit_code": units[i % 20], "unit_name": "南京测试有限公司",
                   "psn_cert_type": "01", "id_number": pid, "name": "张三",
                   "gender": gender_of(pid), "birth_date": birth_date_of(pid).isoformat(),
                   "phone": "13800000000", "start_month": "202601", "admdvs": "320102"}
        out.append(HubMessage(type="bench.enroll", source="core", target="tax",
                              correlation_id=uuid.uuid4().hex,
                              idempotency_key=idempotency_key("bench.enroll", pid, payload,
                                                              str(seed)),
                              payload=payload).to_body())
    return out


async def _prefill(url: str, queue: str, bodies: list[bytes], *, exchange: str = "",
                   routing_key: str | None = None) -> None:
    conn = await aio_pika.connect(url)
    async with conn:
        ch = await conn.channel()
        ex = await ch.get_exchange(exchange) if exchange else ch.default_exchange
        for i in range(0, len(bodies), 500):
            await asyncio.gather(*(ex.publish(aio_pika.Message(b, delivery_mode=2),
                                              routing_key=routing_key or queue)
                                   for b in bodies[i:i + 500]))


async def _wait_depth(url: str, queue: str, n: int, timeout: float = 600) -> float:
    conn = await aio_pika.connect(url)
    async with conn:
        ch = await conn.channel()
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            q = await ch.declare_queue(queue, passive=True)
            if (q.declaration_result.message_count or 0) >= n:
                return time.perf_counter()
            await asyncio.sleep(0.02)
    raise TimeoutError(f"{queue} did not reach {n}")


async def bench_raw(url: str, bodies: list[bytes], prefetch: int) -> float:
    tag = uuid.uuid4().hex[:8]
    src, sink = f"bench.raw.{tag}.in", f"bench.raw.{tag}.sink"
    conn = await aio_pika.connect(url)
    async with conn:
        ch = await conn.channel()
        await ch.declare_queue(src, durable=True, arguments={"x-queue-type": "quorum"})
        await ch.declare_queue(sink, durable=True, arguments={"x-queue-type": "quorum"})
        await _prefill(url, src, bodies)
        cch = await conn.channel()
        await cch.set_qos(prefetch_count=prefetch)
        q = await cch.declare_queue(src, passive=True)

        async def on_message(m: aio_pika.abc.AbstractIncomingMessage) -> None:
            await cch.default_exchange.publish(
                aio_pika.Message(m.body, delivery_mode=2, message_id=m.message_id),
                routing_key=sink)
            await m.ack()

        t0 = time.perf_counter()
        tag = await q.consume(on_message)
        t1 = await _wait_depth(url, sink, len(bodies))
        await q.cancel(tag)
        await ch.queue_delete(src)
        await ch.queue_delete(sink)
    return len(bodies) / (t1 - t0)


@contextlib.asynccontextmanager
async def hub_parts(url: str, ns: str, prefetch: int) -> Any:
    """The hub's route as the hub wires it (journal, Redis idempotency, the AMQP link,
    the confirming publisher) in namespace ``ns``; yields ``(link, names, route, sink)``.
    The link is open but not consuming."""
    from redis.asyncio import BlockingConnectionPool, Redis

    settings = load_settings().model_copy(update={
        "namespace": ns, "prefetch": prefetch,
        "database_url": f"sqlite+aiosqlite:///./.run/{ns}.db"})
    await asyncio.to_thread(upgrade, settings.database_url)
    redis = Redis(connection_pool=BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=64, timeout=10))
    names = Names(ns)
    journal = Journal(make_engine(settings.database_url), flush_ms=settings.log_flush_ms)
    await journal.start()
    broker = make_broker(url)
    publisher = RabbitPublisher(names, broker)
    deps = Deps(settings=settings, tax=StubTax(), core=None,  # type: ignore[arg-type]
                idem=RedisIdempotencyStore(redis, prefix=f"{ns}:idem:"), journal=journal,
                publisher=publisher, owner=f"bench{os.getpid()}", names=names)
    route = Route("bench", ("bench.enroll",), "tax", bench_handler)
    sink = Route("sink", (SINK_TYPE,), "core", bench_handler)
    await broker.connect()
    await declare_topology(broker, names, [(route.name, route.bindings),
                                           (sink.name, sink.bindings)], (1000,))
    link = AmqpLink(url, names, [route], deps, prefetch)  # the hub's own hot path
    await link.open()
    publisher.bind(broker, link.publish_channel)
    try:
        yield link, names, route, sink
    finally:
        await link.close()
        await broker.stop()
        await journal.stop()
        await journal.engine.dispose()
        await redis.aclose()


def _drop_files(ns: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(f".run/{ns}.db{suffix}")


async def drop_namespace_keys(ns: str) -> None:
    """Delete a run's Redis keys (``<ns>:*``): its idempotency keys live for days, and a
    few benchmark runs otherwise leave millions behind to slow every later SCAN."""
    from redis.asyncio import Redis

    redis = Redis.from_url(load_settings().redis_url)
    try:
        await _drop_keys(redis, f"{ns}:")
    finally:
        await redis.aclose()


async def bench_hub(url: str, bodies: list[bytes], prefetch: int) -> float:
    ns = f"bench{uuid.uuid4().hex[:6]}"
    async with hub_parts(url, ns, prefetch) as (link, names, route, sink):
        await _prefill(url, names.queue(route.name), bodies)
        t0 = time.perf_counter()
        await link.consume()
        t1 = await _wait_depth(url, names.queue(sink.name), len(bodies))
    await delete_topology(url, names, [route.name, sink.name], (1000,))
    _drop_files(ns)
    await drop_namespace_keys(ns)
    return len(bodies) / (t1 - t0)


async def _serve_worker(ns: str, prefetch: int) -> None:
    """One worker process of ``bench_scale``: ready, then consume from ``go`` until EOF."""
    url = load_settings().amqp_url
    async with hub_parts(url, ns, prefetch) as (link, _, _, _):
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # "go"
        await link.consume()
        await asyncio.to_thread(sys.stdin.readline)  # EOF: stop


async def start_workers(ns: str, prefetch: int, workers: int) -> list[Any]:
    """``workers`` bench worker processes (``--worker``) on namespace ``ns``, each connected
    and waiting for ``go``."""
    import subprocess

    procs = [subprocess.Popen(
        [sys.executable, "-m", "bench.pipeline", "--worker", ns, "--prefetch", str(prefetch)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(workers)]
    for p in procs:
        line = await asyncio.to_thread(p.stdout.readline)  # type: ignore[union-attr]
        if line.strip() != "ready":
            await stop_workers(procs)
            raise RuntimeError(f"bench worker did not start: {line!r}")
    return procs


def go(procs: list[Any]) -> None:
    """Let every worker start consuming."""
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()


async def stop_workers(procs: list[Any]) -> None:
    """EOF on their stdin stops the workers; one that does not within 30 s is killed."""
    import subprocess

    for p in procs:
        with contextlib.suppress(Exception):
            p.stdin.close()
    for p in procs:
        try:
            await asyncio.to_thread(p.wait, 30)
        except subprocess.TimeoutExpired:
            p.kill()


async def bench_scale(url: str, bodies: list[bytes], prefetch: int, workers: int) -> float:
    """The hub's route in ``workers`` processes sharing the queue, Redis and one SQLite
    journal, as ``hub run --workers N`` runs (its other doors idle here); the clock runs
    from "go" (every worker connected) until the sink holds N."""
    ns = f"bench{uuid.uuid4().hex[:6]}"
    async with hub_parts(url, ns, prefetch) as (_, names, route, sink):  # topology, schema
        await _prefill(url, names.queue(route.name), bodies)
        procs = await start_workers(ns, prefetch, workers)
        try:
            t0 = time.perf_counter()
            go(procs)
            t1 = await _wait_depth(url, names.queue(sink.name), len(bodies))
        finally:
            await stop_workers(procs)
    await delete_topology(url, names, [route.name, sink.name], (1000,))
    _drop_files(ns)
    await drop_namespace_keys(ns)
    return len(bodies) / (t1 - t0)


async def bench_handwritten(url: str, bodies: list[bytes], prefetch: int) -> float:
    """The route written by hand on aio-pika: what the hub's framework costs on top.

    Per message: envelope and payload validated by pydantic, Redis ``SET NX`` on the
    idempotency key (a duplicate is acked without an effect), the SOAP translation, a
    persistent publish to the sink awaited for its confirm, then the ack.
    """
    from redis.asyncio import Redis

    tag = uuid.uuid4().hex[:8]
    src, sink, prefix = f"bench.hand.{tag}.in", f"bench.hand.{tag}.sink", f"bench:{tag}:idem:"
    redis = Redis.from_url(load_settings().redis_url)
    conn = await aio_pika.connect(url)
    async with conn:
        ch = await conn.channel()
        await ch.declare_queue(src, durable=True, arguments={"x-queue-type": "quorum"})
        await ch.declare_queue(sink, durable=True, arguments={"x-queue-type": "quorum"})
        await _prefill(url, src, bodies)
        cch = await conn.channel()  # publisher confirms are aio-pika's default
        await cch.set_qos(prefetch_count=prefetch)
        q = await cch.declare_queue(src, passive=True)

        async def on_message(m: aio_pika.abc.AbstractIncomingMessage) -> None:
            msg = HubMessage.model_validate_json(m.body)
            req = EmployeeEnrollment.model_validate(msg.payload)
            if await redis.set(prefix + msg.idempotency_key, "1", nx=True, ex=3600):
                build_enroll_request(req, msg.message_id)
                payload = {"accept_no": msg.message_id[:20]}
                out = HubMessage(type=SINK_TYPE, source="hub", target="core",
                                 correlation_id=msg.correlation_id,
                                 causation_id=msg.message_id,
                                 idempotency_key=idempotency_key(
                                     SINK_TYPE, req.business_key, payload),
                                 entity_key=msg.entity_key, payload=payload)
                await cch.default_exchange.publish(
                    aio_pika.Message(out.to_body(), delivery_mode=2,
                                     message_id=out.message_id), routing_key=sink)
            await m.ack()

        t0 = time.perf_counter()
        ctag = await q.consume(on_message)
        t1 = await _wait_depth(url, sink, len(bodies))
        await q.cancel(ctag)
        await ch.queue_delete(src)
        await ch.queue_delete(sink)
    await _drop_keys(redis, prefix)
    await redis.aclose()
    return len(bodies) / (t1 - t0)


async def _drop_keys(redis: Any, prefix: str) -> None:
    async for keys in _batches(redis.scan_iter(match=prefix + "*", count=1000), 1000):
        await redis.delete(*keys)


async def _batches(it: Any, size: int) -> Any:
    batch: list[Any] = []
    async for item in it:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


CELERY_POOL = "solo"
"""One process, one task at a time, consumer and task in the same process: the hub's
single process (its concurrency is async I/O within one interpreter). prefork 1 would
add a second process (the parent consumes, the child runs the task), i.e. more CPU than
the hub gets; threads/gevent are not what a default Celery deployment runs."""


def celery_missing() -> str | None:
    """Why the Celery side cannot run here, or ``None``."""
    try:
        import celery  # noqa: F401
    except ImportError:
        return "celery is not installed (pip install '.[bench]')"
    return None


async def bench_celery(url: str, bodies: list[bytes], prefetch: int) -> float:
    """The same work as a Celery 5 task (``bench/celery_app.py``): a ``solo`` worker started
    as a subprocess on the same broker, ``acks_late``, quorum queue, confirmed persistent
    task publishes; the clock runs from the first task sent until the sink holds N."""
    import subprocess
    import sys

    tag = uuid.uuid4().hex[:8]
    env = {**os.environ, "BENCH_CELERY_BROKER": url, "BENCH_CELERY_QUEUE": f"bench.cel.{tag}.in",
           "BENCH_CELERY_SINK": f"bench.cel.{tag}.sink",
           "BENCH_CELERY_REDIS": load_settings().redis_url,
           "BENCH_CELERY_PREFIX": f"bench:{tag}:idem:", "BENCH_CELERY_PREFETCH": str(prefetch)}
    sink = env["BENCH_CELERY_SINK"]
    conn = await aio_pika.connect(url)
    async with conn:
        ch = await conn.channel()
        sinkq = await ch.declare_queue(sink, durable=True,
                                       arguments={"x-queue-type": "quorum"})
        os.environ.update({k: v for k, v in env.items() if k.startswith("BENCH_CELERY_")})
        import importlib

        import bench.celery_app as capp
        capp = importlib.reload(capp)  # this run's queue names
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "bench.celery_app", "worker",
             "--pool", CELERY_POOL, "--concurrency", "1", "--loglevel", "WARNING",
             "--without-gossip", "--without-mingle", "--without-heartbeat",
             "--prefetch-multiplier", str(prefetch), "-Q", env["BENCH_CELERY_QUEUE"]],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            # warm-up: the worker is consuming once one task went through
            await asyncio.to_thread(_send_celery, capp, [bodies[0]])
            await _wait_depth(url, sink, 1, timeout=60)
            await sinkq.purge()
            t0 = time.perf_counter()
            sender = asyncio.create_task(asyncio.to_thread(_send_celery, capp, bodies[1:]))
            t1 = await _wait_depth(url, sink, len(bodies) - 1)
            await sender
        finally:
            worker.terminate()
            try:
                await asyncio.to_thread(worker.wait, 30)
            except subprocess.TimeoutExpired:
                worker.kill()
            await ch.queue_delete(env["BENCH_CELERY_QUEUE"])
            await ch.queue_delete(sink)
    from redis.asyncio import Redis

    redis = Redis.from_url(load_settings().redis_url)
    await _drop_keys(redis, env["BENCH_CELERY_PREFIX"])
    await redis.aclose()
    return (len(bodies) - 1) / (t1 - t0)


def _send_celery(capp: Any, bodies: list[bytes]) -> None:
    """Confirmed persistent task publishes on one producer connection."""
    with capp.app.producer_or_acquire() as producer:
        for b in bodies:
            capp.enroll.apply_async((b.decode(),), producer=producer)


async def main_async(n: int, prefetch: int, rounds: int) -> dict[str, Any]:
    url = load_settings().amqp_url
    no_celery = celery_missing()
    rates: dict[str, list[float]] = {"raw": [], "hub": [], "handwritten": [], "celery": []}
    for r in range(rounds):
        bodies = make_messages(n, seed=int(time.time()) + r)
        rates["raw"].append(await bench_raw(url, bodies, prefetch))
        rates["hub"].append(await bench_hub(url, bodies, prefetch))
        rates["handwritten"].append(await bench_handwritten(url, bodies, prefetch))
        rates["celery"].append(0.0 if no_celery else await bench_celery(url, bodies, prefetch))
        print(f"  round {r + 1}: " + " ".join(f"{k}={v[-1]:.0f}/s" for k, v in rates.items()),
              flush=True)
    best = {k: max(v) for k, v in rates.items()}
    if no_celery:
        print(f"  celery=0: {no_celery}")
    return {**best, "ratio": best["hub"] / best["raw"],
            "handwritten_ratio": best["handwritten"] / best["raw"],
            "vs_handwritten": best["hub"] / best["handwritten"],
            "vs_celery": best["hub"] / best["celery"] if best["celery"] else 0.0}


async def scale_async(n: int, prefetch: int, rounds: int, workers: int) -> dict[int, float]:
    """Best rate of the hub's route per number of worker processes, 1..``workers``."""
    url = load_settings().amqp_url
    rates: dict[int, list[float]] = {k: [] for k in range(1, workers + 1)}
    for r in range(rounds):
        bodies = make_messages(n, seed=int(time.time()) + 100 + r)
        for k in rates:
            rates[k].append(await bench_scale(url, bodies, prefetch, k))
        print(f"  scale round {r + 1}: "
              + " ".join(f"workers{k}={v[-1]:.0f}/s" for k, v in rates.items()), flush=True)
    return {k: max(v) for k, v in rates.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--messages", type=int, default=int(os.environ.get("BENCH_MESSAGES", 5000)))
    p.add_argument("--prefetch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--scale", type=int, default=2,
                   help="also run the hub's route in 1..N worker processes (0: skip)")
    p.add_argument("--worker", help=argparse.SUPPRESS)  # a bench_scale worker process
    a = p.parse_args()
    if a.worker:
        asyncio.run(_serve_worker(a.worker, a.prefetch))
        return
    print(f"pipeline bench: {a.messages} messages, prefetch {a.prefetch}, best of {a.rounds}")
    if a.scale > 1:
        scale = asyncio.run(scale_async(a.messages, a.prefetch, a.rounds, a.scale))
        print("pipeline_scale: " + " ".join(f"workers{k}={v:.0f}/s" for k, v in scale.items())
              + f" scale={scale[a.scale] / scale[1]:.2f}", flush=True)
    res = asyncio.run(main_async(a.messages, a.prefetch, a.rounds))
    print(f"pipeline: hub={res['hub']:.0f}/s raw={res['raw']:.0f}/s "
          f"handwritten={res['handwritten']:.0f}/s celery={res['celery']:.0f}/s "
          f"ratio={res['ratio']:.2f} vs_celery={res['vs_celery']:.2f} "
          f"handwritten_ratio={res['handwritten_ratio']:.2f} "
          f"vs_handwritten={res['vs_handwritten']:.2f}")


if __name__ == "__main__":
    main()

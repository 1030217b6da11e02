"""``hub run --workers N``: N hub processes that share nothing but the servers.

Why processes: the hub is Python on one event loop, so one process uses at most one core;
more cores need more processes. Each worker is a whole hub (``cli.hub.serve``): its own
broker client consuming every route queue (RabbitMQ spreads deliveries over the N
consumers; ordering per person is kept by the ordering gate in Redis, idempotency by
Redis, both shared), its own Redis and database pools, and the HTTP API on the same port:
every worker binds its own listening socket with ``SO_REUSEPORT`` and the kernel spreads
the connections.

Work that must not be done N times runs in worker 0 only (``singletons``): the periodic
tickers (F12 case clock, F7 status files, F11 drug clock, F9 pull, F10 closures) and the
return-file poller are not leased, so N copies would poll the same FTP file or the same
platform page N times. Durable jobs (``services.job_runner``) run in every worker: a job
is taken under a lease in SQL, so each runs in one process at a time.

The supervisor (this process) forks the workers, each in its own process group so a
terminal's Ctrl-C reaches the supervisor only; on SIGTERM or SIGINT it sends SIGTERM to
every worker (uvicorn's graceful stop: the API stops, the hub's ``stop`` lets go of
consumers, jobs and pools) and waits for them. When one worker dies, the others are
stopped too and the supervisor exits with its code: the process manager restarts the
whole hub (simpler to reason about than restarting one worker under a live sibling).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

__all__ = ["STOP_GRACE_S", "reuse_port_socket", "supervise"]

log = logging.getLogger("hub.workers")

STOP_GRACE_S = 60.0
"""How long a worker may take to stop gracefully before it is killed."""


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket with ``SO_REUSEPORT``: N processes bind the same port and
    the kernel balances new connections between them."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _child(target: Callable[[int], int], index: int) -> None:
    os.setpgrp()  # Ctrl-C goes to the supervisor, which stops us with one SIGTERM
    os._exit(target(index))


def supervise(target: Callable[[int], int], workers: int, *,
              grace_s: float = STOP_GRACE_S, poll_s: float = 0.2) -> int:
    """Run ``target(index)`` in ``workers`` forked processes until a signal or a death.

    Returns 0 after a requested stop in which every worker exited 0, else the first
    non-zero exit code seen (a worker that died on its own)."""
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_child, args=(target, i), name=f"hub-worker-{i}")
             for i in range(workers)]
    stopping: list[int] = []

    def _stop(signum: int, _frame: Any) -> None:
        stopping.append(signum)

    old = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for p in procs:
            p.start()
        log.info("hub: %d workers started (pids %s)", workers, [p.pid for p in procs])
        died: int | None = None
        while not stopping:
            for p in procs:
                if p.exitcode is not None:
                    died = p.exitcode if p.exitcode > 0 else 1
                    log.error("hub worker %s exited with %s: stopping the others",
                              p.name, p.exitcode)
            if died is not None:
                break
            time.sleep(poll_s)
        for p in procs:
            if p.exitcode is None and p.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for p in procs:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.exitcode is None:
                log.error("hub worker %s did not stop within %.0f s: killed", p.name, grace_s)
                p.kill()
                p.join()
        if died is not None:
            return died
        return next((p.exitcode for p in procs if p.exitcode), 0) or 0
    finally:
        for s, h in old.items():
            signal.signal(s, h)

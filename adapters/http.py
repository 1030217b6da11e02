"""One way to build the hub's HTTP clients: requests queue here, never in httpcore's pool.

httpcore 1.0.9 (the latest) leaks a pool slot for good when a request that is
waiting for a pooled connection is cancelled or times out: a connection is
created for it in state CONNECTING and nobody ever uses or closes it
(encode/httpcore#1093, #830). Under a burst (every delivery held during a
database outage released at once) the pool fills with such ghosts and every
later call fails with ``PoolTimeout`` until the process restarts: fault test h
wedged exactly so.

``BoundedTransport`` admits at most ``limit`` requests into a pool of ``limit``
connections, so the pool never has a waiter to orphan. Waiting happens on an
``asyncio.Semaphore``, which is cancel-safe, and is bounded by the client's pool
timeout (raised as ``httpx.PoolTimeout``, which the adapters already map to a
transient error). The slot is held until the response is closed, as a pooled
connection would be.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

import httpx

__all__ = ["BoundedTransport", "CallObserver", "before_calls", "bounded_client", "observe_calls"]

CallObserver = Callable[[httpx.Request, float, int | None], None]
"""Told of every partner call when it ends: (request, seconds from admission until the
response body is closed, HTTP status or None when the call raised). ``kernel.metrics``
turns these into ``hub_partner_call_seconds``; an observer must be quick and not raise."""
_OBSERVERS: list[CallObserver] = []


def observe_calls(observer: CallObserver) -> Callable[[], None]:
    """Register ``observer`` for every ``BoundedTransport`` of this process (each hub
    started subscribes its metrics); returns the call that unsubscribes it."""
    _OBSERVERS.append(observer)

    def off() -> None:
        if observer in _OBSERVERS:
            _OBSERVERS.remove(observer)

    return off


def _tell(request: httpx.Request, t0: float, status: int | None) -> None:
    elapsed = time.perf_counter() - t0
    for observer in tuple(_OBSERVERS):
        with contextlib.suppress(Exception):  # metrics never break a partner call
            observer(request, elapsed, status)


RequestHook = Callable[[httpx.Request], None]
_BEFORE: list[RequestHook] = []


def before_calls(hook: RequestHook) -> None:
    """Run ``hook`` on every request of every ``BoundedTransport`` of this process before it
    is sent (``kernel.tracing`` writes the ``traceparent`` header); a hook must be quick and
    a failing one never stops the call."""
    if hook not in _BEFORE:
        _BEFORE.append(hook)


class _Releasing(httpx.AsyncByteStream):
    """The response body; closing it (always done by httpx) frees the admission slot."""

    def __init__(self, inner: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._inner = inner
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._free()

    def _free(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()


class BoundedTransport(httpx.AsyncBaseTransport):
    """At most ``limit`` requests in flight over ``inner``; the rest wait up to ``wait_s``."""

    def __init__(self, inner: httpx.AsyncBaseTransport, limit: int, wait_s: float) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._inner = inner
        self._slots = asyncio.Semaphore(limit)
        self._limit = limit
        self._wait_s = wait_s

    @property
    def in_flight(self) -> int:
        """Requests admitted and not yet closed (tests and health pages)."""
        return self._limit - self._slots._value

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        for hook in _BEFORE:  # trace context (kernel.tracing)
            with contextlib.suppress(Exception):
                hook(request)
        try:
            async with asyncio.timeout(self._wait_s):
                await self._slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout(f"all {self._limit} connections busy for "
                                    f"{self._wait_s:g} s", request=request) from None
        t0 = time.perf_counter()
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException:
            self._slots.release()
            _tell(request, t0, None)
            raise
        if response.is_closed:  # read in full already (a test's canned answer): nothing held
            self._slots.release()
            _tell(request, t0, response.status_code)
            return response
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)

        def release(status: int = response.status_code) -> None:
            self._slots.release()
            _tell(request, t0, status)

        response.stream = _Releasing(stream, release)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def bounded_client(*, limit: int, timeout: httpx.Timeout | float,
                   transport: httpx.AsyncBaseTransport | None = None,
                   base_url: str = "") -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose requests wait in ``BoundedTransport``.

    ``transport`` replaces the network (tests); without it the pool has exactly
    ``limit`` connections, so admission and pool agree.
    """
    t = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
    inner = transport or httpx.AsyncHTTPTransport(
        limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit))
    wait_s = t.pool if t.pool is not None else 30.0
    return httpx.AsyncClient(base_url=base_url, timeout=t,
                             transport=BoundedTransport(inner, limit, wait_s))

"""``Hub.readiness``: the broker, Redis and the database, each checked within a short
timeout, side by side; one down (failing or hanging) is ``False``, never an error."""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bootstrap.hub import Hub
from broker.topology import Names
from config.settings import load_settings
from storage.journal import make_engine


class FakeBroker:
    def __init__(self, answer: Any = True) -> None:
        self.answer = answer

    async def ping(self, timeout: float) -> bool:
        if self.answer == "hang":
            await asyncio.sleep(3600)
        if isinstance(self.answer, Exception):
            raise self.answer
        return bool(self.answer)


class FakeRedis(FakeBroker):
    async def ping(self, timeout: float = 0) -> bool:  # type: ignore[override]
        return await super().ping(timeout)


class DownEngine:
    """An engine whose database does not answer: connect fails, or hangs."""

    def __init__(self, hang: bool) -> None:
        self.hang = hang

    @asynccontextmanager
    async def _conn(self) -> Any:
        if self.hang:
            await asyncio.sleep(3600)
        raise ConnectionRefusedError("database gone")
        yield  # pragma: no cover

    def connect(self) -> Any:
        return self._conn()


class FakeLink:
    """``broker.link.AmqpLink`` as readiness sees it: its connection and channels open."""

    def __init__(self, up: bool = True) -> None:
        self.up = up

    def ok(self) -> bool:
        return self.up


def _hub(engine: Any, broker: Any = None, redis: Any = None, link: Any = None) -> Hub:
    deps = SimpleNamespace(journal=SimpleNamespace(engine=engine))
    hub = Hub(settings=load_settings(env={}, settings_file="/nonexistent/hub.toml"),
              deps=deps, routes=(), redis=redis or FakeRedis(),  # type: ignore[arg-type]
              publisher=None, names=Names("t"))  # type: ignore[arg-type]
    hub._broker = broker if broker is not None else FakeBroker()
    hub._link = link if link is not None else FakeLink()
    return hub


@pytest.fixture
async def engine(tmp_path: Path) -> Any:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")
    yield engine
    await engine.dispose()


async def test_all_reachable_is_ready(engine: Any) -> None:
    assert await _hub(engine).readiness() == {"broker": True, "redis": True, "database": True}


async def test_a_closed_link_is_not_ready(engine: Any) -> None:
    """The FastStream client answers its ping, but the hot path's own AMQP connection
    (route consumers, publishing channel) is closed: the hub cannot do its work."""
    got = await _hub(engine, link=FakeLink(up=False)).readiness()
    assert got == {"broker": False, "redis": True, "database": True}


@pytest.mark.parametrize("hang", [False, True])
async def test_a_database_down_is_not_ready(hang: bool) -> None:
    t0 = time.monotonic()
    got = await _hub(DownEngine(hang)).readiness(timeout_s=0.3)
    assert got == {"broker": True, "redis": True, "database": False}
    assert time.monotonic() - t0 < 2


@pytest.mark.parametrize("answer", [False, "hang", ConnectionError("refused")])
async def test_redis_down_is_not_ready(engine: Any, answer: Any) -> None:
    got = await _hub(engine, redis=FakeRedis(answer)).readiness(timeout_s=0.3)
    assert got == {"broker": True, "redis": False, "database": True}


@pytest.mark.parametrize("answer", [False, "hang", ConnectionError("closed")])
async def test_the_broker_down_is_not_ready(engine: Any, answer: Any) -> None:
    got = await _hub(engine, broker=FakeBroker(answer)).readiness(timeout_s=0.3)
    assert got == {"broker": False, "redis": True, "database": True}


async def test_no_broker_client_or_a_lost_one_is_not_ready(engine: Any) -> None:
    hub = _hub(engine)
    hub._lost = True  # reconnected under us: the watchdog is rebuilding the client
    assert (await hub.readiness())["broker"] is False
    hub._lost, hub._broker = False, None  # not started, or between two clients
    assert (await hub.readiness())["broker"] is False


async def test_everything_down_answers_within_one_timeout_not_three() -> None:
    hub = _hub(DownEngine(hang=True), broker=FakeBroker("hang"), redis=FakeRedis("hang"))
    t0 = time.monotonic()
    assert await hub.readiness(timeout_s=0.5) == \
        {"broker": False, "redis": False, "database": False}
    assert time.monotonic() - t0 < 1.2  # checked side by side

"""Shared pieces of the dead-letter tests (admin API, store, ops CLI): a migrated SQLite
file, a store, an audit log, sample letters, recording fakes. No broker, no Redis.

Its fixtures (``template_db``, ``db``, ``admin``) are registered for every test by
``tests/conftest.py``."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.admin import admin_router
from api.auth import Principal, hash_token
from broker.topology import Names
from contracts.envelope import HubMessage
from retry.idempotency import MemoryIdempotencyStore
from services.deps import Deps
from storage.audit import AuditLog
from storage.deadletters import DeadLetter, DeadLetterStore
from storage.journal import make_engine
from storage.migrate import upgrade

ID = "320102199005170017"
PHONE = "13812345678"
NAME = "张三丰"

TOKENS = {"t-admin-0123456789": ("root", "admin"), "t-ops-0123456789": ("olga", "operations"),
          "t-case-0123456789": ("carl", "caseworker"), "t-test-0123456789": ("tess", "tester"),
          "t-read-0123456789": ("rita", "readonly")}
PRINCIPALS = {hash_token(t): Principal(u, r) for t, (u, r) in TOKENS.items()}  # type: ignore[arg-type]
BY_ROLE = {r: t for t, (_, r) in TOKENS.items()}


def bearer(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {BY_ROLE[role]}"}


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrated once (alembic runs its own event loop: keep it off ours)."""
    path = tmp_path_factory.mktemp("ops") / "template.db"
    with ThreadPoolExecutor(1) as pool:
        pool.submit(upgrade, sqlite_url(path)).result()
    return path


@dataclass
class Db:
    store: DeadLetterStore
    audit: AuditLog


@pytest.fixture
async def db(template_db: Path, tmp_path: Path) -> AsyncIterator[Db]:
    path = tmp_path / "hub.db"
    shutil.copy(template_db, path)
    engine = make_engine(sqlite_url(path))
    try:
        yield Db(DeadLetterStore(engine), AuditLog(engine))
    finally:
        await engine.dispose()


def envelope(i: int = 0, **payload: Any) -> HubMessage:
    return HubMessage(message_id=f"m{i}", type="tax.employee.enroll", source="core",
                      target="tax", correlation_id=f"c{i}", idempotency_key=f"k{i}",
                      created_at=datetime(2026, 11, 20, 7, 0, tzinfo=UTC),
                      payload={"id_number": ID, "name": NAME, "phone": PHONE, "n": i} | payload)


def letter(i: int = 0, *, body: bytes | None = None, **over: Any) -> DeadLetter:
    at = over.pop("dead_at", datetime(2026, 11, 20, 8, 0, i % 60, tzinfo=UTC))
    base: dict[str, Any] = dict(
        route="tax.employee", queue="t.q.tax.employee", message_id=f"m{i}",
        correlation_id=f"c{i}", type="tax.employee.enroll", partner="tax", source="core",
        reason_code="UNAVAILABLE", reason=f"tax answered 503 for {ID}", attempts=5,
        first_seen=at, dead_at=at,
        headers={"x-attempt": 5, "x-failures": f'[{{"reason": "503 for {ID}"}}]',
                 "x-first-seen": at.isoformat(), "x-dead-reason": "503",
                 "x-dead-code": "UNAVAILABLE", "x-route": "tax.employee",
                 "x-idempotency-key": f"k{i}"},
        body=envelope(i).to_body() if body is None else body)
    return DeadLetter(**(base | over))


class RecordingIdem(MemoryIdempotencyStore):
    def __init__(self) -> None:
        super().__init__()
        self.forgotten: list[str] = []

    async def forget(self, key: str) -> None:
        self.forgotten.append(key)
        await super().forget(key)


@dataclass
class Sent:
    calls: list[tuple[bytes, str, dict[str, Any]]] = field(default_factory=list)
    at: list[float] = field(default_factory=list)
    fail: bool = False

    async def __call__(self, body: bytes, queue: str, headers: dict[str, Any]) -> None:
        import time
        if self.fail:
            raise ConnectionError("broker gone")
        self.calls.append((body, queue, headers))
        self.at.append(time.monotonic())


@dataclass
class Admin:
    db: Db
    client: httpx.AsyncClient
    idem: RecordingIdem
    sent: Sent
    app: FastAPI


def fake_deps(idem: RecordingIdem, publisher: Any = None) -> Deps:
    return Deps(settings=None, tax=None, core=None, idem=idem, journal=None,  # type: ignore[arg-type]
                publisher=publisher, owner="test", names=Names("t"))


@pytest.fixture
async def admin(db: Db) -> AsyncIterator[Admin]:
    idem, sent = RecordingIdem(), Sent()
    app = FastAPI()
    app.include_router(admin_router(fake_deps(idem), db.store, db.audit, PRINCIPALS,
                                    requeue=sent))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://hub") as client:
        yield Admin(db, client, idem, sent, app)

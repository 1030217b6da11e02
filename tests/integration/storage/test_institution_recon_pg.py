"""Alembic 0018 on PostgreSQL: the F14 tables go up, down and up again, match the models
there (no autogenerate difference on a ``recon_`` table), and the store's hold-once,
compare-and-set, keep-once files and notices and the runs' JSON work there (``asyncpg``).
Needs PostgreSQL on 5433 (``make postgres``); each test works in a database of its own,
dropped afterwards."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

import storage.institution_recon  # noqa: F401  (the models compared against)
from storage.institution_recon import InstitutionReconStore
from storage.models import Base
from tests.support.migrations import engine_at, pg_down_and_up

pytestmark = pytest.mark.integration

TABLES = {"recon_runs", "recon_cases", "recon_files", "recon_notices"}
CODE = "H32010200001"
CASE: dict[str, Any] = {
    "id": "b" * 32, "fixmedins_code": CODE, "stmt_date": "2026-11-30", "setl_id": "S1",
    "kind": "amount_differs", "scope": "local", "chnl_type": "1",
    "row": {"setl_id": "S1", "medfee_sumamt": "12.30"}}


def _tables_and_diffs(conn: Connection) -> tuple[set[str], list[Any]]:
    diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                             Base.metadata)
    return set(inspect(conn).get_table_names()), [d for d in diffs if "recon_" in repr(d)]


async def test_recon_tables_and_store_on_postgresql(pg_url: str) -> None:
    await pg_down_and_up(pg_url, "0017")
    async with engine_at(pg_url) as engine:
        async with engine.connect() as conn:
            tables, diffs = await conn.run_sync(_tables_and_diffs)
        assert tables >= TABLES
        assert diffs == []
        store = InstitutionReconStore(engine)
        assert await store.hold(CASE) is True
        assert await store.hold({**CASE, "kind": "core_only"}) is False
        assert await store.move(CASE["id"], expect=("held",), status="resolving",
                                action="correct") is True
        assert await store.move(CASE["id"], expect=("held",), status="failed") is False
        got = await store.case(CASE["id"])
        assert got is not None and got["kind"] == "amount_differs"
        assert got["status"] == "resolving" and got["row"]["medfee_sumamt"] == "12.30"

        await store.put_file("f1", CODE, "upload", "a.zip", "QUJD")
        await store.put_file("f1", CODE, "upload", "b.zip", "WFla")
        kept = await store.file("f1")
        assert kept is not None and kept["filename"] == "a.zip"
        row = {"setl_id": "S9", "chnl_type": "2"}
        assert await store.add_notice(CODE, "2026-11-30", row) is True
        assert await store.add_notice(CODE, "2026-11-30", row) is False

        await store.add_run({"id": "c" * 32, "fixmedins_code": CODE,
                             "stmt_date": "2026-11-30", "trigger": "hub",
                             "result": "unbalanced", "differing": {"acct_pay": ["1", "2"]},
                             "institution": {}, "core": {}, "findings": [{"setl_id": "S1"}],
                             "error": ""})
        run = await store.run("c" * 32)
        assert run is not None and run["differing"] == {"acct_pay": ["1", "2"]}
        assert [r["id"] for r in await store.runs(CODE, "2026-11-30")] == ["c" * 32]

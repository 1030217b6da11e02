"""F14 storage: migration 0018 matches the models (and goes down and up); a 单边帐 case is
held once per institution/day/setl_id and moves by compare-and-set; files and notices
are kept once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import storage.institution_recon  # noqa: F401  (the models alembic compares against)
from storage.institution_recon import InstitutionReconStore
from tests.support.migrations import check_migration, engine_copy

TABLES = {"recon_runs", "recon_cases", "recon_files", "recon_notices"}


def test_migration_0018_matches_the_models_and_goes_down_and_up(template_db: Path,
                                                                tmp_path: Path) -> None:
    check_migration(template_db, tmp_path, tables=TABLES, previous="0017", matches="recon_")


@pytest.fixture
async def store(template_db: Path, tmp_path: Path) -> AsyncIterator[InstitutionReconStore]:
    async with engine_copy(template_db, tmp_path) as engine:
        yield InstitutionReconStore(engine)


CASE = {"id": "a" * 32, "fixmedins_code": "H32010200001", "stmt_date": "2026-11-30",
        "setl_id": "S1", "kind": "institution_only", "scope": "local", "chnl_type": "0",
        "row": {"setl_id": "S1", "psn_no": "P1"}}


async def test_a_case_is_held_once_and_moves_by_compare_and_set(
        store: InstitutionReconStore) -> None:
    assert await store.hold(CASE) is True
    assert await store.hold({**CASE, "kind": "core_only"}) is False
    got = await store.case(CASE["id"])
    assert got is not None and got["kind"] == "institution_only" and got["status"] == "held"
    assert got["row"] == {"setl_id": "S1", "psn_no": "P1"}
    assert await store.move(CASE["id"], expect=("held",), status="resolving") is True
    assert await store.move(CASE["id"], expect=("held",), status="resolving") is False
    assert [c["id"] for c in await store.cases(status="resolving")] == [CASE["id"]]
    with pytest.raises(ValueError):
        await store.move(CASE["id"], expect=("resolving",), status="bogus")


async def test_files_and_notices_are_kept_once(store: InstitutionReconStore) -> None:
    await store.put_file("f1", "H32010200001", "upload", "a.zip", "QUJD")
    await store.put_file("f1", "H32010200001", "upload", "b.zip", "WFla")
    got = await store.file("f1")
    assert got is not None and got["filename"] == "a.zip" and got["content"] == "QUJD"
    row = {"setl_id": "S9", "chnl_type": "1"}
    assert await store.add_notice("H32010200001", "2026-11-30", row) is True
    assert await store.add_notice("H32010200001", "2026-11-30", row) is False
    assert [n["setl_id"] for n in await store.notices("H32010200001", "2026-11-30")] == ["S9"]

"""F9 storage: migration 0012 matches the models (and goes down and up), an application
stored once by its number, decisions compare-and-set, the cursor moved only from where it
was, the 参保凭证 kept once, answers masked."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest

from contracts.ids import make_id_number
from contracts.transfer import Refusal, TransferApplication
from storage.transfer import TransferStore, masked
from tests.support.migrations import check_migration, engine_copy

TABLES = {"transfers", "transfer_events", "transfer_cursors", "transfer_certificates"}
APP = TransferApplication(application_no="ZY2026112000009",
                          id_number=make_id_number(random.Random(3), born=date(1980, 1, 1)),
                          name="王建国", source_division="320102", target_division="310104",
                          apply_date=date(2026, 11, 20))


def test_migration_0012_matches_the_models_and_goes_down_and_up(template_db: Path,
                                                                tmp_path: Path) -> None:
    check_migration(template_db, tmp_path, tables=TABLES, previous="0011", matches="transfer")


@pytest.fixture
async def store(template_db: Path, tmp_path: Path) -> AsyncIterator[TransferStore]:
    async with engine_copy(template_db, tmp_path) as engine:
        yield TransferStore(engine)


async def test_an_application_is_stored_once_and_decided_once(store: TransferStore) -> None:
    row, new = await store.receive(APP, source="platform", offline=False, actor="platform")
    assert new and row["status"] == "received" and row["direction"] == "out"
    again, new = await store.receive(APP, source="window", offline=True, actor="u")
    assert not new and again["source"] == "platform"
    assert await store.set_status(APP.application_no, "out_failed", reason_code="ARREARS",
                                  reason_field="id_number", reason=f"owes {APP.id_number}")
    assert not await store.set_status(APP.application_no, "out_approved")  # decided
    got = await store.get(APP.application_no)
    assert got is not None and got["status"] == "out_failed"
    assert APP.id_number not in got["reason"]  # masked when stored
    view = masked(got)
    assert "*" in view["id_number"] and view["name"].startswith("王")
    assert APP.id_number not in str(view)
    events = await store.events(APP.application_no)
    assert [e["status"] for e in events] == ["received", "out_failed"]


async def test_a_refused_application_is_kept_under_its_number(store: TransferStore) -> None:
    row, new = await store.refuse("ZY2026112000010", source="platform",
                                  raw={"id_number": "bad", "name": "x"},
                                  refusals=[Refusal("id_number", "not valid")], actor="p")
    assert new and row["status"] == "refused" and row["reason_field"] == "id_number"
    _, new = await store.refuse("ZY2026112000010", source="platform", raw={}, refusals=[],
                                actor="p")
    assert not new


async def test_the_cursor_moves_only_from_where_it_was(store: TransferStore) -> None:
    assert await store.cursor() == ""
    assert await store.set_cursor("5", 5, expect="")
    assert await store.cursor() == "5"
    assert not await store.set_cursor("9", 4, expect="0")  # another pull moved it
    assert await store.set_cursor("9", 4, expect="5")
    assert await store.cursor() == "9"


async def test_the_certificate_is_kept_once(store: TransferStore) -> None:
    first = await store.save_certificate("CK1", b"%PDF-1 first")
    assert await store.save_certificate("CK1", b"%PDF-1 second") == first
    got = await store.certificate("CK1")
    assert got is not None and got[0] == b"%PDF-1 first"
    assert await store.certificate("CK2") is None

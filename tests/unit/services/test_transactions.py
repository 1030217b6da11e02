"""services.transactions: a subject's transactions (validated, masked unless revealed) and
one transaction's hops in order with their timings."""

from __future__ import annotations

import random
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contracts.ids import make_credit_code, make_id_number
from services.transactions import (
    InvalidSubject,
    mask_business_key,
    path,
    search_by_subject,
    subject_kind,
)
from storage.journal import Journal, LogEntry, TxnUpdate, make_engine
from tests.support.ops import sqlite_url

RNG = random.Random(2015)
ID = make_id_number(RNG)
USCC = make_credit_code(RNG)
T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


@pytest.fixture
async def journal(template_db: Path, tmp_path: Path) -> AsyncIterator[Journal]:
    shutil.copy(template_db, tmp_path / "hub.db")
    j = Journal(make_engine(sqlite_url(tmp_path / "hub.db")), flush_ms=5,
                subject_key=b"unit-test-key-0123456789abcdef")
    await j.start()
    try:
        yield j
    finally:
        await j.stop()
        await j.engine.dispose()


def test_the_kind_is_guessed_from_the_shape() -> None:
    assert subject_kind(ID) == "person" and subject_kind(ID[:17] + "x") == "person"
    assert subject_kind(USCC) == "unit"


def test_a_business_key_is_masked_but_its_unit_stays() -> None:
    assert mask_business_key(f"{USCC}:{ID}") == f"{USCC}:{ID[:6]}********{ID[-4:]}"
    assert ID not in mask_business_key(f"psn:{ID}")


@pytest.mark.parametrize(("kind", "value", "field"), [
    ("person", ID[:17] + ("1" if ID[17] != "1" else "2"), "person"),
    ("unit", USCC[:17] + ("1" if USCC[17] != "1" else "2"), "unit"),
    ("person", "12345", "person"),
])
async def test_a_bad_identifier_is_refused_naming_the_field(journal: Journal, kind: str,
                                                            value: str, field: str) -> None:
    with pytest.raises(InvalidSubject) as exc:
        await search_by_subject(journal, value, kind=kind)  # type: ignore[arg-type]
    assert exc.value.field == field and value not in exc.value.reason


async def test_search_answers_masked_rows_and_reveals_on_request(journal: Journal) -> None:
    await journal.write(TxnUpdate("c1", "tax.employee.enroll", f"{USCC}:{ID}", "core",
                                  "rejected", "TX201", f"{ID} 不在职"))
    page = await search_by_subject(journal, ID.lower())
    assert page.kind == "person" and page.total == 1 and ID not in page.subject
    row = page.items[0].as_dict()
    assert row["correlation_id"] == "c1" and row["status"] == "rejected"
    assert ID not in str(row) and row["business_key"].startswith(f"{USCC}:")
    revealed = await search_by_subject(journal, ID, reveal=True)
    assert revealed.items[0].business_key == f"{USCC}:{ID}"
    assert ID not in revealed.items[0].reason  # masked at rest
    assert (await search_by_subject(journal, USCC)).total == 1


async def test_the_path_lists_hops_in_order_with_timings(journal: Journal) -> None:
    def hop(i: int, name: str, partner: str, end_ms: int, took: int) -> LogEntry:
        return LogEntry(f"m{i}", "c1", "tax.employee.enroll", partner, "out", name, "ok",
                        attempt=1, duration_ms=took, detail={"id_number": ID},
                        at=T0 + timedelta(milliseconds=end_ms))

    await journal.write(hop(1, "ingress.core", "core", 10, 10),
                        hop(2, "tax.employee", "tax", 250, 200),
                        hop(3, "core.sync", "core", 400, 30))
    hops = await path(journal, "c1")
    assert hops is not None
    assert [(h.seq, h.hop, h.partner) for h in hops] == [
        (1, "ingress.core", "core"), (2, "tax.employee", "tax"), (3, "core.sync", "core")]
    assert [h.gap_ms for h in hops] == [None, 40, 120]
    assert hops[1].started == T0 + timedelta(milliseconds=50) and hops[1].duration_ms == 200
    assert ID not in str([h.as_dict() for h in hops])
    assert await path(journal, "nobody") is None

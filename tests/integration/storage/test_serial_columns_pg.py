"""Alembic 0006 on PostgreSQL: a tax serial of up to 80 characters fits the interaction log.

On SQLite a VARCHAR length is not enforced; on PostgreSQL a question tax asks core
under a 65-80 character 业务流水号 failed the journal write (the log's ids were 64)
after core had answered. Needs PostgreSQL on 5433 (``make postgres``); each test
works in a database of its own, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from contracts.envelope import SERIAL_MAX_LENGTH
from services.ingress import CoreAnswer, Ingress
from storage.journal import Journal, LogEntry, make_engine
from storage.migrate import upgrade
from tests.support.fakes import FakePublisher

pytestmark = pytest.mark.integration

QUESTION = (Path(__file__).resolve().parents[3] / "contracts" / "fixtures" / "catalogue"
            / "CoreQueryEmployee.xml").read_bytes()
SERIAL = "Q" * SERIAL_MAX_LENGTH


class FakeCore:
    async def query(self, infno: str, params: dict[str, object]) -> list[dict[str, object]]:
        return [{"name": "王建国"}]


def _log(serial: str) -> LogEntry:
    return LogEntry(message_id=serial, correlation_id=serial, type="tax.query.employee",
                    partner="core", direction="out", hop="ingress.tax_query", outcome="ok")


async def test_a_serial_of_80_fails_the_log_before_0006_and_fits_after(pg_url: str) -> None:
    await asyncio.to_thread(upgrade, pg_url, "0005")
    journal = Journal(make_engine(pg_url))
    try:
        with pytest.raises(Exception, match="too long"):
            await journal.write(_log(SERIAL))
    finally:
        await journal.engine.dispose()
    await asyncio.to_thread(upgrade, pg_url)
    journal = Journal(make_engine(pg_url))
    await journal.start()
    try:
        await journal.write(_log(SERIAL))
        assert [r["message_id"] for r in await journal.log_for(SERIAL)] == [SERIAL]
    finally:
        await journal.stop()
        await journal.engine.dispose()


async def test_a_question_under_an_80_character_serial_is_answered_and_logged(
        pg_url: str) -> None:
    await asyncio.to_thread(upgrade, pg_url)
    journal = Journal(make_engine(pg_url))
    await journal.start()
    try:
        svc = Ingress(publisher=FakePublisher(), journal=journal,
                      core=FakeCore(),  # type: ignore[arg-type]
                      max_body_bytes=100_000, query_timeout_s=5.0)
        body = re.sub(rb">FIX-\d+<", f">{SERIAL}<".encode(), QUESTION, count=1)
        out = await svc.tax_call(body)
        assert isinstance(out, CoreAnswer) and out.ok
        [row] = await journal.log_for(SERIAL)
        assert (row["message_id"], row["hop"]) == (SERIAL, "ingress.tax_query")
    finally:
        await journal.stop()
        await journal.engine.dispose()

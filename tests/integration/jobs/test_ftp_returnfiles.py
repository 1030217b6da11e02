"""Return files end to end over real sockets: FTP simulator -> aioftp client -> SQLite -> sink.

The pyftpdlib simulator serves from a background thread on a free loopback
port; the database is a SQLite file migrated by alembic. Needs no RabbitMQ or
Redis, only loopback sockets (the marker follows the suite's convention).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from adapters.tax.ftp_fetch import FtpConfig, FtpReturnFileSource
from contracts.errors import ClientError, PartnerUnavailable, TransientError
from contracts.returnfile import KINDS, ReturnFileName, synthetic_records
from jobs.returnfiles import ReturnFileService
from simulators.tax_ftp import TaxFtpSimulator, bad_line
from storage.journal import make_engine
from storage.returnfiles import ReturnFileStore
from tests.support.fakes import FakeCore
from tests.support.ops import sqlite_url

pytestmark = pytest.mark.integration


@pytest.fixture
async def store(template_db: Path, tmp_path: Path) -> AsyncIterator[ReturnFileStore]:
    path = tmp_path / "hub.db"
    shutil.copy(template_db, path)
    engine = make_engine(sqlite_url(path))
    try:
        yield ReturnFileStore(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[TaxFtpSimulator]:
    with TaxFtpSimulator(tmp_path / "ftp") as server:
        yield server


def make_service(sim: TaxFtpSimulator, store: ReturnFileStore, sink: FakeCore,
                 tmp_path: Path) -> ReturnFileService:
    source = FtpReturnFileSource(FtpConfig("127.0.0.1", sim.port, sim.user, sim.password,
                                           timeout_s=5.0))
    return ReturnFileService(source, store, sink, spool_dir=tmp_path / "spool",
                             chunk_size=500, batch_size=400)


async def test_every_kind_is_fetched_stored_and_delivered_once(
        sim: TaxFtpSimulator, store: ReturnFileStore, tmp_path: Path) -> None:
    sizes = {kind: 300 + 100 * i for i, kind in enumerate(KINDS)}
    for kind, n in sizes.items():
        sim.drop_file(kind, n)
    sim.drop_file("flex_pay", 50, batch_no="0009", marker=False)  # still uploading
    sink = FakeCore(once=True)
    svc = make_service(sim, store, sink, tmp_path)
    reports = await svc.poll_once()
    assert {r.kind: r.status for r in reports} == dict.fromkeys(KINDS, "delivered")
    assert {r.kind: r.records for r in reports} == sizes
    arrivals = sum(1 for k, n in sizes.items() for r in synthetic_records(k, n)
                   if r.result == "1")
    assert sink.count() == arrivals
    # fetched twice: the same names again are skipped, the same bytes under a new name too
    first = ReturnFileName.parse(reports[0].name)
    assert first is not None
    copy = sim.duplicate(first, batch_no="0002")
    again = await svc.poll_once()
    assert [(r.name, r.status) for r in again] == [(copy.name, "duplicate")]
    assert await svc.poll_once() == []
    assert sink.count() == arrivals
    assert not any("0009" in r.name for r in reports)


async def test_a_corrupt_line_is_reported_by_number_and_the_rest_stored(
        sim: TaxFtpSimulator, store: ReturnFileStore, tmp_path: Path) -> None:
    sim.drop_file("resident_pay", 1000, replace={57: bad_line(), 640: b"D|\xff\n"})
    sink = FakeCore(once=True)
    [report] = await make_service(sim, store, sink, tmp_path).poll_once()
    assert report.status == "delivered" and report.records == 998
    assert [(e.line_no, e.field) for e in report.errors] == [(57, "insutype"), (640, "line")]
    assert [(e.line_no, e.field) for e in await store.line_errors(report.sha256)] == \
        [(57, "insutype"), (640, "line")]
    assert sink.count() == 998
    stored = await store.records(report.sha256, after_line=55, limit=3)
    assert [r.line_no for r in stored] == [56, 58, 59]


async def test_a_refused_login_is_a_client_error(sim: TaxFtpSimulator, store: ReturnFileStore,
                                                 tmp_path: Path) -> None:
    sim.drop_file("unit_pay", 10)
    sim.switches.refuse_login = True
    svc = make_service(sim, store, FakeCore(once=True), tmp_path)
    with pytest.raises(ClientError, match="login refused") as info:
        await svc.poll_once()
    assert info.value.partner == "tax_ftp"


async def test_a_dropped_transfer_is_transient_and_the_next_poll_recovers(
        sim: TaxFtpSimulator, store: ReturnFileStore, tmp_path: Path) -> None:
    sim.drop_file("employee_pay", 2000)
    sim.switches.drop_transfers, sim.switches.drop_after_bytes = 1, 50_000
    sink = FakeCore(once=True)
    svc = make_service(sim, store, sink, tmp_path)
    [failed] = await svc.poll_once()
    assert (failed.status, failed.reason_code) == ("fetch_failed", PartnerUnavailable.code)
    assert not list((tmp_path / "spool").glob("*.part")) and sink.count() == 0
    [ok] = await svc.poll_once()
    assert ok.status == "delivered" and ok.records == 2000 and sink.count() == 2000


async def test_a_damaged_transfer_is_caught_by_the_marker(
        sim: TaxFtpSimulator, store: ReturnFileStore, tmp_path: Path) -> None:
    sim.drop_file("special_deduct", 500)
    sim.switches.corrupt_transfers = 1
    svc = make_service(sim, store, FakeCore(once=True), tmp_path)
    [failed] = await svc.poll_once()
    assert failed.status == "fetch_failed" and "SHA-256" in failed.reason
    [ok] = await svc.poll_once()
    assert ok.status == "delivered"


async def test_a_server_that_is_down_is_transient(tmp_path: Path,
                                                  store: ReturnFileStore) -> None:
    sim = TaxFtpSimulator(tmp_path / "ftp")
    sim.start()
    sim.stop()  # the port is now closed
    svc = make_service(sim, store, FakeCore(once=True), tmp_path)
    with pytest.raises(TransientError) as info:
        await svc.poll_once()
    assert info.value.partner == "tax_ftp"

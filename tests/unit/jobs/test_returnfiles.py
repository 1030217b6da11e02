"""The return-file service with a fake FTP source, a real SQLite store and a fake core
(tests/support/fakes.py) as the arrivals sink."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from adapters.tax.ftp_fetch import FetchedFile, RemoteFile
from contracts.errors import BusinessRejected, PartnerUnavailable
from contracts.returnfile import (
    LineError,
    ReturnFileName,
    ReturnRecord,
    synthetic_records,
    write_return_file,
)
from jobs.returnfiles import ReturnFileService, batch_id
from storage.journal import make_engine
from storage.models import Base
from storage.returnfile_models import (
    ReturnFileNameRow,
    ReturnFileRow,
    ReturnLineErrorRow,
    ReturnRecordRow,
)
from storage.returnfiles import FileCounts, ReturnFileStore
from tests.support.fakes import FakeCore

TABLES = [Base.metadata.tables[m.__tablename__] for m in (
    ReturnFileRow, ReturnFileNameRow, ReturnRecordRow, ReturnLineErrorRow)]


def file_bytes(kind: str, n: int, *, batch_no: str = "0001", **kw: Any) -> bytes:
    buf = io.BytesIO()
    write_return_file(buf, kind, n, batch_no=batch_no, **kw)
    return buf.getvalue()


@dataclass
class FakeSource:
    """Tax's FTP drop in memory; ``fail`` makes the next fetches of a name fail."""

    files: dict[str, bytes] = field(default_factory=dict)
    fail: dict[str, int] = field(default_factory=dict)
    fetches: list[str] = field(default_factory=list)

    def put(self, kind: str, n: int, batch_no: str = "0001", **kw: Any) -> ReturnFileName:
        name = ReturnFileName(kind, "20250115", batch_no)
        self.files[name.name] = file_bytes(kind, n, batch_no=batch_no, **kw)
        return name

    async def list_ready(self) -> list[RemoteFile]:
        out = []
        for name, data in sorted(self.files.items()):
            parsed = ReturnFileName.parse(name)
            assert parsed is not None
            out.append(RemoteFile(parsed.path, len(data), parsed))
        return out

    async def fetch(self, remote: RemoteFile, dest_dir: Path) -> FetchedFile:
        self.fetches.append(remote.name)
        if self.fail.get(remote.name, 0) > 0:
            self.fail[remote.name] -= 1
            raise PartnerUnavailable("connection reset", partner="tax")
        data = self.files[remote.name]
        dest_dir.mkdir(parents=True, exist_ok=True)
        path = dest_dir / remote.name
        path.write_bytes(data)
        return FetchedFile(remote.name, path, hashlib.sha256(data).hexdigest(), len(data))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ReturnFileStore]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: Base.metadata.create_all(c, tables=TABLES))
    try:
        yield ReturnFileStore(engine, lease_s=0)
    finally:
        await engine.dispose()


def service(store: ReturnFileStore, source: FakeSource, sink: FakeCore, tmp_path: Path,
            **kw: Any) -> ReturnFileService:
    opts: dict[str, Any] = {"chunk_size": 7, "batch_size": 10} | kw
    return ReturnFileService(source, store, sink, spool_dir=tmp_path / "spool", **opts)


async def count(store: ReturnFileStore, model: Any, sha: str | None = None) -> int:
    q = select(func.count()).select_from(model)
    if sha is not None:
        q = q.where(model.file_sha == sha)
    async with store.engine.connect() as conn:
        return int((await conn.execute(q)).scalar_one())


async def test_a_good_file_is_stored_and_delivered_in_stable_batches(
        store: ReturnFileStore, tmp_path: Path) -> None:
    source, sink = FakeSource(), FakeCore()
    source.put("employee_pay", 25)
    [report] = await service(store, source, sink, tmp_path).poll_once()
    assert (report.status, report.lines, report.records, report.arrivals) == \
        ("delivered", 25, 25, 25)
    assert report.batches == 3 and sink.ids == [batch_id(report.sha256, i) for i in range(3)]
    assert sink.lines == list(range(2, 27))
    assert {k for _, k, _ in sink.batches} == {"employee_pay"}
    assert sink.batches[0][2][0] == next(synthetic_records("employee_pay", 1))
    assert await count(store, ReturnRecordRow) == 25
    assert not list((tmp_path / "spool").glob("*.txt"))  # the spool is cleaned


async def test_a_file_fetched_twice_is_processed_once(store: ReturnFileStore,
                                                      tmp_path: Path) -> None:
    source, sink = FakeSource(), FakeCore()
    first = source.put("flex_pay", 12)
    svc = service(store, source, sink, tmp_path)
    await svc.poll_once()
    assert await svc.poll_once() == []  # listed again: skipped by name, not even downloaded
    assert source.fetches == [first.name]
    source.files[first._replace(batch_no="0002").name] = source.files[first.name]
    [dup] = await svc.poll_once()  # same bytes, another name: skipped by content
    assert dup.status == "duplicate" and first.name in dup.reason
    assert len(sink.lines) == 12 and await count(store, ReturnRecordRow) == 12
    assert await store.known_names([first.name, dup.name]) == {first.name: "delivered",
                                                                dup.name: "delivered"}
    assert await svc.poll_once() == []


async def test_batch_ids_do_not_depend_on_the_database_or_the_run(tmp_path: Path) -> None:
    ids = []
    for run in ("a", "b"):
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / run / 'hub.db'}")
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: Base.metadata.create_all(c, tables=TABLES))
        source, sink = FakeSource(), FakeCore()
        source.put("resident_pay", 31)
        await service(ReturnFileStore(engine), source, sink, tmp_path / run).poll_once()
        ids.append(sink.ids)
        await engine.dispose()
    assert ids[0] == ids[1] and len(ids[0]) == 4
    assert ids[0][0].startswith("rf-") and ids[0][0].endswith("-000000")


async def test_a_corrupt_line_is_reported_and_the_rest_is_stored(store: ReturnFileStore,
                                                                 tmp_path: Path) -> None:
    source, sink = FakeSource(), FakeCore()
    source.put("flex_pay", 20, replace={9: b"D|S1|320102199003070017|x|310|202513|1|20250115\n"})
    [report] = await service(store, source, sink, tmp_path).poll_once()
    assert report.status == "delivered" and report.records == 19 and report.error_count == 1
    assert report.errors == (LineError(9, "period", "must be yyyymm, got '202513'"),)
    assert 9 not in sink.lines and len(sink.lines) == 19
    assert await store.line_errors(report.sha256) == list(report.errors)


async def test_a_trailer_mismatch_rejects_the_file_and_delivers_nothing(
        store: ReturnFileStore, tmp_path: Path) -> None:
    source, sink = FakeSource(), FakeCore()
    name = source.put("unit_pay", 30)
    data = source.files[name.name]
    source.files[name.name] = data.replace(b"T|30|", b"T|31|")
    svc = service(store, source, sink, tmp_path)
    [report] = await svc.poll_once()
    assert report.status == "rejected" and report.reason_code == "trailer.record_count"
    assert sink.arrival_calls == 0 and await count(store, ReturnRecordRow) == 0
    stored = await store.get(report.sha256)
    assert stored is not None and stored.status == "rejected" and stored.lines == 30
    assert (tmp_path / "spool" / "rejected" / name.name).exists()
    assert await svc.poll_once() == []  # not retried: tax must send a corrected batch


async def test_a_header_that_contradicts_the_name_rejects(store: ReturnFileStore,
                                                          tmp_path: Path) -> None:
    source, sink = FakeSource(), FakeCore()
    source.files["flex_pay_20250115_0001.txt"] = file_bytes("resident_pay", 3)
    [report] = await service(store, source, sink, tmp_path).poll_once()
    assert report.status == "rejected" and report.reason_code == "header"
    assert "resident_pay" in report.reason and sink.arrival_calls == 0


class CrashingStore(ReturnFileStore):
    """Dies on the n-th chunk, as a hub process killed mid-file would."""

    def __init__(self, base: ReturnFileStore, crash_on: int) -> None:
        super().__init__(base.engine, lease_s=0)
        self.crash_on = crash_on
        self.chunks = 0

    async def add_chunk(self, sha256: str, records: Sequence[ReturnRecord],
                        errors: Sequence[LineError]) -> None:
        self.chunks += 1
        if self.chunks == self.crash_on:
            raise RuntimeError("killed")
        await super().add_chunk(sha256, records, errors)


async def test_a_crash_mid_file_reprocesses_it_without_duplicates(store: ReturnFileStore,
                                                                  tmp_path: Path) -> None:
    source, sink = FakeSource(), FakeCore()
    name = source.put("flex_deduct", 40, replace={5: b"D|broken\n"})
    with pytest.raises(RuntimeError):
        await service(CrashingStore(store, 3), source, sink, tmp_path).poll_once()
    sha = hashlib.sha256(source.files[name.name]).hexdigest()
    assert await count(store, ReturnRecordRow, sha) > 0  # two chunks made it
    assert (await store.known_names([name.name])) == {name.name: "processing"}
    [report] = await service(store, source, sink, tmp_path).poll_once()
    assert report.status == "delivered" and report.records == 39
    assert await count(store, ReturnRecordRow, sha) == 39
    assert await count(store, ReturnLineErrorRow, sha) == 1
    failed = sum(1 for r in synthetic_records("flex_deduct", 40) if r.result == "0")
    assert len(sink.lines) == report.arrivals == 39 - failed  # failed deductions: no arrival


async def test_core_outage_pauses_delivery_and_the_next_poll_resumes(
        store: ReturnFileStore, tmp_path: Path) -> None:
    source, sink = FakeSource(), FakeCore(fail_at={2: PartnerUnavailable("core down")})
    source.put("special_pay", 35)
    svc = service(store, source, sink, tmp_path)
    [paused] = await svc.poll_once()
    assert (paused.status, paused.batches, paused.reason_code) == ("stored", 1, "UNAVAILABLE")
    [resumed] = await svc.poll_once()
    assert resumed.status == "delivered" and resumed.batches == 4
    assert sink.ids == [batch_id(paused.sha256, i) for i in range(4)]
    assert sink.lines == list(range(2, 37))  # every arrival once, in order
    assert await svc.poll_once() == []


async def test_core_refusing_a_batch_fails_the_file_for_an_operator(
        store: ReturnFileStore, tmp_path: Path) -> None:
    sink = FakeCore(fail_at={1: BusinessRejected("E100", "unknown unit")})
    source = FakeSource()
    source.put("unit_pay", 5)
    svc = service(store, source, sink, tmp_path)
    [report] = await svc.poll_once()
    assert report.status == "failed" and report.reason_code == "REJECTED"
    assert await svc.poll_once() == [] and sink.arrival_calls == 1


async def test_a_failed_fetch_is_reported_and_retried_next_poll(store: ReturnFileStore,
                                                                tmp_path: Path) -> None:
    source, sink = FakeSource(), FakeCore()
    name = source.put("resident_deduct", 8)
    source.fail[name.name] = 1
    svc = service(store, source, sink, tmp_path)
    [failed] = await svc.poll_once()
    assert (failed.status, failed.reason_code) == ("fetch_failed", "UNAVAILABLE")
    [ok] = await svc.poll_once()
    assert ok.status == "delivered" and ok.records == 8


async def test_a_file_another_worker_holds_is_left_alone(store: ReturnFileStore,
                                                         tmp_path: Path) -> None:
    source, sink = FakeSource(), FakeCore()
    name = source.put("flex_pay", 3)
    data = source.files[name.name]
    held = ReturnFileStore(store.engine, lease_s=3600)
    sha = hashlib.sha256(data).hexdigest()
    assert await held.claim(sha, name.name, name, len(data))
    [report] = await service(held, source, sink, tmp_path).poll_once()
    assert report.status == "busy" and sink.arrival_calls == 0


async def test_store_finish_marks_a_file_without_arrivals_delivered(
        store: ReturnFileStore) -> None:
    name = ReturnFileName("flex_deduct", "20250115", "0009")
    assert await store.claim("f" * 64, name.name, name, 10)
    await store.finish("f" * 64, [], [], FileCounts(lines=0))
    stored = await store.get("f" * 64)
    assert stored is not None and stored.status == "delivered"
    assert not await store.claim("f" * 64, name.name, name, 10)


async def test_run_poller_survives_failures_and_stops_on_request(
        store: ReturnFileStore, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source, sink = FakeSource(), FakeCore()
    source.put("flex_pay", 4)
    calls = 0

    class Flaky(FakeSource):
        async def list_ready(self) -> list[RemoteFile]:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise PartnerUnavailable("ftp down", partner="tax")
            if calls == 2:
                raise RuntimeError("boom\n[parameters: ('320102199003070016',)]")
            return await source.list_ready()

    flaky = Flaky(files=source.files)
    stop = asyncio.Event()
    svc = service(store, flaky, sink, tmp_path)
    task = asyncio.create_task(svc.run_poller(0.01, stop=stop))
    for _ in range(200):
        if sink.arrival_calls:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 2)
    assert calls >= 3 and len(sink.lines) == 4
    assert "ftp down" in caplog.text and "RuntimeError: boom" in caplog.text
    assert "320102199003070016" not in caplog.text  # only the first line of an error


async def test_logs_never_carry_ids_or_names(store: ReturnFileStore, tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    source, sink = FakeSource(), FakeCore()
    rec = next(synthetic_records("flex_pay", 1))
    bad = f"D|S|{rec.payer_code[:17]}0|{rec.payer_name}|310|202501|1|20250115\n".encode()
    source.put("flex_pay", 5, replace={3: bad})
    caplog.set_level("DEBUG", logger="hub.returnfiles")
    await service(store, source, sink, tmp_path).poll_once()
    assert "line 3" in caplog.text
    assert rec.payer_code[:14] not in caplog.text and rec.payer_name not in caplog.text


def test_invalid_sizes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        ReturnFileService(FakeSource(), None, FakeCore(), spool_dir=tmp_path,  # type: ignore[arg-type]
                          batch_size=0)



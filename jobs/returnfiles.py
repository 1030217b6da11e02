"""F5 回盘文件: poll tax's FTP drop, verify, parse as a stream, store, hand 到账 to core.

One poll (``ReturnFileService.poll_once``):

1. resume delivery of files already stored but not yet fully handed to core;
2. list complete files (``.ok`` marker present); names already recorded are
   skipped without downloading;
3. download each new file to the spool directory (verified against its marker);
4. skip it when its SHA-256 is known (the same bytes under another name are the
   same batch of payments: recorded as a ``duplicate`` name, processed once);
5. otherwise claim it, parse it as a stream and store records and line errors
   in chunks of ``chunk_size``; the last chunk and the final status share one
   transaction, so a crash re-does the file from line 1 without duplicates;
6. hand arrivals to core in batches of ``batch_size`` through ``ArrivalSink``,
   with batch ids derived from the file's SHA-256 and the batch index, so a
   batch re-sent after a crash carries the same id and core can drop it.

Decisions: a bad detail line is reported (line number, field, reason), stored
in ``returnfile_line_errors`` and skipped, the rest of the file is processed;
a bad header, a header that disagrees with the file name, or a trailer whose
count, checksum or total does not match rejects the whole file (status
``rejected``, its reason kept, no arrivals handed to core). A failed deduction
(result 0) is stored and reported but is no arrival. Logs carry file names,
line numbers, fields and reasons, never an ID number or a name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from adapters.tax.ftp_fetch import FetchedFile, RemoteFile, ReturnFileSource
from contracts.errors import HubError, PermanentError, TransientError, ValidationFailed
from contracts.masking import mask_text
from contracts.returnfile import (
    LineError,
    ReturnFileName,
    ReturnFileReader,
    ReturnRecord,
    iter_lines,
)
from storage.returnfiles import FileCounts, ReturnFileStore, StoredFile

__all__ = ["ArrivalSink", "FileReport", "ReportStatus", "ReturnFileService", "batch_id"]

log = logging.getLogger("hub.returnfiles")

ReportStatus = Literal["delivered", "stored", "rejected", "failed", "duplicate", "busy",
                       "fetch_failed"]

#: Line errors kept in a report (all of them are in the database).
MAX_REPORTED_ERRORS = 100
#: Line errors logged one by one per file; the rest only as a count.
MAX_LOGGED_ERRORS = 20


class ArrivalSink(Protocol):
    """Where 到账 batches go: core's arrival interface (wired in ``main.py``)."""

    async def deliver_arrivals(self, batch_id: str, kind: str,
                               records: Sequence[ReturnRecord]) -> None:
        """Hand one batch to core; the same ``batch_id`` always carries the same records.

        Raise ``TransientError`` to have the batch re-sent on the next poll,
        ``PermanentError`` to stop delivering this file (status ``failed``).
        """
        ...


def batch_id(sha256: str, index: int) -> str:
    """Stable id of the ``index``-th arrival batch of a file (for a given batch size)."""
    return f"rf-{sha256[:32]}-{index:06d}"


@dataclass(frozen=True)
class FileReport:
    """What one poll did with one file; ``errors`` holds the first line errors only."""

    name: str
    status: ReportStatus
    sha256: str = ""
    kind: str = ""
    lines: int = 0
    records: int = 0
    arrivals: int = 0
    batches: int = 0
    error_count: int = 0
    errors: tuple[LineError, ...] = ()
    reason_code: str = ""
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["errors"] = [e._asdict() for e in self.errors]
        return d


@dataclass
class _Tally:
    """Counts of one parse, and the first errors for the report."""

    arrivals: int = 0
    errors: int = 0
    sample: list[LineError] = field(default_factory=list)


class ReturnFileService:
    """Polls, verifies, stores and delivers return files; see the module docstring."""

    def __init__(self, source: ReturnFileSource, store: ReturnFileStore, sink: ArrivalSink, *,
                 spool_dir: Path, chunk_size: int = 5000, batch_size: int = 1000,
                 keep_rejected: bool = True) -> None:
        if chunk_size < 1 or batch_size < 1:
            raise ValueError("chunk_size and batch_size must be positive")
        self.source = source
        self.store = store
        self.sink = sink
        self.spool_dir = spool_dir
        self.chunk_size = chunk_size
        self.batch_size = batch_size
        self.keep_rejected = keep_rejected

    # -- polling ------------------------------------------------------------------------------

    async def poll_once(self) -> list[FileReport]:
        """One round; listing failures raise (``contracts.errors``), per-file ones are reported."""
        reports = [await self.deliver(f) for f in await self.store.files("stored")]
        ready = await self.source.list_ready()
        known = await self.store.known_names([r.name for r in ready])
        for remote in ready:
            status = known.get(remote.name)
            if status is None or status == "processing":  # new, or a crashed attempt
                reports.append(await self._take(remote))
        return reports

    async def run_poller(self, interval_s: float, *, stop: asyncio.Event | None = None) -> None:
        """Poll every ``interval_s`` until ``stop`` is set; a failed poll never ends the loop."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                await self.poll_once()
            except HubError as exc:
                log.warning("return files: poll failed [%s] %s", exc.code, mask_text(exc.reason))
            except Exception as exc:  # the database or a bug: keep polling, say what broke
                first = str(exc).split("\n", 1)[0]  # never the SQL parameters
                log.error("return files: poll crashed: %s: %s", type(exc).__name__,
                          mask_text(first)[:300])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)

    async def _take(self, remote: RemoteFile) -> FileReport:
        try:
            fetched = await self.source.fetch(remote, self.spool_dir)
        except HubError as exc:
            log.warning("return file %s: fetch failed [%s] %s", remote.name, exc.code,
                        mask_text(exc.reason))
            return FileReport(remote.name, "fetch_failed", kind=remote.parsed.kind,
                              reason_code=exc.code, reason=exc.reason)
        report: FileReport | None = None
        try:
            report = await self.process_file(fetched, remote.parsed)
            return report
        finally:
            self._discard(fetched, rejected=report is not None and report.status == "rejected")

    def _discard(self, fetched: FetchedFile, *, rejected: bool) -> None:
        """Spool files go away once stored; rejected ones are kept for an operator."""
        if rejected and self.keep_rejected:
            target = self.spool_dir / "rejected" / fetched.name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(fetched.path, target)
        else:
            fetched.path.unlink(missing_ok=True)

    # -- one file -----------------------------------------------------------------------------

    async def process_file(self, fetched: FetchedFile, parsed: ReturnFileName) -> FileReport:
        """Process one downloaded file exactly once (by content), then deliver its arrivals."""
        sha = fetched.sha256
        existing = await self.store.get(sha)
        if existing is not None and existing.status != "processing":
            await self.store.add_name(fetched.name, sha)
            log.info("return file %s: same content as %s (sha %s), not processed again",
                     fetched.name, existing.name, sha[:12])
            return FileReport(fetched.name, "duplicate", sha, existing.kind,
                              reason=f"same content as {existing.name}")
        if not await self.store.claim(sha, fetched.name, parsed, fetched.size):
            return FileReport(fetched.name, "busy", sha, parsed.kind,
                              reason="another worker is processing this file")
        tally = _Tally()
        problem = await self._ingest(fetched, parsed, tally)
        stored = await self.store.get(sha)
        assert stored is not None  # claimed above
        self._log_done(stored, tally)
        if problem is not None:
            return _report(stored, tally, "rejected")
        return await self.deliver(stored, tally)

    async def _ingest(self, fetched: FetchedFile, parsed: ReturnFileName,
                      tally: _Tally) -> ValidationFailed | None:
        """Parse and store in chunks; returns the rejection instead of raising it."""
        sha = fetched.sha256
        recs: list[ReturnRecord] = []
        errs: list[LineError] = []
        with fetched.path.open("rb") as fp:
            reader = ReturnFileReader(iter_lines(fp))
            try:
                _check_name(reader, parsed)
                for item in reader:
                    if isinstance(item, LineError):
                        errs.append(item)
                        self._note_error(fetched.name, item, tally)
                    else:
                        recs.append(item)
                        tally.arrivals += item.result == "1"
                    if len(recs) + len(errs) >= self.chunk_size:
                        await self.store.add_chunk(sha, recs, errs)
                        recs, errs = [], []
            except ValidationFailed as exc:
                counts = _counts(reader, tally)
                await self.store.reject(sha, errs, counts, exc.field[:40], exc.reason)
                log.warning("return file %s rejected: %s", fetched.name, mask_text(exc.reason))
                return exc
        await self.store.finish(sha, recs, errs, _counts(reader, tally))
        return None

    def _note_error(self, name: str, err: LineError, tally: _Tally) -> None:
        tally.errors += 1
        if len(tally.sample) < MAX_REPORTED_ERRORS:
            tally.sample.append(err)
        if tally.errors <= MAX_LOGGED_ERRORS:
            log.warning("return file %s line %d: %s: %s", name, err.line_no, err.field,
                        mask_text(err.reason))

    def _log_done(self, f: StoredFile, tally: _Tally) -> None:
        log.info("return file %s (%s, sha %s): %s, %d lines, %d records, %d line errors, "
                 "%d arrivals", f.name, f.kind, f.sha256[:12], f.status, f.lines, f.records,
                 f.line_errors, f.arrivals)
        if tally.errors > MAX_LOGGED_ERRORS:
            log.warning("return file %s: %d more line errors not logged (see the database)",
                        f.name, tally.errors - MAX_LOGGED_ERRORS)

    # -- delivery to core -----------------------------------------------------------------------

    async def deliver(self, f: StoredFile, tally: _Tally | None = None) -> FileReport:
        """Hand a stored file's arrivals to core, resuming after the last delivered batch."""
        tally = tally or _Tally(errors=f.line_errors)
        index, through = f.delivered_batches, f.delivered_through
        try:
            while True:
                batch = await self.store.records(f.sha256, after_line=through,
                                                 limit=self.batch_size, arrivals_only=True)
                if batch:
                    await self.sink.deliver_arrivals(batch_id(f.sha256, index), f.kind, batch)
                    index, through = index + 1, batch[-1].line_no
                done = len(batch) < self.batch_size
                await self.store.mark_delivered(f.sha256, batches=index, through_line=through,
                                                done=done)
                if done:
                    break
        except TransientError as exc:
            log.warning("return file %s: delivery paused at batch %d [%s] %s", f.name, index,
                        exc.code, mask_text(exc.reason))
            return _report(f, tally, "stored", index, exc.code, exc.reason)
        except PermanentError as exc:
            await self.store.fail(f.sha256, exc.code, exc.reason)
            log.error("return file %s: core refused batch %d [%s] %s", f.name, index, exc.code,
                      mask_text(exc.reason))
            return _report(f, tally, "failed", index, exc.code, exc.reason)
        return _report(f, tally, "delivered", index)


def _check_name(reader: ReturnFileReader, parsed: ReturnFileName) -> None:
    """The header must describe the file it sits in (kind, date, batch)."""
    header = reader.read_header()
    if not parsed.matches(header):
        raise ValidationFailed([("header", f"says {header.kind} {header.file_date:%Y%m%d} "
                                           f"batch {header.batch_no}, the file name says "
                                           f"{parsed.kind} {parsed.file_date} batch "
                                           f"{parsed.batch_no}")], partner="tax")


def _counts(reader: ReturnFileReader, tally: _Tally) -> FileCounts:
    s = reader.summary
    return FileCounts(lines=s.lines, records=s.records, line_errors=s.errors,
                      amount_fen=s.amount_fen, arrivals=tally.arrivals)


def _report(f: StoredFile, tally: _Tally, status: ReportStatus, batches: int = 0,
            reason_code: str = "", reason: str = "") -> FileReport:
    if status == "rejected":
        reason_code, reason = f.reason_code, f.reason
    return FileReport(f.name, status, f.sha256, f.kind, f.lines, f.records, f.arrivals, batches,
                      f.line_errors, tuple(tally.sample), reason_code, reason)

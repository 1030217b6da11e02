"""统模式 initial load (单位/职工/灵活就业/居民) and 职工批量暂停: a file -> tax, resumable.

The pipeline (``contracts/INITIAL_LOAD.md`` says which seed lines and fields):

1. read the XLSX or CSV with the student batch reader (``jobs.student_batch.read_table``:
   the same formats, encodings and file limits) and validate every row against
   ``contracts.initial_load``; a key (ID number, or a unit's credit code) repeated in
   the file is an error on its second occurrence; bad rows go to ``{stem}.{kind}.invalid``
   (row, column, reason and the original cells, for the office that sent the file);
2. send the valid rows in chunks (default 500, at most 1000) through an
   ``InitialLoadPort``, a few in flight, retrying a chunk on ``TransientError``.
   The batch id is derived from the kind, the file's bytes and the chunk size and
   the serial of a chunk is ``{batch_id}-{chunk_no}``: the same chunk is always the
   same serial, so tax replays a resend instead of applying it twice;
3. after each chunk tax answered, the manifest ``{stem}.{kind}.manifest.json`` in the
   output directory is rewritten (atomically) with that chunk's counts and failed
   rows. A job interrupted midway and started again with the same file, chunk size
   and output directory skips the chunks the manifest holds and sends the rest; a
   chunk that was in flight at the crash is sent again and tax replays it;
4. ``{stem}.{kind}.success`` and ``.failure`` (CSV and/or XLSX) list every valid row
   with tax's answer (rows of skipped chunks from the manifest).

A chunk that never reached tax after its retries does not stop the job: its rows are
failures with the hub's reason, ``chunks_failed`` counts it, and it is not in the
manifest, so running the job again sends it. A chunk tax refused as a whole is
answered, so it is kept (a resend would get the same refusal replayed).

The manifest holds row numbers, codes and (masked) reasons, never an ID number or a
name; log lines carry counts and batch ids only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Final

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from adapters.tax.initial_load import InitialLoadPort
from contracts.errors import BusinessRejected, HubError, TransientError, ValidationFailed
from contracts.initial_load import (
    COLUMNS,
    DEFAULT_CHUNK_ROWS,
    KIND_LABELS,
    MAX_CHUNK_ROWS,
    LoadKind,
    LoadResult,
    LoadRow,
    load_headers,
    validate_load_row,
)
from contracts.masking import mask_text
from contracts.student_batch import HeaderMap, RowError, cell_text
from jobs.student_batch import (
    FILE_COLUMN,
    ChunkRetry,
    _blank,
    _file_error,
    _write,
    read_table,
)

__all__ = [
    "FILE_COLUMN",
    "ChunkRetry",
    "LoadFile",
    "LoadProgress",
    "LoadSummary",
    "Manifest",
    "Progress",
    "batch_id_for",
    "manifest_path",
    "read_load_file",
    "run_initial_load",
    "write_invalid_report",
    "write_load_results",
]

log = logging.getLogger("hub.initial_load")

MANIFEST_VERSION: Final = 1
_KIND_CODE: Final[dict[LoadKind, str]] = {"unit": "U", "employee": "E", "flexible": "F",
                                          "resident": "R", "employee_suspend": "S"}
_KEY_COLUMN: Final[dict[LoadKind, tuple[str, str]]] = {
    "unit": ("统一社会信用代码", "单位名称"), "employee": ("身份证号", "姓名"),
    "flexible": ("身份证号", "姓名"), "resident": ("身份证号", "姓名"),
    "employee_suspend": ("身份证号", "姓名")}
_REPORT_HEAD: Final = ("行号", "错误列", "错误原因")


# ---------------------------------------------------------------- reading

@dataclass
class LoadFile:
    """A file read and checked: valid rows ready for tax, errors ready for the report."""

    kind: LoadKind
    path: Path
    digest: str
    headers: tuple[str, ...] = ()
    ignored_columns: tuple[str, ...] = ()
    total_rows: int = 0
    valid: list[tuple[int, LoadRow]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    invalid_cells: dict[int, tuple[object, ...]] = field(default_factory=dict)


def read_load_file(kind: LoadKind, path: Path, *, today: date | None = None) -> LoadFile:
    """Read ``path`` (XLSX or CSV, the student batch reader) and validate every row.

    File-level problems (unreadable, past a limit, no header, a required column
    missing) raise ``ValidationFailed`` naming column ``文件``/``表头``; blank rows are
    skipped; row numbers are the ones the office sees in Excel.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _file_error(f"无法读取文件：{exc}") from None
    out = LoadFile(kind=kind, path=path, digest=hashlib.sha256(raw).hexdigest())
    header: HeaderMap | None = None
    first_seen: dict[str, int] = {}
    key_field = COLUMNS[kind][_KEY_COLUMN[kind][0]]
    with contextlib.closing(read_table(path, raw)) as table:
        for row_no, cells in table:
            if _blank(cells):
                continue
            if header is None:
                header = load_headers(kind, list(cells))
                out.headers, out.ignored_columns = header.headers, header.ignored
                continue
            out.total_rows += 1
            values = header.values(cells)
            problems: list[tuple[str, str]] = []
            row: LoadRow | None = None
            try:
                row = validate_load_row(kind, values, today=today)
            except ValidationFailed as exc:
                problems.extend(exc.errors)
            key = cell_text(values.get(key_field)).upper()
            if key and key in first_seen:
                problems.append((_KEY_COLUMN[kind][0], f"与第{first_seen[key]}行重复"))
            elif key:
                first_seen[key] = row_no
            if problems:
                out.errors.extend(RowError(row_no=row_no, column=c, reason=r)
                                  for c, r in problems)
                out.invalid_cells[row_no] = tuple(cells)
            elif row is not None:
                out.valid.append((row_no, row))
    if header is None:
        raise _file_error("文件为空：没有表头行")
    return out


def batch_id_for(kind: LoadKind, digest: str, chunk_size: int) -> str:
    """Same kind, same file, same chunking -> same batch id -> tax replays, never repeats."""
    return f"IL{_KIND_CODE[kind]}_{digest[:20]}_{chunk_size}"


# ---------------------------------------------------------------- the manifest

def manifest_path(out_dir: Path, kind: LoadKind, source: Path) -> Path:
    return out_dir / f"{source.stem}.{kind}.manifest.json"


@dataclass
class Manifest:
    """Which chunks tax has answered, kept beside the reports so a rerun can skip them.

    ``chunks[n]`` is ``{"ok": rows done, "failed": [[row_no, code, reason], ...]}``.
    """

    path: Path
    kind: LoadKind
    digest: str
    batch_id: str
    chunk_size: int
    chunk_count: int
    chunks: dict[int, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def open(cls, path: Path, *, kind: LoadKind, digest: str, batch_id: str, chunk_size: int,
             chunk_count: int, resume: bool = True) -> Manifest:
        """The manifest of this very job (same kind, file, chunking) if one is on disk and
        ``resume``; else a new, empty one (an unreadable or foreign manifest is replaced)."""
        fresh = cls(path, kind, digest, batch_id, chunk_size, chunk_count)
        if not resume or not path.exists():
            return fresh
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            same = (data.get("version"), data.get("kind"), data.get("digest"),
                    data.get("batch_id"), data.get("chunk_size"), data.get("chunk_count")) == \
                (MANIFEST_VERSION, kind, digest, batch_id, chunk_size, chunk_count)
            if not same:
                log.warning("manifest %s is of another file or chunking: starting over", path)
                return fresh
            fresh.chunks = {int(n): {"ok": int(c["ok"]),
                                     "failed": [[int(r), str(code), str(text)]
                                                for r, code, text in c["failed"]]}
                            for n, c in data["chunks"].items()}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("manifest %s unreadable (%s): starting over", path, type(exc).__name__)
            return cls(path, kind, digest, batch_id, chunk_size, chunk_count)
        return fresh

    def record(self, chunk_no: int, results: Sequence[LoadResult]) -> None:
        """Keep tax's answer to one chunk and write the manifest (temp file, then rename)."""
        self.chunks[chunk_no] = {
            "ok": sum(r.ok for r in results),
            "failed": [[r.row_no, r.reason_code, mask_text(r.reason_text)]
                       for r in results if not r.ok]}
        self.save()

    def save(self) -> None:
        data = {"version": MANIFEST_VERSION, "kind": self.kind, "digest": self.digest,
                "batch_id": self.batch_id, "chunk_size": self.chunk_size,
                "chunk_count": self.chunk_count,
                "chunks": {str(n): c for n, c in sorted(self.chunks.items())}}
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.path)

    def results(self, chunk_no: int, rows: Sequence[tuple[int, LoadRow]]) -> list[LoadResult]:
        """The recorded answer of a chunk as per-row results (keys from the file's rows)."""
        failed = {r: (code, text) for r, code, text in self.chunks[chunk_no]["failed"]}
        out: list[LoadResult] = []
        for row_no, row in rows:
            code, text = failed.get(row_no, ("", ""))
            out.append(LoadResult(row_no=row_no, key=row.key, ok=row_no not in failed,
                                  reason_code=code, reason_text=text))
        return out


# ---------------------------------------------------------------- sending

@dataclass
class LoadProgress:
    """What the caseworker sees while the job runs (API and CLI)."""

    rows_total: int = 0
    rows_sent: int = 0
    rows_ok: int = 0
    rows_failed: int = 0
    chunks_total: int = 0
    chunks_done: int = 0

    def view(self) -> dict[str, int]:
        return {"rows_total": self.rows_total, "rows_sent": self.rows_sent,
                "rows_ok": self.rows_ok, "rows_failed": self.rows_failed,
                "chunks_total": self.chunks_total, "chunks_done": self.chunks_done}


Progress = Callable[[LoadProgress], None]


@dataclass
class _Run:
    kind: LoadKind
    port: InitialLoadPort
    manifest: Manifest
    retry: ChunkRetry
    progress: LoadProgress
    report: Progress | None
    chunks_failed: int = 0
    retries: int = 0

    def tell(self) -> None:
        if self.report is not None:
            self.report(self.progress)


def _failed(rows: Sequence[tuple[int, LoadRow]], code: str, text: str) -> list[LoadResult]:
    return [LoadResult(row_no=n, key=r.key, ok=False, reason_code=code,
                       reason_text=text[:500]) for n, r in rows]


def _match(rows: Sequence[tuple[int, LoadRow]], answer: Sequence[LoadResult]) -> list[LoadResult]:
    """Tax's results in the chunk's order; a row tax skipped or garbled is a failure."""
    by_no = {r.row_no: r for r in answer}
    out: list[LoadResult] = []
    for row_no, row in rows:
        r = by_no.get(row_no)
        if r is None:
            out.extend(_failed([(row_no, row)], "HUB_NO_RESULT", "税务未返回该行结果"))
        elif r.key != row.key:
            out.extend(_failed([(row_no, row)], "HUB_MISMATCH", "税务返回的证件号码与该行不符"))
        else:
            out.append(r)
    return out


async def _send(run: _Run, chunk_no: int, chunk_count: int,
                rows: Sequence[tuple[int, LoadRow]]) -> list[LoadResult]:
    """One chunk with its retries; the answer is kept in the manifest once tax gave one."""
    def count(_: RetryCallState) -> None:
        run.retries += 1

    batch_id = run.manifest.batch_id
    retrying = AsyncRetrying(
        stop=stop_after_attempt(run.retry.attempts),
        wait=wait_random_exponential(multiplier=run.retry.min_wait_s, max=run.retry.max_wait_s),
        retry=retry_if_exception_type(TransientError), reraise=True, before_sleep=count)
    try:
        async for attempt in retrying:
            with attempt:
                answer = await run.port.submit(run.kind, batch_id, chunk_no, chunk_count, rows)
    except BusinessRejected as exc:
        results = _failed(rows, exc.reason_code, f"税务拒绝整块数据：{exc.reason_text}")
    except TransientError as exc:
        run.chunks_failed += 1
        log.warning("initial load chunk %s-%d undelivered after %d attempts: %s",
                    batch_id, chunk_no, run.retry.attempts, mask_text(exc.reason))
        return _failed(rows, exc.code, f"税务未应答（已尝试{run.retry.attempts}次）："
                                       f"{exc.reason}；重新运行本作业即可续传，税务不会重复处理")
    except HubError as exc:
        run.chunks_failed += 1
        return _failed(rows, exc.code, f"税务拒收该块数据：{exc.reason}")
    else:
        results = _match(rows, answer)
    run.manifest.record(chunk_no, results)
    return results


def _count(progress: LoadProgress, results: Sequence[LoadResult], *, sent: bool) -> None:
    ok = sum(r.ok for r in results)
    progress.rows_ok += ok
    progress.rows_failed += len(results) - ok
    if sent:
        progress.rows_sent += len(results)
        progress.chunks_done += 1


# ---------------------------------------------------------------- writing

def write_invalid_report(lf: LoadFile, out_dir: Path, *,
                         formats: Sequence[str] = ("csv", "xlsx")) -> dict[str, Path]:
    """Rows that failed validation: 行号, 错误列, 错误原因, then the original cells (for the
    office that sent the file, so it can correct and send them again)."""
    width = len(lf.headers)
    rows = [(e.row_no, e.column, e.reason,
             *(lf.invalid_cells[e.row_no] + (None,) * width)[:width]) for e in lf.errors]
    return _write(rows, (*_REPORT_HEAD, *lf.headers),
                  out_dir / f"{lf.path.stem}.{lf.kind}.invalid", formats)


def write_load_results(lf: LoadFile, results: Sequence[LoadResult], out_dir: Path, *,
                       formats: Sequence[str] = ("csv", "xlsx")) -> dict[str, Path]:
    """``{stem}.{kind}.success`` and ``.failure``: 行号, key, name, 结果, 原因代码, 原因说明."""
    key_column, label_column = _KEY_COLUMN[lf.kind]
    header = ("行号", key_column, label_column, "结果", "原因代码", "原因说明")
    rows = dict(lf.valid)
    written: dict[str, Path] = {}
    for group, ok in (("success", True), ("failure", False)):
        table = [[r.row_no, rows[r.row_no].key, rows[r.row_no].label, "成功" if ok else "失败",
                  r.reason_code, r.reason_text] for r in results if r.ok is ok]
        for fmt, path in _write(table, header, out_dir / f"{lf.path.stem}.{lf.kind}.{group}",
                                formats).items():
            written[f"{group}.{fmt}"] = path
    return written


# ---------------------------------------------------------------- the job

@dataclass
class LoadSummary:
    """What happened to one file; ``lines()`` is what the CLI prints."""

    kind: LoadKind
    source: Path
    batch_id: str
    total_rows: int = 0
    valid_rows: int = 0
    invalid_rows: int = 0
    sent: int = 0
    ok: int = 0
    failed: int = 0
    chunks: int = 0
    chunks_done: int = 0
    chunks_skipped: int = 0
    chunks_failed: int = 0
    retries: int = 0
    seconds: float = 0.0
    ignored_columns: tuple[str, ...] = ()
    manifest: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {"rows": self.total_rows, "valid": self.valid_rows,
                "invalid": self.invalid_rows, "sent": self.sent, "ok": self.ok,
                "failed": self.failed, "chunks": self.chunks, "chunks_done": self.chunks_done,
                "chunks_skipped": self.chunks_skipped, "chunks_failed": self.chunks_failed,
                "retries": self.retries}

    def lines(self) -> list[str]:
        out = [
            f"{KIND_LABELS[self.kind]} {self.source.name}  批次号 {self.batch_id}",
            f"  rows {self.total_rows}: valid {self.valid_rows}, invalid {self.invalid_rows}",
            f"  tax: sent {self.sent}, ok {self.ok}, failed {self.failed}",
            f"  chunks {self.chunks}: done {self.chunks_done} (resumed {self.chunks_skipped}), "
            f"failed {self.chunks_failed}, retries {self.retries}",
            f"  {self.seconds:.2f}s",
        ]
        if self.ignored_columns:
            out.append("  ignored columns: " + ", ".join(self.ignored_columns))
        out.extend(f"  {key}: {path}" for key, path in sorted(self.files.items()))
        return out


async def run_initial_load(kind: LoadKind, source: Path, port: InitialLoadPort, out_dir: Path,
                           *, chunk_size: int = DEFAULT_CHUNK_ROWS, concurrency: int = 4,
                           retry: ChunkRetry | None = None, progress: Progress | None = None,
                           resume: bool = True, today: date | None = None,
                           formats: Sequence[str] = ("csv", "xlsx")) -> LoadSummary:
    """The whole job for one file; run it again with the same file, chunk size and
    ``out_dir`` after an interruption and it continues. Raises ValidationFailed (column
    ``文件``/``表头``) only when the file cannot be read at all (nothing is sent)."""
    if not 1 <= chunk_size <= MAX_CHUNK_ROWS:
        raise ValueError(f"chunk_size must be 1..{MAX_CHUNK_ROWS}, got {chunk_size}")
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    started = time.perf_counter()
    lf = await asyncio.to_thread(read_load_file, kind, source, today=today)
    out_dir.mkdir(parents=True, exist_ok=True)
    chunks = [lf.valid[i:i + chunk_size] for i in range(0, len(lf.valid), chunk_size)]
    batch_id = batch_id_for(kind, lf.digest, chunk_size)
    manifest = Manifest.open(manifest_path(out_dir, kind, source), kind=kind, digest=lf.digest,
                             batch_id=batch_id, chunk_size=chunk_size,
                             chunk_count=len(chunks), resume=resume)
    summary = LoadSummary(kind=kind, source=source, batch_id=batch_id,
                          total_rows=lf.total_rows, valid_rows=len(lf.valid),
                          invalid_rows=len(lf.invalid_cells), chunks=len(chunks),
                          ignored_columns=lf.ignored_columns, manifest=manifest.path)
    summary.files.update({f"invalid.{fmt}": path for fmt, path in (await asyncio.to_thread(
        write_invalid_report, lf, out_dir, formats=formats)).items()})

    run = _Run(kind, port, manifest, retry or ChunkRetry(),
               LoadProgress(rows_total=len(lf.valid), chunks_total=len(chunks)), progress)
    answers: dict[int, list[LoadResult]] = {}
    for n, chunk in enumerate(chunks, start=1):
        if n in manifest.chunks:
            answers[n] = manifest.results(n, chunk)
            _count(run.progress, answers[n], sent=True)
            summary.chunks_skipped += 1
    if not manifest.path.exists():
        manifest.save()  # the job is on disk before the first chunk leaves
    run.tell()
    pending = iter([(n, c) for n, c in enumerate(chunks, start=1) if n not in answers])

    async def worker() -> None:
        for chunk_no, chunk in pending:  # shared iterator: each chunk goes to one worker
            results = await _send(run, chunk_no, len(chunks), chunk)
            answers[chunk_no] = results
            _count(run.progress, results, sent=chunk_no in manifest.chunks)
            run.tell()

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, len(chunks) - len(answers))):
                group.create_task(worker())
    except BaseExceptionGroup as eg:  # a crash of one worker: raise it as it was
        if len(eg.exceptions) == 1:
            raise eg.exceptions[0] from None
        raise
    results = [r for n in range(1, len(chunks) + 1) for r in answers[n]]
    p = run.progress
    summary.sent, summary.ok, summary.failed = p.rows_sent, p.rows_ok, p.rows_failed
    summary.chunks_done, summary.chunks_failed, summary.retries = \
        p.chunks_done, run.chunks_failed, run.retries
    summary.files.update(await asyncio.to_thread(write_load_results, lf, results, out_dir,
                                                 formats=formats))
    summary.seconds = time.perf_counter() - started
    log.info("initial load %s %s: %d rows, %d invalid, sent %d, ok %d, failed %d; chunks %d "
             "done %d (resumed %d) failed %d", kind, batch_id, summary.total_rows,
             summary.invalid_rows, summary.sent, summary.ok, summary.failed, summary.chunks,
             summary.chunks_done, summary.chunks_skipped, summary.chunks_failed)
    return summary

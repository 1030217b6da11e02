"""F2 大学生批量参保 / 大学生批量暂停: a university's file -> tax, row by row, in chunks.

The pipeline, in the order a caseworker sees it:

1. read the XLSX (openpyxl read-only, streamed) or CSV (UTF-8, UTF-8 with BOM
   or GBK) by its Chinese header names, whatever the column order;
2. validate every row against ``contracts.student_batch``; a repeated ID
   number is an error on its second occurrence; bad rows go to a failure
   report (CSV and XLSX) naming row number, column and reason, with the
   original cells so the university can fix them and send them again;
3. send the valid rows in chunks (default 500) through a ``StudentBatchPort``,
   a few chunks in flight at once, retrying a chunk on ``TransientError``
   with tenacity. The serial is ``{batch_id}-{chunk_no}`` on every attempt,
   so tax replays instead of enrolling twice; the default batch id is derived
   from the file's bytes and the chunk size, so running the same file again
   (after a crash) replays too;
4. split tax's per-row answers into success / failure / 困难人员 (a person the
   hub's own 困难人员库 holds is 困难人员 too: ``held``, ``mark_held``) and write
   one file per group.

A chunk that still fails after its retries does not stop the batch: its rows
are reported as failures with the hub's reason, and ``chunks_failed`` says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import io
import logging
import struct
import time
import zipfile
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Final

import openpyxl
from openpyxl.utils.exceptions import InvalidFileException
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from adapters.tax.student_batch import StudentBatchPort
from contracts.difficulty import identity_label
from contracts.errors import BusinessRejected, HubError, TransientError, ValidationFailed
from contracts.student_batch import (
    DIFFICULTY_TYPES,
    MAX_CHUNK_ROWS,
    MAX_FILE_COLUMNS,
    MAX_FILE_ROWS,
    MAX_XLSX_MEMBERS,
    MAX_XLSX_RATIO,
    MAX_XLSX_UNZIPPED_BYTES,
    STOP_REASONS,
    XLSX_RATIO_GRACE_BYTES,
    BatchOp,
    HeaderMap,
    RowError,
    RowResult,
    StudentEnrollRow,
    StudentRow,
    cell_text,
    map_headers,
    validate_row,
)

__all__ = [
    "FILE_COLUMN",
    "HELD_REASON",
    "BatchSummary",
    "ChunkRetry",
    "HeldLookup",
    "Progress",
    "SendStats",
    "ValidatedFile",
    "batch_id_for",
    "check_readable",
    "check_xlsx_archive",
    "mark_held",
    "read_and_validate",
    "read_table",
    "run_batch",
    "split_results",
    "submit_rows",
    "write_failure_report",
    "write_results",
]

log = logging.getLogger("hub.student_batch")

FILE_COLUMN: Final = "文件"
"""The 'column' of a file-level error (unreadable file, bad header)."""
Progress = Callable[[int, int], None]
"""``progress(rows_done, rows_total)`` after each chunk tax answered (CLI: tqdm)."""
HeldLookup = Callable[[list[str]], Awaitable[Mapping[str, Sequence[str]]]]
"""The hub's 困难人员库 (F7, ``storage.difficulty.DifficultyStore.held_active``): ID numbers
-> the identity codes in force held for each (persons holding none left out)."""
HELD_REASON: Final = "HUB_DIFFICULTY"
"""``reason_code`` of a row the hub's 困难人员库 made 困难人员 (seed 003 line 1816)."""

_REPORT_HEAD: Final = ("行号", "错误列", "错误原因")
_STATUS_LABEL: Final = {"success": "成功", "failure": "失败", "difficulty": "困难人员"}
_GROUPS: Final = ("success", "failure", "difficulty")
_Rows = Generator[tuple[int, Sequence[object]], None, None]


# ---------------------------------------------------------------- reading

def _file_error(reason: str) -> ValidationFailed:
    return ValidationFailed([(FILE_COLUMN, reason)])


def _decode(raw: bytes) -> tuple[str, str]:
    """(text, encoding): UTF-8 with or without BOM, else GBK (read as its superset GB18030)."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", "strict"), "utf-8-sig"
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030"), "gbk"
    except UnicodeDecodeError:
        raise _file_error("无法识别文件编码（支持 UTF-8、UTF-8 BOM、GBK）") from None


def _csv_rows(raw: bytes) -> _Rows:
    text, _ = _decode(raw)
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first and "," not in first else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for row_no, cells in enumerate(reader, start=1):
            yield row_no, cells[:MAX_FILE_COLUMNS]
    except csv.Error as exc:
        raise _file_error(f"CSV 格式错误（第{reader.line_num}行）：{exc}") from None


_EOCD: Final = b"PK\x05\x06"
_EOCD_SIZE: Final = 22
_MAX_DIRECTORY_BYTES: Final = MAX_XLSX_MEMBERS * 1024


def _zip_directory(path: Path) -> tuple[int, int]:
    """(members, bytes) of the zip central directory, from its end record: read before
    zipfile, which loads the whole directory into memory."""
    with path.open("rb") as fh:
        size = fh.seek(0, io.SEEK_END)
        tail_len = min(size, _EOCD_SIZE + 0xFFFF)  # the record, then a comment of <= 64 KiB
        fh.seek(size - tail_len)
        tail = fh.read(tail_len)
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) - at < _EOCD_SIZE:
        raise _file_error("不是可读取的 XLSX 文件：没有 ZIP 目录")
    members, directory = struct.unpack_from("<HI", tail, at + 10)
    return int(members), int(directory)


def check_xlsx_archive(path: Path) -> None:
    """Refuse an XLSX whose archive is larger inside than a student file can be: too many
    members, more than ``MAX_XLSX_UNZIPPED_BYTES`` unzipped, or a member inflating more
    than ``MAX_XLSX_RATIO`` times (a zip bomb). Only the zip directory is read."""
    members, directory = _zip_directory(path)
    # ZIP64 marks its counts 0xFFFF / 0xFFFFFFFF here: both are over these limits.
    if members > MAX_XLSX_MEMBERS or directory > _MAX_DIRECTORY_BYTES:
        raise _file_error(f"XLSX 含 {members} 个压缩成员（目录 {directory} 字节），"
                          f"超过 {MAX_XLSX_MEMBERS} 个的上限")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise _file_error(f"不是可读取的 XLSX 文件：{type(exc).__name__}: {exc}") from None
    if len(infos) > MAX_XLSX_MEMBERS:
        raise _file_error(f"XLSX 含 {len(infos)} 个压缩成员，超过 {MAX_XLSX_MEMBERS} 个的上限")
    unzipped = sum(i.file_size for i in infos)
    if unzipped > MAX_XLSX_UNZIPPED_BYTES:
        raise _file_error(f"XLSX 解压后共 {unzipped} 字节，超过 {MAX_XLSX_UNZIPPED_BYTES} "
                          "字节的上限")
    for i in infos:
        if i.file_size > XLSX_RATIO_GRACE_BYTES and \
                i.file_size > MAX_XLSX_RATIO * max(i.compress_size, 1):
            ratio = i.file_size // max(i.compress_size, 1)
            raise _file_error(f"XLSX 成员 {i.filename[:80]} 的压缩比 {ratio}:1 超过 "
                              f"{MAX_XLSX_RATIO}:1 的上限（疑似压缩炸弹）")


def _xlsx_rows(path: Path) -> _Rows:
    """Stream the first sheet; the workbook is closed however the iteration ends.

    The archive is checked first (``check_xlsx_archive``); rows are read up to one past
    ``MAX_FILE_ROWS`` (so a longer sheet is seen and refused) and ``MAX_FILE_COLUMNS``
    wide, without the empty cells at the end of a row.
    """
    check_xlsx_archive(path)
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, OSError,
            SyntaxError) as exc:  # SyntaxError: xml ParseError of a damaged part
        raise _file_error(f"不是可读取的 XLSX 文件：{type(exc).__name__}: {exc}") from None
    try:
        ws = wb.worksheets[0]
        ws.reset_dimensions()  # some writers store a wrong dimension; read every cell
        rows = ws.iter_rows(max_row=MAX_FILE_ROWS + 1, max_col=MAX_FILE_COLUMNS,
                            values_only=True)
        for row_no, cells in enumerate(rows, start=1):
            end = len(cells)
            while end and cells[end - 1] is None:
                end -= 1
            yield row_no, cells[:end]
    except (zipfile.BadZipFile, KeyError, ValueError, SyntaxError) as exc:
        raise _file_error(f"XLSX 内容损坏：{type(exc).__name__}: {exc}") from None
    finally:
        wb.close()


def _limited(rows: _Rows) -> _Rows:
    """The rows, refusing the file at the first row number past ``MAX_FILE_ROWS``."""
    for row_no, cells in rows:
        if row_no > MAX_FILE_ROWS:
            raise _file_error(f"文件超过 {MAX_FILE_ROWS} 行的上限（含表头和空行）")
        yield row_no, cells


def read_table(path: Path, raw: bytes | None = None) -> _Rows:
    """(row number, cells) of every row, header included; the format follows the name/magic.

    Files past the limits of ``contracts.student_batch`` (rows, XLSX archive) raise
    ``ValidationFailed`` naming the file; at most ``MAX_FILE_COLUMNS`` cells of a row.
    """
    suffix = path.suffix.lower()
    if suffix == ".xls":
        raise _file_error("不支持旧版 .xls，请另存为 .xlsx 或 .csv")
    if raw is None:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise _file_error(f"无法读取文件：{exc}") from None
    if suffix in (".xlsx", ".xlsm") or (suffix not in (".csv", ".txt")
                                        and raw.startswith(b"PK\x03\x04")):
        return _limited(_xlsx_rows(path))
    return _limited(_csv_rows(raw))


def check_readable(path: Path) -> int:
    """Read ``path`` through without validating it: its number of rows (header and blank
    rows included), or ``ValidationFailed`` naming the file when it cannot be read or is
    past a limit. What an upload is refused for before a job starts."""
    rows = 0
    with contextlib.closing(read_table(path)) as table:
        for rows, _ in table:  # noqa: B007  (the last row number is the count)
            pass
    return rows


@dataclass
class ValidatedFile:
    """A file read and checked: valid rows ready for tax, errors ready for the report."""

    op: BatchOp
    path: Path
    digest: str
    header_row: int = 0
    headers: tuple[str, ...] = ()
    ignored_columns: tuple[str, ...] = ()
    total_rows: int = 0
    valid: list[tuple[int, StudentRow]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    invalid_cells: dict[int, tuple[object, ...]] = field(default_factory=dict)

    @property
    def invalid_rows(self) -> int:
        return len(self.invalid_cells)


def _blank(cells: Sequence[object]) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


def read_and_validate(op: BatchOp, path: Path, *, today: date | None = None) -> ValidatedFile:
    """Read ``path`` and validate every row; file-level problems raise ValidationFailed.

    Blank rows are skipped (templates end with many). Row numbers are the ones
    the university sees in Excel (the header is usually row 1).
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _file_error(f"无法读取文件：{exc}") from None
    out = ValidatedFile(op=op, path=path, digest=hashlib.sha256(raw).hexdigest())
    with contextlib.closing(read_table(path, raw)) as table:  # closes the workbook on errors
        header = _validate_rows(op, table, out, today)
    if header is None:
        raise _file_error("文件为空：没有表头行")
    return out


def _validate_rows(op: BatchOp, table: _Rows, out: ValidatedFile,
                   today: date | None) -> HeaderMap | None:
    header: HeaderMap | None = None
    first_seen: dict[str, int] = {}
    for row_no, cells in table:
        if _blank(cells):
            continue
        if header is None:
            header = map_headers(op, cells)
            out.header_row, out.headers, out.ignored_columns = \
                row_no, header.headers, header.ignored
            continue
        out.total_rows += 1
        values = header.values(cells)
        errors: list[tuple[str, str]] = []
        row: StudentRow | None = None
        try:
            row = validate_row(op, values, today=today)
        except ValidationFailed as exc:
            errors.extend(exc.errors)
        id_text = cell_text(values.get("id_number")).upper()
        if id_text:
            if id_text in first_seen:
                errors.append(("身份证号", f"与第{first_seen[id_text]}行重复"))
            else:
                first_seen[id_text] = row_no
        if errors:
            out.errors.extend(RowError(row_no=row_no, column=c, reason=r) for c, r in errors)
            out.invalid_cells[row_no] = tuple(cells)
        elif row is not None:
            out.valid.append((row_no, row))
    return header


def batch_id_for(op: BatchOp, digest: str, chunk_size: int) -> str:
    """Same file, same operation, same chunking -> same batch id -> tax replays, never repeats."""
    return f"SB{'E' if op == 'enroll' else 'S'}_{digest[:20]}_{chunk_size}"


# ---------------------------------------------------------------- sending

@dataclass(frozen=True)
class ChunkRetry:
    """In-process retries of one chunk (same serial each time), jittered exponential backoff."""

    attempts: int = 4
    min_wait_s: float = 0.1
    max_wait_s: float = 2.0


@dataclass
class SendStats:
    """Chunk counters of one ``submit_rows`` run."""

    chunks: int = 0
    chunks_failed: int = 0
    retries: int = 0


def _failed(rows: Sequence[tuple[int, StudentRow]], code: str, text: str) -> list[RowResult]:
    return [RowResult(row_no=n, id_number=r.id_number, status="failure", reason_code=code,
                      reason_text=text[:500]) for n, r in rows]


def _match(rows: Sequence[tuple[int, StudentRow]], answer: Sequence[RowResult]) -> list[RowResult]:
    """Tax's results in the chunk's order; a row tax skipped or garbled is a failure."""
    by_no = {r.row_no: r for r in answer}
    out: list[RowResult] = []
    for row_no, row in rows:
        r = by_no.get(row_no)
        if r is None:
            out.extend(_failed([(row_no, row)], "HUB_NO_RESULT", "税务未返回该行结果"))
        elif r.id_number != row.id_number:
            out.extend(_failed([(row_no, row)], "HUB_MISMATCH", "税务返回的身份证号与该行不符"))
        else:
            out.append(r)
    return out


async def _send_chunk(port: StudentBatchPort, op: BatchOp, batch_id: str, chunk_no: int,
                      chunk_count: int, rows: Sequence[tuple[int, StudentRow]],
                      retry: ChunkRetry, stats: SendStats) -> list[RowResult]:
    def count(_: RetryCallState) -> None:
        stats.retries += 1

    retrying = AsyncRetrying(
        stop=stop_after_attempt(retry.attempts),
        wait=wait_random_exponential(multiplier=retry.min_wait_s, max=retry.max_wait_s),
        retry=retry_if_exception_type(TransientError), reraise=True, before_sleep=count)
    try:
        async for attempt in retrying:
            with attempt:
                answer = await port.submit(op, batch_id, chunk_no, chunk_count, rows)
    except BusinessRejected as exc:
        stats.chunks_failed += 1
        return _failed(rows, exc.reason_code, f"税务拒绝整块数据：{exc.reason_text}")
    except TransientError as exc:
        stats.chunks_failed += 1
        log.warning("chunk %s-%d undelivered after %d attempts: %s",
                    batch_id, chunk_no, retry.attempts, exc.reason)
        return _failed(rows, exc.code, f"税务未应答（已尝试{retry.attempts}次）：{exc.reason}；"
                                       "可用同一批次号重新提交，税务不会重复处理")
    except HubError as exc:
        stats.chunks_failed += 1
        return _failed(rows, exc.code, f"税务拒收该块数据：{exc.reason}")
    return _match(rows, answer)


async def submit_rows(port: StudentBatchPort, op: BatchOp, batch_id: str,
                      rows: Sequence[tuple[int, StudentRow]], *, chunk_size: int = 500,
                      concurrency: int = 4, retry: ChunkRetry | None = None,
                      progress: Progress | None = None) -> tuple[list[RowResult], SendStats]:
    """Send ``rows`` in chunks, at most ``concurrency`` in flight; results in row order."""
    if not 1 <= chunk_size <= MAX_CHUNK_ROWS:
        raise ValueError(f"chunk_size must be 1..{MAX_CHUNK_ROWS}, got {chunk_size}")
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    retry = retry or ChunkRetry()
    chunks = [rows[i:i + chunk_size] for i in range(0, len(rows), chunk_size)]
    stats = SendStats(chunks=len(chunks))
    answers: dict[int, list[RowResult]] = {}
    pending = iter(enumerate(chunks, start=1))
    done = 0
    if progress:
        progress(0, len(rows))

    async def worker() -> None:
        nonlocal done
        for chunk_no, chunk in pending:  # shared iterator: each chunk goes to one worker
            answers[chunk_no] = await _send_chunk(port, op, batch_id, chunk_no, len(chunks),
                                                  chunk, retry, stats)
            done += len(chunk)
            if progress:
                progress(done, len(rows))

    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, len(chunks))):
            group.create_task(worker())
    return [r for n in range(1, len(chunks) + 1) for r in answers[n]], stats


async def mark_held(results: Sequence[RowResult], held: HeldLookup) -> list[RowResult]:
    """困难人员 also from the hub's own 困难人员库 (seed 003 line 1816: 困难人员需要与困难人员库
    中进行比对): a row tax enrolled (success) whose person the hub holds with an identity
    in force is reported 困难人员, with the identities as its reason. Failures stay
    failures; rows tax already called 困难人员 are left as tax said."""
    wanted = sorted({r.id_number for r in results if r.status == "success"})
    found = await held(wanted) if wanted else {}
    out = []
    for r in results:
        codes = found.get(r.id_number) if r.status == "success" else None
        if codes:
            r = r.model_copy(update={
                "status": "difficulty", "reason_code": HELD_REASON,
                "reason_text": "困难人员库: " + "、".join(f"{c} {identity_label(c)}"
                                                        for c in codes)})
        out.append(r)
    return out


def split_results(results: Sequence[RowResult]) -> dict[str, list[RowResult]]:
    """success / failure / difficulty (困难人员), each in row order."""
    out: dict[str, list[RowResult]] = {g: [] for g in _GROUPS}
    for r in results:
        out[r.status].append(r)
    return out


# ---------------------------------------------------------------- writing

def _write(rows: Sequence[Sequence[object]], header: Sequence[str], base: Path,
           formats: Sequence[str]) -> dict[str, Path]:
    """One table as CSV (UTF-8 with BOM, so Excel shows Chinese) and/or XLSX."""
    written: dict[str, Path] = {}
    if "csv" in formats:
        path = base.parent / f"{base.name}.csv"
        with path.open("w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows([cell_text(c) for c in row] for row in rows)
        written["csv"] = path
    if "xlsx" in formats:
        path = base.parent / f"{base.name}.xlsx"
        wb = openpyxl.Workbook(write_only=True)
        ws = wb.create_sheet()
        ws.append(list(header))
        for row in rows:
            ws.append(list(row))
        wb.save(path)
        wb.close()
        written["xlsx"] = path
    return written


def write_failure_report(vf: ValidatedFile, out_dir: Path, *,
                         formats: Sequence[str] = ("csv", "xlsx")) -> dict[str, Path]:
    """The downloadable report of invalid rows: 行号, 错误列, 错误原因, then the original cells."""
    width = len(vf.headers)
    rows = [(e.row_no, e.column, e.reason,
             *(vf.invalid_cells[e.row_no] + (None,) * width)[:width]) for e in vf.errors]
    return _write(rows, (*_REPORT_HEAD, *vf.headers), out_dir / f"{vf.path.stem}.invalid",
                  formats)


def _result_table(op: BatchOp, rows: dict[int, StudentRow],
                  results: Sequence[RowResult]) -> tuple[tuple[str, ...], list[list[object]]]:
    header: tuple[str, ...]
    if op == "enroll":
        header = ("行号", "身份证号", "姓名", "学号", "院校代码", "困难人员类别", "结果",
                  "原因代码", "原因说明")
    else:
        header = ("行号", "身份证号", "姓名", "停保日期", "停保原因", "结果", "原因代码",
                  "原因说明")
    table: list[list[object]] = []
    for r in results:
        row = rows[r.row_no]
        if isinstance(row, StudentEnrollRow):
            kind = row.difficulty_type or ""
            middle: list[object] = [row.student_no, row.school_code,
                                    f"{kind} {DIFFICULTY_TYPES[kind]}" if kind else ""]
        else:
            middle = [row.stop_date.isoformat(),
                      f"{row.stop_reason} {STOP_REASONS.get(row.stop_reason, '')}".strip()]
        table.append([r.row_no, row.id_number, row.name, *middle, _STATUS_LABEL[r.status],
                      r.reason_code, r.reason_text])
    return header, table


def write_results(vf: ValidatedFile, results: Sequence[RowResult], out_dir: Path, *,
                  formats: Sequence[str] = ("csv", "xlsx")) -> dict[str, Path]:
    """``{stem}.success``, ``.failure`` and ``.difficulty`` files; keys like ``success.csv``."""
    rows = dict(vf.valid)
    written: dict[str, Path] = {}
    for group, members in split_results(results).items():
        header, table = _result_table(vf.op, rows, members)
        for fmt, path in _write(table, header, out_dir / f"{vf.path.stem}.{group}",
                                formats).items():
            written[f"{group}.{fmt}"] = path
    return written


# ---------------------------------------------------------------- the job

@dataclass
class BatchSummary:
    """What happened to one file; ``lines()`` is what the CLI prints."""

    op: BatchOp
    source: Path
    batch_id: str
    total_rows: int = 0
    valid_rows: int = 0
    invalid_rows: int = 0
    success: int = 0
    failure: int = 0
    difficulty: int = 0
    chunks: int = 0
    chunks_failed: int = 0
    retries: int = 0
    read_seconds: float = 0.0
    submit_seconds: float = 0.0
    total_seconds: float = 0.0
    ignored_columns: tuple[str, ...] = ()
    files: dict[str, Path] = field(default_factory=dict)

    def lines(self) -> list[str]:
        what = "大学生批量参保" if self.op == "enroll" else "大学生批量暂停"
        out = [
            f"{what} {self.source.name}  批次号 {self.batch_id}",
            f"  rows {self.total_rows}: valid {self.valid_rows}, invalid {self.invalid_rows}",
            f"  tax: success {self.success}, failure {self.failure}, "
            f"difficulty (困难人员) {self.difficulty}",
            f"  chunks {self.chunks} (failed {self.chunks_failed}), retries {self.retries}",
            f"  read+validate {self.read_seconds:.2f}s, tax {self.submit_seconds:.2f}s, "
            f"total {self.total_seconds:.2f}s",
        ]
        if self.ignored_columns:
            out.append("  ignored columns: " + ", ".join(self.ignored_columns))
        out.extend(f"  {key}: {path}" for key, path in sorted(self.files.items()))
        return out


async def run_batch(op: BatchOp, source: Path, port: StudentBatchPort, out_dir: Path, *,
                    chunk_size: int = 500, concurrency: int = 4, batch_id: str | None = None,
                    retry: ChunkRetry | None = None, progress: Progress | None = None,
                    today: date | None = None,
                    formats: Sequence[str] = ("csv", "xlsx"),
                    held: HeldLookup | None = None) -> BatchSummary:
    """The whole job for one file. Raises ValidationFailed (column ``文件``) only when the
    file cannot be read at all (unreadable, empty, a required column missing). ``held``
    (an enrollment): the hub's 困难人员库, asked after tax (``mark_held``)."""
    started = time.perf_counter()
    vf = await asyncio.to_thread(read_and_validate, op, source, today=today)
    read_s = time.perf_counter() - started
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = BatchSummary(op=op, source=source,
                           batch_id=batch_id or batch_id_for(op, vf.digest, chunk_size),
                           total_rows=vf.total_rows, valid_rows=len(vf.valid),
                           invalid_rows=vf.invalid_rows, read_seconds=read_s,
                           ignored_columns=vf.ignored_columns)
    report = await asyncio.to_thread(write_failure_report, vf, out_dir, formats=formats)
    summary.files.update({f"invalid.{fmt}": path for fmt, path in report.items()})

    sent = time.perf_counter()
    results, stats = await submit_rows(port, op, summary.batch_id, vf.valid,
                                       chunk_size=chunk_size, concurrency=concurrency,
                                       retry=retry, progress=progress)
    summary.submit_seconds = time.perf_counter() - sent
    if held is not None and op == "enroll":
        try:
            results = await mark_held(results, held)
        except Exception:  # tax has enrolled them: its answer is still reported
            log.exception("student batch %s: the 困难人员库 could not be asked; tax's "
                          "answer alone", summary.batch_id)
    groups = split_results(results)
    summary.success, summary.failure, summary.difficulty = (len(groups[g]) for g in _GROUPS)
    summary.chunks, summary.chunks_failed, summary.retries = \
        stats.chunks, stats.chunks_failed, stats.retries
    summary.files.update(await asyncio.to_thread(write_results, vf, results, out_dir,
                                                 formats=formats))
    summary.total_seconds = time.perf_counter() - started
    log.info("student batch %s %s: %d rows, %d invalid, %d/%d/%d, %d chunks failed",
             op, summary.batch_id, summary.total_rows, summary.invalid_rows, summary.success,
             summary.failure, summary.difficulty, summary.chunks_failed)
    return summary

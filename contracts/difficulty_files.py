"""F7 status back by file (seed 1532): the 救助待遇标识同步情况 of a list that came in as a file.

A department without integration sends its monthly list as a CSV/XLSX file (a
caseworker imports it, ``POST /admin/difficulty/files/{dept}``); it gets the status of
every row back the same way, as a file: the columns of its own file, in its order,
plus ``同步情况`` (已同步 / 未通过) and ``原因``, one row per data row of the file (rows
refused at 校验 included, with the column and reason). The file is encoded like the one
that came in: GBK when it came in GBK, else UTF-8 with a BOM (Excel opens both); an
XLSX came in, an XLSX goes back (written by ``services.difficulty_files``).

Only the translation lives here (which rows are settled, the table, the CSV bytes, the
name); reading the kept file and writing it out is ``services.difficulty_files``.
Layout and readings: ``contracts/DIFFICULTY.md`` ("Status back").
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Final, Literal

from contracts.difficulty import COLUMNS, IDENTITIES, SOURCES
from contracts.errors import ValidationFailed
from contracts.student_batch import cell_text

__all__ = [
    "PENDING_LABEL",
    "REFUSED_LABEL",
    "STANDARD_HEADER",
    "STATUS_COLUMNS",
    "SYNCED_LABEL",
    "TITLE_ROWS",
    "FileFormat",
    "RowStatus",
    "csv_delimiter",
    "csv_encoding",
    "file_format",
    "record_cells",
    "render_csv",
    "row_statuses",
    "settled",
    "split_table",
    "status_counts",
    "status_file_name",
    "status_table",
]

STATUS_COLUMNS: Final = ("同步情况", "原因")
SYNCED_LABEL: Final = "已同步"
REFUSED_LABEL: Final = "未通过"
PENDING_LABEL: Final = "处理中"
"""Only in a file asked for before every row is settled (``partial``): 初审, 复核 or core."""

STANDARD_HEADER: Final = ("行号", *COLUMNS)
"""The columns of a status file rebuilt from the stored records (the file itself was not
kept): the row number in the department's file first, then the import's columns."""

_SETTLED: Final[dict[str, Literal["synced", "refused"]]] = {
    "synced": "synced", "unchanged": "synced", "sync_failed": "refused", "rejected": "refused"}
"""A stored record's status -> what its department hears (the others are still pending),
as the callbacks and the 补发 say it (``services.difficulty``)."""
_LABELS: Final = {"synced": SYNCED_LABEL, "refused": REFUSED_LABEL, "pending": PENDING_LABEL}
_FIELD_COLUMNS: Final = {field: column for column, field in COLUMNS.items()}
_CHANGE_LABELS: Final = {"add": "增加", "remove": "减少"}
_UNCHANGED: Final = "比对: already held, unchanged"

FileFormat = Literal["csv", "xlsx"]
Status = Literal["synced", "refused", "pending"]


def settled(record_status: str) -> Literal["synced", "refused"] | None:
    """``synced`` / ``refused`` for a record whose department can be told, else None."""
    return _SETTLED.get(record_status)


@dataclass(frozen=True)
class RowStatus:
    """One row of the department's file: where it stands and why."""

    row: int
    status: Status
    reason: str = ""

    @property
    def label(self) -> str:
        return _LABELS[self.status]


def row_statuses(records: Iterable[Mapping[str, Any]],
                 refusals: Iterable[Mapping[str, Any]]) -> dict[int, RowStatus]:
    """Row number -> status, from the list's stored records (``row_no``, ``status``,
    ``reason``) and its 校验 refusals (``row``, ``field``, ``reason``; several per row
    are joined, each naming its Chinese column)."""
    out: dict[int, RowStatus] = {}
    why: dict[int, list[str]] = {}
    for r in refusals:
        row = int(r["row"])
        if row <= 0:
            continue
        field = str(r.get("field") or "")
        why.setdefault(row, []).append(f"{_FIELD_COLUMNS.get(field, field)}: {r.get('reason')}"
                                       if field else str(r.get("reason") or ""))
    for row, reasons in why.items():
        out[row] = RowStatus(row, "refused", "校验: " + "; ".join(reasons))
    for rec in records:
        row = int(rec["row_no"])
        state = settled(str(rec["status"]))
        if state is None:
            out[row] = RowStatus(row, "pending", f"审核中 ({rec['status']})")
        elif rec["status"] == "unchanged":
            out[row] = RowStatus(row, state, _UNCHANGED)
        else:
            out[row] = RowStatus(row, state, str(rec.get("reason") or ""))
    return out


def status_counts(statuses: Mapping[int, RowStatus]) -> dict[str, int]:
    out = {"rows": len(statuses), "synced": 0, "refused": 0, "pending": 0}
    for s in statuses.values():
        out[s.status] += 1
    return out


def status_table(header: Sequence[object], rows: Sequence[tuple[int, Sequence[object]]],
                 statuses: Mapping[int, RowStatus]) -> list[list[object]]:
    """The status file as rows of cells: the department's header plus ``同步情况`` and
    ``原因``, then each of its data rows (cells as they came, padded to the header) with
    its status. A row the hub has no status for says so (it cannot happen for a file the
    hub read; it would be a row added to the kept file)."""
    width = len(header)
    out: list[list[object]] = [[*header, *STATUS_COLUMNS]]
    for row_no, cells in rows:
        cells = list(cells)[:width]
        cells += [None] * (width - len(cells))
        st = statuses.get(row_no)
        out.append([*cells, st.label if st else REFUSED_LABEL,
                    st.reason if st else f"row {row_no}: not in the list the hub received"])
    return out


def record_cells(records: Iterable[Mapping[str, Any]],
                 refusals: Iterable[Mapping[str, Any]]) -> list[tuple[int, list[object]]]:
    """Rows in ``STANDARD_HEADER``'s columns rebuilt from the stored records (the hub's
    normalised values: 增加/减少, identity code and name, ISO dates), with a row of its
    number only for each row refused at 校验 (the hub keeps no cells of those)."""
    out: dict[int, list[object]] = {}
    for rec in records:
        row = int(rec["row_no"])
        identity = str(rec["identity"])
        out[row] = [row, _CHANGE_LABELS.get(str(rec["change"]), rec["change"]),
                    f"{identity} {IDENTITIES.get(identity, '')}".strip(), rec["id_number"],
                    rec["name"], cell_text(rec["start_date"]), cell_text(rec.get("end_date")),
                    rec.get("phone") or "", SOURCES.get(str(rec.get("source")), ""),
                    rec.get("remark") or ""]
    for r in refusals:
        row = int(r["row"])
        if row > 0 and row not in out:
            out[row] = [row]
    return sorted(out.items())


# ---------------------------------------------------------------- the file itself

TITLE_ROWS: Final = 5
"""Rows above the header with no known column (a title) a file may start with: the
import's ``services.difficulty.MAX_TITLE_ROWS`` (a unit test keeps them equal)."""


def split_table(table: Iterable[tuple[int, Sequence[object]]]
                ) -> tuple[list[object], list[tuple[int, list[object]]]]:
    """A read file's header and data rows (with the file's row numbers), as the import
    takes them: blank rows skipped, up to ``TITLE_ROWS`` title rows above the header
    (rows naming no known column). ``ValidationFailed`` (``文件``) without a header or data."""
    header: list[object] | None = None
    rows: list[tuple[int, list[object]]] = []
    for row_no, cells in table:
        if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
            continue
        if header is None:
            if row_no <= TITLE_ROWS and not any(
                    cell_text(c).strip("*＊ ") in COLUMNS for c in cells):
                continue  # a title row above the header (常见: 某某局困难人员名单)
            header = list(cells)
            continue
        rows.append((row_no, list(cells)))
    if header is None:
        raise ValidationFailed([("文件", "文件为空：没有表头行")])
    if not rows:
        raise ValidationFailed([("文件", "没有数据行")])
    return header, rows


def file_format(filename: str, raw: bytes = b"") -> FileFormat:
    """XLSX by its name (or a zip's magic under another name), else CSV: as it is read."""
    suffix = PurePath(filename).suffix.lower()
    if suffix in (".xlsx", ".xlsm") or (suffix not in (".csv", ".txt")
                                        and raw.startswith(b"PK\x03\x04")):
        return "xlsx"
    return "csv"


def csv_encoding(raw: bytes) -> Literal["gbk", "utf-8-sig"]:
    """How a status file answers a CSV that came in as ``raw``: GBK when the file was not
    UTF-8 (the reader took it as GBK), else UTF-8 with a BOM."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "gbk"
    return "utf-8-sig"


def csv_delimiter(raw: bytes) -> str:
    """The delimiter the reader used (tab when the first line has tabs and no comma)."""
    first = raw.split(b"\n", 1)[0]
    return "\t" if b"\t" in first and b"," not in first else ","


def render_csv(table: Sequence[Sequence[object]], *, encoding: str = "utf-8-sig",
               delimiter: str = ",") -> bytes:
    """The table as CSV bytes (CRLF lines, cells as text). ``gbk`` is written as GB18030,
    its superset: the same bytes for every GBK character, and nothing unencodable."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    for row in table:
        writer.writerow([cell_text(c) for c in row])
    text = buf.getvalue()
    if encoding == "gbk":
        return text.encode("gb18030")
    return text.encode(encoding)


_SAFE = re.compile(r"[^0-9A-Za-z\u4e00-\u9fff._-]+")


def status_file_name(original: str, list_id: str, fmt: FileFormat) -> str:
    """``<the department's file name>_<list id>_同步情况.<csv|xlsx>`` (unsafe characters
    dropped; ``list`` when the name was not kept): the list id keeps two months' files of
    the same name apart in a drop folder."""
    stem = _SAFE.sub("", PurePath(original).stem)[:80] if original else ""
    return f"{stem or 'list'}_{list_id[:8]}_同步情况.{fmt}"

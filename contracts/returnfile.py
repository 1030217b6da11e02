"""Tax return files (回盘文件, flow F5): layout, streaming parser and writer. Pure, no I/O.

Tax drops one text file per batch and kind on its FTP server; the hub reads it
as a stream (files hold millions of lines) and never keeps more than one line
in memory. The layout is documented field by field in ``RETURNFILES.md``:

    H|kind|file_date|batch_no|1                header, line 1
    D|field|field|...                          one detail line per record (layout per kind)
    T|record_count|amount_total_fen|sha256     trailer, last line

``sha256`` is the hex SHA-256 of the exact bytes between the header line and
the trailer line (every detail line with its terminator), so it is computed
while streaming and catches truncation, reordering and transfer damage.

The hot path validates with one compiled regex per kind into a ``NamedTuple``
(~3 µs per line in all, read and checks included); ``ReturnRecordModel`` per
line costs ~11 µs, which would cap the parser below 100k lines/s. Only a line
that fails the regex goes to the slow path, which names the bad field. The
pydantic models are the documented contract, used at the edges (fixtures,
docs, core's schema).
"""

from __future__ import annotations

import calendar
import hashlib
import random
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache, partial
from operator import mul
from typing import IO, Final, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.errors import ValidationFailed
from contracts.ids import make_credit_code, make_id_number

__all__ = [
    "ARRIVAL_KINDS",
    "DEDUCT_KINDS",
    "FORMAT_VERSION",
    "INSUTYPES",
    "KINDS",
    "MAX_LINE_BYTES",
    "FieldSpec",
    "Kind",
    "LineError",
    "ReadSummary",
    "ReturnFileHeader",
    "ReturnFileName",
    "ReturnFileReader",
    "ReturnFileTrailer",
    "ReturnFileWriter",
    "ReturnRecord",
    "ReturnRecordModel",
    "WrittenFile",
    "format_marker",
    "format_record",
    "is_arrival",
    "iter_lines",
    "layout",
    "parse_marker",
    "record_from_fields",
    "synthetic_records",
    "write_return_file",
]

Kind = Literal["unit_pay", "employee_pay", "flex_deduct", "flex_pay", "resident_deduct",
               "resident_pay", "special_deduct", "special_pay"]

KINDS: Final[dict[str, str]] = {
    "unit_pay": "单位缴费",
    "employee_pay": "职工个人缴费",
    "flex_deduct": "灵活就业扣款",
    "flex_pay": "灵活就业缴费",
    "resident_deduct": "城乡居民扣款",
    "resident_pay": "城乡居民缴费",
    "special_deduct": "特殊缴费扣款",
    "special_pay": "特殊缴费缴费",
}
"""The eight kinds of return file, keyed by the code used in headers and file names."""

DEDUCT_KINDS: Final = frozenset({"flex_deduct", "resident_deduct", "special_deduct"})
#: Every kind hands arrivals (到账) to core; deduct kinds only their successful lines.
ARRIVAL_KINDS: Final = frozenset(KINDS)

INSUTYPES: Final[dict[str, str]] = {
    "310": "职工基本医疗保险", "320": "公务员医疗补助", "330": "大额医疗费用补助",
    "340": "离休人员医疗保障", "390": "城乡居民基本医疗保险", "392": "城乡居民大病医疗保险",
    "410": "长期照护保险", "510": "生育保险",
}
_EMPLOYEE_INSUTYPES = ("310", "320", "330", "340", "410", "510")
_RESIDENT_INSUTYPES = ("390", "392")

FORMAT_VERSION: Final = "1"
MAX_LINE_BYTES: Final = 2048
"""Longest accepted line in bytes, terminator included; longer lines are line errors."""


class ReturnRecord(NamedTuple):
    """One detail line, validated: the hot-path shape (a tuple, not a pydantic model).

    Fields a kind does not carry hold ``""`` or ``0`` (see ``RETURNFILES.md``).
    """

    line_no: int
    serial: str
    payer_type: str
    payer_code: str
    payer_name: str
    unit_code: str
    insutype: str
    period: str
    pay_base_fen: int
    amount_fen: int
    value_date: str
    result: str
    fail_reason: str
    mode: str


class LineError(NamedTuple):
    """A detail line that was reported and skipped; ``reason`` never echoes personal data."""

    line_no: int
    field: str
    reason: str


def is_arrival(record: ReturnRecord) -> bool:
    """到账: money arrived. A failed deduction (result 0) is stored but is no arrival."""
    return record.result == "1"


# -- field checks ---------------------------------------------------------------------------

_ID_W = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_BIAS = 48 * sum(_ID_W)  # the digits arrive as ASCII codes: subtract ord("0") * weights
_ID_CHECK = "10X98765432"
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {c: i for i, c in enumerate(_USCC_ALPHABET)}
_USCC_W = tuple(pow(3, i, 31) for i in range(17))


def _id_check(v: str) -> str | None:
    """GB 11643 check character; format already matched ``\\d{17}[\\dX]``."""
    if _ID_CHECK[(sum(map(mul, v[:17].encode(), _ID_W)) - _ID_BIAS) % 11] == v[17]:
        return None
    return "ID number check character is wrong"


@lru_cache(maxsize=65_536)
def _uscc_check(v: str) -> str | None:
    """GB 32100 check character. Cached: a unit's code repeats on all its employees' lines."""
    total = sum(map(mul, map(_USCC_VALUE.__getitem__, v[:17]), _USCC_W))
    if _USCC_ALPHABET[(31 - total % 31) % 31] == v[17]:
        return None
    return "credit code check character is wrong"


def _date_check(v: str) -> str | None:
    """Days 29-31 exist only in some months; the regex already bounds the rest."""
    if v[6:] <= "28":
        return None
    y, m, d = int(v[:4]), int(v[4:6]), int(v[6:])
    return None if d <= calendar.monthrange(y, m)[1] else f"{v} is not a real date"


@dataclass(frozen=True)
class FieldSpec:
    """One detail field: how it is written (``pattern``), checked and documented."""

    name: str
    zh: str
    en: str
    type: str
    pattern: str
    check: Callable[[str], str | None] | None = None
    echo: bool = True  # False for personal data: errors never quote the value

    def explain(self, value: str) -> str | None:
        """The reason ``value`` is wrong, or None (the slow path's reference check)."""
        if not re.fullmatch(self.pattern, value):
            shown = f", got {value[:24]!r}" if self.echo else ""
            return f"must be {self.type}{shown}"
        return self.check(value) if self.check else None


_TEXT = r"[^|\x00-\x1f\x7f]"
_DATE = r"(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
_AMOUNT = r"(?:0|[1-9]\d{0,11})"
_USCC = r"[0-9A-HJ-NPQRTUWXY]{18}"
_IDNO = r"\d{17}[\dX]"


def _insutype(codes: Sequence[str]) -> FieldSpec:
    return FieldSpec("insutype", "险种", "insurance type", "one of " + "/".join(codes),
                     "(?:" + "|".join(codes) + ")")


_SERIAL = FieldSpec("serial", "税务流水号", "tax serial (unique per kind)",
                    "1-40 of [0-9A-Za-z_-]", r"[0-9A-Za-z_\-]{1,40}")
_UNIT_CODE = FieldSpec("unit_code", "统一社会信用代码", "employer's unified social credit code",
                       "an 18-character credit code", _USCC, _uscc_check, echo=False)
_PAYER_USCC = FieldSpec("payer_code", "统一社会信用代码", "paying unit's credit code",
                        "an 18-character credit code", _USCC, _uscc_check, echo=False)
_PAYER_ID = FieldSpec("payer_code", "身份证号", "payer's ID number",
                      "an 18-character ID number", _IDNO, _id_check, echo=False)
_PAYER_ANY = FieldSpec("payer_code", "统一社会信用代码或身份证号",
                       "credit code (mode 1) or ID number (modes 2, 3)",
                       "an 18-character credit code or ID number", _USCC, echo=False)
_NO_PIPE = " characters, no pipe or control character"
_UNIT_NAME = FieldSpec("payer_name", "单位名称", "unit name", "1-200" + _NO_PIPE,
                       _TEXT + "{1,200}", echo=False)
_PERSON_NAME = FieldSpec("payer_name", "姓名", "person's name", "1-50" + _NO_PIPE,
                         _TEXT + "{1,50}", echo=False)
_ANY_NAME = FieldSpec("payer_name", "单位名称或姓名", "unit or person name",
                      "1-200" + _NO_PIPE, _TEXT + "{1,200}", echo=False)
_PERIOD = FieldSpec("period", "费款所属期", "contribution period", "yyyymm",
                    r"(?:19|20)\d\d(?:0[1-9]|1[0-2])")
_PAY_BASE = FieldSpec("pay_base_fen", "缴费基数(分)", "contribution base in fen",
                      "0 or 1-12 digits without leading zero", _AMOUNT)
_AMOUNT_F = FieldSpec("amount_fen", "金额(分)", "amount in fen",
                      "0 or 1-12 digits without leading zero", _AMOUNT)
_ARRIVAL_DATE = FieldSpec("value_date", "到账日期", "date the money arrived", "yyyymmdd",
                          _DATE, _date_check)
_DEDUCT_DATE = FieldSpec("value_date", "扣款日期", "date of the deduction attempt", "yyyymmdd",
                         _DATE, _date_check)
_RESULT = FieldSpec("result", "扣款结果", "deduction result: 1 success, 0 failure", "1 or 0",
                    "[01]")
_FAIL_REASON = FieldSpec("fail_reason", "失败原因", "why the deduction failed (result 0 only)",
                         "0-100" + _NO_PIPE, _TEXT + "{0,100}")
_MODE = FieldSpec("mode", "特殊缴费模式", "special-payment mode: 1 unit, 2 flexible, 3 resident",
                  "1, 2 or 3", "[123]")

_FIELDS: Final[dict[str, tuple[FieldSpec, ...]]] = {
    "unit_pay": (_SERIAL, _PAYER_USCC, _UNIT_NAME, _insutype(_EMPLOYEE_INSUTYPES), _PERIOD,
                 _PAY_BASE, _AMOUNT_F, _ARRIVAL_DATE),
    "employee_pay": (_SERIAL, _UNIT_CODE, _PAYER_ID, _PERSON_NAME,
                     _insutype(_EMPLOYEE_INSUTYPES), _PERIOD, _PAY_BASE, _AMOUNT_F,
                     _ARRIVAL_DATE),
    "flex_deduct": (_SERIAL, _PAYER_ID, _PERSON_NAME, _insutype(_EMPLOYEE_INSUTYPES), _PERIOD,
                    _AMOUNT_F, _DEDUCT_DATE, _RESULT, _FAIL_REASON),
    "flex_pay": (_SERIAL, _PAYER_ID, _PERSON_NAME, _insutype(_EMPLOYEE_INSUTYPES), _PERIOD,
                 _AMOUNT_F, _ARRIVAL_DATE),
    "resident_deduct": (_SERIAL, _PAYER_ID, _PERSON_NAME, _insutype(_RESIDENT_INSUTYPES),
                        _PERIOD, _AMOUNT_F, _DEDUCT_DATE, _RESULT, _FAIL_REASON),
    "resident_pay": (_SERIAL, _PAYER_ID, _PERSON_NAME, _insutype(_RESIDENT_INSUTYPES), _PERIOD,
                     _AMOUNT_F, _ARRIVAL_DATE),
    "special_deduct": (_SERIAL, _MODE, _PAYER_ANY, _ANY_NAME, _insutype(tuple(INSUTYPES)),
                       _PERIOD, _AMOUNT_F, _DEDUCT_DATE, _RESULT, _FAIL_REASON),
    "special_pay": (_SERIAL, _MODE, _PAYER_ANY, _ANY_NAME, _insutype(tuple(INSUTYPES)), _PERIOD,
                    _AMOUNT_F, _ARRIVAL_DATE),
}


def layout(kind: str) -> tuple[FieldSpec, ...]:
    """The detail fields of ``kind`` in file order (after the leading ``D``)."""
    return _FIELDS[kind]


# -- line-level checks: fields that only make sense together ---------------------------------

LineCheck = Callable[[Sequence[str]], tuple[str, str] | None]


def _deduct_check(ri: int) -> LineCheck:
    def check(g: Sequence[str]) -> tuple[str, str] | None:
        if (g[ri] == "1") == (g[ri + 1] == ""):
            return None
        return ("fail_reason", "required when result is 0, empty when result is 1")
    return check


def _special_check(g: Sequence[str]) -> tuple[str, str] | None:
    code = g[2]
    if g[1] == "1":
        bad = _uscc_check(code)
    else:
        bad = _id_check(code) if re.fullmatch(_IDNO, code) else "must be an ID number"
    return ("payer_code", f"mode {g[1]}: {bad}") if bad else None


_LINE_CHECKS: Final[dict[str, tuple[LineCheck, ...]]] = {
    "flex_deduct": (_deduct_check(7),),
    "resident_deduct": (_deduct_check(7),),
    "special_deduct": (_special_check, _deduct_check(8)),
    "special_pay": (_special_check,),
}


# -- hot-path builders: groups (file order) -> ReturnRecord ----------------------------------

Builder = Callable[[int, Sequence[str]], ReturnRecord]


def _b_unit_pay(n: int, g: Sequence[str]) -> ReturnRecord:
    return ReturnRecord(n, g[0], "U", g[1], g[2], "", g[3], g[4], int(g[5]), int(g[6]), g[7],
                        "1", "", "")


def _b_employee_pay(n: int, g: Sequence[str]) -> ReturnRecord:
    return ReturnRecord(n, g[0], "P", g[2], g[3], g[1], g[4], g[5], int(g[6]), int(g[7]), g[8],
                        "1", "", "")


def _b_person_pay(n: int, g: Sequence[str]) -> ReturnRecord:
    return ReturnRecord(n, g[0], "P", g[1], g[2], "", g[3], g[4], 0, int(g[5]), g[6], "1", "",
                        "")


def _b_person_deduct(n: int, g: Sequence[str]) -> ReturnRecord:
    return ReturnRecord(n, g[0], "P", g[1], g[2], "", g[3], g[4], 0, int(g[5]), g[6], g[7], g[8],
                        "")


def _b_special_pay(n: int, g: Sequence[str]) -> ReturnRecord:
    return ReturnRecord(n, g[0], "U" if g[1] == "1" else "P", g[2], g[3], "", g[4], g[5], 0,
                        int(g[6]), g[7], "1", "", g[1])


def _b_special_deduct(n: int, g: Sequence[str]) -> ReturnRecord:
    return ReturnRecord(n, g[0], "U" if g[1] == "1" else "P", g[2], g[3], "", g[4], g[5], 0,
                        int(g[6]), g[7], g[8], g[9], g[1])


_BUILDERS: Final[dict[str, Builder]] = {
    "unit_pay": _b_unit_pay, "employee_pay": _b_employee_pay,
    "flex_deduct": _b_person_deduct, "flex_pay": _b_person_pay,
    "resident_deduct": _b_person_deduct, "resident_pay": _b_person_pay,
    "special_deduct": _b_special_deduct, "special_pay": _b_special_pay,
}


def record_from_fields(kind: str, line_no: int, fields: Sequence[str]) -> ReturnRecord:
    """Build a record from already-validated fields in file order."""
    return _BUILDERS[kind](line_no, fields)


@dataclass(frozen=True)
class _Layout:
    """Everything the hot loop needs for one kind, precomputed once."""

    kind: str
    fields: tuple[FieldSpec, ...]
    regex: re.Pattern[str]
    checks: tuple[tuple[int, Callable[[str], str | None]], ...]
    line_checks: tuple[LineCheck, ...]
    build: Builder
    template: str

    @classmethod
    def of(cls, kind: str) -> _Layout:
        fields = _FIELDS[kind]
        rx = re.compile(r"D\|" + r"\|".join(f"({f.pattern})" for f in fields) + r"\r?\n?")
        checks = tuple((i, f.check) for i, f in enumerate(fields) if f.check is not None)
        index = {name: i for i, name in enumerate(ReturnRecord._fields)}
        template = "D|" + "|".join(f"{{0[{index[f.name]}]}}" for f in fields)
        return cls(kind, fields, rx, checks, _LINE_CHECKS.get(kind, ()), _BUILDERS[kind],
                   template)

    def parse(self, text: str, n: int) -> ReturnRecord | LineError:
        """One decoded detail line -> record, or the error that names the field."""
        m = self.regex.fullmatch(text)
        if m is not None:
            g = m.groups()
            if self.valid(g):
                return self.build(n, g)
        return self.explain(text, n)

    def valid(self, g: Sequence[str]) -> bool:
        for i, check in self.checks:
            if check(g[i]) is not None:
                return False
        return all(lc(g) is None for lc in self.line_checks)

    def explain(self, text: str, n: int) -> LineError:
        """The slow path: split and check field by field; names the first bad field."""
        body = text.rstrip("\r\n")
        parts = body.split("|")
        if not body:
            return LineError(n, "record_type", "empty line")
        if parts[0] != "D":
            return LineError(n, "record_type", "must be D (detail) between header and trailer")
        values = parts[1:]
        if len(values) != len(self.fields):
            return LineError(n, "line", f"{self.kind} has {len(self.fields)} fields, "
                                        f"got {len(values)}")
        errors = [(f.name, r) for f, v in zip(self.fields, values, strict=True)
                  if (r := f.explain(v)) is not None]
        if not errors:
            errors = [e for lc in self.line_checks if (e := lc(values)) is not None]
        if not errors:  # regex and field checks disagree: a bug, never a silent accept
            errors = [("line", "does not match the layout")]
        more = f" (+{len(errors) - 1} more: {', '.join(f for f, _ in errors[1:])})" \
            if len(errors) > 1 else ""
        return LineError(n, errors[0][0], errors[0][1] + more)


_LAYOUTS: Final[dict[str, _Layout]] = {k: _Layout.of(k) for k in KINDS}


def format_record(kind: str, record: ReturnRecord) -> str:
    """A detail line (without terminator) in ``kind``'s layout: the writer's inverse."""
    return _LAYOUTS[kind].template.format(record)


# -- header, trailer, names, markers ----------------------------------------------------------


class ReturnFileHeader(BaseModel):
    """``H|kind|file_date|batch_no|version``: what the file is; must agree with its name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Kind
    file_date: date = Field(description="文件日期, written yyyymmdd")
    batch_no: str = Field(pattern=r"^\d{1,8}$", description="批次号 of that day and kind")
    version: Literal["1"] = FORMAT_VERSION

    def line(self) -> bytes:
        return f"H|{self.kind}|{self.file_date:%Y%m%d}|{self.batch_no}|{self.version}\n".encode()


class ReturnFileTrailer(BaseModel):
    """``T|record_count|amount_total_fen|sha256``: the file's own integrity check."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    record_count: int = Field(ge=0, description="detail lines between header and trailer")
    amount_total_fen: int = Field(ge=0, description="sum of amount_fen over all detail lines")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$",
                        description="hex SHA-256 of the bytes between header and trailer")

    def line(self) -> bytes:
        return f"T|{self.record_count}|{self.amount_total_fen}|{self.sha256}\n".encode()


_HEADER_RX = re.compile(r"H\|([^|]*)\|([^|]*)\|([^|]*)\|([^|\r\n]*)\r?\n?")
_TRAILER_RX = re.compile(r"T\|(0|[1-9]\d{0,9})\|(0|[1-9]\d{0,15})\|([0-9a-f]{64})\r?\n?")
_NAME_RX = re.compile(r"([a-z_]+)_(\d{8})_(\d{1,8})\.txt")


class ReturnFileName(NamedTuple):
    """``{kind}_{yyyymmdd}_{batch}.txt`` under ``/outbound/{kind}/``; ``.ok`` marks it done."""

    kind: str
    file_date: str
    batch_no: str

    @property
    def name(self) -> str:
        return f"{self.kind}_{self.file_date}_{self.batch_no}.txt"

    @property
    def path(self) -> str:
        return f"/outbound/{self.kind}/{self.name}"

    @property
    def marker(self) -> str:
        return self.path + ".ok"

    @classmethod
    def parse(cls, name: str) -> ReturnFileName | None:
        """None for anything that is not a return file of a known kind (ignored, not an error)."""
        m = _NAME_RX.fullmatch(name.rsplit("/", 1)[-1])
        if m is None or m.group(1) not in KINDS:
            return None
        return cls(m.group(1), m.group(2), m.group(3))

    def matches(self, header: ReturnFileHeader) -> bool:
        return (header.kind, f"{header.file_date:%Y%m%d}", header.batch_no) == tuple(self)


def format_marker(sha256: str, size: int) -> bytes:
    """Content of the ``.ok`` done-marker: the whole file's SHA-256 and size in bytes."""
    return f"{sha256} {size}\n".encode()


def parse_marker(data: bytes) -> tuple[str, int] | None:
    """``(sha256, size)`` from a marker; None when it is empty (then only presence counts)."""
    text = data.decode("ascii", "replace").strip()
    if not text:
        return None
    m = re.fullmatch(r"([0-9a-f]{64})\s+(\d{1,15})", text)
    if m is None:
        raise ValidationFailed([("marker", "must be '<sha256> <size>' or empty")], partner="tax")
    return m.group(1), int(m.group(2))


def _header(raw: bytes | None) -> ReturnFileHeader:
    if raw is None:
        raise ValidationFailed([("header", "empty file")], partner="tax")
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise ValidationFailed([("header", "not UTF-8")], partner="tax") from None
    m = _HEADER_RX.fullmatch(text)
    if m is None:
        raise ValidationFailed([("header", "line 1 must be H|kind|yyyymmdd|batch_no|1")],
                               partner="tax")
    kind, day, batch, version = m.groups()
    errors: list[tuple[str, str]] = []
    if kind not in KINDS:
        errors.append(("header.kind", f"unknown kind {kind[:30]!r}"))
    if not re.fullmatch(_DATE, day) or _date_check(day):
        errors.append(("header.file_date", f"must be a real yyyymmdd date, got {day[:12]!r}"))
    if not re.fullmatch(r"\d{1,8}", batch):
        errors.append(("header.batch_no", f"must be 1-8 digits, got {batch[:12]!r}"))
    if version != FORMAT_VERSION:
        errors.append(("header.version", f"unsupported version {version[:8]!r}"))
    if errors:
        raise ValidationFailed(errors, partner="tax")
    return ReturnFileHeader.model_validate(
        {"kind": kind, "file_date": date(int(day[:4]), int(day[4:6]), int(day[6:])),
         "batch_no": batch})


# -- the streaming reader ---------------------------------------------------------------------


def iter_lines(fp: IO[bytes], max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[bytes]:
    """Lines of a binary file, each at most ``max_line_bytes + 1`` bytes (constant memory).

    A longer line arrives in pieces; the reader recognises and skips the rest.
    """
    return iter(partial(fp.readline, max_line_bytes + 1), b"")


@dataclass
class ReadSummary:
    """What a reader saw; complete once iteration ended (normally or by ValidationFailed)."""

    header: ReturnFileHeader | None = None
    trailer: ReturnFileTrailer | None = None
    lines: int = 0
    records: int = 0
    errors: int = 0
    amount_fen: int = 0
    sha256: str = ""
    problems: list[tuple[str, str]] = field(default_factory=list)


class ReturnFileReader:
    """Streams one return file: yields records and line errors, then checks the trailer.

        reader = ReturnFileReader(iter_lines(fp))
        header = reader.read_header()          # ValidationFailed: reject the file
        for item in reader:                    # ReturnRecord | LineError, in line order
            ...
        # iteration raises ValidationFailed at the end when the trailer does not match

    A bad detail line is reported and skipped; a bad header, a missing or
    malformed trailer, or a count/checksum/total mismatch rejects the file.
    The amount total is compared only when every detail line was valid (a
    line whose amount cannot be read cannot be summed); the SHA-256 and the
    count cover every line regardless.
    """

    def __init__(self, lines: Iterable[bytes], *,
                 max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self._it = iter(lines)
        self._max = max_line_bytes
        self.summary = ReadSummary()

    @property
    def header(self) -> ReturnFileHeader | None:
        return self.summary.header

    def read_header(self) -> ReturnFileHeader:
        """Read and check line 1 (idempotent)."""
        if self.summary.header is None:
            raw = next(self._it, None)
            if raw is not None and len(raw) > self._max:
                raise ValidationFailed([("header", "line 1 is too long")], partner="tax")
            self.summary.header = _header(raw)
        return self.summary.header

    def __iter__(self) -> Iterator[ReturnRecord | LineError]:
        lay = _LAYOUTS[self.read_header().kind]
        yield from self._details(lay)
        self._finish()

    def _details(self, lay: _Layout) -> Iterator[ReturnRecord | LineError]:
        """The hot loop: kept flat on purpose (locals, no per-line method calls on success)."""
        s, it, limit = self.summary, self._it, self._max
        digest = hashlib.sha256()
        update, fullmatch, build, valid = digest.update, lay.regex.fullmatch, lay.build, lay.valid
        n, records, errors, total, trailer_line = 1, 0, 0, 0, 0
        try:
            for raw in it:
                n += 1
                if raw.startswith(b"T|"):
                    trailer_line = n
                    s.trailer = self._trailer(raw, n)
                    break
                update(raw)
                if len(raw) > limit:
                    errors += 1
                    yield LineError(n, "line", f"longer than {limit} bytes")
                    if not raw.endswith(b"\n"):
                        self._skip_rest(update)
                    continue
                try:
                    text = raw.decode()
                except UnicodeDecodeError:
                    errors += 1
                    yield LineError(n, "line", "not UTF-8")
                    continue
                m = fullmatch(text)
                if m is not None:
                    g = m.groups()
                    if valid(g):
                        rec = build(n, g)
                        records += 1
                        total += rec.amount_fen
                        yield rec
                        continue
                errors += 1
                yield lay.explain(text, n)
        finally:
            s.lines = (trailer_line or n + 1) - 2
            s.records, s.errors, s.amount_fen = records, errors, total
            s.sha256 = digest.hexdigest()

    def _skip_rest(self, update: Callable[[bytes], object]) -> None:
        """Hash and drop the remaining pieces of an over-long line."""
        for piece in self._it:
            update(piece)
            if piece.endswith(b"\n"):
                return

    def _trailer(self, raw: bytes, n: int) -> ReturnFileTrailer | None:
        m = _TRAILER_RX.fullmatch(raw.decode("ascii", "replace"))
        if m is None:
            self.summary.problems.append(
                ("trailer", f"line {n} must be T|record_count|amount_total_fen|sha256"))
            return None
        return ReturnFileTrailer(record_count=int(m.group(1)),
                                 amount_total_fen=int(m.group(2)), sha256=m.group(3))

    def _finish(self) -> None:
        """After the last detail line: only blank lines may follow; then compare the trailer."""
        s = self.summary
        for extra in self._it:
            if extra.strip():
                s.problems.append(("trailer", "data after the trailer"))
                break
        t = s.trailer
        if t is None and not s.problems:
            s.problems.append(("trailer", f"missing: no T line after line {s.lines + 1} "
                                          "(truncated file?)"))
        if t is not None:
            if t.record_count != s.lines:
                s.problems.append(("trailer.record_count",
                                   f"trailer says {t.record_count}, file has {s.lines}"))
            if t.sha256 != s.sha256:
                s.problems.append(("trailer.sha256", "checksum of the detail lines differs"))
            elif s.errors == 0 and t.amount_total_fen != s.amount_fen:
                s.problems.append(("trailer.amount_total_fen",
                                   f"trailer says {t.amount_total_fen}, lines sum to "
                                   f"{s.amount_fen}"))
        if s.problems:
            raise ValidationFailed(list(s.problems), partner="tax")


# -- writer and synthetic data (simulator, tests, benchmark) ----------------------------------


class WrittenFile(NamedTuple):
    """What a writer produced: the trailer it wrote, and the whole file's digest and size."""

    trailer: ReturnFileTrailer
    sha256: str
    size: int


class ReturnFileWriter:
    """Writes one return file as a stream; ``close()`` writes the trailer and returns stats."""

    def __init__(self, out: IO[bytes], header: ReturnFileHeader) -> None:
        self._out = out
        self.kind = header.kind
        self._template = _LAYOUTS[header.kind].template
        self._detail = hashlib.sha256()
        self._file = hashlib.sha256()
        self._count = 0
        self._total = 0
        self._size = 0
        self._put(header.line())

    def _put(self, data: bytes) -> None:
        self._out.write(data)
        self._file.update(data)
        self._size += len(data)

    def write(self, record: ReturnRecord) -> None:
        self.write_raw((self._template.format(record) + "\n").encode(), record.amount_fen)

    def write_raw(self, line: bytes, amount_fen: int = 0) -> None:
        """Any bytes as a detail line (how tax's own bad lines are simulated)."""
        self._put(line)
        self._detail.update(line)
        self._count += 1
        self._total += amount_fen

    def close(self) -> WrittenFile:
        trailer = ReturnFileTrailer(record_count=self._count, amount_total_fen=self._total,
                                    sha256=self._detail.hexdigest())
        self._put(trailer.line())
        return WrittenFile(trailer, self._file.hexdigest(), self._size)


_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
_UNIT_SUFFIX = ("科技有限公司", "贸易有限公司", "建设工程有限公司", "医药连锁有限公司")


@dataclass(frozen=True)
class _Pools:
    """A few hundred synthetic identities, reused round-robin: generation stays cheap."""

    ids: tuple[str, ...]
    names: tuple[str, ...]
    units: tuple[str, ...]
    unit_names: tuple[str, ...]

    @classmethod
    def make(cls, seed: int) -> _Pools:
        rng = random.Random(seed)
        ids = tuple(make_id_number(rng) for _ in range(509))
        names = tuple(rng.choice(_SURNAMES) + "".join(rng.choices(_GIVEN, k=rng.randint(1, 2)))
                      for _ in range(257))
        units = tuple(make_credit_code(rng) for _ in range(61))
        unit_names = tuple(f"南京{rng.choice(_GIVEN)}{rng.choice(_GIVEN)}"
                           f"{rng.choice(_UNIT_SUFFIX)}" for _ in range(61))
        return cls(ids, names, units, unit_names)


def synthetic_records(kind: str, n: int, *, seed: int = 0, period: str = "202501",
                      value_date: str = "20250115", fail_every: int = 50,
                      first_line: int = 2) -> Iterator[ReturnRecord]:
    """``n`` valid synthetic records of ``kind`` (never real people), generated lazily."""
    p = _Pools.make(seed)
    deduct = kind in DEDUCT_KINDS
    special = kind.startswith("special")
    insutype = "390" if kind.startswith("resident") else "310"
    for i in range(n):
        failed = deduct and fail_every > 0 and i % fail_every == fail_every - 1
        mode = str(i % 3 + 1) if special else ""
        unit = kind == "unit_pay" or mode == "1"
        code = p.units[i % 61] if unit else p.ids[i % 509]
        name = p.unit_names[i % 61] if unit else p.names[i % 257]
        yield ReturnRecord(
            first_line + i, f"{kind[:2].upper()}{seed:02d}{i:012d}", "U" if unit else "P",
            code, name, p.units[i % 61] if kind == "employee_pay" else "", insutype, period,
            800_000 + i % 7 * 10_000 if kind in ("unit_pay", "employee_pay") else 0,
            i * 7919 % 100_000 + 100, value_date, "0" if failed else "1",
            "账户余额不足" if failed else "", mode)


def write_return_file(out: IO[bytes], kind: str, n: int, *, file_date: date = date(2025, 1, 15),
                      batch_no: str = "0001", seed: int = 0,
                      replace: Mapping[int, bytes] | None = None) -> WrittenFile:
    """Write a complete file of ``n`` detail lines; ``replace`` swaps line N for raw bytes.

    A replaced line counts and is hashed like any other (tax wrote it that way),
    so the trailer matches and the hub must report just that line.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    header = ReturnFileHeader.model_validate(
        {"kind": kind, "file_date": file_date, "batch_no": batch_no})
    w = ReturnFileWriter(out, header)
    swap = replace or {}
    for rec in synthetic_records(kind, n, seed=seed):
        if rec.line_no in swap:
            w.write_raw(swap[rec.line_no])
        else:
            w.write(rec)
    return w.close()


# -- the documented contract ------------------------------------------------------------------


class ReturnRecordModel(BaseModel):
    """The documented schema of one record (core's view); the hot path uses ``ReturnRecord``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Kind
    line_no: int = Field(ge=2)
    serial: str = Field(pattern=r"^[0-9A-Za-z_\-]{1,40}$")
    payer_type: Literal["U", "P"]
    payer_code: str = Field(pattern=r"^[0-9A-HJ-NPQRTUWXY]{18}$")
    payer_name: str = Field(min_length=1, max_length=200)
    unit_code: str = Field(default="", pattern=r"^([0-9A-HJ-NPQRTUWXY]{18})?$")
    insutype: str = Field(pattern=r"^\d{3}$")
    period: str = Field(pattern=r"^(19|20)\d\d(0[1-9]|1[0-2])$")
    pay_base_fen: int = Field(default=0, ge=0)
    amount_fen: int = Field(ge=0)
    value_date: date
    result: Literal["0", "1"] = "1"
    fail_reason: str = Field(default="", max_length=100)
    mode: Literal["", "1", "2", "3"] = ""

    @model_validator(mode="after")
    def _fits_layout(self) -> ReturnRecordModel:
        """Re-check through the file layout, so the model and the parser never disagree."""
        rec = self.to_record()
        line = format_record(self.kind, rec)
        got = _LAYOUTS[self.kind].parse(line, self.line_no)
        if isinstance(got, LineError):
            raise ValueError(f"{got.field}: {got.reason}")
        if got != rec:
            raise ValueError("fields not carried by this kind must be empty or 0")
        return self

    def to_record(self) -> ReturnRecord:
        return ReturnRecord(self.line_no, self.serial, self.payer_type, self.payer_code,
                            self.payer_name, self.unit_code, self.insutype, self.period,
                            self.pay_base_fen, self.amount_fen, f"{self.value_date:%Y%m%d}",
                            self.result, self.fail_reason, self.mode)

    @classmethod
    def from_record(cls, kind: str, record: ReturnRecord) -> ReturnRecordModel:
        data = record._asdict()
        value = data.pop("value_date")
        return cls.model_validate({**data, "kind": kind, "value_date": date(
            int(value[:4]), int(value[4:6]), int(value[6:]))})


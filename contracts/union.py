"""F12 trade-union mutual aid (工会互助): the cases, the union's tables and the result file.

Seed ``000_*.txt``. The city union (市总工会) sends the hub

- its tables for a year (line 43): 申请互助待遇人员清单 (``roster``), 给付标准
  (``benefits``, per disease) and the 审核规则 both sides agreed (``rules``):
  ``UnionStandards``;
- each case (给付申请书, line 41: applicant, accident, treatment, medical bills) with
  its scanned images (lines 28-32): ``CaseApplication``.

The hub answers with 受理结果 (to the applicant unit and the city union, line 67),
the 结案/理算结果及结论 as a file whose layout both sides agree (lines 43, 60-61;
``render_closure_file``, documented and versioned in ``contracts/UNION_CASES.md``),
and the 档案返还 notice (line 75). Those three are ``Notice`` messages on the
``union.notify`` lane.

Images are checked from their headers (``check_image``): colour JPG at 150x150 dpi,
black-and-white TIF at 300x300 dpi, each named ``<case_no>_<category>_<seq>.<ext>``
with a known category (classified and named, line 32), in order (line 31), no
content twice (line 30). Standard library and pydantic only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.envelope import HubMessage, entity_key, idempotency_key
from contracts.ids import validate_id_number

__all__ = [
    "ACCEPTANCE",
    "ARCHIVE",
    "CATEGORIES",
    "CLOSURE",
    "LAYOUT_VERSION",
    "NOTICE_TYPES",
    "REQUIRED_CATEGORIES",
    "Accident",
    "Applicant",
    "BenefitStandard",
    "Bill",
    "CaseApplication",
    "ClosureFile",
    "ClosureLine",
    "FinalNotice",
    "ImageCheck",
    "MemberEntry",
    "Notice",
    "ScannedImage",
    "Treatment",
    "UnionStandards",
    "check_image",
    "closure_file_name",
    "notice_message",
    "parse_closure_file",
    "render_closure_file",
]

LAYOUT_VERSION: Final = "UC-1.0"
"""Version of the result file layout (``contracts/UNION_CASES.md``); a change of a field
is a new version, and the file says which it is in its header."""

ACCEPTANCE: Final = "union.notice.acceptance"
"""受理结果: to the applicant unit and to the city union (one message each)."""
CLOSURE: Final = "union.notice.closure"
"""结案/理算结果及结论: the result file, to the city union."""
ARCHIVE: Final = "union.notice.archive"
"""档案返还: the archive was returned, to the city union."""
NOTICE_TYPES: Final = (ACCEPTANCE, CLOSURE, ARCHIVE)

CATEGORIES: Final[dict[str, str]] = {
    "SQS": "给付申请书", "SFZ": "身份证明", "ZDZM": "诊断证明", "BL": "病历",
    "CYXJ": "出院小结", "FP": "医疗费用票据", "QD": "费用清单", "QT": "其他",
}
"""Image classes (影像分类, line 32): the code is part of the file name."""
REQUIRED_CATEGORIES: Final = ("SQS", "SFZ", "ZDZM", "FP")
"""Without these the materials are not complete (line 67 counts from complete materials)."""

CASE_NO = r"^[A-Z0-9]{6,24}$"
MAX_IMAGE_BYTES: Final = 8 * 1024 * 1024
_NAME = re.compile(r"^(?P<case>[A-Z0-9]{6,24})_(?P<cat>[A-Z]{2,4})_(?P<seq>\d{2,3})"
                   r"\.(?P<ext>jpg|tif)$")
Money = Annotated[Decimal, Field(ge=0, le=Decimal("10000000"), max_digits=12, decimal_places=2)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


# -- images ------------------------------------------------------------------------------

class ImageCheck(BaseModel):
    """What an image's header says: format, colour or black-and-white, dpi."""

    model_config = ConfigDict(frozen=True)
    format: Literal["jpg", "tif"]
    colour: bool
    dpi: tuple[int, int]


def _jpeg(data: bytes) -> ImageCheck:
    """JFIF/EXIF density and the frame's components, from the JPEG markers."""
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG (no SOI marker)")
    dpi: tuple[int, int] | None = None
    components: int | None = None
    i = 2
    while i + 4 <= len(data) and components is None:
        if data[i] != 0xFF:
            raise ValueError(f"damaged JPEG: no marker at byte {i}")
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        seg = data[i + 4:i + 2 + length]
        if marker == 0xE0 and seg[:5] == b"JFIF\x00" and len(seg) >= 12:
            units, x, y = seg[7], *struct.unpack(">HH", seg[8:12])
            if units == 1:
                dpi = (x, y)
            elif units == 2:  # dots per cm
                dpi = (round(x * 2.54), round(y * 2.54))
        elif marker == 0xE1 and seg[:6] == b"Exif\x00\x00" and dpi is None:
            dpi = _tiff_dpi(seg[6:])
        elif marker in (0xC0, 0xC1, 0xC2) and len(seg) >= 6:
            components = seg[5]
        i += 2 + length
    if components is None:
        raise ValueError("damaged JPEG: no frame header")
    if dpi is None:
        raise ValueError("JPEG carries no resolution (JFIF density or EXIF)")
    return ImageCheck(format="jpg", colour=components >= 3, dpi=dpi)


def _ifd(data: bytes) -> tuple[str, dict[int, Any]]:
    if data[:4] not in (b"II*\x00", b"MM\x00*"):
        raise ValueError("not a TIFF (no II*/MM* header)")
    e = "<" if data[:2] == b"II" else ">"
    (off,) = struct.unpack(e + "I", data[4:8])
    if off + 2 > len(data):
        raise ValueError("damaged TIFF: first directory past the end")
    (n,) = struct.unpack(e + "H", data[off:off + 2])
    tags: dict[int, Any] = {}
    for k in range(min(n, 512)):
        p = off + 2 + 12 * k
        if p + 12 > len(data):
            raise ValueError("damaged TIFF: directory past the end")
        tag, typ, _count = struct.unpack(e + "HHI", data[p:p + 8])
        raw = data[p + 8:p + 12]
        if typ == 3:
            tags[tag] = struct.unpack(e + "H", raw[:2])[0]
        elif typ == 4:
            tags[tag] = struct.unpack(e + "I", raw)[0]
        elif typ == 5:  # RATIONAL: at an offset
            (at,) = struct.unpack(e + "I", raw)
            if at + 8 > len(data):
                raise ValueError("damaged TIFF: resolution past the end")
            num, den = struct.unpack(e + "II", data[at:at + 8])
            tags[tag] = round(num / den) if den else 0
    return e, tags


def _tiff_dpi(data: bytes) -> tuple[int, int] | None:
    _, tags = _ifd(data)
    if 282 not in tags or 283 not in tags:
        return None
    unit = tags.get(296, 2)
    x, y = int(tags[282]), int(tags[283])
    return (round(x * 2.54), round(y * 2.54)) if unit == 3 else (x, y)


def _tiff(data: bytes) -> ImageCheck:
    _, tags = _ifd(data)
    dpi = _tiff_dpi(data)
    if dpi is None:
        raise ValueError("TIFF carries no XResolution/YResolution")
    bits, photometric = int(tags.get(258, 1)), int(tags.get(262, -1))
    return ImageCheck(format="tif", colour=not (bits == 1 and photometric in (0, 1)), dpi=dpi)


def check_image(data: bytes) -> ImageCheck:
    """The header facts of a JPG or TIF; ``ValueError`` naming what is wrong."""
    if data[:2] == b"\xff\xd8":
        return _jpeg(data)
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff(data)
    raise ValueError("neither JPG nor TIF")


class ScannedImage(_Model):
    """One scanned page (影像): ``<case_no>_<category>_<seq>.jpg|tif``, base64 content."""

    name: str = Field(max_length=64)
    category: str = Field(max_length=4)
    content: str = Field(min_length=8, max_length=MAX_IMAGE_BYTES * 4 // 3 + 8, repr=False)

    @field_validator("category")
    @classmethod
    def _category(cls, v: str) -> str:
        if v not in CATEGORIES:
            raise ValueError(f"unknown image category {v!r}; one of {', '.join(CATEGORIES)}")
        return v

    @field_validator("content")
    @classmethod
    def _content(cls, v: str) -> str:
        try:
            data = base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("not base64") from None
        facts = check_image(data)
        if facts.format == "jpg":
            if not facts.colour:
                raise ValueError("a JPG must be a colour image (3 components); scan black-and-"
                                 "white pages as TIF at 300 dpi")
            if facts.dpi != (150, 150):
                raise ValueError(f"colour JPG must be 150x150 dpi, found "
                                 f"{facts.dpi[0]}x{facts.dpi[1]}")
        else:
            if facts.colour:
                raise ValueError("a TIF must be black-and-white (1 bit); scan colour pages as "
                                 "JPG at 150 dpi")
            if facts.dpi != (300, 300):
                raise ValueError(f"black-and-white TIF must be 300x300 dpi, found "
                                 f"{facts.dpi[0]}x{facts.dpi[1]}")
        return v

    @property
    def data(self) -> bytes:
        return base64.b64decode(self.content)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def format(self) -> str:
        return "jpg" if self.content.startswith("/9j/") else "tif"


# -- the application (给付申请书) -----------------------------------------------------------

class Applicant(_Model):
    name: str = Field(min_length=1, max_length=30)
    id_number: str = Field(min_length=18, max_length=18)
    phone: str = Field(default="", max_length=20)

    @field_validator("id_number")
    @classmethod
    def _id(cls, v: str) -> str:
        if err := validate_id_number(v):
            raise ValueError(err)
        return v


class Accident(_Model):
    """事故信息: the major disease (重大疾病, 办法第十一条) and when it was diagnosed."""

    disease_code: str = Field(pattern=r"^[A-Z0-9]{2,12}$")
    disease_name: str = Field(min_length=1, max_length=60)
    diagnosed_on: date


class Treatment(_Model):
    """就诊信息."""

    hospital: str = Field(min_length=1, max_length=80)
    kind: Literal["住院", "门诊"]
    admitted_on: date
    discharged_on: date

    @model_validator(mode="after")
    def _dates(self) -> Treatment:
        if self.discharged_on < self.admitted_on:
            raise ValueError("discharged_on is before admitted_on")
        return self


class Bill(_Model):
    """医疗账单: total, what basic insurance (and 大病) paid, what the member paid."""

    bill_no: str = Field(pattern=r"^[A-Za-z0-9-]{1,32}$")
    issued_on: date
    total: Money
    insurance_paid: Money
    self_paid: Money

    @model_validator(mode="after")
    def _sum(self) -> Bill:
        if self.insurance_paid + self.self_paid != self.total:
            raise ValueError("insurance_paid + self_paid must equal total")
        return self


class CaseApplication(_Model):
    """One case the union sends (给付申请书 + 影像)."""

    case_no: str = Field(pattern=CASE_NO)
    year: int = Field(ge=2000, le=2100, description="参加互助的年度")
    coverage: str = Field(default="重大疾病", min_length=1, max_length=20,
                          description="保障范围")
    unit_code: str = Field(pattern=r"^[A-Za-z0-9]{4,20}$")
    unit_name: str = Field(min_length=1, max_length=80)
    urgent: bool = False
    complete_on: date = Field(description="the day the union received the complete materials")
    applicant: Applicant
    accident: Accident
    treatments: tuple[Treatment, ...] = Field(min_length=1, max_length=50)
    bills: tuple[Bill, ...] = Field(min_length=1, max_length=200)
    images: tuple[ScannedImage, ...] = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _images(self) -> CaseApplication:
        seen: set[str] = set()
        last: tuple[str, int] | None = None
        for i, img in enumerate(self.images):
            m = _NAME.match(img.name)
            where = f"images.{i}.name"
            if m is None:
                raise ValueError(f"{where}: {img.name!r} is not <case_no>_<category>_<seq>"
                                 ".jpg|tif")
            if m["case"] != self.case_no:
                raise ValueError(f"{where}: names case {m['case']}, not {self.case_no}")
            if m["cat"] != img.category:
                raise ValueError(f"{where}: names category {m['cat']}, the image is "
                                 f"{img.category}")
            if m["ext"] != img.format:
                raise ValueError(f"{where}: .{m['ext']} but the content is {img.format}")
            key = (m["cat"], int(m["seq"]))
            if last is not None and last[0] == key[0] and key[1] != last[1] + 1:
                raise ValueError(f"{where}: page {key[1]} of {key[0]} follows page {last[1]} "
                                 "(out of order or missing)")
            last = key
            if img.sha256 in seen:
                raise ValueError(f"images.{i}.content: the same page twice")
            seen.add(img.sha256)
        if len({b.bill_no for b in self.bills}) != len(self.bills):
            raise ValueError("bills: a bill_no appears twice")
        return self

    @property
    def missing_categories(self) -> list[str]:
        have = {i.category for i in self.images}
        return [c for c in REQUIRED_CATEGORIES if c not in have]

    def summary(self) -> dict[str, Any]:
        """The application without image contents (what the hub keeps)."""
        out = self.model_dump(mode="json", exclude={"images"})
        out["images"] = [{"file": i.name, "category": i.category, "sha256": i.sha256}
                         for i in self.images]
        return out


class FinalNotice(_Model):
    """The union's 终审结案 of a case (line 75 counts the archive from it)."""

    final_on: date
    conclusion: Literal["给付", "拒付"] = "给付"


# -- the union's tables (line 43) ---------------------------------------------------------

class MemberEntry(_Model):
    """One row of 申请互助待遇人员清单: who joined the mutual aid this year, in which unit."""

    id_number: str = Field(min_length=18, max_length=18)
    name: str = Field(min_length=1, max_length=30)
    unit_code: str = Field(pattern=r"^[A-Za-z0-9]{4,20}$")

    @field_validator("id_number")
    @classmethod
    def _id(cls, v: str) -> str:
        if err := validate_id_number(v):
            raise ValueError(err)
        return v


class BenefitStandard(_Model):
    """给付标准 of one major disease: ratio of the member's own payment above the
    deductible, up to a cap per case."""

    disease_name: str = Field(min_length=1, max_length=60)
    deductible: Money = Decimal("0")
    ratio: Decimal = Field(gt=0, le=1, max_digits=4, decimal_places=3)
    cap: Money


class UnionStandards(_Model):
    """The union's tables of one year: roster, 给付标准 per disease code, 审核规则."""

    roster: tuple[MemberEntry, ...] = Field(min_length=1, max_length=200_000)
    benefits: dict[str, BenefitStandard] = Field(min_length=1, max_length=200)
    rules: dict[str, Any] = Field(default_factory=dict, description="审核规则 as agreed, "
                                  "e.g. {\"max_days_after_diagnosis\": 365}")

    @field_validator("roster")
    @classmethod
    def _unique(cls, v: tuple[MemberEntry, ...]) -> tuple[MemberEntry, ...]:
        ids = [m.id_number for m in v]
        if len(set(ids)) != len(ids):
            dup = next(i for i, x in enumerate(ids) if ids.index(x) != i)
            raise ValueError(f"row {dup}: the member appears twice")
        return v


# -- the result file (结案/理算结果及结论) ------------------------------------------------------

class ClosureLine(_Model):
    seq: int = Field(ge=1)
    bill_no: str
    total: Decimal
    self_paid: Decimal
    payable: Decimal


class ClosureFile(_Model):
    """The parsed result file: header, one line per bill, the conclusion, the trailer."""

    version: str
    case_no: str
    unit_code: str
    closed_on: date
    lines: tuple[ClosureLine, ...]
    conclusion: Literal["给付", "拒付"]
    payable: Decimal
    reason_code: str = ""
    reason: str = ""


def _money(v: Decimal) -> str:
    return str(v.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _clean(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ").replace("\r", " ")


def closure_file_name(case_no: str, closed_on: date) -> str:
    return f"UC_{case_no}_{closed_on:%Y%m%d}.txt"


def render_closure_file(f: ClosureFile) -> str:
    """The file text (UTF-8, ``\\n`` line ends): H, D per bill, C, T with the count and the
    sha256 of the H, D and C lines (``contracts/UNION_CASES.md``)."""
    body = [f"H|{f.version}|{f.case_no}|{f.unit_code}|{f.closed_on:%Y%m%d}|{len(f.lines)}"]
    body += [f"D|{ln.seq}|{ln.bill_no}|{_money(ln.total)}|{_money(ln.self_paid)}|"
             f"{_money(ln.payable)}" for ln in f.lines]
    body.append(f"C|{f.conclusion}|{_money(f.payable)}|{_clean(f.reason_code)}|"
                f"{_clean(f.reason)[:200]}")
    digest = hashlib.sha256("\n".join(body).encode()).hexdigest()
    return "\n".join([*body, f"T|{len(f.lines)}|{digest}"]) + "\n"


def parse_closure_file(text: str) -> ClosureFile:
    """The file back; ``ValueError`` naming the line at fault (trailer count or checksum)."""
    lines = text.rstrip("\n").split("\n")
    if len(lines) < 3 or not lines[0].startswith("H|") or not lines[-1].startswith("T|"):
        raise ValueError("line 1: a result file starts with H and ends with T")
    h = lines[0].split("|")
    if len(h) != 6 or h[1] != LAYOUT_VERSION:
        raise ValueError(f"line 1: header of layout {LAYOUT_VERSION} expected")
    t = lines[-1].split("|")
    digest = hashlib.sha256("\n".join(lines[:-1]).encode()).hexdigest()
    if len(t) != 3 or t[2] != digest:
        raise ValueError(f"line {len(lines)}: checksum does not match")
    details = [ln.split("|") for ln in lines[1:-2]]
    if str(len(details)) != t[1] or h[5] != t[1]:
        raise ValueError(f"line {len(lines)}: count {t[1]} but {len(details)} D lines")
    c = lines[-2].split("|")
    if c[0] != "C" or len(c) != 5:
        raise ValueError(f"line {len(lines) - 1}: conclusion line C expected")
    for n, d in enumerate(details, start=2):
        if d[0] != "D" or len(d) != 6:
            raise ValueError(f"line {n}: detail line D with 6 fields expected")
    return ClosureFile(
        version=h[1], case_no=h[2], unit_code=h[3],
        closed_on=datetime.strptime(h[4], "%Y%m%d").date(),
        lines=tuple(ClosureLine(seq=int(d[1]), bill_no=d[2], total=Decimal(d[3]),
                                self_paid=Decimal(d[4]), payable=Decimal(d[5]))
                    for d in details),
        conclusion=c[1], payable=Decimal(c[2]),
        reason_code=c[3], reason=c[4])


# -- notices on the union.notify lane -----------------------------------------------------

class Notice(_Model):
    """What the hub tells the union side about a case; the body the simulator receives."""

    kind: Literal["acceptance", "closure", "archive"]
    case_no: str
    recipient: Literal["unit", "city_union"]
    unit_code: str
    decision: str = Field(default="", description="受理 / 不予受理; 给付 / 拒付; 已返还")
    reason: str = ""
    at: str = Field(description="when the hub decided (ISO, Beijing time)")
    file_name: str = ""
    file_text: str = ""
    resend: bool = Field(default=False, description="补发: sent again on purpose")


def notice_message(notice: Notice, *, case_id: str, salt: str = "") -> HubMessage:
    """A notice for the ``union.notify`` lane: one fact per case, kind and recipient (a
    resend passes ``salt`` to make it a new fact on purpose)."""
    type_ = {"acceptance": ACCEPTANCE, "closure": CLOSURE, "archive": ARCHIVE}[notice.kind]
    payload = notice.model_dump(mode="json")
    key = f"{notice.case_no}:{notice.kind}:{notice.recipient}"
    return HubMessage(type=type_, source="hub", target="trade_union", correlation_id=case_id,
                      idempotency_key=idempotency_key(type_, key, payload, salt),
                      entity_key=entity_key("union_case", notice.case_no), payload=payload)

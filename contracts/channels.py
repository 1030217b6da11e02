"""Citizen-channel applications (flow F1): types, payload contracts and their tax operations.

Four channels submit applications to the hub: ``my_nanjing`` (我的南京),
``gov_office`` (政务办 "一件事"), ``online_hall`` (网厅) and ``hrss`` (人社). Each
application type has a stable snake_case code, a Chinese title, the channels
allowed to submit it (``CHANNEL_TYPES``), a frozen payload model and the tax
catalogue operation it ends in (``TAX_OPERATION``); ``to_tax_payload`` turns a
validated application into the catalogue payload(s) the pipeline publishes.

Validation implements the seed's rules, each failure naming ``payload.<field>``:

* ID number legal (GB 11643 checksum); gender and birth date derived from it
  (given values must agree, absent ones are filled in);
* names without digits or special characters (``contracts.employee.check_name``);
* a mobile phone is required (11 digits, 13-19);
* household and residence addresses are required for residents and flexible
  workers, with 户籍性质 (a 户籍迁入时间 for 外市迁入户籍);
* the community (基层医保区划) is 12 digits inside a Nanjing division (whether
  tax knows it is checked by the pipeline with a tax query);
* 补助类别 consistent with 人员类别 (``SUBSIDY_TYPES``), 人员类别 consistent with age
  (``RESIDENT_TYPES``);
* a newborn is under two full years old (Beijing calendar; ``today`` is
  injected through the validation context, see ``validate_payload``);
* a 准新生儿 temporary ID is built from the mother's ID and the birth order
  (``temp_id_for``).

Code tables owned by the hub (the tax catalogue fixes the codes, not meanings):

    人员类别 (resident_type, tax ``jmlb``)        补助类别 (subsidy_type, tax ``bzlb``)
    11 成年居民      18 and older                00 非补助对象            every 人员类别
    12 老年居民      60 and older                01 学生儿童补助对象      13 14 15 16
    13 中小学生      under 18                    02 成年居民补助对象      11
    14 大学生        15 and older                03 老年居民补助对象      12
    15 学龄前儿童    under 7                     04 困难人员补助对象      11 12
    16 新生儿        under 2                        (低保、特困等成年人; children in
                                                    difficulty are subsidised as 01)

Choices worth knowing:

* ``transfer_out`` (基本医疗保险转出) ends in ``EmployeeStop`` with reason ``02``
  (终止参保): the seed's transfer looks up the *employee* and the unit, and a
  relation that moves out of Nanjing ends the contribution here; the
  receiving region enrolls the person itself (national transfer platform).
* ``veteran_enroll`` (退役军人参保登记) ends in ``ResidentEnroll`` with 中途参保标志
  ``1`` 退役军人 (seed, 城乡居民参保登记: 中途参保标志 退役军人, covered from the day
  of enrollment to 31 December): an uninsured veteran joins 城乡居民 mid-year.
* ``graduate_stop_batch`` (大学生毕业停保) is one application of up to 1000
  persons; each becomes one ``ResidentSuspend``.
* ``employee_suspend`` ends in ``EmployeeStop`` with reason ``01`` (暂停参保).
* ``start_month``, ``insure_year`` and the 中途参保 start are business decisions of
  the pipeline (``routes.channel_rules``; 退休一件事: next month after a normal 职工医保
  contribution this month; 出生一件事: next year when the 准新生儿 of this mother and
  胎次 paid this year's fee; 城乡居民参保登记: next year inside the 集中征缴期
  ``CollectionPeriods``, this year from the day of enrollment with a 中途参保标志):
  ``to_tax_payload`` takes them as arguments and defaults to the current month /
  year. The readings of the seed: ``contracts/CHANNEL_RULES.md``.

Pure: pydantic, the contracts package and ``contracts.errors``; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from contracts.checks import (
    check_community,
    check_credit_code,
    check_division,
    check_id_number,
    check_mobile,
)
from contracts.clock import today_beijing
from contracts.employee import check_name, check_stop_date, check_stop_reason
from contracts.errors import ValidationFailed
from contracts.ids import (
    birth_date_of,
    gender_of,
    validate_id_number,
)
from contracts.taxcat import model_for

__all__ = [
    "APPLICATION_TYPES",
    "CHANNEL_NAMES",
    "CHANNEL_TYPES",
    "EMPLOYMENT_FORMS",
    "HOUSEHOLD_KINDS",
    "MAX_BATCH_PERSONS",
    "MIDYEAR_FLAGS",
    "REQUEST_ID_PATTERN",
    "RESIDENT_TYPES",
    "RESIDENT_YEAR_TYPES",
    "REVIEWED_TYPES",
    "SUBSIDY_TYPES",
    "TAX_OPERATION",
    "AppType",
    "ApplicationPayload",
    "ApplicationRequest",
    "ApplicationReview",
    "BirthNewbornEnroll",
    "CollectionPeriods",
    "EmployeeEnroll",
    "EmployeeSuspend",
    "EmploymentEmployeeEnroll",
    "FlexibleEnroll",
    "GraduateStop",
    "GraduateStopBatch",
    "NewbornEnroll",
    "PersonUpdate",
    "PreNewbornEnroll",
    "ResidentEnroll",
    "ResidentMaintain",
    "Retire",
    "RetirementFlexibleEnroll",
    "StudentEnroll",
    "TransferDestination",
    "TransferOut",
    "UnemployedEnroll",
    "UnitMaintain",
    "VeteranEnroll",
    "entity_of",
    "midyear_flag_of",
    "payload_json",
    "temp_id_for",
    "to_tax_payload",
    "validate_payload",
]

CHANNEL_NAMES: Final = ("my_nanjing", "gov_office", "online_hall", "hrss")
REQUEST_ID_PATTERN: Final = r"^[A-Za-z0-9_-]{1,64}$"
MAX_BATCH_PERSONS: Final = 1000

RESIDENT_TYPES: Final[dict[str, tuple[str, int | None, int | None]]] = {
    "11": ("成年居民", 18, None),
    "12": ("老年居民", 60, None),
    "13": ("中小学生", None, 18),
    "14": ("大学生", 15, None),
    "15": ("学龄前儿童", None, 7),
    "16": ("新生儿", None, 2),
}
"""人员类别 -> (title, minimum age, age it must be under), ages in full years."""

SUBSIDY_TYPES: Final[dict[str, tuple[str, frozenset[str]]]] = {
    "00": ("非补助对象", frozenset(RESIDENT_TYPES)),
    "01": ("学生儿童补助对象", frozenset({"13", "14", "15", "16"})),
    "02": ("成年居民补助对象", frozenset({"11"})),
    "03": ("老年居民补助对象", frozenset({"12"})),
    "04": ("困难人员补助对象", frozenset({"11", "12"})),
}
"""补助类别 -> (title, the 人员类别 it goes with): the seed's 强校验 as a table."""

HOUSEHOLD_KINDS: Final[dict[str, str]] = {"1": "本市户籍", "2": "外市迁入户籍",
                                          "3": "非本市户籍"}
"""户籍性质; ``2`` needs ``moved_in_date`` (户籍迁入时间)."""

EMPLOYMENT_FORMS: Final[dict[str, str]] = {"1": "全日制", "2": "非全日制", "3": "劳务派遣",
                                           "9": "其他"}
"""用工形式 of 失业代缴医疗参保登记 (required by the seed)."""

MIDYEAR_FLAGS: Final[dict[str, str]] = {"1": "退役军人", "2": "职工中断缴费90天内",
                                        "3": "刑满释放", "4": "毕业后大学生"}
"""中途参保标志 of 城乡居民参保登记 (seed: optional, one of these four; the codes are the
hub's, carried to tax as ``midyear_flag``): covered from the day of enrollment to 31
December of the insurance year."""

RESIDENT_YEAR_TYPES: Final = frozenset({"resident_enroll", "student_enroll", "veteran_enroll"})
"""Applications ending in 城乡居民参保登记 whose insurance year follows the 集中征缴期."""

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_MONTH = re.compile(r"^(19|20)\d{2}(0[1-9]|1[0-2])$")
_COMMUNITY = re.compile(r"^32\d{10}$")
_DIVISION = re.compile(r"^\d{6}$")
_CODE = re.compile(r"^[0-9A-Za-z_]{1,20}$")
_SCHOOL_CODE = re.compile(r"^\d{5}$|^\d{10}$")
_MONTH_DAY = re.compile(r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")


class CollectionPeriods(BaseModel):
    """城乡居民集中征缴期: the days residents enroll (and pay) for the coming insurance year.

    The seed names the period (集中征缴期: 次年1月1日至12月31日; otherwise 当年) but not
    its dates, which the bureau announces each year. ``default_start`` and
    ``default_end`` (``MM-DD``) place it in the year before the insurance year
    (default 09-01 to 12-31); an end earlier in the calendar than the start runs into
    the insurance year itself (e.g. 09-01 to 02-28). ``years`` gives an insurance year
    its own first and last day (a notice that moves or extends the period).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    default_start: str = Field(default="09-01", description="MM-DD, in the year before")
    default_end: str = Field(default="12-31", description="MM-DD; before default_start = "
                                                          "in the insurance year")
    years: dict[int, tuple[date, date]] = Field(
        default_factory=dict, description="insurance year -> first and last day")

    @field_validator("default_start", "default_end")
    @classmethod
    def _month_day(cls, v: str) -> str:
        if not _MONTH_DAY.match(v):
            raise ValueError(f"{v!r} must be MM-DD")
        try:
            date(2001, int(v[:2]), int(v[3:]))  # not a leap year: no 02-29, every year has it
        except ValueError:
            raise ValueError(f"{v!r} is not a day of every year") from None
        return v

    @model_validator(mode="after")
    def _windows(self) -> CollectionPeriods:
        for year, (first, last) in sorted(self.years.items()):
            if first > last:
                raise ValueError(f"years.{year}: {first} is after {last}")
            if not date(year - 1, 1, 1) <= first or last > date(year, 12, 31):
                raise ValueError(f"years.{year}: the period must lie in {year - 1} or {year}")
            for a, b in ((year - 1, year), (year, year + 1)):
                if self.window(a)[1] >= self.window(b)[0]:
                    raise ValueError(f"years.{year}: the periods of {a} and {b} overlap")
        return self

    def window(self, insure_year: int) -> tuple[date, date]:
        """First and last day of the 集中征缴期 for ``insure_year``."""
        if insure_year in self.years:
            return self.years[insure_year]
        start = date(insure_year - 1, int(self.default_start[:2]), int(self.default_start[3:]))
        end_year = insure_year - 1 if self.default_end >= self.default_start else insure_year
        return start, date(end_year, int(self.default_end[:2]), int(self.default_end[3:]))

    def collecting_for(self, day: date) -> int | None:
        """The insurance year whose 集中征缴期 ``day`` falls in, or None outside them all."""
        for year in (day.year, day.year + 1):
            first, last = self.window(year)
            if first <= day <= last:
                return year
        return None

def temp_id_for(mother_id_number: str, birth_order: int) -> str:
    """准新生儿临时证件号: ``"Z"`` + the mother's 18-character ID + the birth order (1-9).

    Why this shape: it is deterministic (the same mother and birth order give the
    same temporary ID on every channel, so a repeat is recognised), it can never
    collide with a GB 11643 number (20 characters, starts with a letter), and core
    can find the mother from it when the child is born (准新生儿转新生儿).
    """
    mother = mother_id_number.strip().upper()
    if reason := validate_id_number(mother):
        raise ValueError(f"mother's ID number: {reason}")
    if not 1 <= birth_order <= 9:
        raise ValueError(f"birth order must be 1-9, got {birth_order}")
    return f"Z{mother}{birth_order}"


# ---------------------------------------------------------------- field types












def _month(v: str) -> str:
    if not _MONTH.match(v):
        raise ValueError("must be yyyyMM")
    return v


def _code(v: str) -> str:
    if not _CODE.match(v):
        raise ValueError("must be a code of 1-20 letters, digits or _")
    return v


IdNumber = Annotated[str, AfterValidator(check_id_number)]
PersonName = Annotated[str, AfterValidator(check_name)]
Mobile = Annotated[str, AfterValidator(check_mobile)]
CommunityCode = Annotated[str, AfterValidator(check_community)]
NanjingDivision = Annotated[str, AfterValidator(check_division)]
CreditCode = Annotated[str, AfterValidator(check_credit_code)]
Month = Annotated[str, AfterValidator(_month)]
Code = Annotated[str, AfterValidator(_code)]
Address = Annotated[str, Field(min_length=2, max_length=200)]
Remark = Annotated[str, Field(max_length=200)]
Fen = Annotated[int, Field(ge=0, le=100_000_000, description="amount in fen (分)")]
SubsidyType = Literal["00", "01", "02", "03", "04"]


def _today(info: ValidationInfo) -> date:
    ctx = info.context
    today = ctx.get("today") if isinstance(ctx, Mapping) else None
    return today if isinstance(today, date) else today_beijing()


def _age(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def _not_future(v: date, info: ValidationInfo) -> date:
    if v > _today(info):
        raise ValueError(f"{v} is in the future")
    return v


# ---------------------------------------------------------------- payload models


class ApplicationPayload(BaseModel):
    """Base of every application payload: frozen, no unknown fields, strings stripped."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class _Person(ApplicationPayload):
    """A person named by a GB 11643 ID number; gender and birth date come from it."""

    AGE_RANGE: ClassVar[tuple[int | None, int | None]] = (None, None)
    AGE_HINT: ClassVar[str] = ""

    psn_cert_type: Literal["01"] = Field(
        default="01", description="证件类型: 01 居民身份证 (the tax catalogue carries "
                                  "GB 11643 numbers only; other certificates go to a counter)")
    id_number: IdNumber = Field(description="证件号码 (checksum verified)")
    name: PersonName = Field(description="姓名, without digits or special characters")
    gender: Literal["1", "2"] | None = Field(
        default=None, validate_default=True,
        description="性别 1 male, 2 female; derived from the ID number when absent")
    birth_date: date | None = Field(
        default=None, validate_default=True,
        description="出生日期; derived from the ID number when absent")
    phone: Mobile = Field(description="移动电话 (required)")

    @field_validator("psn_cert_type", mode="before")
    @classmethod
    def _cert(cls, v: object) -> object:
        return "01" if v in ("1", 1) else v

    @field_validator("gender")
    @classmethod
    def _gender(cls, v: str | None, info: ValidationInfo) -> str | None:
        id_number = info.data.get("id_number")
        if id_number is None:
            return v
        derived = gender_of(id_number)
        if v is not None and v != derived:
            raise ValueError(f"gender {v} disagrees with the ID number ({derived})")
        return derived

    @field_validator("birth_date")
    @classmethod
    def _birth(cls, v: date | None, info: ValidationInfo) -> date | None:
        id_number = info.data.get("id_number")
        if id_number is None:
            return v
        derived = birth_date_of(id_number)
        if v is not None and v != derived:
            raise ValueError(f"birth date {v} disagrees with the ID number ({derived})")
        today = _today(info)
        if derived > today:
            raise ValueError(f"birth date {derived} is in the future")
        age, (low, under) = _age(derived, today), cls.AGE_RANGE
        if low is not None and age < low:
            raise ValueError(f"born {derived}: {age} years old on {today}, at least {low} "
                             f"required{cls.AGE_HINT}")
        if under is not None and age >= under:
            raise ValueError(f"born {derived}: {age} years old on {today}, must be under "
                             f"{under}{cls.AGE_HINT}")
        return derived


class _Household(ApplicationPayload):
    """Where a resident lives and is registered; the community must be a Nanjing one."""

    ALLOWED_HOUSEHOLD_KINDS: ClassVar[tuple[str, ...]] = tuple(HOUSEHOLD_KINDS)
    HOUSEHOLD_HINT: ClassVar[str] = ""

    household_kind: Literal["1", "2", "3"] = Field(
        description="户籍性质: 1 本市户籍, 2 外市迁入户籍, 3 非本市户籍")
    moved_in_date: date | None = Field(
        default=None, validate_default=True,
        description="户籍迁入时间, required for household_kind 2 only")
    household_address: Address = Field(description="户口地址 (required)")
    residence_address: Address = Field(description="居住地址 (required)")
    community: CommunityCode = Field(description="基层医保区划, 12 digits")

    @field_validator("household_kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        if v not in cls.ALLOWED_HOUSEHOLD_KINDS:
            allowed = ", ".join(f"{k} {HOUSEHOLD_KINDS[k]}"
                                for k in cls.ALLOWED_HOUSEHOLD_KINDS)
            raise ValueError(f"this application needs 户籍性质 {allowed}, got {v} "
                             f"{HOUSEHOLD_KINDS.get(v, '?')}{cls.HOUSEHOLD_HINT}")
        return v

    @field_validator("moved_in_date")
    @classmethod
    def _moved_in(cls, v: date | None, info: ValidationInfo) -> date | None:
        kind = info.data.get("household_kind")
        if kind == "2" and v is None:
            raise ValueError("required for household_kind 2 (外市迁入户籍)")
        if kind is not None and kind != "2" and v is not None:
            raise ValueError("only for household_kind 2 (外市迁入户籍)")
        return None if v is None else _not_future(v, info)


def _check_subsidy(v: str, resident_type: str | None) -> str:
    title, goes_with = SUBSIDY_TYPES[v]
    if resident_type is not None and resident_type not in goes_with:
        allowed = ", ".join(k for k, (_, rts) in SUBSIDY_TYPES.items() if resident_type in rts)
        raise ValueError(f"补助类别 {v} ({title}) does not go with 人员类别 {resident_type} "
                         f"({RESIDENT_TYPES[resident_type][0]}); allowed: {allowed}")
    return v


class _Resident(_Household, _Person):
    """城乡居民 enrollment: person, household, 人员类别 and 补助类别 (checked together)."""

    ALLOWED_RESIDENT_TYPES: ClassVar[tuple[str, ...]] = tuple(RESIDENT_TYPES)
    DEFAULT_RESIDENT_TYPE: ClassVar[str | None] = None

    resident_type: str | None = Field(
        default=None, validate_default=True, description="人员类别 (居民), see RESIDENT_TYPES")
    subsidy_type: SubsidyType = Field(description="补助类别, consistent with 人员类别")

    @field_validator("resident_type")
    @classmethod
    def _resident_type(cls, v: str | None, info: ValidationInfo) -> str:
        v = v if v is not None else cls.DEFAULT_RESIDENT_TYPE
        if v is None:
            raise ValueError(f"required: one of {', '.join(cls.ALLOWED_RESIDENT_TYPES)}")
        if v not in cls.ALLOWED_RESIDENT_TYPES:
            allowed = ", ".join(f"{k} {RESIDENT_TYPES[k][0]}"
                                for k in cls.ALLOWED_RESIDENT_TYPES)
            raise ValueError(f"{v!r} is not allowed here; allowed: {allowed}")
        birth = info.data.get("birth_date")
        if birth is not None:
            title, low, under = RESIDENT_TYPES[v]
            age = _age(birth, _today(info))
            if (low is not None and age < low) or (under is not None and age >= under):
                bounds = f"of at least {low}" if low is not None else f"under {under}"
                raise ValueError(f"人员类别 {v} ({title}) needs an age {bounds}; "
                                 f"the person is {age}")
        return v

    @field_validator("subsidy_type")
    @classmethod
    def _subsidy(cls, v: str, info: ValidationInfo) -> str:
        return _check_subsidy(v, info.data.get("resident_type"))

    def midyear(self) -> str | None:
        """中途参保标志 of this enrollment (``MIDYEAR_FLAGS``), None for a regular one."""
        return None


class ResidentEnroll(_Resident):
    """居民参保登记 (my_nanjing, online_hall): residents two years and older."""

    AGE_RANGE = (2, None)
    AGE_HINT = "; a child under two enrolls as a newborn (newborn_enroll)"
    ALLOWED_RESIDENT_TYPES = ("11", "12", "13", "15")

    midyear_flag: Literal["1", "2", "3", "4"] | None = Field(
        default=None, description="中途参保标志 (optional): 1 退役军人, 2 职工中断缴费90天内, "
                                  "3 刑满释放, 4 毕业后大学生; covered from the day of "
                                  "enrollment to 31 December of this year")

    def midyear(self) -> str | None:
        return self.midyear_flag


class StudentEnroll(_Resident):
    """学生参保登记 (my_nanjing, online_hall): school students under 18 (人员类别 13)."""

    AGE_RANGE = (None, 18)
    AGE_HINT = "; students of 18 and older enroll as residents or through their university"
    ALLOWED_RESIDENT_TYPES = ("13",)
    DEFAULT_RESIDENT_TYPE = "13"

    school_name: str | None = Field(default=None, min_length=2, max_length=100,
                                    description="学校名称")


def _check_mother(v: str, info: ValidationInfo) -> str:
    if gender_of(v) != "2":
        raise ValueError("must be a woman's ID number (the 17th digit is even)")
    child = info.data.get("id_number")
    if child is not None and child == v:
        raise ValueError("is the child's own ID number")
    birth = info.data.get("birth_date")
    if birth is not None and birth_date_of(v) >= birth:
        raise ValueError(f"the mother (born {birth_date_of(v)}) is not older than the child")
    return v


class NewbornEnroll(_Resident):
    """新生儿参保登记 (my_nanjing): under two; may convert a 准新生儿 (its temp ID given)."""

    AGE_RANGE = (None, 2)
    AGE_HINT = "; 新生儿参保 is for children within two years of birth"
    ALLOWED_RESIDENT_TYPES = ("16",)
    DEFAULT_RESIDENT_TYPE = "16"

    mother_id_number: IdNumber = Field(description="母亲证件号码 (a woman's ID number)")
    birth_order: int | None = Field(default=None, ge=1, le=9,
                                    description="胎次, required with temp_id_number")
    temp_id_number: str | None = Field(
        default=None, validate_default=True,
        description="准新生儿临时证件号 when a 准新生儿 record is converted (temp_id_for)")

    _mother = field_validator("mother_id_number")(_check_mother)

    @field_validator("temp_id_number")
    @classmethod
    def _temp(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return None
        mother, order = info.data.get("mother_id_number"), info.data.get("birth_order")
        if order is None:
            raise ValueError("needs birth_order (胎次) to be checked")
        if mother is None:
            return v
        expected = temp_id_for(mother, order)
        if v.upper() != expected:
            raise ValueError(f"does not match the mother's ID and birth order (expected "
                             f"Z + mother's ID + {order})")
        return expected


class BirthNewbornEnroll(NewbornEnroll):
    """出生一件事 新生儿参保登记 (gov_office): newborns with a Nanjing household (本市户籍).

    ``birth_order`` (胎次) is required: with the mother's ID it names the 准新生儿
    record whose payment this year moves the enrollment to next year.
    """

    ALLOWED_HOUSEHOLD_KINDS = ("1",)
    HOUSEHOLD_HINT = ("; 出生一件事 is for newborns of 本市户籍 (seed), others apply for "
                      "新生儿参保登记")

    birth_order: int = Field(
        ge=1, le=9, description="胎次 (1-9, required): which of the mother's children; "
                                "the 准新生儿 record tax is asked about")


class PreNewbornEnroll(_Household):
    """准新生儿参保登记 (my_nanjing): an unborn child, named by mother's ID and birth order."""

    mother_id_number: IdNumber = Field(description="母亲证件号码 (a woman's ID number)")
    birth_order: int = Field(ge=1, le=9, description="胎次 (1-9)")
    temp_id_number: str | None = Field(
        default=None, validate_default=True,
        description="临时证件号; built by the hub when absent, checked when given")
    name: PersonName = Field(description="姓名 of the child-to-be")
    phone: Mobile = Field(description="移动电话 (required)")
    subsidy_type: SubsidyType = Field(description="补助类别 (人员类别 16 新生儿: 00 or 01)")

    _mother = field_validator("mother_id_number")(_check_mother)

    @field_validator("temp_id_number")
    @classmethod
    def _temp(cls, v: str | None, info: ValidationInfo) -> str | None:
        mother, order = info.data.get("mother_id_number"), info.data.get("birth_order")
        if mother is None or order is None:
            return v
        expected = temp_id_for(mother, order)
        if v is not None and v.upper() != expected:
            raise ValueError(f"does not match the mother's ID and birth order (expected "
                             f"Z + mother's ID + {order})")
        return expected

    @field_validator("subsidy_type")
    @classmethod
    def _subsidy(cls, v: str) -> str:
        return _check_subsidy(v, "16")


class ResidentMaintain(ApplicationPayload):
    """城乡居民参保维护 (my_nanjing): change a resident's contact, community or 补助类别."""

    id_number: IdNumber
    name: PersonName
    phone: Mobile | None = None
    residence_address: Address | None = None
    community: CommunityCode | None = None
    resident_type: Literal["11", "12", "13", "14", "15", "16"] | None = Field(
        default=None, description="人员类别, required with subsidy_type (checked together)")
    subsidy_type: SubsidyType | None = None
    change_date: date | None = Field(default=None, description="变更日期; today when absent")

    @field_validator("subsidy_type")
    @classmethod
    def _subsidy(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return None
        if "resident_type" in info.data and info.data["resident_type"] is None:
            raise ValueError("needs resident_type (人员类别) to be checked against")
        return _check_subsidy(v, info.data.get("resident_type"))

    @model_validator(mode="after")
    def _something(self) -> ResidentMaintain:
        if all(getattr(self, f) is None for f in
               ("phone", "residence_address", "community", "subsidy_type")):
            raise ValueError("nothing to maintain: give phone, residence_address, community "
                             "or subsidy_type")
        return self


class _Unit(ApplicationPayload):
    unit_credit_code: CreditCode = Field(description="统一社会信用代码 of the unit")


class TransferOut(_Person, _Unit):
    """基本医疗保险转出 (my_nanjing): an employee's relation moves out of Nanjing.

    Ends in ``EmployeeStop`` reason ``02`` (终止参保); the pipeline checks tax
    arrears first (seed) and the national transfer platform enrolls the person
    in the receiving region.
    """

    target_division: str = Field(description="转入地行政区划 (6 digits, outside Nanjing)")
    stop_date: date = Field(description="转出(终止)日期")
    remark: Remark | None = None

    @field_validator("target_division")
    @classmethod
    def _target(cls, v: str) -> str:
        if not _DIVISION.match(v):
            raise ValueError("must be a 6-digit division code")
        if v.startswith("3201"):
            raise ValueError("is inside Nanjing: a move within Nanjing is not a transfer out")
        return v

    @field_validator("stop_date")
    @classmethod
    def _stop(cls, v: date, info: ValidationInfo) -> date:
        return check_stop_date(v, today=_today(info))


REVIEWED_TYPES: Final = frozenset({"retire", "unit_maintain"})
"""Applications core reviews (审核) before anything reaches tax (seed 1679, 2070, 2126):
在职转退休 (人员复核, or 年限补缴审核 when the years fall short) and 网厅单位信息维护."""


class ApplicationReview(BaseModel):
    """Core's review of a registered application (H2502): the verdict and, when approved,
    the reviewed business data, which is what tax gets (core may correct it in review)."""

    model_config = ConfigDict(extra="forbid")

    application_id: str = Field(min_length=1, max_length=64)
    approved: bool = Field(description="审核通过 (true) or 审核不通过 (false)")
    review_kind: Literal["person_review", "years_backpay_review", "unit_review"] = Field(
        description="人员复核, 医保退休不满足年限一次性缴纳审核, 单位信息审核")
    reason: str = Field(default="", max_length=500,
                        description="why not approved (required then), or a remark")
    reviewed_at: datetime = Field(description="审核时间 (with its offset)")
    data: dict[str, Any] | None = Field(
        default=None, description="the reviewed application data (required when approved)")

    @model_validator(mode="after")
    def _complete(self) -> ApplicationReview:
        if self.approved and self.data is None:
            raise ValueError("an approved review carries data (what tax is sent)")
        if not self.approved and not self.reason.strip():
            raise ValueError("a review that is not approved carries a reason "
                             "(the applicant is told)")
        return self


@dataclass(frozen=True)
class TransferDestination:
    """What core (the 医保信息平台, which speaks to the 转入地) knows of a transfer's
    destination (H1106): a normal enrollment there, and pending 代办 business there."""

    insured: bool
    pending_business: bool
    detail: str = ""


class GraduateStop(ApplicationPayload):
    """One graduate of a 大学生毕业停保 batch."""

    id_number: IdNumber
    name: PersonName
    stop_date: date = Field(description="暂停日期")
    reason_code: str = Field(default="01", description="暂停原因, a key of STOP_REASONS")
    remark: Remark | None = Field(default=None, description="备注")

    @field_validator("stop_date")
    @classmethod
    def _stop(cls, v: date, info: ValidationInfo) -> date:
        return check_stop_date(v, today=_today(info))

    _reason = field_validator("reason_code")(check_stop_reason)


class GraduateStopBatch(ApplicationPayload):
    """大学生毕业停保 (my_nanjing): a batch; each person becomes one ``ResidentSuspend``."""

    school_name: str | None = Field(default=None, min_length=2, max_length=100)
    school_code: str | None = Field(default=None, description="院校代码, 5 or 10 digits")
    persons: list[GraduateStop] = Field(min_length=1, max_length=MAX_BATCH_PERSONS)

    @field_validator("school_code")
    @classmethod
    def _school(cls, v: str | None) -> str | None:
        if v is not None and not _SCHOOL_CODE.match(v):
            raise ValueError("must be 5 or 10 digits")
        return v

    @field_validator("persons")
    @classmethod
    def _unique(cls, v: list[GraduateStop]) -> list[GraduateStop]:
        first: dict[str, int] = {}
        for i, p in enumerate(v):
            if p.id_number in first:
                raise ValueError(f"persons {first[p.id_number]} and {i} have the same "
                                 f"id_number")
            first[p.id_number] = i
        return v


class EmployeeEnroll(_Person, _Unit):
    """职工参保登记 (online_hall, hrss): one employee of one unit (EmployeeEnroll)."""

    AGE_RANGE = (16, None)
    AGE_HINT = "; the legal working age is 16"

    unit_name: str = Field(min_length=2, max_length=100, description="单位名称")
    insutype: Literal["310", "320", "330", "510"] = Field(default="310", description="险种")
    start_month: Month | None = Field(default=None, description="参保开始年月 yyyyMM")
    admdvs: NanjingDivision = Field(description="参保地医保区划 (6 digits, Nanjing)")
    wage: Fen = Field(default=0, description="申报工资 (fen)")


class EmploymentEmployeeEnroll(EmployeeEnroll):
    """就业一件事 职工参保登记 (gov_office)."""


class FlexibleEnroll(_Household, _Person):
    """灵活参保登记 (online_hall, hrss): an individual contributor to 职工医保."""

    AGE_RANGE = (16, None)
    AGE_HINT = "; the legal working age is 16"

    contribution_base: Fen = Field(description="缴费基数 (fen)")
    start_month: Month | None = Field(default=None, description="参保开始年月 yyyyMM")


class RetirementFlexibleEnroll(FlexibleEnroll):
    """退休一件事 灵活参保登记 (gov_office); the pipeline picks this or next month to start."""


class VeteranEnroll(_Resident):
    """退役军人参保登记 (gov_office 退役军人一件事, hrss): an uninsured veteran joins 城乡居民
    mid-year (``ResidentEnroll`` with 中途参保标志 1 退役军人, covered from the day of
    enrollment to 31 December)."""

    AGE_RANGE = (16, None)
    AGE_HINT = "; a veteran is of working age"
    ALLOWED_RESIDENT_TYPES = ("11", "12")

    discharge_date: date = Field(description="退役日期")
    veteran_cert_no: str | None = Field(default=None, min_length=1, max_length=40,
                                        description="退役证件号")

    @field_validator("discharge_date")
    @classmethod
    def _discharged(cls, v: date, info: ValidationInfo) -> date:
        return _not_future(v, info)

    def midyear(self) -> str | None:
        return "1"  # 退役军人


class UnitMaintain(_Unit):
    """单位信息维护 (online_hall): the unit's changed details (UnitUpdate)."""

    unit_name: str = Field(min_length=2, max_length=100, description="单位名称")
    legal_rep: PersonName | None = Field(default=None, description="法定代表人")
    unit_address: str | None = Field(default=None, min_length=2, max_length=200)
    unit_type: Code | None = Field(default=None, description="单位类型")
    industry: Code | None = Field(default=None, description="行业代码")
    phone: Mobile | None = Field(default=None, description="联系人移动电话")
    change_date: date | None = Field(default=None, description="变更日期; today when absent")


class EmployeeSuspend(_Unit):
    """职工暂停参保 (online_hall): EmployeeStop with reason 01 (暂停参保)."""

    id_number: IdNumber
    name: PersonName
    stop_date: date = Field(description="暂停日期")
    remark: Remark | None = None

    @field_validator("stop_date")
    @classmethod
    def _stop(cls, v: date, info: ValidationInfo) -> date:
        return check_stop_date(v, today=_today(info))


class PersonUpdate(_Unit):
    """人员信息修改 (online_hall): an employee's name, phone or wage (EmployeeUpdate)."""

    id_number: IdNumber
    name: PersonName
    phone: Mobile | None = None
    wage: Fen | None = Field(default=None, description="申报工资 (fen)")
    change_date: date | None = Field(default=None, description="变更日期; today when absent")


class Retire(_Unit):
    """在职转退休 (hrss): the pipeline checks tax arrears first (EmployeeRetire)."""

    id_number: IdNumber
    name: PersonName
    retire_date: date = Field(description="退休日期")
    phone: Mobile | None = None

    @field_validator("retire_date")
    @classmethod
    def _retire(cls, v: date, info: ValidationInfo) -> date:
        return check_stop_date(v, today=_today(info))


class UnemployedEnroll(_Person):
    """失业代缴医疗参保登记 (hrss): the unemployment fund pays the person's contribution."""

    AGE_RANGE = (16, None)
    AGE_HINT = "; the legal working age is 16"

    unit_credit_code: CreditCode | None = Field(default=None, description="代缴单位 (单位编号)")
    unemployment_cert_no: str = Field(min_length=1, max_length=40, description="失业证号")
    employment_form: Literal["1", "2", "3", "9"] = Field(
        description="用工形式 (required): 1 全日制, 2 非全日制, 3 劳务派遣, 9 其他")
    start_month: Month | None = Field(default=None, description="参保开始年月 yyyyMM")
    admdvs: NanjingDivision = Field(description="参保地医保区划")


# ---------------------------------------------------------------- the type table


@dataclass(frozen=True)
class AppType:
    """One application type: who may submit it, its contract, where it ends at tax."""

    code: str
    title: str
    channels: tuple[str, ...]
    model: type[ApplicationPayload]
    operation: str
    doc: str = ""


_MN, _GO, _OH, _HR = CHANNEL_NAMES

APPLICATION_TYPES: Final[dict[str, AppType]] = {t.code: t for t in (
    AppType("newborn_enroll", "新生儿参保登记", (_MN,), NewbornEnroll, "NewbornEnroll"),
    AppType("resident_enroll", "居民参保登记", (_MN, _OH), ResidentEnroll, "ResidentEnroll",
            "insure year: next inside the 集中征缴期, else this; 中途参保标志 optional"),
    AppType("student_enroll", "学生参保登记", (_MN, _OH), StudentEnroll, "ResidentEnroll",
            "人员类别 13; insure year: next inside the 集中征缴期, else this"),
    AppType("pre_newborn_enroll", "准新生儿参保登记", (_MN,), PreNewbornEnroll,
            "PreNewbornEnroll"),
    AppType("resident_maintain", "城乡居民参保维护", (_MN,), ResidentMaintain, "ResidentUpdate"),
    AppType("transfer_out", "基本医疗保险转出", (_MN,), TransferOut, "EmployeeStop",
            "reason 02 终止参保; arrears checked first"),
    AppType("graduate_stop_batch", "大学生毕业停保", (_MN,), GraduateStopBatch,
            "ResidentSuspend", "one ResidentSuspend per person"),
    AppType("employment_employee_enroll", "就业一件事-职工参保登记", (_GO,),
            EmploymentEmployeeEnroll, "EmployeeEnroll"),
    AppType("retirement_flexible_enroll", "退休一件事-灵活参保登记", (_GO,),
            RetirementFlexibleEnroll, "FlexibleEnroll",
            "start month: next month if already paid this month, else this month"),
    AppType("veteran_enroll", "退役军人参保登记", (_GO, _HR), VeteranEnroll, "ResidentEnroll",
            "gov_office: 退役军人一件事; 中途参保标志 1 退役军人, from the day of enrollment"),
    AppType("birth_newborn_enroll", "出生一件事-新生儿参保登记", (_GO,), BirthNewbornEnroll,
            "NewbornEnroll", "本市户籍; insure year: next year if the 准新生儿 (mother, 胎次) "
            "paid this year, else this"),
    AppType("unit_maintain", "单位信息维护", (_OH,), UnitMaintain, "UnitUpdate"),
    AppType("employee_enroll", "职工参保登记", (_OH, _HR), EmployeeEnroll, "EmployeeEnroll"),
    AppType("flexible_enroll", "灵活参保登记", (_OH, _HR), FlexibleEnroll, "FlexibleEnroll"),
    AppType("employee_suspend", "职工暂停参保", (_OH,), EmployeeSuspend, "EmployeeStop",
            "reason 01 暂停参保"),
    AppType("person_update", "人员信息修改", (_OH,), PersonUpdate, "EmployeeUpdate"),
    AppType("retire", "在职转退休", (_HR,), Retire, "EmployeeRetire", "arrears checked first"),
    AppType("unemployed_enroll", "失业代缴医疗参保登记", (_HR,), UnemployedEnroll,
            "EmployeeUnemployedEnroll"),
)}
"""Every F1 application type by code."""

CHANNEL_TYPES: Final[dict[str, tuple[str, ...]]] = {
    ch: tuple(t.code for t in APPLICATION_TYPES.values() if ch in t.channels)
    for ch in CHANNEL_NAMES}
"""Channel -> the application types it may submit (the seed's 接口 sections)."""

TAX_OPERATION: Final[dict[str, str]] = {t.code: t.operation for t in APPLICATION_TYPES.values()}
"""Application type -> the tax catalogue operation it ends in."""


# ---------------------------------------------------------------- envelope


class ApplicationRequest(BaseModel):
    """The request body a channel posts: its own request id, the type and the payload.

    ``callback_url`` is refused on purpose: results go only to the callback URL
    configured for the channel, never to an address named in a request.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    type: str = Field(min_length=1, max_length=40, description="application type code")
    request_id: str = Field(pattern=REQUEST_ID_PATTERN,
                            description="the channel's own id of this request (1-64 of "
                                        "A-Z a-z 0-9 _ -); a repeat returns the first answer")
    payload: dict[str, Any] = Field(description="the type's payload (see contracts.channels)")
    callback_url: Any = Field(default=None, exclude=True,
                              description="not accepted: results go to the configured URL")

    @field_validator("type")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in APPLICATION_TYPES:
            raise ValueError(f"unknown application type {v!r}; known: "
                             f"{', '.join(APPLICATION_TYPES)}")
        return v

    @field_validator("callback_url")
    @classmethod
    def _no_callback(cls, v: object) -> None:
        raise ValueError("not accepted: results are pushed only to the channel's "
                         "configured callback URL")


# ---------------------------------------------------------------- validation and tax


def validate_payload(app_type: str, payload: Mapping[str, Any], *,
                     today: date | None = None) -> ApplicationPayload:
    """The type's contract, or ``ValidationFailed`` naming each ``payload.<field>``.

    ``today`` (Beijing calendar) dates the age rules; tests pass a fixed day.
    """
    t = APPLICATION_TYPES.get(app_type)
    if t is None:
        raise ValidationFailed([("type", f"unknown application type {app_type!r}")])
    try:
        return t.model.model_validate(dict(payload),
                                      context={"today": today or today_beijing()})
    except ValidationError as exc:
        raise ValidationFailed([
            (".".join(("payload", *(str(p) for p in e["loc"]))),
             str(e["msg"]).removeprefix("Value error, ")) for e in exc.errors()]) from None


def payload_json(payload: ApplicationPayload) -> dict[str, Any]:
    """The validated payload as JSON (derived fields included, absent optionals left out)."""
    return payload.model_dump(mode="json", exclude_none=True)


def entity_of(app_type: str, payload: ApplicationPayload) -> tuple[str, str] | None:
    """``(kind, natural key)`` to order on: the person, the unit, or None for a batch."""
    if isinstance(payload, PreNewbornEnroll):
        return "psn", payload.temp_id_number or temp_id_for(payload.mother_id_number,
                                                            payload.birth_order)
    if isinstance(payload, UnitMaintain):
        return "unit", payload.unit_credit_code
    id_number = getattr(payload, "id_number", None)
    return ("psn", id_number) if isinstance(id_number, str) else None


def midyear_flag_of(payload: ApplicationPayload) -> str | None:
    """中途参保标志 of an application ending in 城乡居民参保登记, None for any other."""
    return payload.midyear() if isinstance(payload, _Resident) else None


@dataclass(frozen=True)
class _Ctx:
    today: date
    start_month: str
    insure_year: str
    midyear_flag: str | None = None
    insure_start_date: date | None = None
    convert_birth_order: int | None = None


Builder = Callable[[Any, _Ctx], list[tuple[str, dict[str, Any]]]]


def _tax(operation: str, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Validated by the catalogue contract: what the pipeline publishes is what tax accepts."""
    try:
        model = model_for(operation).model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed([
            (".".join((operation, *(str(p) for p in e["loc"]))),
             str(e["msg"]).removeprefix("Value error, ")) for e in exc.errors()]) from None
    return operation, model.model_dump(mode="json", exclude_none=True)


def _person(p: Any) -> dict[str, Any]:
    return {"psn_cert_type": p.psn_cert_type, "id_number": p.id_number, "name": p.name,
            "gender": p.gender, "birth_date": p.birth_date, "phone": p.phone}


def _resident(p: Any, c: _Ctx) -> list[tuple[str, dict[str, Any]]]:
    data = _person(p) | {
        "household_address": p.household_address, "residence_address": p.residence_address,
        "community": p.community, "resident_type": p.resident_type,
        "subsidy_type": p.subsidy_type, "insure_year": c.insure_year}
    if isinstance(p, NewbornEnroll):
        return _newborn(p, c, data)
    if c.midyear_flag is not None:
        data |= {"midyear_flag": c.midyear_flag,
                 "insure_start_date": c.insure_start_date or c.today}
    return [_tax("ResidentEnroll", data)]


def _newborn(p: NewbornEnroll, c: _Ctx,
             data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """新生儿参保登记 (seed 1750-1759, 2490): 参保日期 is the birth date; converting a
    准新生儿 (its temp ID given, or found at tax by the pipeline) stops it first."""
    order = c.convert_birth_order or (p.birth_order if p.temp_id_number else None)
    data = data | {"mother_id_number": p.mother_id_number, "insure_date": p.birth_date}
    if order is not None or p.birth_order is not None:
        data["birth_order"] = order or p.birth_order
    enroll = _tax("NewbornEnroll", data)
    if order is None:
        return [enroll]
    return [_tax("PreNewbornStop", {"mother_id_number": p.mother_id_number,
                                    "birth_order": order, "stop_date": c.today}), enroll]


def _pre_newborn(p: PreNewbornEnroll, c: _Ctx) -> list[tuple[str, dict[str, Any]]]:
    """准新生儿参保登记 (seed 1764-1770): 参保日期 is the day of enrollment."""
    return [_tax("PreNewbornEnroll", {
        "mother_id_number": p.mother_id_number, "birth_order": p.birth_order, "name": p.name,
        "community": p.community, "insure_year": c.insure_year, "phone": p.phone,
        "insure_date": c.today})]


def _resident_maintain(p: ResidentMaintain, c: _Ctx) -> list[tuple[str, dict[str, Any]]]:
    return [_tax("ResidentUpdate", {
        "id_number": p.id_number, "name": p.name, "phone": p.phone,
        "residence_address": p.residence_address, "community": p.community,
        "subsidy_type": p.subsidy_type, "change_date": p.change_date or c.today})]


def _employee_stop(reason: str) -> Builder:
    def build(p: Any, c: _Ctx) -> list[tuple[str, dict[str, Any]]]:
        return [_tax("EmployeeStop", {
            "unit_credit_code": p.unit_credit_code, "id_number": p.id_number, "name": p.name,
            "stop_date": p.stop_date, "reason_code": reason})]
    return build


def _graduates(p: GraduateStopBatch, c: _Ctx) -> list[tuple[str, dict[str, Any]]]:
    return [_tax("ResidentSuspend", {"id_number": g.id_number, "name": g.name,
                                     "stop_date": g.stop_date, "reason_code": g.reason_code})
            for g in p.persons]


def _employee_enroll(p: EmployeeEnroll, c: _Ctx) -> list[tuple[str, dict[str, Any]]]:
    return [_tax("EmployeeEnroll", _person(p) | {
        "unit_credit_code": p.unit_credit_code, "unit_name": p.unit_name,
        "insutype": p.insutype, "psn_type": "11", "start_month": c.start_month,
        "admdvs": p.admdvs, "wage": p.wage})]


def _flexible(p: FlexibleEnroll, c: _Ctx) -> list[tuple[str, dict[str, Any]]]:
    return [_tax("FlexibleEnroll", _person(p) | {
        "household_address": p.household_address, "residence_address": p.residence_address,
        "community": p.community, "start_month": c.start_month,
        "contribution_base": p.contribution_base})]


def _unit_maintain(p: UnitMaintain, c: _Ctx) -> list[tuple[str, dict[str, Any]]]:
    return [_tax("UnitUpdate", {
        "unit_credit_code": p.unit_credit_code, "unit_name": p.unit_name,
        "legal_rep": p.legal_rep, "unit_address": p.unit_address, "unit_type": p.unit_type,
        "industry": p.industry, "phone": p.phone, "change_date": p.change_date or c.today})]


def _person_update(p: PersonUpdate, c: _Ctx) -> list[tuple[str, dict[str, Any]]]:
    return [_tax("EmployeeUpdate", {
        "unit_credit_code": p.unit_credit_code, "id_number": p.id_number, "name": p.name,
        "phone": p.phone, "wage": p.wage, "change_date": p.change_date or c.today})]


def _retire(p: Retire, c: _Ctx) -> list[tuple[str, dict[str, Any]]]:
    return [_tax("EmployeeRetire", {"unit_credit_code": p.unit_credit_code,
                                    "id_number": p.id_number, "name": p.name,
                                    "retire_date": p.retire_date})]


def _unemployed(p: UnemployedEnroll, c: _Ctx) -> list[tuple[str, dict[str, Any]]]:
    return [_tax("EmployeeUnemployedEnroll", {
        "id_number": p.id_number, "name": p.name, "gender": p.gender,
        "birth_date": p.birth_date, "phone": p.phone,
        "unemployment_cert_no": p.unemployment_cert_no, "start_month": c.start_month,
        "admdvs": p.admdvs})]


_BUILDERS: Final[dict[str, Builder]] = {
    "newborn_enroll": _resident, "birth_newborn_enroll": _resident,
    "resident_enroll": _resident, "student_enroll": _resident,
    "pre_newborn_enroll": _pre_newborn, "resident_maintain": _resident_maintain,
    "transfer_out": _employee_stop("02"), "graduate_stop_batch": _graduates,
    "employment_employee_enroll": _employee_enroll, "employee_enroll": _employee_enroll,
    "retirement_flexible_enroll": _flexible, "veteran_enroll": _resident,
    "flexible_enroll": _flexible, "unit_maintain": _unit_maintain,
    "employee_suspend": _employee_stop("01"), "person_update": _person_update,
    "retire": _retire, "unemployed_enroll": _unemployed,
}


def _iso_day(name: str, value: date | str | None) -> date | None:
    if not isinstance(value, str):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed([(name, "must be an ISO date yyyy-mm-dd")]) from None


def to_tax_payload(app_type: str, payload: ApplicationPayload | Mapping[str, Any], *,
                   start_month: str | None = None, insure_year: str | None = None,
                   midyear_flag: str | None = None,
                   insure_start_date: date | str | None = None,
                   today: date | str | None = None,
                   convert_birth_order: int | str | None = None,
                   ) -> list[tuple[str, dict[str, Any]]]:
    """The tax catalogue operation(s) and canonical payload(s) an application ends in.

    ``payload`` is the validated model or its JSON (as carried by the
    ``channel.application`` message; validated again here). ``start_month``
    (yyyyMM), ``insure_year`` (yyyy), ``midyear_flag`` and ``insure_start_date``
    (a 中途参保's first day) are the pipeline's business decisions
    (``routes.channel_rules``); without them: the payload's own ``start_month``,
    else the current month; the current year; the payload's own 中途参保标志
    (``midyear_flag_of``) from ``today``. ``today`` (a date or ISO ``yyyy-mm-dd``)
    dates those defaults and the age rules. ``convert_birth_order`` (胎次) names the
    mother's 准新生儿 a 新生儿参保登记 converts: ``PreNewbornStop`` is then sent first.
    Each result is valid for ``model_for(operation)``.
    """
    today = _iso_day("today", today) or today_beijing()
    begins = _iso_day("insure_start_date", insure_start_date)
    model = (payload if isinstance(payload, ApplicationPayload)
             else validate_payload(app_type, payload, today=today))
    if start_month is not None and not _MONTH.match(start_month):
        raise ValidationFailed([("start_month", "must be yyyyMM")])
    if insure_year is not None and not re.fullmatch(r"(19|20)\d{2}", insure_year):
        raise ValidationFailed([("insure_year", "must be yyyy")])
    if midyear_flag is not None and midyear_flag not in MIDYEAR_FLAGS:
        raise ValidationFailed([("midyear_flag", f"must be one of {', '.join(MIDYEAR_FLAGS)}")])
    own_month = getattr(model, "start_month", None)
    flag = midyear_flag or midyear_flag_of(model)
    order = None
    if convert_birth_order is not None:
        if not re.fullmatch(r"[1-9]", str(convert_birth_order)):
            raise ValidationFailed([("convert_birth_order", "must be a 胎次 1-9")])
        order = int(convert_birth_order)
    ctx = _Ctx(today=today, start_month=start_month or own_month or f"{today:%Y%m}",
               insure_year=insure_year or f"{today:%Y}", midyear_flag=flag,
               insure_start_date=begins if flag else None, convert_birth_order=order)
    try:
        build = _BUILDERS[app_type]
    except KeyError:
        raise ValidationFailed([("type", f"unknown application type {app_type!r}")]) from None
    if not isinstance(model, APPLICATION_TYPES[app_type].model):
        raise ValidationFailed([("payload", f"is not a {app_type} payload")])
    return build(model, ctx)

"""The national medical-insurance platform envelope (医疗保障信息平台 通用报文).

``core`` and ``transfer`` speak it, and so do most local systems that copy it.
Every call is one JSON object: transaction number ``infno``, message id
``msgid``, routing and operator facts, and the payload in ``input``; the answer
carries ``infcode`` (0 success, -1 failure), ``err_msg`` and ``output``.

Timestamps stay strings in their wire formats (``inf_time`` is
``yyyy-MM-dd HH:mm:ss``, ``respond_time`` is ``yyyyMMddHHmmssSSS``), so a message
can be read and written again byte-for-byte. All times are China Standard Time
(UTC+8, no daylight saving), so a fixed offset is exact and needs no tz database.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.clock import BEIJING

__all__ = [
    "INFNO_PATTERN",
    "INF_TIME_FORMAT",
    "MSGID_PATTERN",
    "SENDER_PATTERN",
    "NationalRequest",
    "NationalResponse",
    "format_inf_time",
    "format_respond_time",
    "make_msgid",
    "make_refmsgid",
    "now_cst",
]

"""China Standard Time: every timestamp on this wire is local Beijing time."""

SENDER_PATTERN = r"^[0-9A-Z]{12}$"
INFNO_PATTERN = r"^[0-9A-Z]{4,5}$"
"""National numbers are 4 digits (``1101``); hub-assigned ones add a letter (``H2101``)."""
MSGID_PATTERN = r"^[0-9A-Z]{12}[0-9]{18}$"
INF_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

_ADMDVS_PATTERN = r"^([0-9]{6})?$"


def now_cst() -> datetime:
    """The current time in China Standard Time, the only clock this wire knows."""
    return datetime.now(BEIJING)


def format_inf_time(when: datetime) -> str:
    return when.strftime(INF_TIME_FORMAT)


def format_respond_time(when: datetime) -> str:
    """``yyyyMMddHHmmssSSS`` (milliseconds, not microseconds)."""
    return f"{when:%Y%m%d%H%M%S}{when.microsecond // 1000:03d}"


def make_msgid(sender: str, now: datetime, seq: int) -> str:
    """``msgid``: sender code (12) + ``yyyyMMddHHmmss`` + sequence (4) = 30 characters.

    Raises ValueError instead of truncating or wrapping: a silently wrapped
    sequence would repeat a msgid within the same second.
    """
    if not re.fullmatch(SENDER_PATTERN, sender):
        raise ValueError(f"sender must be 12 upper-case letters or digits, got {sender!r}")
    if not 0 <= seq <= 9999:
        raise ValueError(f"seq must be 0..9999, got {seq}")
    return f"{sender}{now:%Y%m%d%H%M%S}{seq:04d}"


def make_refmsgid(area: str, now: datetime, serial: int) -> str:
    """``inf_refmsgid``: area (6) + ``yyyyMMddHHmmss`` + serial (10) = 30 characters."""
    if not re.fullmatch(r"[0-9]{6}", area):
        raise ValueError(f"area must be a 6-digit division code, got {area!r}")
    if not 0 <= serial <= 9_999_999_999:
        raise ValueError(f"serial must fit in 10 digits, got {serial}")
    return f"{area}{now:%Y%m%d%H%M%S}{serial:010d}"


def _drop_nulls(data: Any) -> Any:
    """Real clients send ``null`` for unused envelope fields; treat that as absent."""
    if isinstance(data, dict):
        return {k: v for k, v in data.items() if v is not None}
    return data


class NationalRequest(BaseModel):
    """One request in the national envelope; only ``infno``, ``msgid`` and ``input`` are required.

    ``extra="ignore"``: deployments add envelope fields of their own (such as
    ``serial_no``), and core is one such deployment. Refusing every message
    for an extra envelope field would stop all traffic and protect nothing. The
    fields the hub reads are still validated strictly, and the payload inside
    ``input`` is checked by each partner's translate module.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    infno: str = Field(pattern=INFNO_PATTERN, description="交易编号")
    msgid: str = Field(pattern=MSGID_PATTERN, description="发送方报文ID")
    mdtrtarea_admvs: str = Field(default="320100", pattern=_ADMDVS_PATTERN,
                                 description="就医地医保区划")
    insuplc_admdvs: str = Field(default="320100", pattern=_ADMDVS_PATTERN,
                                description="参保地医保区划")
    recer_sys_code: str = Field(default="", max_length=10, description="接收方系统代码")
    dev_no: str = ""
    dev_safe_info: str = ""
    cainfo: str = Field(default="", description="数字签名信息")
    signtype: Literal["", "SM2", "SM3"] = ""
    infver: str = "V1.0"
    opter_type: Literal["1", "2", "3"] = Field(
        default="1", description="1 staff, 2 self-service terminal, 3 mobile")
    opter: str = ""
    opter_name: str = ""
    inf_time: str = Field(default_factory=lambda: format_inf_time(now_cst()),
                          description="交易时间 yyyy-MM-dd HH:mm:ss")
    fixmedins_code: str = ""
    fixmedins_name: str = ""
    sign_no: str = Field(default="", description="交易签到流水号")
    input: dict[str, Any]
    app_id: str | None = None
    enc_type: Literal["SM4"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _nulls(cls, data: Any) -> Any:
        return _drop_nulls(data)

    @field_validator("msgid")
    @classmethod
    def _msgid_time(cls, v: str) -> str:
        try:
            datetime.strptime(v[12:26], "%Y%m%d%H%M%S")
        except ValueError:
            raise ValueError(f"characters 13-26 must be a real time yyyyMMddHHmmss, "
                             f"got {v[12:26]}") from None
        return v

    @field_validator("opter_type", mode="before")
    @classmethod
    def _opter_type(cls, v: object) -> object:
        """Some clients send the code as a number; the wire type is a string."""
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("enc_type", mode="before")
    @classmethod
    def _enc_type(cls, v: object) -> object:
        """Plain-text deployments send ``""``: the same as no encryption."""
        return None if v == "" else v

    @field_validator("inf_time")
    @classmethod
    def _inf_time(cls, v: str) -> str:
        try:
            datetime.strptime(v, INF_TIME_FORMAT)
        except ValueError:
            raise ValueError(f"must be yyyy-MM-dd HH:mm:ss, got {v!r}") from None
        return v

    def to_wire(self) -> dict[str, Any]:
        """The JSON object to send: optional deployment fields appear only when set."""
        return self.model_dump(mode="json", exclude_none=True)


class NationalResponse(BaseModel):
    """One answer in the national envelope; ``infcode`` is normalised to the int 0 or -1.

    ``extra="ignore"`` for the same reason as requests: deployments add fields
    such as ``warn_msg``. The platform sends ``infcode`` as a string or a number.
    A few deployments send other non-zero codes for failure. Those still mean
    failure, so they become -1, and a business rejection is not mistaken for
    a broken partner. Anything that is not an integer is refused.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    infcode: Literal[0, -1]
    inf_refmsgid: str | None = Field(default=None, description="接收方报文ID")
    refmsg_time: str | None = None
    respond_time: str | None = Field(default=None, description="yyyyMMddHHmmssSSS")
    err_msg: str | None = None
    output: dict[str, Any] | None = None
    signtype: str | None = None
    cainfo: str | None = None

    @field_validator("infcode", mode="before")
    @classmethod
    def _infcode(cls, v: object) -> int:
        if isinstance(v, bool):
            raise ValueError("must be 0 or -1, got a boolean")
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, str):
            try:
                v = int(v.strip())
            except ValueError:
                raise ValueError(f"must be 0 or -1, got {v!r}") from None
        if not isinstance(v, int):
            raise ValueError(f"must be 0 or -1, got {v!r}")
        return 0 if v == 0 else -1

    @property
    def ok(self) -> bool:
        return self.infcode == 0

    @classmethod
    def success(cls, output: dict[str, Any] | None, *, refmsgid: str | None = None,
                now: datetime | None = None) -> NationalResponse:
        """A success answer stamped with the response time (for simulators and tests)."""
        when = now or now_cst()
        return cls(infcode=0, inf_refmsgid=refmsgid, refmsg_time=format_inf_time(when),
                   respond_time=format_respond_time(when), output=output)

    @classmethod
    def failure(cls, err_msg: str, *, code: str | None = None, refmsgid: str | None = None,
                now: datetime | None = None) -> NationalResponse:
        """A failure answer; ``code`` goes to ``output.err_code`` where clients read it."""
        when = now or now_cst()
        return cls(infcode=-1, inf_refmsgid=refmsgid, refmsg_time=format_inf_time(when),
                   respond_time=format_respond_time(when), err_msg=err_msg,
                   output={"err_code": code} if code else None)

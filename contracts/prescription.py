"""F11 电子处方中心 (处方流转中心): the signed, encrypted envelope and the business models.

Seed ``003`` 3325-3326: a 处方药 sells only when the center holds the prescription
(``contracts/PRESCRIPTION.md`` has the readings). The wire, from conventions.md and the
national platforms' public client code:

Request (hub -> center), ``POST /epc/api/fixmedins/<path>``, JSON::

    {"appId": ..., "timestamp": 1767225600, "version": "1.0.0", "encType": "SM4",
     "signType": "SM2", "encData": base64(SM4(json(data))), "signData": base64(sig)}

Response: ``code`` (0 ok), ``message``, and the same ``appId``/``timestamp``/``version``/
``encType``/``signType``/``encData``/``signData``, signed by the center.

Signing (``sign_content``): the envelope's fields without ``signData``, ``encData`` and
``extra``, plus the business ``data`` in clear (so the signature covers the content, not
only the header), empty values dropped, keys sorted by ASCII, joined ``k=v&...``, then
``&key=<appSecret>``; SM3withSM2 over those UTF-8 bytes, base64. ``data`` is written as
the platforms' client does: top-level numbers and booleans as strings, empty strings and
empty lists dropped, every object's keys sorted, compact JSON, non-ASCII as is.

Opening an answer (``open_envelope``) refuses, with ``PrescriptionRefused`` naming the
cause: a malformed envelope, another appId, a timestamp outside the window, data that does
not decrypt to a JSON object, a signature that does not verify with the peer's key. The
replay memory (an answer seen before) is state, so it is the client's.

Pure: the crypto comes in as an ``EnvelopeCrypto`` (``adapters.prescription.crypto``).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from contracts.clock import BEIJING
from contracts.errors import PermanentError, field_errors

__all__ = [
    "BASE_PATH", "CHECK_APPROVED", "CIRC_DRUG_QUERY", "ENC_TYPE", "HOSP_RX_DETL_QUERY",
    "MODELS", "NOT_FOUND_CODE", "OK_CODE", "PATHS", "RX_CHK_INFO_QUERY", "RX_FILE_UPLD",
    "RX_FIXMEDINS_SIGN", "RX_SETL_INFO_QUERY", "RX_UNDO", "SIGN_TYPE", "STATUS_EXPIRED",
    "STATUS_REVOKED", "STATUS_VALID", "UNSIGNED", "UPLOAD_CHK", "USED_DISPENSED",
    "USED_NOT_YET", "VERSION", "CircDrug", "CircDrugQueryIn", "CircDrugQueryOut",
    "EnvelopeCrypto", "HospRxDetlQueryIn", "Opened", "PrescriptionRefused", "RxBody",
    "RxChkInfo", "RxChkInfoQueryIn", "RxDetail", "RxDrugLine", "RxFileUpldIn", "RxFileUpldOut",
    "RxFixmedinsSignIn", "RxFixmedinsSignOut", "RxQueryIn", "RxSetlInfo", "RxSetlInfoQueryIn",
    "RxUndoIn", "RxUndoOut", "UploadChkIn", "UploadChkOut", "b64", "canonical_data",
    "format_time", "in_window", "invalid_reason", "open_envelope", "parse_time",
    "plain_data", "seal", "sign_content", "unb64",
]

VERSION: Final = "1.0.0"
ENC_TYPE: Final = "SM4"
SIGN_TYPE: Final = "SM2"
BASE_PATH: Final = "/epc/api/fixmedins"
UNSIGNED: Final = frozenset({"signData", "encData", "extra"})
OK_CODE: Final = 0
NOT_FOUND_CODE: Final = 2001
"""The center's answer code for a prescription it does not hold (the hub's reading: the
national code table is not public); any other non-zero code is a business rejection."""

UPLOAD_CHK: Final = "uploadChk"
"""电子处方上传预核验: the hospital's prescription checked, ``hiRxno``/``rxTraceCode`` given."""
RX_FIXMEDINS_SIGN: Final = "rxFixmedinsSign"
"""电子处方医保电子签名: the institution's signature over the prescription file."""
RX_FILE_UPLD: Final = "rxFileUpld"
"""电子处方上传: the signed prescription file, after the pharmacist's review."""
RX_UNDO: Final = "rxUndo"
"""电子处方撤销."""
HOSP_RX_DETL_QUERY: Final = "hospRxDetlQuery"
"""电子处方信息查询: the prescription as the center holds it (the sale check, 3326)."""
RX_CHK_INFO_QUERY: Final = "rxChkInfoQuery"
"""电子处方审核结果查询."""
RX_SETL_INFO_QUERY: Final = "rxSetlInfoQuery"
"""电子处方取药结果查询 (dispensing/settlement)."""
CIRC_DRUG_QUERY: Final = "circDrugQuery"
"""可流转药品目录查询."""
PATHS: Final = (UPLOAD_CHK, RX_FIXMEDINS_SIGN, RX_FILE_UPLD, RX_UNDO, HOSP_RX_DETL_QUERY,
                RX_CHK_INFO_QUERY, RX_SETL_INFO_QUERY, CIRC_DRUG_QUERY)

# Code tables (the hub's reading; see PRESCRIPTION.md).
STATUS_VALID: Final = "1"
"""``rxStasCodg`` 1 有效."""
STATUS_EXPIRED: Final = "2"
"""``rxStasCodg`` 2 已失效."""
STATUS_REVOKED: Final = "3"
"""``rxStasCodg`` 3 已撤销."""
CHECK_APPROVED: Final = "1"
"""``rxChkStasCodg``: 0 待审核, 1 审核通过, 2 审核不通过."""
USED_NOT_YET: Final = "0"
"""``rxUsedStasCodg`` 0 未取药."""
USED_DISPENSED: Final = "1"
"""``rxUsedStasCodg`` 1 已取药."""

_TIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"


class PrescriptionRefused(PermanentError):
    """An answer of the center that fails verification; it is never passed on.

    ``cause``: ``envelope`` (malformed), ``app_id``, ``stale`` (timestamp outside the
    window), ``replay`` (an answer seen before), ``decrypt`` (``encData`` does not decrypt
    to a JSON object), ``signature`` (does not verify with the center's key: tampered, or
    signed with another key), ``mismatch`` (an answer about another prescription)."""

    code = "RX_REFUSED"

    def __init__(self, cause: str, reason: str, *, partner: str | None = "prescription"
                 ) -> None:
        super().__init__(f"prescription center answer refused ({cause}): {reason}",
                         partner=partner)
        self.cause = cause


class EnvelopeCrypto(Protocol):
    """One party's keys: sign with its own SM2 key, verify with the peer's, SM4 both ways."""

    def sign(self, message: bytes) -> bytes: ...

    def verify(self, message: bytes, signature: bytes) -> bool: ...

    def encrypt(self, plaintext: bytes) -> bytes: ...

    def decrypt(self, ciphertext: bytes) -> bytes:
        """Raises ``ValueError`` when it cannot."""
        ...


# -- the envelope ---------------------------------------------------------------------------

def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def unb64(text: str) -> bytes:
    """Strict base64 (``ValueError`` on anything else)."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError("not base64") from None


def _text(value: Any) -> str:
    """A value as the platforms' JavaScript client writes it into the sign string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    return value


def canonical_data(data: Mapping[str, Any]) -> str:
    """The business data as it enters the sign string (see the module docstring)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, bool | int | float | Decimal):
            value = _text(value)
        if value is None or value == "" or value == []:
            continue
        out[key] = value
    return json.dumps(_sorted(out), ensure_ascii=False, separators=(",", ":"))


def sign_content(fields: Mapping[str, Any], app_secret: str) -> bytes:
    """What SM3withSM2 signs: ``fields`` (the envelope with ``data`` in clear)."""
    parts = []
    for key in sorted(k for k in fields if k not in UNSIGNED):
        value = fields[key]
        if value is None:
            continue
        text = canonical_data(value) if key == "data" and isinstance(value, Mapping) \
            else _text(value)
        if text != "":
            parts.append(f"{key}={text}")
    parts.append(f"key={app_secret}")
    return "&".join(parts).encode("utf-8")


def plain_data(data: Mapping[str, Any]) -> bytes:
    """What SM4 encrypts: compact JSON, non-ASCII escaped (as the platforms' client)."""
    return json.dumps(_sorted(dict(data)), ensure_ascii=True, separators=(",", ":")).encode()


def seal(data: Mapping[str, Any] | None, *, app_id: str, app_secret: str, timestamp: int,
         crypto: EnvelopeCrypto, code: int | None = None, message: str | None = None
         ) -> dict[str, Any]:
    """A signed envelope: a request (``code`` None) or an answer (``code``, ``message``)."""
    head: dict[str, Any] = {} if code is None else {"code": code, "message": message or ""}
    head |= {"appId": app_id, "timestamp": timestamp, "version": VERSION,
             "encType": ENC_TYPE, "signType": SIGN_TYPE}
    signed = {**head, "data": dict(data)} if data is not None else head
    out = dict(head)
    if data is not None:
        out["encData"] = b64(crypto.encrypt(plain_data(data)))
    out["signData"] = b64(crypto.sign(sign_content(signed, app_secret)))
    return out


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True,
                              alias_generator=to_camel)

    code: int | None = None
    message: str | None = None
    app_id: str = Field(min_length=1, max_length=64)
    timestamp: int = Field(ge=0)
    version: str
    enc_type: Literal["SM4"]
    sign_type: Literal["SM2"]
    enc_data: str | None = None
    sign_data: str = Field(min_length=1)


class Opened(BaseModel):
    """A verified envelope: its header and its decrypted ``data`` (None when absent)."""

    model_config = ConfigDict(frozen=True)

    code: int | None
    message: str
    app_id: str
    timestamp: int
    sign_data: str
    data: dict[str, Any] | None


def in_window(timestamp: int, now_s: int, max_skew_s: int) -> bool:
    return abs(now_s - timestamp) <= max_skew_s


def open_envelope(body: Any, *, app_id: str, app_secret: str, crypto: EnvelopeCrypto,
                  now_s: int, max_skew_s: int, answer: bool = True) -> Opened:
    """Verify and decrypt an envelope, or raise ``PrescriptionRefused`` naming the cause.

    ``answer``: a response must carry ``code``; a request must not."""
    if not isinstance(body, Mapping):
        raise PrescriptionRefused("envelope", "not a JSON object")
    try:
        env = _Envelope.model_validate(body)
    except ValidationError as exc:
        field, why = field_errors(exc, first_only=True)[0]
        raise PrescriptionRefused("envelope", f"{field}: {why}") from None
    if answer and env.code is None:
        raise PrescriptionRefused("envelope", "code: missing")
    if env.version != VERSION:
        raise PrescriptionRefused("envelope", f"version: {env.version!r} is not {VERSION}")
    if env.app_id != app_id:
        raise PrescriptionRefused("app_id", f"appId {env.app_id!r} is not ours")
    if not in_window(env.timestamp, now_s, max_skew_s):
        raise PrescriptionRefused("stale", f"timestamp {env.timestamp} is more than "
                                  f"{max_skew_s} s from now ({now_s})")
    try:
        signature = unb64(env.sign_data)
    except ValueError:
        raise PrescriptionRefused("signature", "signData is not base64") from None
    data: dict[str, Any] | None = None
    if env.enc_data is not None:
        try:
            clear = crypto.decrypt(unb64(env.enc_data))
            parsed = json.loads(clear.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise PrescriptionRefused("decrypt", f"encData does not decrypt: {exc}") from None
        if not isinstance(parsed, dict):
            raise PrescriptionRefused("decrypt", "encData is not a JSON object")
        data = parsed
    fields = {k: v for k, v in body.items() if k not in UNSIGNED}
    if data is not None:
        fields["data"] = data
    if not crypto.verify(sign_content(fields, app_secret), signature):
        raise PrescriptionRefused("signature", "signData does not verify with the peer's "
                                  "SM2 key (tampered, or signed with another key)")
    return Opened(code=env.code, message=env.message or "", app_id=env.app_id,
                  timestamp=env.timestamp, sign_data=env.sign_data, data=data)


# -- business models --------------------------------------------------------------------------

def format_time(value: datetime) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in Beijing time (naive values are taken as Beijing's)."""
    if value.tzinfo is not None:
        value = value.astimezone(BEIJING)
    return value.strftime(_TIME_FORMAT)


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=BEIJING)


class RxBody(BaseModel):
    """Business data: snake_case here, camelCase on the wire (``wire()``)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True,
                              extra="ignore", str_strip_whitespace=True)

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Any:
        return cls.model_validate(data)


_CODE = r"^[A-Za-z0-9_-]+$"


class RxDrugLine(RxBody):
    """One drug of a prescription (``rxdrugdetail``)."""

    med_list_codg: str = Field(min_length=1, max_length=50, description="医保药品目录编码")
    drug_genname: str = Field(min_length=1, max_length=200, description="通用名")
    drug_spec: str = Field(default="", max_length=200)
    drug_dosform: str = Field(default="", max_length=50)
    drug_totlcnt: Decimal = Field(gt=0, max_digits=12, decimal_places=4, description="总量")
    drug_totlcnt_emp: str = Field(default="", max_length=20, description="总量单位")
    medc_days: int | None = Field(default=None, ge=0, le=365)


class UploadChkIn(RxBody):
    """电子处方上传预核验 (``uploadChk``)."""

    fixmedins_code: str = Field(min_length=1, max_length=30, pattern=_CODE)
    fixmedins_name: str = Field(min_length=1, max_length=200)
    hosp_rxno: str = Field(min_length=1, max_length=40, pattern=_CODE)
    rx_type_code: str = Field(default="1", max_length=6)
    prsc_time: str = Field(min_length=19, max_length=19)
    vali_days: int = Field(default=3, ge=1, le=30)
    vali_end_time: str = Field(min_length=19, max_length=19)
    psn_cert_type: str = Field(default="01", max_length=6)
    certno: str = Field(min_length=1, max_length=50)
    psn_name: str = Field(min_length=1, max_length=50)
    dr_code: str = Field(default="", max_length=30)
    prsc_dr_name: str = Field(default="", max_length=50)
    rxdrugdetail: list[RxDrugLine] = Field(min_length=1, max_length=100)

    @field_validator("prsc_time", "vali_end_time")
    @classmethod
    def _time(cls, v: str) -> str:
        parse_time(v)
        return v


class UploadChkOut(RxBody):
    hi_rxno: str
    rx_trace_code: str


class RxFixmedinsSignIn(RxBody):
    """电子处方医保电子签名 (``rxFixmedinsSign``): the prescription file to sign."""

    fixmedins_code: str = Field(min_length=1, max_length=30, pattern=_CODE)
    fixmedins_name: str = Field(min_length=1, max_length=200)
    original_value: str = Field(min_length=1, description="base64 of the prescription JSON")


class RxFixmedinsSignOut(RxBody):
    rx_file: str
    sign_digest: str
    sign_cert_sn: str = ""
    sign_cert_dn: str = ""


class RxFileUpldIn(RxBody):
    """电子处方上传 (``rxFileUpld``): the signed file, after the pharmacist's review."""

    rx_trace_code: str = Field(min_length=1, max_length=40, pattern=_CODE)
    hi_rxno: str = Field(min_length=1, max_length=40, pattern=_CODE)
    fixmedins_code: str = Field(min_length=1, max_length=30, pattern=_CODE)
    fixmedins_name: str = Field(min_length=1, max_length=200)
    psn_cert_type: str = Field(default="01", max_length=6)
    certno: str = Field(min_length=1, max_length=50)
    psn_name: str = Field(min_length=1, max_length=50)
    phar_code: str = Field(default="", max_length=30)
    phar_name: str = Field(default="", max_length=50)
    phar_chk_time: str = Field(default="", max_length=19)
    rx_file: str = Field(min_length=1)
    sign_digest: str = Field(min_length=1)


class RxFileUpldOut(RxBody):
    hi_rxno: str
    rx_stas_codg: str
    rx_stas_name: str = ""


class RxUndoIn(RxBody):
    """电子处方撤销 (``rxUndo``)."""

    hi_rxno: str = Field(min_length=1, max_length=40, pattern=_CODE)
    fixmedins_code: str = Field(min_length=1, max_length=30, pattern=_CODE)
    dr_code: str = Field(default="", max_length=30)
    undo_dr_name: str = Field(default="", max_length=50)
    undo_rea: str = Field(min_length=1, max_length=200)
    undo_time: str = Field(min_length=19, max_length=19)


class RxUndoOut(RxBody):
    hi_rxno: str
    rx_stas_codg: str
    rx_stas_name: str = ""


class RxQueryIn(RxBody):
    """The three queries take the same keys: the prescription, the asking institution, and
    optionally the person (``psnName``/``certno``) for the center to check."""

    fixmedins_code: str = Field(min_length=1, max_length=30, pattern=_CODE)
    hi_rxno: str = Field(min_length=1, max_length=40, pattern=_CODE)
    rx_trace_code: str | None = Field(default=None, max_length=40)
    mdtrt_id: str | None = Field(default=None, max_length=30)
    psn_name: str | None = Field(default=None, max_length=50)
    psn_cert_type: str | None = Field(default=None, max_length=6)
    certno: str | None = Field(default=None, max_length=50)


class HospRxDetlQueryIn(RxQueryIn):
    """电子处方信息查询 (``hospRxDetlQuery``)."""


class RxChkInfoQueryIn(RxQueryIn):
    """电子处方审核结果查询 (``rxChkInfoQuery``)."""


class RxSetlInfoQueryIn(RxQueryIn):
    """电子处方取药结果查询 (``rxSetlInfoQuery``)."""


class RxDetail(RxBody):
    """``hospRxDetlQuery``'s answer: the prescription and its three states."""

    hi_rxno: str = Field(min_length=1)
    rx_trace_code: str = ""
    fixmedins_code: str = ""
    fixmedins_name: str = ""
    psn_name: str = ""
    psn_cert_type: str = ""
    certno: str = ""
    prsc_time: str = ""
    vali_end_time: str = Field(min_length=19, max_length=19)
    rx_stas_codg: str = Field(min_length=1)
    rx_stas_name: str = ""
    rx_chk_stas_codg: str = ""
    rx_used_stas_codg: str = ""
    rxdrugdetail: list[RxDrugLine] = Field(default_factory=list)

    @field_validator("vali_end_time")
    @classmethod
    def _time(cls, v: str) -> str:
        parse_time(v)
        return v

    @property
    def expires_at(self) -> datetime:
        return parse_time(self.vali_end_time)


class RxChkInfo(RxBody):
    """``rxChkInfoQuery``'s answer: the pharmacist's review."""

    hi_rxno: str = Field(min_length=1)
    rx_chk_stas_codg: str = Field(min_length=1)
    rx_chk_stas_name: str = ""
    rx_chk_opnn: str = ""
    rx_chk_time: str = ""
    phar_name: str = ""


class RxSetlInfo(RxBody):
    """``rxSetlInfoQuery``'s answer: whether and where the drugs were taken."""

    hi_rxno: str = Field(min_length=1)
    rx_used_stas_codg: str = Field(min_length=1)
    rx_used_stas_name: str = ""
    setl_time: str = ""
    medins_name: str = ""
    seltdelts: list[RxDrugLine] = Field(default_factory=list)


class CircDrugQueryIn(RxBody):
    """可流转药品目录查询 (``circDrugQuery``)."""

    fixmedins_code: str = Field(min_length=1, max_length=30, pattern=_CODE)
    med_list_codg: str | None = Field(default=None, max_length=50)
    page_num: int = Field(default=1, ge=1)
    page_size: int = Field(default=50, ge=1, le=500)


class CircDrug(RxBody):
    med_list_codg: str
    drug_genname: str
    drug_spec: str = ""
    drug_dosform: str = ""


class CircDrugQueryOut(RxBody):
    total: int = Field(ge=0)
    data: list[CircDrug] = Field(default_factory=list)


MODELS: Final[dict[str, tuple[type[RxBody], type[RxBody]]]] = {
    UPLOAD_CHK: (UploadChkIn, UploadChkOut),
    RX_FIXMEDINS_SIGN: (RxFixmedinsSignIn, RxFixmedinsSignOut),
    RX_FILE_UPLD: (RxFileUpldIn, RxFileUpldOut),
    RX_UNDO: (RxUndoIn, RxUndoOut),
    HOSP_RX_DETL_QUERY: (HospRxDetlQueryIn, RxDetail),
    RX_CHK_INFO_QUERY: (RxChkInfoQueryIn, RxChkInfo),
    RX_SETL_INFO_QUERY: (RxSetlInfoQueryIn, RxSetlInfo),
    CIRC_DRUG_QUERY: (CircDrugQueryIn, CircDrugQueryOut),
}
"""Each path's request and answer model."""


def invalid_reason(detail: RxDetail, now: datetime) -> str:
    """Why a prescription may not be dispensed now, or "" when it may (3326): revoked,
    expired (by status or by ``valiEndTime``), not (yet) approved by the pharmacist, or
    already dispensed."""
    if detail.rx_stas_codg == STATUS_REVOKED:
        return "revoked"
    if detail.rx_stas_codg == STATUS_EXPIRED or detail.expires_at <= now:
        return "expired"
    if detail.rx_stas_codg != STATUS_VALID:
        return f"status {detail.rx_stas_codg} {detail.rx_stas_name}".strip()
    if detail.rx_chk_stas_codg and detail.rx_chk_stas_codg != CHECK_APPROVED:
        return "not reviewed" if detail.rx_chk_stas_codg == "0" else "review rejected"
    if detail.rx_used_stas_codg == USED_DISPENSED:
        return "dispensed"
    return ""

"""F13 医保电子凭证, query channels and 医税平台 (seed 001 lines 25-37, 79, 89-97): pure.

The e-voucher QR text (the hub's reading of the national 电子凭证二维码 standard: the
token carries ``ecToken``, the holder's ``idNo``/``idType``/``userName``, the 参保地
``insuplcAdmdvs``, the channel and the expiry, and is signed by the issuing platform)::

    NHSAEC1.<base64url(claims JSON)>.<base64url(SM3withSM2 r||s over "NHSAEC1.<claims>")>

``verify_qr`` refuses, with the field and the reason (``VoucherError``, cause):

    malformed     not three parts, not base64url, claims not the contract
    forged        the signature does not verify with the platform's public key
    expired       ``expireAt`` passed (or the token is not valid yet)
    replayed      the token already paid another settlement (one-time use: the store
                  decides atomically; ``storage.voucher``)
    other_person  the voucher's holder is not the person the settlement names

Settlements by voucher (接口三/四/五) go to core in the national envelope (2207 门诊结算,
2304 住院结算 at discharge, 2102 药店结算); money is ``Decimal``, fen-exact (a float is
refused) and the fee lines must add up to ``medfee_sumamt``. What the hub assigns itself
(``V...``): 1101-style queries for the channels, kiosk business, the 省级凭证库 upload
and the 医税平台 record. Signatures go through a ``SignatureCheck`` (the adapter's SM2):
nothing here does I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from contracts.clock import BEIJING
from contracts.envelope import HubMessage, entity_key, idempotency_key
from contracts.errors import PermanentError, field_errors
from contracts.ids import validate_id_number

__all__ = [
    "CORE", "INFNO_MEDTAX", "INFNO_UPLOAD", "KIOSK_BUSINESS", "KIOSK_TYPE", "LIBRARY",
    "MEDINS", "MEDTAX", "MEDTAX_INSUTYPES", "MEDTAX_TYPE", "QR_PREFIX", "QUERIES", "SETTLE_INFNO",
    "SETTLE_TYPE", "UPLOAD_TYPE", "ChangeRequest", "EnrollRequest", "FeeLine", "MedtaxRecord",
    "PersonInfo", "QueryRequest", "ReprintRequest", "SettlementRequest", "SignatureCheck",
    "VoucherClaims", "VoucherError", "check_holder", "encode_qr", "format_ts", "kiosk_message",
    "kiosk_model", "medtax_message", "money", "parse_ts", "read_qr", "refusals",
    "request_key", "settle_message", "token_digest", "upload_message", "verify_qr",
]

CORE: Final = "core_voucher"
"""Core's services F13 calls (结算, 人员信息, channel queries, kiosk business)."""
LIBRARY: Final = "voucher_library"
"""省级电子凭证库 (seed 79): insured persons' basic info, uploaded in real time."""
MEDTAX: Final = "medtax"
"""医税平台 (seed 37)."""
MEDINS: Final = "medins"
"""Designated institutions' HIS / pharmacy software: they sign their calls as ``medins``."""

SETTLE_TYPE: Final = "voucher.settlement"
KIOSK_TYPE: Final = "voucher.kiosk_business"
UPLOAD_TYPE: Final = "voucher.person_upload"
MEDTAX_TYPE: Final = "voucher.medtax_record"

SETTLE_INFNO: Final[dict[str, str]] = {"outpatient": "2207", "discharge": "2304",
                                       "pharmacy": "2102"}
"""门诊结算, 住院结算 (出院), 药店结算: the national platform's numbers."""
QUERIES: Final[dict[str, str]] = {"person": "1101", "contributions": "V5101",
                                  "balance": "V5102", "settlements": "V5103",
                                  "enrollment": "V5104"}
"""The five queries of the kiosk and of WeChat (seed 28, 33 name no functions: our choice)."""
KIOSK_BUSINESS: Final[dict[str, str]] = {"enroll": "V2101", "change": "V2102",
                                         "reprint": "V2103"}
"""The kiosk's three business functions: 参保登记, 信息变更, 参保凭证补打 (our choice)."""
INFNO_UPLOAD: Final = "V1001"
INFNO_MEDTAX: Final = "V3101"
MEDTAX_INSUTYPES: Final[dict[str, str]] = {"310": "职工基本医疗", "510": "生育",
                                           "390": "城乡居民基本医疗"}
"""What the 医税平台 carries (seed 37: 职工医疗, 职工生育, 居民医疗), conventions' codes."""
KNOWN_INSUTYPES: Final = frozenset({"310", "320", "330", "340", "390", "392", "410", "510"})

QR_PREFIX: Final = "NHSAEC1"
TS_FORMAT: Final = "%Y%m%d%H%M%S"
MAX_QR: Final = 4096
_CENT = Decimal("0.01")

SignatureCheck = Callable[[bytes, bytes], bool]
"""``(message, signature) -> valid``: the issuing platform's SM2 public key behind it."""
Signer = Callable[[bytes], bytes]
Cause = Literal["malformed", "forged", "expired", "replayed", "other_person"]


class VoucherError(PermanentError):
    """A voucher refused: ``cause`` (see the module), the ``field`` and the ``reason``."""

    code = "VOUCHER_REFUSED"

    def __init__(self, cause: Cause, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.cause = cause
        self.field = field
        self.errors = [(field, reason)]

    def to_dict(self) -> dict[str, str]:
        return super().to_dict() | {"cause": self.cause, "field": self.field}


# ---------------------------------------------------------------- small types

def format_ts(at: datetime) -> str:
    return at.astimezone(BEIJING).strftime(TS_FORMAT)


def parse_ts(text: str) -> datetime:
    return datetime.strptime(text, TS_FORMAT).replace(tzinfo=BEIJING)


def money(value: object) -> Decimal:
    """Yuan as a string or an int, fen-exact, not negative; a float is refused."""
    if isinstance(value, bool | float):
        raise ValueError('must be a decimal string such as "12.50", not a float')
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{str(value)[:20]!r} is not an amount") from None
    if not d.is_finite() or d < 0:
        raise ValueError("must be a finite amount, not negative")
    if d != d.quantize(_CENT):
        raise ValueError(f"{d} has more than two decimal places (fen)")
    if d >= Decimal("100000000"):
        raise ValueError("is over 100,000,000 yuan")
    return d.quantize(_CENT)


Money = Annotated[Decimal, BeforeValidator(money)]


def _id(v: str) -> str:
    problem = validate_id_number(v)
    if problem:
        raise ValueError(problem)
    return v


IdNumber = Annotated[str, BeforeValidator(lambda v: str(v).strip().upper()),
                     Field(min_length=18, max_length=18), AfterValidator(_id)]
Name = Annotated[str, Field(min_length=1, max_length=50, pattern=r"^[^<>{}\[\]\\\"]+$")]
Division = Annotated[str, Field(pattern=r"^\d{6}$")]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ---------------------------------------------------------------- the voucher

class VoucherClaims(BaseModel):
    """What the issuing platform signed (camelCase as the national decode answer)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    ec_token: str = Field(alias="ecToken", pattern=r"^[0-9A-Za-z]{16,64}$")
    id_no: IdNumber = Field(alias="idNo")
    id_type: Literal["01"] = Field(default="01", alias="idType")
    user_name: Name = Field(alias="userName")
    insuplc_admdvs: Division = Field(alias="insuplcAdmdvs")
    chnl_id: str = Field(default="NHSA", alias="chnlId", max_length=20)
    issued_at: str = Field(alias="issuedAt", pattern=r"^\d{14}$")
    expire_at: str = Field(alias="expireAt", pattern=r"^\d{14}$")


    @model_validator(mode="after")
    def _times(self) -> VoucherClaims:
        try:
            issued, expires = parse_ts(self.issued_at), parse_ts(self.expire_at)
        except ValueError:
            raise ValueError("issuedAt/expireAt must be real times yyyyMMddHHmmss") from None
        if expires <= issued:
            raise ValueError("expireAt must be after issuedAt")
        return self

    def wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text or any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                       "0123456789-_" for c in text):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


def encode_qr(claims: VoucherClaims, sign: Signer) -> str:
    """The QR text of ``claims`` signed by ``sign`` (the platform's; simulators, tests)."""
    body = _b64(json.dumps(claims.wire(), ensure_ascii=False, separators=(",", ":"),
                           sort_keys=True).encode())
    signed = f"{QR_PREFIX}.{body}"
    return f"{signed}.{_b64(sign(signed.encode()))}"


def read_qr(text: str) -> tuple[VoucherClaims, bytes, bytes]:
    """The claims, the signed bytes and the signature of a QR text (nothing verified)."""
    if not isinstance(text, str) or len(text) > MAX_QR:
        raise VoucherError("malformed", "ec_qr", f"must be text of at most {MAX_QR} characters")
    parts = text.strip().split(".")
    if len(parts) != 3 or parts[0] != QR_PREFIX:
        raise VoucherError("malformed", "ec_qr",
                           f"not an e-voucher code ({QR_PREFIX}.<claims>.<signature>)")
    try:
        raw, signature = _unb64(parts[1]), _unb64(parts[2])
        data = json.loads(raw)
    except ValueError:
        raise VoucherError("malformed", "ec_qr", "claims or signature are not base64url "
                           "JSON") from None
    if not isinstance(data, dict):
        raise VoucherError("malformed", "ec_qr", "claims are not an object")
    try:
        claims = VoucherClaims.model_validate(data)
    except ValidationError as exc:
        f, r = field_errors(exc, prefix="ec_qr.")[0]
        raise VoucherError("malformed", f, r) from None
    return claims, f"{parts[0]}.{parts[1]}".encode(), signature


def verify_qr(text: str, check: SignatureCheck, now: datetime, *,
              skew_s: int = 30) -> VoucherClaims:
    """The claims of a genuine, current voucher; else ``VoucherError`` (malformed,
    forged, expired). The signature is checked before anything is believed."""
    claims, signed, signature = read_qr(text)
    if not 0 < len(signature) <= 80 or not check(signed, signature):
        raise VoucherError("forged", "ec_qr", "signature does not verify with the issuing "
                           "platform's key (forged or altered)")
    skew = timedelta(seconds=skew_s)
    if now > parse_ts(claims.expire_at) + skew:
        raise VoucherError("expired", "ec_qr.expireAt",
                           f"the voucher expired at {claims.expire_at}; show a fresh code")
    if now + skew < parse_ts(claims.issued_at):
        raise VoucherError("expired", "ec_qr.issuedAt", "the voucher is not valid yet")
    return claims


def check_holder(claims: VoucherClaims, id_number: str, field: str = "psn_cert_no") -> None:
    """The voucher must be the settled person's own."""
    if claims.id_no != id_number.strip().upper():
        raise VoucherError("other_person", field, "the voucher belongs to another person than "
                           "the one this settlement names")


def token_digest(ec_token: str) -> str:
    """What the hub keeps of a token (its one-time use), never the token itself."""
    return hashlib.sha256(ec_token.encode()).hexdigest()


# ---------------------------------------------------------------- requests

class FeeLine(_Frozen):
    code: str = Field(pattern=r"^[A-Za-z0-9._-]{1,40}$", description="医保目录编码")
    name: str = Field(min_length=1, max_length=100)
    qty: int = Field(ge=1, le=100_000)
    amount: Money


class SettlementRequest(_Frozen):
    """接口三/四/五: an institution settles by voucher (``kind``)."""

    kind: Literal["outpatient", "discharge", "pharmacy"]
    fixmedins_code: str = Field(pattern=r"^[HP]\d{11}$", description="定点医药机构编号")
    setl_req_no: str = Field(pattern=r"^[A-Za-z0-9_-]{6,40}$",
                             description="the institution's settlement serial")
    ec_qr: str = Field(min_length=1, max_length=MAX_QR)
    psn_cert_no: IdNumber
    psn_name: Name
    mdtrt_id: str = Field(default="", max_length=30, pattern=r"^[A-Za-z0-9_-]*$")
    medfee_sumamt: Money
    details: list[FeeLine] = Field(min_length=1, max_length=500)


    @model_validator(mode="after")
    def _adds_up(self) -> SettlementRequest:
        total = sum((d.amount for d in self.details), Decimal("0.00"))
        if total != self.medfee_sumamt:
            raise ValueError(f"medfee_sumamt: {self.medfee_sumamt} is not the sum of the "
                             f"details ({total})")
        if self.kind == "discharge" and not self.mdtrt_id:
            raise ValueError("mdtrt_id: a discharge settlement names its 就诊ID")
        return self

    def core_input(self, claims: VoucherClaims) -> dict[str, Any]:
        """core's ``input``: the national field names, the voucher as 凭证类型 01."""
        return {"data": {
            "mdtrt_cert_type": "01", "mdtrt_cert_no": claims.ec_token,
            "psn_cert_type": "01", "certno": self.psn_cert_no, "psn_name": self.psn_name,
            "insuplc_admdvs": claims.insuplc_admdvs, "fixmedins_code": self.fixmedins_code,
            "setl_req_no": self.setl_req_no, "mdtrt_id": self.mdtrt_id,
            "medfee_sumamt": f"{self.medfee_sumamt:.2f}",
            "feedetail": [{"med_list_codg": d.code, "name": d.name, "cnt": d.qty,
                           "det_item_fee_sumamt": f"{d.amount:.2f}"} for d in self.details]}}


class PersonInfo(_Frozen):
    """One insured person's basic info for the 省级凭证库 (seed 79)."""

    psn_no: str = Field(pattern=r"^[0-9A-Za-z]{6,30}$", description="人员编号")
    certno: IdNumber
    psn_name: Name
    gend: Literal["1", "2"]
    brdy: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    insuplc_admdvs: Division
    insutype: str = Field(pattern=r"^\d{3}$")
    psn_type: str = Field(pattern=r"^\d{2,4}$")
    mob: str = Field(default="", pattern=r"^(1[3-9]\d{9})?$")
    version: int = Field(ge=1, description="core's version of the record: a change is a new "
                         "upload, the same version again is not")



class MedtaxRecord(_Frozen):
    """One record for the 医税平台: 职工医疗, 职工生育 or 居民医疗 only (seed 37)."""

    record_no: str = Field(pattern=r"^[A-Za-z0-9_-]{6,40}$")
    insutype: str = Field(pattern=r"^\d{3}$")
    certno: IdNumber
    psn_name: Name
    cashym: str = Field(pattern=r"^\d{4}(0[1-9]|1[0-2])$", description="费款所属期")
    clct_sumamt: Money


    @field_validator("insutype")
    @classmethod
    def _carried(cls, v: str) -> str:
        if v not in MEDTAX_INSUTYPES:
            what = "an unknown 险种" if v not in KNOWN_INSUTYPES else f"险种 {v}"
            raise ValueError(f"{what} is not carried by the 医税平台: only 310 职工基本医疗, "
                             "510 生育, 390 城乡居民基本医疗")
        return v


class QueryRequest(_Frozen):
    """A channel's query about one person (the kiosk reads the ID card; WeChat's account
    is bound to a person)."""

    certno: IdNumber
    year: int | None = Field(default=None, ge=1990, le=2100)



class EnrollRequest(_Frozen):
    """参保登记 at the kiosk (a resident enrolling for 城乡居民医保)."""

    certno: IdNumber
    psn_name: Name
    mob: str = Field(pattern=r"^1[3-9]\d{9}$")
    insutype: Literal["390"] = "390"
    live_addr: str = Field(min_length=4, max_length=200)



class ChangeRequest(_Frozen):
    """信息变更: phone and/or address."""

    certno: IdNumber
    mob: str | None = Field(default=None, pattern=r"^1[3-9]\d{9}$")
    live_addr: str | None = Field(default=None, min_length=4, max_length=200)


    @model_validator(mode="after")
    def _something(self) -> ChangeRequest:
        if self.mob is None and self.live_addr is None:
            raise ValueError("mob: name at least one of mob, live_addr to change")
        return self


class ReprintRequest(_Frozen):
    """参保凭证补打: core answers the certificate's text, the kiosk prints it."""

    certno: IdNumber
    year: int = Field(ge=1990, le=2100)



_KIOSK_MODELS: Final[dict[str, type[_Frozen]]] = {
    "enroll": EnrollRequest, "change": ChangeRequest, "reprint": ReprintRequest}


def kiosk_model(name: str) -> type[_Frozen]:
    return _KIOSK_MODELS[name]


def refusals(exc: ValidationError) -> list[tuple[str, str]]:
    """(field, reason) of a refused request; a model-level reason names its field first
    (``medfee_sumamt: ...``)."""
    out = []
    for f, r in field_errors(exc):
        if f == "payload" and ": " in r:
            f, r = r.split(": ", 1)
        out.append((f, r))
    return out


# ---------------------------------------------------------------- messages

def request_key(caller: str, serial: str) -> str:
    """The one key of a settlement or a kiosk business request: its caller and serial."""
    return f"{caller}:{serial}"


def settle_message(req: SettlementRequest, claims: VoucherClaims) -> HubMessage:
    key = request_key(req.fixmedins_code, req.setl_req_no)
    payload = {"key": key, "kind": req.kind, "infno": SETTLE_INFNO[req.kind],
               "insuplc_admdvs": claims.insuplc_admdvs, "fixmedins_code": req.fixmedins_code,
               "input": req.core_input(claims)}
    return HubMessage(type=SETTLE_TYPE, source=MEDINS, target=CORE, correlation_id=key[:64],
                      idempotency_key=idempotency_key(SETTLE_TYPE, key, {}),
                      entity_key=entity_key("person", req.psn_cert_no), payload=payload)


def kiosk_message(name: str, device: str, ref: str, request: BaseModel) -> HubMessage:
    key = request_key(device, ref)
    payload = {"key": key, "kind": name, "infno": KIOSK_BUSINESS[name], "device": device,
               "input": {"data": request.model_dump(mode="json", exclude_none=True)}}
    certno = str(getattr(request, "certno", ""))
    return HubMessage(type=KIOSK_TYPE, source="kiosk", target=CORE, correlation_id=key[:64],
                      idempotency_key=idempotency_key(KIOSK_TYPE, key, {}),
                      entity_key=entity_key("person", certno), payload=payload)


def upload_message(person: PersonInfo) -> HubMessage:
    key = f"{person.psn_no}:{person.version}"
    return HubMessage(type=UPLOAD_TYPE, source="core", target=LIBRARY, correlation_id=key,
                      idempotency_key=idempotency_key(UPLOAD_TYPE, key, {}),
                      entity_key=entity_key("person", person.certno),
                      payload={"key": key, "infno": INFNO_UPLOAD,
                               "input": {"psninfo": person.model_dump(mode="json")}})


def medtax_message(record: MedtaxRecord) -> HubMessage:
    key = record.record_no
    return HubMessage(type=MEDTAX_TYPE, source="core", target=MEDTAX, correlation_id=key,
                      idempotency_key=idempotency_key(MEDTAX_TYPE, key, {}),
                      entity_key=entity_key("person", record.certno),
                      payload={"key": key, "infno": INFNO_MEDTAX,
                               "input": {"data": record.model_dump(mode="json")}})

"""F13 contracts, pure: a voucher verifies only when the platform signed it and it is
current (forged, altered, expired, not yet valid, malformed refused with field and
reason); the holder must be the settled person; settlements are fen-exact and add up;
the 医税平台 carries 310/510/390 only."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from adapters.prescription.crypto import sm2_generate, sm2_sign, sm2_verify
from contracts.clock import now_beijing
from contracts.errors import PermanentError
from contracts.ids import make_id_number
from contracts.voucher import (
    SETTLE_INFNO,
    MedtaxRecord,
    SettlementRequest,
    VoucherClaims,
    VoucherError,
    check_holder,
    encode_qr,
    format_ts,
    read_qr,
    refusals,
    settle_message,
    token_digest,
    verify_qr,
)

PRIVATE, PUBLIC = sm2_generate()
ME = make_id_number(random.Random(1))
OTHER = make_id_number(random.Random(2))


def check(message: bytes, signature: bytes) -> bool:
    return sm2_verify(PUBLIC, message, signature)


def claims(ttl_s: int = 300, age_s: int = 0, **kw: Any) -> VoucherClaims:
    issued = now_beijing() - timedelta(seconds=age_s)
    return VoucherClaims.model_validate({
        "ecToken": "A1B2C3D4E5F60718293A4B5C6D7E8F90", "idNo": ME, "userName": "王伟",
        "insuplcAdmdvs": "320100", "issuedAt": format_ts(issued),
        "expireAt": format_ts(issued + timedelta(seconds=ttl_s))} | kw)


def qr(c: VoucherClaims | None = None, private: str = PRIVATE, public: str = PUBLIC) -> str:
    return encode_qr(c or claims(), lambda m: sm2_sign(private, public, m))


def test_a_genuine_current_voucher_verifies_and_its_holder_is_checked() -> None:
    got = verify_qr(qr(), check, now_beijing())
    assert got.id_no == ME and got.ec_token.startswith("A1B2")
    check_holder(got, ME.lower())
    with pytest.raises(VoucherError) as e:
        check_holder(got, OTHER)
    assert (e.value.cause, e.value.field) == ("other_person", "psn_cert_no")
    assert isinstance(e.value, PermanentError) and e.value.to_dict()["cause"] == "other_person"


def test_forged_and_altered_vouchers_are_refused_as_forged() -> None:
    other_private, other_public = sm2_generate()
    with pytest.raises(VoucherError) as e:
        verify_qr(qr(private=other_private, public=other_public), check, now_beijing())
    assert (e.value.cause, e.value.field) == ("forged", "ec_qr")
    # the claims changed after signing (another person's ID put in): the signature fails
    text = qr()
    prefix, _, signature = text.split(".")
    altered = qr(claims(idNo=OTHER)).split(".")[1]
    with pytest.raises(VoucherError) as e:
        verify_qr(f"{prefix}.{altered}.{signature}", check, now_beijing())
    assert e.value.cause == "forged"


def test_expired_and_not_yet_valid_vouchers_are_refused() -> None:
    with pytest.raises(VoucherError) as e:
        verify_qr(qr(claims(ttl_s=60, age_s=600)), check, now_beijing())
    assert (e.value.cause, e.value.field) == ("expired", "ec_qr.expireAt")
    with pytest.raises(VoucherError) as e:
        verify_qr(qr(claims(age_s=-3600)), check, now_beijing())
    assert (e.value.cause, e.value.field) == ("expired", "ec_qr.issuedAt")
    # within the tolerated skew it still passes
    assert verify_qr(qr(claims(ttl_s=60, age_s=70)), check, now_beijing(), skew_s=30)


@pytest.mark.parametrize(("text", "field"), [
    ("hello", "ec_qr"), ("NHSAEC1.a.b.c", "ec_qr"), ("NHSAEC1.!!.AAAA", "ec_qr"),
    ("OTHER.eyJhIjoxfQ.AAAA", "ec_qr"), ("NHSAEC1.eyJhIjoxfQ.AAAA", "ec_qr.ecToken")])
def test_malformed_codes_name_the_field(text: str, field: str) -> None:
    with pytest.raises(VoucherError) as e:
        read_qr(text)
    assert (e.value.cause, e.value.field) == ("malformed", field)


def test_an_unverifiable_key_refuses_every_voucher() -> None:
    with pytest.raises(VoucherError) as e:
        verify_qr(qr(), lambda _m, _s: False, now_beijing())
    assert e.value.cause == "forged"


def _settlement(**kw: Any) -> dict[str, Any]:
    return {"kind": "outpatient", "fixmedins_code": "H32010000011", "setl_req_no": "REQ0001",
            "ec_qr": "x", "psn_cert_no": ME, "psn_name": "王伟", "medfee_sumamt": "123.45",
            "details": [{"code": "X1", "name": "a", "qty": 1, "amount": "100.00"},
                        {"code": "X2", "name": "b", "qty": 2, "amount": "23.45"}]} | kw


def test_settlement_money_is_fen_exact_and_must_add_up() -> None:
    req = SettlementRequest.model_validate(_settlement())
    assert req.medfee_sumamt == Decimal("123.45")
    for bad, reason in (({"medfee_sumamt": 123.45}, "float"),
                        ({"medfee_sumamt": "123.456"}, "fen"),
                        ({"medfee_sumamt": "-1.00"}, "negative"),
                        ({"medfee_sumamt": "120.00"}, "not the sum")):
        with pytest.raises(ValidationError) as e:
            SettlementRequest.model_validate(_settlement(**bad))
        [(f, r)] = refusals(e.value)
        assert f == "medfee_sumamt" and reason in r, (f, r)
    with pytest.raises(ValidationError) as e:
        SettlementRequest.model_validate(_settlement(kind="discharge"))
    assert refusals(e.value)[0][0] == "mdtrt_id"
    with pytest.raises(ValidationError) as e:
        SettlementRequest.model_validate(_settlement(psn_cert_no=ME[:17] + "0"
                                                     if ME[-1] != "0" else ME[:17] + "1"))
    assert refusals(e.value)[0][0] == "psn_cert_no"


def test_settlement_message_names_the_national_infno_and_carries_no_float() -> None:
    c = claims()
    for kind, infno in SETTLE_INFNO.items():
        extra = {"mdtrt_id": "MD1"} if kind == "discharge" else {}
        msg = settle_message(SettlementRequest.model_validate(_settlement(kind=kind, **extra)), c)
        assert msg.payload["infno"] == infno
        data = msg.payload["input"]["data"]
        assert data["mdtrt_cert_type"] == "01" and data["mdtrt_cert_no"] == c.ec_token
        assert data["medfee_sumamt"] == "123.45"
        assert msg.idempotency_key == settle_message(
            SettlementRequest.model_validate(_settlement(kind=kind, **extra)), c).idempotency_key
    assert token_digest(c.ec_token) != c.ec_token and len(token_digest(c.ec_token)) == 64


@pytest.mark.parametrize(("insutype", "ok"), [("310", True), ("510", True), ("390", True),
                                              ("392", False), ("320", False), ("410", False),
                                              ("999", False)])
def test_medtax_carries_employee_medical_maternity_and_resident_medical_only(
        insutype: str, ok: bool) -> None:
    row = {"record_no": "MTX0001", "insutype": insutype, "certno": ME, "psn_name": "王伟",
           "cashym": "202611", "clct_sumamt": "512.40"}
    if ok:
        assert MedtaxRecord.model_validate(row).insutype == insutype
        return
    with pytest.raises(ValidationError) as e:
        MedtaxRecord.model_validate(row)
    [(f, r)] = refusals(e.value)
    assert f == "insutype" and "not carried by the 医税平台" in r

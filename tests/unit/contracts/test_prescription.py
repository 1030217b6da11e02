"""The 电子处方中心 envelope: sign string, seal/open round trip, every refusal by cause, and
the validity rule of a prescription (contracts/prescription.py)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from adapters.prescription.client import PrescriptionKeys, generate_keys
from contracts.clock import BEIJING
from contracts.prescription import (
    MODELS,
    PATHS,
    HospRxDetlQueryIn,
    PrescriptionRefused,
    RxDetail,
    b64,
    canonical_data,
    invalid_reason,
    open_envelope,
    plain_data,
    seal,
    sign_content,
)

NOW = 1_767_225_600
KEYS: tuple[PrescriptionKeys, PrescriptionKeys] = generate_keys("hub-app")
HUB, CENTER = KEYS
DATA = {"hiRxno": "RX-1", "psnName": "王小明", "rxdrugdetail": [
    {"medListCodg": "X1", "drugGenname": "片", "drugTotlcnt": "2"}]}


def _answer(data: dict[str, Any] | None = DATA, *, code: int = 0, ts: int = NOW,
            keys: PrescriptionKeys = CENTER) -> dict[str, Any]:
    return seal(data, app_id=keys.app_id, app_secret=keys.app_secret, timestamp=ts,
                crypto=keys.crypto(), code=code, message="成功")


def _open(body: Any, *, now: int = NOW, keys: PrescriptionKeys = HUB, answer: bool = True
          ) -> Any:
    return open_envelope(body, app_id=keys.app_id, app_secret=keys.app_secret,
                         crypto=keys.crypto(), now_s=now, max_skew_s=300, answer=answer)


def _cause(body: Any, **kw: Any) -> str:
    with pytest.raises(PrescriptionRefused) as e:
        _open(body, **kw)
    return e.value.cause


def test_sign_string_drops_unsigned_and_empty_sorts_and_appends_the_key() -> None:
    fields = {"signType": "SM2", "appId": "A", "encData": "E", "signData": "S", "extra": "x",
              "timestamp": 17, "version": "1.0.0", "encType": "SM4", "message": "",
              "code": 0, "data": {"b": 2, "a": True, "empty": "", "none": None, "list": [],
                                   "lines": [{"z": 1, "y": "中"}]}}
    assert sign_content(fields, "SECRET").decode() == (
        'appId=A&code=0&data={"a":"true","b":"2","lines":[{"y":"中","z":1}]}'
        "&encType=SM4&signType=SM2&timestamp=17&version=1.0.0&key=SECRET")
    assert canonical_data({"q": Decimal("1.50"), "f": 2.0}) == '{"f":"2","q":"1.50"}'
    assert plain_data({"n": "王"}) == b'{"n":"\\u738b"}'


def test_request_round_trip_and_the_envelope_on_the_wire() -> None:
    body = HospRxDetlQueryIn(fixmedins_code="P1", hi_rxno="RX-1").wire()
    env = seal(body, app_id=HUB.app_id, app_secret=HUB.app_secret, timestamp=NOW,
               crypto=HUB.crypto())
    assert set(env) == {"appId", "timestamp", "version", "encType", "signType", "encData",
                        "signData"}
    assert (env["version"], env["encType"], env["signType"]) == ("1.0.0", "SM4", "SM2")
    assert "RX-1" not in json.dumps(env)  # the business data travels encrypted only
    opened = _open(env, keys=CENTER, answer=False)
    assert opened.data == {"fixmedinsCode": "P1", "hiRxno": "RX-1"}
    assert opened.code is None


def test_answer_round_trip_with_and_without_data() -> None:
    opened = _open(_answer())
    assert opened.code == 0 and opened.data == DATA and opened.message == "成功"
    empty = _open(_answer(None, code=2001))
    assert empty.code == 2001 and empty.data is None


@pytest.mark.parametrize("change", ["encData", "timestamp", "code", "message", "signData"])
def test_tampering_with_any_signed_part_is_refused(change: str) -> None:
    env = _answer()
    if change == "encData":  # other content, properly encrypted with the shared key
        env["encData"] = b64(CENTER.crypto().encrypt(plain_data({**DATA, "hiRxno": "RX-2"})))
    elif change == "timestamp":
        env["timestamp"] = NOW + 1
    elif change == "code":
        env["code"] = 1
    elif change == "message":
        env["message"] = "失败"
    else:
        env["signData"] = _answer(code=1)["signData"]  # a valid signature of another answer
    assert _cause(env) == "signature"


def test_an_answer_signed_with_another_key_is_refused() -> None:
    stranger = generate_keys("hub-app")[1]
    # the right appId, appSecret and SM4 key, only the SM2 key is another
    signer = PrescriptionKeys(CENTER.app_id, CENTER.app_secret, CENTER.sm4_key,
                              stranger.private_key, stranger.public_key, CENTER.peer_public_key)
    assert _cause(_answer(keys=signer)) == "signature"
    # a whole other key set: its SM4 key does not decrypt here
    assert _cause(_answer(keys=stranger)) == "decrypt"


def test_window_app_id_decryption_and_shape_refusals() -> None:
    assert _cause(_answer(ts=NOW - 301)) == "stale"
    assert _cause(_answer(ts=NOW + 301)) == "stale"
    assert _open(_answer(ts=NOW - 300)).code == 0
    assert _cause({**_answer(), "appId": "other"}) == "app_id"
    garbage = {**_answer(), "encData": b64(b"\x01" * 48)}
    assert _cause(garbage) == "decrypt"
    assert _cause({**_answer(), "encData": "%%%"}) == "decrypt"
    assert _cause({k: v for k, v in _answer().items() if k != "signData"}) == "envelope"
    assert _cause({**_answer(), "encType": "AES"}) == "envelope"
    assert _cause({**_answer(), "version": "2.0.0"}) == "envelope"
    assert _cause([1, 2]) == "envelope"
    request = seal(DATA, app_id=HUB.app_id, app_secret=HUB.app_secret, timestamp=NOW,
                   crypto=CENTER.crypto())
    assert _cause(request) == "envelope"  # an answer must carry its code


def test_a_refusal_is_a_permanent_error_naming_its_cause() -> None:
    with pytest.raises(PrescriptionRefused) as e:
        _open(_answer(ts=0))
    assert e.value.kind == "permanent" and e.value.partner == "prescription"
    assert "stale" in e.value.reason


def test_every_path_has_models() -> None:
    assert set(MODELS) == set(PATHS) and len(PATHS) == 8


def _detail(**kw: Any) -> RxDetail:
    end = (datetime.now(BEIJING) + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    return RxDetail.model_validate({"hiRxno": "RX-1", "valiEndTime": end, "rxStasCodg": "1",
                                    "rxChkStasCodg": "1", "rxUsedStasCodg": "0", **kw})


def test_invalid_reason_per_state() -> None:
    now = datetime.now(BEIJING)
    assert invalid_reason(_detail(), now) == ""
    assert invalid_reason(_detail(rxStasCodg="3"), now) == "revoked"
    assert invalid_reason(_detail(rxStasCodg="2"), now) == "expired"
    assert invalid_reason(_detail(valiEndTime="2020-01-01 00:00:00"), now) == "expired"
    assert invalid_reason(_detail(rxChkStasCodg="0"), now) == "not reviewed"
    assert invalid_reason(_detail(rxChkStasCodg="2"), now) == "review rejected"
    assert invalid_reason(_detail(rxUsedStasCodg="1"), now) == "dispensed"
    assert _detail().expires_at.tzinfo is BEIJING

"""The national algorithms behind adapters.prescription.crypto: known answers, round trips,
and a wrong key or a changed byte refused."""

from __future__ import annotations

import gmssl_pyx
import pytest

from adapters.prescription.crypto import (
    SmCrypto,
    SmKeyError,
    sm2_generate,
    sm2_sign,
    sm2_verify,
    sm3,
    sm4_decrypt,
    sm4_encrypt,
)

# GB/T 32918.2 (GM/T 0003.2) example on the recommended curve, signer ID 1234567812345678.
KAT_PUBLIC = ("04" "09f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020"
              "ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13")
KAT_SIGNATURE = bytes.fromhex(
    "f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3"
    "b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa")


def test_sm3_known_answers() -> None:
    # GB/T 32905 examples A.1 and A.2
    assert sm3(b"abc").hex() == \
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert sm3(b"abcd" * 16).hex() == \
        "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"


def test_sm4_known_answer_and_round_trip() -> None:
    # GB/T 32907 example 1: key = plaintext = 0123456789abcdeffedcba9876543210
    key = bytes.fromhex("0123456789abcdeffedcba9876543210")
    ct = sm4_encrypt(key, key)
    assert ct[:16].hex() == "681edf34d206965e86b3e94f536e4246"
    assert len(ct) == 32  # one block of PKCS#7 padding
    body = "处方 hiRxno=RX1".encode() * 7
    assert sm4_decrypt(key, sm4_encrypt(key, body)) == body


def test_sm4_refuses_another_key_and_broken_blocks() -> None:
    key, other = bytes(range(16)), bytes(range(1, 17))
    ct = sm4_encrypt(key, b'{"hiRxno":"RX-VALID","certno":"x"}')
    with pytest.raises(ValueError):
        sm4_decrypt(other, ct)
    with pytest.raises(ValueError, match="whole 16-byte"):
        sm4_decrypt(key, ct[:-3])
    with pytest.raises(SmKeyError):
        sm4_encrypt(b"short", b"x")


def test_sm2_known_answer_verifies_and_a_changed_message_does_not() -> None:
    assert sm2_verify(KAT_PUBLIC, b"message digest", KAT_SIGNATURE)
    assert not sm2_verify(KAT_PUBLIC, b"message digesT", KAT_SIGNATURE)
    assert not sm2_verify(KAT_PUBLIC[2:], b"message digest", KAT_SIGNATURE[:63] + b"\x00")


def test_sm2_round_trip_raw_signature_interoperates_with_gmssl() -> None:
    private, public = sm2_generate()
    assert len(private) == 64 and public.startswith("04") and len(public) == 130
    message = b"appId=a&data={}&key=s"
    signature = sm2_sign(private, public, message)
    assert len(signature) == 64
    assert sm2_verify(public, message, signature)
    # GmSSL's own Z computation (signer ID inside the library) agrees with ours
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"),
                               int.from_bytes(signature[32:], "big"))
    assert gmssl_pyx.sm2_verify(bytes.fromhex(public[2:]), message, der)
    assert sm2_verify(public, message, der)  # DER (BouncyCastle) accepted too
    other = sm2_generate()[1]
    assert not sm2_verify(other, message, signature)


def test_sm_crypto_refuses_mismatched_and_malformed_keys() -> None:
    private, public = sm2_generate()
    _, other_public = sm2_generate()
    sm4 = "00" * 16
    with pytest.raises(SmKeyError, match="does not match"):
        SmCrypto(private_key=private, public_key=other_public, peer_public_key=public,
                 sm4_key=sm4)
    with pytest.raises(SmKeyError, match="not hex"):
        SmCrypto(private_key="zz" * 32, public_key=public, peer_public_key=public, sm4_key=sm4)
    with pytest.raises(SmKeyError, match="SM4 key"):
        SmCrypto(private_key=private, public_key=public, peer_public_key=public,
                 sm4_key="00" * 8)
    ok = SmCrypto(private_key=private, public_key=public, peer_public_key=other_public,
                  sm4_key=sm4)
    assert private not in repr(ok)
    assert not ok.verify(b"m", ok.sign(b"m"))  # verifies with the peer's key, not its own

"""The national algorithms (SM2, SM3, SM4) behind one small surface, so the library can change.

Chosen by measurement (``bench/sm.py``, figures in ``contracts/PRESCRIPTION.md``):
``gmssl_pyx`` (GmSSL 3 compiled into the wheel, no system library) for SM2 and SM3,
``cryptography`` for SM4 (``gmssl_pyx`` has no ECB mode). Everything else in the hub sees
only the functions here and ``SmCrypto`` (``contracts.prescription.EnvelopeCrypto``); swapping
the library means rewriting this module, and the known-answer and interoperability tests in
``tests/unit/adapters/prescription/test_crypto.py`` say whether the swap is faithful.

Formats, as the national platforms use them:

- SM2 keys: private 32 bytes (64 hex), public uncompressed ``04 || X || Y`` (130 hex; 128
  hex without the ``04`` is accepted).
- SM3withSM2: GB/T 32918.2 with the default signer ID ``1234567812345678`` (Z value), the
  signature as raw ``r || s`` (64 bytes); a DER signature (what Java's BouncyCastle gives)
  is accepted on verification too.
- SM4: ECB with PKCS#7 padding, a 16-byte key.

``gmssl_pyx``'s ``sm2_sign`` rebuilds the key (one point multiplication) per call: signing
the digest ourselves (``e = SM3(Z || M)``, Z computed once per key) is ten times faster.
GmSSL writes a source-location trace to stderr when a verification fails (no data in it).
"""

from __future__ import annotations

import binascii
import secrets
from typing import TYPE_CHECKING

import gmssl_pyx
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

if TYPE_CHECKING:
    from contracts.prescription import EnvelopeCrypto

__all__ = ["LIBRARY", "SIGNER_ID", "SmCrypto", "SmKeyError", "sm2_generate", "sm2_sign",
           "sm2_verify", "sm3", "sm4_decrypt", "sm4_encrypt", "sm4_key_generate"]

LIBRARY = f"gmssl_pyx {gmssl_pyx.__version__} (SM2, SM3) + cryptography (SM4)"
SIGNER_ID = b"1234567812345678"
"""The default SM2 signer ID (GB/T 35276), what every national SDK signs with."""

# GB/T 32918.5 curve parameters, for the Z value: a, b, G.
_CURVE = bytes.fromhex(
    "FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC"
    "28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93"
    "32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7"
    "BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0")


class SmKeyError(ValueError):
    """A key that is not one: wrong length, not hex, not on the curve."""


def sm3(data: bytes) -> bytes:
    return bytes(gmssl_pyx.sm3_hash(data))


def _hex(value: str, what: str) -> bytes:
    try:
        return binascii.unhexlify(value.strip())
    except (binascii.Error, ValueError):
        raise SmKeyError(f"{what} is not hex") from None


def _public(public_hex: str) -> bytes:
    """The 64-byte ``X || Y`` of a public key given as 130 hex (``04...``) or 128 hex."""
    raw = _hex(public_hex, "SM2 public key")
    if len(raw) == 65 and raw[0] == 4:
        raw = raw[1:]
    if len(raw) != 64:
        raise SmKeyError("SM2 public key must be 04||X||Y (130 hex) or X||Y (128 hex)")
    return raw


def _private(private_hex: str) -> bytes:
    raw = _hex(private_hex, "SM2 private key")
    if len(raw) == 33 and raw[0] == 0:  # a signed big-endian integer (some SDKs print it so)
        raw = raw[1:]
    if len(raw) != 32:
        raise SmKeyError("SM2 private key must be 32 bytes (64 hex)")
    return raw


def _z(public: bytes, signer_id: bytes = SIGNER_ID) -> bytes:
    entl = (len(signer_id) * 8).to_bytes(2, "big")
    return sm3(entl + signer_id + _CURVE + public)


def sm2_generate() -> tuple[str, str]:
    """A fresh key pair: (private hex, public ``04...`` hex)."""
    public, private = gmssl_pyx.sm2_key_generate()
    return bytes(private).hex(), "04" + bytes(public).hex()


def sm2_sign(private_hex: str, public_hex: str, message: bytes) -> bytes:
    """SM3withSM2 over ``message``: raw ``r || s``."""
    return _Signer(private_hex, public_hex).sign(message)


def sm2_verify(public_hex: str, message: bytes, signature: bytes) -> bool:
    return _Verifier(public_hex).verify(message, signature)


def sm4_key_generate() -> str:
    return secrets.token_bytes(16).hex()


def _sm4_key(key: bytes) -> bytes:
    if len(key) != 16:
        raise SmKeyError("SM4 key must be 16 bytes (32 hex)")
    return key


def sm4_encrypt(key: bytes, plaintext: bytes) -> bytes:
    """SM4-ECB, PKCS#7 padded."""
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    enc = Cipher(algorithms.SM4(_sm4_key(key)), modes.ECB()).encryptor()
    return enc.update(padded) + enc.finalize()


def sm4_decrypt(key: bytes, ciphertext: bytes) -> bytes:
    """Raises ``ValueError`` when ``ciphertext`` is not whole blocks or its padding is wrong
    (the usual sign of another key)."""
    if not ciphertext or len(ciphertext) % 16:
        raise ValueError(f"SM4 ciphertext of {len(ciphertext)} bytes is not whole 16-byte "
                         "blocks")
    dec = Cipher(algorithms.SM4(_sm4_key(key)), modes.ECB()).decryptor()
    padded = dec.update(ciphertext) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


class _Signer:
    def __init__(self, private_hex: str, public_hex: str) -> None:
        self._private = _private(private_hex)
        self._z = _z(_public(public_hex))

    def sign(self, message: bytes) -> bytes:
        digest = sm3(self._z + message)
        try:
            der = bytes(gmssl_pyx.sm2_sign_sm3_digest(self._private, digest))
        except gmssl_pyx.GmsslInnerError as exc:
            raise SmKeyError(f"SM2 private key refused: {exc}") from None
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


class _Verifier:
    def __init__(self, public_hex: str) -> None:
        self._public = _public(public_hex)
        self._z = _z(self._public)

    def verify(self, message: bytes, signature: bytes) -> bool:
        if len(signature) == 64:
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                       int.from_bytes(signature[32:], "big"))
        else:
            der = signature
        try:
            return bool(gmssl_pyx.sm2_verify_sm3_digest(self._public,
                                                        sm3(self._z + message), der))
        except gmssl_pyx.GmsslInnerError:
            return False


class SmCrypto:
    """One party's envelope crypto: it signs with its own key pair, verifies with its peer's
    public key, and shares the SM4 key with the peer. Keys are checked when built: a
    private key that does not match its public key is refused here, not at the first
    answer."""

    def __init__(self, *, private_key: str, public_key: str, peer_public_key: str,
                 sm4_key: str) -> None:
        self._signer = _Signer(private_key, public_key)
        self._verifier = _Verifier(peer_public_key)
        self._key = _sm4_key(_hex(sm4_key, "SM4 key"))
        self.public_key = public_key
        probe = b"key check"
        if not _Verifier(public_key).verify(probe, self._signer.sign(probe)):
            raise SmKeyError("the SM2 private key does not match its public key")

    def __repr__(self) -> str:  # never print a key
        return f"SmCrypto(public_key={self.public_key[:12]}...)"

    def sign(self, message: bytes) -> bytes:
        return self._signer.sign(message)

    def verify(self, message: bytes, signature: bytes) -> bool:
        return self._verifier.verify(message, signature)

    def encrypt(self, plaintext: bytes) -> bytes:
        return sm4_encrypt(self._key, plaintext)

    def decrypt(self, ciphertext: bytes) -> bytes:
        return sm4_decrypt(self._key, ciphertext)


if TYPE_CHECKING:
    _conforms: type[EnvelopeCrypto] = SmCrypto

"""SM2/SM3/SM4 throughput: the chosen implementation and whichever candidates are installed.

The hub signs every request to the 电子处方中心 and verifies every answer (SM3withSM2 over
the sign string, ~400 bytes) and SM4-encrypts each business body. Measured on one core:
SM3withSM2 signatures and verifications per second over a realistic sign string, and SM4
(ECB, PKCS#7) megabytes per second over 16 KiB bodies. Candidates not installed (``gmssl``
pure Python, ``tongsuopy``, ``gmssl_fast``) are skipped; HMAC-SHA256 over the same string
is a baseline measured in the same run, so the ratios hold across machines.

Last line: ``sm: sign_per_s=N verify_per_s=N encrypt_mb_s=N`` (the chosen implementation,
``adapters.prescription.crypto``). Figures and the choice: ``contracts/PRESCRIPTION.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from adapters.prescription import crypto
from contracts.prescription import sign_content

__all__ = ["main", "measure"]

MESSAGE = sign_content({
    "appId": "nj-hub-0001", "timestamp": 1767225600, "version": "1.0.0", "encType": "SM4",
    "signType": "SM2", "data": {
        "fixmedinsCode": "P32010000001", "hiRxno": "RX0000012345", "rxTraceCode": "TR12345",
        "psnName": "王小明", "certno": "320106199001011234", "psnCertType": "01",
        "rxdrugdetail": [{"medListCodg": "XA10BAA017A001010101445", "drugGenname": "二甲双胍片",
                          "drugTotlcnt": "2", "drugTotlcntEmp": "盒"}]}},
    "0123456789abcdef0123456789abcdef")
BODY = os.urandom(16 * 1024)
KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")

Suite = tuple[Callable[[], Any], Callable[[], Any], Callable[[], Any]]


def measure(fn: Callable[[], Any], seconds: float) -> float:
    """Calls per second of ``fn`` over at least ``seconds`` (after one warm-up call)."""
    fn()
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


def chosen() -> Suite:
    private, public = crypto.sm2_generate()
    signature = crypto.sm2_sign(private, public, MESSAGE)
    assert crypto.sm2_verify(public, MESSAGE, signature)
    signer = crypto.SmCrypto(private_key=private, public_key=public, peer_public_key=public,
                             sm4_key=KEY.hex())
    return (lambda: signer.sign(MESSAGE), lambda: signer.verify(MESSAGE, signature),
            lambda: signer.encrypt(BODY))


def pure_gmssl() -> Suite:
    from gmssl import sm2, sm4  # type: ignore[import-not-found,unused-ignore]

    private = crypto.sm2_generate()[0]
    probe = sm2.CryptSM2(private_key=private, public_key="", mode=1)
    public = probe._kg(int(private, 16), sm2.default_ecc_table["g"])
    key = sm2.CryptSM2(private_key=private, public_key=public, mode=1)
    signature = key.sign_with_sm3(MESSAGE)
    assert key.verify_with_sm3(signature, MESSAGE)
    cipher = sm4.CryptSM4()
    cipher.set_key(KEY, sm4.SM4_ENCRYPT)
    return (lambda: key.sign_with_sm3(MESSAGE), lambda: key.verify_with_sm3(signature, MESSAGE),
            lambda: cipher.crypt_ecb(BODY))


def tongsuopy() -> Suite:
    from tongsuopy.crypto import hashes  # type: ignore[import-not-found,unused-ignore]
    from tongsuopy.crypto.asymciphers import ec  # type: ignore[import-not-found,unused-ignore]
    from tongsuopy.crypto.ciphers import (  # type: ignore[import-not-found,unused-ignore]
        Cipher,
        algorithms,
        modes,
    )

    key = ec.generate_private_key(ec.SM2())
    public, algorithm = key.public_key(), ec.ECDSA(hashes.SM3())
    signature = key.sign(MESSAGE, algorithm)
    public.verify(signature, MESSAGE, algorithm)
    cipher = Cipher(algorithms.SM4(KEY), modes.ECB())

    def encrypt() -> bytes:
        enc = cipher.encryptor()
        return bytes(enc.update(BODY) + enc.finalize())

    return (lambda: key.sign(MESSAGE, algorithm),
            lambda: public.verify(signature, MESSAGE, algorithm), encrypt)


def gmssl_fast() -> Suite:
    import gmssl_fast as fast  # type: ignore[import-not-found,unused-ignore]

    key = fast.SM2.generate()
    signature = key.sign(MESSAGE)
    verifier = fast.SM2(public_key=key.public_key_hex)
    assert verifier.verify(MESSAGE, signature)
    cipher = fast.SM4(KEY, mode="ecb")
    return (lambda: key.sign(MESSAGE), lambda: verifier.verify(MESSAGE, signature),
            lambda: cipher.encrypt(BODY))


CANDIDATES: dict[str, Callable[[], Suite]] = {
    "gmssl (pure Python)": pure_gmssl, "tongsuopy": tongsuopy, "gmssl_fast": gmssl_fast}


def run(suite: Suite, seconds: float) -> dict[str, float]:
    sign, verify, encrypt = suite
    return {"sign_per_s": measure(sign, seconds), "verify_per_s": measure(verify, seconds),
            "encrypt_mb_s": measure(encrypt, seconds) * len(BODY) / 1e6}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=1.0, help="per figure (default 1)")
    parser.add_argument("--candidates", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure the installed candidates")
    args = parser.parse_args(argv)
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    key = os.urandom(32)
    baseline = measure(lambda: hmac.new(key, MESSAGE, hashlib.sha256).digest(), args.seconds)
    mine = run(chosen(), args.seconds)
    print(f"sm baseline: hmac_sha256_per_s={baseline:.0f} (same {len(MESSAGE)}-byte message)")
    rows, missing = {f"{crypto.LIBRARY} [chosen]": mine}, []
    for name, build in CANDIDATES.items() if args.candidates else ():
        try:
            suite = build()
        except ImportError:
            missing.append(name)
            continue
        rows[name] = run(suite, args.seconds)
    for name, r in rows.items():
        cost = baseline / r["sign_per_s"] + baseline / r["verify_per_s"]
        print(f"sm candidate {name}: sign_per_s={r['sign_per_s']:.0f} "
              f"verify_per_s={r['verify_per_s']:.0f} encrypt_mb_s={r['encrypt_mb_s']:.1f} "
              f"(a sign and a verify cost {cost:.0f} HMAC-SHA256)")
    if missing:
        print("sm candidates not installed: " + ", ".join(missing))
    print(json.dumps({"bench": "sm", "chosen": crypto.LIBRARY, "seconds": args.seconds,
                      "python": sys.version.split()[0],
                      **{k: round(v, 1) for k, v in mine.items()}}, ensure_ascii=False))
    print(f"sm: sign_per_s={mine['sign_per_s']:.0f} verify_per_s={mine['verify_per_s']:.0f} "
          f"encrypt_mb_s={mine['encrypt_mb_s']:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

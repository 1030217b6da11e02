"""``VoucherPort`` over HTTP in the national envelope, and the Redis rate limiter.

Each partner (``partners.core_voucher``, ``voucher_library``, ``medtax``) takes ``POST
<endpoint>`` with a ``NationalRequest``; the hub signs as ``hub`` with the partner's
secret (``contracts.signing``, ``X-Partner-*``) and sends ``X-Hub-Serial``. Errors are
mapped here, at the boundary:

    timeout                              -> PartnerTimeout
    connection errors, 5xx, 408, 429     -> PartnerUnavailable   (retried, then DLQ)
    other 4xx                            -> ClientError          (refused: not retried)
    infcode -1                           -> BusinessRejected     (err_msg, output.err_code)
    a partner not configured             -> ClientError

``platform_key`` finds the issuing platform's SM2 public key (settings, or the
development key file) and ``sm2_check`` turns it into ``contracts.voucher``'s check.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from adapters.http import bounded_client
from adapters.national import post_national
from adapters.prescription.crypto import SmKeyError, sm2_generate, sm2_verify
from adapters.signing import SignedAuth
from config.settings import HubSettings, PartnerConfig
from contracts.errors import ClientError
from contracts.national import (
    NationalRequest,
    format_inf_time,
    make_msgid,
    now_cst,
)
from contracts.voucher import SignatureCheck

if TYPE_CHECKING:
    from adapters.voucher.port import RateLimiter, VoucherPort

__all__ = ["RedisRateLimiter", "VoucherClient", "dev_platform_keys", "platform_key",
           "sm2_check"]

log = logging.getLogger("hub.voucher")

SIGNER = "hub"
SENDER = "NJYBHUB00013"


class VoucherClient:
    """One pooled HTTP client for the F13 partners."""

    def __init__(self, partners: Mapping[str, PartnerConfig], *,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._partners = dict(partners)
        self._http = bounded_client(limit=64, timeout=httpx.Timeout(5.0), transport=transport)
        self._seq = itertools.count(1)

    async def call(self, partner: str, infno: str, input: dict[str, Any], *,
                   serial: str = "", insuplc_admdvs: str = "320100") -> dict[str, Any]:
        config = self._partners.get(partner)
        if config is None:
            raise ClientError(f"partner {partner} is not configured", partner=partner)
        now = now_cst()
        request = NationalRequest(infno=infno, msgid=make_msgid(SENDER, now,
                                                                next(self._seq) % 10000),
                                  mdtrtarea_admvs="320100", insuplc_admdvs=insuplc_admdvs,
                                  recer_sys_code=partner[:10], opter="hub",
                                  opter_name="集成平台", inf_time=format_inf_time(now),
                                  input=input)
        body = json.dumps(request.to_wire(), ensure_ascii=False, separators=(",", ":"),
                          default=str).encode()
        headers = {"Content-Type": "application/json"}
        if serial:
            headers["X-Hub-Serial"] = serial
        response = await post_national(
            self._http, config.endpoint, who=partner, infno=infno, partner=partner,
            reject_code="F13", timeout_s=config.timeout_s, content=body, headers=headers,
            timeout=config.timeout_s, auth=SignedAuth(SIGNER, config.secret.get_secret_value()))
        return dict(response.output or {})

    async def aclose(self) -> None:
        await self._http.aclose()


class _Redis(Protocol):
    async def incr(self, name: str) -> int: ...
    async def expire(self, name: str, time: int) -> Any: ...


class RedisRateLimiter:
    """A fixed window per caller: ``INCR`` then ``EXPIRE`` on the window's first call."""

    def __init__(self, redis: _Redis, *, prefix: str,
                 clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._prefix = prefix
        self._clock = clock

    async def hit(self, scope: str, caller: str, limit: int, window_s: int = 60
                  ) -> tuple[bool, int]:
        now = int(self._clock())
        window = now // window_s
        key = f"{self._prefix}{scope}:{caller}:{window}"
        n = int(await self._redis.incr(key))
        if n == 1:
            await self._redis.expire(key, window_s + 1)
        return n <= limit, max(1, (window + 1) * window_s - now)


def dev_platform_keys(path: str | Path) -> tuple[str, str]:
    """Development only: the simulated issuing platform's (private, public) key pair,
    generated once into ``path`` (the hub reads the public half, the simulator signs)."""
    p = Path(path)
    if p.exists():
        data = json.loads(p.read_text(encoding="utf-8"))
        return str(data["private"]), str(data["public"])
    private, public = sm2_generate()
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps({"private": private, "public": public}), encoding="utf-8")
    return private, public


def platform_key(settings: HubSettings) -> str:
    """The platform's public key: the setting, else (development mode only) the key file;
    ``""`` when there is none (every voucher is then refused as not verifiable)."""
    cfg = settings.voucher
    if cfg.platform_public_key:
        return cfg.platform_public_key
    if settings.env == "development":
        return dev_platform_keys(cfg.dev_keys_file)[1]
    log.warning("F13: no voucher.platform_public_key: every e-voucher is refused")
    return ""


def sm2_check(public_hex: str) -> SignatureCheck:
    """``contracts.voucher.SignatureCheck`` with the platform's SM2 public key (SM3withSM2,
    signer ID 1234567812345678, r||s or DER). A key of the wrong shape is ``SmKeyError``
    here, at start."""
    if not public_hex:
        return lambda _message, _signature: False
    raw = public_hex.strip().lower()
    if len(raw) not in (128, 130) or (len(raw) == 130 and not raw.startswith("04")) \
            or any(c not in "0123456789abcdef" for c in raw):
        raise SmKeyError("voucher.platform_public_key must be 04||X||Y (130 hex) or X||Y "
                         "(128 hex)")

    def check(message: bytes, signature: bytes) -> bool:
        return sm2_verify(public_hex, message, signature)

    return check


if TYPE_CHECKING:
    _conforms: type[VoucherPort] = VoucherClient
    _limits: type[RateLimiter] = RedisRateLimiter


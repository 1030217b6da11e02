"""``PrescriptionPort`` over HTTP: the center's signed (SM3withSM2), encrypted (SM4) envelope.

Every request is sealed (``contracts.prescription.seal``) with the hub's SM2 key and the
shared SM4 key; every answer is opened and verified before anything in it is used: the
envelope's shape, the appId, the timestamp within ``prescription.max_skew_s`` of the
hub's clock, ``encData`` decrypting to a JSON object, ``signData`` verifying with the
center's public key over the header and the clear data, and an answer never seen before
(``ReplayGuard``: a bounded memory per process, or Redis shared by every worker). An
answer failing any of these raises ``PrescriptionRefused`` (a ``PermanentError``) naming
the cause, is logged (masked) and is never passed on. Errors mapped here:

    timeout                                 -> PartnerTimeout
    connection errors, 5xx, 408, 429        -> PartnerUnavailable   (retried, then DLQ)
    other 4xx                               -> ClientError
    an answer that fails verification       -> PrescriptionRefused  (not retried)
    code != 0 (and not ``NOT_FOUND_CODE``)  -> BusinessRejected     (the center's code, text)

Keys come from ``settings.prescription`` (``prescription_keys``); a development hub
without them generates a set once into ``dev_keys_file``, which ``main.py simulate``'s
center reads too; any other hub refuses to build the client.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import httpx
from pydantic import SecretStr, ValidationError

from adapters.http import bounded_client
from adapters.prescription.crypto import SmCrypto, SmKeyError, sm2_generate, sm4_key_generate
from adapters.prescription.port import RxDrug, RxStatus
from config.prescription import PrescriptionSettings
from config.settings import ConfigError, HubSettings, env_name
from contracts.clock import BEIJING
from contracts.errors import (
    BusinessRejected,
    ClientError,
    PartnerTimeout,
    PartnerUnavailable,
    field_errors,
)
from contracts.masking import mask_text
from contracts.prescription import (
    BASE_PATH,
    HOSP_RX_DETL_QUERY,
    MODELS,
    NOT_FOUND_CODE,
    OK_CODE,
    PATHS,
    RX_CHK_INFO_QUERY,
    RX_SETL_INFO_QUERY,
    HospRxDetlQueryIn,
    Opened,
    PrescriptionRefused,
    RxBody,
    RxChkInfo,
    RxChkInfoQueryIn,
    RxDetail,
    RxSetlInfo,
    RxSetlInfoQueryIn,
    invalid_reason,
    open_envelope,
    seal,
)

if TYPE_CHECKING:
    from adapters.prescription.port import PrescriptionPort

__all__ = ["PARTNER", "MemoryReplayGuard", "PrescriptionClient", "PrescriptionKeys",
           "RedisReplayGuard", "ReplayGuard", "build_prescription_client", "dev_keys",
           "generate_keys", "prescription_keys", "with_keys"]

PARTNER = "prescription"
log = logging.getLogger("hub.prescription")
_Out = TypeVar("_Out", bound=RxBody)


@dataclass(frozen=True)
class PrescriptionKeys:
    """One side's keys: its own SM2 pair, the peer's public key, the shared SM4 key and
    appId/appSecret. ``repr`` shows no secret."""

    app_id: str
    app_secret: str
    sm4_key: str
    private_key: str
    public_key: str
    peer_public_key: str

    def __repr__(self) -> str:
        return f"PrescriptionKeys(app_id={self.app_id!r}, public_key={self.public_key[:12]}...)"

    def crypto(self) -> SmCrypto:
        return SmCrypto(private_key=self.private_key, public_key=self.public_key,
                        peer_public_key=self.peer_public_key, sm4_key=self.sm4_key)


def generate_keys(app_id: str = "nj-hub-dev") -> tuple[PrescriptionKeys, PrescriptionKeys]:
    """A fresh matching set: (the hub's side, the center's side). Tests and development."""
    hub_private, hub_public = sm2_generate()
    center_private, center_public = sm2_generate()
    secret, sm4 = os.urandom(16).hex(), sm4_key_generate()
    return (PrescriptionKeys(app_id, secret, sm4, hub_private, hub_public, center_public),
            PrescriptionKeys(app_id, secret, sm4, center_private, center_public, hub_public))


def dev_keys(path: str | Path) -> tuple[PrescriptionKeys, PrescriptionKeys]:
    """The development set in ``path``, generated there (mode 0600) the first time, so a
    development hub and ``main.py simulate``'s center agree. Development mode only."""
    file = Path(path)
    if file.exists():
        saved = json.loads(file.read_text(encoding="utf-8"))
        return PrescriptionKeys(**saved["hub"]), PrescriptionKeys(**saved["center"])
    hub, center = generate_keys()
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"hub": asdict(hub), "center": asdict(center)}), encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(file)
    return hub, center


_KEY_SETTINGS = ("app_id", "app_secret", "sm4_key", "hub_private_key", "hub_public_key",
                 "center_public_key")


def _value(p: PrescriptionSettings, name: str) -> str:
    v = getattr(p, name)
    return v.get_secret_value() if isinstance(v, SecretStr) else str(v)


def prescription_keys(settings: HubSettings) -> PrescriptionKeys:
    """The hub's side of the envelope keys from ``settings.prescription``.

    All six set: those (checked: a private key not matching its public key is refused).
    None set: in development mode the generated development set (``dev_keys``), else
    ``ConfigError``. Some set: ``ConfigError`` naming the missing ones (a half-configured
    key set is a mistake in any mode)."""
    p = settings.prescription
    missing = [n for n in _KEY_SETTINGS if not _value(p, n).strip()]
    if len(missing) == len(_KEY_SETTINGS) and settings.env == "development":
        keys = dev_keys(p.dev_keys_file)[0]
    elif missing:
        why = ("" if settings.env == "development" else
               f" (HUB_ENV is {settings.env!r}: development keys are generated only in "
               "development mode)")
        raise ConfigError("the prescription center's keys are not set" + why + ":\n  "
                          + "\n  ".join(f"setting prescription.{n} "
                                        f"({env_name('prescription.' + n)})" for n in missing))
    else:
        keys = PrescriptionKeys(p.app_id, _value(p, "app_secret"), _value(p, "sm4_key"),
                                _value(p, "hub_private_key"), p.hub_public_key,
                                p.center_public_key)
    try:
        keys.crypto()
    except SmKeyError as exc:
        raise ConfigError(f"setting prescription: {exc}") from None
    return keys


def with_keys(p: PrescriptionSettings, hub: PrescriptionKeys) -> PrescriptionSettings:
    """``p`` carrying the hub's side of a key set (tests, the harness)."""
    return p.model_copy(update={
        "app_id": hub.app_id, "app_secret": SecretStr(hub.app_secret),
        "sm4_key": SecretStr(hub.sm4_key), "hub_private_key": SecretStr(hub.private_key),
        "hub_public_key": hub.public_key, "center_public_key": hub.peer_public_key})


# -- replay memory ----------------------------------------------------------------------------

class ReplayGuard(Protocol):
    async def first_time(self, key: str, ttl_s: int) -> bool:
        """True the first time ``key`` is offered within ``ttl_s``; remembers it."""
        ...


class MemoryReplayGuard:
    """Per process, at most ``size`` answers (the oldest forgotten first; each kept at
    least until its timestamp leaves the window, unless more than ``size`` arrive within
    it)."""

    def __init__(self, size: int = 100_000, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._size = size
        self._clock = clock

    async def first_time(self, key: str, ttl_s: int) -> bool:
        now = self._clock()
        while self._seen and next(iter(self._seen.values())) <= now:
            self._seen.popitem(last=False)
        if key in self._seen:
            return False
        self._seen[key] = now + ttl_s
        while len(self._seen) > self._size:
            self._seen.popitem(last=False)
        return True


class _RedisSet(Protocol):
    async def set(self, name: str, value: str, *, ex: int, nx: bool) -> Any: ...


class RedisReplayGuard:
    """Shared by every hub process: ``SET NX EX`` per answer."""

    def __init__(self, redis: _RedisSet, prefix: str = "hub:rx:seen:") -> None:
        self._redis = redis
        self._prefix = prefix

    async def first_time(self, key: str, ttl_s: int) -> bool:
        return bool(await self._redis.set(self._prefix + key, "1", ex=ttl_s, nx=True))


# -- the client ------------------------------------------------------------------------------

class PrescriptionClient:
    """The center's eight paths (``call``), the three queries typed, and the port."""

    def __init__(self, *, endpoint: str, keys: PrescriptionKeys, fixmedins_code: str,
                 timeout_s: float = 5.0, max_skew_s: int = 300,
                 replay: ReplayGuard | None = None, replay_memory: int = 100_000,
                 transport: httpx.AsyncBaseTransport | None = None,
                 clock: Callable[[], float] = time.time, partner: str = PARTNER) -> None:
        self._base = endpoint.rstrip("/") + BASE_PATH
        self._keys = keys
        self._crypto = keys.crypto()
        self._fixmedins = fixmedins_code
        self._timeout = timeout_s
        self._skew = max_skew_s
        self._replay = replay or MemoryReplayGuard(replay_memory)
        self._clock = clock
        self._partner = partner
        self._http = bounded_client(limit=64, timeout=httpx.Timeout(timeout_s),
                                    transport=transport)
        self.refused = 0
        """Answers refused since start (health pages, tests)."""

    async def call(self, path: str, body: RxBody) -> Opened:
        """One exchange on ``path``, verified. Answers code 0 or ``NOT_FOUND_CODE``; any
        other code raises ``BusinessRejected``."""
        if path not in PATHS:
            raise ClientError(f"unknown prescription center path {path!r}",
                              partner=self._partner)
        if not isinstance(body, MODELS[path][0]):
            raise ClientError(f"{path} takes {MODELS[path][0].__name__}, not "
                              f"{type(body).__name__}", partner=self._partner)
        envelope = seal(body.wire(), app_id=self._keys.app_id,
                        app_secret=self._keys.app_secret, timestamp=int(self._clock()),
                        crypto=self._crypto)
        answer = await self._post(path, envelope)
        try:
            opened = open_envelope(answer, app_id=self._keys.app_id,
                                   app_secret=self._keys.app_secret, crypto=self._crypto,
                                   now_s=int(self._clock()), max_skew_s=self._skew)
            if not await self._replay.first_time(f"{opened.timestamp}:{opened.sign_data}",
                                                 2 * self._skew + 1):
                raise PrescriptionRefused("replay", f"an answer with timestamp "
                                          f"{opened.timestamp} and this signature was "
                                          "received before")
        except PrescriptionRefused as exc:
            self._refuse(path, exc)
            raise
        if opened.code not in (OK_CODE, NOT_FOUND_CODE):
            raise BusinessRejected(str(opened.code), opened.message or "no message",
                                   partner=self._partner)
        return opened

    async def _post(self, path: str, envelope: dict[str, Any]) -> Any:
        url = f"{self._base}/{path}"
        try:
            r = await self._http.post(url, json=envelope, timeout=self._timeout)
        except httpx.TimeoutException as exc:
            raise PartnerTimeout(f"prescription center did not answer {path} within "
                                 f"{self._timeout:g}s", partner=self._partner) from exc
        except httpx.HTTPError as exc:
            raise PartnerUnavailable(f"prescription center unreachable: {type(exc).__name__}: "
                                     f"{exc}", partner=self._partner) from exc
        if r.status_code >= 500 or r.status_code in (408, 429):
            raise PartnerUnavailable(f"prescription center answered {path} with HTTP "
                                     f"{r.status_code}", partner=self._partner)
        if r.status_code >= 300:
            raise ClientError(f"prescription center refused {path}: HTTP {r.status_code} "
                              f"{mask_text(r.text[:200])}", partner=self._partner)
        try:
            return r.json()
        except ValueError:
            refused = PrescriptionRefused("envelope", "the answer is not JSON")
            self._refuse(path, refused)
            raise refused from None

    def _refuse(self, path: str, exc: PrescriptionRefused) -> None:
        self.refused += 1
        log.warning("prescription center: %s answer refused (%s): %s", path, exc.cause,
                    mask_text(exc.reason))

    def _data(self, path: str, opened: Opened, model: type[_Out], hi_rxno: str) -> _Out:
        try:
            out = model.model_validate(opened.data or {})
        except ValidationError as exc:
            field, why = field_errors(exc, first_only=True)[0]
            refused = PrescriptionRefused("data", f"{path} answer: {field}: {why}")
            self._refuse(path, refused)
            raise refused from None
        asked = getattr(out, "hi_rxno", hi_rxno)
        if asked != hi_rxno:
            refused = PrescriptionRefused("mismatch", f"asked about {hi_rxno}, the answer is "
                                          f"about {asked}")
            self._refuse(path, refused)
            raise refused
        return out

    def _query(self, model: type[RxBody], hi_rxno: str, rx_trace_code: str,
               fixmedins_code: str, psn_name: str, certno: str) -> RxBody:
        fields: dict[str, Any] = {"fixmedins_code": fixmedins_code or self._fixmedins,
                                  "hi_rxno": hi_rxno}
        if rx_trace_code:
            fields["rx_trace_code"] = rx_trace_code
        if certno:
            fields |= {"certno": certno, "psn_cert_type": "01"}
        if psn_name:
            fields["psn_name"] = psn_name
        try:
            return model(**fields)
        except ValidationError as exc:
            raise ClientError("; ".join(f"{f}: {r}" for f, r in field_errors(exc)),
                              partner=self._partner) from None

    async def detail(self, hi_rxno: str, *, rx_trace_code: str = "", fixmedins_code: str = "",
                     psn_name: str = "", certno: str = "") -> RxDetail | None:
        """``hospRxDetlQuery``: the prescription, or None when the center does not hold it."""
        opened = await self.call(HOSP_RX_DETL_QUERY, self._query(
            HospRxDetlQueryIn, hi_rxno, rx_trace_code, fixmedins_code, psn_name, certno))
        if opened.code == NOT_FOUND_CODE:
            return None
        return self._data(HOSP_RX_DETL_QUERY, opened, RxDetail, hi_rxno)

    async def review(self, hi_rxno: str, *, fixmedins_code: str = "") -> RxChkInfo | None:
        """``rxChkInfoQuery``: the pharmacist's review, or None when not held."""
        opened = await self.call(RX_CHK_INFO_QUERY, self._query(
            RxChkInfoQueryIn, hi_rxno, "", fixmedins_code, "", ""))
        if opened.code == NOT_FOUND_CODE:
            return None
        return self._data(RX_CHK_INFO_QUERY, opened, RxChkInfo, hi_rxno)

    async def dispensing(self, hi_rxno: str, *, fixmedins_code: str = "") -> RxSetlInfo | None:
        """``rxSetlInfoQuery``: whether and where it was dispensed, or None when not held."""
        opened = await self.call(RX_SETL_INFO_QUERY, self._query(
            RxSetlInfoQueryIn, hi_rxno, "", fixmedins_code, "", ""))
        if opened.code == NOT_FOUND_CODE:
            return None
        return self._data(RX_SETL_INFO_QUERY, opened, RxSetlInfo, hi_rxno)

    async def query_prescription(self, hi_rxno: str, *, rx_trace_code: str = "",
                                 fixmedins_code: str = "") -> RxStatus:
        detail = await self.detail(hi_rxno, rx_trace_code=rx_trace_code,
                                   fixmedins_code=fixmedins_code)
        if detail is None:
            return RxStatus(hi_rxno=hi_rxno, found=False, valid=False, reason="not found")
        now = datetime.fromtimestamp(self._clock(), BEIJING)
        reason = invalid_reason(detail, now)
        return RxStatus(
            hi_rxno=detail.hi_rxno, found=True, valid=not reason, reason=reason,
            id_number=detail.certno, patient_name=detail.psn_name,
            expires_at=detail.expires_at,
            drugs=tuple(RxDrug(med_list_codg=d.med_list_codg, name=d.drug_genname,
                               quantity=d.drug_totlcnt, unit=d.drug_totlcnt_emp)
                        for d in detail.rxdrugdetail))

    async def aclose(self) -> None:
        await self._http.aclose()


def build_prescription_client(settings: HubSettings, *,
                              transport: httpx.AsyncBaseTransport | None = None,
                              replay: ReplayGuard | None = None,
                              clock: Callable[[], float] = time.time) -> PrescriptionClient:
    """The client as ``settings`` say (``partners.prescription``, ``prescription``);
    ``ConfigError`` when the center or its keys are not configured."""
    partner = settings.partners.get(PARTNER)
    if partner is None:
        raise ConfigError("setting partners.prescription: the prescription center is not "
                          "configured")
    p = settings.prescription
    return PrescriptionClient(endpoint=partner.endpoint, keys=prescription_keys(settings),
                              fixmedins_code=p.fixmedins_code, timeout_s=partner.timeout_s,
                              max_skew_s=p.max_skew_s, replay=replay,
                              replay_memory=p.replay_memory, transport=transport, clock=clock)


if TYPE_CHECKING:
    _conforms: type[PrescriptionPort] = PrescriptionClient

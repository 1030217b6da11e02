"""F13's doors' work: decode, settle by voucher, the channels' queries and business, the
省级凭证库 upload and the 医税平台 records (``api.voucher`` is the HTTP around it).

Settlement (接口三/四/五), in this order, nothing stored before the last check:
a request seen before (same institution + ``setl_req_no``) answers what it came to
(a repeat publishes again while still queued: the lane's idempotency makes that one
effect); else the voucher must verify (forged, expired), be the named person's
(other_person), and be unspent: ``VoucherStore.claim`` spends it and records the request
in one transaction (replayed). Then the settlement goes to core on the ``core.voucher``
lane; the institution reads the result with ``GET``.

Every answer is masked (ID numbers, names, phones, addresses), except the decode answer
for a partner in ``voucher.full_view_partners``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from adapters.voucher.port import RateLimiter, VoucherPort
from config.voucher import VoucherSettings
from contracts.clock import now_beijing
from contracts.envelope import canonical_json
from contracts.errors import PermanentError, TransientError
from contracts.masking import mask_id, mask_name, mask_value
from contracts.voucher import (
    CORE,
    QUERIES,
    MedtaxRecord,
    PersonInfo,
    SettlementRequest,
    SignatureCheck,
    VoucherClaims,
    VoucherError,
    check_holder,
    kiosk_message,
    medtax_message,
    read_qr,
    refusals,
    request_key,
    settle_message,
    token_digest,
    upload_message,
    verify_qr,
)
from kernel.deps import Publisher
from storage.voucher import VoucherStore, masked

__all__ = ["Answer", "VoucherDesk", "VoucherKit"]

log = logging.getLogger("hub.voucher")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class VoucherKit:
    """F13's parts, built once (``bootstrap.wiring``): the lanes use ``store`` and
    ``partners``; the doors all of it."""

    store: VoucherStore
    partners: VoucherPort
    limiter: RateLimiter
    check: SignatureCheck
    settings: VoucherSettings


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def _refused(status: int, errors: Sequence[tuple[str, str]], code: str = "INVALID",
             **extra: Any) -> Answer:
    return Answer(status, {"accepted": False, "code": code, **extra,
                           "refused": [{"field": f, "reason": r} for f, r in errors]})


def _voucher_refused(exc: VoucherError) -> Answer:
    return _refused(422, exc.errors, "VOUCHER_REFUSED", cause=exc.cause)


def _digest(model: BaseModel) -> str:
    return hashlib.sha256(canonical_json(model.model_dump(mode="json")).encode()).hexdigest()


def masked_claims(claims: VoucherClaims, full: bool = False) -> dict[str, Any]:
    """The voucher as an answer shows it: never the token itself."""
    w = claims.wire()
    w["ecToken"] = w["ecToken"][:4] + "****" + w["ecToken"][-4:]
    if not full:
        w["idNo"], w["userName"] = mask_id(w["idNo"]), mask_name(w["userName"])
    return w


@dataclass
class VoucherDesk:
    kit: VoucherKit
    publisher: Publisher
    clock: Callable[[], datetime] = now_beijing

    def verify(self, qr: str) -> VoucherClaims:
        return verify_qr(qr, self.kit.check, self.clock(), skew_s=self.kit.settings.skew_s)

    async def _core(self, infno: str, data: dict[str, Any], insuplc: str = "320100"
                    ) -> dict[str, Any] | Answer:
        try:
            return await self.kit.partners.call(CORE, infno, {"data": data},
                                                insuplc_admdvs=insuplc)
        except TransientError as exc:
            return _refused(503, [("core", exc.public_text)], "UNAVAILABLE")
        except PermanentError as exc:
            return _refused(422, [("core", f"{exc.public_code}: {exc.public_text}")],
                            "REJECTED")

    # ------------------------------------------------------------ 接口一/二

    async def decode(self, qr: str, *, full_view: bool) -> Answer:
        """解码 and 参保地个人信息 (1101 with 凭证类型 01)."""
        try:
            claims = self.verify(qr)
        except VoucherError as exc:
            return _voucher_refused(exc)
        got = await self._core(QUERIES["person"], {
            "mdtrt_cert_type": "01", "mdtrt_cert_no": claims.ec_token, "psn_cert_type": "01",
            "certno": claims.id_no}, claims.insuplc_admdvs)
        if isinstance(got, Answer):
            return got
        return Answer(200, {"voucher": masked_claims(claims, full_view),
                            "person": got if full_view else mask_value(got)})

    # ------------------------------------------------------------ 接口三/四/五

    async def settle(self, req: SettlementRequest) -> Answer:
        key = request_key(req.fixmedins_code, req.setl_req_no)
        digest = _digest(req)
        known = await self.kit.store.get(key)
        if known is None:
            try:
                claims = self.verify(req.ec_qr)
                check_holder(claims, req.psn_cert_no)
            except VoucherError as exc:
                return _voucher_refused(exc)
            claim = await self.kit.store.claim(
                key, kind=req.kind, caller=req.fixmedins_code, id_number=req.psn_cert_no,
                digest=digest, amount=f"{req.medfee_sumamt:.2f}",
                token=token_digest(claims.ec_token))
            if claim.outcome == "replayed":
                return _voucher_refused(VoucherError(
                    "replayed", "ec_qr", "this voucher was already used for a settlement; "
                    "each voucher pays once"))
            known = claim.request
            if claim.outcome == "new":
                await self.publisher.publish(settle_message(req, claims))
                return Answer(202, {"accepted": True, "key": key, "status": "queued"})
        assert known is not None
        if known["digest"] != digest:
            return _refused(409, [("setl_req_no", "already used for another settlement by "
                                   "this institution")], "CONFLICT")
        if known["status"] == "queued":  # a repeat while in flight: published again, one effect
            # the same content as the request that passed every check: its voucher's claims
            await self.publisher.publish(settle_message(req, read_qr(req.ec_qr)[0]))
        return Answer(200 if known["status"] != "queued" else 202,
                      {"accepted": True, "repeat": True, **masked(known)})

    async def request(self, key: str) -> Answer:
        known = await self.kit.store.get(key)
        if known is None:
            return _refused(404, [("key", "no such request")], "NOT_FOUND")
        return Answer(200, masked(known))

    # ------------------------------------------------------------ channels (seed 28, 33)

    async def limited(self, channel: str, caller: str) -> Answer | None:
        """The 429 when ``caller`` used its minute; None when it may go on."""
        cfg = self.kit.settings
        limit = cfg.kiosk_per_minute if channel == "kiosk" else cfg.wechat_per_minute
        ok, retry_after = await self.kit.limiter.hit(channel, caller, limit)
        if ok:
            return None
        return Answer(429, {"accepted": False, "code": "RATE_LIMITED", "refused": [
            {"field": "X-Partner", "reason": f"{caller} made more than {limit} calls this "
                                             "minute"}]}, {"Retry-After": str(retry_after)})

    async def query(self, name: str, certno: str, year: int | None) -> Answer:
        data: dict[str, Any] = {"certno": certno}
        if year is not None:
            data["year"] = year
        got = await self._core(QUERIES[name], data)
        if isinstance(got, Answer):
            return got
        return Answer(200, {"query": name, "result": mask_value(got)})

    async def business(self, name: str, device: str, ref: str, body: BaseModel) -> Answer:
        key = request_key(device, ref)
        claim = await self.kit.store.claim(key, kind=name, caller=device,
                                           id_number=str(getattr(body, "certno", "")),
                                           digest=_digest(body))
        if claim.outcome == "conflict":
            return _refused(409, [("ref", "already used for another request by this "
                                   "device")], "CONFLICT")
        if claim.outcome == "new" or (claim.request or {}).get("status") == "queued":
            await self.publisher.publish(kiosk_message(name, device, ref, body))
        if claim.outcome == "new":
            return Answer(202, {"accepted": True, "key": key, "status": "queued"})
        return Answer(200, {"accepted": True, "repeat": True, **masked(claim.request or {})})

    # ------------------------------------------------------------ core's pushes

    async def upload(self, items: Sequence[Any]) -> Answer:
        """参保人员基本信息 to the 省级凭证库: all checked first, all published or none."""
        people, errors = self._all(PersonInfo, items)
        if errors:
            return _refused(422, errors)
        for p in people:
            await self.publisher.publish(upload_message(p))
        return Answer(202, {"accepted": True, "queued": len(people)})

    async def medtax(self, items: Sequence[Any]) -> Answer:
        """医税平台 records: 310/510/390 only; any refused refuses the whole batch."""
        records, errors = self._all(MedtaxRecord, items)
        if errors:
            return _refused(422, errors)
        for r in records:
            await self.publisher.publish(medtax_message(r))
        return Answer(202, {"accepted": True, "queued": len(records)})

    @staticmethod
    def _all(model: type[M], items: Sequence[Any]) -> tuple[list[M], list[tuple[str, str]]]:
        good: list[M] = []
        errors: list[tuple[str, str]] = []
        for i, item in enumerate(items):
            try:
                good.append(model.model_validate(item))
            except ValidationError as exc:
                errors += [(f"records[{i}].{f}", r) for f, r in refusals(exc)]
        return good, errors

"""F13 lanes (seed 001 lines 37, 79, 89-97): each one call to a partner, retried, DLQ.

    core.voucher      结算 by voucher (2207 门诊, 2304 出院, 2102 药店) and the kiosk's
                      business (V2101-V2103) to core; the request's row is ``done`` with
                      core's answer, or ``rejected``/``dead`` with the reason
    voucher.library   参保人员基本信息 to the 省级凭证库 (V1001), in real time
    voucher.medtax    a 职工医疗/职工生育/居民医疗 record to the 医税平台 (V3101)

Every call carries the message's partner serial: a partner that sees it again answers
its first answer, so a redelivery (or an institution's repeat) is one effect there.
"""

from __future__ import annotations

from typing import Any, Final, Literal, Protocol

from adapters.voucher.port import VoucherPort
from contracts.envelope import HubMessage
from contracts.errors import ClientError, HubError, PermanentError
from contracts.messages import partner_serial
from contracts.voucher import (
    CORE,
    KIOSK_TYPE,
    LIBRARY,
    MEDTAX,
    MEDTAX_TYPE,
    SETTLE_TYPE,
    UPLOAD_TYPE,
)
from kernel.runtime import Outcome, Route
from storage.journal import TxnUpdate

__all__ = ["CORE_LANE", "LIBRARY_LANE", "MEDTAX_LANE", "VOUCHER_ROUTES", "VoucherLaneDeps",
           "VoucherParts", "VoucherRecords"]

CORE_LANE: Final = "core.voucher"
LIBRARY_LANE: Final = "voucher.library"
MEDTAX_LANE: Final = "voucher.medtax"


class VoucherRecords(Protocol):
    """The part of ``storage.voucher.VoucherStore`` the lanes use."""

    async def finish(self, key: str, status: Literal["done", "rejected", "dead"], *,
                     result: dict[str, Any] | None = None, field: str = "",
                     reason: str = "") -> bool: ...


class VoucherParts(Protocol):
    @property
    def store(self) -> VoucherRecords: ...
    @property
    def partners(self) -> VoucherPort: ...


class VoucherLaneDeps(Protocol):
    @property
    def voucher(self) -> VoucherParts | None: ...


def _parts(deps: VoucherLaneDeps, partner: str) -> VoucherParts:
    if deps.voucher is None:
        raise ClientError("this hub has no F13 parts", partner=partner)
    return deps.voucher


def _txn(msg: HubMessage, status: str, exc: HubError | None = None) -> TxnUpdate:
    return TxnUpdate(msg.correlation_id, msg.type, str(msg.payload.get("key") or "-"),
                     msg.source, status, exc.public_code if exc else "",
                     exc.public_text if exc else "", attempts=msg.attempt + 1)


async def _call(msg: HubMessage, deps: VoucherLaneDeps, partner: str) -> dict[str, Any]:
    p = msg.payload
    return await _parts(deps, partner).partners.call(
        partner, str(p["infno"]), dict(p["input"]), serial=partner_serial(msg),
        insuplc_admdvs=str(p.get("insuplc_admdvs") or "320100"))


async def to_core(msg: HubMessage, deps: VoucherLaneDeps) -> Outcome:
    """A settlement or kiosk business to core; its row ``done`` with core's answer."""
    out = await _call(msg, deps, CORE)
    await _parts(deps, CORE).store.finish(str(msg.payload["key"]), "done", result=out)
    return Outcome(txn=_txn(msg, "delivered"),
                   detail={"key": msg.payload["key"], "kind": msg.payload.get("kind")})


async def core_failed(msg: HubMessage, exc: HubError, deps: VoucherLaneDeps) -> Outcome:
    """Core refused it, or it was given up on: the row says so, with the reason."""
    permanent = isinstance(exc, PermanentError)
    if deps.voucher is not None:
        await deps.voucher.store.finish(str(msg.payload.get("key") or ""),
                                        "rejected" if permanent else "dead",
                                        field=CORE, reason=f"{exc.public_code}: "
                                                           f"{exc.public_text}")
    return Outcome(txn=_txn(msg, "rejected" if permanent else "dead", exc))


async def to_library(msg: HubMessage, deps: VoucherLaneDeps) -> Outcome:
    await _call(msg, deps, LIBRARY)
    return Outcome(txn=_txn(msg, "delivered"), detail={"key": msg.payload["key"]})


async def to_medtax(msg: HubMessage, deps: VoucherLaneDeps) -> Outcome:
    await _call(msg, deps, MEDTAX)
    return Outcome(txn=_txn(msg, "delivered"), detail={"key": msg.payload["key"]})


CORE_ROUTE: Final = Route(CORE_LANE, (SETTLE_TYPE, KIOSK_TYPE), CORE, to_core, core_failed)
LIBRARY_ROUTE: Final = Route(LIBRARY_LANE, (UPLOAD_TYPE,), LIBRARY, to_library)
MEDTAX_ROUTE: Final = Route(MEDTAX_LANE, (MEDTAX_TYPE,), MEDTAX, to_medtax)
VOUCHER_ROUTES: Final[tuple[Route, ...]] = (CORE_ROUTE, LIBRARY_ROUTE, MEDTAX_ROUTE)

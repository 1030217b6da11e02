"""``LedgerPort`` / ``InstitutionsPort`` over HTTP: the national envelope, signed by the hub.

The institutions' HIS sit behind one gateway (``partners.institutions.endpoint``): the
door of institution ``code`` is ``<endpoint>/<code>/national``. The core's settlement
ledger is ``partners.core_ledger.endpoint``. Each request is a ``NationalRequest``
signed as ``hub`` with the partner's secret (``X-Partner-*``, ``contracts.signing``).
Errors are mapped here, at the boundary:

    timeout                                     -> PartnerTimeout
    connection errors, 5xx, 408, 429            -> PartnerUnavailable   (retried, then DLQ)
    an answer that is not the envelope / totals -> PartnerUnavailable
    other 4xx                                   -> ClientError          (not retried)
    infcode -1                                  -> BusinessRejected(output.err_code, err_msg)
"""

from __future__ import annotations

import itertools
from datetime import date
from typing import TYPE_CHECKING, Any

import httpx

from adapters.http import bounded_client
from adapters.national import post_national
from adapters.signing import SignedAuth
from config.settings import PartnerConfig
from contracts.errors import (
    PartnerUnavailable,
    ValidationFailed,
)
from contracts.institution_recon import (
    INFNO_COMPLETE,
    INFNO_DETAIL,
    INFNO_DOWNLOAD,
    INFNO_REVERSE,
    INFNO_TOTALS,
    DayTotals,
    DetailRow,
    decode_file,
    partner_of,
    read_detail_file,
)
from contracts.national import (
    NationalRequest,
    NationalResponse,
    format_inf_time,
    make_msgid,
    now_cst,
)

if TYPE_CHECKING:
    from adapters.institutions.port import InstitutionsPort, LedgerPort

__all__ = ["SIGNER", "InstitutionsClient", "LedgerClient"]

SIGNER = "hub"


class LedgerClient:
    """One side of a reconciliation; ``url_for(code)`` is where ``code``'s calls go."""

    def __init__(self, partner: str, config: PartnerConfig, *, per_institution: bool = False,
                 sender: str = "NJYBHUB00014",
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        make_msgid(sender, now_cst(), 0)  # fail fast on a bad sender code
        self.partner = partner
        self._config = config
        self._per_institution = per_institution
        self._sender = sender
        self._seq = itertools.count()
        self._auth = SignedAuth(SIGNER, config.secret.get_secret_value())
        self._http = bounded_client(limit=16, timeout=httpx.Timeout(config.timeout_s),
                                    transport=transport)

    def url_for(self, code: str) -> str:
        base = self._config.endpoint.rstrip("/")
        return f"{base}/{code}/national" if self._per_institution else base

    async def totals(self, code: str, day: date) -> DayTotals:
        r = await self._call(code, INFNO_TOTALS, {"data": {
            "fixmedins_code": code, "stmt_begndate": day.isoformat(),
            "stmt_enddate": day.isoformat()}})
        try:
            return DayTotals.parse((r.output or {}).get("stmtinfo"), prefix="stmtinfo.")
        except ValidationFailed as exc:
            raise PartnerUnavailable(f"{self.partner} sent bad 3201 totals: {exc.reason}",
                                     partner=self.partner) from exc

    async def detail(self, code: str, day: date) -> list[DetailRow]:
        r = await self._call(code, INFNO_DETAIL, {"data": {
            "fixmedins_code": code, "stmt_begndate": day.isoformat(),
            "stmt_enddate": day.isoformat()}})
        info = (r.output or {}).get("fileinfo")
        if not isinstance(info, dict) or not info.get("file_qury_no"):
            raise PartnerUnavailable(f"{self.partner} answered 3202 without fileinfo",
                                     partner=self.partner)
        got = await self._call(code, INFNO_DOWNLOAD, {"fsDownloadIn": {
            "file_qury_no": info["file_qury_no"], "filename": info.get("filename", ""),
            "fixmedins_code": code}})
        try:
            return read_detail_file(decode_file((got.output or {}).get("file"), "output.file"))
        except ValidationFailed as exc:
            raise PartnerUnavailable(f"{self.partner} sent a bad detail file: {exc.reason}",
                                     partner=self.partner) from exc

    async def reverse(self, code: str, row: dict[str, Any], *, serial: str) -> None:
        await self._call(code, INFNO_REVERSE, {"serial": serial, "data": {
            k: row.get(k) for k in ("setl_id", "mdtrt_id", "psn_no")}})

    async def complete(self, code: str, row: dict[str, Any], *, serial: str) -> None:
        await self._call(code, INFNO_COMPLETE, {"serial": serial, "data": dict(row)})

    async def aclose(self) -> None:
        await self._http.aclose()

    def _request(self, code: str, infno: str, input: dict[str, Any]) -> NationalRequest:
        now = now_cst()
        return NationalRequest(infno=infno, msgid=make_msgid(self._sender, now,
                                                             next(self._seq) % 10000),
                               recer_sys_code=code[:10], opter="hub", opter_name="集成平台",
                               inf_time=format_inf_time(now), fixmedins_code=code, input=input)

    async def _call(self, code: str, infno: str, input: dict[str, Any]) -> NationalResponse:
        request = self._request(code, infno, input)
        t, who = self._config.timeout_s, f"{self.partner} ({code})"
        # Behind the gateway each HIS fails on its own: its failures are counted against
        # ``inst_<code>``, so one institution down does not open the lane's breaker (the
        # runtime counts a failure against the partner the error names) and rest the rest.
        blamed = partner_of(code) if self._per_institution else self.partner
        return await post_national(
            self._http, self.url_for(code), who=who, infno=infno, partner=blamed,
            reject_code="RECON", timeout_s=t, msgid=request.msgid, json=request.to_wire(),
            auth=self._auth)


class InstitutionsClient(LedgerClient):
    """The institutions' HIS behind the gateway (``partners.institutions``)."""

    def __init__(self, config: PartnerConfig, **kw: Any) -> None:
        super().__init__("institutions", config, per_institution=True, **kw)


if TYPE_CHECKING:
    _ledger: type[LedgerPort] = LedgerClient
    _institutions: type[InstitutionsPort] = InstitutionsClient

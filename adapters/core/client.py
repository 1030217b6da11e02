"""CorePort over HTTP: the national envelope as JSON, posted to core's hub endpoint.

This is the only module of the core adapter that imports httpx. It maps httpx
errors and core's answers to ``contracts.errors`` here, at the boundary:

    httpx.TimeoutException              -> PartnerTimeout
    other transport errors, 5xx, 429    -> PartnerUnavailable
    an answer that is not the envelope  -> PartnerUnavailable (core is misbehaving; retry)
    other 4xx                           -> ClientError
    infcode -1                          -> BusinessRejected(output.err_code or "CORE", err_msg)
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from datetime import date
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

import httpx
from pydantic import ValidationError

from adapters.core.translate import (
    INFNO_APPLICATION,
    INFNO_ARRIVALS,
    INFNO_DIFFICULTY,
    INFNO_DRUG_CATALOGUE,
    INFNO_DRUG_ELIGIBILITY,
    INFNO_EMPLOYEE_QUERY,
    INFNO_EXPENSES,
    INFNO_INSTITUTIONS,
    INFNO_RECORD_QUERY,
    INFNO_SELF_PAID,
    INFNO_SETTLEMENTS,
    INFNO_SNAPSHOT,
    INFNO_SYNC_STATUS,
    INFNO_TRANSFER_CHECK,
    INFNO_TRANSFER_RESULT,
    NOT_FOUND,
    PAGE_SIZE_MAX,
    RECORD_OPS,
    difficulty_to_input,
    drug_catalogue_from_output,
    drug_eligibility_from_output,
    employee_query_input,
    event_to_enrollment,
    institutions_from_output,
    self_paid_from_output,
    settlements_from_output,
    sync_status_to_input,
)
from adapters.http import bounded_client
from contracts.assistance import Institution, Settlement, Totals
from contracts.channels import TransferDestination
from contracts.drugs import CatalogueDrug, Eligibility
from contracts.employee import EmployeeEnrollment, SyncStatusUpdate
from contracts.errors import (
    BusinessRejected,
    ClientError,
    PartnerTimeout,
    PartnerUnavailable,
    ValidationFailed,
)
from contracts.finance import INFNO_STATUS as INFNO_REFUND_STATUS
from contracts.national import (
    NationalRequest,
    NationalResponse,
    format_inf_time,
    make_msgid,
    now_cst,
)
from contracts.returnfile import ReturnRecord
from contracts.taxcat import canonical_to_core, core_to_canonical, op_for_infno
from contracts.transfer import core_input
from contracts.warnings import SelfPaid

if TYPE_CHECKING:
    from adapters.core.port import AssistanceCorePort, CorePort

__all__ = ["HUB_PATH", "CoreClient"]

PARTNER = "core"
HUB_PATH = "/fsi/api/hub"
_RECEIVER = "NJYBCORE"


PAGE_SIZE: Final = 2_000
"""Rows per page of core's list queries (H1105, H1107, H4004, H6102)."""
MAX_PAGES: Final = 100_000
"""A core that keeps answering full pages past this is misbehaving (200 million rows)."""


class CoreClient:
    """Talks to core (医保核心业务系统). It receives its transport so tests can swap the I/O.

    msgids are ``sender`` + time + a per-client sequence (mod 10000), so they are
    unique for up to 10000 calls per second per client. Replicas must use
    distinct ``sender`` codes.
    """

    def __init__(self, base_url: str, *, timeout: float, sender: str = "NJYBHUB00001",
                 transport: httpx.AsyncBaseTransport | None = None,
                 page_size: int = PAGE_SIZE) -> None:
        make_msgid(sender, now_cst(), 0)  # fail fast on a bad sender code
        if not 1 <= page_size <= PAGE_SIZE_MAX:
            raise ValueError(f"page_size {page_size} is outside 1..{PAGE_SIZE_MAX}")
        self._page_size = page_size
        self._sender = sender
        self._timeout = timeout
        self._seq = itertools.count()
        self._http = bounded_client(limit=100, timeout=timeout, transport=transport,
                                    base_url=base_url.rstrip("/"))

    async def update_sync_status(self, update: SyncStatusUpdate, *, serial: str) -> None:
        """H9201. Core deduplicates on ``serial``, so a retry after a timeout is safe."""
        if not serial:
            raise ValidationFailed([("serial", "required")], partner=PARTNER)
        await self._call(INFNO_SYNC_STATUS, {**sync_status_to_input(update), "serial": serial})

    async def get_employee(self, id_number: str,
                           unit_credit_code: str) -> EmployeeEnrollment | None:
        """H1102. Returns None when core has no such record (infcode -1 with ``NOT_FOUND``)."""
        try:
            response = await self._call(INFNO_EMPLOYEE_QUERY,
                                        employee_query_input(id_number, unit_credit_code))
        except BusinessRejected as exc:
            if exc.reason_code == NOT_FOUND:
                return None
            raise
        if not response.output or not isinstance(response.output.get("data"), dict):
            raise PartnerUnavailable("core answered H1102 without output.data", partner=PARTNER)
        return event_to_enrollment(response.output)

    async def deliver(self, infno: str, data: dict[str, Any], *, serial: str) -> None:
        """F3 pushes (H300x), in core's field names; core deduplicates on ``serial``."""
        o = op_for_infno(infno)
        if o is None:
            raise ValidationFailed([("infno", f"unknown push {infno}")], partner=PARTNER)
        await self._call(infno, {"data": canonical_to_core(o.wire_fields, data),
                                 "serial": serial})

    async def get_record(self, subject: str, key: dict[str, str]) -> dict[str, Any] | None:
        """H1103: core's current record of a unit, flexible worker or resident (canonical)."""
        o = RECORD_OPS.get(subject)
        if o is None:
            raise ValidationFailed([("subject", f"no core record kind {subject!r}")],
                                   partner=PARTNER)
        wire = canonical_to_core(o.wire_fields, key)
        try:
            response = await self._call(INFNO_RECORD_QUERY, {"data": {"subject": subject,
                                                                      **wire}})
        except BusinessRejected as exc:
            if exc.reason_code == NOT_FOUND:
                return None
            raise
        data = (response.output or {}).get("data")
        if not isinstance(data, dict):
            raise PartnerUnavailable("core answered H1103 without output.data", partner=PARTNER)
        record = core_to_canonical(o, data)
        status = (response.output or {}).get("status")
        if isinstance(status, dict) and status.get("pay_stas") in ("1", "2"):
            record["pay_status"] = status["pay_stas"]  # 缴费状态: 1 正常, 2 停保 (单位补发 all)
        return record

    async def query(self, infno: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """H120x: tax's questions to core; records come back in canonical names."""
        o = op_for_infno(infno)
        if o is None or o.kind != "core_query":
            raise ValidationFailed([("infno", f"unknown core query {infno}")], partner=PARTNER)
        response = await self._call(infno, {"data": canonical_to_core(o.wire_fields, params)})
        rows = (response.output or {}).get("records", [])
        by_core = {f.core: f.attr for f in o.reply_fields}
        return [{by_core[k]: v for k, v in row.items() if k in by_core}
                for row in rows if isinstance(row, dict)]

    async def deliver_arrivals(self, batch_id: str, kind: str,
                               records: Sequence[ReturnRecord]) -> None:
        """H3101: one 到账 batch of a return file; a repeat of ``batch_id`` is a replay."""
        await self._call(INFNO_ARRIVALS, {"serial": batch_id, "kind": kind,
                                          "records": [r._asdict() for r in records]})

    async def snapshot_pages(self, kind: str) -> AsyncIterator[list[dict[str, Any]]]:
        """H1105 a page at a time, for a caller that streams core's extract (比对)."""
        async with aclosing(self._iter_pages(INFNO_SNAPSHOT, {"kind": kind})) as pages:
            async for page in pages:
                if not isinstance(page, list):
                    raise PartnerUnavailable("core answered H1105 without output.records",
                                             partner=PARTNER)
                yield [r for r in page if isinstance(r, dict)]

    async def snapshot(self, kind: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        """H1105: every record of ``kind`` core holds (or the first ``limit``), page by page."""
        records = await self._pages(INFNO_SNAPSHOT, {"kind": kind}, limit=limit)
        if not isinstance(records, list):
            raise PartnerUnavailable("core answered H1105 without output.records",
                                     partner=PARTNER)
        return [r for r in records if isinstance(r, dict)]

    async def register_application(self, application: dict[str, Any]) -> str:
        """H2501: core registers the application; a repeat returns the same reference."""
        response = await self._call(INFNO_APPLICATION, {"data": application})
        ref = (response.output or {}).get("core_ref")
        if not isinstance(ref, str) or not ref:
            raise PartnerUnavailable("core answered H2501 without output.core_ref",
                                     partner=PARTNER)
        return ref

    async def check_transfer_destination(self, id_number: str,
                                         target_division: str) -> TransferDestination:
        """H1106: whether the 转入地 holds a normal enrollment and pending 代办 business."""
        response = await self._call(INFNO_TRANSFER_CHECK, {"data": {
            "certno": id_number, "target_admdvs": target_division}})
        data = (response.output or {}).get("data")
        if not isinstance(data, dict) or data.get("insured") not in ("0", "1") \
                or data.get("pending") not in ("0", "1"):
            raise PartnerUnavailable("core answered H1106 without data.insured/pending",
                                     partner=PARTNER)
        return TransferDestination(insured=data["insured"] == "1",
                                   pending_business=data["pending"] == "1",
                                   detail=str(data.get("detail") or "")[:200])

    async def yearly_self_paid(self, year: int, end_month: str) -> list[SelfPaid]:
        """H1107: F8's yearly 个人自付 per person, page by page."""
        records = await self._pages(INFNO_SELF_PAID, {"year": str(year), "end_month": end_month})
        if not isinstance(records, list):
            raise PartnerUnavailable("core answered H1107 without output.records",
                                     partner=PARTNER)
        return self_paid_from_output(records)

    async def sync_difficulty(self, payload: dict[str, Any], *, serial: str) -> None:
        """H4001 (F7): 进入/退出 of an assistance identity; core deduplicates on ``serial``."""
        await self._call(INFNO_DIFFICULTY, difficulty_to_input(payload) | {"serial": serial})

    async def sync_transfer(self, payload: dict[str, Any], *, serial: str) -> None:
        """H4201 (F9): a transfer's status change; core deduplicates on ``serial``."""
        if not serial:
            raise ValidationFailed([("serial", "required")], partner=PARTNER)
        await self._call(INFNO_TRANSFER_RESULT, core_input(payload, serial=serial))

    async def drug_eligibility(self, id_number: str) -> Eligibility:
        """H6101 (F11 医保资格): a question; nothing changes at core."""
        response = await self._call(INFNO_DRUG_ELIGIBILITY, {"data": {"certno": id_number}})
        try:
            return Eligibility(**drug_eligibility_from_output(response.output))
        except ValidationFailed as exc:
            raise PartnerUnavailable(exc.reason, partner=PARTNER) from None

    async def drug_catalogue(self) -> list[CatalogueDrug]:
        """H6102 (F11 处方药 flags): the whole catalogue, page by page."""
        drugs = await self._pages(INFNO_DRUG_CATALOGUE, {}, key="drugs")
        try:
            rows = drug_catalogue_from_output({"drugs": drugs})
        except ValidationFailed as exc:
            raise PartnerUnavailable(exc.reason, partner=PARTNER) from None
        out = []
        for row in rows:
            try:
                out.append(CatalogueDrug.model_validate(row))
            except ValidationError:
                continue  # a malformed row is skipped, the rest kept (the sync reports it)
        return out

    async def expenses(self, id_number: str, start: date, end: date) -> list[Settlement]:
        """H4002 (F7 医疗费用查询): one person's settlements in a period."""
        response = await self._call(INFNO_EXPENSES, {"data": {
            "certno": id_number, "begndate": start.isoformat(), "enddate": end.isoformat()}})
        return settlements_from_output((response.output or {}).get("records"))

    async def month_settlements(self, month: str, id_numbers: Sequence[str]
                                ) -> tuple[Totals, list[Settlement]]:
        """H4003 (F7 救助对象结算信息提取): the month's settlements of the listed persons and
        core's header; a header that is not one is core misbehaving (retried)."""
        response = await self._call(INFNO_SETTLEMENTS, {"data": {
            "month": month, "certnos": list(id_numbers)}})
        output = response.output or {}
        header = output.get("header")
        try:
            totals = Totals.from_wire(header if isinstance(header, dict) else {})
        except ValueError as exc:
            raise PartnerUnavailable(f"core answered H4003 without a valid header: {exc}",
                                     partner=PARTNER) from None
        return totals, settlements_from_output(output.get("records"))

    async def institutions(self) -> list[Institution]:
        """H4004 (F7): core's 定点医疗机构, page by page."""
        return institutions_from_output(await self._pages(INFNO_INSTITUTIONS, {"data": {}}))

    async def refund_status(self, payload: dict[str, Any], *, serial: str) -> None:
        """H7101 (F10): a refund order's status; core deduplicates on ``serial``."""
        await self._call(INFNO_REFUND_STATUS, {"data": dict(payload), "serial": serial})

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> CoreClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    def _request(self, infno: str, input: dict[str, Any]) -> NationalRequest:
        now = now_cst()
        return NationalRequest(infno=infno, msgid=make_msgid(self._sender, now,
                                                             next(self._seq) % 10000),
                               recer_sys_code=_RECEIVER, opter="hub", opter_name="集成平台",
                               inf_time=format_inf_time(now), input=input)

    async def _iter_pages(self, infno: str, input: dict[str, Any], key: str = "records"
                          ) -> AsyncGenerator[Any, None]:
        """Each page's ``output.<key>`` of a list query, asked ``page_size`` rows at a time
        (``page_num`` from 1) until a short page or core's ``total``: a city's extract in
        one answer would be hundreds of megabytes and outlast any timeout.

        A core that does not page answers everything at once (more rows than asked on the
        first page): that answer is the one page. A first answer that is not a list is
        yielded as it came, for the caller's translation to refuse with its own field
        name; a later page that breaks the rules is core misbehaving (transient)."""
        seen = 0
        for page_num in range(1, MAX_PAGES + 1):
            response = await self._call(infno, {**input, "page_num": page_num,
                                                 "page_size": self._page_size})
            output = response.output or {}
            page = output.get(key)
            if not isinstance(page, list) or len(page) > self._page_size:
                if page_num == 1:
                    yield page
                    return
                raise PartnerUnavailable(
                    f"core answered page {page_num} of {infno} without output.{key}"
                    if not isinstance(page, list) else
                    f"core answered page {page_num} of {infno} with {len(page)} rows, more "
                    f"than the {self._page_size} asked", partner=PARTNER)
            yield page
            seen += len(page)
            total = output.get("total")
            if len(page) < self._page_size or (isinstance(total, int) and seen >= total):
                return
        raise PartnerUnavailable(f"core's {infno} answer did not end within {MAX_PAGES} pages "
                                 f"of {self._page_size}", partner=PARTNER)

    async def _pages(self, infno: str, input: dict[str, Any], *, key: str = "records",
                     limit: int | None = None) -> Any:
        """Every row of a list query (``_iter_pages``), or the first ``limit``: no page
        past them is asked for."""
        rows: list[Any] = []
        async with aclosing(self._iter_pages(infno, input, key)) as pages:
            async for page in pages:
                if not isinstance(page, list):
                    return page
                rows.extend(page)
                if limit is not None and len(rows) >= limit:
                    break
        return rows[:limit] if limit is not None else rows

    async def _call(self, infno: str, input: dict[str, Any]) -> NationalResponse:
        request = self._request(infno, input)
        try:
            r = await self._http.post(HUB_PATH, json=request.to_wire())
        except httpx.TimeoutException as exc:
            raise PartnerTimeout(f"core did not answer {infno} within {self._timeout}s "
                                 f"(msgid {request.msgid})", partner=PARTNER) from exc
        except httpx.RequestError as exc:
            raise PartnerUnavailable(f"core unreachable for {infno}: {type(exc).__name__}: "
                                     f"{exc}", partner=PARTNER) from exc
        if r.status_code >= 500 or r.status_code == 429:
            raise PartnerUnavailable(f"core answered {infno} with HTTP {r.status_code}",
                                     partner=PARTNER)
        if 400 <= r.status_code < 500:
            raise ClientError(f"core refused {infno} with HTTP {r.status_code}: "
                              f"{r.text[:200]}", partner=PARTNER)
        if r.status_code != 200:
            raise PartnerUnavailable(f"core answered {infno} with unexpected HTTP "
                                     f"{r.status_code}", partner=PARTNER)
        try:
            response = NationalResponse.model_validate_json(r.content)
        except ValidationError as exc:
            raise PartnerUnavailable(f"core sent a malformed {infno} answer: "
                                     f"{exc.errors(include_url=False)[0]['msg']}",
                                     partner=PARTNER) from exc
        if not response.ok:
            code = (response.output or {}).get("err_code")
            raise BusinessRejected(str(code) if code else "CORE",
                                   response.err_msg or f"core rejected {infno}", partner=PARTNER)
        return response


if TYPE_CHECKING:
    _conforms: type[CorePort] = CoreClient
    _conforms_assistance: type[AssistanceCorePort] = CoreClient

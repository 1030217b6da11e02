"""In-memory fakes of the hub's ports and plumbing, one version each for every test.

Each fake records what it was asked and answers from plain attributes a test may
set before or during the test (``answer``, ``error``, ``fail``, ``fail_at``...).
They satisfy the protocols of ``kernel.deps``, ``routes.ports`` and the ports under
``adapters/`` structurally; a test passes them where a port is expected.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from adapters.tax.student_batch import serial_for
from contracts.channels import TransferDestination
from contracts.drugs import CatalogueDrug, Eligibility
from contracts.employee import EmployeeEnrollment, SyncStatusUpdate, TaxAck
from contracts.envelope import HubMessage
from contracts.errors import BusinessRejected, PartnerUnavailable
from contracts.returnfile import ReturnRecord
from contracts.student_batch import BatchOp, RowResult, StudentEnrollRow, StudentRow
from contracts.warnings import SelfPaid
from storage.journal import LogEntry, RequestRecord, TxnUpdate

__all__ = ["Acks", "FakeAudit", "FakeChannels", "FakeClock", "FakeCore", "FakeJournal",
           "FakePublisher", "FakeStudentBatchTax", "FakeTax"]


# ---------------------------------------------------------------- the broker side


class FakePublisher:
    """``kernel.deps.Publisher`` in memory: what was published, delayed, parked, requeued.

    ``fail`` makes every call raise: an exception, or ``True`` for
    ``ConnectionError("broker gone")``. ``sent`` and ``error`` are other names of
    ``published`` and ``fail``.
    """

    def __init__(self, fail: BaseException | bool | None = None) -> None:
        self.published: list[HubMessage] = []
        self.delayed: list[tuple[HubMessage, str, int, dict[str, Any]]] = []
        self.parked: list[tuple[bytes, str, dict[str, Any]]] = []
        self.requeued: list[tuple[bytes, str, dict[str, Any]]] = []
        self.fail = fail

    @property
    def sent(self) -> list[HubMessage]:
        return self.published

    @property
    def error(self) -> BaseException | bool | None:
        return self.fail

    @error.setter
    def error(self, value: BaseException | bool | None) -> None:
        self.fail = value

    def _check(self) -> None:
        if self.fail is True:
            raise ConnectionError("broker gone")
        if isinstance(self.fail, BaseException):
            raise self.fail

    async def publish(self, msg: HubMessage) -> None:
        self._check()
        self.published.append(msg)

    async def delay(self, msg: HubMessage, queue: str, delay_ms: int,
                    headers: dict[str, Any]) -> None:
        self._check()
        self.delayed.append((msg, queue, delay_ms, headers))

    async def park(self, body: bytes, queue: str, headers: dict[str, Any]) -> None:
        self._check()
        self.parked.append((body, queue, headers))

    async def requeue(self, body: bytes, queue: str, headers: dict[str, Any]) -> None:
        self._check()
        self.requeued.append((body, queue, headers))


@dataclass
class Acks:
    """The ack and nack callbacks of one delivery, counted."""

    acked: int = 0
    nacked: int = 0

    async def ack(self) -> None:
        self.acked += 1

    async def nack(self) -> None:
        self.nacked += 1


class FakeJournal:
    """The journal's write side (``kernel.deps.Recorder``) and its request lookup
    (``routes.ports.RequestLookup``); ``fail`` makes writes raise."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.requests: dict[str, RequestRecord] = {}
        self.fail: Exception | None = None

    async def write(self, *items: Any) -> None:
        if self.fail:
            raise self.fail
        self.items.extend(items)
        for it in items:
            if isinstance(it, RequestRecord):
                self.requests[it.serial] = it

    @property
    def error(self) -> Exception | None:
        """Another name of ``fail``."""
        return self.fail

    @error.setter
    def error(self, value: Exception | None) -> None:
        self.fail = value

    async def request(self, serial: str, *, wait_s: float = 0.0) -> RequestRecord | None:
        return self.requests.get(serial)

    def logs(self) -> list[LogEntry]:
        return [i for i in self.items if isinstance(i, LogEntry)]

    def txns(self) -> list[TxnUpdate]:
        return [i for i in self.items if isinstance(i, TxnUpdate)]

    def outcomes(self) -> list[str]:
        return [e.outcome for e in self.logs()]


@dataclass
class FakeAudit:
    """``storage.audit.AuditLog.record``: rows kept in a list, ids counted from 1."""

    rows: list[tuple[str, str, str, str, dict[str, Any], str]] = field(default_factory=list)

    async def record(self, actor: str, role: str, action: str, target: str,
                     detail: dict[str, Any], outcome: str) -> int:
        self.rows.append((actor, role, action, target, detail, outcome))
        return len(self.rows)


class FakeClock:
    """A monotonic clock a test moves by hand: ``clock.t += 5``."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# ---------------------------------------------------------------- partners


class FakeTax:
    """``adapters.tax.port.TaxPort`` in memory.

    ``answer`` is what every submit returns (a ``TaxAck``) or raises (an exception);
    ``rows`` is what every query returns (or raises). ``calls`` are the
    ``enroll_employee`` calls, ``submits`` and ``queries`` the others.
    """

    def __init__(self, answer: TaxAck | Exception | None = None,
                 rows: list[dict[str, str]] | Exception | None = None) -> None:
        self.answer = answer or TaxAck(accept_no="A0001")
        self.rows: list[dict[str, str]] | Exception = [{"valid": "1"}] if rows is None \
            else rows
        self.calls: list[tuple[EmployeeEnrollment, str]] = []
        self.submits: list[tuple[str, BaseModel, str]] = []
        self.queries: list[tuple[str, Any, str]] = []

    def _answer(self) -> TaxAck:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    async def enroll_employee(self, req: EmployeeEnrollment, *, serial: str) -> TaxAck:
        self.calls.append((req, serial))
        return self._answer()

    async def submit(self, operation: str, req: BaseModel, *, serial: str) -> TaxAck:
        self.submits.append((operation, req, serial))
        return self._answer()

    @property
    def stops(self) -> list[tuple[Any, str]]:
        """The ``EmployeeStop`` submits, as (request, serial)."""
        return [(req, serial) for op, req, serial in self.submits if op == "EmployeeStop"]

    async def query(self, operation: str, req: Any, *, serial: str) -> list[dict[str, str]]:
        self.queries.append((operation, req, serial))
        if isinstance(self.rows, Exception):
            raise self.rows
        return [dict(r) for r in self.rows]

    async def aclose(self) -> None:
        pass


class FakeCore:
    """``adapters.core.port.CorePort`` in memory.

    ``persons`` answer ``get_employee``; ``records`` (subject -> records) answer
    ``get_record`` by their key fields, ``answers`` (infno -> rows) answer ``query`` and
    ``snapshots`` (kind -> rows) answer ``snapshot``. ``error`` makes
    ``update_sync_status`` and ``get_employee`` raise after recording the call. Arrival batches
    (``deliver_arrivals``) are kept in ``batches``; ``fail_at`` raises on that call
    number (counted in ``arrival_calls``), and ``once=True`` fails the test when a
    batch id comes a second time.
    """

    def __init__(self, *persons: EmployeeEnrollment, error: Exception | None = None,
                 fail_at: dict[int, Exception] | None = None, once: bool = False,
                 ref: str = "CORE-1") -> None:
        self.persons = {p.business_key: p for p in persons}
        self.error = error
        self.calls: list[tuple[SyncStatusUpdate, str]] = []
        self.queries: list[str] = []
        self.delivered: list[tuple[str, dict[str, Any], str]] = []
        self.applications: list[dict[str, Any]] = []
        self.ref = ref
        self.batches: list[tuple[str, str, list[ReturnRecord]]] = []
        self.arrival_calls = 0
        self.fail_at = dict(fail_at or {})
        self.once = once
        self.records: dict[str, list[dict[str, Any]]] = {}
        self.answers: dict[str, list[dict[str, Any]]] = {}
        self.snapshots: dict[str, list[dict[str, Any]]] = {}
        self.page_size = 2  # snapshot_pages hands the snapshot out in pages this long
        self.asked: list[tuple[str, dict[str, Any]]] = []
        self.destinations: dict[str, TransferDestination] = {}
        """id number -> the 转入地's answer (H1106); default insured, nothing pending."""
        self.difficulty: list[tuple[dict[str, Any], str]] = []
        """F7 进入/退出 (H4001) calls: payload and serial."""

    async def update_sync_status(self, update: SyncStatusUpdate, *, serial: str) -> None:
        self.calls.append((update, serial))
        if self.error:
            raise self.error

    async def get_employee(self, id_number: str,
                           unit_credit_code: str) -> EmployeeEnrollment | None:
        self.queries.append(id_number)
        if self.error:
            raise self.error
        return self.persons.get(f"{unit_credit_code}:{id_number}")

    async def deliver(self, infno: str, data: dict[str, Any], *, serial: str) -> None:
        self.delivered.append((infno, data, serial))

    async def get_record(self, subject: str, key: dict[str, str]) -> dict[str, Any] | None:
        return next((dict(r) for r in self.records.get(subject, [])
                     if all(r.get(k) == v for k, v in key.items())), None)

    async def query(self, infno: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        self.asked.append((infno, params))
        return [dict(r) for r in self.answers.get(infno, [])]

    async def snapshot_pages(self, kind: str) -> AsyncIterator[list[dict[str, Any]]]:
        rows = [dict(r) for r in self.snapshots.get(kind, [])]
        for i in range(0, len(rows), self.page_size):
            yield rows[i:i + self.page_size]

    async def snapshot(self, kind: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        return [dict(r) for r in self.snapshots.get(kind, [])][:limit]

    async def check_transfer_destination(self, id_number: str,
                                         target_division: str) -> TransferDestination:
        self.asked.append(("H1106", {"id_number": id_number,
                                     "target_division": target_division}))
        return self.destinations.get(id_number, TransferDestination(True, False))

    async def register_application(self, application: dict[str, Any]) -> str:
        self.applications.append(application)
        return self.ref

    async def sync_difficulty(self, payload: dict[str, Any], *, serial: str) -> None:
        """F7 H4001: kept in ``difficulty``; ``error`` raises after recording the call."""
        self.difficulty.append((payload, serial))
        if self.error:
            raise self.error

    async def yearly_self_paid(self, year: int, end_month: str) -> list[SelfPaid]:
        """F8 (H1107): ``self_paid`` as set by the test."""
        self.asked.append(("H1107", {"year": year, "end_month": end_month}))
        return list(getattr(self, "self_paid", []))

    async def sync_transfer(self, payload: dict[str, Any], *, serial: str) -> None:
        """F9 H4201: kept in ``transfers``; ``error`` raises after recording the call."""
        self.__dict__.setdefault("transfers", []).append((payload, serial))
        if self.error:
            raise self.error

    async def refund_status(self, payload: dict[str, Any], *, serial: str) -> None:
        """F10 H7101: kept in ``refunds``; ``error`` raises after recording the call."""
        self.__dict__.setdefault("refunds", []).append((payload, serial))
        if self.error:
            raise self.error

    async def drug_eligibility(self, id_number: str) -> Eligibility:
        """F11 H6101: ``eligibility`` (id number -> answer) as set by the test; insured and
        normal otherwise."""
        self.asked.append(("H6101", {"id_number": id_number}))
        known: dict[str, Eligibility] = getattr(self, "eligibility", {})
        return known.get(id_number) or Eligibility(insured=True, normal=True)

    async def drug_catalogue(self) -> list[CatalogueDrug]:
        """F11 H6102: ``catalogue`` as set by the test."""
        self.asked.append(("H6102", {}))
        return list(getattr(self, "catalogue", []))

    @property
    def registered(self) -> int:
        return len(self.applications)

    async def deliver_arrivals(self, batch_id: str, kind: str,
                               records: Sequence[ReturnRecord]) -> None:
        self.arrival_calls += 1
        if self.arrival_calls in self.fail_at:
            raise self.fail_at[self.arrival_calls]
        assert not (self.once and batch_id in self.ids), "a batch was handed to core twice"
        self.batches.append((batch_id, kind, list(records)))

    @property
    def ids(self) -> list[str]:
        """Batch ids delivered, in order."""
        return [b[0] for b in self.batches]

    @property
    def lines(self) -> list[int]:
        """Line numbers of every delivered arrival, in order."""
        return [r.line_no for _, _, recs in self.batches for r in recs]

    def count(self) -> int:
        """Arrival records delivered."""
        return sum(len(recs) for _, _, recs in self.batches)

    async def aclose(self) -> None:
        pass


class FakeChannels:
    """``adapters.channels.port.ChannelPort``: results pushed; ``error`` makes pushes raise."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any], str]] = []
        self.error = error

    async def push_result(self, channel: str, result: dict[str, Any], *, serial: str) -> None:
        self.calls.append((channel, result, serial))
        if self.error:
            raise self.error

    @property
    def pushed(self) -> list[dict[str, Any]]:
        return [result for _, result, _ in self.calls]

    async def aclose(self) -> None:
        return None


@dataclass
class FakeStudentBatchTax:
    """Tax's student batch desk (``jobs.student_batch`` submits chunks to it).

    Answers like tax: unknown community fails, 困难人员类别 is flagged; faults on demand
    (``transient``: chunk -> how many 503s first, ``reject``: chunks refused,
    ``drop_rows``: rows left out of the answer).
    """

    transient: dict[int, int] = field(default_factory=dict)
    reject: set[int] = field(default_factory=set)
    drop_rows: set[int] = field(default_factory=set)
    calls: list[tuple[str, int, int, tuple[int, ...]]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    async def submit(self, op: BatchOp, batch_id: str, chunk_no: int, chunk_count: int,
                     rows: Sequence[tuple[int, StudentRow]]) -> list[RowResult]:
        self.calls.append((serial_for(batch_id, chunk_no), chunk_no, chunk_count,
                           tuple(n for n, _ in rows)))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.005)
            if self.transient.get(chunk_no, 0) > 0:
                self.transient[chunk_no] -= 1
                raise PartnerUnavailable("HTTP 503", partner="tax")
            if chunk_no in self.reject:
                raise BusinessRejected("TX399", "批次已关闭", partner="tax")
            return [self._decide(n, r) for n, r in rows if n not in self.drop_rows]
        finally:
            self.in_flight -= 1

    @staticmethod
    def _decide(row_no: int, row: StudentRow) -> RowResult:
        if isinstance(row, StudentEnrollRow) and row.community.endswith("099099"):
            return RowResult(row_no=row_no, id_number=row.id_number, status="failure",
                             reason_code="TX301", reason_text="基层医保区划税务不认可")
        if isinstance(row, StudentEnrollRow) and row.difficulty_type:
            return RowResult(row_no=row_no, id_number=row.id_number, status="difficulty",
                             reason_code=f"KN{row.difficulty_type}")
        return RowResult(row_no=row_no, id_number=row.id_number, status="success")


if TYPE_CHECKING:  # mypy proves the fakes satisfy the ports they stand in for
    from adapters.channels.port import ChannelPort
    from adapters.core.port import CorePort
    from adapters.tax.port import TaxPort
    from kernel.deps import Publisher, Recorder
    from routes.ports import RequestLookup

    _tax: TaxPort = FakeTax()
    _core: CorePort = FakeCore()
    _channels: ChannelPort = FakeChannels()
    _publisher: Publisher = FakePublisher()
    _recorder: Recorder = FakeJournal()
    _lookup: RequestLookup = FakeJournal()

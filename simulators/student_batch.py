"""The tax side of 大学生批量参保/暂停: a desk that behaves like the bureau, not like a mock.

``StudentBatchDesk.handle(operation, body)`` answers one chunk: the XML is
read safely and validated against ``student_batch.xsd``; a serial (``ywlsh``)
seen before gets its first answer again (counted in ``replays``; a serial
reused with different rows is refused); otherwise every row is decided and
the effects are counted per person in ``enrolled`` / ``stopped``, so tests
prove "no duplicate effect" from the partner's side, never from the hub's.

Rules (codes are the simulator's own; TX301 matches ``rules.py``):

    TX301  基层医保区划 unknown to tax (only ``KNOWN_COMMUNITIES``)
    TX311  the student is already enrolled for this 参保年度
    TX312  stop: the student has no active enrollment at tax
    TX313  stop: already stopped
    TX314  stop: the name differs from the one tax holds
    KN..   jg 3 (困难人员): enrolled, and either the row carries 困难人员类别 or
           tax's difficulty register matches the ID (4 digits before the check
           character in ``difficulty_suffixes``)

Faults come from an optional ``draw(key, operation)`` hook returning
``simulators.simkit.Fault`` (plug in ``SimState.draw``); the key is
``"{operation}:{ywlsh}"`` so ``Fault.match`` can target one chunk. Pass the
simulator's ``EffectLog`` as ``log`` and every effect (key
``"{operation}:{zjhm}"``, entity ``zjhm``, value ``ywlsh``) and replay is
recorded there too, so ``/_sim/effects`` shows batch effects beside the rest.
``create_app(desk)`` mounts it at ``POST /tax/ws`` for tests and the bench.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date
from functools import partial
from typing import Any, Final, Protocol

from fastapi import FastAPI, Request, Response
from lxml import etree

from adapters.tax.chunks import ChunkRequest
from adapters.tax.soap import SOAP_CONTENT_TYPE, build_fault, parse_payload
from adapters.tax.student_batch import (
    BATCH_MAX_BYTES,
    OPERATIONS,
    STUDENT_BATCH_XSD,
    BatchRequest,
    build_batch_response,
    op_of,
    parse_batch_request,
)
from contracts.errors import ValidationFailed
from contracts.student_batch import DIFFICULTY_TYPES, RowResult, RowStatus
from simulators.simkit import EffectLog, Fault
from simulators.tax_rules import KNOWN_COMMUNITIES

__all__ = ["DEFAULT_DIFFICULTY_SUFFIXES", "Desk", "Draw", "Person", "ReplayDesk",
           "StudentBatchDesk", "chunk_digest", "create_app"]

Draw = Callable[[str, str], Fault | None]
"""``draw(key, operation)``: the fault for this call, if any (e.g. ``SimState.draw``)."""

DEFAULT_DIFFICULTY_SUFFIXES: Final = frozenset({"3333"})
"""IDs whose 4 digits before the check char are listed here are in tax's 困难人员 register."""
_REGISTER_TYPE: Final = "02"


@dataclass
class Person:
    """What tax holds about one student."""

    name: str
    year: str
    status: str  # active | stopped


def _safe_parser() -> Any:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def _soap(body: bytes, status: int = 200) -> tuple[int, bytes]:
    return status, body


def chunk_digest(label: str, request: ChunkRequest) -> str:
    """What a serial was first used for: a resend must carry the same rows."""
    text = repr((label, request.batch_id, request.chunk_no,
                 [sorted(r.items()) for r in request.rows]))
    return hashlib.sha256(text.encode()).hexdigest()


class ReplayDesk:
    """What every chunk desk does with serials: answer one seen before with its first
    answer (``answers``, counted in ``replays`` and the ``EffectLog``), refuse one reused
    with other rows; and how it sleeps for a ``slow``/``timeout`` fault."""

    answers: dict[str, tuple[str, int, bytes]]
    """ywlsh -> (digest of the rows, HTTP status, body): the answer a resend replays."""
    replays: int
    log: EffectLog | None

    def _replay(self, serial: str, digest: str) -> tuple[int, bytes] | None:
        seen = self.answers.get(serial)
        if seen is None:
            return None
        if seen[0] != digest:
            return _soap(build_fault("Client", f"业务流水号 {serial} 已用于另一批数据"), 500)
        self.replays += 1
        if self.log is not None:
            self.log.replays += 1
        return seen[1], seen[2]

    @staticmethod
    async def _sleep(fault: Fault | None) -> None:
        if fault and fault.kind in ("slow", "timeout"):
            await asyncio.sleep(fault.delay_s or (30.0 if fault.kind == "timeout" else 1.0))


def _result(row_no: int, id_number: str, status: RowStatus, code: str = "",
            text: str = "") -> RowResult:
    return RowResult(row_no=row_no, id_number=id_number, status=status, reason_code=code,
                     reason_text=text)


class StudentBatchDesk(ReplayDesk):
    """Tax's student-batch desk; one instance per simulated bureau (one event loop)."""

    def __init__(self, *, draw: Draw | None = None,
                 known_communities: Collection[str] = KNOWN_COMMUNITIES,
                 difficulty_suffixes: Collection[str] = DEFAULT_DIFFICULTY_SUFFIXES,
                 max_bytes: int = BATCH_MAX_BYTES, log: EffectLog | None = None) -> None:
        self.draw = draw
        self.log = log
        self.known_communities = frozenset(known_communities)
        self.difficulty_suffixes = frozenset(difficulty_suffixes)
        self.max_bytes = max_bytes
        self.persons: dict[str, Person] = {}
        self.enrolled: Counter[str] = Counter()
        """zjhm -> enrollments tax made (must never exceed 1 per year in a test)."""
        self.stopped: Counter[str] = Counter()
        """zjhm -> stops tax made."""
        self.answers = {}
        self.calls = 0
        self.replays = 0
        self.chunks = 0
        self.rows = 0
        self._schema = etree.XMLSchema(etree.parse(str(STUDENT_BATCH_XSD), _safe_parser()))

    # ------------------------------------------------------------ state helpers

    def preload(self, id_number: str, name: str, year: str, status: str = "active") -> None:
        """Put a student on tax's books without an effect (tests: 'already enrolled')."""
        self.persons[id_number] = Person(name=name, year=year, status=status)

    def summary(self) -> dict[str, Any]:
        return {
            "calls": self.calls, "chunks": self.chunks, "rows": self.rows,
            "replays": self.replays, "enrolled": sum(self.enrolled.values()),
            "stopped": sum(self.stopped.values()),
            "duplicates": {f"{what}:{k}": n for what, counts in
                           (("enroll", self.enrolled), ("stop", self.stopped))
                           for k, n in counts.items() if n > 1},
        }

    # ------------------------------------------------------------ SOAP

    async def handle(self, operation: str, body: bytes) -> tuple[int, bytes]:
        """One chunk -> (HTTP status, SOAP bytes). ``operation`` may be a SOAPAction or ''."""
        self.calls += 1
        try:
            request = self._read(operation, body)
        except ValidationFailed as exc:
            return _soap(build_fault("Client", exc.reason), 500)
        name = OPERATIONS[request.op]
        fault = self.draw(f"{name}:{request.serial}", name) if self.draw else None
        kind = fault.kind if fault else None
        if kind == "http_5xx":
            return 503, b"Service Temporarily Unavailable"
        if kind == "http_4xx":
            return 400, b"Bad Request"
        if kind == "soap_fault":
            return _soap(build_fault("Server", "税务系统内部错误 (simulated)"), 500)
        if kind == "bad_signature":
            return _soap(build_fault("Client", "报文签名校验失败 (simulated)"), 500)

        digest = self._digest(request)
        if (replayed := self._replay(request.serial, digest)) is not None:
            await self._sleep(fault)
            return replayed
        if kind == "slow":
            await self._sleep(fault)
            if (replayed := self._replay(request.serial, digest)) is not None:
                return replayed  # the client gave up and resent while we slept
        answer = self._decide(request, digest, fault)
        if kind == "timeout":  # the effect is made, the answer is lost in transit
            await self._sleep(fault)
        return answer

    def _read(self, operation: str, body: bytes) -> BatchRequest:
        payload = parse_payload(body, max_bytes=self.max_bytes)
        if not self._schema.validate(payload):
            err = self._schema.error_log.last_error
            raise ValidationFailed([(etree.QName(payload).localname,
                                     f"schema: line {err.line}: {err.message}")])
        request = parse_batch_request(body, max_bytes=self.max_bytes)
        if operation and op_of(operation) != request.op:
            raise ValidationFailed([("SOAPAction", f"{operation} does not match the body "
                                                   f"({OPERATIONS[request.op]})")])
        if len(request.rows) != request.row_count:
            raise ValidationFailed([("hs", f"says {request.row_count} rows, the chunk has "
                                           f"{len(request.rows)}")])
        if request.chunk_no > request.chunk_count:
            raise ValidationFailed([("fkxh", f"{request.chunk_no} > fkzs {request.chunk_count}")])
        return request

    @staticmethod
    def _digest(request: BatchRequest) -> str:
        return chunk_digest(request.op, request)

    # ------------------------------------------------------------ decisions

    def _decide(self, request: BatchRequest, digest: str,
                fault: Fault | None) -> tuple[int, bytes]:
        """Answer and effects of a new serial; no awaits, so a concurrent resend cannot slip in."""
        if fault is not None and fault.kind == "reject":
            body = build_batch_response(request.op, [], ok=False, code=fault.code,
                                        msg=fault.text, batch_id=request.batch_id,
                                        chunk_no=request.chunk_no)
        else:
            decide = self._enroll if request.op == "enroll" else self._stop
            results = [decide(row) for row in request.rows]
            if self.log is not None:
                name = OPERATIONS[request.op]
                for r in results:
                    if r.status != "failure":
                        self.log.record(f"{name}:{r.id_number}", entity=r.id_number,
                                        value=request.serial)
            self.chunks += 1
            self.rows += len(results)
            done = sum(r.status != "failure" for r in results)
            body = build_batch_response(request.op, results, msg=f"处理完成：成功{done}条，"
                                        f"失败{len(results) - done}条",
                                        batch_id=request.batch_id, chunk_no=request.chunk_no)
        self.answers[request.serial] = (digest, 200, body)
        return 200, body

    def _enroll(self, row: dict[str, str]) -> RowResult:
        zjhm, year = row["zjhm"], row["cbnd"]
        result = partial(_result, int(row["xh"]), zjhm)
        if row["jcybqh"] not in self.known_communities:
            return result("failure", "TX301", f"基层医保区划 {row['jcybqh']} 税务不认可")
        person = self.persons.get(zjhm)
        if person is not None and person.status == "active" and person.year == year:
            return result("failure", "TX311", f"该学生 {year} 年度已参保")
        self.persons[zjhm] = Person(name=row["xm"], year=year, status="active")
        self.enrolled[zjhm] += 1
        kind = row.get("knrylb") or (_REGISTER_TYPE if zjhm[-5:-1] in self.difficulty_suffixes
                                     else "")
        if kind:
            label = DIFFICULTY_TYPES.get(kind, "困难人员")
            return result("difficulty", f"KN{kind}",
                          f"参保成功；困难人员（{label}），个人缴费由医疗救助资助")
        return result("success", "", "参保成功")

    def _stop(self, row: dict[str, str]) -> RowResult:
        zjhm = row["zjhm"]
        result = partial(_result, int(row["xh"]), zjhm)
        person = self.persons.get(zjhm)
        if person is None:
            return result("failure", "TX312", "该学生在税务无有效参保记录，不能暂停")
        if person.status == "stopped":
            return result("failure", "TX313", "该学生已暂停参保")
        if person.name != row["xm"]:
            return result("failure", "TX314", "姓名与税务登记信息不一致")
        person.status = "stopped"
        self.stopped[zjhm] += 1
        return result("success", "", f"暂停参保成功，停保日期 {date.fromisoformat(row['tbrq'])}")


class Desk(Protocol):
    """A tax desk answering chunk calls (``StudentBatchDesk``, ``InitialLoadDesk``)."""

    async def handle(self, operation: str, body: bytes) -> tuple[int, bytes]: ...

    def summary(self) -> dict[str, Any]: ...


def create_app(desk: Desk, *, title: str = "Tax student-batch desk (simulated)") -> FastAPI:
    """A minimal tax endpoint (``POST /tax/ws``) in front of ``desk``; ``app.state.desk``."""
    app = FastAPI(title=title)
    app.state.desk = desk

    @app.post("/tax/ws")
    async def soap_endpoint(request: Request) -> Response:
        status, body = await desk.handle(request.headers.get("soapaction", ""),
                                         await request.body())
        media = SOAP_CONTENT_TYPE if body.startswith(b"<?xml") else "text/plain"
        return Response(content=body, status_code=status, media_type=media)

    @app.get("/_desk/summary")
    async def summary() -> dict[str, Any]:
        return desk.summary()

    return app

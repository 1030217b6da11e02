"""The tax side of the 统模式 initial load and of 职工批量暂停: a desk with a memory.

``InitialLoadDesk.handle(operation, body)`` answers one chunk
(``adapters.tax.initial_load``): a serial (``ywlsh``) seen before gets its first
answer again (counted in ``replays``; a serial reused with other rows is a
Client fault); otherwise every row is decided against what tax holds and each
effect is counted per key in ``effects`` (and in the simulator's ``EffectLog``
when one is passed: key ``"{operation}:{key}"``, entity the key, value the
serial), so tests prove "no duplicate effect" at the partner.

Rules (codes are the simulator's own):

    TXL01  unit: already registered at tax
    TXL11  employee: the unit is not registered at tax (load units first)
    TXL12  employee: already insured in this unit for this 险种
    TXL21  flexible: already registered as a flexible worker
    TX301  resident: 基层医保区划 unknown to tax (``KNOWN_COMMUNITIES``)
    TXL31  resident: already insured for this 参保年度
    TXL41  suspend: no active insurance of this person in this unit at tax
    TXL42  suspend: already suspended
    TXL43  suspend: the name differs from the one tax holds

Faults (``simulators.simkit.Fault``) come from ``draw(key, operation)`` once per
chunk, key ``"{operation}:{ywlsh}"``: ``http_5xx``, ``http_4xx``, ``soap_fault``,
``bad_signature`` (nothing done); ``slow`` (answer late); ``timeout`` (done, the
answer is lost: a resend is replayed); ``duplicate`` (the request arrives twice:
the second is replayed); ``reject`` (the whole chunk refused, ``retStatus`` F).
A business rejection of one row is ``row_draw(key, operation)`` with key
``"{operation}:{ywlsh}:{row key}"``: a ``reject`` Fault whose ``match`` names a
row's ID number or credit code refuses that row with the fault's code and text
(``row_rejections(state)`` reads them from a ``SimState`` without counting calls).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Final

from fastapi import FastAPI

from adapters.tax.chunks import BATCH_MAX_BYTES
from adapters.tax.initial_load import (
    KEY_ELEMENT,
    OPERATIONS,
    LoadRequest,
    build_load_response,
    kind_of,
    parse_load_request,
)
from adapters.tax.soap import build_fault
from contracts.errors import ValidationFailed
from contracts.initial_load import LoadKind, LoadResult
from simulators.simkit import EffectLog, Fault, SimState
from simulators.student_batch import ReplayDesk, chunk_digest
from simulators.student_batch import create_app as desk_app
from simulators.tax_rules import KNOWN_COMMUNITIES

__all__ = ["Draw", "InitialLoadDesk", "create_app", "row_rejections"]

Draw = Callable[[str, str], Fault | None]
"""``draw(key, operation)``: the fault for this call, if any (e.g. ``SimState.draw``)."""
_CHUNK_FAULTS: Final = frozenset({"http_5xx", "http_4xx", "soap_fault", "bad_signature",
                                  "slow", "timeout", "duplicate", "reject"})


def row_rejections(state: SimState) -> Draw:
    """A row-level ``draw`` over ``state.faults``: only ``reject`` faults with a ``match``,
    consuming their ``count``, without counting a call in ``state.log``."""
    def draw(key: str, operation: str) -> Fault | None:
        for f in state.faults:
            if f.kind != "reject" or not f.match or f.match not in key:
                continue
            if f.operation and f.operation != operation:
                continue
            if f.count is not None:
                if f.count <= 0:
                    continue
                f.count -= 1
            return f
        return None
    return draw


@dataclass
class Employment:
    """One person insured in one unit at tax."""

    name: str
    insutype: str
    suspended: bool = False


class InitialLoadDesk(ReplayDesk):
    """Tax's initial-load desk; one instance per simulated bureau (one event loop)."""

    def __init__(self, *, draw: Draw | None = None, row_draw: Draw | None = None,
                 known_communities: Collection[str] = KNOWN_COMMUNITIES,
                 max_bytes: int = BATCH_MAX_BYTES, log: EffectLog | None = None) -> None:
        self.draw = draw
        self.row_draw = row_draw
        self.log = log
        self.known_communities = frozenset(known_communities)
        self.max_bytes = max_bytes
        self.units: dict[str, str] = {}
        """shxydm -> 单位名称 registered at tax."""
        self.employments: dict[tuple[str, str], Employment] = {}
        """(shxydm, zjhm) -> the employee's insurance in that unit."""
        self.flexible: dict[str, str] = {}
        self.residents: dict[tuple[str, str], str] = {}
        """(zjhm, 参保年度) -> 基层医保区划."""
        self.effects: Counter[str] = Counter()
        """``"{operation}:{key}"`` -> effects tax made (a test expects 1 each)."""
        self.answers = {}
        self.calls = 0
        self.replays = 0
        self.chunks = 0
        self.rows = 0

    # ------------------------------------------------------------ state helpers

    def preload_unit(self, credit_code: str, name: str = "存量单位") -> None:
        """Put a unit on tax's books without an effect."""
        self.units[credit_code] = name

    def preload_employee(self, credit_code: str, id_number: str, name: str,
                         insutype: str = "310") -> None:
        """Put an employee (and the unit) on tax's books without an effect."""
        self.units.setdefault(credit_code, "存量单位")
        self.employments[(credit_code, id_number)] = Employment(name, insutype)

    def effect_count(self, kind: LoadKind) -> int:
        prefix = OPERATIONS[kind] + ":"
        return sum(n for k, n in self.effects.items() if k.startswith(prefix))

    def duplicates(self) -> dict[str, int]:
        return {k: n for k, n in self.effects.items() if n > 1}

    def summary(self) -> dict[str, Any]:
        return {"calls": self.calls, "chunks": self.chunks, "rows": self.rows,
                "replays": self.replays, "effects": sum(self.effects.values()),
                "distinct": len(self.effects), "duplicates": self.duplicates(),
                "by_operation": {op: self.effect_count(kind)
                                 for kind, op in OPERATIONS.items()}}

    # ------------------------------------------------------------ SOAP

    async def handle(self, operation: str, body: bytes) -> tuple[int, bytes]:
        """One chunk -> (HTTP status, SOAP bytes). ``operation`` may be a SOAPAction or ''."""
        self.calls += 1
        try:
            request = parse_load_request(body, max_bytes=self.max_bytes)
            if operation and kind_of(operation) != request.kind:
                raise ValidationFailed([("SOAPAction", f"{operation} does not match the "
                                                       f"body ({OPERATIONS[request.kind]})")])
        except ValidationFailed as exc:
            return 500, build_fault("Client", exc.reason)
        name = OPERATIONS[request.kind]
        fault = self.draw(f"{name}:{request.serial}", name) if self.draw else None
        kind = fault.kind if fault is not None and fault.kind in _CHUNK_FAULTS else None
        if kind == "http_5xx":
            return 503, b"Service Temporarily Unavailable"
        if kind == "http_4xx":
            return 400, b"Bad Request"
        if kind == "soap_fault":
            return 500, build_fault("Server", "税务系统内部错误 (simulated)")
        if kind == "bad_signature":
            return 500, build_fault("Client", "报文签名校验失败 (simulated)")
        digest = self._digest(request)
        if (replayed := self._replay(request.serial, digest)) is not None:
            return replayed
        if kind == "slow":
            await self._sleep(fault)
            if (replayed := self._replay(request.serial, digest)) is not None:
                return replayed  # the client gave up and resent while we slept
        answer = self._decide(request, digest, fault if kind == "reject" else None)
        if kind == "duplicate":  # the same request arrives twice: the second is replayed
            answer = self._replay(request.serial, digest) or answer
        if kind == "timeout":  # the effect is made, the answer is lost in transit
            await self._sleep(fault)
        return answer

    @staticmethod
    def _digest(request: LoadRequest) -> str:
        return chunk_digest(request.kind, request)

    # ------------------------------------------------------------ decisions

    def _decide(self, request: LoadRequest, digest: str,
                reject: Fault | None) -> tuple[int, bytes]:
        """Answer and effects of a new serial; no awaits, so a concurrent resend cannot slip in."""
        kind, name = request.kind, OPERATIONS[request.kind]
        if reject is not None:
            body = build_load_response(kind, [], ok=False, code=reject.code, msg=reject.text,
                                       batch_id=request.batch_id, chunk_no=request.chunk_no)
            self.answers[request.serial] = (digest, 200, body)
            return 200, body
        results: list[LoadResult] = []
        for row in request.rows:
            key = row[KEY_ELEMENT[kind]]
            refused = self.row_draw(f"{name}:{request.serial}:{key}", name) \
                if self.row_draw else None
            if refused is not None:
                result = LoadResult(row_no=int(row["xh"]), key=key, ok=False,
                                    reason_code=refused.code, reason_text=refused.text)
            else:
                result = self._apply(kind, row)
            if result.ok:
                self.effects[f"{name}:{key}"] += 1
                if self.log is not None:
                    self.log.record(f"{name}:{key}", entity=key, value=request.serial)
            results.append(result)
        self.chunks += 1
        self.rows += len(results)
        done = sum(r.ok for r in results)
        body = build_load_response(kind, results, msg=f"处理完成：成功{done}条，"
                                   f"失败{len(results) - done}条",
                                   batch_id=request.batch_id, chunk_no=request.chunk_no)
        self.answers[request.serial] = (digest, 200, body)
        return 200, body

    def _apply(self, kind: LoadKind, row: dict[str, str]) -> LoadResult:
        row_no, key = int(row["xh"]), row[KEY_ELEMENT[kind]]

        def no(code: str, text: str) -> LoadResult:
            return LoadResult(row_no=row_no, key=key, ok=False, reason_code=code,
                              reason_text=text)

        if kind == "unit":
            if key in self.units:
                return no("TXL01", "该单位已在税务登记")
            self.units[key] = row["dwmc"]
        elif kind == "employee":
            unit = row["shxydm"]
            if unit not in self.units:
                return no("TXL11", "单位未在税务登记，请先同步单位信息")
            held = self.employments.get((unit, key))
            if held is not None and held.insutype == row["xzlx"] and not held.suspended:
                return no("TXL12", "该职工已在该单位参保")
            self.employments[(unit, key)] = Employment(row["xm"], row["xzlx"])
        elif kind == "flexible":
            if key in self.flexible:
                return no("TXL21", "该人员已登记为灵活就业人员")
            self.flexible[key] = row["xm"]
        elif kind == "resident":
            if row["jcybqh"] not in self.known_communities:
                return no("TX301", f"基层医保区划 {row['jcybqh']} 税务不认可")
            if (key, row["cbnd"]) in self.residents:
                return no("TXL31", f"该居民 {row['cbnd']} 年度已参保")
            self.residents[(key, row["cbnd"])] = row["jcybqh"]
        else:
            held = self.employments.get((row["shxydm"], key))
            if held is None:
                return no("TXL41", "该职工在该单位无有效参保记录，不能暂停缴费")
            if held.suspended:
                return no("TXL42", "该职工已暂停缴费")
            if held.name != row["xm"]:
                return no("TXL43", "姓名与税务登记信息不一致")
            held.suspended = True
        return LoadResult(row_no=row_no, key=key, ok=True, reason_text="处理成功")


def create_app(desk: InitialLoadDesk) -> FastAPI:
    """A minimal tax endpoint (``POST /tax/ws``) in front of ``desk``; ``app.state.desk``."""
    return desk_app(desk, title="Tax initial-load desk (simulated)")

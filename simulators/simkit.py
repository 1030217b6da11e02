"""Shared parts of the partner simulators: failure switches and side-effect counting.

Every simulator mounts ``sim_router(state)`` under ``/_sim`` so tests and the
demo can switch faults on and off over HTTP and read the side effects the
partner actually made. Side effects are counted here, at the partner, never
from the hub's own log.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from contracts.national import NationalRequest, NationalResponse
from contracts.signing import PARTNER_HEADERS, SignatureRefused, check_request, request_target

__all__ = ["EffectLog", "Fault", "FaultKind", "SimState", "fault_response", "refused",
           "signed_body", "sim_router"]

FaultKind = Literal["timeout", "http_5xx", "soap_fault", "reject", "duplicate", "slow",
                    "http_4xx", "bad_signature"]


class Fault(BaseModel):
    """One failure rule: ``count`` None means forever; ``match`` narrows it by key."""

    kind: FaultKind
    rate: float = Field(default=1.0, ge=0.0, le=1.0)
    count: int | None = Field(default=None, ge=0)
    delay_s: float = Field(default=0.0, ge=0.0, le=120.0)
    code: str = "E999"
    text: str = "simulated rejection"
    match: str = ""
    operation: str = ""


@dataclass
class EffectLog:
    """What the partner really did: effects per key, in arrival order."""

    effects: Counter[str] = field(default_factory=Counter)
    order: dict[str, list[Any]] = field(default_factory=dict)
    replays: int = 0
    calls: int = 0

    def record(self, key: str, entity: str = "", value: Any = None) -> None:
        self.effects[key] += 1
        if entity:
            self.order.setdefault(entity, []).append(value)

    def summary(self) -> dict[str, Any]:
        dup = {k: n for k, n in self.effects.items() if n > 1}
        return {"calls": self.calls, "effects": sum(self.effects.values()),
                "distinct": len(self.effects), "duplicates": dup, "replays": self.replays}

    def snapshot(self) -> Counter[str]:
        """A copy of the effects per key now, to count what happens after it (``since``)."""
        return Counter(self.effects)

    def since(self, before: Mapping[str, int], prefix: str | tuple[str, ...] = ""
              ) -> Counter[str]:
        """Effects per key made after the ``before`` snapshot, keys starting with ``prefix``.

        One partner serves several flows, one after another: a snapshot taken
        when a flow starts counts that flow's effects only (per operation, with
        the operation's key prefix).
        """
        return Counter({k: n - before.get(k, 0) for k, n in list(self.effects.items())
                        if k.startswith(prefix) and n > before.get(k, 0)})

    def summary_since(self, before: Mapping[str, int], prefix: str | tuple[str, ...] = ""
                      ) -> dict[str, Any]:
        """``summary`` of the effects since ``before`` (keys with ``prefix``); ``extra`` is
        the number of duplicate effects (a key's effects beyond its first)."""
        window = self.since(before, prefix)
        dup = {k: n for k, n in window.items() if n > 1}
        return {"effects": sum(window.values()), "distinct": len(window), "duplicates": dup,
                "extra": sum(n - 1 for n in dup.values())}


@dataclass
class SimState:
    """Faults and effects of one simulator; thread-safe enough for one event loop."""

    faults: list[Fault] = field(default_factory=list)
    log: EffectLog = field(default_factory=EffectLog)
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def draw(self, key: str = "", operation: str = "") -> Fault | None:
        """The fault that applies to this call, if any (consumes one of its count)."""
        with self._lock:
            self.log.calls += 1
            for f in self.faults:
                if f.count is not None and f.count <= 0:
                    continue
                if f.match and f.match not in key:
                    continue
                if f.operation and f.operation != operation:
                    continue
                if f.rate < 1.0 and self.rng.random() >= f.rate:
                    continue
                if f.count is not None:
                    f.count -= 1
                return f
        return None

    async def sleep_for(self, fault: Fault | None) -> None:
        if fault and fault.kind in ("slow", "timeout"):
            await asyncio.sleep(fault.delay_s or (30.0 if fault.kind == "timeout" else 1.0))

    def reset(self) -> None:
        with self._lock:
            self.faults.clear()
            self.log = EffectLog()


class CountsRefusals(Protocol):
    """A simulator's book: it counts the calls whose signature it refused."""

    bad_signatures: int


def refused(secret: str, request: Request, body: bytes, book: CountsRefusals, *,
            caller: str | None = None) -> JSONResponse | None:
    """The 401 for a call the hub did not sign with ``secret`` (``X-Partner-*`` headers,
    counted in ``book.bad_signatures``), or that names another ``caller`` than the one
    given; None when the signature holds."""
    lower = {k.lower(): v for k, v in request.headers.items()}
    claimed = lower.get((PARTNER_HEADERS.caller or "").lower(), "")
    try:
        if caller is not None and claimed != caller:
            raise SignatureRefused(PARTNER_HEADERS.caller or "caller", f"must be {caller}")
        check_request(secret, method=request.method, target=request_target(request.scope),
                      caller=claimed, headers=lower, body=body, names=PARTNER_HEADERS)
    except SignatureRefused as exc:
        book.bad_signatures += 1
        return JSONResponse({"detail": exc.reason}, status_code=401)
    return None


async def signed_body(request: Request, secret: str, book: CountsRefusals, *,
                      caller: str | None = None) -> bytes | JSONResponse:
    """The request's body when the hub signed it with ``secret``, else the 401 to answer
    (``refused``)."""
    body = await request.body()
    no = refused(secret, request, body, book, caller=caller)
    return body if no is None else no


async def signed_national(request: Request, secret: str, book: CountsRefusals, *,
                          invalid_code: str = "INVALID") -> NationalRequest | JSONResponse:
    """A national request the hub signed (caller ``hub``), or the answer to give: the 401
    of ``refused``, or a 400 national failure (``invalid_code``) for a body that is not a
    national envelope."""
    body = await signed_body(request, secret, book, caller="hub")
    if isinstance(body, JSONResponse):
        return body
    try:
        return NationalRequest.model_validate(json.loads(body))
    except (ValueError, ValidationError) as exc:
        return JSONResponse(NationalResponse.failure(
            f"not a national envelope: {str(exc)[:200]}", code=invalid_code)
            .model_dump(mode="json"), status_code=400)


def fault_response(fault: Fault | None, partner: str, *,
                   reject_answers: bool = False) -> JSONResponse | None:
    """The answer of a fault that acts before any effect, if it is one: ``http_5xx`` and
    ``soap_fault`` 503 "<partner> unavailable (simulated)", ``http_4xx`` 400 with
    ``fault.text``; ``reject`` 400 the same, or with ``reject_answers`` a 200
    ``{"code": fault.code, "message": fault.text}``."""
    if fault is None:
        return None
    if fault.kind in ("http_5xx", "soap_fault"):
        return JSONResponse({"detail": f"{partner} unavailable (simulated)"}, status_code=503)
    if fault.kind == "reject" and reject_answers:
        return JSONResponse({"code": fault.code, "message": fault.text})
    if fault.kind in ("http_4xx", "reject"):
        return JSONResponse({"detail": fault.text}, status_code=400)
    return None


def sim_router(state: SimState) -> APIRouter:
    """``/_sim/faults`` (GET, PUT replaces, POST appends, DELETE) and ``/_sim/effects``."""
    r = APIRouter(prefix="/_sim", tags=["simulator"])

    @r.get("/faults")
    async def get_faults() -> list[Fault]:
        return state.faults

    @r.put("/faults")
    async def put_faults(faults: list[Fault]) -> list[Fault]:
        state.faults[:] = faults
        return state.faults

    @r.post("/faults")
    async def add_fault(fault: Fault) -> list[Fault]:
        state.faults.append(fault)
        return state.faults

    @r.delete("/faults")
    async def clear_faults() -> dict[str, str]:
        state.faults.clear()
        return {"status": "cleared"}

    @r.get("/effects")
    async def effects() -> dict[str, Any]:
        return {**state.log.summary(), "order": state.log.order}

    @r.delete("/effects")
    async def reset_effects() -> dict[str, str]:
        state.reset()
        return {"status": "reset"}

    return r

"""Durable background jobs: the interface the API, the console and the CLI use.

A job is a long operation started by someone (a bulk 补发, a dead-letter group retry, a
batch upload, an import). Its state lives in SQL, so it survives a restart of the hub
(the runner resumes what was running), can be listed and cancelled, and is visible to
the role that started it and to operations. The implementation is ``services.job_runner``
(storage ``storage.jobs``); this module is only the contract, so callers do not depend
on how it is stored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from services.audit import Actor

__all__ = ["FINISHED", "JOB_STATES", "JobContext", "JobHandler", "JobState", "JobView", "Jobs"]

JobState = Literal["queued", "running", "done", "failed", "cancelled"]
JOB_STATES: tuple[JobState, ...] = ("queued", "running", "done", "failed", "cancelled")
FINISHED: frozenset[str] = frozenset({"done", "failed", "cancelled"})


@dataclass(frozen=True)
class JobView:
    """One job as its readers see it: params and report are already masked."""

    id: str
    kind: str
    state: JobState
    started_by: str
    role: str
    created_at: datetime
    updated_at: datetime
    total: int | None = None
    """How many items the job has (None while it does not know yet)."""
    done: int = 0
    failed: int = 0
    skipped: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)
    report: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    cancel_requested: bool = False

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def progress(self) -> float | None:
        """0..1 once the total is known."""
        if not self.total:
            return None if self.total is None else 1.0
        return min(1.0, (self.done + self.failed + self.skipped) / self.total)


class JobContext(Protocol):
    """What a handler sees while it runs: its params, a way to report, and a cancel flag."""

    @property
    def job_id(self) -> str: ...

    @property
    def params(self) -> Mapping[str, Any]: ...

    @property
    def actor(self) -> Actor: ...

    async def set_total(self, total: int) -> None: ...

    async def advance(self, *, done: int = 0, failed: int = 0, skipped: int = 0,
                      checkpoint: Mapping[str, Any] | None = None) -> None:
        """Count items and save where the job is (a resumed job reads ``checkpoint``)."""
        ...

    @property
    def checkpoint(self) -> Mapping[str, Any]: ...

    async def save(self) -> None:
        """Write counts and checkpoint now, not throttled (H4: before an effect a resumed
        run must know about, e.g. the letter about to be sent)."""
        ...

    async def cancelled(self) -> bool:
        """True once someone asked to cancel: the handler stops at the next item."""
        ...


JobHandler = Callable[[JobContext], Awaitable[Mapping[str, Any]]]
"""Runs a job to its end and returns its report (masked by the runner before storing)."""


class Jobs(Protocol):
    """Start, read, list and cancel jobs; ``register`` binds a kind to its handler."""

    def register(self, kind: str, handler: JobHandler) -> None: ...

    async def start(self, kind: str, params: Mapping[str, Any], who: Actor) -> JobView: ...

    async def get(self, job_id: str) -> JobView | None: ...

    async def list(self, *, kind: str | None = None, started_by: str | None = None,
                   state: str | None = None, limit: int = 50) -> list[JobView]: ...

    async def cancel(self, job_id: str, who: Actor) -> JobView | None: ...

"""What endpoints get through FastAPI dependencies: the hub's parts and the caller's role.

``create_api`` builds one ``ApiState`` and keeps it on ``app.state``; the
providers below read it per request and hand each endpoint the one service it
calls, built from the hub's ports (cheap dataclasses, so nothing is cached
that the hub could change). Only what must outlive a request lives in the
state itself: the job registries and the query gate.

An app that is not the hub's (the ops stack in tests) can include a router
``bind``-ing its own state instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials

from api.auth import BEARER, READERS, Authenticator, Principal, Role
from services.applications import ApplicationIntake
from services.dead_letters import DeadLetterDesk, Requeue
from services.deps import Deps
from services.ingress import Ingress
from services.queries import MAX_IN_FLIGHT, TaxQueries
from services.resend_jobs import ResendJobs
from services.resender import Resender
from services.student_batches import BatchJobs
from storage.audit import AuditLog
from storage.deadletters import DeadLetterStore
from storage.journal import Journal
from storage.returnfiles import ReturnFileStore

__all__ = ["AdminRole", "ApiState", "Caseworker", "Desk", "HubDeps", "IngressService", "Intake",
           "Operator", "Queries", "Reader", "ResendService", "State", "bind", "install",
           "require", "require_admin", "require_caseworker", "require_operator",
           "require_reader", "state_of"]


def _gate() -> asyncio.Semaphore:
    return asyncio.Semaphore(MAX_IN_FLIGHT)


@dataclass(frozen=True)
class ApiState:
    """What the endpoints of one app share.

    ``auth`` defaults to an authenticator that knows nobody (every admin request
    is 401). ``requeue`` defaults to ``deps.publisher.requeue``. ``health`` answers
    ``/health`` (liveness), ``readiness`` ``/health/ready``. ``today`` and
    ``clock`` (the Beijing date for age rules, unix time for signature windows)
    are for tests; by default the real ones.
    """

    deps: Deps
    audit: AuditLog
    dead_letters: DeadLetterStore
    auth: Authenticator = field(default_factory=lambda: Authenticator({}, None))
    requeue: Requeue | None = None
    health: Callable[[], Awaitable[dict[str, Any]]] | None = None
    readiness: Callable[[], Awaitable[dict[str, Any]]] | None = None
    """Each dependency the hub needs to do work -> reachable (``Hub.readiness``);
    ``/health/ready`` answers 503 when one is not."""
    today: Callable[[], date] | None = None
    clock: Callable[[], float] | None = None
    resend_jobs: ResendJobs = field(default_factory=ResendJobs)
    batch_jobs: BatchJobs = field(default_factory=BatchJobs)
    query_gate: asyncio.Semaphore = field(default_factory=_gate)


def install(app: Any, state: ApiState) -> None:
    """Keep ``state`` on ``app`` for every router included in it."""
    app.state.api = state


def bind(router: APIRouter, state: ApiState) -> APIRouter:
    """``router`` with its own state, for an app built without ``create_api``.

    The binding is a router dependency, and FastAPI solves those before an
    endpoint's own, so every provider below sees it.
    """
    async def attach(request: Request) -> None:
        request.state.api = state

    bound = APIRouter(dependencies=[Depends(attach)])
    bound.include_router(router)
    return bound


def state_of(request: Request) -> ApiState:
    """The state ``bind`` attached to this request, else the app's (``install``)."""
    state = getattr(request.state, "api", None) or getattr(request.app.state, "api", None)
    if not isinstance(state, ApiState):
        raise RuntimeError("no ApiState: build the app with api.app.build_app, or include "
                           "a router made by api.deps.bind")
    return state


# -- the caller ---------------------------------------------------------------------------

def require(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller's principal if its role is one of ``roles`` (``admin`` always
    passes); 401/403 otherwise (``Authenticator.check``)."""
    async def dependency(
        request: Request,
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> Principal:
        return await state_of(request).auth.check(request, creds, roles)

    return dependency


require_reader = require(*READERS)
require_operator = require("operations")
require_admin = require("admin")
require_caseworker = require("caseworker")
"""The resend and batch endpoints' guard (a test may override it: ``dependency_overrides``)."""

Reader = Annotated[Principal, Depends(require_reader)]
Operator = Annotated[Principal, Depends(require_operator)]
AdminRole = Annotated[Principal, Depends(require_admin)]
Caseworker = Annotated[Principal | None, Depends(require_caseworker)]


# -- the hub's parts ----------------------------------------------------------------------

async def _state(request: Request) -> ApiState:
    return state_of(request)


async def _deps(request: Request) -> Deps:
    return state_of(request).deps


State = Annotated[ApiState, Depends(_state)]
HubDeps = Annotated[Deps, Depends(_deps)]


async def _ingress(state: State) -> Ingress:
    d, s = state.deps, state.deps.settings
    return Ingress(publisher=d.publisher, journal=d.journal, core=d.core,
                   max_body_bytes=s.max_body_bytes, query_timeout_s=s.query_timeout_s)


async def _intake(state: State) -> ApplicationIntake:
    d = state.deps
    if d.applications is None:
        raise RuntimeError("no application store: this hub has no channel door")
    return ApplicationIntake(store=d.applications,  # type: ignore[arg-type]  # the lanes' view
                             publisher=d.publisher, journal=d.journal,
                             channels=d.settings.channels, today=state.today)


async def _queries(state: State) -> TaxQueries:
    d = state.deps
    # STORED_ANSWERS queries read the return files F5 stored, in the journal's database.
    stored = ReturnFileStore(d.journal.engine) if isinstance(d.journal, Journal) else None
    return TaxQueries(tax=d.tax, journal=d.journal, timeout_s=d.settings.query_timeout_s,
                      gate=state.query_gate, stored=stored)


async def _resender(state: State) -> Resender:
    d = state.deps
    return Resender(core=d.core, publisher=d.publisher, journal=d.journal, audit=state.audit)


async def _desk(state: State) -> DeadLetterDesk:
    d = state.deps
    return DeadLetterDesk(store=state.dead_letters, audit=state.audit, idem=d.idem,
                          names=d.names, send=state.requeue or d.publisher.requeue)


IngressService = Annotated[Ingress, Depends(_ingress)]
Intake = Annotated[ApplicationIntake, Depends(_intake)]
Queries = Annotated[TaxQueries, Depends(_queries)]
ResendService = Annotated[Resender, Depends(_resender)]
Desk = Annotated[DeadLetterDesk, Depends(_desk)]

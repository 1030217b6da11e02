"""Hub + simulators in one event loop, on real sockets: used by the demo, replay and tests.

``running_stack`` starts the core and tax simulators, then a hub in its own
broker namespace and database, wired to them; it yields handles to all three
and removes the namespace's queues on exit (unless told to keep them). That
hub is in development mode (``env="development"``): it talks to simulators with
the development secrets, and the development admin tokens (``dev-admin``, ...)
work on it. The simulators get the hub's configured partner secrets: tax signs its
callbacks with ``partners.tax.secret``, and ``Stack.partner_auth`` signs whatever a
test or the demo sends on a partner's behalf.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import socket
import time
import uuid
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from adapters.signing import SignedAuth
from broker.topology import delete_topology
from config.settings import HubSettings, PartnerConfig
from retry.policy import RetryPolicy
from simulators.channels import ChannelInbox
from simulators.channels import create_app as channels_app
from simulators.core import CoreStore
from simulators.core import create_app as core_app
from simulators.difficulty import DifficultySims, start_difficulty
from simulators.drugs import start_drugs
from simulators.finance import start_finance
from simulators.institutions import start_reconciliation
from simulators.insurer import start_serious_illness
from simulators.prescription import start_prescription
from simulators.serving import exit_servers_since, reserve_port, serve_app, server_mark
from simulators.simkit import SimState
from simulators.tax import create_app as tax_app
from simulators.transfer import start_transfer
from simulators.union import UnionInbox, with_union
from simulators.union import create_app as union_app
from simulators.voucher import start_voucher
from simulators.warnings_recv import WarningInbox
from simulators.warnings_recv import create_app as warnings_app

__all__ = ["Stack", "fast_policies", "running_stack", "wait_until_settled"]

TERMINAL = ("delivered", "rejected", "dead", "duplicate")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fast_policies(settings: HubSettings, *, max_attempts: int = 5,
                  delays_ms: tuple[int, ...] = (300, 600, 1200, 2400)) -> dict[str, Any]:
    """Settings overrides with short delays, so a demo or test sees retries in seconds."""
    policy = RetryPolicy(max_attempts=max_attempts, max_age_s=3600, inprocess_attempts=2,
                         inprocess_min_s=0.02, inprocess_max_s=0.1, delays_ms=delays_ms)
    partners = {name: PartnerConfig(**{**p.model_dump(), "policies": {"default": policy},
                                       "timeout_s": min(p.timeout_s, 2.0)})
                for name, p in settings.partners.items()}
    channels = {name: c.model_copy(update={"policy": policy, "timeout_s": min(c.timeout_s, 2.0)})
                for name, c in settings.channels.items()}
    return {"partners": partners, "channels": channels, "delay_tiers_ms": delays_ms}


@dataclass
class Stack:
    hub: Any
    hub_url: str
    core_url: str
    tax_url: str
    core_state: SimState
    tax_state: SimState
    store: CoreStore
    settings: HubSettings
    channel_state: SimState
    inbox: ChannelInbox
    tax_sim: Any = None
    """The tax simulator behind ``tax_url`` (its rules' book, its batch desk)."""
    difficulty: DifficultySims | None = None
    """F7: the departments and the 医疗救助平台 (``simulators.difficulty``)."""
    warn_state: SimState | None = None
    """F8: the departments receiving warning lists (``simulators.warnings_recv``)."""
    warn_inbox: WarningInbox | None = None
    union_state: SimState | None = None
    """F12: the city union and its units (``simulators.union``), and the secret both sign
    with."""
    union_inbox: UnionInbox | None = None
    union_secret: str = ""
    sims: dict[str, Any] = field(default_factory=dict)
    """The simulators of the later partners (F9-F11...), each under its own key, as the
    ``start_*`` function that served it put them there."""

    def partner_secret(self, partner: str) -> str:
        """The secret the hub checks ``partner``'s signatures with."""
        return self.settings.partners[partner].secret.get_secret_value()

    def partner_auth(self, partner: str) -> SignedAuth:
        """``httpx`` ``auth=`` that signs a request as ``partner`` (core, tax)."""
        return SignedAuth(partner, self.partner_secret(partner))

    async def review_pending(self, http: httpx.AsyncClient, *, approved: bool = True,
                             reason: str = "") -> int:
        """Core's caseworkers review what waits for them (在职转退休, 单位信息维护): each
        review goes to the hub as core's signed H2502 event; returns how many were sent."""
        sent = 0
        for i, app in enumerate(self.store.awaiting_review()):
            body = self.store.review_request(app, approved=approved, reason=reason, seq=i)
            r = await http.post(f"{self.hub_url}/partners/core/events", json=body,
                                auth=self.partner_auth("core"))
            r.raise_for_status()
            sent += 1
        return sent

    async def effects(self, which: str) -> dict[str, Any]:
        state = self.core_state if which == "core" else self.tax_state
        return {**state.log.summary(), "order": state.log.order}


@contextlib.asynccontextmanager
async def running_stack(settings: HubSettings, *, store: CoreStore | None = None,
                        reject_suffixes: Collection[str] = (),
                        namespace: str | None = None, keep_topology: bool = False,
                        database_url: str | None = None,
                        overrides: dict[str, Any] | None = None) -> AsyncIterator[Stack]:
    from bootstrap import build_hub
    from storage.migrate import upgrade

    ns = namespace or f"t{uuid.uuid4().hex[:10]}"
    # Held until the hub serves on it: the simulators started meanwhile cannot take it.
    hub_sock = reserve_port()
    mark = server_mark()
    hub_port = int(hub_sock.getsockname()[1])
    hub_url = f"http://127.0.0.1:{hub_port}"
    core_state, tax_state = SimState(), SimState()
    store = store or CoreStore.seed(5, 50, rng_seed=int(time.time()))
    db = database_url or f"sqlite+aiosqlite:///./.run/{ns}.db"
    channel_state, inbox = SimState(), ChannelInbox()
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(hub_sock.close)  # closed by serve_app too; twice is harmless
        core_url = await stack.enter_async_context(serve_app(core_app(core_state, store=store)))
        channels_url = await stack.enter_async_context(serve_app(
            channels_app(settings.channels, channel_state, inbox)))
        channels = {name: c.model_copy(update={
            "callback_url": f"{channels_url}/channels/{name}/callback"})
            for name, c in {**settings.channels,
                            **(overrides or {}).get("channels", {})}.items()}
        partners = (overrides or {}).get("partners", settings.partners)
        tax_application = tax_app(tax_state, callback_url=f"{hub_url}/partners/tax/callback",
                                  callback_secret=partners["tax"].secret.get_secret_value(),
                                  reject_suffixes=reject_suffixes)
        tax_base = await stack.enter_async_context(serve_app(tax_application))
        difficulty = await start_difficulty(stack, partners)  # F7: departments, platform
        warn = (overrides or {}).get("warnings", settings.warnings)
        warn_state, warn_inbox = SimState(), WarningInbox()
        warn_url = await stack.enter_async_context(serve_app(
            warnings_app(warn.departments, warn_state, warn_inbox)))
        warn = warn.model_copy(update={"departments": {
            n: d.model_copy(update={"endpoint": warn_url}) for n, d in warn.departments.items()}})
        union_secret, union_state, union_inbox = "dev-trade_union-secret", SimState(), UnionInbox()
        union_url = await stack.enter_async_context(serve_app(
            union_app(union_secret, union_state, union_inbox)))
        s = settings.model_copy(update={
            "env": "development", "namespace": ns, "database_url": db, "http_port": hub_port,
            "core_url": core_url, "tax_url": f"{tax_base}/tax/ws", "callback_base": hub_url,
            "returnfiles": settings.returnfiles.model_copy(update={"enabled": False}),
            "institution_recon_daily_hour": None,  # F14: tests and the demo ask for runs
            **(overrides or {}), "partners": difficulty.partners,
            "channels": channels, "warnings": warn})
        s = with_union(s, union_url, union_secret)
        sims: dict[str, Any] = {}
        # Later partners: each ``start_*`` serves its simulators on ``stack``, keeps its
        # handles in ``sims`` and answers the settings pointing the hub at them.
        s = await start_prescription(stack, s, sims)  # F11 电子处方中心
        s = await start_drugs(stack, s, sims)  # F11 药房ERP, 医保监管平台
        s = await start_transfer(stack, s, sims)  # F9 转移接续
        s = await start_finance(stack, s, sims)  # F10 用友 finance
        s = await start_reconciliation(stack, s, sims)  # F14 对账: HIS, core ledger
        s = await start_voucher(stack, s, sims)  # F13 电子凭证, 凭证库, 医税平台
        s = await start_serious_illness(stack, s, sims)  # F15 大病保险承办机构
        if database_url is None:
            await asyncio.to_thread(_fresh_sqlite, Path(f".run/{ns}.db"))
        else:
            await asyncio.to_thread(upgrade, db)
        hub = build_hub(s)
        try:
            # On exit the hub stops first, then every simulator is told to stop at once.
            stack.callback(exit_servers_since, mark)
            await stack.enter_async_context(serve_app(hub.api, sock=hub_sock))
            yield Stack(hub, hub_url, core_url, f"{tax_base}/tax/ws", core_state, tax_state,
                        store, s, channel_state, inbox, tax_application.state.tax,
                        warn_state=warn_state, warn_inbox=warn_inbox,
                        union_state=union_state, union_inbox=union_inbox,
                        union_secret=union_secret, difficulty=difficulty, sims=sims)
        finally:
            if not keep_topology:
                await stack.aclose()
                routes = [r.name for r in hub.routes]
                await delete_topology(s.amqp_url, hub.names, routes, s.delay_tiers_ms)


_template: Path | None = None
"""A migrated SQLite database, made once per process and copied for each stack."""


def _fresh_sqlite(path: Path) -> None:
    """``path`` as a freshly migrated database: a copy of the process's template (alembic
    runs once per process, not once per stack)."""
    global _template
    from storage.migrate import upgrade

    if _template is None or not _template.exists():
        template = Path(f".run/template-{os.getpid()}.db")
        template.unlink(missing_ok=True)
        upgrade(f"sqlite+aiosqlite:///./{template}")
        atexit.register(template.unlink, missing_ok=True)
        _template = template
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_template, path)


async def wait_until_settled(stack: Stack, expected: int, timeout: float,
                             poll_s: float = 0.25) -> dict[str, int]:
    """Poll transaction states until ``expected`` are terminal or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = await stack.hub.deps.journal.status_counts()
        if sum(counts.get(k, 0) for k in TERMINAL) >= expected:
            break
        await asyncio.sleep(poll_s)
    return counts

"""Citizen-channel simulators (我的南京, 政务办, 网厅, 人社): they submit, and take results.

A channel in F1 does two things the hub must survive: it submits signed
applications (``submit``), and it receives the hub's signed result push on its
callback URL. The callback endpoint verifies the hub's HMAC signature (over the
canonical request, ``contracts.signing``) with the channel's secret (a bad one is
401, and counted), takes a repeated push (same ``X-Hub-Serial``) as a replay, and
counts every result as an effect in ``SimState.log`` keyed by application id, so
tests count at the channel, not in the hub's log. Faults from ``/_sim/faults``
(``operation`` = channel name): http_5xx/soap_fault 503, http_4xx 400, slow (answer
after the delay), timeout (take the result, then sleep: the hub gives up and pushes
again).

Routes: ``POST /channels/{name}/callback``, ``GET /channels/{name}/results``,
``GET /channels/health``, ``/_sim/*``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from adapters.channels.auth import (
    ChannelAuthError,
    MemoryNonceStore,
    applications_target,
    signed_headers,
    verify_request,
)
from config.settings import ChannelConfig
from contracts.signing import request_target
from simulators.simkit import SimState, sim_router

__all__ = ["ChannelInbox", "create_app", "submit"]


@dataclass
class ChannelInbox:
    """What the channels received: results by application id, when, and what was refused."""

    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    received_at: dict[str, float] = field(default_factory=dict)
    bad_signatures: int = 0

    def of(self, channel: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.results.items() if v.get("_channel") == channel}

    def status_of(self, application_id: str) -> str | None:
        """The status the channel was told for an application (completed, rejected), if any."""
        result = self.results.get(application_id)
        return None if result is None else str(result.get("status"))


def create_app(channels: Mapping[str, ChannelConfig], state: SimState | None = None,
               inbox: ChannelInbox | None = None) -> FastAPI:
    """All four channels in one app; ``app.state.inbox`` is what they received."""
    sim = state or SimState()
    box = inbox or ChannelInbox()
    nonces = MemoryNonceStore()
    app = FastAPI(title="Channel simulators (我的南京, 政务办, 网厅, 人社)")
    app.state.sim, app.state.inbox = sim, box
    app.include_router(sim_router(sim))

    @app.post("/channels/{name}/callback")
    async def callback(name: str, request: Request) -> JSONResponse:
        cfg = channels.get(name)
        if cfg is None:
            return JSONResponse({"detail": f"no channel {name}"}, 404)
        body = await request.body()
        try:
            await verify_request(name, cfg, request.headers, body, nonces,
                                 method=request.method, target=request_target(request.scope))
        except ChannelAuthError as exc:
            box.bad_signatures += 1
            return JSONResponse({"detail": exc.reason}, 401)
        result = json.loads(body)
        app_id = str(result.get("application_id", ""))
        fault = sim.draw(app_id, operation=name)
        kind = fault.kind if fault else None
        if kind in ("http_5xx", "soap_fault"):
            return JSONResponse({"detail": "channel unavailable (simulated)"}, 503)
        if kind == "http_4xx":
            return JSONResponse({"detail": "bad request (simulated)"}, 400)
        if kind == "slow":
            await sim.sleep_for(fault)
        if app_id in box.results:
            sim.log.replays += 1
        else:
            box.results[app_id] = {**result, "_channel": name}
            box.received_at[app_id] = time.monotonic()
            sim.log.record(f"{name}:{app_id}", entity=app_id, value=result.get("status"))
        if kind == "timeout":
            await sim.sleep_for(fault)
        return JSONResponse({"code": 0, "msg": "received"})

    @app.get("/channels/{name}/results")
    async def results(name: str) -> dict[str, Any]:
        return box.of(name)

    @app.get("/channels/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "results": len(box.results),
                "bad_signatures": box.bad_signatures}

    return app


async def submit(http: httpx.AsyncClient, hub_url: str, channel: str, cfg: ChannelConfig,
                 app_type: str, request_id: str, payload: dict[str, Any]) -> httpx.Response:
    """One signed application, as a channel sends it (``POST /channels/{channel}/applications``)."""
    body = json.dumps({"type": app_type, "request_id": request_id, "payload": payload},
                      ensure_ascii=False).encode()
    secret = cfg.secret.get_secret_value()
    url = httpx.URL(f"{hub_url.rstrip('/')}{applications_target(channel)}")
    headers = ({"X-Api-Key": secret} if cfg.auth == "api-key" else signed_headers(
        secret, body, method="POST", target=url.raw_path.decode("ascii"), channel=channel))
    return await http.post(url, content=body,
                           headers=headers | {"Content-Type": "application/json"})

"""Metrics and live state over HTTP.

    GET /metrics      Prometheus text format (``kernel.metrics``: every name ``hub_``);
                      bearer token: any admin API token (every role reads) or the
                      dedicated ``metrics_token`` Prometheus scrapes with
    GET /admin/live   the live state as JSON (``services.live_state``): queue depth and
                      consumers per route, rates, breakers, tickers, jobs, deadlines
                      (every role)

Every door authenticates: without a valid token both answer 401. ``install`` adds the
middleware counting the hub's own requests (``hub_http_requests_total``) by the route's
path template (never the path itself: ids in paths would make a label per request).
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import Scope

from api.auth import BEARER
from api.deps import Reader, State, state_of
from kernel.metrics import HubMetrics

__all__ = ["count_request", "install", "router"]

router = APIRouter(tags=["ops"])


async def _scraper(request: Request, creds: Annotated[
        HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> str:
    """Who scrapes: the metrics token, else any principal (roles as ``api.auth``)."""
    state = state_of(request)
    token = creds.credentials if creds else ""
    wanted = state.deps.settings.metrics_token.get_secret_value()
    if token and wanted and hmac.compare_digest(token.encode(), wanted.encode()):
        return "metrics"
    who = await state.auth.check(request, creds, ())
    return who.user


@router.get("/metrics", summary="Prometheus metrics (hub_*); the metrics token or any "
            "admin token", response_class=Response)
async def metrics(state: State, _who: Annotated[str, Depends(_scraper)]) -> Response:
    deps = state.deps
    await deps.live.refresh(deps)
    return Response(generate_latest(deps.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/admin/live", summary="Live state: queues, consumers, rates, breakers, "
            "tickers, jobs, deadlines (every role)")
async def live(state: State, _who: Reader) -> dict[str, Any]:
    return await state.deps.live.view(state.deps)


def count_request(scope: Scope, status: int) -> None:
    """``hub_http_requests_total{path_template,status}`` for one answered request, by its
    route's template (``unmatched`` without one); called by ``api.access_log.AccessLog``,
    the one middleware that already watches every request's status and route."""
    route = scope.get("route")
    template = getattr(route, "path", None) or "unmatched"
    state = getattr(getattr(scope.get("app"), "state", None), "api", None)
    metrics = getattr(getattr(state, "deps", None), "metrics", None)
    if isinstance(metrics, HubMetrics):
        metrics.http_request(template, status)


def install(app: Any) -> None:
    """Serve ``router`` on ``app`` (its requests are counted by ``count_request``)."""
    app.include_router(router)


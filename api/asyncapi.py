"""The broker's AsyncAPI document (``broker.asyncapi``), served by the hub.

    GET /asyncapi.json   the AsyncAPI 3.0 document of this hub's namespace (any role)
    GET /asyncapi        the same as a plain server-rendered page: exchanges, queues, lanes
                         and message types with their payload models (any role; no script,
                         no CDN: it works on an offline intranet)

The document is built once per namespace, broker and wait tiers (about 40 ms) and kept;
the broker's credentials never appear in it.
"""

from __future__ import annotations

import functools
import html
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse

from api.deps import HubDeps, Reader
from broker.asyncapi import asyncapi_document
from routes.lanes import ROUTES

__all__ = ["document", "render_html", "router"]

router = APIRouter(tags=["ops"])


@functools.lru_cache(maxsize=8)
def _cached(namespace: str, amqp_url: str, tiers: tuple[int, ...]) -> dict[str, Any]:
    return asyncapi_document(ROUTES, namespace=namespace, amqp_url=amqp_url, tiers_ms=tiers)


def document(deps: Any) -> dict[str, Any]:
    """The document of the hub ``deps`` belongs to (its namespace, broker and tiers)."""
    s = deps.settings
    return _cached(s.namespace, s.amqp_url, tuple(s.delay_tiers_ms))


@router.get("/asyncapi.json", summary="AsyncAPI 3.0 document of the broker side: every "
            "exchange, queue and message schema (any role)")
async def asyncapi_json(_who: Reader, deps: HubDeps) -> JSONResponse:
    return JSONResponse(document(deps))


@router.get("/asyncapi", response_class=HTMLResponse,
            summary="The AsyncAPI document as a plain page (any role; offline)")
async def asyncapi_html(_who: Reader, deps: HubDeps) -> HTMLResponse:
    return HTMLResponse(render_html(document(deps)))


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fields(doc: dict[str, Any], message: dict[str, Any]) -> str:
    """The payload model's top-level fields, ``*`` marking the required ones."""
    model = message.get("x-payload-model")
    schema = doc["components"]["schemas"].get(model or "", {})
    required = set(schema.get("required", ()))
    names = [f"{n}{'*' if n in required else ''}" for n in schema.get("properties", {})]
    return ", ".join(names) if names else "free-form object"


def render_html(doc: dict[str, Any]) -> str:
    """The document as one HTML page with tables, no script and no external asset (the
    console may embed it)."""
    rows = []
    for cid, ch in doc["channels"].items():
        amqp = ch["bindings"]["amqp"]
        kind = amqp["exchange"]["type"] + " exchange" if amqp["is"] == "routingKey" else "queue"
        keys = ", ".join(ch.get("x-routing-keys", ())) or ", ".join(ch["messages"])
        rows.append(f"<tr id='{_e(cid)}'><td>{_e(cid)}</td><td><code>{_e(ch['address'])}"
                    f"</code></td><td>{_e(kind)}</td><td>{_e(ch.get('x-partner', ''))}</td>"
                    f"<td>{_e(keys)}</td><td>{_e(ch.get('x-dlq', ''))}</td>"
                    f"<td>{_e(ch.get('description', ''))}</td></tr>")
    msgs = [f"<tr id='msg-{_e(name)}'><td><code>{_e(name)}</code></td>"
            f"<td>{_e(m.get('x-payload-model') or '-')}</td><td>{_e(_fields(doc, m))}</td></tr>"
            for name, m in sorted(doc["components"]["messages"].items())]
    ops = [f"<tr><td>{_e(oid)}</td><td>{_e(op['action'])}</td>"
           f"<td>{_e(op['channel']['$ref'].rsplit('/', 1)[-1])}</td>"
           f"<td>{_e(op.get('summary', ''))}</td></tr>" for oid, op in doc["operations"].items()]
    info = doc["info"]
    server = next(iter(doc["servers"].values()))
    style = ("body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;"
             "margin-bottom:2em}td,th{border:1px solid #ccc;padding:.25em .5em;"
             "vertical-align:top;font-size:90%}th{background:#eee;text-align:left}")
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(info['title'])}</title><style>{style}</style></head><body>"
        f"<h1>{_e(info['title'])}</h1><p>AsyncAPI {_e(doc['asyncapi'])}, version "
        f"{_e(info['version'])}; broker {_e(server['protocol'])}://{_e(server['host'])}"
        f"{_e(server['pathname'])}. {_e(info.get('description', ''))} "
        "The document: <a href='asyncapi.json'>asyncapi.json</a>.</p>"
        f"<h2>Channels ({len(rows)})</h2><table><tr><th>id</th><th>address</th><th>kind</th>"
        "<th>partner</th><th>routing keys / messages</th><th>DLQ</th><th>about</th></tr>"
        + "".join(rows) + "</table>"
        f"<h2>Messages ({len(msgs)})</h2><table><tr><th>type</th><th>payload model</th>"
        "<th>payload fields (* required)</th></tr>" + "".join(msgs) + "</table>"
        f"<h2>Operations ({len(ops)})</h2><table><tr><th>id</th><th>action</th>"
        "<th>channel</th><th>summary</th></tr>" + "".join(ops) + "</table></body></html>")

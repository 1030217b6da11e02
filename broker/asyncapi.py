"""The broker side of the hub as an AsyncAPI 3.0 document, generated from the code.

What it reads, so it cannot drift from what runs:

- the lanes (``routes.lanes.ROUTES``, passed in): one channel per work queue
  (``kernel.names.QueueNames.queue``), with the routing keys bound to it on ``<ns>.work``,
  its DLQ, its partner and its handler; one ``receive`` operation per lane;
- the topology (``broker.topology``): the four exchanges, the wait tiers
  (``delay_tiers_ms``), the DLQs and the queue arguments (quorum, delivery limit,
  dead-letter target), and the channel AMQP door (``<ns>.channels`` ->
  ``<ns>.q.channel.inbound``);
- the message schemas: every message is the envelope ``contracts.envelope.HubMessage``
  whose ``payload`` is the pydantic model the lane's contract defines for that type
  (``payload_models``: the tax catalogue's ``contracts.taxcat.model_for`` and the typed
  hub messages); a type whose payload is a free-form object built by its lane says so
  in its description (``x-payload-model: null``).

Why not FastStream's generator (``faststream.specification.AsyncAPI``): the hub declares its
consumers with a pass-through decoder and ``apply_types=False`` (``broker.rabbit``), so
FastStream sees only the queue names, an empty payload for every one of them, no
exchanges, bindings, wait tiers or DLQs, and it needs a live broker client (which the
hub builds at start and rebuilds after a loss). The document here carries what
FastStream would (servers, queue channels with AMQP bindings, receive operations) plus
all of that.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from broker.topology import (
    DELAY_HEADER,
    DELIVERY_LIMIT,
    INBOUND_ROUTE,
    PARKED_DELIVERY_LIMIT,
)
from contracts.channels import ApplicationRequest, ApplicationReview
from contracts.employee import SyncStatusUpdate, TaxFeedback
from contracts.envelope import HubMessage
from contracts.finance import ClosurePage, RefundOrder
from contracts.taxcat import OPS_BY_TYPE, model_for
from kernel.names import QueueNames
from kernel.runtime import HEADER_REASON, HEADER_REASON_CODE, HEADER_ROUTE, Route

__all__ = ["ASYNCAPI_VERSION", "asyncapi_document", "channel_id", "payload_models"]

ASYNCAPI_VERSION: Final = "3.0.0"
AMQP_BINDING: Final = "0.3.0"
_REF = "#/components/schemas/{model}"

_TYPED: Final[dict[str, type[BaseModel]]] = {
    "tax.feedback": TaxFeedback,
    "core.sync_status": SyncStatusUpdate,
    "channel.review": ApplicationReview,
    "refund.order": RefundOrder,
    "refund.closure": ClosurePage,
}
"""Hub message types (not in the tax catalogue) whose payload is a contract model."""


def payload_models(types: Iterable[str]) -> dict[str, type[BaseModel] | None]:
    """Each type's payload model: the tax catalogue's, a typed hub message's, else None
    (a free-form object its lane builds)."""
    out: dict[str, type[BaseModel] | None] = {}
    for t in types:
        if t in _TYPED:
            out[t] = _TYPED[t]
        elif t in OPS_BY_TYPE:
            out[t] = model_for(OPS_BY_TYPE[t].name)
        else:
            out[t] = None
    return out


def channel_id(route: str) -> str:
    """The channel id of a lane's work queue (AsyncAPI ids: letters, digits, ``._-``)."""
    return f"queue.{route}"


def _server(amqp_url: str) -> dict[str, Any]:
    """The broker without its credentials."""
    parts = urlsplit(amqp_url)
    host = parts.hostname or "localhost"
    return {"host": f"{host}:{parts.port or 5672}", "pathname": parts.path or "/",
            "protocol": "amqps" if parts.scheme == "amqps" else "amqp",
            "protocolVersion": "0.9.1",
            "description": "RabbitMQ (quorum queues, publisher confirms)"}


def _exchange(name: str, kind: str, description: str) -> dict[str, Any]:
    return {"address": name, "title": name, "description": description, "messages": {},
            "bindings": {"amqp": {"is": "routingKey", "bindingVersion": AMQP_BINDING,
                                  "exchange": {"name": name, "type": kind, "durable": True,
                                               "autoDelete": False, "vhost": "/"}}}}


def _queue(name: str, description: str, arguments: Mapping[str, Any],
           messages: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    return {"address": name, "title": name, "description": description,
            "messages": dict(messages),
            "bindings": {"amqp": {"is": "queue", "bindingVersion": AMQP_BINDING,
                                  "queue": {"name": name, "durable": True, "exclusive": False,
                                            "autoDelete": False, "vhost": "/"}}},
            "x-queue-arguments": dict(arguments), **extra}


def _msg_ref(type_: str) -> dict[str, str]:
    return {"$ref": f"#/components/messages/{type_}"}


def _headers_schema() -> dict[str, Any]:
    """The AMQP headers the hub writes (``HubMessage.headers``, retries, tracing)."""
    s = {"type": "string"}
    return {"type": "object", "properties": {
        "x-attempt": {"type": "integer", "description": "delivery attempts so far"},
        "x-causation-id": s, "x-idempotency-key": s, "x-source": s, "x-target": s,
        "x-entity-key": {"type": "string", "description": "ordering key (person or unit)"},
        "x-first-seen": {"type": "string", "format": "date-time"},
        "x-failures": {"type": "string", "description": "JSON list of the last failures"},
        "traceparent": {"type": "string", "description": "W3C trace context "
                        "(kernel.tracing): one trace across HTTP and AMQP hops"},
        "tracestate": s}}


def asyncapi_document(routes: Sequence[Route], *, namespace: str = "hub",
                      amqp_url: str = "amqp://localhost:5672/",
                      tiers_ms: Sequence[int] = (), title: str = "Nanjing medical-insurance "
                      "integration hub: broker", version: str = "0.1.0") -> dict[str, Any]:
    """The AsyncAPI 3.0 document of ``routes`` in ``namespace`` (module docstring)."""
    names = QueueNames(namespace)
    ns = namespace
    types = sorted({t for r in routes for t in r.bindings})
    models = payload_models(types)
    used = sorted({m for m in models.values() if m is not None}, key=lambda m: m.__name__)
    wanted: list[type[BaseModel]] = [HubMessage, ApplicationRequest, *used]
    _, top = models_json_schema([(m, "validation") for m in wanted], ref_template=_REF)
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    messages: dict[str, Any] = {}
    for t in types:
        model = models[t]
        payload_schema = ({"$ref": _REF.format(model=model.__name__)} if model is not None
                          else {"type": "object", "additionalProperties": True,
                                "description": "free-form object built by the lane"})
        messages[t] = {
            "name": t, "title": t, "contentType": "application/json",
            "summary": f"hub message {t}",
            "description": (f"the envelope with a {model.__name__} payload" if model
                            else "the envelope; its payload has no contract model"),
            "correlationId": {"location": "$message.payload#/correlation_id"},
            "headers": {"$ref": "#/components/schemas/HubHeaders"},
            "payload": {"allOf": [
                {"$ref": _REF.format(model="HubMessage")},
                {"type": "object", "properties": {"type": {"const": t},
                                                  "payload": payload_schema}}]},
            "x-payload-model": model.__name__ if model else None}
    messages["channel.inbound.application"] = {
        "name": "channel.inbound.application", "title": "ApplicationRequest over AMQP",
        "contentType": "application/json",
        "description": "a citizen channel's application (broker.channel_inbound), routing "
                       "key = channel name, signed like the HTTP door",
        "payload": {"$ref": _REF.format(model="ApplicationRequest")},
        "x-payload-model": "ApplicationRequest"}
    messages["dead.letter"] = {
        "name": "dead.letter", "title": "a parked message", "contentType": "application/json",
        "description": f"the body as it failed, with {HEADER_REASON}, {HEADER_REASON_CODE} and "
                       f"{HEADER_ROUTE} headers (kernel.runtime)",
        "payload": {"description": "the original body (an envelope, or unreadable bytes)"}}
    schemas["HubHeaders"] = _headers_schema()

    every = {t: _msg_ref(t) for t in types}
    channels: dict[str, Any] = {
        "exchange.work": _exchange(f"{ns}.work", "topic",
                                   "every hub message, routing key = its type") | {
            "messages": every},
        "exchange.redeliver": _exchange(f"{ns}.redeliver", "direct",
                                        "back from a wait tier, routing key = work queue"),
        "exchange.retry": _exchange(f"{ns}.retry", "headers",
                                    f"to a wait tier by the {DELAY_HEADER} header"),
        "exchange.dlx": _exchange(f"{ns}.dlx", "direct",
                                  "parking, routing key = the work queue it came from"),
        "exchange.channels": _exchange(f"{ns}.channels", "topic",
                                       "the channel AMQP door (broker.channel_inbound)") | {
            "messages": {"application": _msg_ref("channel.inbound.application")}},
    }
    dead = {"dead": _msg_ref("dead.letter")}
    operations: dict[str, Any] = {}
    for r in routes:
        q, dlq = names.queue(r.name), names.dlq(r.name)
        refs = {t: _msg_ref(t) for t in r.bindings}
        cid = channel_id(r.name)
        channels[cid] = _queue(
            q, f"lane {r.name}: partner {r.partner}, handler "
               f"{r.handler.__module__}.{r.handler.__qualname__}",
            {"x-queue-type": "quorum", "x-dead-letter-exchange": f"{ns}.dlx",
             "x-dead-letter-routing-key": q, "x-delivery-limit": DELIVERY_LIMIT,
             "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"},
            refs, **{"x-route": r.name, "x-partner": r.partner,
                     "x-exchange": f"{ns}.work", "x-routing-keys": list(r.bindings),
                     "x-dlq": dlq, "x-calls-partner": r.calls_partner})
        channels[f"dlq.{r.name}"] = _queue(
            dlq, f"dead letters of lane {r.name}",
            {"x-queue-type": "quorum", "x-delivery-limit": PARKED_DELIVERY_LIMIT}, dead,
            **{"x-route": r.name})
        operations[f"consume.{r.name}"] = {
            "action": "receive", "channel": {"$ref": f"#/channels/{cid}"},
            "title": f"{r.name} consumes",
            "summary": f"lane {r.name} takes {', '.join(r.bindings)} (manual ack)",
            "messages": [{"$ref": f"#/channels/{cid}/messages/{t}"} for t in r.bindings],
            "bindings": {"amqp": {"ack": True, "bindingVersion": AMQP_BINDING}}}
    for t in types:
        operations[f"publish.{t}"] = {
            "action": "send", "channel": {"$ref": "#/channels/exchange.work"},
            "summary": f"publish {t} (persistent, mandatory, confirmed)",
            "messages": [{"$ref": f"#/channels/exchange.work/messages/{t}"}],
            "bindings": {"amqp": {"cc": [t], "deliveryMode": 2, "mandatory": True,
                                  "bindingVersion": AMQP_BINDING}}}
    for tier in tiers_ms:
        channels[f"wait.{tier}ms"] = _queue(
            names.wait(tier), f"retry wait tier of {tier} ms, then back to its work queue",
            {"x-queue-type": "quorum", "x-message-ttl": tier,
             "x-dead-letter-exchange": f"{ns}.redeliver",
             "x-delivery-limit": PARKED_DELIVERY_LIMIT,
             "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"},
            every, **{"x-match": {"x-match": "all", DELAY_HEADER: tier}})
    inbound = names.queue(INBOUND_ROUTE)
    channels[channel_id(INBOUND_ROUTE)] = _queue(
        inbound, "the channel AMQP door's queue, bound to every key of the channels exchange",
        {"x-queue-type": "quorum", "x-dead-letter-exchange": f"{ns}.dlx",
         "x-dead-letter-routing-key": inbound, "x-delivery-limit": DELIVERY_LIMIT},
        {"application": _msg_ref("channel.inbound.application")},
        **{"x-route": INBOUND_ROUTE, "x-dlq": names.dlq(INBOUND_ROUTE)})
    channels[f"dlq.{INBOUND_ROUTE}"] = _queue(
        names.dlq(INBOUND_ROUTE), "refused or crash-looping channel door messages",
        {"x-queue-type": "quorum", "x-delivery-limit": PARKED_DELIVERY_LIMIT}, dead)
    operations[f"consume.{INBOUND_ROUTE}"] = {
        "action": "receive", "channel": {"$ref": f"#/channels/{channel_id(INBOUND_ROUTE)}"},
        "summary": "the channel AMQP door hands each application to the HTTP endpoint",
        "messages": [{"$ref": f"#/channels/{channel_id(INBOUND_ROUTE)}/messages/application"}]}
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {"title": title, "version": version,
                 "description": "Exchanges, queues and message schemas of one hub namespace, "
                                "generated from the code (broker/asyncapi.py)."},
        "defaultContentType": "application/json",
        "servers": {"rabbitmq": _server(amqp_url)},
        "channels": channels, "operations": operations,
        "components": {"messages": messages, "schemas": schemas}}

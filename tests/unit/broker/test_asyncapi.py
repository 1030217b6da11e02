"""The AsyncAPI document (broker.asyncapi) lists every lane and resolves every reference."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from api.asyncapi import render_html
from broker.asyncapi import asyncapi_document, channel_id, payload_models
from broker.topology import INBOUND_ROUTE
from kernel.names import QueueNames
from routes.lanes import ROUTES

TIERS = (1_000, 5_000)
_ID = re.compile(r"^[A-Za-z0-9._-]+$")


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return asyncapi_document(ROUTES, namespace="hub", tiers_ms=TIERS,
                             amqp_url="amqp://hubuser:s3cret@rabbit.internal:5672/prod")


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        assert isinstance(node, dict) and part in node, f"dangling $ref {ref}"
        node = node[part]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [
            r for k, v in node.items() if k != "$ref" for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_route_has_its_channel_queue_dlq_messages_and_consumer(
        doc: dict[str, Any]) -> None:
    names = QueueNames("hub")
    assert len({r.name for r in ROUTES}) == len(ROUTES) > 30
    for r in ROUTES:
        ch = doc["channels"][channel_id(r.name)]
        assert ch["address"] == names.queue(r.name)
        assert ch["bindings"]["amqp"]["queue"]["name"] == names.queue(r.name)
        assert ch["x-routing-keys"] == list(r.bindings) and ch["x-partner"] == r.partner
        assert set(ch["messages"]) == set(r.bindings)
        assert doc["channels"][f"dlq.{r.name}"]["address"] == names.dlq(r.name)
        op = doc["operations"][f"consume.{r.name}"]
        assert op["action"] == "receive"
        assert op["channel"] == {"$ref": f"#/channels/{channel_id(r.name)}"}
        assert len(op["messages"]) == len(r.bindings)
        for t in r.bindings:
            message = doc["components"]["messages"][t]
            assert message["payload"]["allOf"][1]["properties"]["type"] == {"const": t}
            assert doc["operations"][f"publish.{t}"]["bindings"]["amqp"]["cc"] == [t]
            assert t in doc["channels"]["exchange.work"]["messages"]
    assert doc["channels"][channel_id(INBOUND_ROUTE)]["address"] == "hub.q.channel.inbound"
    for tier in TIERS:
        assert doc["channels"][f"wait.{tier}ms"]["x-queue-arguments"]["x-message-ttl"] == tier
    assert {doc["channels"][f"exchange.{x}"]["address"]
            for x in ("work", "redeliver", "retry", "dlx", "channels")} == {
        "hub.work", "hub.redeliver", "hub.retry", "hub.dlx", "hub.channels"}


def test_the_structure_is_asyncapi_3_and_every_reference_resolves(doc: dict[str, Any]) -> None:
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["title"] and doc["info"]["version"]
    assert set(doc) >= {"servers", "channels", "operations", "components"}
    server = doc["servers"]["rabbitmq"]
    assert (server["host"], server["protocol"], server["pathname"]) == (
        "rabbit.internal:5672", "amqp", "/prod")
    text = json.dumps(doc)
    assert "s3cret" not in text and "hubuser" not in text
    for section in ("channels", "operations"):
        assert all(_ID.match(k) for k in doc[section]), section
    assert all(_ID.match(k) for k in doc["components"]["messages"])
    assert all(_ID.match(k) for k in doc["components"]["schemas"])
    for ref in _refs(doc):
        _resolve(doc, ref)
    for oid, op in doc["operations"].items():
        assert op["action"] in ("send", "receive"), oid
        channel = op["channel"]["$ref"]
        for m in op["messages"]:
            assert m["$ref"].startswith(channel + "/messages/"), oid  # its own channel's
    for name, message in doc["components"]["messages"].items():
        assert "payload" in message, name


def test_payloads_are_the_contract_models(doc: dict[str, Any]) -> None:
    models = payload_models(["tax.employee.enroll", "tax.feedback", "warnings.veterans"])
    assert models["tax.feedback"] is not None and models["tax.feedback"].__name__ == \
        "TaxFeedback"
    assert models["warnings.veterans"] is None  # a free-form payload says so
    enroll = doc["components"]["messages"]["tax.employee.enroll"]
    model = enroll["x-payload-model"]
    assert enroll["payload"]["allOf"][1]["properties"]["payload"] == {
        "$ref": f"#/components/schemas/{model}"}
    assert "id_number" in doc["components"]["schemas"][model]["properties"]
    envelope = doc["components"]["schemas"]["HubMessage"]
    assert {"message_id", "correlation_id", "idempotency_key", "payload"} <= set(
        envelope["properties"])
    free = doc["components"]["messages"]["warnings.veterans"]
    assert free["x-payload-model"] is None


def test_the_html_view_lists_every_queue_without_scripts_or_remote_assets(
        doc: dict[str, Any]) -> None:
    page = render_html(doc)
    for r in ROUTES:
        assert f"<code>hub.q.{r.name}</code>" in page
        assert all(f"<code>{t}</code>" in page for t in r.bindings)
    assert "<script" not in page and "http://" not in page and "https://" not in page

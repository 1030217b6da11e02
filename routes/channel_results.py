"""The message that carries one part of a channel application's result to its channel's lane.

Apart from ``routes.channels`` because ``routes.employee`` (core.sync) emits it too.
"""

from __future__ import annotations

from typing import Any

from contracts.envelope import HubMessage, entity_key, idempotency_key

__all__ = ["application_id_of", "result_message", "result_type"]


def result_type(channel: str) -> str:
    return f"channel.result.{channel}"


def application_id_of(correlation_id: str) -> str:
    return correlation_id.partition("-")[0]



def result_message(channel: str, result: dict[str, Any], *, cause: HubMessage) -> HubMessage:
    """One part of an application's result, for its channel's lane."""
    type_ = result_type(channel)
    app_id = str(result["application_id"])
    return HubMessage(type=type_, source="hub", target=f"channel.{channel}",
                      correlation_id=app_id, causation_id=cause.message_id,
                      idempotency_key=idempotency_key(type_, str(result["correlation_id"]),
                                                      result),
                      entity_key=entity_key("app", app_id), payload=result)

"""Test-only message helpers (production builds messages in ``contracts.messages``)."""

from __future__ import annotations

from typing import Any

from contracts.envelope import HubMessage, idempotency_key


def child(parent: HubMessage, *, type: str, source: str, target: str,
          payload: dict[str, Any], business_key: str, salt: str = "") -> HubMessage:
    """The next message of the same transaction, caused by ``parent``."""
    return HubMessage(type=type, source=source, target=target,
                      correlation_id=parent.correlation_id, causation_id=parent.message_id,
                      idempotency_key=idempotency_key(type, business_key, payload, salt),
                      entity_key=parent.entity_key, payload=payload)

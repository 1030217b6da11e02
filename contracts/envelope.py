"""The canonical envelope every message inside the hub carries.

The body on the wire is the whole envelope as JSON; the ids are mirrored in
AMQP properties (``message_id``, ``correlation_id``, ``type``) and headers so
that operators and the broker UI see them without parsing bodies. The
``x-attempt`` header is authoritative for the retry count: every replica reads
the same number.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "HEADER_ATTEMPT",
    "HEADER_CAUSATION",
    "HEADER_ENTITY",
    "HEADER_FIRST_SEEN",
    "HEADER_HISTORY",
    "HEADER_IDEMPOTENCY",
    "HEADER_SOURCE",
    "HEADER_TARGET",
    "ID_MAX_LENGTH",
    "SERIAL_MAX_LENGTH",
    "HubMessage",
    "canonical_json",
    "entity_key",
    "idempotency_key",
    "new_id",
]

HEADER_ATTEMPT = "x-attempt"
HEADER_CAUSATION = "x-causation-id"
HEADER_IDEMPOTENCY = "x-idempotency-key"
HEADER_SOURCE = "x-source"
HEADER_TARGET = "x-target"
HEADER_ENTITY = "x-entity"
HEADER_HISTORY = "x-failures"
HEADER_FIRST_SEEN = "x-first-seen"

ID_MAX_LENGTH = 64
"""Message and correlation ids: the hub's own (32 hex) and what partners correlate on."""
SERIAL_MAX_LENGTH = 80
"""A partner's 业务流水号 (``ywlsh``, tax.xsd ``Serial``: 1-80 of ``A-Za-z0-9_.:-``). It
travels as the causation id of what tax pushes, is logged as the message id of what tax
asks core, and keys ``partner_requests``: the codec (``adapters.tax.soap``), this envelope
and those columns (``storage.models``, alembic 0006) all take this many characters."""


def entity_key(kind: str, natural_key: str) -> str:
    """An opaque per-person/per-unit key: ordering without personal data in headers."""
    return f"{kind}:{hashlib.sha256(natural_key.encode()).hexdigest()[:20]}"


def new_id() -> str:
    return uuid.uuid4().hex


def canonical_json(value: Any) -> str:
    """Stable JSON (sorted keys, no spaces): the basis of content hashes."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def idempotency_key(type_: str, business_key: str, payload: dict[str, Any], salt: str = "") -> str:
    """Derived from what the message means, not from when it was sent.

    The same business fact sent twice gets the same key; an intended resend
    passes its resend id as ``salt`` so that it is a new attempt on purpose.
    """
    digest = hashlib.sha256(
        f"{type_}|{business_key}|{canonical_json(payload)}|{salt}".encode()
    ).hexdigest()
    return f"{type_}:{digest[:32]}"


class HubMessage(BaseModel):
    """A message in flight through the hub: ids, routing facts and a payload."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    message_id: str = Field(default_factory=new_id, min_length=1, max_length=ID_MAX_LENGTH)
    type: str = Field(pattern=r"^[a-z_]+(\.[a-z_]+)+$", max_length=80)
    source: str = Field(min_length=1, max_length=40)
    target: str = Field(min_length=1, max_length=40)
    correlation_id: str = Field(min_length=1, max_length=ID_MAX_LENGTH)
    causation_id: str | None = Field(default=None, max_length=SERIAL_MAX_LENGTH)
    idempotency_key: str = Field(min_length=1, max_length=200)
    entity_key: str = Field(default="", max_length=120)
    attempt: int = Field(default=0, ge=0)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    payload: dict[str, Any]
    after: str = Field(default="", max_length=200)
    """The idempotency key of an earlier step this one must follow (a 准新生儿 stop before
    the newborn's enrollment): the runtime holds this message until that key is done. The
    ordering gate alone cannot promise it, since it orders by arrival at the gate and two
    deliveries of one queue may reach it in either order. Left out of the body when
    empty, so every other message is what it was."""

    def headers(self) -> dict[str, Any]:
        return {
            HEADER_ATTEMPT: self.attempt,
            HEADER_CAUSATION: self.causation_id or "",
            HEADER_IDEMPOTENCY: self.idempotency_key,
            HEADER_SOURCE: self.source,
            HEADER_TARGET: self.target,
            HEADER_ENTITY: self.entity_key,
        }

    def to_body(self) -> bytes:
        return self.model_dump_json(exclude=None if self.after else {"after"}).encode()

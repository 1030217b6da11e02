"""The DLQ archiver: drains every ``<ns>.dlq.<route>`` into the ``dead_letters`` table.

A queue cannot be searched, grouped or paged, and an operator's decision about
a message has to outlive it, so each dead letter is moved into SQL: one
manual-ack consumer per DLQ parses it leniently (an unreadable body is kept
as raw bytes), stores a row and acks only once that insert has committed. If
the database is down the message stays unacked while the insert is retried,
then goes back to the queue: a dead letter is never dropped. A redelivery
after a lost ack can store the same message twice (at least once).

The reason is the hub's own (``x-dead-reason`` / ``x-dead-code``, set by
``kernel.runtime`` when it parks a message) or, when RabbitMQ dead-lettered
it (a crash loop past the quorum queue's delivery limit, a reject), the
broker's ``x-death`` entry.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from faststream import AckPolicy
from faststream.rabbit import RabbitBroker, RabbitQueue
from faststream.rabbit.message import RabbitMessage
from faststream.rabbit.schemas import Channel
from faststream.rabbit.subscriber import RabbitSubscriber

from broker.topology import DELAY_HEADER, DELIVERY_LIMIT, Names
from contracts.envelope import HEADER_ATTEMPT, HEADER_FIRST_SEEN, HEADER_HISTORY, HEADER_SOURCE
from kernel.runtime import HEADER_REASON, HEADER_REASON_CODE, HEADER_ROUTE
from retry.ordering import EntityGate
from storage.deadletters import DeadLetter, DeadLetterStore
from storage.times import utc

__all__ = ["HEADER_REASON", "HEADER_REASON_CODE", "HEADER_RETRY_OF", "HEADER_ROUTE",
           "attach_dlq_archiver", "describe", "dlq_queue", "retry_headers", "start_late"]

log = logging.getLogger("hub.dlq")

#: Set on a message sent back from the archive: which dead letter it was.
HEADER_RETRY_OF = "x-retry-of"

STORE_ATTEMPTS = 8
STORE_BACKOFF_MAX_S = 5.0
# Reasons a message passes through normally (wait tiers expire into the work queue).
_ROUTINE_DEATHS = {"expired"}
# Headers that describe a past life of the message; a retry starts without them.
_STALE = {HEADER_HISTORY, HEADER_FIRST_SEEN, HEADER_REASON, HEADER_REASON_CODE, HEADER_ROUTE,
          HEADER_RETRY_OF, DELAY_HEADER, "x-death", "x-delivery-count", "x-first-death-reason",
          "x-first-death-queue", "x-first-death-exchange", "x-last-death-reason",
          "x-last-death-queue", "x-last-death-exchange"}


def dlq_queue(names: Names, route: str) -> RabbitQueue:
    """Exactly as ``broker.topology.declare_topology`` declares it (else PRECONDITION_FAILED)."""
    return names.dlq_queue(route)


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return "" if value is None else str(value)


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, str) and value:
        try:
            return utc(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def _int(*values: Any) -> int:
    for v in values:
        try:
            if v is not None and not isinstance(v, bool):
                return max(0, int(v))
        except (TypeError, ValueError):
            continue
    return 0


def _envelope(body: bytes) -> dict[str, Any]:
    """The body as a JSON object if it is one; ``{}`` otherwise (kept raw in the row)."""
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _broker_death(headers: Mapping[str, Any]) -> tuple[str, str] | None:
    """(reason, queue) of the dead-lettering that parked it, from RabbitMQ's own headers."""
    deaths = headers.get("x-death")
    if isinstance(deaths, list | tuple) and deaths:
        entries = [d for d in deaths if isinstance(d, Mapping)]
        # Newest first; a trip through a wait tier ("expired") is routine, not the cause.
        pick = next((d for d in entries if _text(d.get("reason")) not in _ROUTINE_DEATHS),
                    entries[0] if entries else None)
        if pick is not None:
            return _text(pick.get("reason")) or "unknown", _text(pick.get("queue"))
    for prefix in ("x-last-death-", "x-first-death-"):
        if headers.get(prefix + "reason"):
            return _text(headers[prefix + "reason"]), _text(headers.get(prefix + "queue"))
    return None


def _reason(headers: Mapping[str, Any]) -> tuple[str, str]:
    if headers.get(HEADER_REASON) or headers.get(HEADER_REASON_CODE):
        return (_text(headers.get(HEADER_REASON_CODE)) or "UNKNOWN",
                _text(headers.get(HEADER_REASON)))
    death = _broker_death(headers)
    if death is None:
        return "UNKNOWN", "parked without x-dead-reason or x-death"
    reason, queue = death
    where = f" from {queue}" if queue else ""
    if reason == "delivery_limit":
        return reason, (f"RabbitMQ dead-lettered it{where}: not settled after "
                        f"{DELIVERY_LIMIT} deliveries (a consumer crash loop)")
    if reason == "rejected":
        return reason, f"RabbitMQ dead-lettered it{where}: rejected by a consumer"
    return reason, f"RabbitMQ dead-lettered it{where}: {reason}"


def describe(route: str, body: bytes, headers: Mapping[str, Any], *, queue: str, partner: str,
             message_id: str | None = None, correlation_id: str | None = None,
             type_: str | None = None, now: datetime | None = None) -> DeadLetter:
    """A dead letter from what arrived on the DLQ; total: any body or headers give a row.

    The AMQP ids are a fallback only for messages RabbitMQ dead-lettered (they
    keep the properties they were published with); on a message the hub
    parked they were made up by the publishing client and name nothing.
    """
    env = _envelope(body)
    at = now or datetime.now(UTC)
    code, reason = _reason(headers)
    if headers.get(HEADER_REASON) or headers.get(HEADER_REASON_CODE):
        message_id = correlation_id = type_ = None
    return DeadLetter(
        route=route, queue=queue, partner=partner,
        message_id=_text(env.get("message_id")) or _text(message_id) or "-",
        correlation_id=_text(env.get("correlation_id")) or _text(correlation_id) or "-",
        type=_text(env.get("type")) or _text(type_) or "-",
        source=_text(env.get("source")) or _text(headers.get(HEADER_SOURCE)) or "-",
        reason_code=code, reason=reason,
        attempts=_int(headers.get(HEADER_ATTEMPT), env.get("attempt")),
        first_seen=(_when(headers.get(HEADER_FIRST_SEEN)) or _when(env.get("created_at"))
                    or at),
        dead_at=at, headers=dict(headers), body=bytes(body), updated_at=at)


def retry_headers(stored: Mapping[str, Any], *, retry_of: int,
                  now: datetime | None = None) -> dict[str, Any]:
    """Headers for sending an archived message back to its work queue.

    The attempt count starts again at 0 and the failure history, parking
    reason and broker death records go; ``x-first-seen`` is set to now so the
    policy's age limit counts from the retry, not from the original message.
    """
    out = {k: v for k, v in stored.items() if k not in _STALE}
    return out | {HEADER_ATTEMPT: 0, HEADER_RETRY_OF: retry_of,
                  HEADER_FIRST_SEEN: (now or datetime.now(UTC)).isoformat()}


async def _raw(message: RabbitMessage) -> RabbitMessage:
    """Hand the handler the message itself: bodies here may not even be JSON."""
    return message


def attach_dlq_archiver(broker: RabbitBroker, names: Names, routes: Iterable[str],
                        store: DeadLetterStore, prefetch: int = 50, *,
                        partners: Mapping[str, str] | None = None,
                        gate: EntityGate | None = None) -> list[RabbitSubscriber]:
    """One manual-ack consumer per route's DLQ, storing each message before acking it.

    Call before ``broker.start()``; on a running broker pass the result to
    ``start_late``. ``partners`` maps route -> partner (default: the route's
    first dotted segment, e.g. ``tax.employee`` -> ``tax``). With ``gate``, a
    stored dead letter gives up its place in its entity's FIFO: a message that
    RabbitMQ dead-lettered (delivery limit) never reached an outcome in the
    runtime, and would otherwise hold up that person's later messages.
    """
    subs: list[RabbitSubscriber] = []
    for route in routes:

        def make(r: str) -> Any:
            queue = names.queue(r)
            partner = (partners or {}).get(r) or r.split(".", 1)[0]

            async def archive(message: RabbitMessage) -> None:
                headers = dict(message.headers or {})
                try:
                    letter = describe(r, message.body, headers, queue=queue, partner=partner,
                                      message_id=message.message_id,
                                      correlation_id=message.correlation_id,
                                      type_=message.raw_message.type)
                except Exception as exc:  # describe is total; this is a last resort
                    log.exception("could not describe a dead letter on %s", names.dlq(r))
                    now = datetime.now(UTC)
                    letter = DeadLetter(r, queue, "-", "-", "-", partner, "-", "ARCHIVER",
                                        f"archiver could not read it: {exc!r}", 0, now, now,
                                        {}, bytes(message.body))
                if await _store(store, letter, names.dlq(r)):
                    await _free_place(gate, r, message.body)
                    await message.ack()
                else:
                    await message.nack(requeue=True)

            archive.__name__ = f"archive_{r.replace('.', '_')}"
            return archive

        sub = broker.subscriber(dlq_queue(names, route), ack_policy=AckPolicy.MANUAL,
                                channel=Channel(prefetch_count=prefetch), decoder=_raw)
        sub(make(route))
        subs.append(sub)
    return subs


async def _free_place(gate: EntityGate | None, route: str, body: bytes) -> None:
    """Leave the ordering gate for the dead letter's entity (idempotent; best effort:
    a failure here is logged and the ticket's own deadline frees the place later)."""
    env = _envelope(body)
    entity, ticket = _text(env.get("entity_key")), _text(env.get("message_id"))
    if gate is None or not entity or not ticket:
        return
    try:
        await gate.leave(route, entity, ticket)
    except Exception as exc:
        log.warning("could not free the ordering place of %s on %s: %s", ticket, route, exc)


async def _store(store: DeadLetterStore, letter: DeadLetter, where: str) -> bool:
    """Insert with backoff while the message stays unacked; False gives it back to the queue."""
    delay = 0.2
    for attempt in range(1, STORE_ATTEMPTS + 1):
        try:
            await store.add(letter)
            return True
        except Exception as exc:
            log.warning("archiving a dead letter from %s failed (attempt %d/%d): %s",
                        where, attempt, STORE_ATTEMPTS, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, STORE_BACKOFF_MAX_S)
    return False


async def start_late(subscribers: Sequence[RabbitSubscriber]) -> None:
    """Start consumers added after ``broker.start()`` (FastStream starts the others itself)."""
    for sub in subscribers:
        await sub.start()

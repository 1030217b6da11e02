"""Every message type the hub routes by name, and the builders of the messages it makes.

One home, so a newcomer finds a type's name and how its message is made in one
place. Catalogue operations (``contracts.taxcat``) name their own types
(``Op.msg_type``); the ones below are the hub's own. Builders are pure: ids,
idempotency key and entity key are derived here, never by hand at a call site.

    tax.employee.enroll          职工参保登记 (typed contract, the hot path)
    tax.employee.stop            职工停保 (resend sends it too)
    tax.feedback                 tax's FeedbackNotify, on its way to core
    core.sync_status             the result of a submit, to core (H9201)
    channel.application          a citizen application, to the intake lane
    channel.result.<channel>     one part of an application's result, to its channel
    core.tax_push.compare_batch  比对 batch pushed by tax (its own lane)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final

from contracts.employee import SyncStatusUpdate, TaxFeedback
from contracts.envelope import HubMessage, entity_key, idempotency_key, new_id
from contracts.taxcat import Op

__all__ = [
    "APPLICATION",
    "COMPARE",
    "ENROLL",
    "FEEDBACK",
    "REVIEW",
    "STOP",
    "SYNC",
    "application_id_of",
    "application_message",
    "core_sync_serial",
    "feedback_message",
    "operation_message",
    "partner_serial",
    "result_message",
    "result_type",
    "review_message",
    "sync_message",
]

ENROLL: Final = "tax.employee.enroll"
STOP: Final = "tax.employee.stop"
FEEDBACK: Final = "tax.feedback"
SYNC: Final = "core.sync_status"
APPLICATION: Final = "channel.application"
REVIEW: Final = "channel.review"
"""Core's review (审核) of an application that waits for it before tax (``REVIEWED_TYPES``)."""
COMPARE: Final = "core.tax_push.compare_batch"


def partner_serial(msg: HubMessage) -> str:
    """The serial (业务流水号) a partner deduplicates on, derived from what the message means.

    The idempotency key is derived from the business fact (plus a salt for an
    intended repeat), so the same fact re-posted as a new message (core retrying
    after a lost answer, tax pushing again) reaches the partner under the same
    serial even when Redis has lost its keys: the partner replays its first
    answer, and losing Redis costs speed, not correctness. 32 hex characters,
    within every partner's serial format.
    """
    return hashlib.sha256(msg.idempotency_key.encode()).hexdigest()[:32]


def result_type(channel: str) -> str:
    """The type of one part of an application's result, bound to its channel's lane."""
    return f"channel.result.{channel}"


def application_id_of(correlation_id: str) -> str:
    """Submits of one application carry ``<id>`` or ``<id>-<n>`` as correlation id."""
    return correlation_id.partition("-")[0]


def operation_message(o: Op, payload: dict[str, Any], *, source: str, target: str,
                      correlation_id: str | None = None, causation_id: str | None = None,
                      salt: str = "", entity: str | None = None, after: str = "",
                      ) -> HubMessage:
    """A catalogue operation's message: key from its business key and content.

    ``salt`` makes an intended repeat (a resend, an application's submit) a new
    fact on purpose; without it the same fact sent twice has the same key.
    ``entity`` replaces the ordering entity, so steps about different records that
    tax must see in order (stop the 准新生儿, then enroll the newborn) queue together;
    ``after`` names the earlier step's idempotency key, which must be done first.
    """
    return HubMessage(
        type=o.msg_type, source=source, target=target,
        correlation_id=correlation_id or new_id(), causation_id=causation_id,
        idempotency_key=idempotency_key(o.msg_type, o.business_key(payload), payload, salt),
        entity_key=entity or entity_key(o.entity_prefix, o.entity_value(payload)),
        payload=payload, after=after)


def review_message(review: Mapping[str, Any], *, causation_id: str) -> HubMessage:
    """Core's review of a registered application (``channel.review``); one fact per
    application and verdict, so core sending the same review twice changes nothing."""
    app_id = str(review["application_id"])
    return HubMessage(type=REVIEW, source="core", target="tax", correlation_id=app_id,
                      causation_id=causation_id,
                      idempotency_key=idempotency_key(REVIEW, f"{app_id}:{review['approved']}",
                                                      dict(review)),
                      payload=dict(review))


def feedback_message(fb: TaxFeedback) -> HubMessage:
    """Tax's answer to a submit; correlated by the serial tax echoes."""
    payload = fb.model_dump(mode="json")
    return HubMessage(type=FEEDBACK, source="tax", target="core",
                      correlation_id=fb.biz_msg_id, causation_id=fb.accept_no,
                      idempotency_key=idempotency_key(FEEDBACK, fb.biz_msg_id, payload),
                      payload=payload)


def core_sync_serial(update: SyncStatusUpdate, key: str) -> str:
    """The serial core deduplicates an H9201 on: the sync message's ``key``, except for an
    outcome carrying tax's acceptance number, which is one fact whichever transaction saw
    it. When core re-posts an event after losing the hub's answer and the hub has lost its
    keys too (a Redis flush), tax replays its first acceptance under the same number; the
    re-post's sync then reaches core under the original's serial and core replays its
    answer instead of recording "synced" twice. (The hub-side key keeps the transaction,
    so the two syncs never wait on each other's in-flight lock.) Without an acceptance
    number (a refusal) the transaction is part of the fact."""
    if not update.accept_no:
        return key
    fact = update.model_dump(mode="json", exclude={"correlation_id"})
    return idempotency_key(SYNC, update.business_key, fact)


def sync_message(update: SyncStatusUpdate, *, cause: HubMessage, entity_key: str) -> HubMessage:
    """The message that tells core the outcome; its key is derived from the outcome itself."""
    payload = update.model_dump(mode="json")
    content = payload
    return HubMessage(type=SYNC, source="hub", target="core",
                      correlation_id=update.correlation_id, causation_id=cause.message_id,
                      idempotency_key=idempotency_key(SYNC, update.business_key, content),
                      entity_key=entity_key, payload=payload)


def result_message(channel: str, result: Mapping[str, Any], *, cause: HubMessage) -> HubMessage:
    """One part of an application's result, for its channel's lane.

    No entity key: parts of one application are recorded independently (one row
    each) and do not queue behind each other in the ordering gate.
    """
    type_ = result_type(channel)
    app_id = str(result["application_id"])
    return HubMessage(type=type_, source="hub", target=f"channel.{channel}",
                      correlation_id=app_id, causation_id=cause.message_id,
                      idempotency_key=idempotency_key(type_, str(result["correlation_id"]),
                                                      dict(result)),
                      payload=dict(result))


def application_message(app_id: str, channel: str, request_id: str, app_type: str,
                        tax_operation: str, payload: dict[str, Any],
                        entity: tuple[str, str] | None) -> HubMessage:
    """A citizen application for the intake lane; ordered per person when one is named."""
    return HubMessage(
        type=APPLICATION, source=f"channel.{channel}", target="core", correlation_id=app_id,
        idempotency_key=idempotency_key(APPLICATION, f"{channel}:{request_id}", payload),
        entity_key=entity_key(*entity) if entity else entity_key("app", app_id),
        payload={"application_id": app_id, "channel": channel, "type": app_type,
                 "request_id": request_id, "tax_operation": tax_operation,
                 "payload": payload})

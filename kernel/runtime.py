"""The one place that turns a delivery into exactly one outcome.

For every message on every route: parse the envelope, take the idempotency
key, run the handler with a few in-process retries, then exactly one of

- delivered: outputs published (confirmed) and journal committed, side by side, then
  the key completed;
- retrying: the same envelope, ``x-attempt`` + 1, to a wait tier;
- rejected: the originator told through ``on_failure`` outputs, key completed
  with the rejection so a repeat gets the same answer;
- dead-lettered: parked with a reason where nobody can be told, when attempts
  or age run out, or when the envelope itself is unreadable;

and only then the delivery is acked. Every call to the hub's own stores (Redis,
the database, the broker) goes through ``kernel.health``: while a store is down
the delivery is held and the call retried with a bounded backoff, keeping the
partner's answer (the partner is not called again), and other deliveries wait
at the door; an outage of ours never spends a message's delivery limit. Only a
store down for longer than ``StoreHealth.give_up_s`` or a data error in
recording gives the delivery back to the broker (nack).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import ValidationError
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from contracts.envelope import HEADER_ATTEMPT, HEADER_FIRST_SEEN, HEADER_HISTORY, HubMessage
from contracts.errors import HubError, PermanentError, TransientError, ValidationFailed
from kernel.deps import KernelDeps
from kernel.health import StoreDown
from kernel.logs import bind as bind_log_context
from kernel.metrics import counted
from kernel.tracing import traced
from retry.breaker import Breaker
from retry.idempotency import BeginState
from retry.policy import RetryPolicy, delay_for, exhausted, tier_for
from storage.journal import LogEntry, RequestRecord, TxnUpdate

__all__ = ["Delivery", "Outcome", "Route", "process"]

log = logging.getLogger("hub.runtime")
T = TypeVar("T")

INFLIGHT_WAIT_MS = 1_000
ORDER_WAIT_MS = 300
HEADER_REASON = "x-dead-reason"
HEADER_REASON_CODE = "x-dead-code"
HEADER_ROUTE = "x-route"
MAX_ATTEMPT = 1_000
"""A ceiling for ``x-attempt``: a tampered huge count is clamped (it fits every integer
column and exhausts every policy, whose ``max_attempts`` is at most 100)."""
MAX_HISTORY_CHARS = 16_000
_INTEGER = re.compile(r"\s*[+-]?[0-9]{1,30}\s*")


@dataclass(frozen=True)
class Outcome:
    """What a handler (or a failure handler) wants done; the runtime does it."""

    outputs: tuple[HubMessage, ...] = ()
    txn: TxnUpdate | None = None
    requests: tuple[RequestRecord, ...] = ()
    detail: Any = ""
    result: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[HubMessage, Any], Awaitable[Outcome]]
"""``(message, deps)``: each handler types ``deps`` with the narrow protocol it needs
(``routes.ports``); the runtime passes the composition's one deps object."""
FailureHandler = Callable[[HubMessage, HubError, Any], Awaitable[Outcome | None]]


@dataclass(frozen=True)
class Route:
    """A work lane: which types it takes, which partner it calls, how it fails."""

    name: str
    bindings: tuple[str, ...]
    partner: str
    handler: Handler
    on_failure: FailureHandler | None = None
    calls_partner: bool = True

    def policy(self, deps: KernelDeps, type_: str) -> RetryPolicy:
        return deps.settings.policy_for(self.partner, type_)


@dataclass(frozen=True)
class Delivery:
    """A broker delivery, decoupled from FastStream so tests can build one."""

    body: bytes
    headers: dict[str, Any]
    message_id: str | None
    ack: Callable[[], Awaitable[None]]
    nack: Callable[[], Awaitable[None]]


def parse_envelope(body: bytes, max_bytes: int) -> HubMessage:
    if len(body) > max_bytes:
        raise ValidationFailed([("body", f"{len(body)} bytes is over the {max_bytes} limit")])
    try:
        return HubMessage.model_validate_json(body)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            reason = "not valid JSON: " + exc.errors()[0]["msg"]
            raise ValidationFailed([("body", reason)]) from None
        raise ValidationFailed.of(exc, prefix="envelope.") from None


def _aware(at: datetime) -> datetime:
    """A time with a zone; a naive one (a tampered header or envelope) is taken as UTC."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _first_seen(headers: dict[str, Any]) -> datetime | None:
    """The ``x-first-seen`` header as an aware time, or None when absent or unreadable."""
    first = headers.get(HEADER_FIRST_SEEN)
    if isinstance(first, bytes):
        first = first.decode("utf-8", "replace")
    if isinstance(first, datetime):
        return _aware(first)
    if not isinstance(first, str) or len(first) > 64:
        return None
    try:
        return _aware(datetime.fromisoformat(first))
    except ValueError:
        return None


def _age_s(headers: dict[str, Any], msg: HubMessage) -> float:
    """Seconds since the message was first seen; total: a garbled header counts as absent."""
    start = _first_seen(headers) or _aware(msg.created_at)
    try:
        return (datetime.now(UTC) - start).total_seconds()
    except OverflowError:  # a start at the edge of the calendar: as old as can be
        return float("inf")


async def _call(route: Route, msg: HubMessage, deps: KernelDeps, policy: RetryPolicy) -> Outcome:
    """The handler with short in-process retries for blips (transient errors only).

    The first attempt runs bare: building tenacity's retrying object for every message
    cost about 4% of the hub's CPU in ``bench/pipeline``, and nearly every call succeeds.
    After a transient failure the same schedule follows as before: a first wait drawn from
    ``[0, min_s]``, then tenacity for the attempts left, its multiplier doubled so that
    the n-th wait is drawn from ``[0, min(max_s, min_s * 2**(n-1))]`` as it was.
    """
    try:
        return await route.handler(msg, deps)
    except TransientError:
        if policy.inprocess_attempts <= 1:
            raise
    await asyncio.sleep(random.uniform(0, min(policy.inprocess_max_s, policy.inprocess_min_s)))
    async for attempt in AsyncRetrying(
        stop=stop_after_attempt(policy.inprocess_attempts - 1),
        wait=wait_random_exponential(multiplier=policy.inprocess_min_s * 2,
                                     max=policy.inprocess_max_s),
        retry=retry_if_exception_type(TransientError), reraise=True,
    ):
        with attempt:
            return await route.handler(msg, deps)
    raise AssertionError("unreachable")  # pragma: no cover


def _txn(msg: HubMessage, status: str, exc: HubError, attempt: int) -> TxnUpdate:
    """Status-only update of a known transaction, for states the runtime decides."""
    return TxnUpdate(msg.correlation_id, msg.type, msg.entity_key or "-", msg.source, status,
                     exc.code, exc.reason[:1000], attempts=attempt, only_if_exists=True)


def _log(msg: HubMessage, route: Route, outcome: str, attempt: int, t0: float,
         detail: Any) -> LogEntry:
    return LogEntry(message_id=msg.message_id, correlation_id=msg.correlation_id,
                    type=msg.type, partner=route.partner, direction="out", hop=route.name,
                    outcome=outcome, attempt=attempt,
                    duration_ms=int((time.perf_counter() - t0) * 1000), detail=detail)


@counted  # hub_messages_total{route,outcome} (kernel.metrics)
@traced  # consumer span from the message's traceparent + log context (kernel.tracing)
async def process(route: Route, d: Delivery, deps: KernelDeps) -> str:
    """Handle one delivery to exactly one outcome; returns the outcome's name."""
    t0 = time.perf_counter()
    try:
        msg = parse_envelope(d.body, deps.settings.max_body_bytes)
    except ValidationFailed as exc:
        return await _unreadable(route, d, deps, exc)
    bind_log_context(message_id=msg.message_id, correlation_id=msg.correlation_id)

    attempt = _attempt(d.headers, msg.attempt)
    policy = route.policy(deps, msg.type)
    key = msg.idempotency_key
    lock_s = deps.settings.inflight_lock_s
    await deps.health.wait_up()  # a store is down: hold this delivery, call no partner
    try:
        begin = await _steady(deps, "redis", lambda: deps.idem.begin(key, deps.owner, lock_s))
        if begin.state is BeginState.DONE:
            entries: list[Any] = [_log(msg, route, "duplicate", attempt, t0, begin.result or "")]
            first = (begin.result or {}).get("correlation_id")
            if first and first != msg.correlation_id:
                # The same business fact sent again as a new transaction: close it as such.
                # An upsert, not an update: the ingress may record the repeat as received
                # only after this runs, and a terminal status is never moved back.
                entries.append(TxnUpdate(msg.correlation_id, msg.type, msg.entity_key or "-",
                                         msg.source, "duplicate", "DUPLICATE",
                                         f"same as transaction {first}"))
            await _steady(deps, "database", lambda: deps.journal.write(*entries))
            await _done(route, msg, deps, d)
            return "duplicate"
        if begin.state is BeginState.INFLIGHT:
            # Another worker holds it: look again later, without spending an attempt.
            return await _later(route, msg, d, deps, INFLIGHT_WAIT_MS, "inflight", release=False)
        if msg.after and not await _steady(deps, "redis", lambda: deps.idem.is_done(msg.after)):
            # The step this one follows has no final answer yet: wait for it, without
            # spending an attempt, up to the policy's age (then the DLQ says why).
            if _age_s(d.headers, msg) > policy.max_age_s:
                return await _transient(route, msg, d, deps, policy, TransientError(
                    f"the step it follows ({msg.after}) never finished",
                    partner=route.partner), attempt, t0)
            return await _later(route, msg, d, deps, ORDER_WAIT_MS, "waiting")
        if _gated(route, msg, deps) and not await _steady(deps, "redis", lambda: deps.gate.enter(  # type: ignore[union-attr]
                route.name, msg.entity_key, msg.message_id, policy.max_age_s + 3600)):
            # An earlier message for this person/unit has not finished: wait behind it.
            return await _later(route, msg, d, deps, ORDER_WAIT_MS, "waiting")
        breaker = deps.breakers.get(route.partner) if route.calls_partner else None
        if breaker is not None and not breaker.allow():
            # The partner is resting: wait without spending an attempt.
            return await _later(route, msg, d, deps, int(breaker.policy.open_s * 1000),
                                "breaker_open")
        # Right after allow(): true only for the one call let through as the half-open probe.
        probe = breaker is not None and breaker.probing
        return await _run(route, msg, d, deps, policy, attempt, t0, breaker, probe)
    except Exception as exc:
        # Only a store down for longer than the hub waits with one delivery (StoreDown),
        # or a data error in recording, gets here: give the delivery back to the broker.
        if not isinstance(exc, StoreDown):
            log.exception("recording the outcome of %s on %s failed; returning it to the "
                          "queue", msg.message_id, route.name)
        with contextlib.suppress(Exception):
            await deps.idem.release(key, deps.owner)
        await asyncio.sleep(0.2)
        await d.nack()
        return "nacked"


async def _later(route: Route, msg: HubMessage, d: Delivery, deps: KernelDeps, wait_ms: int,
                 outcome: str, *, release: bool = True) -> str:
    """Look at this delivery again after ``wait_ms`` (rounded up to a wait tier) without
    spending an attempt: the same envelope and headers to the wait queue, our idempotency
    lock let go (``release``; not when another worker holds it), then the ack."""
    await _steady(deps, "broker", lambda: deps.publisher.delay(
        msg, deps.names.queue(route.name), tier_for(wait_ms, deps.settings.delay_tiers_ms),
        dict(d.headers)))
    if release:
        await _steady(deps, "redis", lambda: deps.idem.release(msg.idempotency_key, deps.owner))
    await d.ack()
    return outcome


def _gated(route: Route, msg: HubMessage, deps: KernelDeps) -> bool:
    return route.calls_partner and deps.gate is not None and bool(msg.entity_key)


async def _steady(deps: KernelDeps, what: str, fn: Callable[[], Awaitable[T]]) -> T:
    """A call to one of the hub's own stores, waited out while the store is down
    (``kernel.health``): an outage of ours is not the message's fault.

    Broker calls are not held: a lost broker takes this delivery's channel with it,
    so the delivery comes back anyway, and holding handlers would slow the
    watchdog's rebuild of the client (fault test d). They fail fast as before.
    """
    if what == "broker":
        return await fn()
    return await deps.health.call(what, fn)


async def _done(route: Route, msg: HubMessage, deps: KernelDeps, d: Delivery) -> None:
    """Final outcome recorded: let the next message of this entity through, then ack."""
    if _gated(route, msg, deps):
        await _steady(deps, "redis", lambda: deps.gate.leave(  # type: ignore[union-attr]
            route.name, msg.entity_key, msg.message_id))
    await d.ack()


def _attempt(headers: dict[str, Any], default: int) -> int:
    """The attempt count from the header, clamped to ``0..MAX_ATTEMPT``; a garbled header
    (not a number, ``inf``, ``nan``, a bool) falls back to the body's count."""
    raw = headers.get(HEADER_ATTEMPT, default)
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "replace")
    if isinstance(raw, str):
        raw = int(raw) if _INTEGER.fullmatch(raw) else default
    elif isinstance(raw, float) and raw.is_integer():
        raw = int(raw)  # finite and whole: inf and nan are neither
    if isinstance(raw, bool) or not isinstance(raw, int):
        raw = default
    return min(MAX_ATTEMPT, max(0, raw))


async def _unreadable(route: Route, d: Delivery, deps: KernelDeps, exc: ValidationFailed) -> str:
    """Nobody can be told: the envelope names no originator we can trust. Park it."""
    try:
        await deps.publisher.park(d.body, deps.names.queue(route.name), {
            HEADER_REASON: exc.reason[:500], HEADER_REASON_CODE: exc.code,
            HEADER_ROUTE: route.name})
        await deps.journal.write(LogEntry(
            message_id=d.message_id or "-", correlation_id="-", type="-",
            partner=route.partner, direction="in", hop=route.name, outcome="dead",
            detail=f"unreadable envelope: {exc.reason}"))
    except Exception:
        log.exception("parking an unreadable message on %s failed; returning it", route.name)
        await asyncio.sleep(0.2)
        await d.nack()
        return "nacked"
    await d.ack()
    return "dead"


async def _run(route: Route, msg: HubMessage, d: Delivery, deps: KernelDeps, policy: RetryPolicy,
               attempt: int, t0: float, breaker: Breaker | None = None,
               probe: bool = False) -> str:
    """Call the handler and record its outcome. When the call is the breaker's half-open
    ``probe``, every way out of the call resolves it (``retry.breaker``): success,
    failure, or inconclusive when only another partner failed or the call was cancelled."""
    try:
        out = await _call(route, msg, deps, policy)
    except PermanentError as exc:
        if breaker:
            if exc.partner in (None, route.partner):
                breaker.success()  # the partner answered: it is up
            elif probe:
                breaker.inconclusive()  # another partner said no: nothing learnt about ours
        return await _permanent(route, msg, d, deps, exc, attempt, t0)
    except TransientError as exc:
        if breaker:
            # Count it against the partner that failed: a lane may ask another partner too
            # (the channel intake asks tax), and tax being down must not rest core.
            failed = deps.breakers.get(exc.partner) if exc.partner else breaker
            failed.failure()
            if probe and failed is not breaker:
                breaker.inconclusive()
        return await _transient(route, msg, d, deps, policy, exc, attempt, t0)
    except Exception as exc:  # a bug or a surprise: count it, so a poison message ends in the DLQ
        log.warning("unexpected %s on %s: %s", type(exc).__name__, route.name, exc)
        if breaker and probe:
            breaker.failure()  # a probe must resolve; a closed breaker does not count bugs
        err = TransientError(f"unexpected {type(exc).__name__}: {exc}", partner=route.partner)
        return await _transient(route, msg, d, deps, policy, err, attempt, t0)
    except BaseException:  # cancelled mid-call (shutdown, a lost connection): no verdict
        if breaker and probe:
            breaker.inconclusive()
        raise
    if breaker:
        breaker.success()
    # The partner has answered: from here on only the hub's own stores can fail, and
    # each call is waited out (the answer is kept; the partner is not called again).
    entries: list[Any] = [_log(msg, route, "ok", attempt, t0, out.detail), *out.requests]
    if out.txn:
        entries.append(out.txn)
    await _record(deps, out.outputs, entries)
    result = (out.result or {"outcome": "ok"}) | {"correlation_id": msg.correlation_id}
    await _steady(deps, "redis", lambda: deps.idem.complete(
        msg.idempotency_key, result, deps.settings.idempotency_ttl_s))
    await _done(route, msg, deps, d)
    return "ok"


async def _tell(route: Route, msg: HubMessage, exc: HubError, deps: KernelDeps) -> Outcome | None:
    return await route.on_failure(msg, exc, deps) if route.on_failure else None


async def _permanent(route: Route, msg: HubMessage, d: Delivery, deps: KernelDeps,
                     exc: PermanentError, attempt: int, t0: float) -> str:
    told = await _tell(route, msg, exc, deps)
    if told and told.outputs:
        await _publish(deps, told.outputs)
    else:
        await _steady(deps, "broker", lambda: deps.publisher.park(
            msg.to_body(), deps.names.queue(route.name), _dead_headers(d, route, exc, attempt)))
    entries: list[Any] = [_log(msg, route, "rejected" if told else "dead", attempt, t0,
                               exc.to_dict())]
    entries.append(told.txn if told and told.txn else _txn(msg, "dead", exc, attempt))
    await _steady(deps, "database", lambda: deps.journal.write(*entries))
    result = {"outcome": "rejected", **exc.to_dict(), "correlation_id": msg.correlation_id}
    await _steady(deps, "redis", lambda: deps.idem.complete(
        msg.idempotency_key, result, deps.settings.idempotency_ttl_s))
    await _done(route, msg, deps, d)
    return "rejected" if told else "dead"


async def _transient(route: Route, msg: HubMessage, d: Delivery, deps: KernelDeps,
                     policy: RetryPolicy, exc: TransientError, attempt: int, t0: float) -> str:
    attempt += 1
    history = _history(d.headers, exc, attempt)
    if exhausted(attempt, _age_s(d.headers, msg), policy):
        told = await _tell(route, msg, exc, deps)
        if told and told.outputs:
            await _publish(deps, told.outputs)
        headers = _dead_headers(d, route, exc, attempt) | {HEADER_ATTEMPT: attempt,
                                                          HEADER_HISTORY: history}
        bumped = msg.model_copy(update={"attempt": attempt})
        await _steady(deps, "broker", lambda: deps.publisher.park(
            bumped.to_body(), deps.names.queue(route.name), headers))
        entries: list[Any] = [_log(msg, route, "dead", attempt, t0, exc.to_dict())]
        entries.append(told.txn if told and told.txn else _txn(msg, "dead", exc, attempt))
        await _steady(deps, "database", lambda: deps.journal.write(*entries))
        await _steady(deps, "redis", lambda: deps.idem.release(msg.idempotency_key, deps.owner))
        await _done(route, msg, deps, d)
        return "dead"
    delay = tier_for(delay_for(attempt, policy), deps.settings.delay_tiers_ms)
    headers = dict(d.headers) | {HEADER_ATTEMPT: attempt, HEADER_HISTORY: history}
    if _first_seen(d.headers) is None:  # absent or unreadable: start the clock now
        headers[HEADER_FIRST_SEEN] = msg.created_at.isoformat()
    later = msg.model_copy(update={"attempt": attempt})
    await _steady(deps, "broker", lambda: deps.publisher.delay(
        later, deps.names.queue(route.name), delay, headers))
    await _steady(deps, "database", lambda: deps.journal.write(
        _log(msg, route, "retry", attempt, t0, exc.to_dict() | {"delay_ms": str(delay)}),
        _txn(msg, "retrying", exc, attempt)))
    await _steady(deps, "redis", lambda: deps.idem.release(msg.idempotency_key, deps.owner))
    await d.ack()
    return "retry"


async def _record(deps: KernelDeps, outputs: tuple[HubMessage, ...], entries: list[Any]
                  ) -> None:
    """Publish the outputs and write the journal entries side by side; return when both
    are done.

    Each waits about as long as the other (a quorum queue's confirm, a group commit), and
    a delivery holds its prefetch slot until both are done: one after the other, they
    were most of a message's time in the hub (``bench/pipeline``). Nothing depends on
    their order: the key is completed and the delivery acked only after both, and if
    either fails the delivery goes back to its queue, to be done again (its outputs'
    idempotency keys absorb a repeat downstream; the journal then shows both attempts).
    """
    if not outputs:
        await _steady(deps, "database", lambda: deps.journal.write(*entries))
        return
    write = asyncio.ensure_future(_steady(deps, "database", lambda: deps.journal.write(*entries)))
    try:
        await _publish(deps, outputs)
    except BaseException:
        write.cancel()  # stop waiting out a database outage for a delivery that goes back
        write.add_done_callback(_retrieved)
        raise
    await write


def _retrieved(task: asyncio.Future[Any]) -> None:
    """Mark a side task's error as seen: its delivery already failed for another reason."""
    if not task.cancelled():
        task.exception()


async def _publish(deps: KernelDeps, outputs: tuple[HubMessage, ...]) -> None:
    """Publish outputs with confirms; a retry after an outage republishes them all, which
    their idempotency keys absorb downstream."""
    if len(outputs) == 1:
        await _steady(deps, "broker", lambda: deps.publisher.publish(outputs[0]))
    elif outputs:
        await _steady(deps, "broker", lambda: asyncio.gather(
            *(deps.publisher.publish(o) for o in outputs)))


def _history(headers: dict[str, Any], exc: HubError, attempt: int) -> str:
    """The last few failures, newest last, as a compact JSON string header."""
    past = _past_failures(headers.get(HEADER_HISTORY))
    past.append({"attempt": attempt, "code": exc.code, "reason": exc.reason[:200],
                 "at": datetime.now(UTC).isoformat(timespec="seconds")})
    return json.dumps(past[-5:], ensure_ascii=False)


def _past_failures(raw: Any) -> list[Any]:
    """The ``x-failures`` header as a list of failures; anything else (not JSON, a JSON
    object or number, too long or too deep) counts as no history."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if not isinstance(raw, str) or len(raw) > MAX_HISTORY_CHARS:
        return []
    try:
        past = json.loads(raw)
    except (ValueError, RecursionError):
        return []
    return [p for p in past if isinstance(p, dict)] if isinstance(past, list) else []


def _dead_headers(d: Delivery, route: Route, exc: HubError, attempt: int) -> dict[str, Any]:
    """The delivery's headers with the parking reason. Retry headers it carries are
    written back clean or dropped: a tampered ``x-attempt``, ``x-first-seen`` or
    ``x-failures`` must not reach the archive."""
    out = dict(d.headers)
    if HEADER_ATTEMPT in out:
        out[HEADER_ATTEMPT] = attempt
    if HEADER_FIRST_SEEN in out:
        first = _first_seen(d.headers)
        if first is None:
            del out[HEADER_FIRST_SEEN]
        else:
            out[HEADER_FIRST_SEEN] = first.isoformat()
    if HEADER_HISTORY in out:
        out[HEADER_HISTORY] = json.dumps(_past_failures(out[HEADER_HISTORY])[-5:],
                                         ensure_ascii=False)
    return out | {HEADER_REASON: exc.reason[:500], HEADER_REASON_CODE: exc.code,
                  HEADER_ROUTE: route.name}

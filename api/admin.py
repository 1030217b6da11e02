"""Admin API for dead letters: list, group, inspect, retry, edit and retry, archive; audit.

Operators work on the ``dead_letters`` archive (filled by ``broker.dlq``),
never on the queues: rows can be filtered and grouped, and a decision is
recorded on the row. Personal data is masked in every answer
(``contracts.masking``); the raw body stays in the database because a retry
must send the original bytes.

A retry sends a message straight back to its route's work queue with a fresh
attempt count, after forgetting its idempotency key: a message that was
rejected for good is then worked again, on purpose. Retries are paced
(``rate_per_s``) so that re-driving a few thousand letters does not flood a
partner that has only just recovered; one call handles at most ``limit``
letters and says how many of the selection remain.

Reading is open to every role; retry and archive need ``operations``;
edit-and-retry (it changes what is sent to a partner) needs ``admin``. Every
action, refusals included, is written to the audit log.
"""

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from api.auth import READERS, Authenticator, Principal
from broker.dlq import retry_headers
from contracts.envelope import HubMessage, new_id
from contracts.masking import mask_text, mask_value
from services.deps import Deps
from storage.audit import AuditEntry, AuditLog
from storage.deadletters import (
    DeadLetter,
    DeadLetterFilter,
    DeadLetterStore,
    Status,
    mask_headers,
)

__all__ = ["ActionResult", "ArchiveRequest", "DeadLetterDetail", "DeadLetterOut",
           "DeadLetterPage", "EditRetryRequest", "EditRetryResult", "GroupOut", "GroupSelector",
           "Requeue", "RetryRequest", "admin_router", "masked_body", "merge_patch"]

log = logging.getLogger("hub.admin")

Requeue = Callable[[bytes, str, dict[str, Any]], Awaitable[None]]

CHUNK = 100
BODY_TEXT_MAX = 4000
HEADER_EDITED_BY = "x-edited-by"
_ENVELOPE_IDS = ("message_id", "correlation_id", "causation_id", "idempotency_key",
                 "entity_key", "type", "source", "target", "attempt", "created_at")
_DEAD: tuple[Status, ...] = ("dead",)
_RETRIED: tuple[Status, ...] = ("retried",)


# -- response and request models ---------------------------------------------------------

class DeadLetterOut(BaseModel):
    """A dead letter as operators see it: body parsed and masked."""

    id: int
    route: str
    queue: str
    message_id: str
    correlation_id: str
    type: str
    partner: str
    source: str
    reason_code: str
    reason: str = Field(description="masked")
    attempts: int
    first_seen: datetime
    dead_at: datetime
    status: Status
    retried_count: int
    updated_at: datetime
    body_readable: bool = Field(description="false when the body is not JSON")
    body: Any = Field(description="the body as masked JSON, or masked text when unreadable")


class DeadLetterDetail(DeadLetterOut):
    headers: dict[str, Any] = Field(description="AMQP headers when parked (masked)")


class DeadLetterPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[DeadLetterOut]


class GroupOut(BaseModel):
    reason_code: str
    reason: str
    partner: str
    type: str
    count: int
    first_dead_at: datetime
    last_dead_at: datetime


class GroupSelector(BaseModel):
    """Dead letters with this reason code (optionally of one partner and type)."""

    model_config = ConfigDict(extra="forbid")

    reason_code: str = Field(min_length=1, max_length=40)
    partner: str | None = None
    type: str | None = None


class _Selection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[int] | None = Field(default=None, min_length=1, max_length=10_000)
    group: GroupSelector | None = None
    all: bool = Field(default=False, description="every dead letter with status dead")
    reason: str = Field(min_length=1, max_length=500, description="why; kept in the audit log")
    limit: int = Field(default=1000, ge=1, le=10_000,
                       description="at most this many letters in this call")

    @model_validator(mode="after")
    def _one_selection(self) -> "_Selection":
        given = sum((self.ids is not None, self.group is not None, self.all))
        if given != 1:
            raise ValueError("give exactly one of ids, group or all")
        return self


class RetryRequest(_Selection):
    rate_per_s: float = Field(default=50.0, gt=0, le=1000,
                              description="messages sent back per second, at most")


class ArchiveRequest(_Selection):
    @model_validator(mode="after")
    def _no_all(self) -> "ArchiveRequest":
        if self.all:
            raise ValueError("archive takes ids or a group, not all")
        return self


class Problem(BaseModel):
    id: int
    reason: str


class ActionResult(BaseModel):
    action: Literal["retry", "archive"]
    selected: int = Field(description="letters looked at in this call")
    done: list[int] = Field(description="ids retried / archived")
    skipped: list[Problem] = Field(description="not acted on, and why (e.g. not dead)")
    failed: list[Problem] = Field(description="tried and failed; the row stays dead")
    remaining: int = Field(description="letters of the selection left for another call")
    audit_id: int


class EditRetryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patch: dict[str, Any] = Field(
        min_length=1, description="JSON merge patch (RFC 7386) of the payload; null removes")
    reason: str = Field(min_length=1, max_length=500, description="why; kept in the audit log")


class EditRetryResult(BaseModel):
    id: int
    message_id: str = Field(description="the new message id the edited message is sent with")
    audit_id: int


# -- helpers ------------------------------------------------------------------------------

def masked_body(body: bytes) -> tuple[bool, Any]:
    """(readable, masked body): parsed JSON masked by field, else text masked by pattern.

    The envelope's own ids are shown as they are: they are opaque hex, and the
    phone pattern would otherwise now and then mangle one an operator searches for.
    """
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False, mask_text(body.decode("utf-8", "replace")[:BODY_TEXT_MAX])
    masked = mask_value(parsed)
    if isinstance(parsed, dict):
        masked |= {k: parsed[k] for k in _ENVELOPE_IDS
                   if k in parsed and (parsed[k] is None or isinstance(parsed[k], str | int))}
    return True, masked


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _out(d: DeadLetter) -> dict[str, Any]:
    readable, body = masked_body(d.body)
    return {"id": d.id, "route": d.route, "queue": d.queue, "message_id": d.message_id,
            "correlation_id": d.correlation_id, "type": d.type, "partner": d.partner,
            "source": d.source, "reason_code": d.reason_code, "reason": mask_text(d.reason),
            "attempts": d.attempts, "first_seen": d.first_seen, "dead_at": d.dead_at,
            "status": d.status, "retried_count": d.retried_count, "updated_at": d.updated_at,
            "body_readable": readable, "body": body}


def _errors(exc: ValidationError) -> list[dict[str, str]]:
    """Field and message only: pydantic's ``input`` would echo personal data."""
    return [{"field": ".".join(str(p) for p in e["loc"]) or "envelope",
             "error": mask_text(e["msg"])} for e in exc.errors()]


class _Pacer:
    """At most ``rate`` events per second, evenly spaced (no bursts after an idle spell)."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next = time.monotonic()

    async def wait(self) -> None:
        now = time.monotonic()
        if self._next > now:
            await asyncio.sleep(self._next - now)
        self._next = max(self._next, now) + self._interval


def _target(sel: _Selection) -> str:
    if sel.ids is not None:
        shown = ",".join(str(i) for i in sel.ids[:20])
        return f"ids:{shown}{',...' if len(sel.ids) > 20 else ''}"
    if sel.group is not None:
        g = sel.group
        return f"group:{g.reason_code}/{g.partner or '*'}/{g.type or '*'}"
    return "all"


_AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or invalid bearer token"},
    403: {"description": "the token's role may not do this (audited)"},
}


# -- the router ---------------------------------------------------------------------------

def admin_router(deps: Deps, store: DeadLetterStore, audit: AuditLog,
                 principals: Mapping[str, Principal] | Authenticator, *,
                 requeue: Requeue | None = None) -> APIRouter:
    """The ``/admin`` endpoints. ``requeue`` defaults to ``deps.publisher.requeue``.

    ``principals`` may be an ``Authenticator`` shared with other admin routers
    (e.g. ``resend_router(..., require=auth.require)``). ``deps.publisher`` is
    looked up per request: the hub sets it only once its broker is connected,
    after this router is built.
    """
    auth = principals if isinstance(principals, Authenticator) \
        else Authenticator(principals, audit)
    Reader = Annotated[Principal, Depends(auth.require(*READERS))]
    Operator = Annotated[Principal, Depends(auth.require("operations"))]
    Admin = Annotated[Principal, Depends(auth.require("admin"))]
    r = APIRouter(prefix="/admin", tags=["admin"], responses=_AUTH_RESPONSES)

    async def send(body: bytes, queue: str, headers: dict[str, Any]) -> None:
        await (requeue or deps.publisher.requeue)(body, queue, headers)

    def base_filter(sel: _Selection) -> DeadLetterFilter:
        g = sel.group
        if g is None:
            return DeadLetterFilter(status="dead")
        return DeadLetterFilter(status="dead", reason_code=g.reason_code, partner=g.partner,
                                type=g.type)

    async def batches(sel: _Selection, missing: list[Problem]) -> AsyncIterator[list[DeadLetter]]:
        """The selection in id order, ``CHUNK`` rows at a time (ids first, then filters)."""
        if sel.ids is not None:
            wanted = list(dict.fromkeys(sel.ids))
            for i in range(0, len(wanted), CHUNK):
                part = wanted[i:i + CHUNK]
                rows = await store.list(DeadLetterFilter(ids=part), limit=len(part),
                                        oldest_first=True)
                found = {d.id for d in rows}
                missing.extend(Problem(id=n, reason="no such dead letter")
                               for n in part if n not in found)
                yield rows
            return
        flt, after = base_filter(sel), 0
        while True:
            rows = await store.list(replace(flt, after_id=after), limit=CHUNK,
                                    oldest_first=True)
            if not rows:
                return
            yield rows
            after = rows[-1].id

    async def remaining_after(sel: _Selection, last_id: int) -> int:
        if sel.ids is not None:
            return len([i for i in dict.fromkeys(sel.ids) if i > last_id])
        return await store.count(replace(base_filter(sel), after_id=last_id))

    async def finish(who: Principal, action: str, sel: _Selection, detail: dict[str, Any],
                     done: list[int], failed: list[Problem], skipped: list[Problem],
                     error: bool) -> int:
        if error:
            outcome = "error"
        elif failed or skipped:
            outcome = "partial" if done else "failed"
        else:
            outcome = "ok"
        detail = detail | {"reason": sel.reason, "done": len(done), "failed": len(failed),
                           "skipped": len(skipped), "ids": done[:1000]}
        return await asyncio.shield(audit.record(who.user, who.role, f"dead_letter.{action}",
                                                 _target(sel), detail, outcome))

    # -- reads ----------------------------------------------------------------------------

    @r.get("/dead-letters", summary="List dead letters (masked), newest first")
    async def list_dead_letters(
        _who: Reader,
        partner: str | None = None, type: str | None = None,
        reason_code: str | None = None, status: Status | None = None,
        route: str | None = None,
        since: Annotated[datetime | None, Query(description="dead_at >= since")] = None,
        until: Annotated[datetime | None, Query(description="dead_at < until")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> DeadLetterPage:
        flt = DeadLetterFilter(partner=partner, type=type, reason_code=reason_code,
                               status=status, route=route, since=since, until=until)
        rows = await store.list(flt, limit=limit, offset=offset)
        return DeadLetterPage(total=await store.count(flt), limit=limit, offset=offset,
                              items=[DeadLetterOut(**_out(d)) for d in rows])

    @r.get("/dead-letters/groups", summary="Dead letters counted by reason, partner and type")
    async def dead_letter_groups(
        _who: Reader, status: Status = "dead", partner: str | None = None,
        type: str | None = None,
    ) -> list[GroupOut]:
        groups = await store.groups(DeadLetterFilter(status=status, partner=partner, type=type))
        return [GroupOut(**vars(g)) for g in groups]

    @r.get("/dead-letters/{id}", summary="One dead letter with its headers (masked)",
           responses={404: {"description": "no such dead letter"}})
    async def get_dead_letter(id: int, who: Reader) -> DeadLetterDetail:
        d = await store.get(id)
        if d is None:
            raise HTTPException(404, f"no dead letter {id}")
        await audit.record(who.user, who.role, "dead_letter.view", f"id:{id}", {}, "ok")
        return DeadLetterDetail(**_out(d), headers=mask_headers(d.headers))

    @r.get("/audit", summary="The audit log, newest first")
    async def get_audit(
        _who: Reader, actor: str | None = None, action: str | None = None,
        outcome: str | None = None, since: datetime | None = None,
        until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> list[AuditEntry]:
        rows = await audit.list(actor=actor, action=action, outcome=outcome, since=since,
                                until=until, limit=limit, offset=offset)
        return rows  # the storage record is the public shape: nothing to hide or derive

    # -- actions --------------------------------------------------------------------------

    @r.post("/dead-letters/retry", summary="Send dead letters back to their work queue",
            description="By ids, by group or all; paced at `rate_per_s`. Each letter's "
                        "idempotency key is forgotten first, so it is worked again even if "
                        "it was rejected for good.")
    async def retry(body: RetryRequest, who: Operator) -> ActionResult:
        done: list[int] = []
        failed: list[Problem] = []
        skipped: list[Problem] = []
        pacer = _Pacer(body.rate_per_s)
        seen, last_id, error = 0, 0, True
        try:
            async for rows in batches(body, skipped):
                for d in rows:
                    if seen >= body.limit:
                        break
                    seen, last_id = seen + 1, d.id
                    problem = await _retry_one(d, pacer)
                    if problem is None:
                        done.append(d.id)
                    elif problem[0] == "skip":
                        skipped.append(Problem(id=d.id, reason=problem[1]))
                    else:
                        failed.append(Problem(id=d.id, reason=problem[1]))
                if seen >= body.limit:
                    break
            remaining = await remaining_after(body, last_id) if seen >= body.limit else 0
            error = False
        finally:
            audit_id = await finish(who, "retry", body, {"rate_per_s": body.rate_per_s},
                                    done, failed, skipped, error)
        return ActionResult(action="retry", selected=seen, done=done, skipped=skipped,
                            failed=failed, remaining=remaining, audit_id=audit_id)

    async def _retry_one(d: DeadLetter, pacer: _Pacer) -> tuple[str, str] | None:
        if d.status != "dead":
            return "skip", f"status is {d.status}"
        try:
            msg = HubMessage.model_validate_json(d.body)
        except ValidationError as exc:
            return "skip", ("not a readable hub envelope (" + _errors(exc)[0]["error"] +
                            "); edit-retry or archive it")
        if not await store.mark([d.id], "retried", only_from=_DEAD):
            return "skip", "changed meanwhile by someone else"
        await pacer.wait()
        try:
            # Forget first: were the copy consumed before, it would be taken as a repeat.
            await deps.idem.forget(msg.idempotency_key)
            await send(d.body, deps.names.queue(d.route), retry_headers(d.headers, retry_of=d.id))
        except Exception as exc:
            log.warning("retrying dead letter %s failed: %s", d.id, exc)
            await store.mark([d.id], "dead", only_from=_RETRIED)
            return "fail", f"{type(exc).__name__}: {mask_text(str(exc))[:300]}"
        return None

    @r.post("/dead-letters/{id}/edit-retry",
            summary="Patch a dead letter's payload and send it back (admin only)",
            description="The patched envelope must validate as a HubMessage. It is sent "
                        "with a new message id (caused by the old one): partners deduplicate "
                        "on the message id and would otherwise replay their old answer.",
            responses={404: {"description": "no such dead letter"},
                       409: {"description": "not dead (already retried or archived)"},
                       422: {"description": "the patched message is not valid"}})
    async def edit_retry(id: int, body: EditRetryRequest, who: Admin) -> EditRetryResult:
        target = f"id:{id}"
        detail: dict[str, Any] = {"reason": body.reason, "fields": sorted(body.patch),
                                  "patch": body.patch}

        async def refuse(status: int, outcome: str, message: Any) -> HTTPException:
            await audit.record(who.user, who.role, "dead_letter.edit_retry", target,
                               detail | {"error": message}, outcome)
            return HTTPException(status, message)

        d = await store.get(id)
        if d is None:
            raise await refuse(404, "not_found", f"no dead letter {id}")
        if d.status != "dead":
            raise await refuse(409, "conflict", f"dead letter {id} is {d.status}")
        try:
            env = json.loads(d.body)
        except (ValueError, UnicodeDecodeError):
            env = None
        if not isinstance(env, dict):
            raise await refuse(422, "invalid", "the body is not a JSON object; archive it")
        new = env | {"payload": merge_patch(env.get("payload"), body.patch),
                     "message_id": new_id(), "attempt": 0,
                     "causation_id": env.get("message_id") or env.get("causation_id")}
        try:
            msg = HubMessage.model_validate(new)
        except ValidationError as exc:
            raise await refuse(422, "invalid", _errors(exc)) from None
        if not await store.mark([id], "retried", only_from=_DEAD):
            raise await refuse(409, "conflict", f"dead letter {id} changed meanwhile")
        headers = retry_headers(d.headers, retry_of=id) | {HEADER_EDITED_BY: who.user}
        try:
            await deps.idem.forget(msg.idempotency_key)
            await send(msg.to_body(), deps.names.queue(d.route), headers)
        except Exception as exc:
            await store.mark([id], "dead", only_from=_RETRIED)
            raise await refuse(502, "failed", f"could not send it back: {type(exc).__name__}") \
                from exc
        audit_id = await audit.record(
            who.user, who.role, "dead_letter.edit_retry", target,
            detail | {"old_message_id": d.message_id, "new_message_id": msg.message_id}, "ok")
        return EditRetryResult(id=id, message_id=msg.message_id, audit_id=audit_id)

    @r.post("/dead-letters/archive", summary="Archive dead letters: no retry is intended")
    async def archive(body: ArchiveRequest, who: Operator) -> ActionResult:
        done: list[int] = []
        skipped: list[Problem] = []
        seen, last_id, error = 0, 0, True
        try:
            async for rows in batches(body, skipped):
                take = rows[:body.limit - seen]
                seen += len(take)
                if take:
                    last_id = take[-1].id
                changed = set(await store.mark([d.id for d in take], "archived",
                                               only_from=_DEAD))
                done.extend(d.id for d in take if d.id in changed)
                skipped.extend(Problem(id=d.id, reason=f"status is {d.status}" if d.status != "dead"
                                       else "changed meanwhile by someone else")
                               for d in take if d.id not in changed)
                if seen >= body.limit:
                    break
            remaining = await remaining_after(body, last_id) if seen >= body.limit else 0
            error = False
        finally:
            audit_id = await finish(who, "archive", body, {}, done, [], skipped, error)
        return ActionResult(action="archive", selected=seen, done=done, skipped=skipped,
                            failed=[], remaining=remaining, audit_id=audit_id)

    return r

"""Acting on dead letters: retry, edit and retry, archive; every action audited.

Operators work on the ``dead_letters`` archive (filled by ``broker.dlq``),
never on the queues: a decision is recorded on the row. A retry sends a
message straight back to its route's work queue with a fresh attempt count,
after forgetting its idempotency key: a message that was rejected for good is
then worked again, on purpose. Retries are paced (``rate_per_s``) so that
re-driving a few thousand letters does not flood a partner that has only just
recovered; one call handles at most ``limit`` letters and says how many of the
selection remain. Every action, refusals included, is written to the audit log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from broker.dlq import retry_headers
from contracts.envelope import HubMessage, new_id
from contracts.errors import field_errors
from contracts.masking import mask_text
from kernel.names import QueueNames
from retry.idempotency import IdempotencyStore
from services.audit import Actor, Audit
from services.jobs import JobContext
from storage.deadletters import DeadLetter, DeadLetterFilter, DeadLetterStore, Status

__all__ = ["CHUNK", "HEADER_EDITED_BY", "RETRY_KIND", "ActionResult", "ArchiveRequest",
           "DeadLetterDesk", "EditRefused", "EditRetryRequest", "EditRetryResult", "GroupSelector",
           "Problem", "Requeue", "RetryJobRequest", "RetryRequest", "Selection", "envelope_errors",
           "merge_patch"]

log = logging.getLogger("hub.admin")

Requeue = Callable[[bytes, str, dict[str, Any]], Awaitable[None]]
"""Sends a body to a work queue with headers (``Publisher.requeue``)."""

CHUNK = 100
RETRY_KIND: Final = "dlq.retry"
"""The durable job (``services.job_runner``) retrying a selection or a group, paced."""
SHOWN: Final = 100
"""Of a retry job's skipped and failed letters, how many its report names."""
HEADER_EDITED_BY = "x-edited-by"
_DEAD: tuple[Status, ...] = ("dead",)
_RETRIED: tuple[Status, ...] = ("retried",)


# -- what an operator asks for, and what they are told ------------------------------------

class GroupSelector(BaseModel):
    """Dead letters with this reason code (optionally of one partner and type)."""

    model_config = ConfigDict(extra="forbid")

    reason_code: str = Field(min_length=1, max_length=40)
    partner: str | None = None
    type: str | None = None


class Selection(BaseModel):
    """Which letters an action takes: ids, a group, or all; and why."""

    model_config = ConfigDict(extra="forbid")

    ids: list[int] | None = Field(default=None, min_length=1, max_length=10_000)
    group: GroupSelector | None = None
    all: bool = Field(default=False, description="every dead letter with status dead")
    reason: str = Field(min_length=1, max_length=500, description="why; kept in the audit log")
    limit: int = Field(default=1000, ge=1, le=10_000,
                       description="at most this many letters in this call")

    @model_validator(mode="after")
    def _one_selection(self) -> Selection:
        given = sum((self.ids is not None, self.group is not None, self.all))
        if given != 1:
            raise ValueError("give exactly one of ids, group or all")
        return self

    def target(self) -> str:
        """The audit log's target: the ids (first 20), the group, or ``all``."""
        if self.ids is not None:
            shown = ",".join(str(i) for i in self.ids[:20])
            return f"ids:{shown}{',...' if len(self.ids) > 20 else ''}"
        if self.group is not None:
            g = self.group
            return f"group:{g.reason_code}/{g.partner or '*'}/{g.type or '*'}"
        return "all"

    def dead_filter(self) -> DeadLetterFilter:
        g = self.group
        if g is None:
            return DeadLetterFilter(status="dead")
        return DeadLetterFilter(status="dead", reason_code=g.reason_code, partner=g.partner,
                                type=g.type)


class RetryRequest(Selection):
    rate_per_s: float = Field(default=50.0, gt=0, le=1000,
                              description="messages sent back per second, at most")


class RetryJobRequest(RetryRequest):
    """The params of a ``dlq.retry`` job: ids, a group or all, as ``Selection``; a group
    or all takes the letters dead when the job first ran (not those dying meanwhile)."""

    reason: str = Field(default="dead-letter retry job", min_length=1, max_length=500,
                        description="why; kept in the audit log")
    limit: int = Field(default=10_000, ge=1, le=100_000,
                       description="at most this many letters in this job")


class ArchiveRequest(Selection):
    @model_validator(mode="after")
    def _no_all(self) -> ArchiveRequest:
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


class EditRefused(Exception):
    """An edit-and-retry not done (audited): ``outcome`` is not_found, conflict, invalid or
    failed; ``message`` is what the operator is told (a text, or the fields at fault)."""

    def __init__(self, outcome: str, message: Any) -> None:
        super().__init__(outcome)
        self.outcome = outcome
        self.message = message


# -- helpers ------------------------------------------------------------------------------

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


def envelope_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Field and message only: pydantic's ``input`` would echo personal data."""
    return [{"field": f, "error": mask_text(r)} for f, r in field_errors(exc, default="envelope")]


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


# -- the desk -----------------------------------------------------------------------------

@dataclass(frozen=True)
class DeadLetterDesk:
    """The actions on the archive; ``send`` puts a body back on a work queue."""

    store: DeadLetterStore
    audit: Audit
    idem: IdempotencyStore
    names: QueueNames
    send: Requeue

    async def show(self, id: int, who: Actor) -> DeadLetter | None:
        """One letter; looking at it is audited (it holds personal data)."""
        d = await self.store.get(id)
        if d is not None:
            await self.audit.record(who.user, who.role, "dead_letter.view", f"id:{id}", {}, "ok")
        return d

    async def retry(self, sel: RetryRequest, who: Actor) -> ActionResult:
        """Send the selected dead letters back, paced; at most ``sel.limit`` in this call."""
        done: list[int] = []
        failed: list[Problem] = []
        skipped: list[Problem] = []
        pacer = _Pacer(sel.rate_per_s)
        seen, last_id, error = 0, 0, True
        try:
            async for rows in self._batches(sel, skipped):
                for d in rows:
                    if seen >= sel.limit:
                        break
                    seen, last_id = seen + 1, d.id
                    problem = await self._retry_one(d, pacer)
                    if problem is None:
                        done.append(d.id)
                    elif problem[0] == "skip":
                        skipped.append(Problem(id=d.id, reason=problem[1]))
                    else:
                        failed.append(Problem(id=d.id, reason=problem[1]))
                if seen >= sel.limit:
                    break
            remaining = await self._remaining_after(sel, last_id) if seen >= sel.limit else 0
            error = False
        finally:
            audit_id = await self._finish(who, "retry", sel, {"rate_per_s": sel.rate_per_s},
                                          done, failed, skipped, error)
        return ActionResult(action="retry", selected=seen, done=done, skipped=skipped,
                            failed=failed, remaining=remaining, audit_id=audit_id)

    async def retry_job(self, ctx: JobContext) -> dict[str, Any]:
        """The ``dlq.retry`` job (``RetryJobRequest`` params): one letter at a time at
        ``rate_per_s``; progress counts letters sent back (done), skipped (not dead any
        more, unreadable, no such id) and failed. The checkpoint is the last id handled, so
        a resumed job goes on after it; once cancelled it stops before the next letter.
        Audited at its end as ``dead_letter.retry`` with the job's id."""
        sel = RetryJobRequest.model_validate(dict(ctx.params))
        cp: dict[str, Any] = dict(ctx.checkpoint)
        if "until" not in cp:  # the first run: what "the group" means is fixed now
            until = datetime.now(UTC)
            total = len(set(sel.ids)) if sel.ids is not None else \
                await self.store.count(replace(sel.dead_filter(), until=until))
            cp = {"after": 0, "until": until.isoformat(), "seen": 0, "ids": [],
                  "failed": [], "skipped": []}
            await ctx.set_total(min(total, sel.limit))
        until = datetime.fromisoformat(cp["until"])

        def note(kind: str, problem: Problem) -> None:
            if len(cp[kind]) < SHOWN:
                cp[kind].append(problem.model_dump())

        if (inflight := cp.pop("inflight", None)) is not None and inflight > int(cp["after"]):
            await self._resend_inflight(ctx, cp, int(inflight), note)
        after = int(cp["after"])
        part = sel if sel.ids is None else \
            sel.model_copy(update={"ids": sorted({i for i in sel.ids if i > after})})
        pacer = _Pacer(sel.rate_per_s)
        missing: list[Problem] = []
        cancelled = False
        async for rows in self._batches(part, missing, after=after,
                                        until=until if sel.ids is None else None):
            for m in missing:
                note("skipped", m)
                await ctx.advance(skipped=1, checkpoint=cp)
            missing.clear()
            for d in rows:
                if cp["seen"] >= sel.limit:
                    break
                if await ctx.cancelled():
                    cancelled = True
                    break
                cp["inflight"] = d.id  # a run resumed after a crash here re-sends it
                await ctx.advance(checkpoint=cp)
                await ctx.save()
                problem = await self._retry_one(d, pacer)
                del cp["inflight"]
                cp["seen"], cp["after"] = cp["seen"] + 1, d.id
                if problem is None:
                    if len(cp["ids"]) < 1000:
                        cp["ids"].append(d.id)
                    await ctx.advance(done=1, checkpoint=cp)
                    await ctx.save()  # sent: a resumed run must not send it again
                elif problem[0] == "skip":
                    note("skipped", Problem(id=d.id, reason=problem[1]))
                    await ctx.advance(skipped=1, checkpoint=cp)
                else:
                    note("failed", Problem(id=d.id, reason=problem[1]))
                    await ctx.advance(failed=1, checkpoint=cp)
            if cancelled or cp["seen"] >= sel.limit:
                break
        counts = {"done": len(cp["ids"]), "failed": len(cp["failed"]),
                  "skipped": len(cp["skipped"])}
        if cancelled:
            outcome = "cancelled"
        elif counts["failed"] or counts["skipped"]:
            outcome = "partial" if counts["done"] else "failed"
        else:
            outcome = "ok"
        who = ctx.actor
        audit_id = await asyncio.shield(self.audit.record(
            who.user, who.role, "dead_letter.retry", sel.target(),
            {"job": ctx.job_id, "reason": sel.reason, "rate_per_s": sel.rate_per_s,
             **counts, "ids": cp["ids"]}, outcome))
        return {"selected": cp["seen"], "retried": cp["ids"], "failed": cp["failed"],
                "skipped": cp["skipped"], "cancelled": cancelled, "audit_id": audit_id}

    async def _resend_inflight(self, ctx: JobContext, cp: dict[str, Any], id: int,
                               note: Callable[[str, Problem], None]) -> None:
        """A resumed ``dlq.retry`` job: the letter the dead run had in flight. Still dead:
        the loop takes it. Marked retried by that run: sent again (it may have died before
        the send). Were it sent and worked already, the copy is worked again: the window
        is one letter, and partners deduplicate on the message id."""
        d = await self.store.get(id)
        if d is None or d.status != "retried":
            return
        cp["seen"], cp["after"] = cp["seen"] + 1, max(int(cp["after"]), id)
        try:
            msg = HubMessage.model_validate_json(d.body)
            await self.idem.forget(msg.idempotency_key)
            await self.send(d.body, self.names.queue(d.route),
                            retry_headers(d.headers, retry_of=d.id))
        except Exception as exc:
            await self.store.mark([d.id], "dead", only_from=_RETRIED)
            note("failed", Problem(id=d.id, reason=f"{type(exc).__name__}: "
                                                   f"{mask_text(str(exc))[:300]}"))
            await ctx.advance(failed=1, checkpoint=cp)
            return
        if len(cp["ids"]) < 1000:
            cp["ids"].append(d.id)
        await ctx.advance(done=1, checkpoint=cp)

    async def archive(self, sel: ArchiveRequest, who: Actor) -> ActionResult:
        """Mark the selected dead letters archived: no retry is intended."""
        done: list[int] = []
        skipped: list[Problem] = []
        seen, last_id, error = 0, 0, True
        try:
            async for rows in self._batches(sel, skipped):
                take = rows[:sel.limit - seen]
                seen += len(take)
                if take:
                    last_id = take[-1].id
                changed = set(await self.store.mark([d.id for d in take], "archived",
                                                    only_from=_DEAD))
                done.extend(d.id for d in take if d.id in changed)
                skipped.extend(Problem(id=d.id, reason=f"status is {d.status}" if d.status != "dead"
                                       else "changed meanwhile by someone else")
                               for d in take if d.id not in changed)
                if seen >= sel.limit:
                    break
            remaining = await self._remaining_after(sel, last_id) if seen >= sel.limit else 0
            error = False
        finally:
            audit_id = await self._finish(who, "archive", sel, {}, done, [], skipped, error)
        return ActionResult(action="archive", selected=seen, done=done, skipped=skipped,
                            failed=[], remaining=remaining, audit_id=audit_id)

    async def edit_retry(self, id: int, body: EditRetryRequest, who: Actor) -> EditRetryResult:
        """Patch the payload and send it back with a new message id (caused by the old one):
        partners deduplicate on the message id and would otherwise replay their old answer.
        ``EditRefused`` (audited) when it cannot be done."""
        target = f"id:{id}"
        detail: dict[str, Any] = {"reason": body.reason, "fields": sorted(body.patch),
                                  "patch": body.patch}

        async def refuse(outcome: str, message: Any) -> EditRefused:
            await self.audit.record(who.user, who.role, "dead_letter.edit_retry", target,
                                    detail | {"error": message}, outcome)
            return EditRefused(outcome, message)

        d = await self.store.get(id)
        if d is None:
            raise await refuse("not_found", f"no dead letter {id}")
        if d.status != "dead":
            raise await refuse("conflict", f"dead letter {id} is {d.status}")
        try:
            env = json.loads(d.body)
        except (ValueError, UnicodeDecodeError):
            env = None
        if not isinstance(env, dict):
            raise await refuse("invalid", "the body is not a JSON object; archive it")
        new = env | {"payload": merge_patch(env.get("payload"), body.patch),
                     "message_id": new_id(), "attempt": 0,
                     "causation_id": env.get("message_id") or env.get("causation_id")}
        try:
            msg = HubMessage.model_validate(new)
        except ValidationError as exc:
            raise await refuse("invalid", envelope_errors(exc)) from None
        if not await self.store.mark([id], "retried", only_from=_DEAD):
            raise await refuse("conflict", f"dead letter {id} changed meanwhile")
        headers = retry_headers(d.headers, retry_of=id) | {HEADER_EDITED_BY: who.user}
        try:
            await self.idem.forget(msg.idempotency_key)
            await self.send(msg.to_body(), self.names.queue(d.route), headers)
        except Exception as exc:
            await self.store.mark([id], "dead", only_from=_RETRIED)
            raise await refuse("failed", f"could not send it back: {type(exc).__name__}") \
                from exc
        audit_id = await self.audit.record(
            who.user, who.role, "dead_letter.edit_retry", target,
            detail | {"old_message_id": d.message_id, "new_message_id": msg.message_id}, "ok")
        return EditRetryResult(id=id, message_id=msg.message_id, audit_id=audit_id)

    # -- the parts ------------------------------------------------------------------------

    async def _batches(self, sel: Selection, missing: list[Problem], *, after: int = 0,
                       until: datetime | None = None) -> AsyncIterator[list[DeadLetter]]:
        """The selection in id order, ``CHUNK`` rows at a time (ids first, then filters);
        for filters, from id ``after`` on and of letters dead before ``until``."""
        if sel.ids is not None:
            wanted = list(dict.fromkeys(sel.ids))
            for i in range(0, len(wanted), CHUNK):
                part = wanted[i:i + CHUNK]
                rows = await self.store.list(DeadLetterFilter(ids=part), limit=len(part),
                                             oldest_first=True)
                found = {d.id for d in rows}
                missing.extend(Problem(id=n, reason="no such dead letter")
                               for n in part if n not in found)
                yield rows
            return
        flt = replace(sel.dead_filter(), until=until)
        while True:
            rows = await self.store.list(replace(flt, after_id=after), limit=CHUNK,
                                         oldest_first=True)
            if not rows:
                return
            yield rows
            after = rows[-1].id

    async def _remaining_after(self, sel: Selection, last_id: int) -> int:
        if sel.ids is not None:
            return len([i for i in dict.fromkeys(sel.ids) if i > last_id])
        return await self.store.count(replace(sel.dead_filter(), after_id=last_id))

    async def _retry_one(self, d: DeadLetter, pacer: _Pacer) -> tuple[str, str] | None:
        if d.status != "dead":
            return "skip", f"status is {d.status}"
        try:
            msg = HubMessage.model_validate_json(d.body)
        except ValidationError as exc:
            return "skip", ("not a readable hub envelope (" + envelope_errors(exc)[0]["error"] +
                            "); edit-retry or archive it")
        if not await self.store.mark([d.id], "retried", only_from=_DEAD):
            return "skip", "changed meanwhile by someone else"
        await pacer.wait()
        try:
            # Forget first: were the copy consumed before, it would be taken as a repeat.
            await self.idem.forget(msg.idempotency_key)
            await self.send(d.body, self.names.queue(d.route),
                            retry_headers(d.headers, retry_of=d.id))
        except Exception as exc:
            log.warning("retrying dead letter %s failed: %s", d.id, exc)
            await self.store.mark([d.id], "dead", only_from=_RETRIED)
            return "fail", f"{type(exc).__name__}: {mask_text(str(exc))[:300]}"
        return None

    async def _finish(self, who: Actor, action: str, sel: Selection, detail: dict[str, Any],
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
        return await asyncio.shield(self.audit.record(who.user, who.role,
                                                      f"dead_letter.{action}", sel.target(),
                                                      detail, outcome))

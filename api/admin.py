"""Admin API for dead letters: list, group, inspect, retry, edit and retry, archive; audit.

Rows of the ``dead_letters`` archive can be filtered and grouped; personal
data is masked in every answer (``contracts.masking``), while the raw body
stays in the database because a retry must send the original bytes. The
actions (and why a retry forgets idempotency keys, how it is paced) are
``services.dead_letters``.

Reading is open to every role; retry and archive need ``operations``;
edit-and-retry (it changes what is sent to a partner) needs ``admin``. Every
action, refusals included, is written to the audit log.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, BaseModel, Field

from api.auth import Authenticator, Principal
from api.deps import AdminRole, ApiState, Desk, Operator, Reader, State, bind
from contracts.masking import mask_text, mask_value
from services.dead_letters import (
    ActionResult,
    ArchiveRequest,
    EditRefused,
    EditRetryRequest,
    EditRetryResult,
    Requeue,
    RetryRequest,
)
from services.deps import Deps
from storage.audit import AuditEntry, AuditLog
from storage.deadletters import (
    DeadLetter,
    DeadLetterFilter,
    DeadLetterStore,
    Status,
    mask_headers,
)

__all__ = ["MAX_ROW_ID", "DeadLetterDetail", "DeadLetterOut", "DeadLetterPage", "GroupOut",
           "admin_router", "masked_body", "router"]

BODY_TEXT_MAX: Final = 4000
_ENVELOPE_IDS: Final = ("message_id", "correlation_id", "causation_id", "idempotency_key",
                        "entity_key", "type", "source", "target", "attempt", "created_at")
_REFUSED_STATUS: Final = {"not_found": 404, "conflict": 409, "invalid": 422, "failed": 502}
MAX_ROW_ID: Final = 2**63 - 1
"""The largest id or offset SQL can hold (SQLite INTEGER, PostgreSQL BIGINT): a larger one
is a 422 naming its field here, not an integer overflow (a 500) in the driver."""


def _has_utc(value: datetime | None) -> datetime | None:
    """A time the stores can compare in UTC; one at the calendar's edge has none."""
    if value is not None and value.tzinfo is not None:
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError("is out of range: it has no UTC equivalent") from None
    return value


RowId = Annotated[int, Path(le=MAX_ROW_ID, ge=-MAX_ROW_ID - 1,
                            description="a dead letter's id")]
Offset = Annotated[int, Query(ge=0, le=MAX_ROW_ID)]
Time = Annotated[datetime | None, AfterValidator(_has_utc)]


def _ids_fit(ids: list[int] | None) -> None:
    """Ids of a retry or archive body that SQL can hold: else a 422 naming each one."""
    errors = [{"loc": ("body", "ids", i), "type": "less_than_equal" if n > 0 else
               "greater_than_equal", "input": n,
               "msg": f"Input should be between {-MAX_ROW_ID - 1} and {MAX_ROW_ID}"}
              for i, n in enumerate(ids or ()) if not -MAX_ROW_ID - 1 <= n <= MAX_ROW_ID]
    if errors:
        raise RequestValidationError(errors)


# -- what operators see -------------------------------------------------------------------

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


def _out(d: DeadLetter) -> dict[str, Any]:
    readable, body = masked_body(d.body)
    return {"id": d.id, "route": d.route, "queue": d.queue, "message_id": d.message_id,
            "correlation_id": d.correlation_id, "type": d.type, "partner": d.partner,
            "source": d.source, "reason_code": d.reason_code, "reason": mask_text(d.reason),
            "attempts": d.attempts, "first_seen": d.first_seen, "dead_at": d.dead_at,
            "status": d.status, "retried_count": d.retried_count, "updated_at": d.updated_at,
            "body_readable": readable, "body": body}


# -- the router ---------------------------------------------------------------------------

_AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or invalid bearer token"},
    403: {"description": "the token's role may not do this (audited)"},
}

router = APIRouter(prefix="/admin", tags=["admin"], responses=_AUTH_RESPONSES)


async def _store(state: State) -> DeadLetterStore:
    return state.dead_letters


async def _audit(state: State) -> AuditLog:
    return state.audit


Store = Annotated[DeadLetterStore, Depends(_store)]
AuditLogDep = Annotated[AuditLog, Depends(_audit)]


@router.get("/dead-letters", summary="List dead letters (masked), newest first")
async def list_dead_letters(
    _who: Reader, store: Store,
    partner: str | None = None, type: str | None = None,
    reason_code: str | None = None, status: Status | None = None,
    route: str | None = None,
    since: Annotated[Time, Query(description="dead_at >= since")] = None,
    until: Annotated[Time, Query(description="dead_at < until")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> DeadLetterPage:
    flt = DeadLetterFilter(partner=partner, type=type, reason_code=reason_code,
                           status=status, route=route, since=since, until=until)
    rows = await store.list(flt, limit=limit, offset=offset)
    return DeadLetterPage(total=await store.count(flt), limit=limit, offset=offset,
                          items=[DeadLetterOut(**_out(d)) for d in rows])


@router.get("/dead-letters/groups", summary="Dead letters counted by reason, partner and type")
async def dead_letter_groups(
    _who: Reader, store: Store, status: Status = "dead", partner: str | None = None,
    type: str | None = None,
) -> list[GroupOut]:
    groups = await store.groups(DeadLetterFilter(status=status, partner=partner, type=type))
    return [GroupOut(**vars(g)) for g in groups]


@router.get("/dead-letters/{id}", summary="One dead letter with its headers (masked)",
            responses={404: {"description": "no such dead letter"}})
async def get_dead_letter(id: RowId, who: Reader, desk: Desk) -> DeadLetterDetail:
    d = await desk.show(id, who)
    if d is None:
        raise HTTPException(404, f"no dead letter {id}")
    return DeadLetterDetail(**_out(d), headers=mask_headers(d.headers))


@router.get("/audit", summary="The audit log, newest first")
async def get_audit(
    _who: Reader, audit: AuditLogDep, actor: str | None = None, action: str | None = None,
    outcome: str | None = None, since: Time = None, until: Time = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> list[AuditEntry]:
    return await audit.list(actor=actor, action=action, outcome=outcome, since=since,
                            until=until, limit=limit, offset=offset)


@router.post("/dead-letters/retry", summary="Send dead letters back to their work queue",
             description="By ids, by group or all; paced at `rate_per_s`. Each letter's "
                         "idempotency key is forgotten first, so it is worked again even if "
                         "it was rejected for good.")
async def retry(body: RetryRequest, who: Operator, desk: Desk) -> ActionResult:
    _ids_fit(body.ids)
    return await desk.retry(body, who)


@router.post("/dead-letters/{id}/edit-retry",
             summary="Patch a dead letter's payload and send it back (admin only)",
             description="The patched envelope must validate as a HubMessage. It is sent "
                         "with a new message id (caused by the old one): partners deduplicate "
                         "on the message id and would otherwise replay their old answer.",
             responses={404: {"description": "no such dead letter"},
                        409: {"description": "not dead (already retried or archived)"},
                        422: {"description": "the patched message is not valid"}})
async def edit_retry(id: RowId, body: EditRetryRequest, who: AdminRole,
                     desk: Desk) -> EditRetryResult:
    try:
        return await desk.edit_retry(id, body, who)
    except EditRefused as exc:
        raise HTTPException(_REFUSED_STATUS[exc.outcome], exc.message) from exc


@router.post("/dead-letters/archive", summary="Archive dead letters: no retry is intended")
async def archive(body: ArchiveRequest, who: Operator, desk: Desk) -> ActionResult:
    _ids_fit(body.ids)
    return await desk.archive(body, who)


def admin_router(deps: Deps, store: DeadLetterStore, audit: AuditLog,
                 principals: Mapping[str, Principal] | Authenticator, *,
                 requeue: Requeue | None = None) -> APIRouter:
    """The ``/admin`` endpoints bound to these parts, for an app not built by ``create_api``.

    ``principals`` may be an ``Authenticator`` shared with other routes.
    ``requeue`` defaults to ``deps.publisher.requeue``, looked up per request.
    """
    auth = principals if isinstance(principals, Authenticator) \
        else Authenticator(principals, audit)
    return bind(router, ApiState(deps=deps, audit=audit, dead_letters=store, auth=auth,
                                 requeue=requeue))

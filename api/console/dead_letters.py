"""Console pages for dead letters: list, filter, search, groups, detail, and the actions.

Mirrors the JSON API (``api.admin``) on the same parts: ``DeadLetterStore`` to read,
``DeadLetterDesk`` to act (each action audited there), masking by ``api.admin.masked_body``
and ``storage.deadletters.mask_headers``. Additions of the console:

- search by message id, correlation id, or a person/unit: an ID number or credit code
  typed in is matched on the journal's subject hashes (the transactions about that
  subject, ``services.transactions``) and in the raw bodies; the page shows it masked;
- retry of a selection or a group is a background job (``services.jobs``, kind
  ``dlq.retry``) whose progress the job page shows; a hub without jobs retries in the
  request (the desk's own paced retry) and shows the result the same way;
- edit-and-retry (admin) previews the change as a masked before/after diff first;
- unarchive: an archived letter goes back to ``dead`` (audited ``dead_letter.unarchive``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, get_args
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, or_, select

from api.admin import masked_body
from api.console.web import OPERATORS, Page, guard, page, redirect, signed_in, to_login
from api.deps import ApiState
from contracts.masking import mask_text, mask_value
from contracts.subjects import find_subjects
from services.dead_letters import (
    ArchiveRequest,
    DeadLetterDesk,
    EditRefused,
    EditRetryRequest,
    GroupSelector,
    RetryRequest,
    envelope_errors,
    merge_patch,
)
from services.job_runner import UnknownKind
from services.jobs import Jobs, JobView
from services.transactions import masked_subject
from storage.deadletters import DeadLetter, DeadLetterFilter, Status, mask_headers
from storage.ops_models import DeadLetterRow

__all__ = ["DIFF_LIMIT", "RETRY_KIND", "diff", "jobs_of", "router", "search_ids"]

log = logging.getLogger("hub.console")

router = APIRouter()

RETRY_KIND: Final = "dlq.retry"
PAGE_SIZE: Final = 50
SEARCH_MAX: Final = 1000
DIFF_LIMIT: Final = 200
STATUSES: Final[tuple[str, ...]] = get_args(Status)
_ARCHIVED: Final[tuple[Status, ...]] = ("archived",)
_FILTERS: Final = ("partner", "route", "type", "reason_code", "status", "since", "until", "q")


def jobs_of(state: ApiState) -> Jobs | None:
    """The hub's durable jobs (``Deps.jobs``) when it has them."""
    return getattr(state.deps, "jobs", None)


def desk_of(state: ApiState) -> DeadLetterDesk:
    d = state.deps
    return DeadLetterDesk(store=state.dead_letters, audit=state.audit, idem=d.idem,
                          names=d.names, send=state.requeue or d.publisher.requeue)


# -- search --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Search:
    """What a search matched (``ids``) and how the page names it (masked)."""

    ids: list[int]
    label: str


async def search_ids(state: ApiState, text: str) -> Search:
    """Dead letters matching ``text``: a person or unit (ID number / credit code, on the
    journal's subject hashes and in the bodies), else a message or correlation id."""
    text = text.strip()
    t = DeadLetterRow
    subjects = find_subjects(text)
    if subjects:
        kind, value = subjects[0]
        cids: list[str] = []
        journal = state.deps.journal
        if journal is not None and getattr(journal, "_subject_key", None) is not None:
            rows, _ = await journal.by_subject(kind, journal.subject_hash(kind, value),
                                               limit=SEARCH_MAX)
            cids = [str(r["correlation_id"]) for r in rows]
        # In the raw bodies too (a letter the journal never saw): SQLite's LIKE does not
        # look into BLOBs, instr does; PostgreSQL's bytea has LIKE. ``value`` is [0-9A-Z].
        raw = value.encode()
        sqlite = state.dead_letters.engine.dialect.name == "sqlite"
        in_body = func.instr(t.body, raw) > 0 if sqlite else t.body.like(b"%" + raw + b"%")
        where = or_(t.correlation_id.in_(cids), in_body)
        # mask_text too: an all-digit credit code may look like an ID number to a reader.
        label = f"{kind} {mask_text(masked_subject(kind, value))}"
    else:
        where = or_(t.message_id == text, t.correlation_id == text)
        label = f"message or correlation id {mask_text(text)}"
    q = select(t.id).where(where).order_by(t.id.desc()).limit(SEARCH_MAX)
    async with state.dead_letters.engine.connect() as conn:
        ids = [int(i) for i in (await conn.execute(q)).scalars().all()]
    return Search(ids, label)


def _day(value: str | None, *, end: bool = False) -> datetime | None:
    """A date field (YYYY-MM-DD, Beijing) as a UTC bound; ``end``: the next midnight."""
    if not value:
        return None
    try:
        d = date.fromisoformat(value)
    except ValueError:
        return None
    at = datetime.combine(d + timedelta(days=1) if end else d, time(), tzinfo=UTC)
    return at - timedelta(hours=8)


def _row(d: DeadLetter) -> dict[str, Any]:
    return {"id": d.id, "route": d.route, "message_id": d.message_id,
            "correlation_id": d.correlation_id, "type": d.type, "partner": d.partner,
            "source": d.source, "reason_code": d.reason_code, "reason": mask_text(d.reason),
            "attempts": d.attempts, "dead_at": d.dead_at, "first_seen": d.first_seen,
            "status": d.status, "retried_count": d.retried_count, "updated_at": d.updated_at}


# -- list ----------------------------------------------------------------------------------

@router.get("/console/dead-letters", response_class=HTMLResponse, include_in_schema=False)
async def list_page(request: Request) -> Response:
    p = signed_in(request)
    if p is None:
        return to_login(request)
    args = {k: (request.query_params.get(k) or "").strip() for k in _FILTERS}
    status = args["status"] if args["status"] in (*STATUSES, "any") else "dead"
    try:
        offset = max(0, min(int(request.query_params.get("offset") or 0), 10**9))
    except ValueError:
        offset = 0
    search = await search_ids(p.state, args["q"]) if args["q"] else None
    flt = DeadLetterFilter(partner=args["partner"] or None, type=args["type"] or None,
                           reason_code=args["reason_code"] or None,
                           status=None if status == "any" else status,  # type: ignore[arg-type]
                           route=args["route"] or None, since=_day(args["since"]),
                           until=_day(args["until"], end=True),
                           ids=search.ids if search else None)
    store = p.state.dead_letters
    rows = await store.list(flt, limit=PAGE_SIZE, offset=offset)
    total = await store.count(flt)
    groups = await store.groups(DeadLetterFilter(
        status="dead" if status == "any" else status,  # type: ignore[arg-type]
        partner=flt.partner, type=flt.type, route=flt.route, since=flt.since,
        until=flt.until, ids=flt.ids))
    # The search box never shows an ID number back: the label says what matched, masked.
    shown = dict(args, q="" if search and search.label.startswith(("person", "unit"))
                 else args["q"], status=status)
    keep = {k: v for k, v in shown.items() if v and k != "q"} | (
        {"q": args["q"]} if args["q"] else {})
    return page(p, "dead_letters.html", {
        "rows": [_row(d) for d in rows], "total": total, "offset": offset,
        "limit": PAGE_SIZE, "groups": groups, "f": shown, "statuses": STATUSES,
        "search": search, "status": status, "keep": keep,
        "partners": await _distinct(p.state, DeadLetterRow.partner),
        "routes": await _distinct(p.state, DeadLetterRow.route),
        "reasons": await _distinct(p.state, DeadLetterRow.reason_code),
        "jobs": jobs_of(p.state) is not None})


async def _distinct(state: ApiState, column: Any) -> list[str]:
    async with state.dead_letters.engine.connect() as conn:
        q = select(column).distinct().order_by(column).limit(200)
        return [str(v) for v in (await conn.execute(q)).scalars().all()]


# -- detail --------------------------------------------------------------------------------

def failure_history(headers: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``x-failures`` header (the last attempts' codes and reasons), masked."""
    raw = headers.get("x-failures")
    try:
        past = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return []
    if not isinstance(past, list):
        return []
    return [mask_value(f) for f in past if isinstance(f, dict)]


@router.get("/console/dead-letters/{id}", response_class=HTMLResponse, include_in_schema=False)
async def detail_page(request: Request, id: int) -> Response:
    p = signed_in(request)
    if p is None:
        return to_login(request)
    d = await desk_of(p.state).show(id, p.who) if 0 < id < 2**63 else None
    if d is None:
        return page(p, "error.html", {"status": 404, "title": "Not found",
                                      "message": f"no dead letter {id}"}, status=404)
    readable, body = masked_body(d.body)
    headers = mask_headers(d.headers)
    return page(p, "dead_letter.html", {
        "d": _row(d), "readable": readable, "body": body, "headers": headers,
        "failures": failure_history(headers)})


# -- actions -------------------------------------------------------------------------------

def _ids(values: list[Any]) -> list[int]:
    out: list[int] = []
    for v in values:
        try:
            n = int(str(v))
        except ValueError:
            continue
        if 0 < n < 2**63:
            out.append(n)
    return list(dict.fromkeys(out))


def _selection(form: Any) -> tuple[list[int] | None, GroupSelector | None, str]:
    """(ids, group, reason) of an action form; a group when ``group_reason_code`` is set."""
    reason = str(form.get("reason") or "").strip()[:500] or "from the console"
    code = str(form.get("group_reason_code") or "").strip()
    if code:
        group = GroupSelector(reason_code=code[:40],
                              partner=str(form.get("group_partner") or "") or None,
                              type=str(form.get("group_type") or "") or None)
        return None, group, reason
    ids = _ids(form.getlist("ids"))
    return (ids or None), None, reason


def _back(form: Any) -> str:
    back = str(form.get("back") or "")
    return back if back.startswith("/console/") and "//" not in back else "/console/dead-letters"


def _nothing(p: Page) -> HTMLResponse:
    return page(p, "error.html", {"status": 422, "title": "Nothing selected",
                                  "message": "select dead letters or a group first"},
                status=422)


@router.post("/console/dead-letters/retry", include_in_schema=False)
async def retry(request: Request) -> Response:
    got = await guard(request, *OPERATORS)
    if isinstance(got, Response):
        return got
    p, form = got
    ids, group, reason = _selection(form)
    if ids is None and group is None:
        return _nothing(p)
    params: dict[str, Any] = {"reason": reason}
    params |= {"ids": ids} if ids is not None else \
        {"group": group.model_dump(exclude_none=True) if group else {}}
    jobs = jobs_of(p.state)
    if jobs is not None:
        try:
            view = await jobs.start(RETRY_KIND, params, p.who)
        except UnknownKind:  # no dlq.retry handler registered: retry in the request
            log.warning("console: jobs have no %s handler; retrying in the request",
                        RETRY_KIND)
        except ValueError as exc:  # the runner's params check (ValidationError is one)
            return page(p, "error.html", {"status": 422, "title": "Not started",
                                          "message": mask_text(str(exc))[:500]}, status=422)
        else:
            return redirect(f"/console/jobs/{quote(view.id, safe='')}")
    result = await desk_of(p.state).retry(
        RetryRequest(ids=ids, group=group, reason=reason, limit=10_000), p.who)
    now = datetime.now(UTC)
    view = JobView(id=f"direct-{result.audit_id}", kind=RETRY_KIND, state="done",
                   started_by=p.who.user, role=p.who.role, created_at=now, updated_at=now,
                   total=result.selected, done=len(result.done), failed=len(result.failed),
                   skipped=len(result.skipped),
                   params=params,
                   report=mask_value(result.model_dump(exclude={"action"})))
    return page(p, "job.html", {"job": view, "direct": True})


@router.post("/console/dead-letters/archive", include_in_schema=False)
async def archive(request: Request) -> Response:
    got = await guard(request, *OPERATORS)
    if isinstance(got, Response):
        return got
    p, form = got
    ids, group, reason = _selection(form)
    if ids is None and group is None:
        return _nothing(p)
    await desk_of(p.state).archive(ArchiveRequest(ids=ids, group=group, reason=reason,
                                                  limit=10_000), p.who)
    return redirect(_back(form))


@router.post("/console/dead-letters/unarchive", include_in_schema=False)
async def unarchive(request: Request) -> Response:
    """Archived letters back to ``dead`` (a retry is intended after all); audited."""
    got = await guard(request, *OPERATORS)
    if isinstance(got, Response):
        return got
    p, form = got
    ids, _, reason = _selection(form)
    if not ids:
        return _nothing(p)
    done = await p.state.dead_letters.mark(ids, "dead", only_from=_ARCHIVED)
    skipped = sorted(set(ids) - set(done))
    await p.state.audit.record(p.who.user, p.who.role, "dead_letter.unarchive",
                               "ids:" + ",".join(str(i) for i in ids[:20]),
                               {"reason": reason, "done": len(done), "skipped": len(skipped),
                                "ids": done[:1000]},
                               "ok" if not skipped else ("partial" if done else "failed"))
    return redirect(_back(form))


# -- edit and retry (admin) ----------------------------------------------------------------

def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out |= _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    return {prefix or "(payload)": value}


def diff(before: Any, after: Any) -> list[dict[str, Any]]:
    """Field paths that differ: ``change`` added / removed / changed, values masked by the
    field's own name (an ID number shows masked on both sides)."""
    a, b = _flatten(before), _flatten(after)
    out = []
    for path in sorted(set(a) | set(b)):
        if path in a and path in b and a[path] == b[path]:
            continue
        key = path.rsplit(".", 1)[-1]
        out.append({"path": path,
                    "change": "added" if path not in a else "removed" if path not in b
                    else "changed",
                    "before": json.dumps(mask_value(a[path], key), ensure_ascii=False)
                    if path in a else "",
                    "after": json.dumps(mask_value(b[path], key), ensure_ascii=False)
                    if path in b else ""})
    return out[:DIFF_LIMIT]


async def _letter_payload(p: Page, id: int) -> tuple[DeadLetter | None, Any]:
    d = await p.state.dead_letters.get(id) if 0 < id < 2**63 else None
    if d is None:
        return None, None
    try:
        env = json.loads(d.body)
    except (ValueError, UnicodeDecodeError):
        env = None
    return d, env.get("payload") if isinstance(env, dict) else None


@router.get("/console/dead-letters/{id}/edit", response_class=HTMLResponse,
            include_in_schema=False)
async def edit_page(request: Request, id: int) -> Response:
    p = signed_in(request)
    if p is None:
        return to_login(request)
    if not p.can("admin"):
        return page(p, "error.html", {"status": 403, "title": "Forbidden",
                                      "message": "edit-and-retry is for admins"}, status=403)
    d, payload = await _letter_payload(p, id)
    if d is None:
        return page(p, "error.html", {"status": 404, "title": "Not found",
                                      "message": f"no dead letter {id}"}, status=404)
    return page(p, "edit.html", {"d": _row(d), "payload": mask_value(payload), "patch": "",
                                 "reason": "", "changes": None, "error": None})


@router.post("/console/dead-letters/{id}/edit", include_in_schema=False)
async def edit(request: Request, id: int) -> Response:
    """``do=preview``: the masked diff; ``do=send``: edit-and-retry through the desk."""
    got = await guard(request, "admin")
    if isinstance(got, Response):
        return got
    p, form = got
    d, payload = await _letter_payload(p, id)
    if d is None:
        return page(p, "error.html", {"status": 404, "title": "Not found",
                                      "message": f"no dead letter {id}"}, status=404)
    text, reason = str(form.get("patch") or ""), str(form.get("reason") or "").strip()
    ctx: dict[str, Any] = {"d": _row(d), "payload": mask_value(payload), "patch": text,
                           "reason": reason, "changes": None, "error": None, "sent": None}
    try:
        patch = json.loads(text)
        if not isinstance(patch, dict) or not patch:
            raise ValueError("the patch must be a non-empty JSON object")
        ctx["changes"] = diff(payload, merge_patch(payload, patch))
        if form.get("do") == "send":
            ctx["sent"] = await desk_of(p.state).edit_retry(
                id, EditRetryRequest(patch=patch, reason=reason or "edited in the console"),
                p.who)
    except EditRefused as exc:
        ctx["error"] = exc.message if isinstance(exc.message, str) else \
            "; ".join(f"{e['field']}: {e['error']}" for e in exc.message)
    except ValidationError as exc:
        ctx["error"] = "; ".join(f"{e['field']}: {e['error']}" for e in envelope_errors(exc))
    except ValueError as exc:
        ctx["error"] = f"patch: {mask_text(str(exc))[:300]}"
    return page(p, "edit.html", ctx, status=422 if ctx["error"] else 200)

"""Console pages besides dead letters: sign-in, jobs, live state, transactions, worklists.

Each page reads the service the JSON API reads (``services.jobs``, ``services.live_state``
when the hub has it, ``services.transactions``, ``services.worklists``), masked the same
way; actions go through ``web.guard`` (signed in, CSRF, role) and are audited.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import ValidationError

from api.auth import hash_token
from api.console.dead_letters import jobs_of
from api.console.session import ConsoleSession, same_token
from api.console.web import (
    HERE,
    OPERATORS,
    Page,
    guard,
    page,
    read_session,
    redirect,
    render,
    set_session,
    signed_in,
    to_login,
)
from api.deps import state_of
from contracts.employee import ResendRequest
from contracts.errors import HubError
from contracts.masking import mask_text, mask_value
from contracts.resend import RecordResendRequest
from services import transactions as txns
from services import worklists
from services.jobs import JobView
from services.resender import AnyResend, Resender
from storage.deadletters import DeadLetterFilter

__all__ = ["router"]

log = logging.getLogger("hub.console")

router = APIRouter()

STATIC: Final[dict[str, tuple[Path, str]]] = {
    "console.css": (HERE / "static" / "console.css", "text/css"),
    "console.js": (HERE / "static" / "console.js", "text/javascript"),
}


@router.get("/console/static/{name}", include_in_schema=False)
async def static(name: str) -> Response:
    """The console's own assets (no CDN: it works on an offline intranet)."""
    found = STATIC.get(name)
    if found is None:
        return Response("not found", status_code=404, media_type="text/plain")
    return FileResponse(found[0], media_type=found[1],
                        headers={"Cache-Control": "max-age=300"})


@router.get("/console", include_in_schema=False)
@router.get("/console/", include_in_schema=False)
async def home(request: Request) -> Response:
    return redirect("/console/dead-letters" if signed_in(request) else "/console/login")


# -- sign in and out -----------------------------------------------------------------------

def _next(value: Any) -> str:
    back = str(value or "")
    return back if back.startswith("/console/") and "//" not in back else "/console/dead-letters"


@router.get("/console/login", response_class=HTMLResponse, include_in_schema=False)
async def login_form(request: Request) -> Response:
    session = read_session(request)
    if session is None or session.principal is not None:
        session = ConsoleSession.anonymous()
    r = render(request, "login.html", {"next": _next(request.query_params.get("next")),
                                       "error": None}, session=session)
    set_session(r, request, session)
    return r


@router.post("/console/login", include_in_schema=False)
async def login(request: Request) -> Response:
    """The form's token checked like a bearer token (``Authenticator``); a wrong one is
    answered 401 and audited (``console.login`` / ``refused``)."""
    form = await request.form()
    session = read_session(request)
    state = state_of(request)
    csrf = form.get("csrf")
    token = str(form.get("token") or "").strip()
    if session is None or not same_token(session.csrf, csrf if isinstance(csrf, str) else None):
        await state.audit.record("anonymous", "-", "console.login", "/console/login",
                                 {"why": "missing or wrong CSRF token"}, "forbidden")
        fresh = ConsoleSession.anonymous()
        r = render(request, "login.html", {"next": _next(form.get("next")),
                                           "error": "The form expired; sign in again."},
                   status=403, session=fresh)
        set_session(r, request, fresh)
        return r
    who = state.auth.authenticate(token)
    if who is None:
        host = request.client.host if request.client else "?"
        log.info("console: sign-in refused from %s", host)
        await state.audit.record("anonymous", "-", "console.login", "/console/login",
                                 {"why": "unknown token", "from": host}, "refused")
        return render(request, "login.html", {"next": _next(form.get("next")),
                                              "error": "That token is not valid."},
                      status=401, session=session)
    await state.audit.record(who.user, who.role, "console.login", "/console/login", {}, "ok")
    done = redirect(_next(form.get("next")))
    set_session(done, request, ConsoleSession.signed_in(who, hash_token(token)))
    return done


@router.post("/console/logout", include_in_schema=False)
async def logout(request: Request) -> Response:
    got = await guard(request)
    if isinstance(got, Response):
        return got
    p, _ = got
    await p.state.audit.record(p.who.user, p.who.role, "console.logout", "/console/logout",
                               {}, "ok")
    r = redirect("/console/login")
    set_session(r, request, None)
    return r


# -- jobs ----------------------------------------------------------------------------------

_SEE_ALL_JOBS: Final = ("operations", "admin", "readonly")


def _visible(p: Page, job: JobView) -> bool:
    """Jobs are visible to the role that starts them and to operations (and readonly,
    which sees everything, masked)."""
    return p.can(*_SEE_ALL_JOBS) or job.role == p.who.role


def _may_cancel(p: Page, job: JobView) -> bool:
    return not job.finished and (p.can(*OPERATORS) or job.started_by == p.who.user)


def _job_json(job: JobView) -> dict[str, Any]:
    return {"id": job.id, "kind": job.kind, "state": job.state, "total": job.total,
            "done": job.done, "failed": job.failed, "skipped": job.skipped,
            "progress": job.progress, "finished": job.finished,
            "cancel_requested": job.cancel_requested}


def _no_jobs(p: Page) -> HTMLResponse:
    return page(p, "error.html", {"status": 404, "title": "No jobs",
                                  "message": "this hub has no durable jobs "
                                             "(services.job_runner is not wired)"}, status=404)


@router.get("/console/jobs", response_class=HTMLResponse, include_in_schema=False)
async def jobs_page(request: Request) -> Response:
    p = signed_in(request)
    if p is None:
        return to_login(request)
    jobs = jobs_of(p.state)
    kind = request.query_params.get("kind") or None
    state = request.query_params.get("state") or None
    listed = [j for j in (await jobs.list(kind=kind, state=state, limit=200) if jobs else [])
              if _visible(p, j)][:100]
    return page(p, "jobs.html", {"jobs": listed, "available": jobs is not None,
                                 "kind": kind or "", "state": state or "",
                                 "may_cancel": {j.id: _may_cancel(p, j) for j in listed}})


@router.get("/console/jobs/{job_id}", response_class=HTMLResponse, include_in_schema=False)
async def job_page(request: Request, job_id: str) -> Response:
    p = signed_in(request)
    if p is None:
        return to_login(request)
    jobs = jobs_of(p.state)
    if jobs is None:
        return _no_jobs(p)
    job = await jobs.get(job_id[:80])
    if job is None or not _visible(p, job):
        return page(p, "error.html", {"status": 404, "title": "Not found",
                                      "message": f"no job {mask_text(job_id[:80])}"},
                    status=404)
    return page(p, "job.html", {"job": job, "direct": False,
                                "may_cancel": _may_cancel(p, job)})


@router.get("/console/jobs/{job_id}/progress", include_in_schema=False)
async def job_progress(request: Request, job_id: str) -> Response:
    """What the job page polls (``console.js``)."""
    p = signed_in(request)
    jobs = jobs_of(p.state) if p else None
    job = await jobs.get(job_id[:80]) if jobs else None
    if p is None or job is None or not _visible(p, job):
        return JSONResponse({"error": "not found"}, status_code=404,
                            headers={"Cache-Control": "no-store"})
    return JSONResponse(_job_json(job), headers={"Cache-Control": "no-store"})


@router.post("/console/jobs/{job_id}/cancel", include_in_schema=False)
async def cancel_job(request: Request, job_id: str) -> Response:
    got = await guard(request)
    if isinstance(got, Response):
        return got
    p, _ = got
    jobs = jobs_of(p.state)
    if jobs is None:
        return _no_jobs(p)
    job = await jobs.get(job_id[:80])
    if job is None:
        return page(p, "error.html", {"status": 404, "title": "Not found",
                                      "message": "no such job"}, status=404)
    if not (p.can(*OPERATORS) or job.started_by == p.who.user):
        await p.state.audit.record(p.who.user, p.who.role, "job.cancel", f"job:{job.id}",
                                   {"console": True, "started_by": job.started_by},
                                   "forbidden")
        return page(p, "error.html", {"status": 403, "title": "Forbidden",
                                      "message": "only whoever started a job, operations "
                                                 "or an admin may cancel it"}, status=403)
    await jobs.cancel(job.id, p.who)
    await p.state.audit.record(p.who.user, p.who.role, "job.cancel", f"job:{job.id}",
                               {"console": True, "kind": job.kind}, "ok")
    return redirect(f"/console/jobs/{quote(job.id, safe='')}")


# -- live state ----------------------------------------------------------------------------

async def _live(p: Page) -> dict[str, Any]:
    """``services.live_state`` (``Deps.live``: per route queue depth, consumers and rates,
    breakers, tickers, deadlines; each source bounded, cached a few seconds), plus the
    dead letters waiting per partner and the transactions by status."""
    deps = p.state.deps
    out: dict[str, Any] = {"live": None, "live_error": None}
    live = getattr(deps, "live", None)
    if live is not None:
        try:
            out["live"] = await live.view(deps)
        except Exception as exc:
            log.warning("console: live state failed: %s", exc)
            out["live_error"] = f"{type(exc).__name__}: {mask_text(str(exc))[:200]}"
    out["breakers"] = (out["live"] or {}).get("breakers") or deps.breakers.snapshot()
    groups = await p.state.dead_letters.groups(DeadLetterFilter(status="dead"))
    by_partner: dict[str, int] = {}
    for g in groups:
        by_partner[g.partner] = by_partner.get(g.partner, 0) + g.count
    out["dead_by_partner"] = sorted(by_partner.items())
    journal = deps.journal
    out["statuses"] = await journal.status_counts() if journal is not None else {}
    return out


@router.get("/console/live", response_class=HTMLResponse, include_in_schema=False)
async def live_page(request: Request) -> Response:
    p = signed_in(request)
    if p is None:
        return to_login(request)
    return page(p, "live.html", await _live(p))


@router.post("/console/breakers/{partner}/reset", include_in_schema=False)
async def reset_breaker(request: Request, partner: str) -> Response:
    got = await guard(request, *OPERATORS)
    if isinstance(got, Response):
        return got
    p, _ = got
    partner = partner[:40]
    before = p.state.deps.breakers.reset(partner)
    if before is None:
        return page(p, "error.html", {"status": 404, "title": "Not found",
                                      "message": f"no breaker for {mask_text(partner)}"},
                    status=404)
    await p.state.audit.record(p.who.user, p.who.role, "breaker.reset", partner,
                               {"was": before["state"], "console": True,
                                "recent_failures": before["recent_failures"]})
    return redirect("/console/live")


# -- transactions --------------------------------------------------------------------------

@router.get("/console/transactions", response_class=HTMLResponse, include_in_schema=False)
async def transactions_page(request: Request) -> Response:
    """Search by person (ID number) or unit (credit code), matched on the subject hash;
    the page never shows the typed value back unmasked; the search is audited."""
    p = signed_in(request)
    if p is None:
        return to_login(request)
    text = (request.query_params.get("q") or "").strip()[:40]
    kind = request.query_params.get("kind")
    ctx: dict[str, Any] = {"result": None, "error": None, "kind": kind or ""}
    if text:
        try:
            offset = max(0, min(int(request.query_params.get("offset") or 0), 2**31))
        except ValueError:
            offset = 0
        try:
            found = await txns.search_by_subject(
                p.state.deps.journal, text, limit=50, offset=offset,
                kind="person" if kind == "person" else "unit" if kind == "unit" else None)
        except txns.InvalidSubject as exc:
            ctx["error"] = f"{exc.field}: {exc.reason}"
        else:
            ctx["result"] = found
            await p.state.audit.record(p.who.user, p.who.role, "transaction.search",
                                       f"{found.kind}:{found.subject}",
                                       {"console": True, "found": found.total,
                                        "offset": offset})
    return page(p, "transactions.html", ctx)


@router.get("/console/transactions/{correlation_id}", response_class=HTMLResponse,
            include_in_schema=False)
async def transaction_page(request: Request, correlation_id: str) -> Response:
    p = signed_in(request)
    if p is None:
        return to_login(request)
    cid = correlation_id[:64]
    journal = p.state.deps.journal
    hops = await txns.path(journal, cid)
    if hops is None:
        return page(p, "error.html", {"status": 404, "title": "Not found",
                                      "message": f"no transaction {mask_text(cid)}"},
                    status=404)
    txn = await journal.transaction(cid) or {}
    shown = {k: txns.mask_business_key(str(v)) if k == "business_key" else mask_value(v, k)
             for k, v in txn.items()}
    longest = max((h.duration_ms for h in hops), default=0) or 1
    elapsed = int((hops[-1].ended - hops[0].started).total_seconds() * 1000) if hops else 0
    return page(p, "transaction.html", {"cid": cid, "txn": shown, "hops": hops,
                                        "longest": longest, "elapsed": elapsed})


# -- worklists -----------------------------------------------------------------------------

@router.get("/console/worklists", response_class=HTMLResponse, include_in_schema=False)
async def worklists_page(request: Request) -> Response:
    p = signed_in(request)
    if p is None:
        return to_login(request)
    counts = await worklists.counts(p.state.deps)
    return page(p, "worklists.html", {"lists": [(n, worklists.TITLES[n], c)
                                                for n, c in counts.items()]})


@router.get("/console/worklists/{name}", response_class=HTMLResponse, include_in_schema=False)
async def worklist_page(request: Request, name: str) -> Response:
    p = signed_in(request)
    if p is None:
        return to_login(request)
    try:
        offset = max(0, min(int(request.query_params.get("offset") or 0), 2**31))
    except ValueError:
        offset = 0
    try:
        wl = await worklists.worklist(p.state.deps, name[:40], limit=50, offset=offset)
    except worklists.UnknownWorklist:
        return page(p, "error.html", {"status": 404, "title": "Not found",
                                      "message": "no such worklist in this hub"}, status=404)
    return page(p, "worklist.html", {"wl": wl})


# -- a caseworker's resend of a failed sync ------------------------------------------------

_RECORD_SUBJECTS: Final = ("unit", "flexible", "resident")


def resend_request(txn: Mapping[str, Any], reason: str) -> AnyResend | None:
    """The 补发 of a failed sync's record from core's current state, built from the
    transaction's own business key (the page never holds the ID number): an employee's
    enrollment (``<credit code>:<ID number>``), or a unit's, flexible worker's or
    resident's enroll/update. None for anything else (a stop needs a date: the JSON API)."""
    type_, key = str(txn.get("type", "")), str(txn.get("business_key", ""))
    parts = type_.split(".")
    if len(parts) != 3 or parts[0] != "tax":
        return None
    subject, action = parts[1], parts[2]
    try:
        if subject == "employee" and action == "enroll":
            unit, _, person = key.partition(":")
            return ResendRequest(id_number=person, unit_credit_code=unit, action="enroll",
                                 reason=reason)
        if subject in _RECORD_SUBJECTS and action in ("enroll", "update"):
            return RecordResendRequest(subject=subject, key=key, action=action,
                                       reason=reason)
    except ValidationError:
        return None
    return None


@router.post("/console/resend/{correlation_id}", include_in_schema=False)
async def resend(request: Request, correlation_id: str) -> Response:
    """Caseworker: resend the record of a failed sync (``services.resender``, audited
    there as ``resend.<subject>.<action>``)."""
    got = await guard(request, "caseworker")
    if isinstance(got, Response):
        return got
    p, form = got
    d = p.state.deps
    txn = await d.journal.transaction(correlation_id[:64])
    reason = str(form.get("reason") or "").strip()[:500] or "resent from the console worklist"
    req = resend_request(txn or {}, reason if len(reason) >= 2 else "resent from the console")
    if req is None:
        return page(p, "error.html", {"status": 422, "title": "Cannot resend here",
                                      "message": "this transaction's record cannot be resent "
                                                 "from the console; use the resend API"},
                    status=422)
    resender = Resender(core=d.core, publisher=d.publisher, journal=d.journal,
                        audit=p.state.audit)
    try:
        out = await resender.resend(req, p.who)
    except HubError as exc:
        return page(p, "error.html", {"status": 502, "title": "Not resent",
                                      "message": mask_text(f"{exc.code}: {exc.reason}")[:500]},
                    status=502)
    return redirect(f"/console/transactions/{quote(out.message.correlation_id, safe='')}")

"""The web console on a SQLite archive, without a broker: sign-in, session cookie, CSRF,
role checks, masking on every page, the dead-letter actions (direct and as a job),
edit-and-retry's diff, unarchive, breaker reset, and what is audited."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.app import build_app
from api.auth import Authenticator
from api.console.session import COOKIE, ConsoleSession, SessionCodec, cookie_options
from api.deps import ApiState
from broker.topology import Names
from config.settings import load_settings
from contracts.ids import id_check_char
from services.deps import Deps
from services.jobs import JobView
from storage.deadletters import DeadLetterFilter
from storage.journal import Journal
from tests.support.ops import (
    BY_ROLE,
    ID,
    NAME,
    PHONE,
    PRINCIPALS,
    Db,
    RecordingIdem,
    Sent,
    letter,
)

PERSON = "32010219900517001" + id_check_char("32010219900517001")
MASKED_ID = "320102********0017"


@dataclass
class FakeJobs:
    """Records what the console asks of ``services.jobs.Jobs``."""

    started: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)
    cancelled: list[tuple[str, str]] = field(default_factory=list)
    views: dict[str, JobView] = field(default_factory=dict)

    def register(self, kind: str, handler: Any) -> None:  # pragma: no cover - not used
        pass

    async def start(self, kind: str, params: Mapping[str, Any], who: Any) -> JobView:
        now = datetime.now(UTC)
        job = JobView(id=f"j{len(self.started) + 1}", kind=kind, state="running",
                      started_by=who.user, role=who.role, created_at=now, updated_at=now,
                      total=4, done=1, params=dict(params))
        self.started.append((kind, dict(params), who.user))
        self.views[job.id] = job
        return job

    async def get(self, job_id: str) -> JobView | None:
        return self.views.get(job_id)

    async def list(self, *, kind: str | None = None, started_by: str | None = None,
                   state: str | None = None, limit: int = 50) -> list[JobView]:
        return list(self.views.values())

    async def cancel(self, job_id: str, who: Any) -> JobView | None:
        self.cancelled.append((job_id, who.user))
        return self.views.get(job_id)


@dataclass
class Console:
    db: Db
    app: FastAPI
    sent: Sent
    idem: RecordingIdem
    deps: Deps
    base: str = "http://127.0.0.1"

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                 base_url=self.base, follow_redirects=False)


@pytest.fixture
async def console(db: Db) -> AsyncIterator[Console]:
    settings = load_settings(env={"HUB_ENV": "development",  # no broker: live state says so
                                  "HUB_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/"},
                             settings_file="/nonexistent")
    idem, sent = RecordingIdem(), Sent()
    journal = Journal(db.store.engine, subject_key=b"k" * 32)
    deps = Deps(settings=settings, tax=None, core=None, idem=idem,  # type: ignore[arg-type]
                journal=journal, publisher=None, owner="t", names=Names("t"))
    state = ApiState(deps=deps, audit=db.audit, dead_letters=db.store,
                     auth=Authenticator(PRINCIPALS, db.audit), requeue=sent)
    yield Console(db, build_app(state), sent, idem, deps)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html) or \
        re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


async def _sign_in(c: httpx.AsyncClient, role: str) -> str:
    """Signs ``c`` in with the token of ``role``; returns the session's CSRF token."""
    r = await c.get("/console/login")
    r = await c.post("/console/login", data={"csrf": _csrf(r.text), "token": BY_ROLE[role],
                                             "next": "/console/dead-letters"})
    assert r.status_code == 303 and r.headers["location"] == "/console/dead-letters", r.text
    page = await c.get("/console/dead-letters")
    assert page.status_code == 200
    return _csrf(page.text)


async def test_sign_in_refuses_a_wrong_token_and_sets_a_strict_cookie(console: Console) -> None:
    async with console.client() as c:
        r = await c.get("/console/dead-letters")
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login?next=")
        form = await c.get("/console/login")
        assert "http://" not in form.text and "https://" not in form.text  # nothing remote
        assert "default-src 'self'" in form.headers["content-security-policy"]
        csrf = _csrf(form.text)
        r = await c.post("/console/login", data={"csrf": csrf, "token": "not-a-token-123456"})
        assert r.status_code == 401 and "not valid" in r.text and COOKIE in c.cookies
        r = await c.post("/console/login", data={"token": BY_ROLE["operations"]})  # no CSRF
        assert r.status_code == 403
        r = await c.get("/console/dead-letters")
        assert r.status_code == 303  # still not signed in
        form = await c.get("/console/login")
        r = await c.post("/console/login", data={"csrf": _csrf(form.text),
                                                 "token": BY_ROLE["operations"]})
        assert r.status_code == 303
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
        assert "secure" not in cookie  # a development hub on loopback: plain http
        assert BY_ROLE["operations"] not in r.headers["set-cookie"]  # the token is not kept
        r = await c.get("/console/dead-letters")
        assert r.status_code == 200 and "olga" in r.text
        csrf = _csrf(r.text)
        r = await c.post("/console/logout", data={"csrf": csrf})
        assert r.status_code == 303
        assert (await c.get("/console/dead-letters")).status_code == 303
    audit = await console.db.audit.list(action="console.login")
    assert [(a.actor, a.outcome) for a in audit] == [("olga", "ok"), ("anonymous", "forbidden"),
                                                     ("anonymous", "refused")]
    assert [a.actor for a in await console.db.audit.list(action="console.logout")] == ["olga"]


def test_the_session_cookie_is_signed_expires_and_is_secure_off_loopback() -> None:
    codec = SessionCodec("secret-one")
    from api.auth import Principal
    s = ConsoleSession.signed_in(Principal("olga", "operations"), "ab" * 32)
    cookie = codec.dumps(s)
    assert codec.loads(cookie) == s
    assert SessionCodec("secret-two").loads(cookie) is None  # another hub's key
    assert codec.loads(cookie[:-2] + ("A" if cookie[-2] != "A" else "B") + cookie[-1]) is None
    assert SessionCodec("secret-one", max_age_s=-1).loads(cookie) is None  # expired
    assert cookie_options(development=False, host="0.0.0.0")["secure"] is True
    assert cookie_options(development=False, host="127.0.0.1")["secure"] is False
    with pytest.raises(ValueError, match="console_secret"):
        SessionCodec("")


async def test_a_forged_role_in_the_cookie_is_not_accepted(console: Console) -> None:
    from api.auth import Principal
    # signed with the hub's key, but for a token the hub does not know
    codec = SessionCodec(console.deps.settings.console_secret.get_secret_value())
    forged = codec.dumps(ConsoleSession.signed_in(Principal("mallory", "admin"), "00" * 32))
    async with console.client() as c:
        c.cookies.set(COOKIE, forged)
        assert (await c.get("/console/dead-letters")).status_code == 303


async def test_csrf_and_roles_are_checked_and_refusals_audited(console: Console) -> None:
    [a] = [await console.db.store.add(letter(1))]
    async with console.client() as c:
        csrf = await _sign_in(c, "operations")
        for data in ({"ids": str(a)}, {"ids": str(a), "csrf": "wrong"}):
            r = await c.post("/console/dead-letters/retry", data=data)
            assert r.status_code == 403 and "CSRF" in r.text
        assert console.sent.calls == []
    async with console.client() as c:
        csrf = await _sign_in(c, "readonly")
        page = (await c.get("/console/dead-letters")).text
        assert f'data-id="{a}"' in page
        assert "Retry" not in page and 'name="ids"' not in page and "Archive" not in page
        r = await c.post("/console/dead-letters/retry", data={"ids": str(a), "csrf": csrf})
        assert r.status_code == 403 and "readonly" in r.text
        r = await c.post("/console/breakers/tax/reset", data={"csrf": csrf})
        assert r.status_code == 403
    assert console.sent.calls == []
    refused = await console.db.audit.list(outcome="forbidden")
    assert [(e.actor, e.action) for e in refused] == [
        ("rita", "POST /console/breakers/tax/reset"), ("rita", "POST /console/dead-letters/retry"),
        ("olga", "POST /console/dead-letters/retry"), ("olga", "POST /console/dead-letters/retry")]
    assert refused[-1].detail["csrf"] == "missing" and refused[-2].detail["csrf"] == "wrong"


async def test_pages_mask_personal_data(console: Console) -> None:
    a = await console.db.store.add(letter(1))
    b = await console.db.store.add(letter(2, body=f'{{"broken {ID} {PHONE}'.encode()))
    async with console.client() as c:
        await _sign_in(c, "caseworker")
        pages = [await c.get(u) for u in ("/console/dead-letters", f"/console/dead-letters/{a}",
                                          f"/console/dead-letters/{b}")]
        for r in pages:
            assert r.status_code == 200
            for raw in (ID, PHONE, NAME):
                assert raw not in r.text
        assert MASKED_ID in pages[1].text and "张**" in pages[1].text
        assert "503 for 320102********0017" in pages[1].text  # the failure history, masked
        assert "138****5678" in pages[2].text
        # a search by a person's ID number: found, and the number is shown masked only
        other = await console.db.store.add(letter(3, body=letter(3).body.replace(
            ID.encode(), PERSON.encode())))
        r = await c.get("/console/dead-letters", params={"q": PERSON})
        assert PERSON not in r.text and f'data-id="{other}"' in r.text
        assert f'data-id="{a}"' not in r.text and "person 320102********" in r.text
        r = await c.get("/console/dead-letters", params={"q": "m1"})  # a message id
        assert f'data-id="{a}"' in r.text and f'data-id="{other}"' not in r.text
        r = await c.get("/console/transactions", params={"q": PERSON})
        assert r.status_code == 200 and PERSON not in r.text and "0 transaction(s)" in r.text
        r = await c.get("/console/transactions", params={"q": PERSON[:-1] + "0"})
        assert "wrong check" in r.text or "check" in r.text
    [view] = await console.db.audit.list(action="dead_letter.view", actor="carl", limit=1)
    assert view.target == f"id:{b}"
    [search] = await console.db.audit.list(action="transaction.search")
    assert PERSON not in search.target and search.detail["console"] is True


async def test_filters_groups_and_direct_retry_archive_unarchive(console: Console) -> None:
    ids = [await console.db.store.add(letter(i)) for i in range(3)]
    other = await console.db.store.add(letter(9, partner="core", reason_code="CLIENT_ERROR",
                                              route="core.sync"))
    async with console.client() as c:
        csrf = await _sign_in(c, "operations")
        r = await c.get("/console/dead-letters", params={"partner": "core"})
        assert re.findall(r'data-id="(\d+)"', r.text) == [str(other)]
        r = await c.get("/console/dead-letters")
        assert 'data-reason="UNAVAILABLE"' in r.text and 'data-reason="CLIENT_ERROR"' in r.text
        assert 'id="dl-total">4<' in r.text and "Retry group" in r.text
        # archive two, unarchive one
        r = await c.post("/console/dead-letters/archive",
                         data={"csrf": csrf, "ids": [str(ids[0]), str(ids[1])]})
        assert r.status_code == 303
        r = await c.get("/console/dead-letters", params={"status": "archived"})
        assert sorted(re.findall(r'data-id="(\d+)"', r.text)) == sorted(map(str, ids[:2]))
        r = await c.post("/console/dead-letters/unarchive",
                         data={"csrf": csrf, "ids": [str(ids[0])]})
        assert r.status_code == 303
        assert (await console.db.store.get(ids[0])).status == "dead"  # type: ignore[union-attr]
        # retry the UNAVAILABLE group in the request (no jobs in this hub)
        r = await c.post("/console/dead-letters/retry", data={
            "csrf": csrf, "group_reason_code": "UNAVAILABLE", "group_partner": "tax",
            "group_type": "tax.employee.enroll", "reason": "tax is back"})
        assert r.status_code == 200 and 'id="job-state"' in r.text and ">done<" in r.text
    assert sorted(c[1] for c in console.sent.calls) == ["t.q.tax.employee"] * 2
    assert await console.db.store.count(DeadLetterFilter(status="dead")) == 1  # core's
    assert [a.outcome for a in await console.db.audit.list(action="dead_letter.unarchive")] \
        == ["ok"]
    [retried] = await console.db.audit.list(action="dead_letter.retry")
    assert (retried.actor, retried.detail["done"]) == ("olga", 2)


async def test_retry_as_a_job_progress_and_cancel(console: Console) -> None:
    jobs = FakeJobs()
    object.__setattr__(console.deps, "jobs", jobs)  # until Deps has the field (H4)
    a = await console.db.store.add(letter(1))
    async with console.client() as c:
        csrf = await _sign_in(c, "operations")
        r = await c.post("/console/dead-letters/retry", data={"csrf": csrf, "ids": str(a)})
        assert r.status_code == 303 and r.headers["location"] == "/console/jobs/j1"
        r = await c.post("/console/dead-letters/retry", data={
            "csrf": csrf, "group_reason_code": "UNAVAILABLE", "group_partner": "tax"})
        assert jobs.started == [("dlq.retry", {"ids": [a], "reason": "from the console"}, "olga"),
                                ("dlq.retry", {"group": {"reason_code": "UNAVAILABLE",
                                                         "partner": "tax"},
                                               "reason": "from the console"}, "olga")]
        page = await c.get("/console/jobs/j1")
        assert 'data-progress-url="/console/jobs/j1/progress"' in page.text
        assert 'value="25"' in page.text  # 1 of 4
        got = (await c.get("/console/jobs/j1/progress")).json()
        assert (got["state"], got["done"], got["total"], got["finished"]) == \
            ("running", 1, 4, False)
        assert "j2" in (await c.get("/console/jobs")).text
    assert console.sent.calls == []  # the job does the sending, not the request
    async with console.client() as c:  # a caseworker did not start it: may not cancel
        csrf = await _sign_in(c, "caseworker")
        # jobs are visible to the role that started them and to operations
        assert (await c.get("/console/jobs/j1")).status_code == 404
        assert "j1" not in (await c.get("/console/jobs")).text
        r = await c.post("/console/jobs/j1/cancel", data={"csrf": csrf})
        assert r.status_code == 403
    async with console.client() as c:
        csrf = await _sign_in(c, "operations")
        r = await c.post("/console/jobs/j1/cancel", data={"csrf": csrf})
        assert r.status_code == 303
    assert jobs.cancelled == [("j1", "olga")]
    assert [(e.actor, e.outcome) for e in await console.db.audit.list(action="job.cancel")] == \
        [("olga", "ok"), ("carl", "forbidden")]


async def test_edit_and_retry_is_for_admins_and_shows_a_masked_diff(console: Console) -> None:
    a = await console.db.store.add(letter(1))
    async with console.client() as c:
        await _sign_in(c, "operations")
        assert "Edit and retry" not in (await c.get(f"/console/dead-letters/{a}")).text
        assert (await c.get(f"/console/dead-letters/{a}/edit")).status_code == 403
    async with console.client() as c:
        csrf = await _sign_in(c, "admin")
        assert "Edit and retry" in (await c.get(f"/console/dead-letters/{a}")).text
        patch = json.dumps({"id_number": PERSON, "phone": None})
        r = await c.post(f"/console/dead-letters/{a}/edit",
                         data={"csrf": csrf, "patch": patch, "reason": "typo", "do": "preview"})
        assert r.status_code == 200
        diff = r.text[r.text.index('id="diff"'):r.text.index("</table>", r.text.index('id="diff"'))]
        assert "id_number" in diff and "changed" in diff and "phone" in diff and "removed" in diff
        assert ID not in diff and PERSON not in diff and MASKED_ID in diff
        assert console.sent.calls == []  # a preview sends nothing
        r = await c.post(f"/console/dead-letters/{a}/edit",
                         data={"csrf": csrf, "patch": "[1]", "reason": "x", "do": "preview"})
        assert r.status_code == 422 and "patch:" in r.text
        r = await c.post(f"/console/dead-letters/{a}/edit",
                         data={"csrf": csrf, "patch": patch, "reason": "typo", "do": "send"})
        assert r.status_code == 200 and 'id="sent"' in r.text
    [(body, queue, headers)] = console.sent.calls
    assert PERSON.encode() in body and queue == "t.q.tax.employee"
    assert headers["x-edited-by"] == "root"


async def test_live_state_worklists_and_breaker_reset(console: Console) -> None:
    console.deps.breakers.get("tax")
    async with console.client() as c:
        csrf = await _sign_in(c, "operations")
        r = await c.get("/console/live")
        assert r.status_code == 200 and 'data-partner="tax"' in r.text and "Reset" in r.text
        assert 'data-route="tax.employee"' in r.text and "broker unreadable" in r.text
        r = await c.post("/console/breakers/tax/reset", data={"csrf": csrf})
        assert r.status_code == 303
        r = await c.post("/console/breakers/nobody/reset", data={"csrf": csrf})
        assert r.status_code == 404
        r = await c.get("/console/worklists")
        assert r.status_code == 200 and "Failed syncs" in r.text
        r = await c.get("/console/worklists/failed_syncs")
        assert r.status_code == 200 and "Nothing waits" in r.text
        assert (await c.get("/console/worklists/nope")).status_code == 404
        css = await c.get("/console/static/console.css")
        js = await c.get("/console/static/console.js")
        assert css.status_code == js.status_code == 200 and "fetch(" in js.text
        assert (await c.get("/console/static/../session.py")).status_code == 404
    [reset] = await console.db.audit.list(action="breaker.reset")
    assert (reset.actor, reset.target, reset.detail["console"]) == ("olga", "tax", True)
    async with console.client() as c:
        await _sign_in(c, "readonly")
        assert "Reset" not in (await c.get("/console/live")).text


def test_a_failed_sync_is_resent_from_its_own_business_key() -> None:
    from api.console.pages import resend_request
    from contracts.employee import ResendRequest
    from contracts.resend import RecordResendRequest
    uscc = "91320117TH0D3DE184"
    req = resend_request({"type": "tax.employee.enroll", "business_key": f"{uscc}:{PERSON}"},
                         "tax lost it")
    assert isinstance(req, ResendRequest)
    assert (req.id_number, req.unit_credit_code, req.action) == (PERSON, uscc, "enroll")
    req = resend_request({"type": "tax.unit.update", "business_key": uscc}, "again")
    assert isinstance(req, RecordResendRequest) and (req.subject, req.action) == ("unit", "update")
    assert resend_request({"type": "tax.employee.stop", "business_key": f"{uscc}:{PERSON}"},
                          "x y") is None  # a stop needs its date: the JSON API
    assert resend_request({"type": "tax.employee.enroll", "business_key": "garbage"},
                          "x y") is None
    assert resend_request({"type": "core.sync_status", "business_key": uscc}, "x y") is None


async def test_resend_is_for_caseworkers(console: Console) -> None:
    async with console.client() as c:
        csrf = await _sign_in(c, "operations")
        r = await c.post("/console/resend/c-unknown", data={"csrf": csrf})
        assert r.status_code == 403
    async with console.client() as c:
        csrf = await _sign_in(c, "caseworker")
        r = await c.post("/console/resend/c-unknown", data={"csrf": csrf})
        assert r.status_code == 422 and "cannot be resent" in r.text


async def test_jobs_without_a_dlq_retry_handler_retry_in_the_request(console: Console) -> None:
    from services.job_runner import UnknownKind

    class NoHandler(FakeJobs):
        async def start(self, kind: str, params: Mapping[str, Any], who: Any) -> JobView:
            raise UnknownKind(kind)

    object.__setattr__(console.deps, "jobs", NoHandler())
    a = await console.db.store.add(letter(1))
    async with console.client() as c:
        csrf = await _sign_in(c, "operations")
        r = await c.post("/console/dead-letters/retry", data={"csrf": csrf, "ids": str(a)})
        assert r.status_code == 200 and ">done<" in r.text
    assert [q for _, q, _ in console.sent.calls] == ["t.q.tax.employee"]

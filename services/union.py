"""F12 union cases (工会互助): intake, 受理, the clock, 审核理算, 结案, 终审, archive, alerts.

The city union sends cases through its signed door (``api.union``); this desk

1. **intake** (``submit``): the application was validated by its contract (images by
   their headers); the case is accepted (受理) when the materials are complete (the
   required image classes), the applicant is on the year's 申请互助待遇人员清单 in that
   unit and the disease has a 给付标准; else refused (不予受理) with the reason. Either
   way the applicant unit and the city union are told (two notices on the
   ``union.notify`` lane). A repeat of the same case is answered with the stored case;
   the same case number with other content is a conflict.
2. **the clock** (``services.union_clock``): acceptance due 2 working days after the
   complete materials, closure 3 working days after acceptance (pauses for the
   applicant unit and for investigation excluded), archive 5 working days after the
   union's 终审结案. Deadlines are columns of the case (durable), recomputed whenever
   the case moves.
3. **caseworker actions** (``act``): ``investigate`` / ``await_applicant`` stop the
   clock, ``resume`` restarts it, ``close`` adjudicates (``adjudicate``: 理算 from the
   给付标准 and 审核规则) and sends the result file, ``archive`` reports the archive
   returned, ``resend`` (补发) sends a case's notice again as a new fact.
4. **the union's 终审结案** (``final``) starts the archive timer.
5. **breaches** (``sweep``): every open timer past its deadline (or met late) is
   alerted once: a warning log (case number only, no personal data) and a row in
   ``union_alerts`` (``GET /admin/union/alerts``). The hub runs ``sweep`` every
   ``union.check_s`` seconds (``bootstrap.hub``) and every list of cases runs it
   first, so what an operator reads is current even between rounds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.clock import BEIJING, now_beijing
from contracts.envelope import canonical_json
from contracts.union import (
    LAYOUT_VERSION,
    CaseApplication,
    ClosureFile,
    ClosureLine,
    FinalNotice,
    Notice,
    UnionStandards,
    closure_file_name,
    notice_message,
    render_closure_file,
)
from kernel.deps import Publisher
from services.audit import Actor, Audit
from services.union_clock import (
    ACCEPT_DAYS,
    ARCHIVE_DAYS,
    Pause,
    add_working_days,
    close_due,
    due_status,
    work_order,
)
from storage.union import UnionStore, case_id_for, masked_case

__all__ = ["CaseAction", "Submitted", "UnionDesk", "adjudicate", "timers"]

log = logging.getLogger("hub.union")

_CENT: Final = Decimal("0.01")
PAUSE_STATUS: Final = {"investigate": "investigating", "await_applicant": "awaiting_applicant"}


class CaseAction(BaseModel):
    """A caseworker's action on a case."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    action: Literal["investigate", "await_applicant", "resume", "close", "archive", "resend"]
    reason: str = Field(min_length=1, max_length=200, description="why (the audit log's)")
    notice: Literal["acceptance", "closure", "archive"] | None = Field(
        default=None, description="resend: which notice")


@dataclass(frozen=True)
class Submitted:
    outcome: Literal["created", "same", "conflict"]
    case: dict[str, Any]


@dataclass(frozen=True)
class Acted:
    outcome: Literal["ok", "not_found", "conflict", "invalid"]
    detail: str = ""
    case: dict[str, Any] | None = None


def _d(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _pauses(case: dict[str, Any]) -> list[Pause]:
    return [Pause(p["kind"], date.fromisoformat(p["start"]),
                  date.fromisoformat(p["end"]) if p.get("end") else None)
            for p in case.get("pauses") or []]


def timers(case: dict[str, Any], today: date, *, soon_days: int = 1) -> dict[str, Any]:
    """Each timer of a case: due date and status (met, stopped, overdue, soon, running,
    breached = met late, or absent when it has not started)."""
    def one(due: str | None, done: str | None, started: bool) -> dict[str, Any] | None:
        if not started:
            return None
        d, finished = _d(due), _d(done)
        if finished is not None and d is not None and finished > d:
            return {"due": due, "status": "breached", "done": done}
        return {"due": due, "status": due_status(d, finished is not None, today,
                                                  soon_days=soon_days), "done": done}
    status = case["status"]
    stopped = status in ("investigating", "awaiting_applicant")
    out = {
        "accept": one(case["accept_due"], case.get("accepted_on") or (
            str(case["received_at"].astimezone(BEIJING).date())
            if status == "refused" else None), True),
        "close": one(None if stopped else case.get("close_due"), case.get("closed_on"),
                     bool(case.get("accepted_on")) and status != "refused"),
        "archive": one(case.get("archive_due"), case.get("archived_on"),
                       bool(case.get("final_on"))),
    }
    return {k: v for k, v in out.items() if v is not None}


def adjudicate(app: dict[str, Any], standards: dict[str, Any], closed_on: date) -> ClosureFile:
    """审核理算 of one case (lines 49-57): the member's own payments on bills issued from the
    diagnosis (and within ``rules.max_days_after_diagnosis`` when agreed), less the
    disease's deductible, times its ratio, up to its cap; shared over the eligible bills."""
    benefit = standards["benefits"][app["accident"]["disease_code"]]
    rules = standards.get("rules") or {}
    diagnosed = date.fromisoformat(app["accident"]["diagnosed_on"])
    window = rules.get("max_days_after_diagnosis")
    eligible: list[bool] = []
    for b in app["bills"]:
        issued = date.fromisoformat(b["issued_on"])
        ok = issued >= diagnosed and (window is None or (issued - diagnosed).days <= int(window))
        eligible.append(ok)
    base = sum((Decimal(b["self_paid"]) for b, ok in zip(app["bills"], eligible, strict=True)
                if ok), Decimal("0"))
    payable = min(Decimal(benefit["cap"]),
                  max(Decimal("0"), base - Decimal(benefit["deductible"]))
                  * Decimal(benefit["ratio"])).quantize(_CENT, rounding=ROUND_HALF_UP)
    lines, left = [], payable
    last = max((i for i, ok in enumerate(eligible) if ok), default=-1)
    for i, (b, ok) in enumerate(zip(app["bills"], eligible, strict=True)):
        share = Decimal("0")
        if ok and base > 0:
            share = left if i == last else (payable * Decimal(b["self_paid"]) / base).quantize(
                _CENT, rounding=ROUND_HALF_UP)
            left -= share
        lines.append(ClosureLine(seq=i + 1, bill_no=b["bill_no"], total=Decimal(b["total"]),
                                 self_paid=Decimal(b["self_paid"]), payable=share))
    refused = payable <= 0
    reason = ("" if not refused else "没有符合给付标准的自付费用" if base > 0 or not any(eligible)
              else "自付费用未超过起付线")
    return ClosureFile(version=LAYOUT_VERSION, case_no=app["case_no"],
                       unit_code=app["unit_code"], closed_on=closed_on, lines=tuple(lines),
                       conclusion="拒付" if refused else "给付", payable=payable,
                       reason_code="NO_PAYABLE" if refused else "", reason=reason)


def _refusal(app: CaseApplication, standards: dict[str, Any] | None) -> str:
    """Why a case is not accepted (不予受理), or ``""``."""
    if missing := app.missing_categories:
        return "materials incomplete: no image of " + ", ".join(missing)
    if standards is None:
        return f"no 申请互助待遇人员清单 of {app.year} from the union yet"
    member = next((m for m in standards["roster"]
                   if m["id_number"] == app.applicant.id_number), None)
    if member is None:
        return f"the applicant is not on the {app.year} 申请互助待遇人员清单"
    if member["unit_code"] != app.unit_code:
        return "the applicant is listed under another unit"
    if app.accident.disease_code not in standards["benefits"]:
        return f"disease {app.accident.disease_code} has no 给付标准"
    return ""


@dataclass
class UnionDesk:
    """The service behind the union door and the admin endpoints."""

    store: UnionStore
    publisher: Publisher
    audit: Audit
    soon_days: int = 1
    now: Any = field(default=now_beijing)
    """Beijing now (tests pass another)."""

    def today(self) -> date:
        return self.now().astimezone(BEIJING).date()  # type: ignore[no-any-return]

    # -- the union's door ------------------------------------------------------------------
    async def put_standards(self, year: int, tables: UnionStandards) -> dict[str, int]:
        await self.store.put_standards(year, tables.model_dump(mode="json"))
        return {"year": year, "members": len(tables.roster), "benefits": len(tables.benefits)}

    async def submit(self, app: CaseApplication) -> Submitted:
        summary = app.summary()
        content_hash = hashlib.sha256(canonical_json(summary).encode()).hexdigest()
        case_id = case_id_for(app.case_no)
        existing = await self.store.get(case_id)
        if existing is not None:
            same = existing["content_hash"] == content_hash
            return Submitted("same" if same else "conflict", masked_case(existing))
        today = self.today()
        refusal = _refusal(app, await self.store.standards(app.year))
        row = {"id": case_id, "case_no": app.case_no, "year": app.year,
               "unit_code": app.unit_code, "unit_name": app.unit_name, "urgent": app.urgent,
               "status": "refused" if refusal else "accepted",
               "applicant_name": app.applicant.name, "applicant_id": app.applicant.id_number,
               "applicant_phone": app.applicant.phone,
               "application": json.dumps(summary, ensure_ascii=False),
               "content_hash": content_hash, "complete_on": app.complete_on.isoformat(),
               "accept_due": add_working_days(app.complete_on, ACCEPT_DAYS).isoformat(),
               "accepted_on": None if refusal else today.isoformat(),
               "close_due": None if refusal else close_due(today, []).isoformat(),  # type: ignore[union-attr]
               "decision": "不予受理" if refusal else "受理", "reason": refusal,
               "payable": "", "result_file": "", "actor": "trade_union"}
        case, created = await self.store.create(row)
        if not created:  # a concurrent submit of the same case won
            same = case["content_hash"] == content_hash
            return Submitted("same" if same else "conflict", masked_case(case))
        for notice in self._acceptance(case):
            await self.publisher.publish(notice_message(notice, case_id=case_id))
        await self.sweep(only=case)
        return Submitted("created", masked_case(case))

    async def final(self, case_no: str, notice: FinalNotice) -> Acted:
        """The union's 终审结案: the archive timer starts (5 working days)."""
        case = await self.store.get(case_id_for(case_no))
        if case is None:
            return Acted("not_found", f"no case {case_no}")
        if case["status"] in ("final", "archived") and case["final_on"] == str(notice.final_on):
            return Acted("ok", "already final", masked_case(case))
        due = add_working_days(notice.final_on, ARCHIVE_DAYS)
        if not await self.store.move(case["id"], expect=("closed",), status="final",
                                     final_on=notice.final_on.isoformat(),
                                     archive_due=due.isoformat()):
            return Acted("conflict", f"case {case_no} is {case['status']}, not closed",
                         masked_case(case))
        return Acted("ok", f"archive due {due}", await self._masked(case["id"]))

    # -- caseworkers -----------------------------------------------------------------------
    async def get(self, case_id: str) -> dict[str, Any] | None:
        case = await self.store.get(case_id)
        return None if case is None else self._view(case, self.today())

    async def overview(self, *, due: str | None = None, status: str | None = None,
                   limit: int = 500) -> dict[str, Any]:
        """Cases (urgent first, then the earliest deadline), each with its timers; ``due``
        ``soon`` or ``overdue`` keeps the cases with such a timer. Sweeps first."""
        await self.sweep()
        today = self.today()
        views = [self._view(c, today) for c in await self.store.find(
            status=status, open_only=due is not None, limit=limit)]
        if due is not None:
            views = [v for v in views if any(t["status"] == due for t in v["timers"].values())]
        return {"today": today.isoformat(), "cases": work_order(views)}

    async def alerts(self) -> list[dict[str, Any]]:
        return await self.store.alerts()

    async def act(self, case_id: str, req: CaseAction, actor: Actor) -> Acted:
        case = await self.store.get(case_id)
        if case is None:
            return Acted("not_found", f"no union case {case_id}")
        result = await self._act(case, req)
        await self.audit.record(actor.user, actor.role, f"union.{req.action}", case["case_no"],
                                {"reason": req.reason, "notice": req.notice,
                                 "detail": result.detail}, result.outcome)
        return result

    async def _act(self, case: dict[str, Any], req: CaseAction) -> Acted:
        today, cid, status = self.today(), case["id"], case["status"]
        if req.action in PAUSE_STATUS:
            pauses = case["pauses"] + [{"kind": req.action, "start": today.isoformat()}]
            ok = await self.store.move(cid, expect=("accepted",), status=PAUSE_STATUS[
                req.action], pauses=pauses, close_due=None, reason=req.reason)
            return await self._done(ok, cid, case, "the closure clock is stopped")
        if req.action == "resume":
            pauses = [p if p.get("end") else {**p, "end": today.isoformat()}
                      for p in case["pauses"]]
            due = close_due(date.fromisoformat(case["accepted_on"]), [
                Pause(p["kind"], date.fromisoformat(p["start"]), date.fromisoformat(p["end"]))
                for p in pauses])
            ok = await self.store.move(cid, expect=tuple(PAUSE_STATUS.values()),
                                       status="accepted", pauses=pauses,
                                       close_due=str(due))
            return await self._done(ok, cid, case, f"closure due {due}")
        if req.action == "close":
            if status != "accepted":
                return Acted("conflict", f"case is {status}; only an accepted case closes",
                             masked_case(case))
            standards = await self.store.standards(int(case["year"]))
            if standards is None:
                return Acted("invalid", f"no tables of {case['year']} from the union")
            result = adjudicate(json.loads(case["application"]), standards, today)
            text = render_closure_file(result)
            ok = await self.store.move(cid, expect=("accepted",), status="closed",
                                       closed_on=today.isoformat(), decision=result.conclusion,
                                       payable=str(result.payable), result_file=text,
                                       reason=result.reason)
            if ok:
                case = await self.store.get(cid) or case
                await self.publisher.publish(notice_message(self._closure(case),
                                                            case_id=cid))
            return await self._done(ok, cid, case,
                                    f"{result.conclusion} {result.payable}")
        if req.action == "archive":
            ok = await self.store.move(cid, expect=("final",), status="archived",
                                       archived_on=today.isoformat())
            if ok:
                case = await self.store.get(cid) or case
                await self.publisher.publish(notice_message(self._archive(case), case_id=cid))
            return await self._done(ok, cid, case, "archive returned")
        return await self._resend(case, req)

    async def _resend(self, case: dict[str, Any], req: CaseAction) -> Acted:
        """补发: the notice again, as a new fact (salted), through the same lane."""
        which = req.notice or "acceptance"
        if which == "acceptance":
            notices = self._acceptance(case)
        elif which == "closure" and case["result_file"]:
            notices = [self._closure(case)]
        elif which == "archive" and case.get("archived_on"):
            notices = [self._archive(case)]
        else:
            return Acted("conflict", f"case is {case['status']}: no {which} notice to resend",
                         masked_case(case))
        salt = f"resend:{uuid.uuid4().hex}"
        for n in notices:
            again = n.model_copy(update={"resend": True})
            await self.publisher.publish(notice_message(again, case_id=case["id"], salt=salt))
        return Acted("ok", f"{which} resent ({len(notices)})", masked_case(case))

    async def _done(self, ok: bool, cid: str, case: dict[str, Any], detail: str) -> Acted:
        if not ok:
            return Acted("conflict", f"case is {case['status']}", masked_case(case))
        await self.sweep(only=await self.store.get(cid))
        return Acted("ok", detail, await self._masked(cid))

    async def _masked(self, cid: str) -> dict[str, Any] | None:
        case = await self.store.get(cid)
        return None if case is None else self._view(case, self.today())

    def _view(self, case: dict[str, Any], today: date) -> dict[str, Any]:
        out = masked_case(case)
        out["timers"] = timers(case, today, soon_days=self.soon_days)
        open_dues = [t["due"] for t in out["timers"].values()
                     if t["status"] in ("running", "soon", "overdue") and t["due"]]
        out["next_due"] = min(open_dues) if open_dues else None
        return out

    # -- notices ---------------------------------------------------------------------------
    def _at(self) -> str:
        return self.now().astimezone(BEIJING).isoformat(timespec="seconds")  # type: ignore[no-any-return]

    def _acceptance(self, case: dict[str, Any]) -> list[Notice]:
        return [Notice(kind="acceptance", case_no=case["case_no"], recipient=to,
                       unit_code=case["unit_code"], decision=case["decision"],
                       reason=case["reason"], at=self._at())
                for to in ("unit", "city_union")]

    def _closure(self, case: dict[str, Any]) -> Notice:
        return Notice(kind="closure", case_no=case["case_no"], recipient="city_union",
                      unit_code=case["unit_code"], decision=case["decision"],
                      reason=case["reason"], at=self._at(),
                      file_name=closure_file_name(case["case_no"],
                                                  date.fromisoformat(case["closed_on"])),
                      file_text=case["result_file"])

    def _archive(self, case: dict[str, Any]) -> Notice:
        return Notice(kind="archive", case_no=case["case_no"], recipient="city_union",
                      unit_code=case["unit_code"], decision="已返还", at=self._at())

    # -- breaches --------------------------------------------------------------------------
    async def sweep(self, only: dict[str, Any] | None = None) -> int:
        """Alert every timer breached (overdue, or met late) not alerted yet; how many."""
        today = self.today()
        cases = [only] if only is not None else await self.store.find(open_only=True,
                                                                       limit=100_000)
        raised = 0
        for case in cases:
            for timer, t in timers(case, today, soon_days=self.soon_days).items():
                if t["status"] not in ("overdue", "breached"):
                    continue
                detail = (f"{timer} due {t['due']}, " + (f"done {t['done']}" if t["done"]
                                                          else f"still open on {today}"))
                if await self.store.alert(case, timer, str(t["due"]), detail):
                    raised += 1
                    log.warning("union case %s: %s timer breached (%s)%s", case["case_no"],
                                timer, detail, " [urgent]" if case["urgent"] else "")
        return raised

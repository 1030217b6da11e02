"""F14 对账 and 单边帐: the service behind the institutions' door and the bureau's desk.

The door (``api.institution_recon``) hands each national request here:

    3201   the institution's totals of a day -> the core's, 平 / 不平; on 不平 the hub takes
           both details (3202 + 9102 at the HIS and the core ledger) and diagnoses to the
           setl_id; the answer's ``stmtinfo`` carries stmt_rslt and the diagnosis
    9101   the institution uploads its detail file -> ``file_qury_no``
    3202   its totals + that ``file_qury_no``: the file must add up to the totals (else
           refused, field and reason); diagnosed against the core's detail; the result file
           (``fileinfo.file_qury_no``) is downloaded with
    9102   any file of the institution by ``file_qury_no``
    H3205  a 移动支付 / 电子处方 settlement notice (from ``mobile_payment``): a transaction row
           at the hub, reported with the day's reconciliation

The bureau reconciles each institution per day (``run_day``: asks each HIS for its
totals), and a caseworker resolves a held 单边帐 (``resolve``: reverse or complete,
audited). Resolutions go on the ``institution.resolve`` lane (``routes.institution_recon``).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

from adapters.institutions.port import InstitutionsPort, LedgerPort
from contracts.clock import now_beijing
from contracts.errors import HubError, ValidationFailed
from contracts.institution_recon import (
    AMOUNT_DIFFERS,
    INFNO_DETAIL,
    INFNO_DOWNLOAD,
    INFNO_TOTALS,
    INFNO_UPLOAD,
    INSTITUTION_PREFIX,
    DayTotals,
    ResolveAction,
    SettlementNotice,
    check_detail,
    decode_file,
    read_detail_file,
    resolve_message,
)
from contracts.national import NationalRequest
from kernel.deps import Publisher
from routes.institution_recon import (
    HOLD_MINUTES,
    ReconResult,
    Trigger,
    b64,
    file_no,
    reconcile_day,
    result_file,
)
from storage.audit import AuditLog
from storage.institution_recon import InstitutionReconStore

__all__ = ["DAILY_CHECK_S", "Answer", "ReconDesk", "institution_codes"]

log = logging.getLogger("hub.institution_recon")

DAILY_CHECK_S: Final = 300.0
"""How often the hub looks whether the daily run is due (``ReconDesk.daily_tick``)."""


def institution_codes(partners: Sequence[str]) -> list[str]:
    """The institutions this hub reconciles: its ``inst_<code>`` partners."""
    return sorted(p.removeprefix(INSTITUTION_PREFIX).upper() for p in partners
                  if p.startswith(INSTITUTION_PREFIX))


@dataclass(frozen=True)
class Answer:
    """A door's answer: HTTP status, ``output`` on success or the refusal's (field, reason)."""

    status: int
    output: dict[str, Any] | None = None
    errors: tuple[tuple[str, str], ...] = ()
    code: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200


def _refused(exc: ValidationFailed) -> Answer:
    return Answer(422, errors=tuple(exc.errors), code="VALIDATION")


@dataclass
class ReconDesk:
    store: InstitutionReconStore
    institutions: InstitutionsPort | None
    core_ledger: LedgerPort | None
    publisher: Publisher
    audit: AuditLog | None = None
    hold_minutes: int = HOLD_MINUTES
    codes: tuple[str, ...] = ()
    """The institutions the daily run reconciles (``institution_codes`` of the settings)."""
    daily_hour: int | None = None
    """Beijing hour from which the daily run reconciles yesterday; None: no daily run."""

    # -- the institutions' door -------------------------------------------------------
    async def from_institution(self, code: str, req: NationalRequest) -> Answer:
        """One national request of institution ``code`` (its signature already checked)."""
        if req.fixmedins_code and req.fixmedins_code != code:
            return Answer(403, errors=(("fixmedins_code", f"{req.fixmedins_code} is not the "
                                        f"institution that signed ({code})"),), code="FORBIDDEN")
        try:
            if req.infno == INFNO_TOTALS:
                return await self._totals(code, req.input)
            if req.infno == INFNO_UPLOAD:
                return await self._upload(code, req.input)
            if req.infno == INFNO_DETAIL:
                return await self._detail(code, req.input)
            if req.infno == INFNO_DOWNLOAD:
                return await self._download(code, req.input)
        except ValidationFailed as exc:
            return _refused(exc)
        return Answer(422, errors=(("infno", f"{req.infno} is not taken here (3201, 3202, "
                                    "9101, 9102)"),), code="VALIDATION")

    def _own(self, code: str, data: object) -> DayTotals:
        totals = DayTotals.parse(data)
        if totals.fixmedins_code != code:
            raise ValidationFailed([("data.fixmedins_code", f"{totals.fixmedins_code} is not "
                                     f"the institution that signed ({code})")])
        return totals

    async def _totals(self, code: str, input: dict[str, Any]) -> Answer:
        totals = self._own(code, input.get("data"))
        try:
            run = await reconcile_day(self._deps(), code, totals.day, trigger="institution",
                                      institution=totals, hold_minutes=self.hold_minutes)
        except HubError as exc:
            return Answer(503, errors=(("core_ledger", exc.public_text),), code="UNAVAILABLE")
        await self._publish(run)
        return Answer(200, {"stmtinfo": await self._stmtinfo(run)})

    async def _upload(self, code: str, input: dict[str, Any]) -> Answer:
        up = input.get("fsUploadIn")
        if not isinstance(up, dict):
            raise ValidationFailed([("input.fsUploadIn", "must be an object")])
        raw = decode_file(up.get("in"))
        read_detail_file(raw)  # refused now, not at 3202, when it is not a detail file
        name = str(up.get("filename") or "detail.zip")[:80]
        no = file_no(f"upload:{code}:{b64(raw)}")
        await self.store.put_file(no, code, "upload", name, b64(raw))
        return Answer(200, {"file_qury_no": no, "filename": name})

    async def _detail(self, code: str, input: dict[str, Any]) -> Answer:
        data = input.get("data")
        totals = self._own(code, data)
        no = str((data or {}).get("file_qury_no") or "")
        got = await self.store.file(no) if no else None
        if got is None or got["fixmedins_code"] != code or got["kind"] != "upload":
            raise ValidationFailed([("data.file_qury_no", f"no uploaded detail file {no!r} "
                                     "of this institution (9101 first)")])
        rows = read_detail_file(base64.b64decode(got["content"]))
        if bad := check_detail(totals, rows):
            raise ValidationFailed(bad)
        try:
            run = await reconcile_day(self._deps(), code, totals.day,
                                      trigger="institution_detail", institution=totals,
                                      institution_rows=rows, hold_minutes=self.hold_minutes)
        except HubError as exc:
            return Answer(503, errors=(("core_ledger", exc.public_text),), code="UNAVAILABLE")
        await self._publish(run)
        name, raw = result_file(run)
        rno = file_no(f"result:{run.run_id}")
        await self.store.put_file(rno, code, "result", name, b64(raw))
        return Answer(200, {"fileinfo": {"file_qury_no": rno, "filename": name},
                            "stmtinfo": await self._stmtinfo(run)})

    async def _download(self, code: str, input: dict[str, Any]) -> Answer:
        down = input.get("fsDownloadIn")
        no = str(down.get("file_qury_no") or "") if isinstance(down, dict) else ""
        got = await self.store.file(no) if no else None
        if got is None or got["fixmedins_code"] != code:
            return Answer(404, errors=(("input.fsDownloadIn.file_qury_no",
                                        f"no file {no!r} of this institution"),),
                          code="NOT_FOUND")
        return Answer(200, {"file": got["content"], "filename": got["filename"]})

    async def notice(self, input: dict[str, Any]) -> Answer:
        """H3205 from the 移动支付 platform: the settlement becomes a row at the hub."""
        try:
            n = SettlementNotice.parse(input.get("data"))
        except ValidationFailed as exc:
            return _refused(exc)
        new = await self.store.add_notice(n.fixmedins_code, n.setl_date.isoformat(),
                                          n.row.wire())
        return Answer(200, {"setl_id": n.row.setl_id, "recorded": new})

    async def _stmtinfo(self, run: ReconResult) -> dict[str, Any]:
        d = run.as_dict()
        notices = {n["setl_id"] for n in await self.store.notices(run.code,
                                                                  run.day.isoformat())}
        for f in d["findings"]:
            f["noticed"] = f["setl_id"] in notices
        return {"setl_optins": "320100", "stmt_rslt": d["stmt_rslt"],
                "stmt_rslt_dscr": "平" if run.balanced else
                f"不平: {len(d['findings'])} 笔交易" + (f" ({run.error})" if run.error else ""),
                **d, "notices": len(notices)}

    # -- the bureau's side --------------------------------------------------------------
    async def run_day(self, day: date, codes: Sequence[str], *,
                      trigger: Trigger = "hub") -> list[dict[str, Any]]:
        """Reconcile each institution of ``codes`` on ``day`` (the hub asks its HIS); an
        institution that cannot be asked is reported with its error, the others go on."""
        out = []
        for code in codes:
            try:
                run = await reconcile_day(self._deps(), code, day, trigger=trigger,
                                          hold_minutes=self.hold_minutes)
            except HubError as exc:
                out.append({"fixmedins_code": code, "stmt_date": day.isoformat(),
                            "result": "failed", "error": f"{exc.public_code}: "
                                                         f"{exc.public_text}"})
                continue
            await self._publish(run)
            out.append(await self._stmtinfo(run))
        return out

    async def daily_tick(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """The scheduled run (the hub's ticker): from ``daily_hour`` (Beijing) on, yesterday
        for every institution without a scheduled run of that day yet. An institution whose
        HIS or the ledger cannot be asked keeps no run, so the next tick asks it again; one
        that answered is not asked twice (a restart or a second tick changes nothing)."""
        at = now or now_beijing()
        if self.daily_hour is None or at.hour < self.daily_hour or not self.codes:
            return []
        day = at.date() - timedelta(days=1)
        todo = [c for c in self.codes
                if not any(r["trigger"] == "scheduled"
                           for r in await self.store.runs(c, day.isoformat()))]
        return await self.run_day(day, todo, trigger="scheduled") if todo else []

    async def resolve(self, cid: str, action: ResolveAction, reason: str,
                      actor: str, role: str) -> tuple[int, dict[str, Any]]:
        """A caseworker's resolution of a held (or failed) case, audited; a second call on a
        case already resolving or resolved changes nothing (200, ``already``). ``correct``
        (the HIS's copy of an ``amount_differs`` settlement overwritten by the core's, the
        ledger being the record of what the fund paid) is the only way such a case ends."""
        case = await self.store.case(cid)
        if case is None:
            return 404, {"refused": [{"field": "case_id", "reason": f"no 单边帐 case {cid}"}]}
        if case["status"] in ("resolving", "resolved"):
            return 200, {"case": case, "already": True}
        if action == "reverse" and case["kind"] != "institution_only":
            return 422, {"refused": [{"field": "action", "reason": "reverse (冲正) is for a "
                                      "settlement only the institution has; this one is "
                                      f"{case['kind']}"}]}
        if action == "complete" and case["kind"] != "core_only":
            return 422, {"refused": [{"field": "action", "reason": "complete (补记) is for a "
                                      "settlement only the core has; this one is "
                                      f"{case['kind']}"}]}
        if (action == "correct") != (case["kind"] == AMOUNT_DIFFERS):
            return 422, {"refused": [{"field": "action", "reason": "correct (更正 to the "
                                      "core's amounts) is the one resolution of an "
                                      f"{AMOUNT_DIFFERS} case; this one is {case['kind']}"}]}
        if not await self.store.move(cid, expect=("held", "failed"), status="resolving",
                                     action=action, actor=actor[:64], reason=reason[:500]):
            return 409, {"refused": [{"field": "case_id", "reason": "the case moved meanwhile"}]}
        if self.audit is not None:
            await self.audit.record(actor, role, f"recon.{_audited(case['kind'])}.{action}", cid,
                                    {"fixmedins_code": case["fixmedins_code"],
                                     "stmt_date": case["stmt_date"],
                                     "setl_id": case["setl_id"], "reason": reason})
        case.update(status="resolving", action=action, actor=actor)
        await self.publisher.publish(resolve_message(case, action))
        return 202, {"case": case, "already": False}

    async def run(self, run_id: str) -> dict[str, Any] | None:
        return await self.store.run(run_id)

    async def cases(self, **kw: Any) -> list[dict[str, Any]]:
        return await self.store.cases(**kw)

    # -- parts ---------------------------------------------------------------------------
    async def _publish(self, run: ReconResult) -> None:
        for msg in run.messages:
            await self.publisher.publish(msg)

    def _deps(self) -> _StepDeps:
        return _StepDeps(self.store, self.institutions, self.core_ledger)


def _audited(kind: str) -> str:
    """The audit action's middle part: ``one_sided`` or ``amount_differs``."""
    return AMOUNT_DIFFERS if kind == AMOUNT_DIFFERS else "one_sided"


@dataclass(frozen=True)
class _StepDeps:
    """``routes.institution_recon.ReconDeps`` from the desk's own parts."""

    institution_recon: InstitutionReconStore | None
    institutions: InstitutionsPort | None
    core_ledger: LedgerPort | None

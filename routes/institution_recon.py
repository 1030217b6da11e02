"""F14 对账 with designated institutions: the reconciliation step and the 单边帐 lane.

``reconcile_day`` is the one reconciliation of an institution and day, shared by the
institutions' door (3201/3202), the bureau's daily run (``services.institution_recon``)
and the re-reconciliation after a resolution: it compares both sides' 3201 totals; on
不平 it takes both details (3202 + 9102 files; the institution's may come with the
request) and diagnoses down to the setl_id (73). Each one-sided settlement becomes a
held 单边帐 case (75, 159); the rule (``contracts.institution_recon.rule_action``)
resolves some at once, which means a message on the lane:

    institution.resolve   recon.resolve.reverse (2208 冲正) / recon.resolve.complete
                          (H3203 补记) at the institution, partner ``institutions``: its
                          retry policy and breaker; the institution drops a repeated
                          serial (``partner_serial``), so resolving twice is one effect.
                          Delivered -> the case is ``resolved`` and the day is reconciled
                          again (its result kept on the case); refused or given up ->
                          the case is ``failed`` (a caseworker again) and the message is
                          in the DLQ.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import uuid
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final, Literal, Protocol

from adapters.institutions.port import InstitutionsPort, LedgerPort
from contracts.envelope import HubMessage
from contracts.errors import ClientError, HubError, PermanentError
from contracts.institution_recon import (
    AMOUNT_DIFFERS,
    GATEWAY,
    RESOLVE_TYPES,
    DayTotals,
    DetailRow,
    Diagnosis,
    case_id,
    case_kind,
    compare_totals,
    diagnose,
    resolve_message,
    rule_action,
)
from contracts.masking import mask_text
from contracts.messages import partner_serial
from contracts.national import now_cst
from kernel.runtime import Outcome, Route
from storage.institution_recon import InstitutionReconStore
from storage.journal import TxnUpdate

__all__ = ["HOLD_MINUTES", "RESOLVE_LANE", "RESOLVE_ROUTE", "ReconDeps", "ReconResult", "b64",
           "file_no", "hold_minutes_of", "reconcile_day", "resolution_failed",
           "resolve_at_institution", "result_file"]

log = logging.getLogger("hub.institution_recon")

RESOLVE_LANE: Final = "institution.resolve"
HOLD_MINUTES: Final = 30
"""An institution-only settlement younger than this waits: core may still be writing it.
The default of the setting ``institution_recon_hold_minutes`` (``hold_minutes_of``)."""

Trigger = Literal["institution", "institution_detail", "hub", "scheduled", "resolution"]


class ReconDeps(Protocol):
    """What the step and the lane need (None parts: a hub without F14)."""

    @property
    def institution_recon(self) -> InstitutionReconStore | None: ...

    @property
    def institutions(self) -> InstitutionsPort | None: ...

    @property
    def core_ledger(self) -> LedgerPort | None: ...


@dataclass
class ReconResult:
    """One reconciliation: 平 (``balanced``) or 不平 with the transactions behind it."""

    run_id: str
    code: str
    day: date
    result: Literal["balanced", "unbalanced"]
    differing: dict[str, list[str]] = field(default_factory=dict)
    diagnosis: Diagnosis | None = None
    error: str = ""
    cases: list[dict[str, Any]] = field(default_factory=list)
    """The 单边帐 cases found, with the rule's action (``rule``) and status."""
    messages: list[HubMessage] = field(default_factory=list)
    """Resolutions the rule started (for the lane)."""

    @property
    def balanced(self) -> bool:
        return self.result == "balanced"

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "fixmedins_code": self.code,
                "stmt_date": self.day.isoformat(), "result": self.result,
                "stmt_rslt": "0" if self.balanced else "1", "differing": self.differing,
                "findings": [f.as_dict() for f in self.diagnosis.findings]
                if self.diagnosis else [], "matched": self.diagnosis.matched
                if self.diagnosis else None, "error": self.error,
                "cases": [{k: c[k] for k in ("id", "setl_id", "kind", "scope", "chnl_type",
                                              "status", "rule")} for c in self.cases]}


def hold_minutes_of(deps: object) -> int:
    """The hub's ``institution_recon_hold_minutes`` (``deps.settings``), else the default:
    the lane's re-reconciliation holds as long as the door's and the bureau's runs."""
    got = getattr(getattr(deps, "settings", None), "institution_recon_hold_minutes", None)
    return got if isinstance(got, int) and not isinstance(got, bool) else HOLD_MINUTES


def _need(deps: ReconDeps) -> tuple[InstitutionReconStore, InstitutionsPort, LedgerPort]:
    if deps.institution_recon is None or deps.institutions is None \
            or deps.core_ledger is None:
        raise ClientError("this hub has no F14 reconciliation (partners.institutions and "
                          "partners.core_ledger)", partner=GATEWAY)
    return deps.institution_recon, deps.institutions, deps.core_ledger


async def reconcile_day(deps: ReconDeps, code: str, day: date, *, trigger: Trigger,
                        institution: DayTotals | None = None,
                        institution_rows: Sequence[DetailRow] | None = None,
                        now: datetime | None = None,
                        hold_minutes: int = HOLD_MINUTES) -> ReconResult:
    """Reconcile ``code`` on ``day``; store the run and the 单边帐 cases it finds.

    ``institution`` / ``institution_rows``: what the institution sent (else they are
    asked of its HIS). Raises ``contracts.errors`` when a side cannot be asked for its
    totals; a detail that cannot be had leaves the run 不平 with the error."""
    store, his, ledger = _need(deps)
    if institution_rows is not None and institution is None:
        raise ValueError("institution_rows come with the institution's totals")
    mine = institution or await his.totals(code, day)
    theirs = await ledger.totals(code, day)
    differing = compare_totals(mine, theirs)
    run = ReconResult(uuid.uuid4().hex, code, day, "unbalanced" if differing else "balanced",
                      differing)
    if differing or institution_rows is not None:
        try:
            rows_i = list(institution_rows) if institution_rows is not None \
                else await his.detail(code, day)
            rows_c = await ledger.detail(code, day)
            run.diagnosis = diagnose(rows_i, rows_c)
        except HubError as exc:
            run.error = f"{exc.public_code}: {exc.public_text}"
        if run.diagnosis is not None and run.diagnosis.findings:
            run.result = "unbalanced"
        if run.diagnosis is not None:
            await _cases(store, run, now or now_cst(), hold_minutes)
    await store.add_run({"id": run.run_id, "fixmedins_code": code,
                         "stmt_date": day.isoformat(), "trigger": trigger,
                         "result": run.result, "differing": differing,
                         "institution": mine.wire(), "core": theirs.wire(),
                         "findings": run.diagnosis.as_dict()["findings"]
                         if run.diagnosis else [], "error": run.error[:2000]})
    log.info("F14 %s %s %s: %s%s", trigger, code, day, run.result,
             f" ({len(run.diagnosis.findings)} transactions)" if run.diagnosis else "")
    return run


async def _cases(store: InstitutionReconStore, run: ReconResult, now: datetime,
                 hold_minutes: int) -> None:
    """Hold each one-sided settlement and each differing amount once (``case_kind``);
    start the rule's resolution where it decides (never for ``amount_differs``: a
    caseworker's). An ``amount_differs`` case keeps the core's row: the one a correction
    writes over the HIS's copy."""
    assert run.diagnosis is not None
    for f in run.diagnosis.findings:
        kind = case_kind(f)
        if kind is None:
            continue
        row = f.core_row if kind == AMOUNT_DIFFERS else f.row
        cid = case_id(run.code, run.day, f.setl_id)
        await store.hold({"id": cid, "fixmedins_code": run.code,
                          "stmt_date": run.day.isoformat(), "setl_id": f.setl_id,
                          "kind": kind, "scope": f.scope, "chnl_type": f.chnl_type,
                          "row": row})
        rule = rule_action(kind, f.scope, row.get("setl_time", ""), now, hold_minutes)
        case = await store.case(cid)
        if case is None:  # pragma: no cover - just held
            continue
        if case["status"] == "held" and case["rule"] != rule:
            await store.move(cid, expect=("held",), rule=rule)
            case["rule"] = rule
        if case["status"] == "held" and rule in ("reverse", "complete") \
                and await store.move(cid, expect=("held",), status="resolving",
                                     action=rule, actor="rule"):
            case.update(status="resolving", action=rule, actor="rule")
            run.messages.append(resolve_message(case, rule))
        run.cases.append(case)


def result_file(run: ReconResult) -> tuple[str, bytes]:
    """The 3202 answer's result file: the diagnosis, one line per transaction (zip of a
    tab-separated txt: setl_id, kind, field=institution/core;...)."""
    lines = []
    for f in run.diagnosis.findings if run.diagnosis else ():
        diff = ";".join(f"{k}={a}/{b}" for k, (a, b) in f.fields.items())
        lines.append(f"{f.setl_id}\t{f.kind}\t{f.scope}\t{f.chnl_type}\t{diff}\n")
    name = f"{run.code}_{run.day:%Y%m%d}_rslt"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{name}.txt", "".join(lines).encode("utf-8"))
    return f"{name}.zip", buf.getvalue()


def file_no(seed: str) -> str:
    """A ``file_qury_no``: 32 hex, from what the file is."""
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _txn(msg: HubMessage, status: str, exc: HubError | None = None) -> TxnUpdate:
    return TxnUpdate(msg.correlation_id, msg.type, str(msg.payload.get("setl_id") or "-"),
                     msg.source, status, exc.public_code if exc else "",
                     exc.public_text if exc else "", attempts=msg.attempt + 1)


async def resolve_at_institution(msg: HubMessage, deps: ReconDeps) -> Outcome:
    """2208 / H3203 at the institution, then the case resolved and its day reconciled again."""
    store, his, _ = _need(deps)
    p = msg.payload
    code, row = str(p["fixmedins_code"]), dict(p["row"])
    if p["action"] == "reverse":
        await his.reverse(code, row, serial=partner_serial(msg))
    else:
        await his.complete(code, row, serial=partner_serial(msg))
    cid = str(p["case_id"])
    await store.move(cid, expect=("resolving", "failed"), status="resolved")
    outputs: list[HubMessage] = []
    outcome: str
    try:
        again = await reconcile_day(deps, code, date.fromisoformat(str(p["stmt_date"])),
                                    trigger="resolution", hold_minutes=hold_minutes_of(deps))
        outcome = again.result
        outputs = again.messages
    except HubError as exc:  # the resolution stands; the next run reconciles the day
        outcome = "failed"
        log.warning("F14 re-reconciliation of %s %s failed: %s", code, p["stmt_date"],
                    mask_text(exc.public_text))
    await store.move(cid, expect=("resolved",), rereconciled=outcome)
    return Outcome(outputs=tuple(outputs), txn=_txn(msg, "delivered"),
                   detail={"case_id": cid, "setl_id": p.get("setl_id"),
                           "action": p.get("action"), "rereconciled": outcome})


async def resolution_failed(msg: HubMessage, exc: HubError, deps: ReconDeps) -> Outcome:
    """Refused or given up: the case goes back to a caseworker (``failed``)."""
    if deps.institution_recon is not None:
        await deps.institution_recon.move(
            str(msg.payload.get("case_id") or ""), expect=("resolving",), status="failed",
            reason=mask_text(f"{exc.public_code}: {exc.public_text}")[:500])
    log.error("F14 单边帐 %s of %s at %s failed: %s", msg.payload.get("action"),
              msg.payload.get("setl_id"), msg.payload.get("fixmedins_code"),
              mask_text(exc.public_text))
    return Outcome(txn=_txn(msg, "rejected" if isinstance(exc, PermanentError) else "dead",
                            exc))


RESOLVE_ROUTE: Final = Route(RESOLVE_LANE, RESOLVE_TYPES, GATEWAY, resolve_at_institution,
                             resolution_failed)

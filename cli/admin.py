"""``hub dlq | resend | batches | jobs | warnings | audit``: a running hub's admin API.

Over HTTP, not on the database: the admin API checks the token's role, masks what it
answers and writes every action to the audit log under the token's user, so the CLI can
neither bypass a rule the console keeps nor act unaudited, and works from any operator's
machine without database credentials (the replaced ``tools.ops_cli`` did the same).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    Api,
    CliFailure,
    common,
    emit,
    progress,
)

__all__ = ["audit", "batches_app", "dlq_app", "jobs_app", "resend_app", "warnings_app"]

dlq_app = typer.Typer(help="Dead letters: list, groups, show, retry, archive (operations).",
                      no_args_is_help=True)
resend_app = typer.Typer(help="补发 to tax from core's current state (caseworker).",
                         no_args_is_help=True)
batches_app = typer.Typer(help="Student batches (大学生批量参保/暂停) and initial loads: "
                          "upload to the hub, follow, or run offline against tax.",
                          no_args_is_help=True)
jobs_app = typer.Typer(help="Durable background jobs: list, show, watch, cancel.",
                       no_args_is_help=True)
warnings_app = typer.Typer(help="F8 高额费用预警 runs: run, status, resend.",
                           no_args_is_help=True)

_REL = re.compile(r"^(\d+)\s*([smhd])$")
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
Reason = Annotated[str, typer.Option("--reason", help="why (kept in the audit log)")]


def when(value: str | None) -> str | None:
    """``30m``/``2h``/``7d`` ago or an ISO time (UTC when no zone), as ISO 8601."""
    if value is None:
        return None
    m = _REL.match(value.strip())
    if m:
        at = datetime.now(UTC) - timedelta(**{_UNIT[m.group(2)]: int(m.group(1))})
    else:
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            raise CliFailure(f"not a time: {value!r} (e.g. 2h, 1d, 2026-11-26T08:00)",
                             EXIT_USAGE) from None
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
    return at.isoformat()


def _ids(value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        ids = [int(p) for p in value.split(",") if p.strip()]
    except ValueError:
        raise CliFailure(f"--ids: not a list of ids: {value!r} (e.g. 1,2,3)",
                         EXIT_USAGE) from None
    if not ids:
        raise CliFailure("--ids: no ids given", EXIT_USAGE)
    return ids


def _short(text: Any, n: int) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= n else s[:n - 1] + "…"


# ------------------------------------------------------------------- dead letters

@dlq_app.command("list", help="Dead letters, newest first (masked).")
@common
def dlq_list(partner: Annotated[str | None, typer.Option()] = None,
             type_: Annotated[str | None, typer.Option("--type")] = None,
             reason: Annotated[str | None, typer.Option(help="reason code, e.g. "
                                                        "UNAVAILABLE")] = None,
             status: Annotated[str | None, typer.Option(help="dead, retried, archived")] = None,
             route: Annotated[str | None, typer.Option()] = None,
             since: Annotated[str | None, typer.Option(help="e.g. 2h, 1d, an ISO time")] = None,
             until: Annotated[str | None, typer.Option()] = None,
             limit: Annotated[int, typer.Option(min=1)] = 50,
             offset: Annotated[int, typer.Option(min=0)] = 0) -> None:
    with Api.hub() as api:
        page = api.call("GET", "/admin/dead-letters", params={
            "partner": partner, "type": type_, "reason_code": reason, "status": status,
            "route": route, "since": when(since), "until": when(until), "limit": limit,
            "offset": offset})

    def lines(p: dict[str, Any]) -> Iterator[str]:
        yield (f"{'id':>6}  {'dead at (UTC)':19}  {'status':8}  {'partner':10}  "
               f"{'type':24}  {'code':14}  {'att':>3}  reason")
        for d in p.get("items", []):
            yield (f"{d['id']:>6}  {str(d.get('dead_at', ''))[:19]:19}  "
                   f"{d.get('status', ''):8}  {_short(d.get('partner', ''), 10):10}  "
                   f"{_short(d.get('type', ''), 24):24}  "
                   f"{_short(d.get('reason_code', ''), 14):14}  {d.get('attempts', 0):>3}  "
                   f"{_short(d.get('reason', ''), 70)}")
        yield f"{len(p.get('items', []))} of {p.get('total')} (offset {p.get('offset')})"

    emit(page, lines)


@dlq_app.command("groups", help="Dead letters counted by reason, partner and type.")
@common
def dlq_groups(status: Annotated[str, typer.Option()] = "dead",
               partner: Annotated[str | None, typer.Option()] = None,
               type_: Annotated[str | None, typer.Option("--type")] = None) -> None:
    with Api.hub() as api:
        groups = api.call("GET", "/admin/dead-letters/groups",
                          params={"status": status, "partner": partner, "type": type_})

    def lines(gs: list[dict[str, Any]]) -> Iterator[str]:
        yield f"{'count':>6}  {'code':14}  {'partner':10}  {'type':24}  last dead at  reason"
        for g in gs:
            yield (f"{g['count']:>6}  {_short(g.get('reason_code', ''), 14):14}  "
                   f"{_short(g.get('partner', ''), 10):10}  {_short(g.get('type', ''), 24):24}"
                   f"  {str(g.get('last_dead_at', ''))[:19]}  {_short(g.get('reason', ''), 70)}")

    emit(groups, lines)


@dlq_app.command("show", help="One dead letter with its headers and history (masked).")
@common
def dlq_show(id_: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    with Api.hub() as api:
        emit(api.call("GET", f"/admin/dead-letters/{id_}"))


def _act(verb: str, ids: str | None, group: str | None, everything: bool, partner: str | None,
         type_: str | None, reason: str, limit: int, rate: float | None) -> None:
    """retry / archive a selection; a group or all is worked through ``limit`` at a time
    with a progress bar. Exit 1 if any item failed."""
    chosen = [x for x in (ids is not None, group is not None, everything) if x]
    if len(chosen) != 1:
        raise CliFailure("choose exactly one of --ids, --group, --all", EXIT_USAGE)
    body: dict[str, Any] = {"reason": reason, "limit": limit}
    if ids is not None:
        body["ids"] = _ids(ids)
    elif group is not None:
        body["group"] = {"reason_code": group, "partner": partner, "type": type_}
    else:
        body["all"] = True
    if rate is not None:
        body["rate_per_s"] = rate
    total = {"done": 0, "skipped": 0, "failed": 0}
    answers: list[Any] = []
    res: dict[str, Any] = {}
    with Api.hub() as api, progress(f"{verb} dead letters", None) as advance:
        while True:
            res = api.call("POST", f"/admin/dead-letters/{verb}", body=body)
            answers.append(res)
            for key in total:
                total[key] += len(res.get(key, []))
            advance(len(res.get("done", [])) + len(res.get("failed", [])))
            for p in res.get("skipped", []) + res.get("failed", []):
                typer.echo(f"  {'failed ' if p in res.get('failed', []) else 'skipped'} "
                           f"{p.get('id')}: {p.get('reason')}", err=True)
            # Skipped rows stay dead and are seen again: go on only while a call gets work done.
            if res.get("remaining", 0) <= 0 or not res.get("done") or "ids" in body:
                break
    done = "retried" if verb == "retry" else "archived"
    emit({"calls": answers, **total, "remaining": res.get("remaining")},
         lambda _: iter([f"{done} {total['done']}, skipped {total['skipped']}, failed "
                         f"{total['failed']}, remaining {res.get('remaining')} "
                         f"(audit #{res.get('audit_id')})"]))
    if total["failed"]:
        raise typer.Exit(EXIT_FAILED)


@dlq_app.command("retry", help="Send dead letters back to their work queue (paced).")
@common
def dlq_retry(reason: Reason,
              ids: Annotated[str | None, typer.Option(help="e.g. 1,2,3")] = None,
              group: Annotated[str | None, typer.Option(metavar="CODE",
                                                        help="every one with this reason "
                                                        "code")] = None,
              all_: Annotated[bool, typer.Option("--all", help="every dead letter (needs "
                                                 "--yes)")] = False,
              yes: Annotated[bool, typer.Option("--yes", help="confirm --all")] = False,
              partner: Annotated[str | None, typer.Option(help="with --group")] = None,
              type_: Annotated[str | None, typer.Option("--type", help="with --group")] = None,
              rate: Annotated[float, typer.Option(min=0.1, help="per second")] = 50.0,
              limit: Annotated[int, typer.Option(min=1, help="per call")] = 1000) -> None:
    if all_ and not yes:
        raise CliFailure("--all sends every dead letter back: add --yes to confirm",
                         EXIT_USAGE)
    _act("retry", ids, group, all_, partner, type_, reason, limit, rate)


@dlq_app.command("archive", help="Archive dead letters (no retry intended).")
@common
def dlq_archive(reason: Reason,
                ids: Annotated[str | None, typer.Option(help="e.g. 1,2,3")] = None,
                group: Annotated[str | None, typer.Option(metavar="CODE")] = None,
                partner: Annotated[str | None, typer.Option(help="with --group")] = None,
                type_: Annotated[str | None, typer.Option("--type", help="with --group")
                                 ] = None,
                limit: Annotated[int, typer.Option(min=1, help="per call")] = 1000) -> None:
    _act("archive", ids, group, False, partner, type_, reason, limit, None)


def audit(actor: Annotated[str | None, typer.Option()] = None,
          action: Annotated[str | None, typer.Option(help="e.g. dead_letter.retry")] = None,
          outcome: Annotated[str | None, typer.Option()] = None,
          since: Annotated[str | None, typer.Option()] = None,
          until: Annotated[str | None, typer.Option()] = None,
          limit: Annotated[int, typer.Option(min=1)] = 50) -> None:
    with Api.hub() as api:
        rows = api.call("GET", "/admin/audit", params={
            "actor": actor, "action": action, "outcome": outcome, "since": when(since),
            "until": when(until), "limit": limit})
    emit(rows, lambda rs: (f"#{e['id']:<6} {str(e.get('at', ''))[:19]}  {e.get('actor')} "
                           f"({e.get('role')})  {e.get('action')}  {e.get('target')}  "
                           f"{e.get('outcome')}" for e in rs))


audit = common(audit)


# ------------------------------------------------------------------------ resend

@resend_app.command("employee", help="职工信息税务补发 of one employee (enroll or stop).")
@common
def resend_employee(id_number: Annotated[str, typer.Option(help="身份证号")],
                    unit: Annotated[str, typer.Option(help="统一社会信用代码")],
                    reason: Reason,
                    action: Annotated[str, typer.Option(help="enroll or stop")] = "enroll",
                    stop_date: Annotated[str | None, typer.Option(help="yyyy-mm-dd, for "
                                                                  "stop")] = None) -> None:
    body = {"id_number": id_number, "unit_credit_code": unit, "action": action,
            "reason": reason, **({"stop_date": stop_date} if stop_date else {})}
    with Api.hub() as api:
        emit(api.call("POST", "/admin/resend/employee", body=body))


@resend_app.command("record", help="单位/灵活/居民信息税务补发 of one record.")
@common
def resend_record(subject: Annotated[str, typer.Option(help="unit, flexible or resident")],
                  key: Annotated[str, typer.Option(help="credit code or ID number")],
                  action: Annotated[str, typer.Option(help="enroll, update, stop, terminate, "
                                                      "all")],
                  reason: Reason,
                  stop_date: Annotated[str | None, typer.Option()] = None) -> None:
    body = {"subject": subject, "key": key, "action": action, "reason": reason,
            **({"stop_date": stop_date} if stop_date else {})}
    with Api.hub() as api:
        emit(api.call("POST", "/admin/resend/record", body=body))


@resend_app.command("bulk", help="Bulk 补发 of the persons whose transactions have a status "
                    "(a job; --watch follows it with a progress bar).")
@common
def resend_bulk(status: Annotated[str, typer.Option(help="transaction status, e.g. dead")],
                action: Annotated[str, typer.Option(help="enroll, update or stop")],
                reason: Reason,
                subject: Annotated[str, typer.Option()] = "employee",
                type_: Annotated[str | None, typer.Option("--type")] = None,
                since: Annotated[str | None, typer.Option()] = None,
                rate: Annotated[float, typer.Option(min=0.1, max=50)] = 5.0,
                limit: Annotated[int, typer.Option(min=1, max=5000)] = 500,
                stop_date: Annotated[str | None, typer.Option()] = None,
                watch: Annotated[bool, typer.Option("--watch")] = False) -> None:
    body: dict[str, Any] = {
        "subject": subject, "action": action, "reason": reason, "rate_per_s": rate,
        "limit": limit, "filter": {"status": status, "type": type_, "since": when(since)}}
    if stop_date:
        body["stop_date"] = stop_date
    with Api.hub() as api:
        job = api.call("POST", "/admin/resend/employee/bulk", body=body)
        emit(job)
        if watch and isinstance(job, dict) and job.get("job_id"):
            _watch(api, f"/admin/resend/jobs/{job['job_id']}", "resend")


@resend_app.command("status", help="Progress of a bulk resend job.")
@common
def resend_status(job_id: str) -> None:
    with Api.hub() as api:
        emit(api.call("GET", f"/admin/resend/jobs/{job_id}"))


# ----------------------------------------------------------------------- batches

@batches_app.command("upload", help="Upload a university's file to the hub: enroll "
                     "(批量参保) or stop (批量暂停); --watch follows the batch.")
@common
def batches_upload(op: Annotated[str, typer.Argument(help="enroll or stop")],
                   file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
                   watch: Annotated[bool, typer.Option("--watch")] = False) -> None:
    if op not in ("enroll", "stop"):
        raise CliFailure("op: enroll or stop", EXIT_USAGE)
    with Api.hub() as api:
        job = api.call("POST", f"/admin/batches/students/{op}",
                       params={"filename": file.name}, content=file.read_bytes(),
                       headers={"Content-Type": "application/octet-stream"})
        emit(job)
        if watch and isinstance(job, dict) and job.get("job_id"):
            _watch(api, f"/admin/batches/{job['job_id']}", "batch")


@batches_app.command("status", help="Progress and counts of a student batch.")
@common
def batches_status(job_id: str,
                   watch: Annotated[bool, typer.Option("--watch")] = False) -> None:
    with Api.hub() as api:
        if watch:
            _watch(api, f"/admin/batches/{job_id}", "batch")
        else:
            emit(api.call("GET", f"/admin/batches/{job_id}"))


def _offline(code: int) -> None:
    """The offline tools' codes are this CLI's: 0 ok, 2 unreadable, 3 chunks never sent."""
    raise typer.Exit(code)


@batches_app.command("offline", help="大学生批量参保/暂停 straight to tax, without a hub "
                     "(tools.student_batch_cli): result files in --out, a progress bar.")
@common
def batches_offline(op: Annotated[str, typer.Argument(help="enroll or stop")],
                    file: Path,
                    tax_url: Annotated[str, typer.Option(help="tax SOAP endpoint")],
                    out: Annotated[Path, typer.Option(help="result directory")],
                    chunk: Annotated[int, typer.Option(min=1)] = 500,
                    concurrency: Annotated[int, typer.Option(min=1)] = 4) -> None:
    from cli.common import options
    from tools.student_batch_cli import main as batch_main

    argv = [op, str(file), "--tax-url", tax_url, "--out", str(out), "--chunk", str(chunk),
            "--concurrency", str(concurrency)]
    _offline(batch_main(argv + (["--no-progress"] if options().no_progress else [])))


@batches_app.command("initial-load", help="统模式 initial load / 职工批量暂停 straight to "
                     "tax (tools.initial_load_cli): resumable, a progress bar.")
@common
def batches_initial_load(kind: Annotated[str, typer.Argument(help="unit, employee, flexible, "
                                                             "resident, employee_suspend")],
                         file: Path,
                         tax_url: Annotated[str, typer.Option(help="tax SOAP endpoint")],
                         out: Annotated[Path, typer.Option(help="result directory")],
                         restart: Annotated[bool, typer.Option("--restart")] = False) -> None:
    from cli.common import options
    from tools.initial_load_cli import main as load_main

    argv = [kind, str(file), "--tax-url", tax_url, "--out", str(out)]
    argv += ["--restart"] if restart else []
    _offline(load_main(argv + (["--no-progress"] if options().no_progress else [])))


# -------------------------------------------------------------------------- jobs

def _watch(api: Api, path: str, label: str, poll_s: float = 1.0) -> dict[str, Any]:
    """Poll a job until it is finished, with a progress bar; exit 1 if it failed."""
    job: dict[str, Any] = {}
    shown = 0
    with progress(label, None) as advance:
        while True:
            job = api.call("GET", path)
            now = int(job.get("done", 0) or 0) + int(job.get("failed", 0) or 0) + \
                int(job.get("skipped", 0) or 0)
            advance(max(0, now - shown))
            shown = max(shown, now)
            state = str(job.get("state", ""))
            if state in ("done", "failed", "cancelled", "finished", "error"):
                break
            time.sleep(poll_s)
    emit(job)
    if job.get("state") in ("failed", "error") or job.get("failed"):
        raise typer.Exit(EXIT_FAILED)
    return job


@jobs_app.command("list", help="Jobs (yours; every job for operations and admin).")
@common
def jobs_list(kind: Annotated[str | None, typer.Option()] = None,
              state: Annotated[str | None, typer.Option(help="queued, running, done, failed, "
                                                        "cancelled")] = None,
              limit: Annotated[int, typer.Option(min=1)] = 50) -> None:
    with Api.hub() as api:
        page = api.call("GET", "/admin/jobs", params={"kind": kind, "state": state,
                                                      "limit": limit})
    items = page.get("items", page) if isinstance(page, dict) else page

    def lines(_: Any) -> Iterator[str]:
        yield f"{'id':36}  {'kind':18}  {'state':9}  {'progress':>12}  started by"
        for j in items or []:
            total = j.get("total")
            moved = (j.get("done") or 0) + (j.get("failed") or 0) + (j.get("skipped") or 0)
            yield (f"{_short(j.get('id', ''), 36):36}  {_short(j.get('kind', ''), 18):18}  "
                   f"{j.get('state', ''):9}  {f'{moved}/{total}' if total else moved!s:>12}  "
                   f"{j.get('started_by', '')}")

    emit(page, lines)


@jobs_app.command("show", help="One job: progress, params, report (masked).")
@common
def jobs_show(job_id: str) -> None:
    with Api.hub() as api:
        emit(api.call("GET", f"/admin/jobs/{job_id}"))


@jobs_app.command("watch", help="Follow a job to its end with a progress bar.")
@common
def jobs_watch(job_id: str) -> None:
    with Api.hub() as api:
        _watch(api, f"/admin/jobs/{job_id}", f"job {job_id[:8]}")


@jobs_app.command("cancel", help="Ask a job to stop (its starter, operations or admin).")
@common
def jobs_cancel(job_id: str) -> None:
    with Api.hub() as api:
        emit(api.call("POST", f"/admin/jobs/{job_id}/cancel"))


# ---------------------------------------------------------------------- warnings

@warnings_app.command("run", help="Run a month's high-expense warnings (YYYYMM).")
@common
def warnings_run(month: str) -> None:
    with Api.hub() as api:
        emit(api.call("POST", "/admin/warnings/runs", body={"month": month}))


@warnings_app.command("status", help="A month's progress and acknowledgements.")
@common
def warnings_status(month: str, detail: Annotated[bool, typer.Option("--detail")] = False,
                    department: Annotated[str | None, typer.Option()] = None) -> None:
    with Api.hub() as api:
        emit(api.call("GET", f"/admin/warnings/runs/{month}",
                      params={"detail": str(detail).lower(), "department": department}))


@warnings_app.command("resend", help="补发 a department's list of a month.")
@common
def warnings_resend(month: str, department: str,
                    only_unacknowledged: Annotated[bool, typer.Option(
                        "--only-unacknowledged")] = False) -> None:
    with Api.hub() as api:
        emit(api.call("POST", f"/admin/warnings/runs/{month}/resend",
                      body={"department": department,
                            "only_unacknowledged": only_unacknowledged}))


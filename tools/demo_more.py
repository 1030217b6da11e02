"""The rest of ``make demo``: the tax catalogue, return files, 比对, a student batch, the
citizen channels and a resend round, each through the running hub and the simulators, each
counted at the partner. What core and tax send is signed with their partner secrets
(``Stack.partner_auth``), as the hub's doors require. Every function returns printable
lines and whether its part came out whole, and adds its flows' counts
(``tools.demo_flows``) to the book it is given."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from adapters.core.translate import INFNO_ARRIVALS
from adapters.tax.soap import OP_ENROLL, build_request, parse_reply
from contracts.channels import CHANNEL_TYPES
from contracts.errors import HubError
from contracts.national import NationalRequest, make_msgid, now_cst
from contracts.resend import RESEND_ACTIONS
from contracts.returnfile import (
    ReturnFileName,
    ReturnFileReader,
    ReturnRecord,
    is_arrival,
    iter_lines,
)
from contracts.taxcat import op as catalogue_op
from contracts.taxcat import ops_of
from jobs.returnfiles import batch_id
from simulators.channels import submit
from simulators.core import SYNC_EFFECT_PREFIX, sync_effect_statuses
from simulators.harness import TERMINAL, Stack
from simulators.tax_ftp import TaxFtpSimulator
from tools.demo_flows import Flow, FlowBook, Outcome, extra_effects, http_outcome, wait_for
from tools.fixtures.generate_catalogue import ROOT as CATALOGUE
from tools.fixtures.generate_channels import ROOT as CHANNEL_FIXTURES

__all__ = ["catalogue_round", "channels_round", "files_round", "resend_round",
           "student_batch_round", "sync_flow"]

SOAP = {"Content-Type": "text/xml; charset=utf-8"}
Part = tuple[list[str], bool]


def _fixture(root: Path, name: str) -> dict[str, Any]:
    return json.loads((root / f"{name}.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


async def _settle(st: Stack, cids: list[str], timeout: float = 60) -> dict[str, int]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    counts: dict[str, int] = {}
    while loop.time() < deadline:
        counts = {}
        for cid in cids:
            txn = await st.hub.deps.journal.transaction(cid)
            status = txn["status"] if txn else "missing"
            counts[status] = counts.get(status, 0) + 1
        if all(k in TERMINAL for k in counts):
            break
        await asyncio.sleep(0.2)
    return counts


async def sync_flow(st: Stack, core_before: Counter[str], tax_before: Counter[str], *,
                    sent: int, refused: int, timeout: float = 10.0) -> Flow:
    """F2 since the snapshots: the sync statuses core recorded (H9201: synced, rejected,
    failed) for the ``sent - refused`` events the hub took, the ``refused`` ones the hub
    answered 4xx at the door, and duplicate effects at tax.

    Waits (up to ``timeout``) until core has a status for every event taken: the hub marks
    a transaction dead before core hears it failed.
    """
    log = st.core_state.log
    await wait_for(lambda: sum(log.since(core_before, SYNC_EFFECT_PREFIX).values())
                   >= sent - refused, timeout)
    statuses = sync_effect_statuses(log.since(core_before, SYNC_EFFECT_PREFIX))
    return Flow(sent=sent, delivered=statuses["synced"], rejected=statuses["rejected"] + refused,
                failed=statuses["failed"],
                duplicates=extra_effects(st.tax_state.log.since(tax_before)))


async def _post(http: httpx.AsyncClient, url: str, **kwargs: Any) -> httpx.Response | None:
    """A POST whose transport failure (timeout, refused connection) is an answer: None."""
    try:
        return await http.post(url, **kwargs)
    except httpx.TransportError:
        return None


def _not_taken(status_code: int | None) -> Outcome:
    """A request the hub did not take: refused (4xx) is rejected, anything else dead."""
    return "rejected" if http_outcome(status_code) == "rejected" else "dead"


async def catalogue_round(st: Stack, http: httpx.AsyncClient, flows: FlowBook) -> Part:
    """F2: every submit of the catalogue as a core event; F3: every push; F4: every query."""
    core0, tax0 = st.core_state.log.snapshot(), st.tax_state.log.snapshot()
    cids, refused, submit_ops = [], 0, ops_of("submit")
    for i, o in enumerate(submit_ops):
        req = NationalRequest(infno=o.core_infno, msgid=make_msgid("NJYBCORE0002", now_cst(), i),
                              input={"data": _fixture(CATALOGUE, o.name)["core"]})
        r = await http.post(f"{st.hub_url}/partners/core/events",
                            json=req.model_dump(mode="json", exclude_none=True),
                            auth=st.partner_auth("core"))
        if r.status_code == 200:
            cids.append(r.json()["output"]["correlation_id"])
        refused += 400 <= r.status_code < 500
    submits = await _settle(st, cids)
    flows.add(2, await sync_flow(st, core0, tax0, sent=len(submit_ops), refused=refused))
    pushed, core1 = 0, st.core_state.log.snapshot()
    push_outcomes: list[Outcome] = []
    taken: list[str] = []  # core's infno of each push tax was told S for
    for i, o in enumerate(o for o in ops_of("push") if o.name != "CompareBatchNotify"):
        body = build_request(o.name, _fixture(CATALOGUE, o.name)["payload"], f"DEMO-P{i}",
                             "TAXSYS")
        answer = await _post(http, f"{st.hub_url}/partners/tax/callback", content=body,
                             headers=SOAP, auth=st.partner_auth("tax"))
        if answer is None:
            push_outcomes.append("dead")
        elif answer.status_code == 200 and parse_reply(answer.content)[0]:
            pushed += 1
            taken.append(o.core_infno)
        else:
            push_outcomes.append("rejected")
    flows.add(3, await _pushes_at_core(st, core1, taken, push_outcomes))
    answered, tax1 = 0, st.tax_state.log.snapshot()
    query_outcomes: list[Outcome] = []
    for o in ops_of("query"):
        answer = await _post(
            http, f"{st.hub_url}/queries/tax/{o.msg_type.removeprefix('tax.query.')}",
            json=_fixture(CATALOGUE, o.name)["payload"], auth=st.partner_auth("core"))
        code = None if answer is None else answer.status_code
        answered += code == 200
        query_outcomes.append(http_outcome(code))
    flows.add(4, Flow.of(query_outcomes, extra_effects(st.tax_state.log.since(tax1))))
    n_push, n_query = len(ops_of("push")) - 1, len(ops_of("query"))
    lines = [f"  tax catalogue F2: {len(cids)} operations sent by core -> "
             + ", ".join(f"{k} {v}" for k, v in sorted(submits.items())),
             f"  tax pushes F3: {pushed}/{n_push} taken (S after broker confirm)",
             f"  queries F4: {answered}/{n_query} answered within the query timeout"]
    return lines, all(k in TERMINAL for k in submits) and pushed == n_push and \
        answered == n_query


async def _pushes_at_core(st: Stack, before: Counter[str], taken: list[str],
                          outcomes: list[Outcome], timeout: float = 10.0) -> Flow:
    """F3: a push tax was told S for is delivered once core took it (an effect under the
    push's infno since ``before``); ``outcomes`` holds those tax was refused already."""
    log = st.core_state.log

    def at_core(infno: str) -> bool:
        return bool(log.since(before, f"{infno}:"))

    await wait_for(lambda: all(at_core(i) for i in taken), timeout)
    window = log.since(before, tuple(f"{i}:" for i in taken)) if taken else Counter[str]()
    return Flow.of([*outcomes, *("delivered" if at_core(i) else "dead" for i in taken)],
                   extra_effects(window))


def _arrivals_in(path: Path) -> int:
    """到账 records in a return file as tax wrote it (-1 when it cannot be read)."""
    try:
        with path.open("rb") as fp:
            return sum(1 for item in ReturnFileReader(iter_lines(fp))
                       if isinstance(item, ReturnRecord) and is_arrival(item))
    except HubError:
        return -1


def _files_at_core(st: Stack, ftp: TaxFtpSimulator, files: Sequence[ReturnFileName],
                   status: dict[str, str], before: Counter[str]) -> Flow:
    """F5, one outcome per file tax dropped: delivered when core holds all its 到账 records
    (the hub's batches of a file are named by its content, ``rf-<sha256>-<n>``), rejected
    when the hub refused the file, else dead. A file fetched twice whose content is at
    core once is delivered; duplicates are 到账 batches core took twice, and contents
    core holds more records of than the file has."""
    outcomes: list[Outcome] = []
    duplicates, seen = 0, set()
    for name in files:
        path = ftp.local_path(name)
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        expected = _arrivals_in(path)
        held = st.store.arrivals_of(batch_id(sha, 0).rpartition("-")[0] + "-")
        if expected > 0 and held >= expected:
            outcomes.append("delivered")
        elif expected == 0 and status.get(name.name) in ("delivered", "duplicate"):
            outcomes.append("delivered")  # no 到账 in it: nothing for core to hold
        elif status.get(name.name) == "rejected":
            outcomes.append("rejected")
        else:
            outcomes.append("dead")
        if sha not in seen and expected >= 0 and held > expected:
            duplicates += 1
        seen.add(sha)
    duplicates += extra_effects(st.core_state.log.since(before, f"{INFNO_ARRIVALS}:"))
    return Flow.of(outcomes, duplicates)


async def files_round(st: Stack, http: httpx.AsyncClient, ftp: TaxFtpSimulator,
                      flows: FlowBook) -> Part:
    """F5 return files over FTP (one fetched twice), and a 比对 batch turned into a report
    (an F3 push: delivered when its report is written)."""
    service = st.hub.returnfiles
    assert service is not None
    names = [ftp.drop_file(kind, 2000, batch_no=f"{i + 1:04d}", seed=i)
             for i, kind in enumerate(("unit_pay", "employee_pay", "resident_pay"))]
    names.append(ftp.duplicate(names[0], "0009"))
    core0 = st.core_state.log.snapshot()
    reports = [r for _ in range(3) for r in await service.poll_once()]
    delivered = sum(r.status == "delivered" for r in reports)
    duplicates = sum(r.status == "duplicate" for r in reports)
    flows.add(5, _files_at_core(st, ftp, names, {r.name: r.status for r in reports}, core0))
    arrivals = sum(st.store.arrivals.values())
    people = list(st.store.persons.values())
    rows = [{"uscc": p.unit_credit_code, "cert_type": "01", "id_number": p.id_number,
             "name": p.name, "insutype": p.insutype, "insured_status": "1",
             "start_month": p.start_month, "pay_base": p.wage} for p in people[5:60]]
    for row in rows[:3]:
        row["pay_base"] = int(str(row["pay_base"])) + 1000
    path = ftp.root / "outbound" / "compare" / "BDDEMO01.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8-sig") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    body = build_request("CompareBatchNotify", {
        "batch_id": "BDDEMO01", "compare_kind": "2", "record_count": len(rows),
        "file_path": "/outbound/compare/BDDEMO01.csv"}, "DEMO-CMP", "TAXSYS")
    r = await _post(http, f"{st.hub_url}/partners/tax/callback", content=body, headers=SOAP,
                    auth=st.partner_auth("tax"))
    report = Path(".run/reports/compare/BDDEMO01.csv")
    for _ in range(100):
        if report.exists():
            break
        await asyncio.sleep(0.1)
    diffs = max(0, len(report.read_text(encoding="utf-8-sig").splitlines()) - 1) \
        if report.exists() else -1
    taken = r is not None and r.status_code == 200 and parse_reply(r.content)[0]
    flows.add(3, Flow.of(["dead" if r is None else "rejected" if not taken
                          else "delivered" if report.exists() else "dead"]))
    lines = [f"  return files F5: {delivered} delivered, {duplicates} fetched twice and "
             f"skipped; {arrivals} 到账 records handed to core in batches",
             f"  比对 (employee): {len(rows)} rows from tax vs {len(people)} in core -> "
             f"{diffs} differences in {report} (+ .xlsx)"]
    return lines, delivered == 3 and duplicates == 1 and diffs > 0


async def student_batch_round(st: Stack, http: httpx.AsyncClient) -> Part:
    from bench.student_batch import make_students_xlsx

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "students.xlsx"
        make_students_xlsx(source, 1000, difficulty=30, unknown_community=10)
        auth = {"Authorization": "Bearer dev-caseworker"}
        r = await http.post(f"{st.hub_url}/admin/batches/students/enroll", headers=auth,
                            params={"filename": "students.xlsx"}, content=source.read_bytes())
        job_id = r.json()["job_id"]
        job: dict[str, Any] = {}
        for _ in range(300):
            job = (await http.get(f"{st.hub_url}/admin/batches/{job_id}", headers=auth)).json()
            if job["state"] != "running":
                break
            await asyncio.sleep(0.1)
    c = job.get("counts") or {}
    lines = [f"  大学生批量参保: {c.get('rows')} rows -> success {c.get('success')}, "
             f"failure {c.get('failure')}, 困难人员 {c.get('difficulty')}, invalid "
             f"{c.get('invalid')} (reports: {', '.join(job.get('files', []))})"]
    return lines, job.get("state") == "finished"


async def channels_round(st: Stack, http: httpx.AsyncClient, flows: FlowBook) -> Part:
    """F1: every application type from every channel that may send it, plus refused ones."""
    sent: list[tuple[str, str]] = []
    answers: list[tuple[int, str | None]] = []  # every submission: HTTP status, application
    chan0 = st.channel_state.log.snapshot()

    def note(r: httpx.Response) -> httpx.Response:
        answers.append((r.status_code, r.json()["application_id"] if r.status_code == 202
                        else None))
        return r

    for channel, types in CHANNEL_TYPES.items():
        cfg = st.settings.channels[channel]
        for app_type in types:
            body = _fixture(CHANNEL_FIXTURES, app_type)
            r = note(await submit(http, st.hub_url, channel, cfg, app_type,
                                  f"demo-{channel}-{app_type}", body["payload"]))
            if r.status_code == 202:
                sent.append((channel, r.json()["application_id"]))
    refused = 0
    bad = _fixture(CHANNEL_FIXTURES, "resident_enroll")["payload"]
    cfg = st.settings.channels["my_nanjing"]
    for change in ({"id_number": bad["id_number"][:-1] + "0"}, {"phone": "123"},
                   {"community": "110101001001"}):
        r = note(await submit(http, st.hub_url, "my_nanjing", cfg, "resident_enroll",
                              f"demo-bad-{refused}", bad | change))
        refused += 400 <= r.status_code < 500
    r = note(await submit(http, st.hub_url, "hrss", st.settings.channels["hrss"],
                          "newborn_enroll", "demo-wrong-channel",
                          _fixture(CHANNEL_FIXTURES, "newborn_enroll")["payload"]))
    refused += r.status_code == 403
    reviewed = 0
    for _ in range(300):
        # core's caseworkers approve 在职转退休 and 单位信息维护 (they wait for core's review)
        reviewed += await st.review_pending(http)
        if all(a in st.inbox.results for _, a in sent):
            break
        await asyncio.sleep(0.1)
    statuses: dict[str, int] = {}
    for _, app_id in sent:
        s = st.inbox.results.get(app_id, {}).get("status", "no callback")
        statuses[s] = statuses.get(s, 0) + 1
    told: dict[str | None, Outcome] = {"completed": "delivered", "rejected": "rejected"}
    flows.add(1, Flow.of(  # not taken (no application id): refused with a 4xx, or dead
        [_not_taken(code) if app_id is None else told.get(st.inbox.status_of(app_id), "dead")
         for code, app_id in answers],
        extra_effects(st.channel_state.log.since(chan0))))
    lines = [f"  channels F1: {len(sent)} applications (18 types, 4 channels) -> callbacks "
             + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
             + f"; {refused}/4 bad submissions refused with 4xx naming the field; "
             f"{reviewed} waited for core's review (在职转退休, 单位信息维护) before tax"]
    return lines, "no callback" not in statuses and refused == 4


async def resend_round(st: Stack, http: httpx.AsyncClient, flows: FlowBook,
                       employees: int = 3) -> Part:
    """F6: a caseworker resends (补发) from core's current state, once tax is back up for the
    people it was down for: the employees whose sync failed or was refused for want of a
    unit at tax (then ones already synced, up to ``employees``), and their unit's basic
    information. Each is counted at tax (an effect under its operation and business key)
    and by what core was told (its sync status for the resend's transaction)."""
    st.tax_state.faults[:] = [f for f in st.tax_state.faults if not f.match]
    status = st.store.sync_status

    def rank(key: str) -> int:
        s = status.get(key, {})
        return {"failed": 0, "rejected": 1 if s.get("reason_code") == "TX102" else 9,
                "synced": 2}.get(str(s.get("status")), 9)

    picked = sorted((k for k in st.store.persons if rank(k) < 9), key=rank)[:employees]
    uscc = st.store.persons[picked[0]].unit_credit_code if picked else next(iter(st.store.units))
    unit_op = RESEND_ACTIONS[("unit", "update")]
    asks: list[tuple[str, dict[str, Any], str]] = [  # path, body, tax's effect key
        ("employee", {"id_number": e.id_number, "unit_credit_code": e.unit_credit_code,
                      "action": "enroll", "reason": "税务同步失败，按核心当前状态补发"},
         f"{OP_ENROLL}:{catalogue_op(OP_ENROLL).business_key(e.model_dump())}")
        for e in (st.store.persons[k] for k in picked)]
    asks.append(("record", {"subject": "unit", "key": uscc, "action": "update",
                            "reason": "单位基本信息税务补发"},
                 f"{unit_op}:{catalogue_op(unit_op).business_key({'unit_credit_code': uscc})}"))
    tax0 = st.tax_state.log.snapshot()
    auth = {"Authorization": "Bearer dev-caseworker"}
    answered: list[tuple[int | None, str | None, str]] = []  # HTTP status, transaction, key
    for path, body, tax_key in asks:
        r = await _post(http, f"{st.hub_url}/admin/resend/{path}", json=body, headers=auth)
        cid = r.json()["correlation_id"] if r is not None and r.status_code == 202 else None
        answered.append((None if r is None else r.status_code, cid, tax_key))
    cids = [cid for _, cid, _ in answered if cid]
    settled = await _settle(st, cids)
    await wait_for(lambda: all(st.store.sync_status_of(c) for c in cids), 10)
    at_tax = st.tax_state.log.since(tax0)
    outcomes: list[Outcome] = []
    for code, cid, tax_key in answered:
        told = st.store.sync_status_of(cid) if cid else None
        if cid is None:
            outcomes.append(_not_taken(code))
        elif told == "synced" and at_tax.get(tax_key, 0) > 0:
            outcomes.append("delivered")
        else:
            outcomes.append("rejected" if told == "rejected" else "dead")
    keys = {k for _, _, k in answered}
    flows.add(6, Flow.of(outcomes, extra_effects({k: n for k, n in at_tax.items() if k in keys})))
    return [], all(k in TERMINAL for k in settled)

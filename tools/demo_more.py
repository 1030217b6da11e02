"""The rest of ``make demo``: the tax catalogue, return files, 比对, a student batch and the
citizen channels, each through the running hub and the simulators, each counted at the
partner. Every function returns printable lines and whether its part came out whole."""

from __future__ import annotations

import asyncio
import csv
import json
import tempfile
from pathlib import Path
from typing import Any

import httpx

from adapters.tax.soap import build_request, parse_reply
from contracts.channels import CHANNEL_TYPES
from contracts.national import NationalRequest, make_msgid, now_cst
from contracts.taxcat import ops_of
from simulators.channels import submit
from simulators.harness import TERMINAL, Stack
from simulators.tax_ftp import TaxFtpSimulator
from tools.fixtures.generate_catalogue import ROOT as CATALOGUE
from tools.fixtures.generate_channels import ROOT as CHANNEL_FIXTURES

__all__ = ["catalogue_round", "channels_round", "files_round", "student_batch_round"]

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


async def catalogue_round(st: Stack, http: httpx.AsyncClient) -> Part:
    """F2: every submit of the catalogue as a core event; F3: every push; F4: every query."""
    cids = []
    for i, o in enumerate(ops_of("submit")):
        req = NationalRequest(infno=o.core_infno, msgid=make_msgid("NJYBCORE0002", now_cst(), i),
                              input={"data": _fixture(CATALOGUE, o.name)["core"]})
        r = await http.post(f"{st.hub_url}/partners/core/events",
                            json=req.model_dump(mode="json", exclude_none=True))
        cids.append(r.json()["output"]["correlation_id"])
    submits = await _settle(st, cids)
    pushed = 0
    for i, o in enumerate(o for o in ops_of("push") if o.name != "CompareBatchNotify"):
        body = build_request(o.name, _fixture(CATALOGUE, o.name)["payload"], f"DEMO-P{i}",
                             "TAXSYS")
        r = await http.post(f"{st.hub_url}/partners/tax/callback", content=body, headers=SOAP)
        pushed += r.status_code == 200 and parse_reply(r.content)[0]
    answered = 0
    for o in ops_of("query"):
        r = await http.post(f"{st.hub_url}/queries/tax/{o.msg_type.removeprefix('tax.query.')}",
                            json=_fixture(CATALOGUE, o.name)["payload"])
        answered += r.status_code == 200
    n_push, n_query = len(ops_of("push")) - 1, len(ops_of("query"))
    lines = [f"  tax catalogue F2: {len(cids)} operations sent by core -> "
             + ", ".join(f"{k} {v}" for k, v in sorted(submits.items())),
             f"  tax pushes F3: {pushed}/{n_push} taken (S after broker confirm)",
             f"  queries F4: {answered}/{n_query} answered within the query timeout"]
    return lines, all(k in TERMINAL for k in submits) and pushed == n_push and \
        answered == n_query


async def files_round(st: Stack, http: httpx.AsyncClient, ftp: TaxFtpSimulator) -> Part:
    """F5 return files over FTP (one fetched twice), and a 比对 batch turned into a report."""
    service = st.hub.returnfiles
    assert service is not None
    names = [ftp.drop_file(kind, 2000, batch_no=f"{i + 1:04d}", seed=i)
             for i, kind in enumerate(("unit_pay", "employee_pay", "resident_pay"))]
    ftp.duplicate(names[0], "0009")
    reports = [r for _ in range(3) for r in await service.poll_once()]
    delivered = sum(r.status == "delivered" for r in reports)
    duplicates = sum(r.status == "duplicate" for r in reports)
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
    await http.post(f"{st.hub_url}/partners/tax/callback", content=body, headers=SOAP)
    report = Path(".run/reports/compare/BDDEMO01.csv")
    for _ in range(100):
        if report.exists():
            break
        await asyncio.sleep(0.1)
    diffs = max(0, len(report.read_text(encoding="utf-8-sig").splitlines()) - 1) \
        if report.exists() else -1
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


async def channels_round(st: Stack, http: httpx.AsyncClient) -> Part:
    """F1: every application type from every channel that may send it, plus refused ones."""
    sent: list[tuple[str, str]] = []
    for channel, types in CHANNEL_TYPES.items():
        cfg = st.settings.channels[channel]
        for app_type in types:
            body = _fixture(CHANNEL_FIXTURES, app_type)
            r = await submit(http, st.hub_url, channel, cfg, app_type,
                             f"demo-{channel}-{app_type}", body["payload"])
            if r.status_code == 202:
                sent.append((channel, r.json()["application_id"]))
    refused = 0
    bad = _fixture(CHANNEL_FIXTURES, "resident_enroll")["payload"]
    cfg = st.settings.channels["my_nanjing"]
    for change in ({"id_number": bad["id_number"][:-1] + "0"}, {"phone": "123"},
                   {"community": "110101001001"}):
        r = await submit(http, st.hub_url, "my_nanjing", cfg, "resident_enroll",
                         f"demo-bad-{refused}", bad | change)
        refused += 400 <= r.status_code < 500
    r = await submit(http, st.hub_url, "hrss", st.settings.channels["hrss"], "newborn_enroll",
                     "demo-wrong-channel", _fixture(CHANNEL_FIXTURES, "newborn_enroll")[
                         "payload"])
    refused += r.status_code == 403
    for _ in range(300):
        if all(a in st.inbox.results for _, a in sent):
            break
        await asyncio.sleep(0.1)
    statuses: dict[str, int] = {}
    for _, app_id in sent:
        s = st.inbox.results.get(app_id, {}).get("status", "no callback")
        statuses[s] = statuses.get(s, 0) + 1
    lines = [f"  channels F1: {len(sent)} applications (18 types, 4 channels) -> callbacks "
             + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
             + f"; {refused}/4 bad submissions refused with 4xx naming the field"]
    return lines, "no callback" not in statuses and refused == 4

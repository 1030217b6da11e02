"""F5 through the hub: tax's FTP (pyftpdlib over a socket) -> the hub's service -> core's
到账 batches at the core simulator (H3101), each batch once even when fetched twice."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from pydantic import SecretStr

from config.settings import load_settings
from contracts.returnfile import synthetic_records
from simulators.core import CoreStore
from simulators.harness import fast_policies, running_stack
from simulators.simkit import Fault
from simulators.tax_ftp import TaxFtpSimulator

pytestmark = pytest.mark.integration


async def test_return_files_reach_core_as_arrival_batches_once(tmp_path: Path) -> None:
    with TaxFtpSimulator(tmp_path / "ftp") as ftp:
        s = load_settings()
        rf = s.returnfiles.model_copy(update={
            "port": ftp.port, "enabled": False, "password": SecretStr(ftp.password),
            "batch_size": 100,
            "spool_dir": str(tmp_path / "spool")})
        store = CoreStore.seed(1, 2, rng_seed=random.randrange(10**9))
        async with running_stack(s, store=store, overrides=fast_policies(s) | {
                "returnfiles": rf}) as st:
            st.core_state.faults[:] = [Fault(kind="http_5xx", count=2, operation="H3101")]
            name = ftp.drop_file("employee_pay", 450, seed=7)
            service = st.hub.returnfiles
            assert service is not None
            polls = []
            for _ in range(5):  # core fails twice: delivery pauses, the next poll resumes
                polls.append(await service.poll_once())
                if any(r.status == "delivered" for r in polls[-1]):
                    break
            assert [r.status for r in polls[0]] == ["stored"]
            assert len(polls) == 3, polls
            arrivals = sum(1 for r in synthetic_records("employee_pay", 450, seed=7)
                           if r.result == "1")
            assert sum(store.arrivals.values()) == arrivals
            assert st.core_state.log.summary()["duplicates"] == {}
            ftp.duplicate(name, "0002")            # tax sends the same bytes again
            assert {r.status for r in await service.poll_once()} <= {"duplicate"}
            assert sum(store.arrivals.values()) == arrivals


async def test_a_compare_batch_pushed_by_tax_becomes_a_difference_report(
        tmp_path: Path) -> None:
    """比对: tax pushes CompareBatchNotify naming a file on its FTP; the hub fetches it,
    compares it with core's employees and writes the report (CSV and XLSX)."""
    import asyncio
    import csv

    import httpx
    import openpyxl

    from adapters.tax.soap import build_request, parse_reply
    from contracts.ids import make_credit_code, make_id_number
    from routes.compare import REPORTS_DIR

    with TaxFtpSimulator(tmp_path / "ftp") as ftp:
        s = load_settings()
        rf = s.returnfiles.model_copy(update={
            "port": ftp.port, "enabled": False, "password": SecretStr(ftp.password),
            "spool_dir": str(tmp_path / "spool")})
        store = CoreStore.seed(2, 6, rng_seed=random.randrange(10**9))
        people = list(store.persons.values())
        rows = [{"uscc": p.unit_credit_code, "cert_type": "01", "id_number": p.id_number,
                 "name": p.name, "insutype": p.insutype, "insured_status": "1",
                 "start_month": p.start_month, "pay_base": p.wage} for p in people[1:]]
        rows[0]["pay_base"] = int(str(rows[0]["pay_base"])) + 100   # a field mismatch
        rng = random.Random(5)
        rows.append(rows[1] | {"uscc": make_credit_code(rng),         # only at tax
                               "id_number": make_id_number(rng)})
        batch_id = f"BD{random.randrange(10**8)}"
        path = tmp_path / "ftp" / "outbound" / "compare" / f"{batch_id}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8-sig") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        async with running_stack(s, store=store, overrides=fast_policies(s) | {
                "returnfiles": rf}) as st, httpx.AsyncClient(timeout=10) as http:
            body = build_request("CompareBatchNotify", {
                "batch_id": batch_id, "compare_kind": "2", "record_count": len(rows),
                "file_path": f"/outbound/compare/{batch_id}.csv"}, "CMP-1", "TAXSYS")
            r = await http.post(f"{st.hub_url}/partners/tax/callback", content=body,
                                headers={"Content-Type": "text/xml; charset=utf-8"},
                                auth=st.partner_auth("tax"))
            assert r.status_code == 200 and parse_reply(r.content)[0], r.text
            report = REPORTS_DIR / f"{batch_id}.xlsx"
            for _ in range(200):
                if report.exists():
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            kinds = [row[2] for row in csv.reader(
                (REPORTS_DIR / f"{batch_id}.csv").open(encoding="utf-8-sig"))][1:]
            assert sorted(kinds) == sorted(["字段不一致", "税务有、核心无", "核心有、税务无"])
            # tax's file stays in the spool; core's extract (the city's personal data) does not
            assert (tmp_path / "spool" / "compare" / f"{batch_id}.csv").exists()
            assert not list((tmp_path / "spool").rglob("*.core.jsonl"))
            auth = {"Authorization": "Bearer dev-caseworker"}  # full IDs: caseworker/admin
            r = await http.get(f"{st.hub_url}/admin/reports/compare/{batch_id}.csv",
                               headers=auth)
            assert r.status_code == 200 and "缴费基数" in r.content.decode("utf-8-sig")
            r = await http.get(f"{st.hub_url}/admin/reports/compare/{batch_id}.csv",
                               headers={"Authorization": "Bearer dev-readonly"})
            assert r.status_code == 403
            r = await http.get(f"{st.hub_url}/admin/reports/compare/..%2Fx.csv", headers=auth)
            assert r.status_code == 404
            wb = openpyxl.load_workbook(report, read_only=True)
            try:
                assert len(wb.sheetnames) >= 2
            finally:
                wb.close()

"""F7 status back by file (1532) through the real hub: a department's GBK file imported by a
caseworker gets a GBK status file back (its columns + 同步情况, 原因) once every row is
settled, written to the department's drop folder and counted at the departments
simulator; an XLSX comes back as XLSX; the door is a caseworker's and says what waits."""

from __future__ import annotations

import asyncio
import io
import random
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest

from config.settings import DifficultyFileSettings, load_settings
from contracts.difficulty import COLUMNS
from simulators.core import CoreStore
from simulators.departments import make_records, read_status_file
from simulators.harness import fast_policies, running_stack
from tools.demo_difficulty import FIRST, gbk_csv, review_all

pytestmark = pytest.mark.integration

MONTH = "2026-11"


async def _status_file(http: httpx.AsyncClient, url: str) -> httpx.Response:
    r = httpx.Response(0)
    for _ in range(120):  # core answers the 进入 on its lane
        r = await http.get(url, headers=FIRST)
        if r.status_code != 409:
            return r
        await asyncio.sleep(0.25)
    return r


async def test_a_file_list_gets_its_status_file_back_when_settled(tmp_path: Path) -> None:
    s = load_settings()
    drop = tmp_path / "drop" / "veterans"
    files = DifficultyFileSettings(dir=str(tmp_path / "kept"), drops={"veterans": str(drop)})
    store = CoreStore.seed(2, 4, rng_seed=random.randrange(10**9))
    overrides: dict[str, Any] = fast_policies(s, max_attempts=3) | {"difficulty_files": files}
    async with running_stack(s, store=store, overrides=overrides) as st, \
            httpx.AsyncClient(timeout=15) as http:
        sims = st.difficulty
        assert sims is not None
        rows = make_records(random.Random(21), "veterans", 3, month=MONTH, bad=1)
        r = await http.post(f"{st.hub_url}/admin/difficulty/files/veterans", headers=FIRST,
                            params={"month": MONTH, "filename": "veterans-11.csv"},
                            content=gbk_csv(rows))
        assert r.status_code == 200, r.text
        receipt = r.json()
        url = st.hub_url + receipt["status_file"]
        assert receipt["kept"] == 3 and receipt["refused_rows"] == 1
        # before review: 409 naming what waits; partial: the rows in review say 处理中
        r = await http.get(url, headers=FIRST)
        assert r.status_code == 409 and r.json()["pending"] == 3 and r.json()["refused"] == 1
        r = await http.get(url, headers=FIRST, params={"partial": "true"})
        assert r.status_code == 200 and r.content.decode("gbk").count("处理中") == 3
        assert not drop.exists()  # not produced before every row is settled
        r = await http.get(url)
        assert r.status_code == 401
        r = await http.get(f"{st.hub_url}/admin/difficulty/lists/{'0' * 32}/status-file",
                           headers=FIRST)
        assert r.status_code == 404
        assert await review_all(st, http) == (3, 3)
        r = await _status_file(http, url)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "text/csv; charset=gbk"
        assert r.headers["x-status-counts"] == "rows=4,synced=3,refused=1,pending=0"
        assert "filename*=UTF-8''veterans-11_" in r.headers["content-disposition"]
        text = r.content.decode("gbk")
        assert text.splitlines()[0] == ",".join([*COLUMNS, "同步情况", "原因"])
        assert rows[0]["id_number"] in text  # the department's own data, unmasked
        got = read_status_file("x.csv", r.content)
        assert [x["同步情况"] for x in got] == ["已同步", "已同步", "已同步", "未通过"]
        assert got[3]["原因"].startswith("校验: 身份类别")
        # produced once: the drop folder holds it, and the department takes each row once
        [dropped] = list(drop.iterdir())
        assert dropped.read_bytes() == r.content
        assert sims.inbox.collect_files("veterans", drop, sims.dept_state) == 4
        assert sims.inbox.collect_files("veterans", drop, sims.dept_state) == 0
        assert sum(sims.dept_state.log.since({}, "file:veterans:").values()) == 4
        # the same rows also went back by callback (the department has an endpoint)
        assert sims.inbox.count("synced") == 3
        # an XLSX comes back as an XLSX
        wb = openpyxl.Workbook()
        ws = wb.active
        assert ws is not None
        ws.append(list(COLUMNS))
        for rec in make_records(random.Random(22), "veterans", 1, month=MONTH, bad=1):
            ws.append([rec.get(f, "") for f in COLUMNS.values()])
        buf = io.BytesIO()
        wb.save(buf)
        r = await http.post(f"{st.hub_url}/admin/difficulty/files/veterans", headers=FIRST,
                            params={"month": MONTH, "filename": "v.xlsx"},
                            content=buf.getvalue())
        assert r.status_code == 200, r.text
        r = await http.get(st.hub_url + r.json()["status_file"], headers=FIRST,
                           params={"partial": "true"})
        assert r.status_code == 200 and r.headers["content-type"].startswith(
            "application/vnd.openxmlformats")
        sheet = openpyxl.load_workbook(io.BytesIO(r.content)).worksheets[0]
        assert list(next(sheet.iter_rows(values_only=True)))[-2:] == ["同步情况", "原因"]

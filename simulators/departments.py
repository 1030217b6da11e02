"""The four departments of F7 (民政局, 总工会, 退役军人事务局, 农业农村局): they send their
monthly 增加/减少 lists to the hub, signed, and receive each record's
救助待遇标识同步情况 (1532) on ``POST /departments/{dept}/status``.

The status endpoint verifies the hub's signature (``X-Partner: hub``, the department's
secret), drops a repeated ``X-Hub-Serial`` as a replay, and counts each status it
takes in its ``EffectLog`` (key ``status:<dept>:<record_id>:<status>``, a 补发's with
``:resend:<resend_id>`` after it: a deliberate resend is a new effect). Fault switches
(``/_sim/faults``, ``simkit``): ``http_5xx``, ``timeout``/``slow`` (``delay_s``),
``http_4xx``, matched on ``<dept>:<record_id>``.

``GET /departments/{dept}/status`` shows what a department took (``make simulate``).

A department that sent its list as a file gets a status file back (1532,
``services.difficulty_files``): ``read_status_file`` reads one (CSV in GBK or UTF-8, or
XLSX) by its columns, and ``DepartmentInbox.collect_files`` picks up the files of the
department's drop folder, each row one effect (key ``file:<dept>:<file>:<row>``).

``make_records`` builds a month's list for a department (synthetic, checksummed IDs)
with the bad rows asked for; ``send_list`` pushes it as the department's system would.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import openpyxl
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from adapters.signing import SignedAuth
from contracts.difficulty import DEPARTMENT_IDENTITIES, DEPARTMENTS, partner_of
from contracts.ids import make_id_number
from simulators.core import corrupt_check_char
from simulators.simkit import SimState, fault_response, signed_body, sim_router

__all__ = ["DEPARTMENT_NAMES", "DepartmentInbox", "create_app", "make_records",
           "read_status_file", "send_list"]

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"


@dataclass
class DepartmentInbox:
    """What the departments received: statuses per department and record."""

    statuses: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    serials: set[str] = field(default_factory=set)
    bad_signatures: int = 0
    resent: list[dict[str, Any]] = field(default_factory=list)
    """Statuses that came as a 补发 (``resend_id`` in the payload), in arrival order."""

    def of(self, department: str) -> dict[str, dict[str, Any]]:
        return self.statuses.setdefault(department, {})

    def status_of(self, department: str, record_id: str) -> str | None:
        return self.of(department).get(record_id, {}).get("status")

    def count(self, status: str | None = None) -> int:
        return sum(1 for d in self.statuses.values() for s in d.values()
                   if status is None or s.get("status") == status)

    files: dict[str, dict[str, list[dict[str, str]]]] = field(default_factory=dict)
    """Status files collected from the drop folders: department -> file name -> rows."""

    def collect_files(self, department: str, folder: Path, sim: SimState) -> int:
        """Pick up the status files in ``department``'s drop folder not taken yet; each row
        is an effect ``file:<dept>:<file>:<row>`` in ``sim``'s log. The rows taken now."""
        taken = self.files.setdefault(department, {})
        n = 0
        for path in sorted(folder.glob("*_同步情况.*")) if folder.is_dir() else []:
            if path.name in taken:
                continue
            rows = read_status_file(path.name, path.read_bytes())
            taken[path.name] = rows
            for i, row in enumerate(rows, start=1):
                sim.log.record(key=f"file:{department}:{path.name}:{i}", entity=department,
                               value=row.get("同步情况"))
                n += 1
        return n


def create_app(secrets: Mapping[str, str], state: SimState | None = None,
               inbox: DepartmentInbox | None = None) -> FastAPI:
    """The departments' status endpoint; ``secrets``: department -> the secret it shares
    with the hub (``partners.difficulty_<department>.secret``)."""
    sim = state or SimState()
    box = inbox if inbox is not None else DepartmentInbox()
    app = FastAPI(title="Departments simulator (困难人员: 民政, 总工会, 退役军人, 农业农村)")
    app.state.sim = sim
    app.state.inbox = box
    app.include_router(sim_router(sim))

    @app.post("/departments/{dept}/status")
    async def status(dept: str, request: Request) -> JSONResponse:
        secret = secrets.get(dept, "")
        body = await signed_body(request, secret, box)
        if isinstance(body, JSONResponse):
            return body
        payload = json.loads(body)
        rid = str(payload.get("record_id") or "")
        fault = sim.draw(f"{dept}:{rid}", "status")
        if (early := fault_response(fault, "department")) is not None:
            return early
        await sim.sleep_for(fault)
        serial = request.headers.get("x-hub-serial", "")
        if serial and serial in box.serials:
            sim.log.replays += 1
            return JSONResponse({"status": "replay"})
        box.serials.add(serial)
        again = f":resend:{payload['resend_id']}" if payload.get("resend_id") else ""
        sim.log.record(key=f"status:{dept}:{rid}:{payload.get('status')}{again}", entity=dept,
                       value=payload.get("status"))
        box.of(dept)[rid] = payload
        if again:
            box.resent.append(payload)
        return JSONResponse({"status": "ok"})

    @app.get("/departments/{dept}/status")
    async def taken(dept: str) -> dict[str, Any]:
        """What the department took (record id -> the last status), for a person watching
        ``make simulate``."""
        got = box.of(dept)
        files = {name: len(rows) for name, rows in box.files.get(dept, {}).items()}
        return {"department": dept, "count": len(got), "statuses": got, "files": files}

    return app


def read_status_file(name: str, data: bytes) -> list[dict[str, str]]:
    """A status file as the department reads it: one dict per row by column (同步情况, 原因
    and its own columns). CSV in UTF-8 (BOM) or GBK, or XLSX."""
    if name.lower().endswith(".xlsx"):
        sheet = openpyxl.load_workbook(io.BytesIO(data), read_only=True).worksheets[0]
        table = [["" if c is None else str(c) for c in r]
                 for r in sheet.iter_rows(values_only=True)]
    else:
        text = data[3:].decode() if data.startswith(b"\xef\xbb\xbf") else data.decode("gb18030")
        first = text.split("\n", 1)[0]
        table = list(csv.reader(io.StringIO(text), delimiter="\t" if "\t" in first
                                and "," not in first else ","))
    header, rows = table[0], table[1:]
    return [dict(zip(header, r, strict=False)) for r in rows if any(r)]


def _name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.randint(1, 2)))


def make_records(rng: random.Random, department: str, n: int, *, month: str = "2026-11",
                 bad: int = 0) -> list[dict[str, Any]]:
    """``n`` good 增加 records of ``department``'s identities, then ``bad`` bad rows cycling
    through: an unknown identity code, a bad ID checksum, a duplicate of the first row, an
    end date before the start, another department's identity."""
    codes = sorted(DEPARTMENT_IDENTITIES[department])
    start = date.fromisoformat(f"{month}-01")
    rows: list[dict[str, Any]] = []
    for _ in range(n):
        rows.append({"change": "增加", "identity": rng.choice(codes),
                     "id_number": make_id_number(rng), "name": _name(rng),
                     "start_date": start.isoformat(),
                     "phone": f"1{rng.choice('3589')}{rng.randrange(10**9):09d}",
                     "source": "困难人员"})
    other = next(c for d, cs in DEPARTMENT_IDENTITIES.items() if d != department
                 for c in sorted(cs))
    for i in range(bad):
        base = dict(rows[0]) if rows else {"change": "增加", "identity": codes[0],
                                           "id_number": make_id_number(rng), "name": _name(rng),
                                           "start_date": start.isoformat()}
        kind = i % 5
        if kind == 0:
            base |= {"identity": "99", "id_number": make_id_number(rng)}
        elif kind == 1:
            base |= {"id_number": corrupt_check_char(make_id_number(rng))}
        elif kind == 2:
            pass  # the first row again
        elif kind == 3:
            base |= {"id_number": make_id_number(rng), "end_date": "2000-01-01"}
        else:
            base |= {"identity": other, "id_number": make_id_number(rng)}
        rows.append(base)
    return rows


async def send_list(http: httpx.AsyncClient, hub_url: str, department: str, month: str,
                    list_id: str, records: list[dict[str, Any]], secret: str) -> httpx.Response:
    """The department's system pushes its list, signed as ``difficulty_<department>``."""
    return await http.post(f"{hub_url}/partners/departments/{department}/lists",
                           json={"list_id": list_id, "month": month, "records": records},
                           auth=SignedAuth(partner_of(department), secret))


DEPARTMENT_NAMES = tuple(DEPARTMENTS)

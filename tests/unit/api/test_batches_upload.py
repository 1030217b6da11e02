"""POST /admin/batches/students/{op}: the body is bounded before it is a job.

413 for a declared or streamed body over the limit (without reading it whole), 422
naming the reason for a file past the limits of ``contracts.student_batch``; nothing is
kept for a refused upload; a good file still starts a job.
"""

from __future__ import annotations

import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api import batches
from api.deps import ApiState, install, require_caseworker
from config.settings import load_settings
from contracts.student_batch import ENROLL_COLUMNS, MAX_FILE_ROWS, MAX_XLSX_UNZIPPED_BYTES
from services.deps import Deps
from services.student_batches import BatchJobs
from tests.support.ops import Db, fake_deps
from tests.unit.jobs.test_student_batch import students, write_xlsx

LIMIT = 64 * 1024
URL = "/admin/batches/students/enroll"


@dataclass
class Upload:
    client: httpx.AsyncClient
    jobs: BatchJobs
    root: Path
    app: FastAPI


@pytest.fixture
async def upload(db: Db, tmp_path: Path) -> AsyncIterator[Upload]:
    root = tmp_path / "batches"
    jobs = BatchJobs(root=root, max_upload_bytes=LIMIT)
    deps: Deps = fake_deps(None)  # type: ignore[arg-type]
    settings = load_settings(env={})
    deps = Deps(**{**vars(deps), "settings": settings})
    app = FastAPI()
    install(app, ApiState(deps=deps, audit=db.audit, dead_letters=db.store, batch_jobs=jobs))
    app.include_router(batches.router)
    app.dependency_overrides[require_caseworker] = lambda: None
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://hub") as client:
        yield Upload(client, jobs, root, app)
    await jobs.runner.close()


def _kept(u: Upload) -> list[Path]:
    return sorted(u.root.rglob("*")) if u.root.exists() else []


async def test_a_declared_length_over_the_limit_is_a_413_before_a_byte_is_read(
        upload: Upload) -> None:
    read: list[bytes] = []
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        read.append(b"x")
        return {"type": "http.request", "body": b"x" * 1024, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": URL, "raw_path": URL.encode(),
             "root_path": "", "query_string": b"filename=s.csv",
             "headers": [(b"host", b"hub"), (b"content-length", str(10**12).encode())],
             "client": ("127.0.0.1", 1), "server": ("hub", 80)}
    await upload.app(scope, receive, send)
    assert sent[0]["status"] == 413
    assert read == []  # the body was never read
    assert b'"field":"body"' in sent[1]["body"] and str(10**12).encode() in sent[1]["body"]
    assert _kept(upload) == [] and await upload.jobs.runner.list() == []


async def test_a_streamed_body_over_the_limit_is_a_413_and_the_rest_is_not_read(
        upload: Upload) -> None:
    pieces: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        for i in range(100):  # 100 x 4 KiB = 400 KiB, no Content-Length (chunked)
            pieces.append(i)
            yield b"a,b\n" * 1024

    r = await upload.client.post(URL, params={"filename": "s.csv"}, content=body())
    assert r.status_code == 413, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert [(e["field"], e["msg"]) for e in r.json()["errors"]] == \
        [("body", f"more than the {LIMIT} bytes limit")]
    assert len(pieces) < 100
    assert _kept(upload) == [] and await upload.jobs.runner.list() == []


async def test_a_bad_content_length_is_a_400(upload: Upload) -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": URL, "raw_path": URL.encode(),
             "root_path": "", "query_string": b"filename=s.csv",
             "headers": [(b"host", b"hub"), (b"content-length", b"-5")],
             "client": ("127.0.0.1", 1), "server": ("hub", 80)}
    await upload.app(scope, receive, send)
    assert sent[0]["status"] == 400 and b"Content-Length" in sent[1]["body"]


async def test_a_zip_bomb_is_a_422_naming_the_unzipped_size(upload: Upload,
                                                              tmp_path: Path) -> None:
    upload.jobs.max_upload_bytes = 5 * 1024 * 1024
    path = write_xlsx(tmp_path / "bomb.xlsx", list(ENROLL_COLUMNS), students(3))
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf, \
            zf.open("xl/media/image1.bin", "w") as member:
        for _ in range(MAX_XLSX_UNZIPPED_BYTES // (1024 * 1024) + 1):
            member.write(bytes(1024 * 1024))
    r = await upload.client.post(URL, params={"filename": "bomb.xlsx"},
                                 content=path.read_bytes())
    assert r.status_code == 422, r.text
    [detail] = r.json()["errors"]
    assert detail["field"] == "body" and "解压后" in detail["msg"]
    assert str(MAX_XLSX_UNZIPPED_BYTES) in detail["msg"]
    assert _kept(upload) == [] and await upload.jobs.runner.list() == []


async def test_a_million_row_sheet_is_a_422_naming_the_row_limit(upload: Upload,
                                                                   tmp_path: Path) -> None:
    import openpyxl

    path = tmp_path / "long.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(list(ENROLL_COLUMNS))
    ws.cell(row=1_000_000, column=1, value="x")
    wb.save(path)
    r = await upload.client.post(URL, params={"filename": "long.xlsx"},
                                 content=path.read_bytes())
    assert r.status_code == 422, r.text
    assert f"超过 {MAX_FILE_ROWS} 行的上限" in r.json()["errors"][0]["msg"]
    assert _kept(upload) == []


async def test_a_good_file_under_the_limit_starts_a_job(upload: Upload, tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "s.xlsx", list(ENROLL_COLUMNS), students(3))
    assert path.stat().st_size < LIMIT
    r = await upload.client.post(URL, params={"filename": "s.xlsx"}, content=path.read_bytes())
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    assert (upload.root / job_id / "s.xlsx").read_bytes() == path.read_bytes()


async def test_an_empty_body_is_a_422(upload: Upload) -> None:
    r = await upload.client.post(URL, params={"filename": "s.csv"}, content=b"")
    assert r.status_code == 422 and r.json()["errors"][0]["msg"] == "empty file"

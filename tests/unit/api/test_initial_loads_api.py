"""/admin/initial-loads: roles, upload -> job -> progress and reports, re-upload continues.

The tax desk runs in process (httpx ASGI transport); its effects are the evidence.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import build_app
from api.auth import Authenticator, Principal, hash_token
from api.deps import ApiState
from config.settings import load_settings
from jobs.initial_load import ChunkRetry
from services.deps import Deps
from services.initial_loads import InitialLoadJobs
from simulators.initial_load import InitialLoadDesk, create_app
from simulators.simkit import Fault, SimState
from tests.support.ops import Db, fake_deps
from tools.initial_load_cli import write_sample

TOKENS = {"operations": "t-ops", "caseworker": "t-case", "readonly": "t-ro"}


@dataclass
class Rig:
    http: httpx.AsyncClient
    jobs: InitialLoadJobs
    desk: InitialLoadDesk
    state: SimState


@pytest.fixture
async def rig(db: Db, tmp_path: Path) -> AsyncIterator[Rig]:
    state = SimState()
    desk = InitialLoadDesk(draw=state.draw)
    jobs = InitialLoadJobs(root=tmp_path / "loads",
                           retry=ChunkRetry(attempts=2, min_wait_s=0, max_wait_s=0),
                           transport=httpx.ASGITransport(app=create_app(desk)))
    base: Deps = fake_deps(None)  # type: ignore[arg-type]
    deps = Deps(**{**vars(base), "settings": load_settings(env={}), "initial_loads": jobs})
    auth = Authenticator({hash_token(t): Principal(f"user-{r}", r)  # type: ignore[arg-type]
                          for r, t in TOKENS.items()}, None)
    app = build_app(ApiState(deps=deps, audit=db.audit, dead_letters=db.store, auth=auth))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://hub") as http:
        yield Rig(http, jobs, desk, state)
    await jobs.wait()
    await jobs.runner.close()


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


async def upload(rig: Rig, kind: str, path: Path, role: str = "operations") -> httpx.Response:
    return await rig.http.post(f"/admin/initial-loads/{kind}", params={"filename": path.name},
                               content=path.read_bytes(), headers=auth(role))


async def finished(rig: Rig, job_id: str) -> dict[str, Any]:
    await rig.jobs.wait()
    got = await rig.http.get(f"/admin/initial-loads/{job_id}", headers=auth("operations"))
    assert got.status_code == 200
    view: dict[str, Any] = got.json()
    return view


async def test_only_caseworkers_and_operations_may_upload(rig: Rig, tmp_path: Path) -> None:
    sample = write_sample("unit", tmp_path / "units.csv", 3)
    no_token = await rig.http.post("/admin/initial-loads/unit", params={"filename": "u.csv"},
                                   content=sample.path.read_bytes())
    assert no_token.status_code == 401
    assert (await upload(rig, "unit", sample.path, "readonly")).status_code == 403
    assert (await upload(rig, "unit", sample.path, "caseworker")).status_code == 202
    await rig.jobs.wait()
    assert rig.desk.effect_count("unit") == 3 and rig.desk.calls == 1


async def test_an_upload_runs_shows_progress_and_a_reupload_continues_not_repeats(
        rig: Rig, tmp_path: Path) -> None:
    sample = write_sample("resident", tmp_path / "res.csv", 1200, bad=9)
    got = await upload(rig, "resident", sample.path)
    assert got.status_code == 202
    view = await finished(rig, got.json()["job_id"])
    assert view["state"] == "finished", view
    assert view["progress"] == {"rows_total": 1191, "rows_sent": 1191, "rows_ok": 1191,
                                "rows_failed": 0, "chunks_total": 3, "chunks_done": 3}
    assert view["counts"]["invalid"] == 9
    assert set(view["files"]) == {"invalid.csv", "invalid.xlsx", "success.csv", "success.xlsx",
                                  "failure.csv", "failure.xlsx"}
    report = await rig.http.get(f"/admin/initial-loads/{view['job_id']}/files/invalid.csv",
                                headers=auth("operations"))
    assert report.status_code == 200 and report.text.count("\n") == 10
    assert rig.desk.effect_count("resident") == 1191 and rig.desk.chunks == 3

    again = await upload(rig, "resident", sample.path)  # same file: the manifest says done
    view2 = await finished(rig, again.json()["job_id"])
    assert view2["counts"]["chunks_skipped"] == 3 and view2["counts"]["ok"] == 1191
    assert rig.desk.calls == 3 and rig.desk.effect_count("resident") == 1191


async def test_the_same_file_while_running_is_a_409_and_a_bad_file_a_422(
        rig: Rig, tmp_path: Path) -> None:
    sample = write_sample("flexible", tmp_path / "f.csv", 5)
    rig.state.faults.append(Fault(kind="slow", count=1, delay_s=0.5))
    first = await upload(rig, "flexible", sample.path)
    await asyncio.sleep(0.05)
    second = await upload(rig, "flexible", sample.path)
    assert (first.status_code, second.status_code) == (202, 409)
    assert second.json()["job_id"] == first.json()["job_id"]
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"not a zip at all")
    refused = await upload(rig, "flexible", bad)
    assert refused.status_code == 422 and "XLSX" in refused.json()["detail"]
    view = await finished(rig, first.json()["job_id"])
    assert view["counts"]["ok"] == 5 and rig.desk.effect_count("flexible") == 5

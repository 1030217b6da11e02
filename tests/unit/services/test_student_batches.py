"""Student batch jobs without HTTP: upload names are checked, reports are only what is on
disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import load_settings
from services.student_batches import FILENAME, BatchJob, BatchJobs


@pytest.mark.parametrize(("name", "ok"), [
    ("students.xlsx", True), ("2026 秋季.CSV", True), ("../escape.csv", False),
    ("a/b.xlsx", False), ("notes.txt", False), ("x" * 121 + ".csv", False),
])
def test_upload_names(name: str, ok: bool) -> None:
    assert bool(FILENAME.match(name)) is ok


async def test_a_bad_name_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    jobs = BatchJobs(root=tmp_path)
    with pytest.raises(ValueError, match="not an upload name"):
        await jobs.start("enroll", "../escape.csv", b"x", "carl",
                         tax=load_settings(env={}).partner("tax"))
    assert not list(tmp_path.iterdir()) and await jobs.runner.list() == []
    await jobs.runner.close()


def test_a_report_is_offered_only_while_it_is_on_disk(tmp_path: Path) -> None:
    kept, gone = tmp_path / "success.csv", tmp_path / "failure.csv"
    kept.write_text("ok")
    job = BatchJob("j1", "enroll", "s.csv", "carl", files={"success.csv": kept,
                                                           "failure.csv": gone})
    assert job.report("success.csv") == kept
    assert job.report("failure.csv") is None and job.report("other.csv") is None
    assert job.view()["files"] == ["failure.csv", "success.csv"]

"""F7 status back by file (1532): a list imported as a file gets its own file back with each
row's 同步情况 and 原因, encoded as it came (GBK -> GBK, XLSX -> XLSX), produced once every
row is settled, written to the department's drop folder, and rebuilt on demand."""

from __future__ import annotations

import csv
import io
import random
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pytest

from contracts.difficulty import COLUMNS
from services.audit import Caller
from services.difficulty import DifficultyDesk
from services.difficulty_files import DirShelf, StatusFiles
from simulators.departments import make_records, read_status_file
from storage.difficulty import DifficultyStore
from storage.journal import make_engine
from tests.support.fakes import FakeAudit, FakePublisher
from tests.support.ops import sqlite_url

A, B = Caller("a", "caseworker"), Caller("b", "caseworker")
MONTH = "2026-11"


@dataclass
class Desks:
    desk: DifficultyDesk
    files: StatusFiles
    audit: FakeAudit
    drop: Path


@pytest.fixture
async def desks(template_db: Path, tmp_path: Path) -> AsyncIterator[Desks]:
    path = tmp_path / "hub.db"
    shutil.copy(template_db, path)
    engine = make_engine(sqlite_url(path))
    audit = FakeAudit()
    store = DifficultyStore(engine)
    drop = tmp_path / "drop" / "veterans"
    try:
        yield Desks(DifficultyDesk(store, FakePublisher(), audit),
                    StatusFiles(store, DirShelf(tmp_path / "kept"), {"veterans": str(drop)},
                                audit),
                    audit, drop)
    finally:
        await engine.dispose()


def _gbk_file(records: list[dict[str, object]]) -> bytes:
    """A department's GBK CSV: a title row, the columns in its own order plus 序号."""
    columns = ["序号", "姓名", "身份证号", "变动类型", "身份类别", "开始时间", "结束时间",
               "联系电话", "救助来源"]
    lines = ["退役军人事务局困难人员名单", ",".join(columns)]
    for i, r in enumerate(records, start=1):
        lines.append(",".join([str(i)] + [str(r.get(COLUMNS[c], "")) for c in columns[1:]]))
    return ("\r\n".join(lines) + "\r\n").encode("gbk")


async def _import(d: Desks, name: str, raw: bytes) -> dict[str, object]:
    receipt = await d.desk.import_file("veterans", MONTH, name, raw, "a")
    await d.files.keep(receipt, filename=name, raw=raw)
    return receipt


async def _settle(d: Desks, receipt: dict[str, object], *, reject: int = 0) -> None:
    """初审 + 复核 of every record (the first ``reject`` rejected at 初审), then core's answer
    (``synced``) for those approved."""
    ids = [r["record_id"] for r in receipt["records"]]  # type: ignore[attr-defined]
    if reject:
        await d.desk.review(ids[:reject], approve=False, reason="材料不全", actor=A)
    await d.desk.review(ids[reject:], approve=True, reason="", actor=A)
    await d.desk.review(ids[reject:], approve=True, reason="", actor=B)
    for rid in ids[reject:]:
        assert await d.desk.store.set_status(rid, "synced", expect=("approved",))


async def test_a_gbk_file_gets_a_gbk_file_back_once_every_row_is_settled(desks: Desks) -> None:
    rows = make_records(random.Random(5), "veterans", 3, month=MONTH, bad=2)
    raw = _gbk_file(rows)
    receipt = await _import(desks, "退役军人11月.csv", raw)
    assert receipt["kept"] == 3 and receipt["refused_rows"] == 2
    list_id = str(receipt["list_id"])
    # still in review: not produced, and on demand the rows say 处理中
    assert await desks.files.produce(list_id) is None and await desks.files.sweep() == []
    early = await desks.files.download(list_id, A)
    assert early is not None and not early.settled and early.counts["pending"] == 3
    await _settle(desks, receipt, reject=1)
    assert await desks.files.sweep() == [list_id]
    assert await desks.files.sweep() == []  # produced once
    got = await desks.files.build(list_id)
    assert got is not None and got.settled and got.format == "csv" and not got.rebuilt
    assert got.counts == {"rows": 5, "synced": 2, "refused": 3, "pending": 0}
    assert "charset=gbk" in got.media_type
    with pytest.raises(UnicodeDecodeError):
        got.data.decode("utf-8")
    table = list(csv.reader(io.StringIO(got.data.decode("gbk"))))
    assert table[0] == ["序号", "姓名", "身份证号", "变动类型", "身份类别", "开始时间",
                        "结束时间", "联系电话", "救助来源", "同步情况", "原因"]
    assert [r[0] for r in table[1:]] == ["1", "2", "3", "4", "5"]  # the department's rows
    assert table[1][2] == rows[0]["id_number"]  # its own data, not masked
    assert [r[9] for r in table[1:]] == ["未通过", "已同步", "已同步", "未通过", "未通过"]
    assert "材料不全" in table[1][10]
    assert table[4][10].startswith("校验: 身份类别:") and "99" in table[4][10]
    assert table[5][10].startswith("校验: 身份证号:")
    # the drop folder holds the same file, and the department reads it
    dropped = list(desks.drop.iterdir())
    assert [p.name for p in dropped] == [got.name] and dropped[0].read_bytes() == got.data
    assert got.name.startswith("退役军人11月_") and got.name.endswith("_同步情况.csv")
    parsed = read_status_file(got.name, got.data)
    assert [r["同步情况"] for r in parsed] == ["未通过", "已同步", "已同步", "未通过", "未通过"]
    # downloads are audited, the target masked and no personal data in the entry
    entry = next(a for a in desks.audit.rows if a[2] == "difficulty.status_file")
    assert entry[3] == f"veterans/{MONTH}/{list_id}" and entry[5] == "pending"
    assert rows[0]["id_number"] not in str(entry)


async def test_an_xlsx_comes_back_as_xlsx_and_utf8_as_utf8_with_bom(desks: Desks) -> None:
    rows = make_records(random.Random(6), "veterans", 2, month=MONTH)
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(list(COLUMNS))
    for r in rows:
        ws.append([r.get(f, "") for f in COLUMNS.values()])
    buf = io.BytesIO()
    wb.save(buf)
    receipt = await _import(desks, "v.xlsx", buf.getvalue())
    await _settle(desks, receipt)
    got = await desks.files.build(str(receipt["list_id"]))
    assert got is not None and got.format == "xlsx" and got.name.endswith("_同步情况.xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(got.data)).worksheets[0]
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert values[0] == [*COLUMNS, "同步情况", "原因"]
    assert [v[-2] for v in values[1:]] == ["已同步", "已同步"]
    # a UTF-8 CSV comes back UTF-8 with a BOM
    raw = ("\n".join([",".join(COLUMNS)] + [",".join(str(r.get(f, "")) for f in COLUMNS.values())
                                          for r in make_records(random.Random(7), "veterans",
                                                                1, month=MONTH)])).encode()
    receipt = await _import(desks, "u.csv", raw)
    got = await desks.files.build(str(receipt["list_id"]))
    assert got is not None and got.data.startswith(b"\xef\xbb\xbf")
    assert "处理中" in got.data.decode("utf-8-sig") and "charset=utf-8" in got.media_type


async def test_a_list_whose_file_was_not_kept_is_rebuilt_from_the_records(
        desks: Desks) -> None:
    rows = make_records(random.Random(8), "veterans", 2, month=MONTH, bad=1)
    receipt = await desks.desk.import_file("veterans", MONTH, "x.csv", _gbk_file(rows), "a")
    got = await desks.files.build(str(receipt["list_id"]))
    assert got is not None and got.rebuilt and got.data.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(got.data.decode("utf-8-sig"))))
    assert table[0][:3] == ["行号", "变动类型", "身份类别"] and table[0][-2:] == ["同步情况",
                                                                               "原因"]
    assert [r[0] for r in table[1:]] == ["3", "4", "5"]
    assert table[3][-2] == "未通过" and table[3][-1].startswith("校验: 身份类别")
    assert await desks.files.build("0" * 32) is None

"""Admin paths and queries with numbers and times the database cannot hold: a 422 naming
the field (or a 404 for a job id), never a 500 from an integer overflow in SQLite or
PostgreSQL (both keep 64-bit signed integers) or a date that has no UTC."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api.admin import MAX_ROW_ID
from tests.support.ops import Admin, bearer, letter

OPS = bearer("operations")
HUGE = "99999999999999999999"  # > 2**63
JUST_OVER = str(2**63)
EDGE_TIMES = ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00")


def _names(r: httpx.Response, field: str) -> None:
    assert r.status_code == 422, r.text
    locs = [e["loc"] for e in r.json()["detail"]]
    assert any(field in loc for loc in locs), locs


def test_the_row_id_limit_is_what_sql_integers_hold() -> None:
    assert MAX_ROW_ID == 2**63 - 1


@pytest.mark.parametrize("value", [HUGE, JUST_OVER, "-" + HUGE])
async def test_an_id_beyond_64_bits_in_the_path_is_a_422_naming_id(admin: Admin,
                                                                     value: str) -> None:
    _names(await admin.client.get(f"/admin/dead-letters/{value}", headers=OPS), "id")
    r = await admin.client.post(f"/admin/dead-letters/{value}/edit-retry",
                                headers=bearer("admin"),
                                json={"patch": {"payload": {"n": 1}}, "reason": "fix"})
    _names(r, "id")


async def test_the_largest_id_is_simply_not_found(admin: Admin) -> None:
    r = await admin.client.get(f"/admin/dead-letters/{MAX_ROW_ID}", headers=OPS)
    assert r.status_code == 404


@pytest.mark.parametrize("path", ["/admin/dead-letters", "/admin/audit"])
@pytest.mark.parametrize("value", [HUGE, JUST_OVER])
async def test_an_offset_beyond_64_bits_is_a_422_naming_offset(admin: Admin, path: str,
                                                                 value: str) -> None:
    _names(await admin.client.get(path, headers=OPS, params={"offset": value}), "offset")


@pytest.mark.parametrize("path", ["/admin/dead-letters", "/admin/audit"])
async def test_the_largest_offset_is_an_empty_page(admin: Admin, path: str) -> None:
    await admin.db.store.add(letter(1))
    r = await admin.client.get(path, headers=OPS, params={"offset": str(MAX_ROW_ID)})
    assert r.status_code == 200, r.text
    page: Any = r.json()
    assert (page["items"] if isinstance(page, dict) else page) == []


@pytest.mark.parametrize("path", ["/admin/dead-letters", "/admin/audit"])
@pytest.mark.parametrize("field", ["since", "until"])
@pytest.mark.parametrize("value", EDGE_TIMES)
async def test_a_time_without_a_utc_equivalent_is_a_422_naming_it(
        admin: Admin, path: str, field: str, value: str) -> None:
    _names(await admin.client.get(path, headers=OPS, params={field: value}), field)


@pytest.mark.parametrize("action", ["retry", "archive"])
@pytest.mark.parametrize("value", [int(HUGE), 2**63, -(2**63) - 1])
async def test_an_id_beyond_64_bits_in_a_body_is_a_422_naming_it(admin: Admin, action: str,
                                                                   value: int) -> None:
    [a] = [await admin.db.store.add(letter(1))]
    r = await admin.client.post(f"/admin/dead-letters/{action}", headers=OPS,
                                json={"ids": [a, value], "reason": "tax is back"})
    _names(r, "ids")
    assert r.json()["detail"][0]["loc"] == ["body", "ids", 1]
    assert admin.sent.calls == []
    assert (await admin.db.store.get(a)).status == "dead"  # type: ignore[union-attr]

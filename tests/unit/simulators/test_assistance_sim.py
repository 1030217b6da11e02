"""The 医疗救助平台 and 阳光惠民 simulator: signed pushes only, a repeated serial is a replay,
each row counted; a month checked against its header to the fen. Core's settlements are
the same every time for a person and month."""

from __future__ import annotations

import random
from datetime import datetime
from decimal import Decimal

import httpx

from adapters.signing import SignedAuth
from contracts.assistance import Totals
from contracts.ids import make_id_number
from simulators.assistance import (
    AssistanceBook,
    CoreSettlements,
    SunshineBook,
    create_app,
    make_settlement,
)
from simulators.simkit import Fault, SimState

ID = make_id_number(random.Random(9))


def test_core_settlements_are_deterministic_and_add_up() -> None:
    a, b = CoreSettlements(), CoreSettlements()
    assert [s.setl_id for s in a.derived(ID, "202610")] == [
        s.setl_id for s in b.derived(ID, "202610")]
    s = make_settlement(ID, datetime(2026, 10, 2, 9), 1_234_567, setl_id="X", name="王五")
    assert s.serious_illness_pay > 0 and s.medfee_total == Decimal("12345.67")
    a.added["X"] = s
    assert "X" in [x.setl_id for x in a.of(ID, "202610")]
    answer = a.month_answer("202610", [ID])
    assert Totals.from_wire(answer["header"]) == Totals.of(a.of(ID, "202610"))


async def test_pages_are_signed_deduplicated_and_checked() -> None:
    book, sun, state = AssistanceBook(), SunshineBook(), SimState()
    app = create_app("s-a", state, book, sunshine_secret="s-s", sunshine=sun)
    s = make_settlement(ID, datetime(2026, 10, 2, 9), 10_000, setl_id="X", name="王五")
    row = {"ref": "r1", "id_number": ID, **s.amounts()}
    header = Totals.of([s]).as_dict()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://sim") as http:
        page = {"month": "2026-10", "header": header | {"count": 2}, "page": 1, "rows": [row]}
        r = await http.post("/assistance/settlement-data", json=page,
                            auth=SignedAuth("hub", "s-a"), headers={"X-Hub-Serial": "P1"})
        assert r.json()["check"] == "incomplete"
        r = await http.post("/assistance/settlement-data", json=page,
                            auth=SignedAuth("hub", "s-a"), headers={"X-Hub-Serial": "P1"})
        assert state.log.replays == 1 and state.log.effects["data:2026-10:r1"] == 1
        page |= {"header": header | {"medfee_total": "99.99"}}
        await http.post("/assistance/settlement-data", json=page,
                        auth=SignedAuth("hub", "s-a"), headers={"X-Hub-Serial": "P2"})
        assert book.month_check("2026-10") == "mismatch"
        page |= {"header": header}
        await http.post("/assistance/settlement-data", json=page,
                        auth=SignedAuth("hub", "s-a"), headers={"X-Hub-Serial": "P3"})
        assert book.month_check("2026-10") == "complete"
        r = await http.post("/assistance/settlements", json=row | {"setl_id": "X"},
                            auth=SignedAuth("hub", "wrong"))
        assert r.status_code == 401 and book.bad_signatures == 1
        state.faults.append(Fault(kind="http_5xx", count=1, operation="settlements"))
        r = await http.post("/assistance/settlements", json=row,
                            auth=SignedAuth("hub", "s-a"), headers={"X-Hub-Serial": "E1"})
        assert r.status_code == 503 and "settlement:r1" not in state.log.effects
        r = await http.post("/assistance/settlements", json=row,
                            auth=SignedAuth("hub", "s-a"), headers={"X-Hub-Serial": "E1"})
        assert r.status_code == 200 and state.log.effects["settlement:r1"] == 1
        for table in ("fees", "institutions"):
            r = await http.post(f"/sunshine/{table}", json={"day": "2026-11-30", "rows": [
                {"ref": "r1", "code": "H1"}]}, auth=SignedAuth("hub", "s-s"),
                headers={"X-Hub-Serial": f"T-{table}"})
            assert r.status_code == 200
        assert sun.tables_log.effects == {"fees:2026-11-30:r1": 1,
                                          "institutions:2026-11-30:r1": 1}
        assert sun.state.log.effects == {}  # the 救助人员 counts are their own
        r = await http.post("/sunshine/other", json={}, auth=SignedAuth("hub", "s-s"))
        assert r.status_code == 404

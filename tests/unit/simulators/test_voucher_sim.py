"""F13 simulators behave like the partners the hub must survive: unsigned calls refused
(counted), a settlement or a person upload repeated is one effect, ``duplicate`` makes
no second effect, ``reject`` answers infcode -1, the 医税平台 refuses what it does not
carry."""

from __future__ import annotations

import json
import random
from typing import Any

import httpx

from adapters.signing import SignedAuth
from contracts.ids import make_id_number
from contracts.voucher import CORE, LIBRARY, MEDTAX
from simulators.simkit import Fault, SimState
from simulators.voucher import VoucherIssuer, VoucherSim, create_app

SECRETS = {CORE: "c-secret", LIBRARY: "l-secret", MEDTAX: "m-secret"}
ME = make_id_number(random.Random(3))


def _client(sim: VoucherSim) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(sim)),
                             base_url="http://sim")


async def _post(http: httpx.AsyncClient, path: str, partner: str, infno: str,
                input: dict[str, Any], serial: str) -> dict[str, Any]:
    r = await http.post(path, content=json.dumps({"infno": infno, "input": input}).encode(),
                        headers={"X-Hub-Serial": serial},
                        auth=SignedAuth("hub", SECRETS[partner]))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def _settle(no: str, total: str = "10.00") -> dict[str, Any]:
    return {"data": {"mdtrt_cert_type": "01", "mdtrt_cert_no": "T" * 32, "certno": ME,
                     "fixmedins_code": "H32010000011", "setl_req_no": no,
                     "medfee_sumamt": total, "feedetail": [{"det_item_fee_sumamt": "10.00"}]}}


async def test_the_simulated_partners_count_one_effect_per_fact() -> None:
    sim = VoucherSim(SimState(), VoucherIssuer(), SECRETS)
    async with _client(sim) as http:
        r = await http.post("/core/api", json={"infno": "2207", "input": {}})
        assert r.status_code == 401 and sim.book.bad_signatures == 1
        a = await _post(http, "/core/api", CORE, "2207", _settle("N1"), "s1")
        b = await _post(http, "/core/api", CORE, "2207", _settle("N1"), "s2")
        assert a["infcode"] == 0 and a["output"] == b["output"]
        assert (await _post(http, "/core/api", CORE, "2207", _settle("N2", "11.00"),
                            "s3"))["infcode"] == -1  # lines do not add up
        sim.state.faults[:] = [Fault(kind="duplicate", count=1, operation="upload"),
                               Fault(kind="reject", count=1, operation="settle",
                                     code="E201", text="就诊信息不存在")]
        person = {"psninfo": {"psn_no": "P0001", "version": 1}}
        assert (await _post(http, "/library/api", LIBRARY, "V1001", person, "u1"))[
            "infcode"] == 0
        await _post(http, "/library/api", LIBRARY, "V1001", person, "u2")
        no = await _post(http, "/core/api", CORE, "2207", _settle("N3"), "s4")
        assert (no["infcode"], no["output"]["err_code"]) == (-1, "E201")
        m = await _post(http, "/medtax/api", MEDTAX, "V3101",
                        {"data": {"record_no": "M1", "insutype": "392"}}, "m1")
        assert (m["infcode"], m["output"]["err_code"]) == (-1, "M403")
        wrong = await _post(http, "/medtax/api", MEDTAX, "2207", _settle("N4"), "m2")
        assert wrong["infcode"] == -1
    assert dict(sim.state.log.effects) == {"setl:H32010000011:N1": 1, "psn:P0001:1": 1}
    assert sim.state.log.replays >= 3

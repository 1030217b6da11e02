"""F13 end to end on real servers, one stack: the demo round adds up at the simulators;
vouchers decoded and settled through the hub to core's voucher services (forged, expired,
replayed, another person's refused with the reason; the same settlement at once and
again: one effect; core down: dead), the 省级凭证库 upload, the 医税平台's three
insutypes, the kiosk's business and the channels' queries (signed, rate-limited per
account, masked)."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest
from pydantic import SecretStr

from adapters.signing import SignedAuth
from config.settings import load_settings
from config.voucher import VoucherSettings
from contracts.ids import make_id_number
from simulators.harness import fast_policies, running_stack
from simulators.simkit import Fault
from tools.demo_flows import wait_for
from tools.demo_voucher import HOSPITAL, settlement_body, voucher_round, wait_settled

pytestmark = pytest.mark.integration


async def test_voucher_flow_through_the_hub() -> None:
    s = load_settings()
    accounts = {f"wx-acct-000{i}": SecretStr(f"k{i}-secret") for i in (1, 2, 3)}
    cfg = VoucherSettings(wechat_accounts=accounts, wechat_per_minute=6)
    async with running_stack(s, overrides=fast_policies(s, max_attempts=3) | {"voucher": cfg}
                             ) as st, httpx.AsyncClient(timeout=15) as http:
        lines, flow = await voucher_round(st, http)
        assert flow.balanced and flow.duplicates == 0, lines
        assert (flow.sent, flow.delivered, flow.rejected, flow.dead) == (22, 15, 7, 0), lines
        assert "1/1/1/1" in lines[0] and "masked=10/10" in lines[1], lines
        vs = st.sims["voucher"]
        assert vs.sim.book.bad_signatures == 0
        hub = st.hub_url
        rng = random.Random(5)
        me, other = make_id_number(rng), make_id_number(rng)
        # callers: unsigned, signed by an unknown kiosk, with a wrong key
        assert (await http.post(f"{hub}/voucher/decode", json={"ec_qr": "x"})).status_code \
            == 401
        r = await http.post(f"{hub}/kiosk/query/balance", json={"certno": me},
                            auth=SignedAuth("ICBC-KIOSK-9999", "nope"))
        assert r.status_code == 401 and r.json()["refused"][0]["field"] == "X-Partner"
        r = await http.post(f"{hub}/kiosk/query/balance", json={"certno": me},
                            auth=SignedAuth("ICBC-KIOSK-0001", "wrong-key"))
        assert r.status_code == 401
        # a malformed voucher, money as a float, totals that do not add up: nothing stored
        r = await http.post(f"{hub}/voucher/decode", json={"ec_qr": "NHSAEC1.abc"},
                            auth=vs.medins_auth())
        assert r.status_code == 422 and r.json()["cause"] == "malformed"
        body = settlement_body("outpatient", vs.issuer.issue(me, "王伟"), me, "王伟", "BADF01")
        r = await http.post(f"{hub}/voucher/settlements", auth=vs.medins_auth(),
                            json=body | {"medfee_sumamt": 123.45})
        assert r.status_code == 422
        assert r.json()["refused"][0]["field"] == "medfee_sumamt", r.text
        assert "float" in r.json()["refused"][0]["reason"]
        r = await http.post(f"{hub}/voucher/settlements", auth=vs.medins_auth(),
                            json=body | {"medfee_sumamt": "999.99"})
        assert r.status_code == 422 and r.json()["refused"][0]["field"] == "medfee_sumamt"
        r = await http.get(f"{hub}/voucher/settlements/{HOSPITAL}/BADF01", auth=vs.medins_auth())
        assert r.status_code == 404
        # the same settlement three times at once, then again: one effect at core
        ok = body | {"setl_req_no": "ONCE01"}
        answers = await asyncio.gather(*(http.post(
            f"{hub}/voucher/settlements", json=ok, auth=vs.medins_auth()) for _ in range(3)))
        assert all(a.status_code in (200, 202) for a in answers), answers  # 200: done by then
        assert sum(1 for a in answers if not a.json().get("repeat")) == 1
        row = await wait_settled(st, http, HOSPITAL, "ONCE01")
        info = row["result"]["setlinfo"]
        assert row["status"] == "done" and (info["fund_pay_sumamt"], info["psn_pay"]) \
            == ("86.42", "37.03")  # fen-exact: 123.45 = 86.42 + 37.03
        again = await http.post(f"{hub}/voucher/settlements", json=ok, auth=vs.medins_auth())
        assert again.status_code == 200 and again.json()["status"] == "done"
        assert "*" in row["id_number"] and info["certno"] != me and "*" in info["certno"]
        assert vs.state.log.effects[f"setl:{HOSPITAL}:ONCE01"] == 1
        # the same voucher for another settlement: replayed; another's voucher: other_person
        r = await http.post(f"{hub}/voucher/settlements", auth=vs.medins_auth(),
                            json=ok | {"setl_req_no": "ONCE02"})
        assert r.status_code == 422 and r.json()["cause"] == "replayed"
        assert r.json()["refused"][0]["field"] == "ec_qr"
        r = await http.post(f"{hub}/voucher/settlements", auth=vs.medins_auth(), json=ok | {
            "setl_req_no": "ONCE03", "ec_qr": vs.issuer.issue(other, "李娜")})
        assert r.status_code == 422 and r.json()["cause"] == "other_person"
        assert r.json()["refused"][0]["field"] == "psn_cert_no"
        # core down for good: retried, then dead (DLQ), and the row says so
        ops = {"Authorization": "Bearer dev-ops"}

        async def dead_letters() -> set[int]:
            r = await http.get(f"{hub}/admin/dead-letters", headers=ops,
                               params={"partner": "core_voucher", "status": "dead"})
            return {d["id"] for d in r.json()["items"]}

        earlier = await dead_letters()  # the round's rejection by core
        vs.state.faults[:] = [Fault(kind="http_5xx", operation="settle")]
        down = settlement_body("pharmacy", vs.issuer.issue(other, "李娜"), other, "李娜",
                               "DOWN01")
        assert (await http.post(f"{hub}/voucher/settlements", json=down,
                                auth=vs.medins_auth())).status_code == 202
        row = await wait_settled(st, http, down["fixmedins_code"], "DOWN01")
        assert row["status"] == "dead" and row["reason_field"] == "core_voucher"
        vs.state.faults.clear()
        # ops re-drive it from the DLQ once core is back: done, one effect
        for _ in range(50):
            letters = sorted(await dead_letters() - earlier)
            if letters:
                break
            await asyncio.sleep(0.1)
        assert len(letters) == 1
        r = await http.post(f"{hub}/admin/dead-letters/retry", headers=ops,
                            json={"ids": letters, "reason": "core is back"})
        assert r.status_code == 200 and r.json()["done"] == letters, r.text
        assert await wait_for(lambda: vs.state.log.effects[
            f"setl:{down['fixmedins_code']}:DOWN01"] == 1, 10)
        row = await wait_settled(st, http, down["fixmedins_code"], "DOWN01")
        for _ in range(50):
            if row["status"] == "done":
                break
            await asyncio.sleep(0.1)
            row = await wait_settled(st, http, down["fixmedins_code"], "DOWN01")
        assert row["status"] == "done"
        # 医税平台: an insutype it does not carry is refused, nothing sent
        r = await http.post(f"{hub}/voucher/medtax", auth=st.partner_auth("core"), json={
            "records": [{"record_no": "MTX001", "insutype": "310", "certno": me,
                         "psn_name": "王伟", "cashym": "202611", "clct_sumamt": "1.00"},
                        {"record_no": "MTX002", "insutype": "410", "certno": me,
                         "psn_name": "王伟", "cashym": "202611", "clct_sumamt": "1.00"}]})
        assert r.status_code == 422
        assert r.json()["refused"] == [{"field": "records[1].insutype", "reason": (
            "险种 410 is not carried by the 医税平台: only 310 职工基本医疗, 510 生育, "
            "390 城乡居民基本医疗")}]
        assert not any(k.startswith("medtax:MTX") for k in vs.state.log.effects)
        # kiosk business repeated with the same ref: one effect; its result is readable
        kiosk = vs.kiosk_auth()
        for _ in range(2):
            r = await http.post(f"{hub}/kiosk/business/change/REF0001",
                                json={"certno": me, "mob": "13912345678"}, auth=kiosk)
            assert r.status_code in (200, 202), r.text
        await wait_for(
            lambda: any(k.startswith(f"kiosk:V2102:{me}") for k in vs.state.log.effects), 10)
        assert sum(1 for k in vs.state.log.effects if k.startswith(f"kiosk:V2102:{me}")) == 1
        r = await http.get(f"{hub}/kiosk/business/REF0001", auth=vs.kiosk_auth())
        assert r.status_code == 200 and r.json()["status"] == "done"
        r = await http.post(f"{hub}/kiosk/business/enroll/REF0002", auth=vs.kiosk_auth(),
                            json={"certno": me, "psn_name": "王伟", "mob": "123"})
        assert r.status_code == 422 and r.json()["refused"][0]["field"] == "mob"
        # WeChat: masked answers; rate-limited per account (429, Retry-After), not others
        r = await http.post(f"{hub}/wechat/query/person", json={"certno": me},
                            auth=vs.wechat_auth("wx-acct-0002"))
        assert r.status_code == 200 and me not in r.text and "*" in r.text
        codes = []
        for _ in range(14):  # 6 a minute: a 429 within two windows' worth
            r = await http.post(f"{hub}/wechat/query/balance", json={"certno": me},
                                auth=vs.wechat_auth("wx-acct-0002"))
            codes.append(r.status_code)
            if r.status_code == 429:
                assert 1 <= int(r.headers["Retry-After"]) <= 60
                break
        assert codes[-1] == 429 and codes.count(200) <= 12, codes
        r = await http.post(f"{hub}/wechat/query/balance", json={"certno": me},
                            auth=vs.wechat_auth("wx-acct-0003"))
        assert r.status_code == 200 and r.json()["result"]["balc"] == "1234.56"

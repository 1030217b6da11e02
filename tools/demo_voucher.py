"""F13 电子凭证 in the demo: vouchers decoded and settled by institutions, the 省级凭证库
upload, the 医税平台 records, the kiosk's business and the channels' queries.

``voucher_round(st, http)`` runs on a ``simulators.harness`` stack and returns its lines
and the ``Flow`` counted at the simulators (``st.sims["voucher"]``):

- ``sent``: every settlement, kiosk business request, person upload and 医税平台 record
  an originator sent (a repeat of one already sent is not counted again: it is the
  replay the partner must not turn into a second effect);
- ``delivered``: settlements, business requests, persons and records the simulated
  partners show as effects (``setl:``, ``kiosk:``, ``psn:``, ``medtax:``);
- ``rejected``: refused at the hub's door (forged, expired, replayed, other person,
  医税平台 insutype, bad fields: 422 with field and reason) or by core (a business
  rejection switched on, the row says ``rejected``);
- the rest is dead; ``duplicates``: effects at the simulators beyond one per key.

Failure switches: core answers 503 twice (retried, one effect), then rejects one
settlement; the 凭证库 answers 503 once and ``duplicate`` once.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import httpx

from contracts.ids import make_id_number
from simulators.harness import Stack
from simulators.simkit import Fault
from tools.demo_flows import Flow, extra_effects, wait_for

__all__ = ["person_record", "settlement_body", "voucher_round", "wait_settled"]

HOSPITAL, PHARMACY = "H32010000011", "P32010000012"
_NAMES = ("王伟", "李娜", "张敏", "刘洋", "陈静", "杨磊", "黄艳", "赵军")


def settlement_body(kind: str, qr: str, certno: str, name: str, no: str,
                    lines: tuple[str, ...] = ("100.00", "23.45")) -> dict[str, Any]:
    """An institution's settlement by voucher: fee lines adding up to the total."""
    total = sum(int(x.replace(".", "")) for x in lines)
    return {"kind": kind, "fixmedins_code": PHARMACY if kind == "pharmacy" else HOSPITAL,
            "setl_req_no": no, "ec_qr": qr, "psn_cert_no": certno, "psn_name": name,
            "mdtrt_id": f"MD{no}"[:30] if kind == "discharge" else "",
            "medfee_sumamt": f"{total // 100}.{total % 100:02d}",
            "details": [{"code": f"X{i:04d}", "name": "诊疗项目", "qty": 1, "amount": a}
                        for i, a in enumerate(lines)]}


def person_record(rng: random.Random, certno: str, name: str, version: int = 1
                  ) -> dict[str, Any]:
    """One person's basic info as core pushes it for the 省级凭证库."""
    return {"psn_no": f"3201{certno[6:14]}{certno[14:17]}", "certno": certno,
            "psn_name": name, "gend": "1" if int(certno[16]) % 2 else "2",
            "brdy": f"{certno[6:10]}-{certno[10:12]}-{certno[12:14]}",
            "insuplc_admdvs": "320100", "insutype": rng.choice(("310", "390")),
            "psn_type": "11", "mob": f"139{rng.randrange(10**7, 10**8)}", "version": version}


async def wait_settled(st: Stack, http: httpx.AsyncClient, code: str, no: str,
                       timeout: float = 30.0) -> dict[str, Any]:
    """A settlement's row once it left ``queued`` (or as it is at ``timeout``)."""
    vs = st.sims["voucher"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        r = await http.get(f"{st.hub_url}/voucher/settlements/{code}/{no}",
                           auth=vs.medins_auth())
        row: dict[str, Any] = r.json() if r.status_code == 200 else {}
        if row.get("status") not in (None, "queued") or loop.time() >= deadline:
            return row
        await asyncio.sleep(0.1)


async def voucher_round(st: Stack, http: httpx.AsyncClient, *, seed: int = 13
                        ) -> tuple[list[str], Flow]:
    vs = st.sims.get("voucher")
    if vs is None:
        return ["F13 电子凭证: the stack has no F13 simulators"], Flow()
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:6].upper()
    before = vs.state.log.snapshot()
    hub = st.hub_url
    people = [(make_id_number(rng), _NAMES[i]) for i in range(6)]
    sent = refused = 0
    refusals: dict[str, int] = {}

    async def settle(body: dict[str, Any]) -> httpx.Response:
        return await http.post(f"{hub}/voucher/settlements", json=body, auth=vs.medins_auth())

    # 接口一/二: decode a genuine voucher, the person masked
    qr0 = vs.issuer.issue(*people[0])
    r = await http.post(f"{hub}/voucher/decode", json={"ec_qr": qr0}, auth=vs.medins_auth())
    decoded = r.status_code == 200 and "*" in r.json()["voucher"]["idNo"]
    # 接口三/四/五: three settlements, one repeated (one effect)
    nos: list[tuple[str, str]] = []
    for i, kind in enumerate(("outpatient", "discharge", "pharmacy")):
        certno, name = people[i]
        body = settlement_body(kind, qr0 if i == 0 else vs.issuer.issue(certno, name),
                               certno, name, f"{run}S{i}")
        sent += 1
        r = await settle(body)
        if r.status_code == 202:
            nos.append((body["fixmedins_code"], body["setl_req_no"]))
        else:
            refused += 1
        if i == 0:
            await settle(body)  # the institution's repeat after a lost answer
    # forged, expired, replayed, another person's: refused with the reason
    certno, name = people[3]
    bad = {"forged": settlement_body("outpatient", vs.issuer.forge(certno, name), certno,
                                     name, f"{run}F1"),
           "expired": settlement_body("outpatient", vs.issuer.issue(certno, name, ttl_s=60,
                                                                    age_s=600),
                                      certno, name, f"{run}F2"),
           "replayed": settlement_body("outpatient", qr0, *people[0], f"{run}F3"),
           "other_person": settlement_body("outpatient", vs.issuer.issue(certno, name),
                                           *people[4], f"{run}F4")}
    for cause, body in bad.items():
        sent += 1
        r = await settle(body)
        got = r.json().get("cause") if r.status_code == 422 else None
        refusals[cause] = int(got == cause)
        refused += int(r.status_code == 422)
    # failure switches: core 503 twice (retried), then one business rejection
    vs.state.faults[:] = [Fault(kind="http_5xx", count=2, operation="settle")]
    certno, name = people[5]
    body = settlement_body("outpatient", vs.issuer.issue(certno, name), certno, name,
                           f"{run}R1")
    sent += 1
    if (await settle(body)).status_code == 202:
        nos.append((body["fixmedins_code"], body["setl_req_no"]))
    await wait_settled(st, http, body["fixmedins_code"], body["setl_req_no"])
    vs.state.faults[:] = [Fault(kind="reject", count=1, operation="settle", code="E201",
                                text="就诊信息不存在")]
    body = settlement_body("discharge", vs.issuer.issue(certno, name), certno, name,
                           f"{run}R2")
    sent += 1
    if (await settle(body)).status_code == 202:
        nos.append((body["fixmedins_code"], body["setl_req_no"]))
    rows = [await wait_settled(st, http, code, no) for code, no in nos]
    vs.state.faults.clear()
    core_rejected = sum(1 for row in rows if row.get("status") == "rejected")
    # 省级凭证库: 5 persons in real time (503 once, a duplicate once), the batch again
    persons = [person_record(rng, c, n) for c, n in people[:5]]
    vs.state.faults[:] = [Fault(kind="http_5xx", count=1, operation="upload"),
                          Fault(kind="duplicate", count=1, operation="upload")]
    r = await http.post(f"{hub}/voucher/persons", json={"records": persons},
                        auth=st.partner_auth("core"))
    sent += len(persons)
    await http.post(f"{hub}/voucher/persons", json={"records": persons},
                    auth=st.partner_auth("core"))
    bad_person = dict(persons[0], certno="320102199001011234", version=2)
    r = await http.post(f"{hub}/voucher/persons", json={"records": [bad_person]},
                        auth=st.partner_auth("core"))
    sent += 1
    refused += int(r.status_code == 422)
    # 医税平台: 310, 510, 390 carried; 392 refused with the field and reason
    records = [{"record_no": f"{run}M{i}", "insutype": t, "certno": people[i][0],
                "psn_name": people[i][1], "cashym": "202611", "clct_sumamt": "512.40"}
               for i, t in enumerate(("310", "510", "390", "392"))]
    r = await http.post(f"{hub}/voucher/medtax", json={"records": records[:3]},
                        auth=st.partner_auth("core"))
    sent += 3
    r = await http.post(f"{hub}/voucher/medtax", json={"records": records[3:]},
                        auth=st.partner_auth("core"))
    sent += 1
    refused += int(r.status_code == 422 and r.json()["refused"][0]["field"]
                   == "records[0].insutype")
    # 工行一体机: the three business functions; the five queries at the kiosk and WeChat
    certno, name = people[1]
    business = {"enroll": {"certno": certno, "psn_name": name, "mob": "13912345678",
                           "live_addr": "南京市玄武区中山路1号"},
                "change": {"certno": certno, "mob": "13987654321"},
                "reprint": {"certno": certno, "year": 2026}}
    for b, data in business.items():
        sent += 1
        r = await http.post(f"{hub}/kiosk/business/{b}/{run}K{b}", json=data,
                            auth=vs.kiosk_auth())
        refused += int(r.status_code >= 400)
    answered = 0
    for channel, auth in (("kiosk", vs.kiosk_auth()), ("wechat", vs.wechat_auth())):
        for q in ("person", "contributions", "balance", "settlements", "enrollment"):
            r = await http.post(f"{hub}/{channel}/query/{q}", json={"certno": certno},
                                auth=auth)
            answered += int(r.status_code == 200 and certno not in r.text)
    prefixes = ("setl:", "kiosk:", "psn:", "medtax:")
    await wait_for(lambda: sum(vs.state.log.since(before, prefixes).values())
                   >= len(nos) - core_rejected + 3 + 5 + 3, 30)
    vs.state.faults.clear()
    effects = vs.state.log.since(before, prefixes)
    delivered = len(effects)
    rejected = refused + core_rejected
    flow = Flow(sent=sent, delivered=delivered, rejected=rejected,
                failed=max(0, sent - delivered - rejected), duplicates=extra_effects(effects))
    count = {p: sum(1 for k in effects if k.startswith(p)) for p in prefixes}
    lines = [
        f"  电子凭证 decode: {'ok (masked)' if decoded else 'FAILED'}; settlements at core="
        f"{count['setl:']} (one repeated, 2 core 503s retried, {core_rejected} rejected by "
        f"core); refused forged/expired/replayed/other person="
        f"{'/'.join(str(v) for v in refusals.values())}",
        f"  省级凭证库 persons={count['psn:']} (503 once, duplicate once, batch sent twice); "
        f"医税平台 records={count['medtax:']} (392 refused); kiosk business="
        f"{count['kiosk:']}; channel queries answered masked={answered}/10",
    ]
    return lines, flow

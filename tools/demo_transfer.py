"""F9 转移接续 in the demo: applications from the national platform (pulled, with a page that
repeats one and a platform that fails now and then), from a window (one to a 未联网地区:
a 参保凭证 PDF) and from 我的南京 (one blocked by arrears), through one flow.

``transfer_round(st, http)`` returns its lines and the ``Flow`` counted at the simulators:
``sent`` = distinct applications (platform feed + window + 我的南京), ``delivered`` = the
asker told a success (the platform holds 11/21; core holds the window's decision; 我的南京
got ``completed``), ``rejected`` = told a refusal with the reason (the platform holds 12/91;
a window entry answered 422; 我的南京 got ``rejected``); the rest is dead. ``duplicates``
= extra effects at the platform (T2402), core (H4201) and 我的南京.
"""

from __future__ import annotations

import random
from datetime import date

import httpx

from contracts.ids import make_id_number
from simulators.channels import submit
from simulators.harness import Stack
from simulators.simkit import Fault
from simulators.transfer import TransferSims, make_application
from tools.demo_flows import Flow, extra_effects, http_outcome, wait_for

__all__ = ["CASEWORKER", "transfer_round"]

CASEWORKER = {"Authorization": "Bearer dev-caseworker"}
_OK, _REFUSED = {"11", "21", "13"}, {"12", "91"}


def _person(rng: random.Random, st: Stack, arrears: int = 0) -> str:
    who = make_id_number(rng, born=date(1984, 3, 9), area="320106")
    st.tax_sim.book.arrears[who] = arrears
    return who


async def transfer_round(st: Stack, http: httpx.AsyncClient, *, n: int = 8, seed: int = 9
                         ) -> tuple[list[str], Flow]:
    sims: TransferSims | None = st.sims.get("transfer")
    if sims is None:
        return ["F9 转移接续: the stack has no transfer platform simulator"], Flow()
    rng = random.Random(seed)
    tag = f"{seed}{rng.randrange(10**6):06d}"
    before = (sims.state.log.snapshot(), st.core_state.log.snapshot(),
              st.channel_state.log.snapshot())
    feed: list[str] = []
    for i in range(n):  # every 4th owes tax, every 3rd comes in, the 7th has a bad ID
        no = f"ZY{tag}{i:04d}"
        direction = "in" if i % 3 == 2 else "out"
        item = make_application(rng, no, direction=direction,
                                id_number=_person(rng, st, 150_000 if i % 4 == 1 else 0))
        if i == 6:
            item["certno"] = item["certno"][:-1] + ("0" if item["certno"][-1] != "0" else "1")
        feed.append(no)
        sims.book.add(item)
    sims.state.faults[:] = [Fault(kind="reject", operation="T2401", count=1,
                                  code="BUSY", text="平台繁忙"),
                            Fault(kind="duplicate", operation="T2401", count=1),
                            Fault(kind="http_5xx", operation="T2402", count=2)]
    pulls = []
    for _ in range(3):  # the first is refused by the platform (BUSY); the cursor waits
        r = await http.post(f"{st.hub_url}/admin/transfers/pull", headers=CASEWORKER)
        pulls.append(r.json())
    # the window: a 转出 to a 未联网地区 (参保凭证), and an entry with a bad ID
    window_no = f"CK{tag}0001"
    offline = {"application_no": window_no, "id_number": _person(rng, st), "name": "孙立新",
               "source_division": "320102", "target_division": "542521",
               "apply_date": "2026-11-20",
               "periods": [{"begin_month": "201801", "end_month": "202610"}]}
    r1 = await http.post(f"{st.hub_url}/admin/transfers", json=offline, headers=CASEWORKER)
    good = str(offline["id_number"])
    bad = offline | {"application_no": f"CK{tag}0002",  # a wrong check character
                     "id_number": good[:17] + ("0" if good[17] != "0" else "1")}
    r2 = await http.post(f"{st.hub_url}/admin/transfers", json=bad, headers=CASEWORKER)
    window = [(window_no, r1.status_code), (bad["application_no"], r2.status_code)]
    # 我的南京: one ready, one owing tax
    cfg = st.settings.channels["my_nanjing"]
    base = {"unit_credit_code": "91320106R8JM88BRJM", "name": "孙立新", "phone": "13851700005",
            "target_division": "310104", "stop_date": "2026-11-30"}
    channel_ids = []
    for i, owes in enumerate((0, 123_456)):
        r = await submit(http, st.hub_url, "my_nanjing", cfg, "transfer_out",
                         f"TR{tag}{i}", base | {"id_number": _person(rng, st, owes)})
        channel_ids.append(r.json().get("application_id", ""))
    book, inbox = sims.book, st.inbox
    await wait_for(lambda: all(book.status_of(no) for no in feed)
                   and all(inbox.status_of(a) for a in channel_ids if a)
                   and window_no in st.store.transfers, 60)
    platform_codes = [book.status_of(no) for no in feed]
    delivered = sum(1 for c in platform_codes if c in _OK)
    rejected = sum(1 for c in platform_codes if c in _REFUSED)
    core_decided = st.store.transfers.get(window_no, [{}])[-1].get("stas")
    delivered += int(core_decided in _OK)
    rejected += sum(1 for _, code in window if http_outcome(code) == "rejected")
    results = [inbox.status_of(a) for a in channel_ids]
    delivered += results.count("completed")
    rejected += results.count("rejected")
    sent = len(feed) + len(window) + len(channel_ids)
    platform = sims.state.log.since(before[0], "status:")
    core_now = st.core_state.log.since(before[1], "H4201:")
    channel_now = st.channel_state.log.since(before[2])
    duplicates = extra_effects(platform) + extra_effects(core_now) + extra_effects(channel_now)
    cert = await http.get(f"{st.hub_url}/admin/transfers/{window_no}/certificate",
                          headers=CASEWORKER)
    flow = Flow(sent=sent, delivered=delivered, rejected=rejected,
                failed=max(0, sent - delivered - rejected), duplicates=duplicates)
    new = sum(int(p.get("new") or 0) for p in pulls)
    dup = sum(int(p.get("duplicates") or 0) for p in pulls)
    pdf = f"PDF {len(cert.content)} bytes" if cert.status_code == 200 else cert.status_code
    lines = [
        f"  转移接续 pulls: {len(pulls)} (first refused by the platform: "
        f"{pulls[0].get('error') or 'no'}), new={new} seen again={dup} "
        f"refused={sum(int(p.get('refused') or 0) for p in pulls)}",
        f"  转移接续 platform statuses={sum(platform.values())} core H4201={sum(core_now.values())}"
        f" 我的南京={results} window={[c for _, c in window]} 参保凭证={pdf}",
    ]
    return lines, flow


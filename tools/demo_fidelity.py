"""The demo's fidelity round (issue 10): the seed's rules, each counted at the simulators.

    出生一件事 (seed 2555)     a paid 准新生儿 moves the newborn to next year, else this year
    退休一件事 (2544)          a normal 310 contribution this month starts flexible next month
    新生儿 (1750-1770)         the mother's 准新生儿 is stopped first; 参保日期 = birth date
    灵活终止 TX402 (2184)      tax says "not unique": the hub confirms, then terminates once
    统模式 initial load (2037) units and employees loaded in chunks, bad rows reported

What tax did is read from the tax simulator (its book and its effect log), never from
the hub's journal.
"""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from contracts.clock import today_beijing
from contracts.ids import People
from contracts.initial_load import LoadKind
from contracts.national import NationalRequest, make_msgid, now_cst
from services.initial_loads import load_file
from simulators.channels import submit
from simulators.harness import Stack
from simulators.student_batch import DEFAULT_DIFFICULTY_SUFFIXES
from simulators.tax import DEFAULT_REJECT_SUFFIXES
from simulators.tax_rules import NON_UNIQUE_SUFFIX
from tools.fixtures.generate_channels import ROOT as CHANNEL_FIXTURES
from tools.initial_load_cli import Sample, write_sample

__all__ = ["fidelity_round"]

Part = tuple[list[str], bool]
_RNG = random.Random()


def _payload(app_type: str, **change: Any) -> dict[str, Any]:
    body = json.loads((CHANNEL_FIXTURES / f"{app_type}.json").read_text(encoding="utf-8"))
    payload = {k: v for k, v in body["payload"].items() if k not in ("gender", "birth_date")}
    return payload | change


async def _apply(st: Stack, http: httpx.AsyncClient, channel: str, app_type: str,
                 payload: dict[str, Any]) -> dict[str, Any]:
    """Submit as the channel does; the result the channel simulator received."""
    r = await submit(http, st.hub_url, channel, st.settings.channels[channel], app_type,
                     f"fid-{_RNG.randrange(10**12)}", payload)
    if r.status_code != 202:
        return {"status": f"HTTP {r.status_code}"}
    app_id = r.json()["application_id"]
    for _ in range(300):
        if app_id in st.inbox.results:
            return dict(st.inbox.results[app_id])
        await asyncio.sleep(0.05)
    return {"status": "no callback"}


_SWITCHES: frozenset[str] = DEFAULT_REJECT_SUFFIXES | DEFAULT_DIFFICULTY_SUFFIXES | {
    NON_UNIQUE_SUFFIX}
"""The simulators' failure switches (the four digits before the check character)."""
_PEOPLE = People(_RNG, avoid=_SWITCHES)


def _person(born: date, *, male: bool) -> str:
    """A new person each call: one birth date, sex and area has only 500 sequence numbers,
    and a repeat (or a switch suffix: tax refusing or doubting the person) would make a
    part of the round report "not as the seed says" about one run in 250."""
    return _PEOPLE.new(born=born, male=male, area="320106")


async def _births(st: Stack, http: httpx.AsyncClient) -> Part:
    today = today_beijing()
    book = st.tax_sim.book
    mothers = [_person(date(1993, 3, 3), male=False) for _ in range(2)]
    babies = [_person(today - timedelta(days=30), male=True) for _ in range(2)]
    book.prenewborn_paid[(mothers[0], "1")] = True  # this year's 准新生儿 fee paid
    years = []
    for mother, baby in zip(mothers, babies, strict=True):
        await _apply(st, http, "gov_office", "birth_newborn_enroll", _payload(
            "birth_newborn_enroll", id_number=baby, mother_id_number=mother, birth_order=1))
        years.append(book.records.get(f"NewbornEnroll::{baby}", {}).get("cbnd"))
    want = [str(today.year + 1), str(today.year)]
    return [f"  出生一件事 (2555): paid 准新生儿 -> tax enrolled for {years[0]}, none -> "
            f"{years[1]} (want {want[0]}, {want[1]})"], years == want


async def _retirements(st: Stack, http: httpx.AsyncClient) -> Part:
    today = today_beijing()
    month = f"{today:%Y%m}"
    nxt = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    people = [_person(date(1966, 2, 2), male=True) for _ in range(2)]
    st.tax_sim.book.pay(people[0], month)  # a normal 职工医保 (310) contribution this month
    starts = []
    for who in people:
        await _apply(st, http, "gov_office", "retirement_flexible_enroll",
                     _payload("retirement_flexible_enroll", id_number=who))
        starts.append(st.tax_sim.book.records.get(f"FlexibleEnroll::{who}", {}).get("ksjfny"))
    want = [f"{nxt:%Y%m}", month]
    return [f"  退休一件事 (2544): 310 paid this month -> tax starts {starts[0]}, none -> "
            f"{starts[1]} (want {want[0]}, {want[1]})"], starts == want


async def _newborn(st: Stack, http: httpx.AsyncClient) -> Part:
    book = st.tax_sim.book
    born = today_beijing() - timedelta(days=20)
    mother, baby = _person(date(1995, 5, 5), male=False), _person(born, male=False)
    stops0 = sum(n for k, n in st.tax_state.log.effects.items() if k.startswith("PreNewbornStop"))
    pre = await _apply(st, http, "my_nanjing", "pre_newborn_enroll",
                       _payload("pre_newborn_enroll", mother_id_number=mother, birth_order=1))
    result = await _apply(st, http, "my_nanjing", "newborn_enroll", _payload(
        "newborn_enroll", id_number=baby, mother_id_number=mother))
    stops = sum(n for k, n in st.tax_state.log.effects.items()
                if k.startswith("PreNewbornStop")) - stops0
    record = book.records.get(f"NewbornEnroll::{baby}", {})
    stopped = book.prenewborns.get((mother, "1"), {}).get("status") == "2"
    ok = (pre.get("status"), result.get("status")) == ("completed", "completed") and \
        stops == 1 and stopped and record.get("cbrq") == born.isoformat()
    return [f"  新生儿 (1750-1770): 准新生儿 {pre.get('status')}, then the newborn "
            f"{result.get('status')} in {len(result.get('parts', []))} steps: tax stopped the "
            f"准新生儿 {stops}x, enrolled the newborn with 参保日期 {record.get('cbrq')} "
            f"(birth {born})"], ok


async def _identity(st: Stack, http: httpx.AsyncClient) -> Part:
    """TX402: a termination tax cannot place is held, confirmed, and re-driven once."""
    book = st.tax_sim.book
    person = next(iter(st.store.records["flexible"].values()))
    who = person["id_number"]
    book.persons[("flexible", who)] = {"status": "active", "jcybqh": person["community"],
                                       "xm": person["name"], "cbnd": ""}
    book.not_unique.add(who)
    before = st.tax_state.log.snapshot()
    req = NationalRequest(infno="H2204", msgid=make_msgid("NJYBCORE0001", now_cst(), 7402),
                          input={"data": {"certno": who, "psn_name": person["name"],
                                          "stop_date": today_beijing().isoformat(),
                                          "stop_rea": "01"}})
    r = await http.post(f"{st.hub_url}/partners/core/events",
                        json=req.model_dump(mode="json", exclude_none=True),
                        auth=st.partner_auth("core"))
    counts: dict[str, int] = {}
    for _ in range(200):
        window = st.tax_state.log.since(before)
        counts = {op: sum(n for k, n in window.items() if k.startswith(op + ":"))
                  for op in ("FlexibleIdentityConfirm", "FlexibleTerminate")}
        if counts["FlexibleTerminate"]:
            break
        await asyncio.sleep(0.1)
    cases = (await http.get(f"{st.hub_url}/admin/confirmations?status=all",
                            headers={"Authorization": "Bearer dev-readonly"})).json()
    ok = r.status_code == 200 and counts == {"FlexibleIdentityConfirm": 1,
                                             "FlexibleTerminate": 1}
    return [f"  灵活终止 TX402 (2184): tax refused (not unique) -> the hub confirmed the "
            f"identity {counts.get('FlexibleIdentityConfirm')}x and re-drove the termination "
            f"{counts.get('FlexibleTerminate')}x; cases {cases.get('counts')}"], ok


async def _initial_load(st: Stack) -> Part:
    """统模式 initial load: 40 units (2 bad), then 300 employees of them (6 bad)."""
    out = Path(tempfile.mkdtemp(prefix="demo-initial-load-"))
    units = write_sample("unit", out / "units.csv", 40, bad=2, seed=_RNG.randrange(10**6))
    good_units = [r["统一社会信用代码"] for i, r in enumerate(units.rows)
                  if i + 2 not in units.bad_rows]
    staff = write_sample("employee", out / "staff.csv", 300, bad=6, units=good_units[:10],
                         seed=_RNG.randrange(10**6))
    before = st.tax_state.log.snapshot()
    lines, ok = [], True
    plan: tuple[tuple[LoadKind, Sample, int], ...] = (("unit", units, 38),
                                                       ("employee", staff, 294))
    for kind, sample, want in plan:
        summary = await load_file(kind, sample.path, out / kind, tax=st.tax_url)
        c = summary.counts()
        window = st.tax_state.log.since(before)
        prefix = "InitialLoadUnit:" if kind == "unit" else "InitialLoadEmployee:"
        at_tax = sum(n for k, n in window.items() if k.startswith(prefix))
        dups = sum(n - 1 for k, n in window.items() if k.startswith(prefix) and n > 1)
        lines.append(f"  统模式 initial load (2037-2059) {kind}: {c['rows']} rows, "
                     f"{c['invalid']} invalid (reported by row), {c['chunks']} chunks -> tax "
                     f"loaded {at_tax}, duplicates {dups}")
        ok = ok and at_tax == want and dups == 0
    return lines, ok


async def fidelity_round(st: Stack, http: httpx.AsyncClient) -> Part:
    """Issue 10's items 1, 2, 3, 8 and 12 as a caseworker would see them."""
    lines: list[str] = ["  fidelity (the seed's rules; counted at tax):"]
    ok = True
    for part in (_births(st, http), _retirements(st, http), _newborn(st, http),
                 _identity(st, http), _initial_load(st)):
        got, fine = await part
        lines += [f"{line}{'' if fine else '  <- NOT AS THE SEED SAYS'}" for line in got]
        ok = ok and fine
    return lines, ok

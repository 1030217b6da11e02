"""The seed's F1 business rules end to end, both branches of each: applications go through
the real hub (HTTP door, RabbitMQ, Redis, SQLite) to the core and tax simulators; what tax
received is read back from the tax simulator's book, the result is counted at the channel
simulator. Readings of the seed: contracts/CHANNEL_RULES.md."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from config.settings import load_settings
from contracts.channels import CollectionPeriods
from contracts.clock import today_beijing
from contracts.ids import People
from simulators.channels import submit
from simulators.core import CoreStore
from simulators.harness import fast_policies, running_stack
from tools.fixtures.generate_channels import ROOT

pytestmark = pytest.mark.integration

RNG = random.Random()


PEOPLE = People(RNG)


def person(born: date, *, male: bool, area: str = "320106") -> str:
    return PEOPLE.new(born=born, male=male, area=area)


def fixture(app_type: str, **change: Any) -> dict[str, Any]:
    body = json.loads((ROOT / f"{app_type}.json").read_text(encoding="utf-8"))
    payload = {k: v for k, v in body["payload"].items() if k not in ("gender", "birth_date")}
    return {k: v for k, v in (payload | change).items() if v is not ...}


def _stack(**overrides: Any) -> Any:
    s = load_settings()
    store = CoreStore.seed(1, 2, rng_seed=RNG.randrange(10**9))
    return running_stack(s, store=store, overrides=fast_policies(s) | overrides)


async def apply(st: Any, http: httpx.AsyncClient, channel: str, app_type: str,
                payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Submit, wait for the channel simulator to get the result; (result, application)."""
    r = await submit(http, st.hub_url, channel, st.settings.channels[channel], app_type,
                     f"rule-{RNG.randrange(10**12)}", payload)
    assert r.status_code == 202, r.text
    app_id = r.json()["application_id"]
    for _ in range(400):
        if app_id in st.inbox.results:
            app = await st.hub.deps.applications.get(app_id)
            # the hub marks it completed right after the channel answered: wait for that
            if app is not None and app["status"] in ("completed", "rejected"):
                return st.inbox.results[app_id], app
        await asyncio.sleep(0.05)
    raise AssertionError(f"{app_type}: no result at the channel for {app_id}")


def at_tax(st: Any, operation: str, id_number: str) -> dict[str, str]:
    """The body tax accepted for ``operation`` of this person (wire names)."""
    return st.tax_sim.book.records[f"{operation}::{id_number}"]  # type: ignore[no-any-return]


def refused_fields(r: httpx.Response) -> dict[str, str]:
    return {e["field"]: e["msg"] for e in r.json()["errors"]}


# ---------------------------------------------------------------- 出生一件事 (seed 2555)


async def test_birth_enrolls_next_year_only_after_this_years_prenewborn_fee() -> None:
    today = today_beijing()
    year = today.year
    born = today - timedelta(days=40)
    mothers = [person(date(1993, 3, 3), male=False) for _ in range(4)]
    babies = [person(born, male=bool(i % 2)) for i in range(4)]
    async with _stack() as st, httpx.AsyncClient(timeout=10) as http:
        book = st.tax_sim.book
        # A: the second child's own 准新生儿 record, paid this year -> next year
        book.prenewborn_paid[(mothers[0], "2")] = True
        # B: only the FIRST child's record is paid; this is the second -> this year
        book.prenewborn_paid[(mothers[1], "1")] = True
        # C: a 准新生儿 enrolled through 我的南京 but not paid (tax answers amount 0)
        result, _ = await apply(st, http, "my_nanjing", "pre_newborn_enroll",
                                fixture("pre_newborn_enroll", mother_id_number=mothers[2],
                                        birth_order=1))
        assert result["status"] == "completed", result
        assert book.prenewborns[(mothers[2], "1")]["paid"] is False
        # D: no 准新生儿 record at all -> this year
        cases = [(mothers[0], 2, babies[0], str(year + 1)),
                 (mothers[1], 2, babies[1], str(year)),
                 (mothers[2], 1, babies[2], str(year)),
                 (mothers[3], 1, babies[3], str(year))]
        for mother, order, baby, want in cases:
            result, app = await apply(st, http, "gov_office", "birth_newborn_enroll", fixture(
                "birth_newborn_enroll", id_number=baby, mother_id_number=mother,
                birth_order=order))
            assert (result["status"], app["status"]) == ("completed", "completed"), result
            assert at_tax(st, "NewbornEnroll", baby)["cbnd"] == want, (order, want)
        assert st.channel_state.log.summary()["effects"] == len(cases) + 1


async def test_birth_needs_its_birth_order_and_a_local_household() -> None:
    baby = person(today_beijing() - timedelta(days=40), male=True)
    async with _stack() as st, httpx.AsyncClient(timeout=10) as http:
        cfg = st.settings.channels["gov_office"]
        r = await submit(http, st.hub_url, "gov_office", cfg, "birth_newborn_enroll",
                         "rule-no-order", fixture("birth_newborn_enroll", id_number=baby,
                                                  birth_order=...))
        assert r.status_code == 422 and "payload.birth_order" in refused_fields(r), r.text
        r = await submit(http, st.hub_url, "gov_office", cfg, "birth_newborn_enroll",
                         "rule-not-local", fixture("birth_newborn_enroll", id_number=baby,
                                                   household_kind="3"))
        assert r.status_code == 422, r.text
        reason = refused_fields(r)["payload.household_kind"]
        assert "本市户籍" in reason and "非本市户籍" in reason
        # and the 本市户籍 one goes through
        result, _ = await apply(st, http, "gov_office", "birth_newborn_enroll",
                                fixture("birth_newborn_enroll", id_number=baby))
        assert result["status"] == "completed", result
        assert st.tax_state.log.summary()["effects"] == 1  # only the accepted one
        assert len(st.store.applications) == 1


# ------------------------------------------------- 新生儿 / 准新生儿 (seed 1750-1770, 2490)


async def test_a_newborn_converts_its_prenewborn_stopping_it_first_dated_from_birth() -> None:
    """Seed 1759: 准新生儿自动停保后参保. Tax refuses a NewbornEnroll while the mother's
    准新生儿 is still enrolled (TX507), so a completed conversion proves the stop reached
    tax first; the newborn's 参保日期 is its birth date, the 准新生儿's its enrollment day."""
    today = today_beijing()
    born = today - timedelta(days=40)
    mothers = [person(date(1993, 3, 3), male=False) for _ in range(3)]
    babies = [person(born, male=bool(i % 2)) for i in range(3)]
    async with _stack() as st, httpx.AsyncClient(timeout=10) as http:
        book = st.tax_sim.book
        for mother, order in ((mothers[0], 1), (mothers[2], 1), (mothers[2], 2)):
            result, _ = await apply(st, http, "my_nanjing", "pre_newborn_enroll", fixture(
                "pre_newborn_enroll", mother_id_number=mother, birth_order=order))
            assert result["status"] == "completed", result
            assert book.prenewborns[(mother, str(order))]["cbrq"] == today.isoformat()
        # A: the mother's only 准新生儿 -> stopped, then the newborn enrolled from birth
        result, app = await apply(st, http, "my_nanjing", "newborn_enroll", fixture(
            "newborn_enroll", id_number=babies[0], mother_id_number=mothers[0]))
        assert (result["status"], app["status"]) == ("completed", "completed"), result
        assert len(result["parts"]) == 2
        assert book.prenewborns[(mothers[0], "1")]["status"] == "2"
        enrolled = at_tax(st, "NewbornEnroll", babies[0])
        assert enrolled["cbrq"] == enrolled["csrq"] == born.isoformat()
        assert enrolled["tc"] == "1"
        # B: no 准新生儿 -> enrolled directly, nothing stopped
        result, app = await apply(st, http, "my_nanjing", "newborn_enroll", fixture(
            "newborn_enroll", id_number=babies[1], mother_id_number=mothers[1]))
        assert result["status"] == "completed" and len(result["parts"]) == 1, result
        # C: two 准新生儿 of one mother, no 胎次 given -> refused naming the field, and
        #    neither record is stopped
        result, app = await apply(st, http, "my_nanjing", "newborn_enroll", fixture(
            "newborn_enroll", id_number=babies[2], mother_id_number=mothers[2]))
        assert result["status"] == "rejected", result
        assert result["reason_field"] == "payload.birth_order", result
        assert [book.prenewborns[(mothers[2], o)]["status"] for o in "12"] == ["1", "1"]
        assert f"NewbornEnroll::{babies[2]}" not in book.records
        summary = st.tax_state.log.summary()
        assert summary["effects"] == 3 + 2 + 1 and not summary["duplicates"], summary


# ---------------------------------------------------------------- 退休一件事 (seed 2544)


async def test_retirement_starts_next_month_only_after_a_normal_310_contribution() -> None:
    today = today_beijing()
    month = f"{today:%Y%m}"
    nxt = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    people = [person(date(1966, 2, 2), male=True, area="320111") for _ in range(5)]
    async with _stack() as st, httpx.AsyncClient(timeout=10) as http:
        book = st.tax_sim.book
        book.pay(people[0], month)  # a normal 职工医保 (310) contribution this month
        # people[1]: nothing at tax
        book.pay(people[2], month, insutype="390")  # a resident's fee is not 职工医保
        book.pay(people[3], month, status="2")  # 310 but 欠缴, not normal
        book.persons[("employee", people[4])] = {"status": "active", "shxydm": "U1"}
        wants = [f"{nxt:%Y%m}", month, month, month, f"{nxt:%Y%m}"]
        for who, want in zip(people, wants, strict=True):
            result, _ = await apply(st, http, "gov_office", "retirement_flexible_enroll",
                                    fixture("retirement_flexible_enroll", id_number=who))
            assert result["status"] == "completed", result
            assert at_tax(st, "FlexibleEnroll", who)["ksjfny"] == want, (who, want)
        assert st.channel_state.log.summary()["effects"] == len(people)


# ---------------------------------------------------------------- 居民参保年度, 退役军人


@pytest.mark.parametrize("inside", [True, False], ids=["inside", "outside"])
async def test_resident_year_follows_the_collection_period_and_veterans_join_mid_year(
        inside: bool) -> None:
    today = today_beijing()
    year = today.year
    day = today if inside else today + timedelta(days=1)
    periods = CollectionPeriods(years={year + 1: (day, day)})
    assert (periods.collecting_for(today) is not None) is inside
    adults = [person(date(1980, 1, 1) + timedelta(days=i), male=True, area="320102")
              for i in range(4)]
    async with _stack(resident_collection=periods) as st, \
            httpx.AsyncClient(timeout=10) as http:
        result, _ = await apply(st, http, "my_nanjing", "resident_enroll",
                                fixture("resident_enroll", id_number=adults[0]))
        assert result["status"] == "completed", result
        sent = at_tax(st, "ResidentEnroll", adults[0])
        assert sent["cbnd"] == str(year + 1 if inside else year)
        assert "ztcbbz" not in sent and "cbksrq" not in sent
        # a 中途参保标志 (4 毕业后大学生): this year, from the day of enrollment
        result, _ = await apply(st, http, "online_hall", "resident_enroll",
                                fixture("resident_enroll", id_number=adults[1],
                                        midyear_flag="4"))
        assert result["status"] == "completed", result
        sent = at_tax(st, "ResidentEnroll", adults[1])
        assert (sent["cbnd"], sent["ztcbbz"], sent["cbksrq"]) == \
            (str(year), "4", today.isoformat())
        # 退役军人参保 from both channels: a mid-year resident enrollment, flag 1
        for channel, who in (("gov_office", adults[2]), ("hrss", adults[3])):
            result, _ = await apply(st, http, channel, "veteran_enroll",
                                    fixture("veteran_enroll", id_number=who))
            assert result["status"] == "completed", (channel, result)
            sent = at_tax(st, "ResidentEnroll", who)
            assert (sent["cbnd"], sent["ztcbbz"], sent["cbksrq"]) == \
                (str(year), "1", today.isoformat())
            assert ("flexible", who) not in st.tax_sim.book.persons
        assert st.channel_state.log.summary()["effects"] == 4

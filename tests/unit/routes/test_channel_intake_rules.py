"""The intake applies the seed's rules (routes.channel_rules) with tax's answers, the day the
application was received and the 集中征缴期 of the settings; every rule fixture replays."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from contracts.channels import CollectionPeriods
from contracts.envelope import HubMessage
from contracts.errors import BusinessRejected, ValidationFailed
from contracts.messages import APPLICATION
from retry.memo import TtlMemo
from routes.channels import decide, intake, received_on
from tests.support.fakes import FakeCore
from tools.fixtures.generate_channels import RULE_CASES, RULES, replay_rule, sample


class AnsweringTax:
    """Tax answering each query by operation (``rows``); every query is kept."""

    def __init__(self, rows: dict[str, list[dict[str, str]]] | None = None) -> None:
        self.rows = rows or {}
        self.queries: list[tuple[str, dict[str, Any]]] = []

    async def query(self, operation: str, req: Any, *, serial: str) -> list[dict[str, str]]:
        self.queries.append((operation, req.model_dump(exclude_none=True)))
        if operation == "QueryCommunity":
            return [{"community": req.community, "valid": "1"}]
        return [dict(r) for r in self.rows.get(operation, [])]

    async def submit(self, operation: str, req: Any, *, serial: str) -> Any:
        raise AssertionError("the intake never submits")

    async def enroll_employee(self, req: Any, *, serial: str) -> Any:
        raise AssertionError("the intake never submits")

    async def aclose(self) -> None:
        pass


class Applications:
    def __init__(self) -> None:
        self.status: dict[str, str] = {}

    async def set_status(self, app_id: str, status: str, **_: Any) -> bool:
        self.status[app_id] = status
        return True


@dataclass
class Settings:
    resident_collection: CollectionPeriods = field(default_factory=CollectionPeriods)


@dataclass
class World:
    tax: AnsweringTax = field(default_factory=AnsweringTax)
    core: FakeCore = field(default_factory=FakeCore)
    applications: Applications = field(default_factory=Applications)
    memo: TtlMemo = field(default_factory=TtlMemo)
    settings: Settings = field(default_factory=Settings)


def application(app_type: str, received: datetime, **change: Any) -> HubMessage:
    payload = dict(sample(app_type)["payload"]) | change
    payload = {k: v for k, v in payload.items() if v is not ...}
    return HubMessage(type=APPLICATION, source="channel.gov_office", target="core",
                      correlation_id="app-1", idempotency_key="k-app-1", created_at=received,
                      payload={"application_id": "app-1", "channel": "gov_office",
                               "type": app_type, "request_id": "r-1", "tax_operation": "",
                               "payload": payload})


def submitted(out: Any) -> dict[str, Any]:
    [msg] = out.outputs
    return msg.payload  # type: ignore[no-any-return]


NOV_24 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
JUN_15 = datetime(2026, 6, 15, 2, 0, tzinfo=UTC)


def test_the_day_is_the_beijing_day_the_application_was_received() -> None:
    late = datetime(2026, 8, 31, 16, 30, tzinfo=UTC)  # 2026-09-01 00:30 in Beijing
    assert received_on(application("resident_enroll", late)) == date(2026, 9, 1)


async def test_a_resident_enrolls_for_next_year_inside_the_collection_period() -> None:
    w = World()
    inside = submitted(await intake(application("resident_enroll", NOV_24), w))
    outside = submitted(await intake(application("resident_enroll", JUN_15), w))
    assert (inside["insure_year"], outside["insure_year"]) == ("2027", "2026")
    assert "midyear_flag" not in inside and "midyear_flag" not in outside
    late = datetime(2026, 8, 31, 16, 30, tzinfo=UTC)  # the period's first Beijing day
    assert submitted(await intake(application("resident_enroll", late), w))[
        "insure_year"] == "2027"


async def test_the_collection_period_comes_from_the_settings() -> None:
    w = World(settings=Settings(CollectionPeriods(default_start="12-01")))
    assert submitted(await intake(application("resident_enroll", NOV_24), w))[
        "insure_year"] == "2026"


async def test_a_veteran_is_enrolled_mid_year_from_the_day_received() -> None:
    out = await intake(application("veteran_enroll", NOV_24), World())
    data = submitted(out)
    assert out.outputs[0].type == "tax.resident.enroll"
    assert (data["insure_year"], data["midyear_flag"], data["insure_start_date"]) == \
        ("2026", "1", "2026-11-24")
    assert out.detail["midyear_flag"] == "1"  # the decision is in the journal's detail


async def test_a_redelivered_intake_decides_the_same_on_another_day(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The rules are dated by the application, so a redelivery keeps its submit's key."""
    import contracts.channels
    msg = application("resident_enroll", NOV_24)
    first = await intake(msg, World())
    monkeypatch.setattr(contracts.channels, "today_beijing", lambda: date(2027, 3, 2))
    again = await intake(msg.model_copy(update={"attempt": 3}), World())
    assert [o.idempotency_key for o in first.outputs] == \
        [o.idempotency_key for o in again.outputs]


async def test_birth_asks_tax_for_this_mother_and_birth_order_and_reads_the_amount() -> None:
    mother = sample("birth_newborn_enroll")["payload"]["mother_id_number"]
    paid = {"mother_id_number": mother, "birth_order": "2", "insure_year": "2026",
            "paid_amount": "38000", "status": "1"}
    w = World(AnsweringTax({"QueryPreNewbornPayment": [paid]}))
    assert submitted(await intake(application("birth_newborn_enroll", NOV_24,
                                              birth_order=2), w))["insure_year"] == "2027"
    [(_, asked)] = [q for q in w.tax.queries if q[0] == "QueryPreNewbornPayment"]
    assert asked == {"mother_id_number": mother, "birth_order": 2, "insure_year": "2026"}
    unpaid = World(AnsweringTax({"QueryPreNewbornPayment": [
        paid | {"paid_amount": "0", "status": "0"}]}))
    assert submitted(await intake(application("birth_newborn_enroll", NOV_24,
                                              birth_order=2), unpaid))["insure_year"] == "2026"


async def test_an_invalid_application_is_refused_before_tax_is_asked() -> None:
    w = World()
    with pytest.raises(ValidationFailed) as e:
        await intake(application("birth_newborn_enroll", NOV_24, birth_order=...), w)
    assert e.value.field == "payload.birth_order"
    with pytest.raises(ValidationFailed) as e:
        await intake(application("birth_newborn_enroll", NOV_24, household_kind="3"), w)
    assert e.value.field == "payload.household_kind"
    assert w.tax.queries == [] and w.core.applications == []


async def test_retirement_starts_next_month_only_after_a_normal_310_contribution() -> None:
    def rows(**change: str) -> dict[str, list[dict[str, str]]]:
        return {"QueryPaymentInfo": [{"period_start": "202611", "insutype": "310",
                                      "status": "1", "paid_amount": "60000"} | change]}

    async def start(tax_rows: dict[str, list[dict[str, str]]]) -> str:
        out = await intake(application("retirement_flexible_enroll", NOV_24),
                           World(AnsweringTax(tax_rows)))
        return str(submitted(out)["start_month"])

    assert await start(rows()) == "202612"
    assert await start({}) == "202611"
    assert await start(rows(insutype="390")) == "202611"
    assert await start(rows(status="2")) == "202611"


async def test_decide_passes_a_rule_refusal_on() -> None:
    async def arrears(operation: str, params: dict[str, Any]) -> list[dict[str, str]]:
        return [{"arrears": "5000"}] if operation == "QueryPersonArrears" else \
            [{"valid": "1"}]

    from contracts.channels import validate_payload
    model = validate_payload("retire", sample("retire")["payload"], today=date(2026, 11, 24))
    with pytest.raises(BusinessRejected) as e:
        await decide("retire", model, arrears, today=date(2026, 11, 24),
                     periods=CollectionPeriods())
    assert e.value.reason_code == "ARREARS"


@pytest.mark.parametrize("name", [c.name for c in RULE_CASES])
async def test_every_rule_fixture_replays(name: str) -> None:
    inp, expected = RULES / f"{name}.input.json", RULES / f"{name}.expected.json"
    assert await replay_rule(inp, expected) == []


def test_every_rule_fixture_file_is_a_case() -> None:
    names = {p.name.removesuffix(".input.json") for p in RULES.glob("*.input.json")}
    assert names == {c.name for c in RULE_CASES}
    assert {c.rule for c in RULE_CASES} == {"出生一件事", "新生儿参保登记", "退休一件事",
                                            "居民参保年度", "退役军人参保", "基本医疗保险转出"}


async def test_a_tampered_rule_fixture_fails_its_replay(tmp_path: Path) -> None:
    name = "101_birth_paid_prenewborn_enrolls_next_year"
    expected = tmp_path / "x.expected.json"
    expected.write_text((RULES / f"{name}.expected.json").read_text("utf-8").replace(
        '"insure_year": "2027"', '"insure_year": "2026"'), "utf-8")
    diff = await replay_rule(RULES / f"{name}.input.json", expected)
    assert any(line.startswith('-') and '"2026"' in line for line in diff)
    assert any(line.startswith('+') and '"2027"' in line for line in diff)

"""Channel applications (F1): fixtures, the seed's validation rules, and the way to tax."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import pytest
from pydantic import ValidationError

from contracts import clock
from contracts.channels import (
    APPLICATION_TYPES,
    CHANNEL_TYPES,
    MIDYEAR_FLAGS,
    RESIDENT_TYPES,
    SUBSIDY_TYPES,
    TAX_OPERATION,
    ApplicationRequest,
    CollectionPeriods,
    NewbornEnroll,
    PreNewbornEnroll,
    entity_of,
    midyear_flag_of,
    payload_json,
    temp_id_for,
    to_tax_payload,
    validate_payload,
)
from contracts.errors import ValidationFailed
from contracts.ids import id_check_char, make_id_number
from contracts.taxcat import model_for
from tools.fixtures import generate_channels
from tools.fixtures.generate_channels import REFERENCE_DAY, sample

TYPES = list(APPLICATION_TYPES)


def _id(born: date, *, male: bool, seed: int = 1) -> str:
    return make_id_number(random.Random(seed), born=born, male=male, area="320106")


def _bad_checksum(id_number: str) -> str:
    wrong = next(c for c in "0123456789X" if c != id_check_char(id_number[:17]))
    return id_number[:17] + wrong


def payload(app_type: str, **change: Any) -> dict[str, Any]:
    data: dict[str, Any] = dict(sample(app_type)["payload"])
    for k, v in change.items():
        if v is ...:
            data.pop(k, None)
        else:
            data[k] = v
    return data


def errors_of(app_type: str, data: dict[str, Any], today: date = REFERENCE_DAY
              ) -> list[tuple[str, str]]:
    with pytest.raises(ValidationFailed) as e:
        validate_payload(app_type, data, today=today)
    return e.value.errors


# ---------------------------------------------------------------- fixtures and the table


def test_fixtures_are_current() -> None:
    assert generate_channels.main(["--check"]) == 0, (
        "run .venv/bin/python -m tools.fixtures.generate_channels")


def test_every_type_has_a_fixture_file() -> None:
    names = {p.stem for p in generate_channels.ROOT.glob("*.json")}
    assert names == set(APPLICATION_TYPES)


@pytest.mark.parametrize("app_type", TYPES)
def test_every_fixture_is_a_valid_request(app_type: str) -> None:
    body = sample(app_type)
    req = ApplicationRequest.model_validate(body)
    assert req.type == app_type
    model = validate_payload(app_type, req.payload, today=REFERENCE_DAY)
    assert isinstance(model, APPLICATION_TYPES[app_type].model)
    assert model.model_config.get("frozen") and model.model_config.get("extra") == "forbid"


def test_channels_and_their_types_follow_the_seed() -> None:
    assert CHANNEL_TYPES == {
        "my_nanjing": ("newborn_enroll", "resident_enroll", "student_enroll",
                       "pre_newborn_enroll", "resident_maintain", "transfer_out",
                       "graduate_stop_batch"),
        "gov_office": ("employment_employee_enroll", "retirement_flexible_enroll",
                       "veteran_enroll", "birth_newborn_enroll"),
        "online_hall": ("resident_enroll", "student_enroll", "unit_maintain", "employee_enroll",
                        "flexible_enroll", "employee_suspend", "person_update"),
        "hrss": ("veteran_enroll", "employee_enroll", "flexible_enroll", "retire",
                 "unemployed_enroll"),
    }
    assert all(t.title and t.channels for t in APPLICATION_TYPES.values())


@pytest.mark.parametrize("app_type", TYPES)
def test_to_tax_payload_is_valid_for_its_catalogue_operation(app_type: str) -> None:
    model = validate_payload(app_type, sample(app_type)["payload"], today=REFERENCE_DAY)
    out = to_tax_payload(app_type, model, today=REFERENCE_DAY)
    assert out and all(op == TAX_OPERATION[app_type] for op, _ in out)
    for op, data in out:
        again = model_for(op).model_validate(data).model_dump(mode="json", exclude_none=True)
        assert again == data
    # the pipeline gets the payload as JSON from the message: the same result
    assert to_tax_payload(app_type, payload_json(model), today=REFERENCE_DAY) == out


def test_tax_payload_details() -> None:
    def one(app_type: str, **kw: Any) -> dict[str, Any]:
        model = validate_payload(app_type, sample(app_type)["payload"], today=REFERENCE_DAY)
        [(_, data)] = to_tax_payload(app_type, model, today=REFERENCE_DAY, **kw)
        return data

    assert one("student_enroll")["resident_type"] == "13"
    assert one("newborn_enroll")["resident_type"] == "16"
    assert one("transfer_out")["reason_code"] == "02"
    assert one("employee_suspend")["reason_code"] == "01"
    assert one("employee_enroll")["start_month"] == "202612"  # the payload's own
    assert one("employment_employee_enroll")["start_month"] == "202611"  # this month
    assert one("retirement_flexible_enroll", start_month="202612")["start_month"] == "202612"
    assert one("birth_newborn_enroll", insure_year="2027")["insure_year"] == "2027"
    assert one("pre_newborn_enroll")["insure_year"] == "2026"
    assert one("unit_maintain")["change_date"] == "2026-11-24"
    newborn = one("newborn_enroll")
    assert (newborn["gender"], newborn["birth_date"]) == ("2", "2026-03-01")  # derived
    batch = sample("graduate_stop_batch")["payload"]
    out = to_tax_payload("graduate_stop_batch", batch, today=REFERENCE_DAY)
    assert [op for op, _ in out] == ["ResidentSuspend"] * 3
    assert [d["id_number"] for _, d in out] == [p["id_number"] for p in batch["persons"]]


def test_to_tax_payload_refuses_bad_arguments() -> None:
    data = sample("flexible_enroll")["payload"]
    with pytest.raises(ValidationFailed) as e:
        to_tax_payload("flexible_enroll", data, start_month="2026-12", today=REFERENCE_DAY)
    assert e.value.field == "start_month"
    with pytest.raises(ValidationFailed) as e:
        to_tax_payload("flexible_enroll", data, insure_year="26", today=REFERENCE_DAY)
    assert e.value.field == "insure_year"
    with pytest.raises(ValidationFailed) as e:
        to_tax_payload("no_such_type", data)
    assert e.value.field == "type"
    model = validate_payload("flexible_enroll", data, today=REFERENCE_DAY)
    with pytest.raises(ValidationFailed) as e:
        to_tax_payload("veteran_enroll", model, today=REFERENCE_DAY)
    assert e.value.field == "payload"
    with pytest.raises(ValidationFailed) as e:
        to_tax_payload("flexible_enroll", model, today="24.11.2026")
    assert e.value.field == "today"


def test_today_may_be_given_in_iso_form() -> None:
    data = sample("flexible_enroll")["payload"] | {"start_month": ...}
    data = {k: v for k, v in data.items() if v is not ...}
    [(_, out)] = to_tax_payload("flexible_enroll", data, today="2026-12-05")
    assert out["start_month"] == "202612"


# ---------------------------------------------------------------- every rule names its field

MAN = _id(date(1990, 1, 1), male=True)
CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("id checksum", "resident_enroll",
     {"id_number": _bad_checksum(sample("resident_enroll")["payload"]["id_number"])},
     "payload.id_number"),
    ("id length", "resident_enroll", {"id_number": "32010219720830"}, "payload.id_number"),
    ("id date", "resident_enroll", {"id_number": "320102197213301234"}, "payload.id_number"),
    ("birth date", "resident_enroll", {"birth_date": "1972-08-31"}, "payload.birth_date"),
    ("gender", "resident_enroll", {"gender": "2"}, "payload.gender"),
    ("name digits", "resident_enroll", {"name": "赵建国2"}, "payload.name"),
    ("name special", "flexible_enroll", {"name": "何@丽娟"}, "payload.name"),
    ("no name", "employee_enroll", {"name": ...}, "payload.name"),
    ("no phone", "resident_enroll", {"phone": ...}, "payload.phone"),
    ("landline", "student_enroll", {"phone": "02584561234"}, "payload.phone"),
    ("no household", "resident_enroll", {"household_address": ...},
     "payload.household_address"),
    ("blank residence", "flexible_enroll", {"residence_address": "  "},
     "payload.residence_address"),
    ("community digits", "resident_enroll", {"community": "32010200100"}, "payload.community"),
    ("community city", "newborn_enroll", {"community": "110101001001"}, "payload.community"),
    ("moved in", "resident_enroll", {"moved_in_date": ...}, "payload.moved_in_date"),
    ("moved in kind 1", "student_enroll", {"moved_in_date": "2020-01-01"},
     "payload.moved_in_date"),
    ("student subsidy 03", "student_enroll", {"subsidy_type": "03"}, "payload.subsidy_type"),
    ("adult subsidy 01", "resident_enroll", {"subsidy_type": "01"}, "payload.subsidy_type"),
    ("elderly too young", "resident_enroll", {"resident_type": "12", "subsidy_type": "00"},
     "payload.resident_type"),
    ("university via resident", "resident_enroll", {"resident_type": "14"},
     "payload.resident_type"),
    ("student too old", "student_enroll", {"id_number": MAN}, "payload.birth_date"),
    ("newborn too old", "newborn_enroll",
     {"id_number": _id(date(2023, 1, 5), male=False)}, "payload.birth_date"),
    ("mother male", "newborn_enroll", {"mother_id_number": MAN}, "payload.mother_id_number"),
    ("birth 一件事 not local", "birth_newborn_enroll", {"household_kind": "3"},
     "payload.household_kind"),
    ("birth 一件事 moved in", "birth_newborn_enroll",
     {"household_kind": "2", "moved_in_date": "2026-04-01"}, "payload.household_kind"),
    ("birth 一件事 birth order", "birth_newborn_enroll", {"birth_order": ...},
     "payload.birth_order"),
    ("birth 一件事 birth order 0", "birth_newborn_enroll", {"birth_order": 0},
     "payload.birth_order"),
    ("resident midyear flag", "resident_enroll", {"midyear_flag": "5"},
     "payload.midyear_flag"),
    ("veteran as flexible", "veteran_enroll", {"contribution_base": 500_000},
     "payload.contribution_base"),
    ("veteran no subsidy", "veteran_enroll", {"subsidy_type": ...}, "payload.subsidy_type"),
    ("veteran student type", "veteran_enroll", {"resident_type": "13"},
     "payload.resident_type"),
    ("temp id", "pre_newborn_enroll", {"temp_id_number": "Z" + "1" * 19},
     "payload.temp_id_number"),
    ("birth order", "pre_newborn_enroll", {"birth_order": 0}, "payload.birth_order"),
    ("mother checksum", "pre_newborn_enroll",
     {"mother_id_number": _bad_checksum(sample("pre_newborn_enroll")["payload"]
                                        ["mother_id_number"])}, "payload.mother_id_number"),
    ("transfer in Nanjing", "transfer_out", {"target_division": "320104"},
     "payload.target_division"),
    ("employee uscc", "employee_enroll", {"unit_credit_code": "91320100MA1ABCDE1X"},
     "payload.unit_credit_code"),
    ("employee admdvs", "employee_enroll", {"admdvs": "310101"}, "payload.admdvs"),
    ("employee age", "employee_enroll", {"id_number": _id(date(2012, 1, 1), male=True)},
     "payload.birth_date"),
    ("unknown field", "retire", {"bank_account": "6222"}, "payload.bank_account"),
    ("stop far ahead", "employee_suspend", {"stop_date": "2028-12-31"}, "payload.stop_date"),
    ("maintain nothing", "resident_maintain",
     {"phone": ..., "community": ..., "subsidy_type": ...}, "payload"),
    ("maintain subsidy alone", "resident_maintain", {"resident_type": ...},
     "payload.subsidy_type"),
    ("employment form", "unemployed_enroll", {"employment_form": ...},
     "payload.employment_form"),
    ("discharge future", "veteran_enroll", {"discharge_date": "2027-01-01"},
     "payload.discharge_date"),
    ("retire far ahead", "retire", {"retire_date": "2029-01-01"},
     "payload.retire_date"),
    ("wage negative", "person_update", {"wage": -1}, "payload.wage"),
    ("cert type", "flexible_enroll", {"psn_cert_type": "08"}, "payload.psn_cert_type"),
]


@pytest.mark.parametrize(("app_type", "change", "field"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_broken_rule_names_its_field(app_type: str, change: dict[str, Any],
                                       field: str) -> None:
    errors = errors_of(app_type, payload(app_type, **change))
    assert field in [f for f, _ in errors], errors
    assert all(reason for _, reason in errors)


def test_graduate_batch_names_the_person_and_refuses_duplicates() -> None:
    persons = sample("graduate_stop_batch")["payload"]["persons"]
    bad = [persons[0], dict(persons[1], id_number=_bad_checksum(persons[1]["id_number"]))]
    assert errors_of("graduate_stop_batch", {"persons": bad})[0][0] == \
        "payload.persons.1.id_number"
    errors = errors_of("graduate_stop_batch", {"persons": [persons[0], persons[0]]})
    assert errors[0][0] == "payload.persons" and "same id_number" in errors[0][1]
    assert errors_of("graduate_stop_batch", {"persons": []})[0][0] == "payload.persons"


def test_gender_and_birth_date_are_derived_from_the_id_number() -> None:
    data = payload("resident_enroll", gender=..., birth_date=...)
    model = validate_payload("resident_enroll", data, today=REFERENCE_DAY)
    assert payload_json(model)["gender"] == "1"
    assert payload_json(model)["birth_date"] == "1972-08-30"
    lower_x = dict(data, id_number=data["id_number"].lower())
    assert validate_payload("resident_enroll", lower_x, today=REFERENCE_DAY) == model


def test_an_unknown_type_is_named() -> None:
    assert errors_of("no_such_type", {}) == [("type", "unknown application type "
                                                      "'no_such_type'")]


# ---------------------------------------------------------------- 准新生儿 temporary ID


def test_temp_id_is_z_mother_and_birth_order() -> None:
    mother = sample("pre_newborn_enroll")["payload"]["mother_id_number"]
    assert temp_id_for(mother, 2) == f"Z{mother}2"
    assert temp_id_for(mother.lower(), 2) == temp_id_for(mother, 2)
    assert len(temp_id_for(mother, 1)) == 20
    with pytest.raises(ValueError, match="birth order"):
        temp_id_for(mother, 10)
    with pytest.raises(ValueError, match="mother"):
        temp_id_for(_bad_checksum(mother), 1)


def test_pre_newborn_builds_or_checks_its_temp_id() -> None:
    data = payload("pre_newborn_enroll")
    model = validate_payload("pre_newborn_enroll", data, today=REFERENCE_DAY)
    assert isinstance(model, PreNewbornEnroll)
    assert model.temp_id_number == temp_id_for(data["mother_id_number"], 1)
    given = dict(data, temp_id_number=model.temp_id_number)
    assert validate_payload("pre_newborn_enroll", given, today=REFERENCE_DAY) == model
    assert entity_of("pre_newborn_enroll", model) == ("psn", model.temp_id_number)
    assert "payload.subsidy_type" in [f for f, _ in errors_of(
        "pre_newborn_enroll", dict(data, subsidy_type="02"))]


def test_a_newborn_may_convert_its_pre_newborn_record() -> None:
    data = payload("newborn_enroll")
    temp = temp_id_for(data["mother_id_number"], 1)
    ok = dict(data, birth_order=1, temp_id_number=temp.lower())
    model = validate_payload("newborn_enroll", ok, today=REFERENCE_DAY)
    assert isinstance(model, NewbornEnroll) and model.temp_id_number == temp
    errors = errors_of("newborn_enroll", dict(data, temp_id_number=temp))
    assert errors[0][0] == "payload.temp_id_number" and "birth_order" in errors[0][1]
    errors = errors_of("newborn_enroll", dict(data, birth_order=2, temp_id_number=temp))
    assert errors[0][0] == "payload.temp_id_number"


# ---------------------------------------------------------------- 补助类别 vs 人员类别


@pytest.mark.parametrize("resident_type", list(RESIDENT_TYPES))
@pytest.mark.parametrize("subsidy", list(SUBSIDY_TYPES))
def test_subsidy_follows_the_table(resident_type: str, subsidy: str) -> None:
    data = payload("resident_maintain", resident_type=resident_type, subsidy_type=subsidy)
    allowed = resident_type in SUBSIDY_TYPES[subsidy][1]
    if allowed:
        validate_payload("resident_maintain", data, today=REFERENCE_DAY)
    else:
        assert errors_of("resident_maintain", data)[0][0] == "payload.subsidy_type"


def test_subsidy_table_basics() -> None:
    assert SUBSIDY_TYPES["00"][1] == frozenset(RESIDENT_TYPES)  # none: always allowed
    assert "13" not in SUBSIDY_TYPES["03"][1] and "13" not in SUBSIDY_TYPES["04"][1]


# ---------------------------------------------------------------- newborn: two years


def test_newborn_within_two_years_of_birth() -> None:
    born = date(2024, 11, 25)
    data = payload("newborn_enroll", id_number=_id(born, male=True), gender=..., birth_date=...)
    validate_payload("newborn_enroll", data, today=date(2026, 11, 24))  # a day short of two
    errors = errors_of("newborn_enroll", data, today=date(2026, 11, 25))  # two today
    assert errors[0][0] == "payload.birth_date" and "under 2" in errors[0][1]
    assert errors_of("newborn_enroll", data, today=born - timedelta(days=1))[0][0] == \
        "payload.birth_date"  # not born yet


def _freeze_clock(monkeypatch: pytest.MonkeyPatch, instant: datetime) -> None:
    """``contracts.clock`` reads this instant as now (in whatever zone it asks)."""

    class Frozen(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
            return instant.astimezone(tz) if tz else instant.replace(tzinfo=None)

    monkeypatch.setattr(clock, "datetime", Frozen)


def test_ages_count_on_the_beijing_calendar_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    # a fixture child born 2026-03-01 is under two until 2028-03-01; the default is today
    data = payload("newborn_enroll")
    fixture = validate_payload("newborn_enroll", data, today=REFERENCE_DAY)
    assert isinstance(fixture, NewbornEnroll) and fixture.birth_date == date(2026, 3, 1)

    # 2028-02-29 23:59 in Beijing: a minute short of two
    _freeze_clock(monkeypatch, datetime(2028, 2, 29, 15, 59, tzinfo=UTC))
    assert clock.today_beijing() == date(2028, 2, 29)
    assert isinstance(validate_payload("newborn_enroll", data), NewbornEnroll)
    assert isinstance(NewbornEnroll.model_validate(data), NewbornEnroll)  # no context at all

    # 2028-03-01 00:00 in Beijing (still the 29th in UTC): two today, refused
    _freeze_clock(monkeypatch, datetime(2028, 2, 29, 16, 0, tzinfo=UTC))
    assert clock.today_beijing() == date(2028, 3, 1)
    with pytest.raises(ValidationFailed) as exc:
        validate_payload("newborn_enroll", data)
    assert exc.value.field == "payload.birth_date"
    assert "under 2" in exc.value.errors[0][1]
    with pytest.raises(ValidationError) as raw:
        NewbornEnroll.model_validate(data)  # the model's own default is Beijing's today too
    assert raw.value.errors()[0]["loc"] == ("birth_date",)

    # an injected day wins over the clock, both ways
    assert isinstance(validate_payload("newborn_enroll", data, today=date(2028, 2, 29)),
                      NewbornEnroll)
    assert isinstance(NewbornEnroll.model_validate(data, context={"today": date(2028, 2, 29)}),
                      NewbornEnroll)
    _freeze_clock(monkeypatch, datetime(2026, 11, 24, 12, 0, tzinfo=UTC))
    assert errors_of("newborn_enroll", data, today=date(2028, 3, 1))[0][0] == \
        "payload.birth_date"


# ---------------------------------------------------------------- envelope


@pytest.mark.parametrize(("change", "field"), [
    ({"callback_url": "http://evil.example/cb"}, "callback_url"),
    ({"request_id": "has space"}, "request_id"),
    ({"request_id": "x" * 65}, "request_id"),
    ({"request_id": ""}, "request_id"),
    ({"type": "no_such_type"}, "type"),
    ({"payload": [1]}, "payload"),
])
def test_the_envelope_names_its_field(change: dict[str, Any], field: str) -> None:
    body = sample("resident_enroll") | change
    with pytest.raises(ValidationError) as e:
        ApplicationRequest.model_validate(body)
    assert e.value.errors()[0]["loc"] == (field,)


def test_entities() -> None:
    def entity(app_type: str) -> tuple[str, str] | None:
        return entity_of(app_type, validate_payload(app_type, sample(app_type)["payload"],
                                                    today=REFERENCE_DAY))

    assert entity("resident_enroll") == ("psn", sample("resident_enroll")["payload"]
                                         ["id_number"])
    assert entity("unit_maintain") == ("unit", sample("unit_maintain")["payload"]
                                       ["unit_credit_code"])
    assert entity("graduate_stop_batch") is None


# ---------------------------------------------------------------- seed rules in the contract


def test_birth_newborn_is_for_a_local_household_and_says_so() -> None:
    [(field, reason)] = errors_of("birth_newborn_enroll",
                                  payload("birth_newborn_enroll", household_kind="3"))
    assert field == "payload.household_kind"
    assert "本市户籍" in reason and "got 3 非本市户籍" in reason and "出生一件事" in reason
    model = validate_payload("birth_newborn_enroll", payload("birth_newborn_enroll"),
                             today=REFERENCE_DAY)
    assert isinstance(model, NewbornEnroll) and model.birth_order == 1


def test_veteran_enrollment_is_a_midyear_resident_enrollment() -> None:
    assert TAX_OPERATION["veteran_enroll"] == "ResidentEnroll"
    model = validate_payload("veteran_enroll", sample("veteran_enroll")["payload"],
                             today=REFERENCE_DAY)
    assert midyear_flag_of(model) == "1" and MIDYEAR_FLAGS["1"] == "退役军人"
    [(op, data)] = to_tax_payload("veteran_enroll", model, today=REFERENCE_DAY)
    assert op == "ResidentEnroll"
    assert (data["insure_year"], data["midyear_flag"], data["insure_start_date"]) == \
        ("2026", "1", "2026-11-24")
    [(_, data)] = to_tax_payload("veteran_enroll", model, today=REFERENCE_DAY,
                                 insure_year="2026", insure_start_date="2026-11-20")
    assert data["insure_start_date"] == "2026-11-20"


def test_a_resident_midyear_flag_reaches_tax_only_when_given() -> None:
    plain = validate_payload("resident_enroll", sample("resident_enroll")["payload"],
                             today=REFERENCE_DAY)
    assert midyear_flag_of(plain) is None
    [(_, data)] = to_tax_payload("resident_enroll", plain, today=REFERENCE_DAY,
                                 insure_year="2027")
    assert "midyear_flag" not in data and "insure_start_date" not in data
    assert data["insure_year"] == "2027"
    flagged = payload("resident_enroll", midyear_flag="2")
    [(_, data)] = to_tax_payload("resident_enroll", flagged, today=REFERENCE_DAY)
    assert (data["midyear_flag"], data["insure_start_date"]) == ("2", "2026-11-24")
    assert midyear_flag_of(validate_payload("newborn_enroll", payload("newborn_enroll"),
                                            today=REFERENCE_DAY)) is None


def test_midyear_arguments_are_checked() -> None:
    data = sample("resident_enroll")["payload"]
    with pytest.raises(ValidationFailed) as e:
        to_tax_payload("resident_enroll", data, midyear_flag="7", today=REFERENCE_DAY)
    assert e.value.field == "midyear_flag"
    with pytest.raises(ValidationFailed) as e:
        to_tax_payload("resident_enroll", data, midyear_flag="1",
                       insure_start_date="24.11.2026", today=REFERENCE_DAY)
    assert e.value.field == "insure_start_date"
    with pytest.raises(ValidationFailed) as e:  # a 中途参保 ends on 31 Dec of its year
        to_tax_payload("resident_enroll", data, midyear_flag="1", insure_year="2027",
                       today=REFERENCE_DAY)
    assert e.value.field == "ResidentEnroll" and "insure_year" in e.value.errors[0][1]


def test_the_catalogue_keeps_the_midyear_flag_and_its_start_together() -> None:
    base = to_tax_payload("resident_enroll", sample("resident_enroll")["payload"],
                          today=REFERENCE_DAY)[0][1]
    model = model_for("ResidentEnroll")
    model.model_validate(base | {"midyear_flag": "3", "insure_start_date": "2026-11-24"})
    for bad in ({"midyear_flag": "3"}, {"insure_start_date": "2026-11-24"},
                {"midyear_flag": "5", "insure_start_date": "2026-11-24"}):
        with pytest.raises(ValidationError):
            model.model_validate(base | bad)


# ---------------------------------------------------------------- 集中征缴期 setting


def test_collection_period_default_is_september_to_december_of_the_year_before() -> None:
    periods = CollectionPeriods()
    assert periods.window(2027) == (date(2026, 9, 1), date(2026, 12, 31))
    assert periods.collecting_for(date(2026, 10, 8)) == 2027
    assert periods.collecting_for(date(2026, 8, 31)) is None
    wrap = CollectionPeriods(default_start="10-01", default_end="02-28")
    assert wrap.window(2027) == (date(2026, 10, 1), date(2027, 2, 28))
    assert wrap.collecting_for(date(2027, 2, 1)) == 2027
    assert wrap.collecting_for(date(2027, 3, 1)) is None


@pytest.mark.parametrize(("data", "text"), [
    ({"default_start": "9-1"}, "MM-DD"),
    ({"default_end": "02-29"}, "every year"),
    ({"default_start": "13-01"}, "MM-DD"),
    ({"years": {2027: ("2026-12-31", "2026-09-01")}}, "after"),
    ({"years": {2027: ("2025-09-01", "2025-12-31")}}, "must lie in 2026 or 2027"),
    ({"years": {2027: ("2026-09-01", "2027-09-30")}}, "overlap"),
    ({"years": {2027: ("2026-09-01", "2027-01-31"), 2028: ("2027-01-15", "2027-12-31")}},
     "overlap"),
])
def test_a_bad_collection_period_is_refused(data: dict[str, Any], text: str) -> None:
    with pytest.raises(ValidationError, match=text):
        CollectionPeriods.model_validate(data)

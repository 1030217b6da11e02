"""The tax catalogue: generated files current, every operation's contract and wire forms."""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree
from pydantic import ValidationError

from adapters.tax import soap
from contracts.errors import ValidationFailed
from contracts.taxcat import (
    FIELDS,
    OPS,
    OPS_BY_TYPE,
    core_to_canonical,
    from_wire,
    model_for,
    op,
    reply_model_for,
    to_wire,
)
from contracts.taxcat_xsd import rendered
from tools.fixtures import generate_catalogue

SCHEMA = etree.XMLSchema(etree.parse(str(soap.TAX_XSD)))


def test_generated_contract_files_are_current() -> None:
    for path, text in rendered().items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path.name} is stale: run .venv/bin/python -m contracts.taxcat_xsd")


def test_fixtures_are_current() -> None:
    assert generate_catalogue.main(["--check"]) == 0, (
        "run .venv/bin/python -m tools.fixtures.generate_catalogue")


def test_names_are_unique_on_every_side() -> None:
    for side in ("xml", "core"):
        names = [getattr(f, side) for f in FIELDS.values()]
        assert len(names) == len(set(names)), side
    assert len({o.name for o in OPS}) == len(OPS) == len(OPS_BY_TYPE)
    infnos = [o.core_infno for o in OPS if o.core_infno]
    assert len(infnos) == len(set(infnos))


@pytest.mark.parametrize("o", OPS, ids=lambda o: o.name)
def test_every_fixture_request_is_schema_valid_and_round_trips(o: Any) -> None:
    payload = generate_catalogue.sample(o)
    body = soap.build_request(o.name, payload, "SER-1")
    element = soap.parse_payload(body)
    assert SCHEMA.validate(element), SCHEMA.error_log.last_error
    kinds = ("push", "core_query") if o.kind in ("push", "core_query") else ("submit", "query")
    name, serial, fields = soap.parse_request(body, kinds=kinds)
    assert (name, serial, fields) == (o.name, "SER-1", to_wire(o, payload))
    again = model_for(o.name).model_validate(from_wire(o, fields))
    assert again.model_dump(mode="json", exclude_none=True) == payload
    reply_model_for(o.name)


@pytest.mark.parametrize(("name", "change", "field"), [
    ("UnitEnroll", {"unit_credit_code": "91320100MA1ABCDE1X"}, "unit_credit_code"),
    ("UnitEnroll", {"admdvs": "310101"}, "admdvs"),
    ("FlexibleEnroll", {"community": "110101001001"}, "community"),
    ("FlexibleEnroll", {"phone": "02512345678"}, "phone"),
    ("ResidentEnroll", {"resident_type": "99"}, "resident_type"),
    ("ResidentEnroll", {"name": "张3"}, "name"),
    ("UnitBackPayAssess", {"amount": -1}, "amount"),
    ("EmployeeRetire", {"id_number": "320102199001011234"}, "id_number"),
])
def test_a_bad_field_is_named(name: str, change: dict[str, Any], field: str) -> None:
    payload = generate_catalogue.sample(op(name)) | change
    with pytest.raises(ValidationError) as e:
        model_for(name).model_validate(payload)
    assert e.value.errors()[0]["loc"] == (field,)


def test_cross_field_rules() -> None:
    base = generate_catalogue.sample(op("ResidentEnroll"))
    with pytest.raises(ValidationError, match="disagrees with the ID number"):
        model_for("ResidentEnroll").model_validate(base | {"birth_date": "2000-01-01"})
    bill = generate_catalogue.sample(op("UnitArrearsPay"))
    with pytest.raises(ValidationError, match="period_start 202612 is after"):
        model_for("UnitArrearsPay").model_validate(bill | {"period_start": "202612"})
    transfer = generate_catalogue.sample(op("UnitTransfer"))
    with pytest.raises(ValidationError, match="id_numbers is required"):
        model_for("UnitTransfer").model_validate(
            {k: v for k, v in transfer.items() if k != "id_numbers"})


def test_core_names_translate_and_unknown_ones_are_refused() -> None:
    o = op("FlexibleSuspend")
    payload = generate_catalogue.sample(o)
    core = {f.core: payload[f.attr] for f in o.wire_fields}
    assert core_to_canonical(o, core) == payload
    with pytest.raises(ValidationFailed) as e:
        core_to_canonical(o, core | {"bogus": 1})
    assert e.value.field == "bogus"


def test_message_types_follow_subject_and_action() -> None:
    assert op("EmployeeEnroll").msg_type == "tax.employee.enroll"
    assert op("UnitPayStatusChange").msg_type == "tax.unit.pay_status_change"
    assert op("QueryPersonArrears").msg_type == "tax.query.person_arrears"
    assert op("SpecialPaymentNotify").msg_type == "core.tax_push.special_payment"
    assert op("EmployeeStop").entity_prefix == "psn"
    assert op("CollectionCancel").entity_prefix == "collection_no"

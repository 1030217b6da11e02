"""Golden files of the tax EmployeeEnroll request: each input rebuilds to its expected XML.

Identities are synthetic (``contracts.ids`` with a fixed seed), never real
people. To regenerate after an intended contract change:

    REGEN_TAX_FIXTURES=1 .venv/bin/pytest tests/unit/contracts/test_tax_fixtures.py
"""

from __future__ import annotations

import json
import os
import random
from datetime import date, datetime
from pathlib import Path

import pytest
from lxml import etree

from adapters.tax.soap import TAX_XSD, build_enroll_request, parse_payload
from contracts.clock import BEIJING
from contracts.employee import EmployeeEnrollment
from contracts.ids import make_credit_code, make_id_number

FIXTURES = TAX_XSD.parents[1] / "fixtures" / "tax" / "employee_enroll"
SENT_AT = datetime(2025, 1, 15, 9, 30, 0, tzinfo=BEIJING)
SEED = 20250115


def serial_for(stem: str) -> str:
    """Fixed 业务流水号 per fixture, derived from its number."""
    return f"NJYBHUB-FIXTURE-{stem.split('_', 1)[0]}"


def _cases() -> dict[str, dict[str, object]]:
    rng = random.Random(SEED)

    def person(born: date, male: bool, area: str) -> dict[str, object]:
        return {"id_number": make_id_number(rng, born=born, male=male, area=area),
                "gender": "1" if male else "2", "birth_date": born.isoformat()}

    unit = {"unit_credit_code": make_credit_code(rng), "unit_name": "南京示例软件有限公司"}
    return {
        "001_ok": {**unit, **person(date(1990, 5, 6), True, "320102"), "psn_cert_type": "01",
                   "name": "测试甲", "phone": "13900000001", "start_month": "202501",
                   "admdvs": "320102"},
        "002_cert_type_short": {**unit, **person(date(1985, 11, 23), True, "320105"),
                                "psn_cert_type": "1", "name": "测试乙", "phone": "13900000002",
                                "start_month": "202502", "admdvs": "320105"},
        "003_female": {**unit, **person(date(1998, 2, 14), False, "320115"),
                       "name": "测试丙", "phone": "15800000003", "start_month": "202503",
                       "admdvs": "320115"},
        "004_wage": {"unit_credit_code": make_credit_code(rng), "unit_name": "南京示例物流有限公司",
                     **person(date(1976, 8, 30), False, "320106"), "name": "测试丁",
                     "phone": "18600000004", "start_month": "202412", "admdvs": "320106",
                     "insutype": "310", "psn_type": "11", "wage": 1_234_567},
    }


def _canonical(xml: bytes) -> bytes:
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    return bytes(etree.tostring(etree.fromstring(xml, parser), method="c14n2"))


def _regenerate() -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for stem, data in _cases().items():
        req = EmployeeEnrollment.model_validate(data)
        (FIXTURES / f"{stem}.input.json").write_text(
            json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        built = build_enroll_request(req, serial_for(stem), sent_at=SENT_AT)
        pretty = etree.tostring(etree.fromstring(built), pretty_print=True,
                                xml_declaration=True, encoding="UTF-8")
        (FIXTURES / f"{stem}.expected.xml").write_bytes(pretty)


if os.environ.get("REGEN_TAX_FIXTURES"):
    _regenerate()

INPUTS = sorted(FIXTURES.glob("*.input.json"))


def test_there_are_fixtures() -> None:
    assert len(INPUTS) >= 4


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.name.split(".")[0])
def test_fixture_rebuilds_to_expected_xml(path: Path) -> None:
    stem = path.name.split(".")[0]
    req = EmployeeEnrollment.model_validate_json(path.read_text(encoding="utf-8"))
    built = build_enroll_request(req, serial_for(stem), sent_at=SENT_AT)
    expected = (FIXTURES / f"{stem}.expected.xml").read_bytes()
    assert _canonical(built) == _canonical(expected)
    # deterministic: same input, same bytes
    assert built == build_enroll_request(req, serial_for(stem), sent_at=SENT_AT)
    schema = etree.XMLSchema(etree.parse(str(TAX_XSD)))
    assert schema.validate(parse_payload(expected)), schema.error_log


def test_short_cert_type_is_normalised_on_the_wire() -> None:
    xml = (FIXTURES / "002_cert_type_short.expected.xml").read_bytes()
    assert json.loads((FIXTURES / "002_cert_type_short.input.json").read_text())[
        "psn_cert_type"] == "1"
    assert b"<tax:zjlx>01</tax:zjlx>" in xml


def test_fixture_inputs_are_current() -> None:
    """The generator and the committed inputs agree (synthetic, seeded identities)."""
    for stem, data in _cases().items():
        on_disk = json.loads((FIXTURES / f"{stem}.input.json").read_text(encoding="utf-8"))
        assert on_disk == data, stem

"""Every core fixture pair holds: valid events become their expected record and back,
invalid events fail with exactly the expected (wire field, reason) list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters.core.translate import enrollment_to_event, event_to_enrollment, parse_national_request
from contracts.employee import EmployeeEnrollment
from contracts.errors import ValidationFailed
from tools.fixtures import generate_core

ROOT = Path(__file__).resolve().parents[3] / "contracts" / "fixtures" / "core"


def _pairs(folder: str) -> list[Any]:
    inputs = sorted((ROOT / folder).glob("*.input.json"))
    return [pytest.param(p, p.with_name(p.name.replace(".input.", ".expected.")), id=p.stem)
            for p in inputs]


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def test_fixture_counts() -> None:
    assert len(_pairs("employee_enroll")) == 3
    assert len(_pairs("employee_enroll_invalid")) == 4


@pytest.mark.parametrize(("input_path", "expected_path"), _pairs("employee_enroll"))
def test_valid_event_round_trips(input_path: Path, expected_path: Path) -> None:
    request = parse_national_request(input_path.read_bytes())
    expected = _load(expected_path)

    enrollment = event_to_enrollment(request.input)

    assert enrollment.model_dump(mode="json") == expected
    assert event_to_enrollment(enrollment_to_event(enrollment)) == enrollment
    assert EmployeeEnrollment.model_validate(expected) == enrollment
    assert request.to_wire() == _load(input_path)  # the envelope is rewritten as it came


@pytest.mark.parametrize(("input_path", "expected_path"), _pairs("employee_enroll_invalid"))
def test_invalid_event_names_the_wire_field(input_path: Path, expected_path: Path) -> None:
    request = parse_national_request(input_path.read_bytes())

    with pytest.raises(ValidationFailed) as exc:
        event_to_enrollment(request.input)

    assert [list(e) for e in exc.value.errors] == _load(expected_path)["errors"]


def test_files_match_the_generator() -> None:
    """The fixtures on disk are what ``generate_core`` writes: they can be rebuilt."""
    for path, value in generate_core.build().items():
        assert path.read_text(encoding="utf-8") == generate_core.render(value), path

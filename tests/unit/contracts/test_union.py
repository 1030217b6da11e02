"""F12 contract (``contracts.union``): images checked from their headers, names and order,
the application's fields, and the versioned result file (render, parse, tamper)."""

from __future__ import annotations

import base64
import random
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.union import (
    LAYOUT_VERSION,
    CaseApplication,
    ClosureFile,
    ClosureLine,
    check_image,
    parse_closure_file,
    render_closure_file,
)
from simulators.union import make_case, make_jpeg, make_member, make_tiff


def _case(**images: Any) -> dict[str, Any]:
    member = make_member(random.Random(3), "U0001")
    return make_case("UC2025000001", member, year=2025, complete_on=date(2025, 9, 26))


def _errors(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as exc:
        CaseApplication.model_validate(data)
    return [(".".join(str(p) for p in e["loc"]), str(e["msg"])) for e in exc.value.errors()]


def test_headers_give_format_colour_and_dpi() -> None:
    assert check_image(make_jpeg(150)).model_dump() == {"format": "jpg", "colour": True,
                                                        "dpi": (150, 150)}
    assert check_image(make_tiff(300)).model_dump() == {"format": "tif", "colour": False,
                                                        "dpi": (300, 300)}
    assert check_image(make_jpeg(72, colour=False)).colour is False
    with pytest.raises(ValueError, match="neither JPG nor TIF"):
        check_image(b"\x89PNG\r\n\x1a\n....")


def test_a_good_case_is_accepted_by_the_contract() -> None:
    app = CaseApplication.model_validate(_case())
    assert app.missing_categories == []
    assert all("content" not in i for i in app.summary()["images"])


@pytest.mark.parametrize(("index", "content", "reason"), [
    (0, make_jpeg(200), "colour JPG must be 150x150 dpi, found 200x200"),
    (0, make_jpeg(150, colour=False), "must be a colour image"),
    (2, make_tiff(200), "black-and-white TIF must be 300x300 dpi, found 200x200"),
    (2, make_tiff(300, bilevel=False), "a TIF must be black-and-white"),
])
def test_a_bad_scan_is_refused_naming_the_image(index: int, content: bytes,
                                                reason: str) -> None:
    data = _case()
    data["images"][index]["content"] = base64.b64encode(content).decode()
    (err,) = _errors(data)
    assert err[0] == f"images.{index}.content" and reason in err[1]


def test_images_must_be_named_classified_in_order_and_not_twice() -> None:
    data = _case()
    data["images"][0]["name"] = "scan1.jpg"
    assert "images.0.name" in _errors(data)[0][1]
    data = _case()
    data["images"][4]["name"] = "UC2025000001_FP_03.tif"  # page 2 missing
    assert "images.4.name" in _errors(data)[0][1]
    data = _case()
    data["images"][4]["content"] = data["images"][3]["content"]
    assert "images.4.content: the same page twice" in _errors(data)[0][1]
    data = _case()
    data["images"][0]["category"] = "XX"
    assert _errors(data)[0][0] == "images.0.category"


def test_bad_application_fields_are_named() -> None:
    data = _case()
    data["applicant"]["id_number"] = data["applicant"]["id_number"][:-1] + (
        "0" if data["applicant"]["id_number"][-1] != "0" else "1")
    assert _errors(data)[0][0] == "applicant.id_number"
    data = _case()
    data["bills"][0]["self_paid"] = "1.00"
    assert _errors(data)[0][0] == "bills.0"
    data = _case()
    data["treatments"][0]["discharged_on"] = "2000-01-01"
    assert _errors(data)[0][0] == "treatments.0"


def _file() -> ClosureFile:
    return ClosureFile(version=LAYOUT_VERSION, case_no="UC2025000001", unit_code="U0001",
                       closed_on=date(2025, 10, 11), conclusion="给付",
                       payable=Decimal("3500.00"),
                       lines=(ClosureLine(seq=1, bill_no="B1", total=Decimal("12000"),
                                          self_paid=Decimal("4000"), payable=Decimal("1750")),
                              ClosureLine(seq=2, bill_no="B2", total=Decimal("12000"),
                                          self_paid=Decimal("4000"), payable=Decimal("1750"))))


def test_the_result_file_reads_back_and_refuses_tampering() -> None:
    text = render_closure_file(_file())
    assert text.splitlines()[0] == "H|UC-1.0|UC2025000001|U0001|20251011|2"
    assert text.splitlines()[3] == "C|给付|3500.00||"
    assert parse_closure_file(text) == _file()
    with pytest.raises(ValueError, match="checksum"):
        parse_closure_file(text.replace("1750.00", "1850.00", 1))
    with pytest.raises(ValueError, match="line 1"):
        parse_closure_file(text.replace("UC-1.0", "UC-0.9"))

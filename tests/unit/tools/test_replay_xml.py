"""``tools.replay`` compares SOAP/XML outputs as data (xmltodict), field by field, defused."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.replay import Fixture, replay_tax, xml_data, xml_differences

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "contracts" / "fixtures" / "tax" / "employee_enroll"
GOLDEN = FIXTURES / "003_female.expected.xml"

DOC = """<?xml version='1.0' encoding='UTF-8'?>
<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/"
                   xmlns:tax="http://hub.njyb.gov.cn/tax/v1">
  <soap-env:Body>
    <tax:Req version="1" lang="zh">
      <tax:xm>测试丙</tax:xm>
      <tax:xb>2</tax:xb>
      <tax:zjhm>320115199802145240</tax:zjhm>
    </tax:Req>
  </soap-env:Body>
</soap-env:Envelope>""".encode()

# The same data: other prefixes, other attribute order, no indentation, spaces in text.
SAME = ("<e:Envelope xmlns:e='http://schemas.xmlsoap.org/soap/envelope/'><e:Body>"
        "<t:Req xmlns:t='http://hub.njyb.gov.cn/tax/v1' lang='zh' version='1'>"
        "<t:xm> 测试丙 </t:xm><t:xb>2</t:xb><t:zjhm>320115199802145240</t:zjhm>"
        "</t:Req></e:Body></e:Envelope>").encode()

REQ = "soap:Envelope/soap:Body/tax:Req"


def test_same_data_with_other_whitespace_prefixes_and_attribute_order_is_equal() -> None:
    assert xml_data(DOC) == xml_data(SAME)
    assert xml_differences(DOC, SAME) == []


def test_one_differing_element_is_reported_by_its_path() -> None:
    other = DOC.replace(b"<tax:xb>2</tax:xb>", b"<tax:xb>1</tax:xb>")
    assert xml_differences(DOC, other) == [f"  {REQ}/tax:xb: expected '2', got '1'"]


def test_attributes_missing_and_unexpected_elements_are_named() -> None:
    other = (DOC.replace(b'version="1"', b'version="2"')
             .replace(b"<tax:zjhm>320115199802145240</tax:zjhm>", b"<tax:lxdh>1</tax:lxdh>"))
    diff = xml_differences(DOC, other)
    assert f"  {REQ}/@version: expected '1', got '2'" in diff
    assert f"  {REQ}/tax:zjhm: missing (expected '320115199802145240')" in diff
    assert f"  {REQ}/tax:lxdh: unexpected (got '1')" in diff
    assert len(diff) == 3


def test_child_element_order_counts() -> None:
    xm = "<tax:xm>测试丙</tax:xm>".encode()
    other = DOC.replace(xm, b"").replace(b"<tax:zjhm>", xm + b"<tax:zjhm>")
    [line] = xml_differences(DOC, other)
    assert line.startswith(f"  {REQ}: child elements out of order")


def test_repeated_elements_compare_by_position_and_count() -> None:
    a = b"<r><i>1</i><i>2</i></r>"
    assert xml_differences(a, b"<r><i>1</i><i>3</i></r>") == ["  r/i[1]: expected '2', got '3'"]
    assert xml_differences(a, b"<r><i>1</i><i>2</i><i>3</i></r>") == [
        "  r/i: 2 occurrences expected, got 3"]


@pytest.mark.parametrize("hostile", [
    b'<!DOCTYPE r [<!ENTITY x "boom">]><r>&x;</r>',
    b'<!DOCTYPE r SYSTEM "file:///etc/passwd"><r/>',
    b"<!DOCTYPE r><r/>",
])
def test_a_doctype_is_refused(hostile: bytes) -> None:
    with pytest.raises(ValueError, match="DOCTYPE"):
        xml_data(hostile)


def test_malformed_and_oversized_documents_are_refused() -> None:
    with pytest.raises(ValueError, match="malformed"):
        xml_data(b"<r><unclosed></r>")
    with pytest.raises(ValueError, match="over 10 bytes"):
        xml_data(b"<r>0123456789</r>", max_bytes=10)


def test_replay_tax_reports_the_tampered_field(tmp_path: Path) -> None:
    stem = "003_female"
    (tmp_path / f"{stem}.input.json").write_bytes((FIXTURES / f"{stem}.input.json").read_bytes())
    golden = tmp_path / f"{stem}.expected.xml"
    fx = Fixture("tax", f"tax/employee_enroll/{stem}", tmp_path / f"{stem}.input.json", golden)
    golden.write_bytes(GOLDEN.read_bytes())
    assert replay_tax(fx) == []
    golden.write_bytes(GOLDEN.read_bytes().replace(b"<tax:xb>2</tax:xb>", b"<tax:xb>1</tax:xb>"))
    assert replay_tax(fx) == [
        "  soap:Envelope/soap:Body/tax:EmployeeEnrollRequest/tax:body/tax:xb: "
        "expected '1', got '2'"]

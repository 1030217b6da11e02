"""Render the tax catalogue as XSD, WSDLs and a Markdown table (``contracts/tax/``).

Generated, not hand-written, so the schema, the two services and the codec
can never disagree with ``contracts.taxcat``. The shared simple types and the
head/ack/reply types are hand-written in ``tax/tax_common.xsd.part``; the
student batch operations come from ``tax/student_batch.xsd`` when present.
``tests/unit/contracts/test_taxcat.py`` checks the committed files are current:

    .venv/bin/python -m contracts.taxcat_xsd      # rewrite tax.xsd, *.wsdl, CATALOGUE.md
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Final

from contracts.taxcat import OPS, Op, WireField

__all__ = ["CALLBACK_OPS", "TAX_OPS", "main", "render_catalogue", "render_wsdl", "render_xsd"]

DIR: Final = Path(__file__).resolve().parent / "tax"
NS: Final = "http://hub.njyb.gov.cn/tax/v1"
BATCH_XSD: Final = DIR / "student_batch.xsd"
BATCH_OPS: Final = ("StudentBatchEnroll", "StudentBatchStop")

TAX_OPS: Final = tuple(o for o in OPS if o.kind in ("submit", "query"))
"""Operations of tax's service, called by the hub."""
CALLBACK_OPS: Final = tuple(o for o in OPS if o.kind in ("push", "core_query"))
"""Operations of the hub's callback service, called by tax (besides FeedbackNotify)."""

_TYPES: Final[dict[str, str]] = {
    "uscc": "tns:CreditCode", "id": "tns:CertNo", "date": "xs:date", "month": "tns:YearMonth",
    "year": "tns:Year", "fen": "tns:Fen", "int": "tns:Count", "division": "tns:AgencyCode",
    "community": "tns:Community", "certtype": "tns:CertType", "gender": "tns:Gender",
    "serial": "tns:Serial", "code": "tns:Code20", "datetime": "xs:dateTime",
}
_EXTRA_TYPES: Final = """
  <xs:simpleType name="Year">
    <xs:restriction base="xs:string"><xs:pattern value="(19|20)[0-9]{2}"/></xs:restriction>
  </xs:simpleType>

  <xs:simpleType name="Count">
    <xs:restriction base="xs:long"><xs:minInclusive value="0"/></xs:restriction>
  </xs:simpleType>

  <xs:simpleType name="Community">
    <xs:annotation><xs:documentation>基层医保区划: 12 digits.</xs:documentation></xs:annotation>
    <xs:restriction base="xs:string"><xs:pattern value="[0-9]{12}"/></xs:restriction>
  </xs:simpleType>

  <xs:complexType name="CertNoList">
    <xs:sequence>
      <xs:element name="zjhm" type="tns:CertNo" maxOccurs="1000"/>
    </xs:sequence>
  </xs:complexType>
"""
_ANY: Final = ('      <xs:any namespace="##other" processContents="lax" minOccurs="0" '
               'maxOccurs="unbounded"/>')


def _restriction(f: WireField) -> str:
    if f.choices:
        inner = "".join(f'<xs:enumeration value="{c}"/>' for c in f.choices)
    elif f.kind == "phone":
        inner = r'<xs:pattern value="[0-9+\-]{5,20}"/>'
    elif f.kind == "name":
        inner = '<xs:minLength value="1"/><xs:maxLength value="60"/>'
    else:
        inner = f'<xs:minLength value="1"/><xs:maxLength value="{f.max_len}"/>'
    return (f'<xs:simpleType><xs:restriction base="xs:string">{inner}'
            f'</xs:restriction></xs:simpleType>')


def _element(f: WireField, optional: bool) -> str:
    occurs = ' minOccurs="0"' if optional else ""
    doc = f'<xs:annotation><xs:documentation>{html.escape(f.title)}</xs:documentation>' \
          f'</xs:annotation>'
    named = "tns:CertNoList" if f.kind == "idlist" else (
        _TYPES.get(f.kind) if not f.choices else None)
    if named:
        return f'      <xs:element name="{f.xml}" type="{named}"{occurs}>{doc}</xs:element>'
    return f'      <xs:element name="{f.xml}"{occurs}>{doc}{_restriction(f)}</xs:element>'


def _op_xsd(o: Op) -> str:
    body = "\n".join(_element(f, raw.startswith("?"))
                     for raw, f in zip(o.fields, o.wire_fields, strict=True))
    out = [f"  <!-- ===== {o.name} ({o.title}), {o.kind} ===== -->", "",
           f'  <xs:complexType name="{o.name}Body">', "    <xs:sequence>", body, _ANY,
           "    </xs:sequence>", "  </xs:complexType>", "",
           f'  <xs:element name="{o.name}Request">', "    <xs:complexType>", "      <xs:sequence>",
           '        <xs:element name="head" type="tns:TaxHead"/>',
           f'        <xs:element name="body" type="tns:{o.name}Body"/>',
           "      </xs:sequence>", "    </xs:complexType>", "  </xs:element>", ""]
    if o.kind in ("query", "core_query"):
        record = "\n".join(_element(f, True) for f in o.reply_fields)
        out += [f'  <xs:complexType name="{o.name}Record">', "    <xs:sequence>", record, _ANY,
                "    </xs:sequence>", "  </xs:complexType>", "",
                f'  <xs:element name="{o.name}Response">', "    <xs:complexType>",
                "      <xs:sequence>",
                '        <xs:element name="retStatus" type="tns:RetStatus"/>',
                '        <xs:element name="retCode" type="tns:Code20"/>',
                '        <xs:element name="retMsg" type="tns:Text500"/>',
                '        <xs:element name="records" minOccurs="0"><xs:complexType><xs:sequence>'
                f'<xs:element name="record" type="tns:{o.name}Record" minOccurs="0" '
                'maxOccurs="unbounded"/></xs:sequence></xs:complexType></xs:element>',
                "      </xs:sequence>", "    </xs:complexType>", "  </xs:element>", ""]
    else:
        answer = "TaxAckType" if o.kind == "submit" else "TaxReplyType"
        out += [f'  <xs:element name="{o.name}Response" type="tns:{answer}"/>', ""]
    return "\n".join(out)


_FEEDBACK: Final = """  <!-- ===== FeedbackNotify (受理结果反馈), called by tax ===== -->

  <xs:element name="FeedbackNotifyRequest">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="slh" type="tns:AcceptNo"/>
        <xs:element name="ywlsh" type="tns:Serial"/>
        <xs:element name="serviceCode" type="tns:ServiceCode"/>
        <xs:element name="zjhm" type="tns:CertNo" minOccurs="0"/>
        <xs:element name="clzt" type="tns:ResultStatus"/>
        <xs:element name="yydm" type="tns:Code20" minOccurs="0"/>
        <xs:element name="yysm" type="tns:Text500" minOccurs="0"/>
        <xs:any namespace="##other" processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
      </xs:sequence>
    </xs:complexType>
  </xs:element>

  <xs:element name="FeedbackNotifyResponse" type="tns:TaxReplyType"/>
"""


def _batch_xsd() -> str:
    """The student batch schema's top-level definitions, inlined (same namespace)."""
    if not BATCH_XSD.exists():
        return ""
    text = BATCH_XSD.read_text(encoding="utf-8")
    m = re.search(r"<xs:schema[^>]*>(.*)</xs:schema>", text, re.S)
    inner = m.group(1) if m else ""
    inner = re.sub(r"\s*<xs:(include|import)[^>]*/>", "", inner)
    return "  <!-- ===== student batches (contracts/tax/student_batch.xsd) ===== -->\n" + \
        inner.strip("\n") + "\n"


def batch_ops() -> tuple[str, ...]:
    return BATCH_OPS if BATCH_XSD.exists() else ()


def render_xsd() -> str:
    common = (DIR / "tax_common.xsd.part").read_text(encoding="utf-8")
    parts = [common.rstrip("\n") + "\n", _EXTRA_TYPES, *(_op_xsd(o) for o in OPS), _FEEDBACK,
             _batch_xsd(), "</xs:schema>\n"]
    return "\n".join(p for p in parts if p)


def render_wsdl(service: str, ops: tuple[tuple[str, str], ...], address: str,
                comment: str) -> str:
    """A document/literal SOAP 1.1 WSDL importing tax.xsd; ``ops`` = (name, documentation)."""
    messages = "".join(
        f'  <wsdl:message name="{n}{d}">\n'
        f'    <wsdl:part name="parameters" element="tns:{n}{d}"/>\n  </wsdl:message>\n'
        for n, _ in ops for d in ("Request", "Response"))
    port_ops = "".join(
        f'    <wsdl:operation name="{n}">\n'
        f"      <wsdl:documentation>{html.escape(doc)}</wsdl:documentation>\n"
        f'      <wsdl:input message="tns:{n}Request"/>\n'
        f'      <wsdl:output message="tns:{n}Response"/>\n    </wsdl:operation>\n'
        for n, doc in ops)
    binding_ops = "".join(
        f'    <wsdl:operation name="{n}">\n'
        f'      <soap:operation soapAction="{NS}/{n}" style="document"/>\n'
        '      <wsdl:input><soap:body use="literal"/></wsdl:input>\n'
        '      <wsdl:output><soap:body use="literal"/></wsdl:output>\n    </wsdl:operation>\n'
        for n, _ in ops)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!--
{comment}
  Generated from contracts/taxcat.py by `python -m contracts.taxcat_xsd`; do not edit.
-->
<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"
                  xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
                  xmlns:xs="http://www.w3.org/2001/XMLSchema"
                  xmlns:tns="{NS}"
                  targetNamespace="{NS}"
                  name="{service}Service">

  <wsdl:types>
    <xs:schema>
      <xs:import namespace="{NS}" schemaLocation="tax.xsd"/>
    </xs:schema>
  </wsdl:types>

{messages}
  <wsdl:portType name="{service}PortType">
{port_ops}  </wsdl:portType>

  <wsdl:binding name="{service}Binding" type="tns:{service}PortType">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
{binding_ops}  </wsdl:binding>

  <wsdl:service name="{service}Service">
    <wsdl:port name="{service}Port" binding="tns:{service}Binding">
      <soap:address location="{address}"/>
    </wsdl:port>
  </wsdl:service>
</wsdl:definitions>
"""


def _doc(o: Op) -> str:
    what = {"submit": "synchronous 受理回执; the result follows by FeedbackNotify",
            "query": "synchronous answer with records",
            "push": "tax pushes; the hub answers S once it has the message safely",
            "core_query": "tax asks core through the hub; synchronous answer with records"}
    return f"{o.title}: {what[o.kind]}." + (f" {o.doc}" if o.doc else "")


READINGS: Final = """
## Readings

Where the seed (`/work/shared/seeds/003_*.txt`) is ambiguous, the catalogue reads it so:

- **退费复核核验信息反馈** (seed 2243-2244): "包括医保部门核验结果、医保部门核验时间等信息"
  makes both required: `review_result` (hyjg, 1 通过 / 2 不通过) and `review_time`
  (hysj, `xs:dateTime`). The hub sends it in Beijing time (`+08:00`); a time without an
  offset is read as Beijing's, one with another offset is converted. The tax simulator
  refuses a feedback without 核验时间 (TX606) or 核验结果 (TX605).
- **灵活参保登记查询** (2299-2305) and **灵活参保信息查询** (2388-2393) describe one screen
  that asks tax for the person's 参保信息: one operation, `QueryFlexibleEnrollment`.
- **灵活就业人员 征集 / 特殊缴费 / 缴费到账 / 在途 / 缴费信息** (2340-2359, 2419-2429):
  input 证件类型, 证件号码, 费款所属期 (`?psn_cert_type id_number period_start
  period_end`), asked of tax. 2349/2357 fix 险种 to 职工基本医疗保险和大病保险, so tax answers
  310 and 330 records only. 2359 repeats 2351 ("查询特殊缴费信息表"), read as a copy: 缴费到账
  asks tax for arrivals.
- **灵活就业人员扣款信息查询** (2433-2438): 2438 "查询税务回读后的信息表" is read as the stored
  return-file records (F5, `flex_deduct` and `special_deduct` mode 2): the hub answers
  from them and does not call tax (`STORED_ANSWERS`). A file still being processed or
  rejected does not answer.
- **职工缴费到账信息查询** (2325-2326) and **特殊缴费到账信息查询** (2330-2331): "税务调用接口"
  makes both tax's questions to core (`core_query`, H1205 and H1206). 2331 repeats 2326's
  text ("职工缴费到账"); read by its title: the 特殊缴费 core took (SpecialPaymentNotify).
- **单位参保信息查询** (2378-2379): "调用税务接口" = the hub asks tax (`QueryUnitEnrollment`);
  the opposite direction (单位参保登记查询, 2294-2295, "返回给税务") stays
  `CoreQueryUnitEnrollment`.
- **单位欠费信息查询** (2468-2469): "根据输入的单位编号和开始期号": 开始期号 (`period_start`,
  yyyyMM) is required; tax answers the arrears from that month on.
- **参保人员税务到账查询** (2474-2475): 数据包编号 (`package_no`) is an optional further
  condition; every record of the answer carries its package number.
"""


def render_catalogue() -> str:
    lines = ["# Tax catalogue (税务 统模式)", "",
             "Generated from `contracts/taxcat.py` by `python -m contracts.taxcat_xsd`; "
             "do not edit. Field names: canonical (hub) / tax element / core wire name; "
             "`?` = optional.", "",
             "| operation | 中文 | kind | hub message type | core infno | fields | answer |",
             "|---|---|---|---|---|---|---|"]
    for o in OPS:
        fields = ", ".join(
            f"{'?' if raw.startswith('?') else ''}{f.attr}/{f.xml}/{f.core}"
            for raw, f in zip(o.fields, o.wire_fields, strict=True))
        answer = ("records: " + ", ".join(f.attr for f in o.reply_fields) if o.reply
                  else "受理回执 + FeedbackNotify" if o.kind == "submit" else "retStatus")
        lines.append(f"| {o.name} | {o.title} | {o.kind} | `{o.msg_type}` | "
                     f"{o.core_infno or '-'} | {fields} | {answer} |")
    for name in batch_ops():
        lines.append(f"| {name} | 大学生批量{'参保' if 'Enroll' in name else '暂停'} | batch | "
                     f"- | - | rows (contracts/student_batch.py) | per-row results |")
    return "\n".join(lines) + "\n" + READINGS


def rendered() -> dict[Path, str]:
    """Every generated file and its content."""
    tax_ops = tuple((o.name, _doc(o)) for o in TAX_OPS) + tuple(
        (n, "大学生批量参保/暂停: per-row results") for n in batch_ops())
    cb_ops = (("FeedbackNotify", "受理结果反馈: ywlsh echoes the request serial."),
              *((o.name, _doc(o)) for o in CALLBACK_OPS))
    return {
        DIR / "tax.xsd": render_xsd(),
        DIR / "tax.wsdl": render_wsdl(
            "TaxSocialInsurance", tax_ops, "http://localhost:8000/tax/ws",
            "  Tax bureau social-insurance service (税务 统模式), as the hub calls it.\n"
            "  SOAP 1.1, document/literal; the simulator serves it at GET /tax/ws?wsdl."),
        DIR / "hub_callback.wsdl": render_wsdl(
            "HubTaxCallback", cb_ops, "http://localhost:8080/partners/tax/callback",
            "  The service the HUB exposes and tax calls: results (FeedbackNotify), pushes\n"
            "  (F3) and tax's queries of core (F4). The hub answers S only once the message\n"
            "  is safely published to RabbitMQ (pushes) or core answered (queries)."),
        DIR / "CATALOGUE.md": render_catalogue(),
    }


def main() -> int:
    for path, text in rendered().items():
        path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

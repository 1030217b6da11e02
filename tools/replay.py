"""``main.py replay PATH``: send contract fixtures through a real hub and diff what comes out.

PATH is a fixture folder, or any folder above some (``contracts/fixtures`` walks
every known kind). Kinds are recognised by ``<partner>/<folder>``:

    core/employee_enroll          POST each H2101 event to a hub on real sockets; once it
                                  settles, the enrollment the TAX simulator received (read
                                  back from the SOAP request) must equal ``.expected.json``,
                                  the transaction must be delivered and core told "synced"
    core/employee_enroll_invalid  the hub's own answer: infcode -1 and the (field, reason)
                                  list of ``.expected.json`` ``{"errors": [...]}``
    tax/employee_enroll           ``build_enroll_request`` with the fixture conventions
                                  (serial, send time) equals ``.expected.xml`` as data
    tax/identity_confirmation,    pure rules (``tools.fixtures.generate_rules``): a TX402
    channels/review,              case and tax's answer -> the hub's move; core's review
    initial_load/rows             event -> accepted or refused; an initial-load row -> loads
                                  or its bad cells by column
    resend/flexible_gaps          灵活补发 detection: core's record and tax's answer give the
                                  difference and resend of ``.expected.json``
    difficulty/lists, /files,     issue 11's department contracts, pure (``tools.fixtures.
    /status_files, warnings/lists,  generate_departments``): F7 lists and files -> rows kept or
    union/deadlines, union/cases  refused (row, field, reason), the status file back; F8
                                  core's figures -> each department's records; F12 the
                                  working-day clock across holidays, a case's images
    fixtures/catalogue            one ``X.json`` per catalogue operation: its payload passes
                                  the contract, core's wire form translates to it, its tax
                                  elements are ``to_wire`` of it, and ``X.xml`` equals the
                                  SOAP request the hub builds (``build_request``) as data

What tax received is captured by a pass-through in front of the tax simulator
(the stack's ``tax_url`` override), so neither the simulator nor the harness is
touched. ``entity_seq`` is core's counter and is not carried to tax, so it is not
compared. SOAP/XML outputs are compared as data, not as text: both documents are
read with xmltodict (namespaces resolved, so a prefix or whitespace or attribute
order never counts) and every differing field is reported by its path, e.g.
``soap:Envelope/soap:Body/tax:EmployeeEnrollRequest/tax:body/tax:xb: expected '1',
got '2'``; the order of child elements still counts (an XSD sequence). The XML is
read defused: a DOCTYPE is refused outright (so no entities, XXE or billion laughs)
and entities are disabled. One line per fixture (``PASS``/``FAIL`` name, the
differences on failure: field paths for XML, a unified diff for JSON), then
``replay: N passed, M failed``; the exit code is 0 only when nothing failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import json
import re
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Final, Literal
from xml.parsers import expat

import httpx
import xmltodict
from fastapi import FastAPI, Request, Response

from adapters.tax.soap import (
    MAX_BYTES,
    NS,
    build_enroll_request,
    build_request,
    parse_enroll_request,
)
from config.settings import HubSettings, load_settings
from contracts.clock import BEIJING
from contracts.employee import EmployeeEnrollment
from contracts.errors import HubError
from simulators.core import CoreStore
from simulators.harness import Stack, fast_policies, running_stack, wait_until_settled
from simulators.serving import serve_app
from tools.fixtures.generate_partners import FOLDERS as PARTNER_FOLDERS

__all__ = ["HELP", "KINDS", "TAX_SENT_AT", "Fixture", "TaxTap", "discover", "json_differences",
           "replay", "run_replay", "select", "tax_serial", "xml_data", "xml_differences"]

Kind = Literal["core", "core_invalid", "tax", "channel_rule", "catalogue", "resend_gap",
               "rule", "department", "channel_sample", "partner", "unreplayable"]

KINDS: Final[dict[tuple[str, str], Kind]] = {
    ("core", "employee_enroll"): "core",
    ("core", "employee_enroll_invalid"): "core_invalid",
    ("tax", "employee_enroll"): "tax",
    ("channels", "rules"): "channel_rule",
    ("fixtures", "catalogue"): "catalogue",
    ("fixtures", "channels"): "channel_sample",
    ("resend", "flexible_gaps"): "resend_gap",
    ("tax", "identity_confirmation"): "rule",
    ("channels", "review"): "rule",
    ("initial_load", "rows"): "rule",
    ("difficulty", "lists"): "department",
    ("difficulty", "files"): "department",
    ("difficulty", "status_files"): "department",
    ("warnings", "lists"): "department",
    ("union", "deadlines"): "department",
    ("union", "cases"): "department",
    **{(f.split("/")[0], f.split("/")[1]): "partner" for f in PARTNER_FOLDERS},
}
"""(partner folder, fixture folder) -> how its fixtures are replayed."""

TAX_SENT_AT: Final = datetime(2025, 1, 15, 9, 30, 0, tzinfo=BEIJING)
"""``fssj`` of every tax fixture (as in tests/unit/contracts/test_tax_fixtures.py)."""

SETTLE_TIMEOUT_S: Final = 30.0

#: EmployeeEnroll body element -> EmployeeEnrollment field, stated here independently of
#: ``enroll_fields`` so a mapping mistake there shows up as a diff.
_TAX_TO_CANONICAL: Final[dict[str, str]] = {
    "shxydm": "unit_credit_code", "dwmc": "unit_name", "zjlx": "psn_cert_type",
    "zjhm": "id_number", "xm": "name", "xb": "gender", "csrq": "birth_date", "lxdh": "phone",
    "xzlx": "insutype", "rylb": "psn_type", "ksjfny": "start_month", "sbjbjgdm": "admdvs",
    "jfgz": "wage",
}
_NOT_ON_TAX_WIRE: Final = frozenset({"entity_seq"})
_ERROR_SPLIT: Final = re.compile(r"; (?=[A-Za-z_][\w.]*: )")


def tax_serial(stem: str) -> str:
    """The fixed 业务流水号 of a tax fixture, from its number (``001_ok`` -> ``...-001``)."""
    return f"NJYBHUB-FIXTURE-{stem.split('_', 1)[0]}"


@dataclass(frozen=True)
class Fixture:
    kind: Kind
    name: str
    """``<partner>/<type>/<stem>``, as printed."""
    input: Path
    expected: Path
    partner: str = ""
    """What ``--partner`` selects: the partner folder (``catalogue`` is ``tax``'s)."""
    type: str = ""
    """What ``--type`` selects: the fixture folder (``catalogue``, ``samples``, ``rules``...)."""
    problem: str = ""
    """Why it cannot be replayed (kind ``unreplayable``): it fails, never is skipped."""


def _unreplayable(path: Path, why: str, partner: str, type_: str) -> Fixture:
    return Fixture("unreplayable", f"{partner}/{type_}/{path.name}", path, path, partner,
                   type_, why)


def discover(root: Path) -> tuple[list[Fixture], list[Path]]:
    """Every fixture under ``root`` (itself included), and the folders of no known kind.

    A folder of no known kind that holds files, a file a known folder does not take
    (an expectation without its input, a stray file) and a missing expectation each
    become an ``unreplayable`` fixture: counted, and failed.
    """
    fixtures: list[Fixture] = []
    unknown: list[Path] = []
    for folder in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]:
        files = sorted(p for p in folder.iterdir() if p.is_file())
        kind = KINDS.get((folder.parent.name, folder.name))
        if kind is None and folder.parent.name != "fixtures" and folder.name != "fixtures" \
                and KINDS.get(("fixtures", folder.name)) is None:
            if files:
                unknown.append(folder)
                fixtures += [_unreplayable(folder, "no replayer for this kind of fixture "
                                           f"({len(files)} files): add it to tools.replay.KINDS",
                                           folder.parent.name, folder.name)]
            continue
        if kind is None:
            if files:  # a partner folder (or the root) holding files of its own
                unknown.append(folder)
                fixtures += [_unreplayable(f, "a file outside any fixture folder",
                                           folder.name, "-") for f in files]
            continue
        taken: set[Path] = set()
        if kind == "catalogue":  # X.json (payload, core, tax) beside X.xml (SOAP request)
            for p in files:
                if p.suffix == ".json":
                    fixtures.append(Fixture(kind, f"catalogue/{p.stem}", p, p.with_suffix(".xml"),
                                            "tax", "catalogue"))
                    taken |= {p, p.with_suffix(".xml")}
        elif kind == "channel_sample":  # channels/<type>.json: what a channel posts
            for p in files:
                if p.suffix == ".json":
                    fixtures.append(Fixture(kind, f"channels/samples/{p.stem}", p, p,
                                            "channels", "samples"))
                    taken.add(p)
        else:
            suffix = ".expected.xml" if kind == "tax" else ".expected.json"
            for path in files:
                if not path.name.endswith(".input.json"):
                    continue
                stem = path.name.removesuffix(".input.json")
                fixtures.append(Fixture(kind, f"{folder.parent.name}/{folder.name}/{stem}", path,
                                        folder / f"{stem}{suffix}", folder.parent.name,
                                        folder.name))
                taken |= {path, folder / f"{stem}{suffix}"}
        partner, type_ = (("tax", "catalogue") if kind == "catalogue" else
                          ("channels", "samples") if kind == "channel_sample" else
                          (folder.parent.name, folder.name))
        fixtures += [_unreplayable(f, "no input beside this file (an expectation without its "
                                   "input, or a stray file)", partner, type_)
                     for f in files if f not in taken]
    return fixtures, unknown


def select(fixtures: Sequence[Fixture], partner: str | None = None,
           type: str | None = None) -> list[Fixture]:
    """The fixtures of one partner and/or one type (``None``: all)."""
    return [fx for fx in fixtures
            if (partner is None or fx.partner == partner) and (type is None or fx.type == type)]


# ---------------------------------------------------------------- comparing

def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def _diff(name: str, expected: str, actual: str) -> list[str]:
    """Unified diff lines (empty when equal)."""
    return list(difflib.unified_diff(expected.splitlines(), actual.splitlines(),
                                     f"{name} (expected)", f"{name} (actual)", lineterm=""))


#: Namespace URI -> the prefix paths are printed with (any other URI is kept whole).
XML_PREFIXES: Final[dict[str, str]] = {
    "http://schemas.xmlsoap.org/soap/envelope/": "soap",
    NS: "tax",
}


def _refuse_doctype(*_: object) -> None:
    raise ValueError("DOCTYPE is not allowed (no DTDs, no entities)")


def _defused_parser(encoding: str | None = None,
                    namespace_separator: str | None = None) -> Any:
    """An expat parser that refuses any DOCTYPE (xmltodict already disables entities)."""
    parser = expat.ParserCreate(encoding, namespace_separator)
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_doctype
    return parser


_DEFUSED_EXPAT: Final = SimpleNamespace(ParserCreate=_defused_parser)


def xml_data(xml: bytes, *, max_bytes: int = MAX_BYTES) -> dict[str, Any]:
    """An XML document as data (xmltodict), read defused.

    Names are ``prefix:local`` with the prefixes of ``XML_PREFIXES`` whatever the
    document's own prefixes are; namespace declarations are dropped; surrounding
    whitespace of text is ignored. ``ValueError`` for a DOCTYPE, an oversized or
    malformed document.
    """
    if len(xml) > max_bytes:
        raise ValueError(f"XML document over {max_bytes} bytes")
    try:
        data = xmltodict.parse(xml, expat=_DEFUSED_EXPAT, disable_entities=True,
                               process_namespaces=True, namespaces=XML_PREFIXES)
    except expat.ExpatError as exc:
        raise ValueError(f"malformed XML: {exc}") from exc
    return _without_xmlns(data)  # type: ignore[no-any-return]


def _without_xmlns(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_xmlns(v) for k, v in value.items() if k != "@xmlns"}
    if isinstance(value, list):
        return [_without_xmlns(v) for v in value]
    return value


def _elements(value: dict[str, Any]) -> list[str]:
    return [k for k in value if not k.startswith(("@", "#"))]


def _data_diff(path: str, expected: Any, actual: Any, out: list[str]) -> None:
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in expected:
            where = f"{path}/{key}" if path else key
            if key not in actual:
                out.append(f"  {where}: missing (expected {expected[key]!r})")
            else:
                _data_diff(where, expected[key], actual[key], out)
        for key in actual:
            if key not in expected:
                where = f"{path}/{key}" if path else key
                out.append(f"  {where}: unexpected (got {actual[key]!r})")
        want = [k for k in _elements(expected) if k in actual]
        got = [k for k in _elements(actual) if k in expected]
        if want != got:
            out.append(f"  {path or '/'}: child elements out of order: expected "
                       f"{', '.join(want)}; got {', '.join(got)}")
    elif isinstance(expected, list) and isinstance(actual, list):
        for i, (e, a) in enumerate(zip(expected, actual, strict=False)):
            _data_diff(f"{path}[{i}]", e, a, out)
        if len(expected) != len(actual):
            out.append(f"  {path}: {len(expected)} occurrences expected, got {len(actual)}")
    elif expected != actual:
        out.append(f"  {path}: expected {expected!r}, got {actual!r}")


def xml_differences(expected: bytes, actual: bytes) -> list[str]:
    """Field-level differences of two XML documents compared as data (empty when equal).

    One line per difference, naming the element's path (``a/b/c``, ``a/b[1]``,
    ``a/@attr``): a changed value, a missing or unexpected element or attribute,
    a different count of a repeated element, or child elements in another order.
    """
    out: list[str] = []
    _data_diff("", xml_data(expected), xml_data(actual), out)
    return out


def _json_diff(path: str, expected: Any, actual: Any, out: list[str]) -> None:
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in expected:
            where = f"{path}/{key}" if path else str(key)
            if key not in actual:
                out.append(f"  {where}: missing (expected {expected[key]!r})")
            else:
                _json_diff(where, expected[key], actual[key], out)
        out += [f"  {f'{path}/{k}' if path else k}: unexpected (got {actual[k]!r})"
                for k in actual if k not in expected]
    elif isinstance(expected, list) and isinstance(actual, list):
        for i, (e, a) in enumerate(zip(expected, actual, strict=False)):
            _json_diff(f"{path}[{i}]", e, a, out)
        if len(expected) != len(actual):
            out.append(f"  {path or '/'}: {len(expected)} items expected, got {len(actual)}")
    elif expected != actual or type(expected) is not type(actual):
        out.append(f"  {path or '/'}: expected {expected!r}, got {actual!r}")


def json_differences(expected: Any, actual: Any) -> list[str]:
    """Field-level differences of two JSON values (empty when equal), one line each, naming
    the field's path (``a/b``, ``a/list[2]/c``): a changed value, a missing or unexpected
    member, a list of another length. Member order does not count; list order does."""
    out: list[str] = []
    _json_diff("", expected, actual, out)
    return out


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _normal(value: Any) -> Any:
    """As it would be written to a fixture (dates, Decimals as text)."""
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


async def replay_pure(fx: Fixture) -> list[str]:
    """A fixture whose replay is a pure contract: its input run again, diffed by field."""
    folder = fx.input.parent
    inp = _read_json(fx.input)
    if fx.kind == "channel_rule":
        from tools.fixtures.generate_channels import run_rule
        got: Any = await run_rule(inp)
    elif fx.kind == "rule":
        from tools.fixtures.generate_rules import run_rule_fixture
        got = run_rule_fixture(folder.name, inp)
    elif fx.kind == "department":
        from tools.fixtures.generate_departments import KIND_OF_FOLDER, run_department_fixture
        got = run_department_fixture(KIND_OF_FOLDER[(folder.parent.name, folder.name)], inp)
    elif fx.kind == "resend_gap":
        from tools.fixtures.generate_resend import run_gap
        got = run_gap(inp)
    elif fx.kind == "partner":
        from tools.fixtures.generate_partners import run_partner_fixture
        got = run_partner_fixture(f"{folder.parent.name}/{folder.name}", inp)
    else:
        raise ValueError(f"{fx.kind} is not a pure kind")
    return json_differences(_read_json(fx.expected), _normal(got))


def _shaped(sent: Any, kept: Any) -> Any:
    """``kept`` cut to the members ``sent`` has (what the contract derives is not compared)."""
    if isinstance(sent, dict) and isinstance(kept, dict):
        return {k: _shaped(sent[k], v) if k in sent else v for k, v in kept.items()
                if k in sent}
    if isinstance(sent, list) and isinstance(kept, list):
        return [_shaped(a, b) for a, b in zip(sent, kept, strict=False)] + kept[len(sent):]
    return kept


def replay_channel_sample(fx: Fixture) -> list[str]:
    """A channel's request body: the envelope is the channel API's, the payload passes its
    type's contract on the fixtures' day, keeps every field the channel sent as it sent it
    (the validated payload, as JSON, equals the body's), and translates to tax's requests."""
    from contracts.channels import (
        ApplicationRequest,
        payload_json,
        to_tax_payload,
        validate_payload,
    )
    from tools.fixtures.generate_channels import REFERENCE_DAY

    body = _read_json(fx.input)
    request = ApplicationRequest.model_validate(body)
    payload = validate_payload(request.type, body["payload"], today=REFERENCE_DAY)
    out = json_differences({"type": fx.input.stem, "payload": body["payload"]},
                           {"type": request.type,
                            "payload": _shaped(body["payload"], payload_json(payload))})
    if not to_tax_payload(request.type, payload, today=REFERENCE_DAY):
        out.append("  payload: translates to no request to tax")
    return out


def _ordered(record: dict[str, Any]) -> dict[str, Any]:
    """Canonical fields in model order, then anything unexpected."""
    order = [f for f in EmployeeEnrollment.model_fields if f in record]
    return {k: record[k] for k in [*order, *(k for k in record if k not in order)]}


def _canonical_from_tax(fields: dict[str, str]) -> dict[str, Any]:
    """What tax received, in canonical names (``jfgz`` back to an integer amount)."""
    out: dict[str, Any] = {_TAX_TO_CANONICAL.get(k, k): v for k, v in fields.items()}
    if isinstance(out.get("wage"), str) and out["wage"].isdigit():
        out["wage"] = int(out["wage"])
    return _ordered(out)


def _answer_errors(answer: dict[str, Any]) -> list[list[str]]:
    """(field, reason) pairs of a national failure answer (``output.errors`` or ``err_msg``)."""
    listed = (answer.get("output") or {}).get("errors")
    if isinstance(listed, list):
        return [[str(f), str(r)] for f, r in listed]
    message = str(answer.get("err_msg") or "")
    return [list(part.partition(": ")[::2]) for part in _ERROR_SPLIT.split(message) if part]


def replay_tax(fx: Fixture) -> list[str]:
    """Build the fixture's SOAP request and compare it with its golden XML, as data."""
    req = EmployeeEnrollment.model_validate_json(fx.input.read_text(encoding="utf-8"))
    stem = fx.input.name.removesuffix(".input.json")
    built = build_enroll_request(req, tax_serial(stem), sent_at=TAX_SENT_AT)
    return xml_differences(fx.expected.read_bytes(), built)


def replay_catalogue(fx: Fixture) -> list[str]:
    """One catalogue operation's fixture against the hub's contract and codecs."""
    from contracts.taxcat import OPS, core_to_canonical, model_for, op, to_wire
    from tools.fixtures.generate_catalogue import SENT_AT

    doc = json.loads(fx.input.read_text(encoding="utf-8"))
    o = op(str(doc["operation"]))
    model = model_for(o.name)
    payload = model.model_validate(doc["payload"]).model_dump(mode="json", exclude_none=True)
    from_core = model.model_validate(core_to_canonical(o, doc["core"])).model_dump(
        mode="json", exclude_none=True)
    out = json_differences({"payload": doc["payload"], "core_to_canonical": payload,
                            "tax": doc["tax"]},
                           {"payload": payload, "core_to_canonical": from_core,
                            "tax": to_wire(o, payload)})
    golden = fx.expected.read_bytes()
    # The serial is the fixture's identity (``FIX-<n>``), not something the hub derives.
    head = _without_xmlns(xml_data(golden))
    serial = _find(head, "ywlsh") or f"FIX-{OPS.index(o):03d}"
    built = build_request(o.name, payload, serial, sent_at=SENT_AT)
    return out + xml_differences(golden, built)


def _find(value: Any, key: str) -> str | None:
    """The first value of element ``key`` (any prefix) in xmltodict data, depth first."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k.rpartition(":")[2] == key and isinstance(v, str):
                return v
            if (found := _find(v, key)) is not None:
                return found
    return None


# ---------------------------------------------------------------- capturing tax

class TaxTap:
    """A pass-through in front of the tax simulator that keeps every request body it forwards."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.upstream = ""
        self.bodies: list[bytes] = []
        self._http = http
        self.app = FastAPI(title="tax tap (replay)")
        self.app.add_api_route("/{path:path}", self._forward, methods=["POST"])

    async def _forward(self, request: Request) -> Response:
        body = await request.body()
        self.bodies.append(body)
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("content-type", "soapaction")}
        r = await self._http.post(self.upstream, content=body, headers=headers,
                                  params=request.query_params)
        return Response(r.content, status_code=r.status_code,
                        media_type=r.headers.get("content-type"))

    def received(self) -> tuple[dict[str, dict[str, str]], list[str]]:
        """EmployeeEnroll bodies by ``ywlsh`` (the last one wins), and unreadable requests."""
        by_serial: dict[str, dict[str, str]] = {}
        unreadable: list[str] = []
        for body in self.bodies:
            try:
                serial, fields = parse_enroll_request(body)
            except HubError as exc:
                unreadable.append(exc.reason)
                continue
            by_serial[serial] = fields
        return by_serial, unreadable


# ---------------------------------------------------------------- core fixtures

@dataclass
class _Sent:
    fx: Fixture
    status: int
    answer: dict[str, Any]


async def _post(http: httpx.AsyncClient, url: str, fx: Fixture, auth: httpx.Auth) -> _Sent:
    """Post a fixture as core does: signed with core's partner secret (``auth``)."""
    r = await http.post(url, content=fx.input.read_bytes(),
                        headers={"content-type": "application/json"}, auth=auth)
    try:
        answer = r.json()
    except ValueError:
        answer = {"_body": r.text[:500]}
    return _Sent(fx, r.status_code, answer if isinstance(answer, dict) else {"_body": answer})


def _check_invalid(sent: _Sent) -> list[str]:
    expected = json.loads(sent.fx.expected.read_text(encoding="utf-8"))
    want = {"infcode": -1, "errors": expected["errors"]}
    got = {"infcode": sent.answer.get("infcode"), "errors": _answer_errors(sent.answer)}
    return json_differences(want, got)


async def _check_valid(sent: _Sent, stack: Stack, tap: TaxTap) -> list[str]:
    expected = json.loads(sent.fx.expected.read_text(encoding="utf-8"))
    business_key = f"{expected.get('unit_credit_code')}:{expected.get('id_number')}"
    want = {"hub_answer": 0, "outcome": "delivered", "core_sync_status": "synced",
            "tax_received": _ordered({k: v for k, v in expected.items()
                                      if k not in _NOT_ON_TAX_WIRE})}
    output = sent.answer.get("output") or {}
    got: dict[str, Any] = {"hub_answer": sent.answer.get("infcode")}
    if sent.answer.get("infcode") != 0:
        got["err_msg"] = sent.answer.get("err_msg", f"HTTP {sent.status}")
    txn = None
    if output.get("correlation_id"):
        txn = await stack.hub.deps.journal.transaction(output["correlation_id"])
    got["outcome"] = txn["status"] if txn else None
    if txn and txn["status"] != "delivered" and txn.get("reason"):
        got["outcome_reason"] = txn["reason"]
    got["core_sync_status"] = stack.store.sync_status.get(business_key, {}).get("status")
    by_serial, unreadable = tap.received()
    # Tax gets the hub's partner serial (contracts.messages.partner_serial), not the
    # message id: the request is the one for this fixture's person.
    fields = next((f for f in reversed(by_serial.values())
                   if f.get("zjhm") == expected.get("id_number")), None) \
        if sent.answer.get("infcode") == 0 else None
    got["tax_received"] = _canonical_from_tax(fields) if fields is not None else None
    if fields is None and unreadable:
        got["tax_unreadable_requests"] = unreadable
    return json_differences(want, got)


async def _replay_core(settings: HubSettings, fixtures: Sequence[Fixture]) -> dict[str, list[str]]:
    """Run the core fixtures through one stack (tax behind a ``TaxTap``); name -> diff lines.

    Core's store starts empty: H9201 does not require core to know the person.
    """
    results: dict[str, list[str]] = {}
    async with contextlib.AsyncExitStack() as ctx:
        http = await ctx.enter_async_context(httpx.AsyncClient(timeout=30))
        tap = TaxTap(http)
        tap_url = await ctx.enter_async_context(serve_app(tap.app))
        tmp = ctx.enter_context(tempfile.TemporaryDirectory(prefix="replay-"))
        stack = await ctx.enter_async_context(running_stack(
            settings, store=CoreStore(), reject_suffixes=(),
            namespace=f"replay{uuid.uuid4().hex[:8]}",
            database_url=f"sqlite+aiosqlite:///{tmp}/hub.db",
            overrides={**fast_policies(settings), "tax_url": f"{tap_url}/tax/ws"}))
        tap.upstream = stack.tax_url
        url = f"{stack.hub_url}/partners/core/events"
        core = stack.partner_auth("core")
        sent = [await _post(http, url, fx, core) for fx in fixtures]
        if any(s.fx.kind == "core" and s.answer.get("infcode") == 0 for s in sent):
            # every answered event (accepted or refused) is one transaction
            await wait_until_settled(stack, sum(s.status < 500 for s in sent),
                                     SETTLE_TIMEOUT_S)
        for s in sent:
            try:
                results[s.fx.name] = (await _check_valid(s, stack, tap)
                                      if s.fx.kind == "core" else _check_invalid(s))
            except Exception as exc:  # e.g. an unreadable expected file
                results[s.fx.name] = _failure(exc)
    return results


def _failure(exc: Exception) -> list[str]:
    return [f"  error: {type(exc).__name__}: {exc}"]


PURE: Final = frozenset({"channel_rule", "rule", "department", "resend_gap", "partner"})


async def _replay_one(fx: Fixture) -> list[str]:
    if fx.kind == "unreplayable":
        return [f"  error: cannot replay {fx.input}: {fx.problem}"]
    if not fx.expected.exists():
        return [f"  error: no expectation {fx.expected.name} beside {fx.input.name}"]
    if fx.kind in PURE:
        return await replay_pure(fx)
    if fx.kind == "channel_sample":
        return replay_channel_sample(fx)
    if fx.kind == "tax":
        return replay_tax(fx)
    if fx.kind == "catalogue":
        return replay_catalogue(fx)
    raise ValueError(f"no replayer for kind {fx.kind}")  # core kinds go through a stack


HELP: Final = """Replay the contract fixtures under PATH and diff what the hub makes of them.

PATH is a fixture folder or any folder above some (default contracts/fixtures: every
kind). Each fixture's input goes through the hub's own code and the result is compared
with its expectation field by field: core's H2101 events are posted to a real hub
(started in process on the stack's simulators, tax behind a pass-through that keeps what
tax received); tax SOAP requests and the 73 catalogue operations are built and compared
with their golden XML as data (XML compared element by element, not as text); channel
request bodies, channel rules and reviews, return files (回盘), 比对, student batches,
initial-load rows, 补发 gaps, the departments (F7/F8/F12), transfer (F9), finance refunds
(F10) and drug sales/prescriptions (F11) are run through their pure contracts.
--partner NAME keeps one partner's folder (core, tax, channels, difficulty, transfer,
finance, drugs, ...), --type NAME one fixture folder (employee_enroll, catalogue,
samples, rules, files, ...). A fixture that cannot be replayed (a folder of no known
kind, an expectation without its input, an input without its expectation) FAILS, it is
never skipped. Prints PASS/FAIL per fixture with each differing field's path, then
"replay: fixtures=N passed=N failed=N". Exit 0 when all passed, 1 when any failed, 2
when nothing was selected."""


async def replay(path: str | Path = "contracts/fixtures", partner: str | None = None,
                 type: str | None = None, *,
                 settings: HubSettings | None = None) -> int:
    """``run_replay`` for callers already in an event loop (same arguments, same result)."""
    root = Path(path)
    if not root.is_dir():
        print(f"replay: {path} is not a folder of fixtures")
        return 2
    found, _ = discover(root)
    fixtures = select(found, partner, type)
    if not fixtures:
        partners = sorted({fx.partner for fx in found})
        types = sorted({fx.type for fx in found if partner is None or fx.partner == partner})
        print(f"replay: no fixtures under {path} for partner={partner or 'all'} "
              f"type={type or 'all'} (partners: {', '.join(partners) or '-'}; "
              f"types: {', '.join(types) or '-'})")
        return 2
    results: dict[str, list[str]] = {}
    for fx in fixtures:
        if fx.kind in ("core", "core_invalid"):
            continue
        try:
            results[fx.name] = await _replay_one(fx)
        except Exception as exc:  # a broken fixture fails itself, not the run
            results[fx.name] = _failure(exc)
    core = [fx for fx in fixtures if fx.kind in ("core", "core_invalid")]
    if core:
        try:
            results.update(await _replay_core(settings or load_settings(), core))
        except Exception as exc:
            results.update({fx.name: _failure(exc) for fx in core if fx.name not in results})
    failed = 0
    for fx in fixtures:
        diff = results.get(fx.name, ["  error: not replayed"])
        print(f"{'FAIL' if diff else 'PASS'} {fx.name}")
        for line in diff:
            print(line)
        failed += bool(diff)
    print(f"replay: fixtures={len(fixtures)} passed={len(fixtures) - failed} failed={failed}")
    return 0 if failed == 0 else 1


def run_replay(path: str | Path = "contracts/fixtures", partner: str | None = None,
               type: str | None = None, *,
               settings: HubSettings | None = None) -> int:
    """Replay the fixtures under ``path`` (``HELP``); the exit code. Synchronous: runs its
    own event loop (inside one, ``await replay(...)``)."""
    return asyncio.run(replay(path, partner, type, settings=settings))

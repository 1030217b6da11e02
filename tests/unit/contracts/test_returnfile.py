"""The return-file contract: layout round trip, line errors, trailer checks, fast/slow agreement."""

from __future__ import annotations

import io
import random
from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.errors import ValidationFailed
from contracts.returnfile import (
    KINDS,
    LineError,
    ReturnFileHeader,
    ReturnFileName,
    ReturnFileReader,
    ReturnRecord,
    ReturnRecordModel,
    format_marker,
    format_record,
    is_arrival,
    iter_lines,
    layout,
    parse_marker,
    synthetic_records,
    write_return_file,
)

Item = ReturnRecord | LineError


def make(kind: str = "flex_pay", n: int = 20, **kw: object) -> bytes:
    buf = io.BytesIO()
    write_return_file(buf, kind, n, **kw)  # type: ignore[arg-type]
    return buf.getvalue()


def read(data: bytes, max_line_bytes: int = 2048) -> tuple[ReturnFileReader, list[Item]]:
    reader = ReturnFileReader(iter_lines(io.BytesIO(data), max_line_bytes),
                              max_line_bytes=max_line_bytes)
    return reader, list(reader)


def errors_of(items: list[Item]) -> list[LineError]:
    return [i for i in items if isinstance(i, LineError)]


def rejected(data: bytes) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as info:
        read(data)
    return info.value


@pytest.mark.parametrize("kind", list(KINDS))
def test_good_file_of_every_kind_round_trips(kind: str) -> None:
    data = make(kind, 120)
    reader, items = read(data)
    expected = list(synthetic_records(kind, 120))
    assert items == expected
    s = reader.summary
    assert (s.lines, s.records, s.errors) == (120, 120, 0)
    assert s.trailer is not None and s.trailer.record_count == 120
    assert s.amount_fen == sum(r.amount_fen for r in expected)
    assert reader.header == ReturnFileHeader.model_validate(
        {"kind": kind, "file_date": date(2025, 1, 15), "batch_no": "0001"})


@pytest.mark.parametrize("kind", list(KINDS))
def test_pydantic_model_agrees_with_the_hot_path(kind: str) -> None:
    for rec in synthetic_records(kind, 7):
        model = ReturnRecordModel.from_record(kind, rec)
        assert model.to_record() == rec
        assert model.kind == kind


def test_model_refuses_fields_the_kind_does_not_carry() -> None:
    rec = next(synthetic_records("flex_pay", 1))
    with pytest.raises(ValidationError, match="must be empty"):
        ReturnRecordModel.from_record("flex_pay", rec._replace(mode="1"))


def test_deduct_failures_are_stored_but_no_arrival() -> None:
    recs = list(synthetic_records("flex_deduct", 100))
    failed = [r for r in recs if r.result == "0"]
    assert len(failed) == 2 and all(r.fail_reason for r in failed)
    assert not any(is_arrival(r) for r in failed)
    assert all(is_arrival(r) for r in synthetic_records("unit_pay", 5))


def _line(kind: str, i: int = 0, **over: Any) -> bytes:
    rec = list(synthetic_records(kind, i + 1))[i]._replace(**over)
    return (format_record(kind, rec) + "\n").encode()


def _first(kind: str) -> ReturnRecord:
    return next(synthetic_records(kind, 1))


def _bad_check(code: str) -> str:
    return code[:17] + ("1" if code[17] != "1" else "2")


CORRUPT = {
    "bad period": (_line("flex_pay", period="202513"), "period", "202513"),
    "bad amount": (_line("flex_pay", amount_fen="12a"), "amount_fen", "12a"),
    "bad id checksum": (_line("flex_pay", payer_code=_bad_check(_first("flex_pay").payer_code)),
                        "payer_code", "check character"),
    "feb 30": (_line("flex_pay", value_date="20250230"), "value_date", "not a real date"),
    "wrong insutype": (_line("resident_pay", insutype="310"), "insutype", None),
    "too few fields": (b"D|X1|2|3\n", "line", "got 3"),
    "not a detail": (b"X|1|2\n", "record_type", None),
    "empty line": (b"\n", "record_type", "empty"),
    "not utf-8": (b"D|\xff\xfe|x\n", "line", "UTF-8"),
}


@pytest.mark.parametrize("case", list(CORRUPT))
def test_a_corrupt_line_is_reported_with_its_number_and_the_rest_parses(case: str) -> None:
    bad, field, text = CORRUPT[case]
    kind = "resident_pay" if case == "wrong insutype" else "flex_pay"
    reader, items = read(make(kind, 30, replace={7: bad}))
    errs = errors_of(items)
    assert [(e.line_no, e.field) for e in errs] == [(7, field)]
    if text:
        assert text in errs[0].reason
    assert reader.summary.records == 29 and reader.summary.lines == 30
    assert [i.line_no for i in items] == list(range(2, 32))


def test_line_errors_never_echo_personal_data() -> None:
    rec = next(synthetic_records("flex_pay", 1))
    bad = _line("flex_pay", payer_code=rec.payer_code[:17] + "Z")
    [err] = errors_of(read(make("flex_pay", 5, replace={3: bad}))[1])
    assert err.field == "payer_code" and rec.payer_code[:10] not in err.reason


def test_deduct_result_and_reason_must_agree() -> None:
    bad = _line("flex_deduct", result="0", fail_reason="")
    [err] = errors_of(read(make("flex_deduct", 5, replace={4: bad}))[1])
    assert (err.line_no, err.field) == (4, "fail_reason")


def test_special_payer_code_follows_the_mode() -> None:
    unit = next(r for r in synthetic_records("special_pay", 3) if r.mode == "1")
    bad = _line("special_pay", 0, mode="2", payer_code=unit.payer_code)
    [err] = errors_of(read(make("special_pay", 5, replace={2: bad}))[1])
    assert err.field == "payer_code" and "mode 2" in err.reason


def test_oversize_line_is_one_error_and_the_next_line_still_parses() -> None:
    huge = b"D|" + b"x" * 5000 + b"\n"
    reader, items = read(make("flex_pay", 10, replace={5: huge}), max_line_bytes=256)
    assert [(e.line_no, e.field) for e in errors_of(items)] == [(5, "line")]
    assert "longer than 256" in errors_of(items)[0].reason
    assert reader.summary.records == 9 and reader.summary.lines == 10


def test_count_mismatch_rejects_the_file() -> None:
    data = make("flex_pay", 10)
    head, _, tail = data.rpartition(b"T|10|")
    exc = rejected(head + b"T|11|" + tail)
    assert exc.field == "trailer.record_count"


def test_checksum_mismatch_rejects_the_file() -> None:
    data = make("flex_pay", 10)
    lines = data.splitlines(keepends=True)
    lines[3], lines[4] = lines[4], lines[3]  # reordered: same count and total, other digest
    exc = rejected(b"".join(lines))
    assert [f for f, _ in exc.errors] == ["trailer.sha256"]


def test_total_mismatch_rejects_a_clean_file() -> None:
    data = make("flex_pay", 3)
    head, sep, rest = data.rpartition(b"T|3|")
    total, _, digest = rest.partition(b"|")
    exc = rejected(head + sep + str(int(total) + 1).encode() + b"|" + digest)
    assert exc.field == "trailer.amount_total_fen"


def test_missing_trailer_rejects_the_file_but_reports_lines_first() -> None:
    data = make("flex_pay", 10)
    truncated = data[: data.rindex(b"T|")]
    reader = ReturnFileReader(iter_lines(io.BytesIO(truncated)))
    seen: list[Item] = []
    with pytest.raises(ValidationFailed) as info:
        seen.extend(reader)
    assert info.value.field == "trailer" and "missing" in info.value.reason
    assert len(seen) == 10


def test_data_after_the_trailer_rejects_but_blank_lines_do_not() -> None:
    assert read(make("flex_pay", 3) + b"\n\r\n")[0].summary.records == 3
    assert rejected(make("flex_pay", 3) + b"D|more\n").field == "trailer"


@pytest.mark.parametrize(("header", "field"), [
    (b"H|refunds|20250115|0001|1\n", "header.kind"),
    (b"H|flex_pay|20250230|0001|1\n", "header.file_date"),
    (b"H|flex_pay|20250115|0001|2\n", "header.version"),
    (b"garbage\n", "header"),
    (b"", "header"),
])
def test_bad_header_rejects_before_any_line(header: bytes, field: str) -> None:
    body = make("flex_pay", 3).split(b"\n", 1)[1]
    reader = ReturnFileReader(iter_lines(io.BytesIO(header + body if header else b"")))
    with pytest.raises(ValidationFailed) as info:
        reader.read_header()
    assert info.value.field == field


def test_crlf_files_parse_when_the_digest_covers_them() -> None:
    buf = io.BytesIO()
    write_return_file(buf, "flex_pay", 4)
    crlf = buf.getvalue().replace(b"\n", b"\r\n")
    assert rejected(crlf).field == "trailer.sha256"  # ASCII-mode transfer is detected


def test_fast_and_slow_paths_agree_on_mutated_lines() -> None:
    """Random byte edits of valid lines: accepted by the regex iff the field checks pass."""
    from contracts.returnfile import _LAYOUTS

    rng = random.Random(5)
    alphabet = "0123456789|XA-\r 年"
    for kind in KINDS:
        lay = _LAYOUTS[kind]
        for rec in synthetic_records(kind, 60):
            line = list(format_record(kind, rec))
            for _ in range(rng.randint(1, 2)):
                line[rng.randrange(len(line))] = rng.choice(alphabet)
            text = "".join(line)
            fast = lay.parse(text, rec.line_no)
            slow = lay.explain(text, rec.line_no)
            if isinstance(fast, ReturnRecord):
                assert slow.reason == "does not match the layout", (kind, text)
            else:
                assert slow == fast and slow.reason != "does not match the layout", (kind, text)


def test_layouts_document_every_field() -> None:
    for kind in KINDS:
        names = [f.name for f in layout(kind)]
        assert names[0] == "serial" and "amount_fen" in names and "value_date" in names
        assert all(f.zh and f.en and f.type for f in layout(kind))


def test_file_names_and_markers() -> None:
    name = ReturnFileName.parse("/outbound/unit_pay/unit_pay_20250115_0003.txt")
    assert name == ReturnFileName("unit_pay", "20250115", "0003")
    assert name.path == "/outbound/unit_pay/unit_pay_20250115_0003.txt"
    assert name.marker == name.path + ".ok"
    assert ReturnFileName.parse("unit_pay_20250115_0003.txt.ok") is None
    assert ReturnFileName.parse("refund_20250115_0003.txt") is None
    assert parse_marker(format_marker("a" * 64, 12)) == ("a" * 64, 12)
    assert parse_marker(b"") is None
    with pytest.raises(ValidationFailed):
        parse_marker(b"nonsense")


def test_the_examples_in_returnfiles_md_parse_as_their_kind() -> None:
    """Every ``D|`` example under a ``#### `kind` `` heading is a valid line of that kind."""
    from pathlib import Path

    from contracts.returnfile import _LAYOUTS

    doc = (Path(__file__).resolve().parents[3] / "contracts" / "RETURNFILES.md").read_text()
    checked = 0
    for section in doc.split("\n#### ")[1:]:
        kind = section.split("`")[1]
        assert kind in KINDS, kind
        for line in section.splitlines():
            if line.startswith("D|"):
                parsed = _LAYOUTS[kind].parse(line, 2)
                assert isinstance(parsed, ReturnRecord), (kind, parsed)
                checked += 1
    assert checked >= 8 and all(f"`{k}`" in doc for k in KINDS)


def test_the_kind_literal_lists_every_kind() -> None:
    from typing import get_args

    from contracts.returnfile import Kind

    assert set(get_args(Kind)) == set(KINDS)


def test_a_malformed_trailer_rejects_and_is_not_counted_as_a_line() -> None:
    data = make("flex_pay", 4)
    head = data[: data.rindex(b"T|")]
    reader = ReturnFileReader(iter_lines(io.BytesIO(head + b"T|4|x\n")))
    with pytest.raises(ValidationFailed) as info:
        list(reader)
    assert info.value.field == "trailer" and reader.summary.lines == 4

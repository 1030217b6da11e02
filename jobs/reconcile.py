"""参保信息比对 engine (F3): compare tax's batch with core's records, yield the differences.

Pure: no I/O besides iterating its inputs. Both sides are iterables of
records (contract models, or raw mappings that are validated here), matched
on the natural key of the kind (unit: uscc; employee: uscc + id_number;
resident: id_number) and compared on a configurable list of fields.

Memory: hash join, not sort-merge. One side (``index_side``, core by default)
is read first into a dict ``key -> packed string`` ("row, name, compared values"
joined by a control character), about 300 bytes per record: 1,000,000 records
take roughly 300 MB. The other side is streamed record by record; once a key
has matched, its packed string is replaced by a small int (the row that
matched), so memory falls as the stream advances and a second record with the
same key is still recognised as a duplicate. Keys seen only on the streamed
side cost about 150 bytes each. Index the smaller side: with a huge tax batch
and a small core extract, pass ``index_side="tax"``. A sort-merge of two
key-sorted inputs would run in constant memory, but neither side arrives
sorted (tax pushes in its own order, core's extract is paged by its own ids)
and an external sort of a million rows costs more than this index; the index
also finds duplicates for free, which a merge would only find when adjacent.

Order of the output: invalid and duplicate records of the indexed side (as
the index is built), then the streamed side's differences in its order, then
the records only on the indexed side, in their input order.

Invalid records never stop a run: each becomes a ``Difference`` of kind
``invalid`` naming its fields. Log lines carry counts and masked keys only;
the differences themselves (full IDs and names, which caseworkers need) go to
the report, never to the log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ValidationError

from contracts.errors import ValidationFailed
from contracts.masking import mask_text
from contracts.reconcile import (
    COMPARABLE_FIELDS,
    DEFAULT_FIELDS,
    DISPLAY_FIELD,
    KEY_FIELDS,
    KINDS,
    RECORD_TYPES,
    BatchHeader,
    Difference,
    DiffKind,
    FieldDiff,
    FieldError,
    ReconcileKind,
    ReconcileRecord,
    ReconcileSummary,
    Side,
)

__all__ = [
    "CoreSnapshot",
    "InMemoryCoreSnapshot",
    "InputRecord",
    "JsonLinesCoreSnapshot",
    "Reconciliation",
    "compared_fields",
    "parse_record",
    "reconcile",
    "reconcile_batch",
]

log = logging.getLogger(__name__)

InputRecord = ReconcileRecord | Mapping[str, object]
"""A contract model (trusted, already normalised) or a raw mapping of field name -> value."""

_SEP = "\x1f"  # unit separator: the record validators refuse control characters
_MAX_VALUE = 200  # characters of an invalid value kept in the report


class CoreSnapshot(Protocol):
    """Port: core's side of a comparison, e.g. fetched page by page from the core adapter."""

    def records(self, kind: ReconcileKind) -> Iterable[InputRecord]: ...


class InMemoryCoreSnapshot:
    """A ``CoreSnapshot`` over lists held in memory: for tests and small extracts."""

    def __init__(self, records: Iterable[InputRecord] = ()) -> None:
        self._by_kind: dict[str, list[InputRecord]] = {k: [] for k in KINDS}
        self.add(*records)

    def add(self, *records: InputRecord) -> None:
        """Models go to their own kind; a raw mapping needs a ``kind`` entry."""
        for r in records:
            kind = r.kind if isinstance(r, BaseModel) else str(r.get("kind", ""))
            if kind not in self._by_kind:
                raise ValidationFailed([("kind", f"unknown record kind {kind!r}")])
            if not isinstance(r, BaseModel):
                r = {k: v for k, v in r.items() if k != "kind"}
            self._by_kind[kind].append(r)

    def records(self, kind: ReconcileKind) -> Iterator[InputRecord]:
        return iter(list(self._by_kind[kind]))


class JsonLinesCoreSnapshot:
    """A ``CoreSnapshot`` read from a file of one JSON object per line, one kind only: core's
    extract spooled to disk as its pages arrive, so a comparison that indexes the tax
    batch streams core's side and never holds it in memory."""

    def __init__(self, path: Path, kind: ReconcileKind) -> None:
        self.path, self.kind = path, kind

    def records(self, kind: ReconcileKind) -> Iterator[InputRecord]:
        if kind != self.kind:
            return
        with self.path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)


def compared_fields(kind: ReconcileKind, fields: Sequence[str] | None = None) -> tuple[str, ...]:
    """The fields to compare: ``DEFAULT_FIELDS[kind]`` unless a list is given (checked here)."""
    if kind not in RECORD_TYPES:
        raise ValidationFailed([("kind", f"unknown kind {kind!r}; expected one of "
                                         f"{', '.join(KINDS)}")])
    if fields is None:
        return DEFAULT_FIELDS[kind]
    chosen = tuple(dict.fromkeys(f.strip() for f in fields if f.strip()))
    bad = [f for f in chosen if f not in COMPARABLE_FIELDS[kind]]
    if bad:
        raise ValidationFailed([("fields", f"{f!r} cannot be compared for kind {kind}; "
                                           f"expected some of {', '.join(COMPARABLE_FIELDS[kind])}")
                                for f in bad])
    if not chosen:
        raise ValidationFailed([("fields", "name at least one field to compare")])
    return chosen


def _field_errors(exc: ValidationError) -> tuple[FieldError, ...]:
    out = []
    for e in exc.errors():
        field = ".".join(str(p) for p in e["loc"]) or "record"
        value = "" if e["type"] == "missing" else str(e.get("input", ""))[:_MAX_VALUE]
        out.append(FieldError(field=field, reason=e["msg"].removeprefix("Value error, "),
                              value=value))
    return tuple(out)


def _parse(kind: ReconcileKind, record: object) -> ReconcileRecord | tuple[FieldError, ...]:
    cls = RECORD_TYPES[kind]
    if isinstance(record, cls):
        return record
    if not isinstance(record, Mapping) or isinstance(record, BaseModel):
        what = getattr(record, "kind", type(record).__name__)
        return (FieldError(field="record", reason=f"not a {kind} record ({what})"),)
    try:
        return cls.model_validate(record)
    except ValidationError as exc:
        return _field_errors(exc)


def parse_record(kind: ReconcileKind, record: object) -> ReconcileRecord:
    """One input record as its contract model, or ``ValidationFailed`` naming every bad field."""
    parsed = _parse(kind, record)
    if isinstance(parsed, tuple):
        raise ValidationFailed([(e.field, e.reason) for e in parsed])
    return parsed


def _raw_key(kind: ReconcileKind, record: object) -> tuple[str, tuple[str, ...]]:
    """Best-effort name and key of an invalid record, for the report row."""
    if not isinstance(record, Mapping):
        return "", ()
    key = tuple(str(record.get(f) or "").strip().upper() for f in KEY_FIELDS[kind])
    return str(record.get(DISPLAY_FIELD[kind]) or "").strip(), key


class Reconciliation:
    """One comparison run. Iterate it once for the differences; ``summary`` counts them.

    ``header`` (tax's batch header) is checked against ``kind`` and its record
    count is reported beside the number of records that actually arrived.
    With ``numbered=True`` both sides yield ``(row, record)`` pairs and the
    rows are reported as given (a file reader passes its line numbers);
    otherwise a record's row is its 1-based position.
    """

    def __init__(self, kind: ReconcileKind, tax: Iterable[object], core: Iterable[object], *,
                 fields: Sequence[str] | None = None, header: BatchHeader | None = None,
                 index_side: Side = "core", numbered: bool = False) -> None:
        self.kind = kind
        self.fields = compared_fields(kind, fields)
        if header is not None and header.kind != kind:
            raise ValidationFailed([("kind", f"batch {header.batch_id} is a {header.kind} "
                                             f"batch, not {kind}")])
        if index_side not in ("tax", "core"):
            raise ValidationFailed([("index_side", "must be tax or core")])
        self.header = header
        self.numbered = numbered
        self.index_side: Side = index_side
        self.stream_side: Side = "tax" if index_side == "core" else "core"
        self._inputs: dict[str, Iterable[object]] = {"tax": tax, "core": core}
        self._display = DISPLAY_FIELD[kind]
        self._started = False
        self._complete = False
        self._counts: dict[str, int] = dict.fromkeys(
            ("tax_records", "core_records", "matched", "identical", "field_mismatch",
             "only_at_tax", "only_in_core", "invalid_tax", "invalid_core", "duplicate_tax",
             "duplicate_core"), 0)
        self._field_counts: dict[str, int] = dict.fromkeys(self.fields, 0)

    @property
    def summary(self) -> ReconcileSummary:
        """The counts so far; ``complete`` once the differences have been read to the end."""
        h = self.header
        return ReconcileSummary(
            kind=self.kind, fields=self.fields, batch_id=h.batch_id if h else "",
            as_of=h.as_of if h else None, declared_tax_records=h.record_count if h else None,
            field_counts={f: n for f, n in self._field_counts.items() if n},
            complete=self._complete, **self._counts)

    def __iter__(self) -> Iterator[Difference]:
        if self._started:
            raise RuntimeError("a Reconciliation can be iterated only once")
        self._started = True
        return self._run()

    # ------------------------------------------------------------------ internals

    def _values(self, record: ReconcileRecord) -> tuple[str, ...]:
        return tuple(v if isinstance(v, str) else str(v)
                     for v in (getattr(record, f) for f in self.fields))

    def _read(self, side: Side) -> Iterator[tuple[int, ReconcileRecord] | Difference]:
        """Numbered valid records of one side; invalid ones already as differences."""
        for n, item in enumerate(self._inputs[side], start=1):
            self._counts[f"{side}_records"] = n
            row, raw = self._numbered(n, item)
            parsed = _parse(self.kind, raw)
            if isinstance(parsed, tuple):
                self._counts[f"invalid_{side}"] += 1
                name, key = _raw_key(self.kind, raw)
                log.debug("reconcile %s: invalid %s record %d (%s): %s", self.kind, side, row,
                          mask_text("/".join(key)), mask_text("; ".join(
                              f"{e.field}: {e.reason}" for e in parsed)))
                yield Difference(kind=self.kind, diff=DiffKind.INVALID, key=key, name=name,
                                 side=side, row=row, errors=parsed)
            else:
                yield row, parsed

    def _numbered(self, n: int, item: object) -> tuple[int, object]:
        if not self.numbered:
            return n, item
        if (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], int)
                and item[0] >= 1):
            return item[0], item[1]
        raise TypeError(f"numbered input: item {n} is not a (row >= 1, record) pair")

    def _duplicate(self, side: Side, row: int, record: ReconcileRecord,
                   first: int) -> Difference:
        self._counts[f"duplicate_{side}"] += 1
        return Difference(kind=self.kind, diff=DiffKind.DUPLICATE, key=record.key,
                          name=str(getattr(record, self._display)), side=side, row=row,
                          other_row=first)

    def _only(self, side: Side, key: tuple[str, ...], name: str, row: int,
              values: Sequence[str]) -> Difference:
        diff = DiffKind.ONLY_AT_TAX if side == "tax" else DiffKind.ONLY_IN_CORE
        self._counts[diff.value] += 1
        tax = side == "tax"
        # built from validated records: skip re-validation, this is the hot path of a big gap
        fields = tuple(FieldDiff.model_construct(field=f, tax_value=v if tax else "",
                                                 core_value="" if tax else v)
                       for f, v in zip(self.fields, values, strict=True))
        return Difference.model_construct(kind=self.kind, diff=diff, key=key, name=name,
                                          side=side, row=row, fields=fields)

    def _run(self) -> Iterator[Difference]:
        ix, st = self.index_side, self.stream_side
        index: dict[str, str | int] = {}
        for item in self._read(ix):
            if isinstance(item, Difference):
                yield item
                continue
            row, rec = item
            k = _SEP.join(rec.key)
            first = index.get(k)
            if first is not None:
                first_row = first if isinstance(first, int) else int(first.split(_SEP, 1)[0])
                yield self._duplicate(ix, row, rec, first_row)
                continue
            index[k] = _SEP.join((str(row), str(getattr(rec, self._display)),
                                  *self._values(rec)))

        for item in self._read(st):
            if isinstance(item, Difference):
                yield item
                continue
            row, rec = item
            k = _SEP.join(rec.key)
            entry = index.get(k)
            if isinstance(entry, int):
                yield self._duplicate(st, row, rec, entry)
                continue
            index[k] = row
            values = self._values(rec)
            if entry is None:
                yield self._only(st, rec.key, str(getattr(rec, self._display)), row, values)
                continue
            self._counts["matched"] += 1
            ix_row, _, *ix_values = entry.split(_SEP)
            if tuple(ix_values) == values:
                self._counts["identical"] += 1
                continue
            yield self._mismatch(rec, values, ix_values, row, int(ix_row))

        for k, entry in index.items():
            if isinstance(entry, str):
                row_s, name, *ix_values = entry.split(_SEP)
                yield self._only(ix, tuple(k.split(_SEP)), name, int(row_s), ix_values)
        index.clear()
        self._complete = True
        s = self.summary
        log.info("reconcile %s%s: tax=%d core=%d identical=%d mismatch=%d only_at_tax=%d "
                 "only_in_core=%d invalid=%d/%d duplicate=%d/%d", self.kind,
                 f" batch {s.batch_id}" if s.batch_id else "", s.tax_records, s.core_records,
                 s.identical, s.field_mismatch, s.only_at_tax, s.only_in_core, s.invalid_tax,
                 s.invalid_core, s.duplicate_tax, s.duplicate_core)
        if s.count_mismatch:
            log.warning("reconcile %s batch %s: header declares %d records, %d arrived",
                        self.kind, s.batch_id, s.declared_tax_records, s.tax_records)

    def _mismatch(self, rec: ReconcileRecord, st_values: tuple[str, ...],
                  ix_values: Sequence[str], st_row: int, ix_row: int) -> Difference:
        self._counts["field_mismatch"] += 1
        tax_first = self.stream_side == "tax"
        tax_row, core_row = (st_row, ix_row) if tax_first else (ix_row, st_row)
        diffs = []
        for f, sv, iv in zip(self.fields, st_values, ix_values, strict=True):
            if sv != iv:
                self._field_counts[f] += 1
                tv, cv = (sv, iv) if tax_first else (iv, sv)
                diffs.append(FieldDiff.model_construct(field=f, tax_value=tv, core_value=cv))
        return Difference.model_construct(kind=self.kind, diff=DiffKind.FIELD_MISMATCH,
                                          key=rec.key, name=str(getattr(rec, self._display)),
                                          side="tax", row=tax_row, other_row=core_row,
                                          fields=tuple(diffs))


def reconcile(kind: ReconcileKind, tax: Iterable[object], core: Iterable[object], *,
              fields: Sequence[str] | None = None, header: BatchHeader | None = None,
              index_side: Side = "core", numbered: bool = False) -> Reconciliation:
    """Compare ``tax`` with ``core``; iterate the result for ``Difference`` records."""
    return Reconciliation(kind, tax, core, fields=fields, header=header, index_side=index_side,
                          numbered=numbered)


def reconcile_batch(header: BatchHeader, tax: Iterable[object], snapshot: CoreSnapshot, *,
                    fields: Sequence[str] | None = None,
                    index_side: Side = "core") -> Reconciliation:
    """Compare one pushed tax batch with core's current records of the batch's kind."""
    return Reconciliation(header.kind, tax, snapshot.records(header.kind), fields=fields,
                          header=header, index_side=index_side)

"""The data contract's one validator, compiled once and run vectorized on Arrow columns.

``verify`` (golden set), ``pack`` (sample), the CLI (streamed files) and the HTTP server (one
request at a time) all go through :class:`CompiledContract`; there is no second validator to
keep in sync. A :class:`ValidationSession` folds chunks of a large file into one report with
global row numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlhandoff.contract.coerce import JsonData, json_table
from mlhandoff.contract.reader import open_batches
from mlhandoff.contract.report import FieldViolation, Hit, ReportBuilder, Rule, ValidationReport
from mlhandoff.contract.rules import FieldCheck, Found
from mlhandoff.contract.tables import TableLike, read_table
from mlhandoff.contract.types import arrow_type
from mlhandoff.errors import Violation
from mlhandoff.spec.models import DataContract

__all__ = ["CompiledContract", "ValidationReport", "ValidationSession", "arrow_type"]


class CompiledContract:
    """A data contract prepared for repeated validation of tables."""

    def __init__(self, contract: DataContract, *, max_examples: int = 5) -> None:
        self.contract = contract
        self.max_examples = max_examples
        self._checks = [FieldCheck(name, spec) for name, spec in contract.fields.items()]
        self._order = {name: i for i, name in enumerate(contract.fields)}
        self._has_ids = any(spec.id for spec in contract.fields.values())
        self._allowed_extra = {contract.label} if contract.label else set()
        self._pii = {name for name, spec in contract.fields.items() if spec.pii}
        self._null_limits = {
            name: spec.max_null_fraction
            for name, spec in contract.fields.items()
            if spec.max_null_fraction is not None
        }
        self._buckets = {
            c.name: (c.bucket, c.domain_text)
            for c in self._checks
            if c.bucket is not None and c.domain_text is not None
        }

    def validate(
        self, table: TableLike, *, allow_extra: bool = False, parse_text: bool = False
    ) -> ValidationReport:
        """Check every rule on ``table``; never raises for bad data, reports it.

        ``parse_text`` reads numbers, booleans and dates written as text (CSV files); without
        it a number sent as text is a type violation, as an API client must hear.
        """
        session = self.session(allow_extra=allow_extra, parse_text=parse_text)
        session.add(table)
        return session.finish()

    def read(
        self, source: TableLike, *, allow_extra: bool = False, name: str = "data"
    ) -> tuple[pa.Table, ValidationReport]:
        """``source`` read as the contract types it (:func:`read_table`) and its report: for a
        file the same report ``validate_file`` gives (CSV text the contract could not type is
        parsed to point at the rows that break it), for data in memory :meth:`validate`'s."""
        if isinstance(source, str | Path):
            batches = open_batches(source, self.contract)
            table = batches.table()
            return table, self.validate(table, allow_extra=allow_extra, parse_text=batches.text)
        table = read_table(source, contract=self.contract, name=name)
        return table, self.validate(table, allow_extra=allow_extra)

    def validate_json(
        self, data: JsonData, *, allow_extra: bool = False
    ) -> tuple[pa.Table, ValidationReport]:
        """A request's records (or columns) of JSON values typed as the contract says, and the
        report of every violation of every record, each with the record's index: a value of
        the wrong JSON type is a ``type`` violation of its own record, and every other rule
        still runs on every record (missing and extra fields, ranges, domains ...)."""
        table, type_hits = json_table(data, self.contract)
        session = self.session(allow_extra=allow_extra)
        session._add(table, type_hits)
        return table, session.finish()

    def session(
        self,
        *,
        allow_extra: bool = False,
        parse_text: bool = False,
        extra_columns: Iterable[str] = (),
        repeats: Mapping[str, np.ndarray] | None = None,
    ) -> ValidationSession:
        """A validation fed chunk by chunk (row numbers continue across chunks).

        ``repeats``: for each id field, the sorted rows (numbered over everything this session
        will be fed) that repeat an id of an earlier row, found over the whole data
        (:func:`~mlhandoff.contract.ids.repeat_rows`); without it ids are unique per chunk.
        """
        return ValidationSession(self, allow_extra, parse_text, set(extra_columns), repeats)

    def normalize(self, table: pa.Table) -> pa.Table:
        """``table`` as the model should see it: absent nullable fields as typed nulls, unseen
        categories mapped to their bucket. Run on valid data, before every prediction."""
        for name, spec in self.contract.fields.items():
            if name not in table.column_names and spec.nullable:
                table = table.append_column(name, pa.nulls(table.num_rows, arrow_type(spec)))
        for name, (bucket, domain) in self._buckets.items():
            if name not in table.column_names:
                continue
            column = table.column(name)
            if pa.types.is_dictionary(column.type):
                column = column.cast(column.type.value_type)
            text = column if pa.types.is_string(column.type) else column.cast(pa.string())
            keep = pc.or_(pc.is_in(text, value_set=domain), pc.is_null(text))
            mapped = pc.if_else(keep, text, pa.scalar(bucket))
            table = table.set_column(table.column_names.index(name), name, mapped)
        return table


def without_batch_rules(contract: DataContract) -> DataContract:
    """The contract one request or a small subset is held to: rules about a whole batch (the
    null fraction) mean nothing there, so they are left to batch validation and monitoring."""
    fields = {
        n: f.model_copy(update={"max_null_fraction": None}) for n, f in contract.fields.items()
    }
    return contract.model_copy(update={"fields": fields})


class ValidationSession:
    """Chunks in, one report out; whole-data rules (max_null_fraction) are judged at the end."""

    def __init__(
        self,
        compiled: CompiledContract,
        allow_extra: bool,
        parse_text: bool,
        extra: set[str],
        repeats: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        self._c = compiled
        self._allow_extra = allow_extra
        self._parse_text = parse_text
        self._extra_ok = compiled._allowed_extra | extra
        self._builder = ReportBuilder(compiled.max_examples, compiled._pii)
        self._missing_required = False
        self._repeats = repeats

    def merge(self, other: ValidationSession) -> None:
        """Append ``other``'s report, a session over the rows after this one's (a partition
        validated elsewhere): the merged report is the one a single session fed both gives."""
        self._builder.merge(other._builder)
        self._missing_required |= other._missing_required

    @property
    def broken(self) -> bool:
        """Whether a row or schema rule is broken so far (whole-data rules are judged later)."""
        return self._builder.broken()

    def add(self, data: TableLike) -> None:
        """Validate one chunk; its rows are numbered after those of the chunks before it."""
        table = (
            data
            if isinstance(data, pa.Table | pa.RecordBatch)
            else read_table(data, contract=self._c.contract)
        )
        if isinstance(table, pa.Table) and not self._c._has_ids:
            batches = table.to_batches()
            if len(batches) > 1:  # row groups of a Parquet file: no copy, same report
                for batch in batches:
                    self._add(batch)
                return
        self._add(table)

    def _add(self, table: pa.Table | pa.RecordBatch, type_hits: Iterable[Hit] = ()) -> None:
        names = table.schema.names
        index = {name: i for i, name in enumerate(names)}
        rows = table.num_rows
        missing: list[str] = []
        jobs: list[tuple[FieldCheck, pa.Array]] = []
        for check in self._c._checks:
            i = index.get(check.name)
            if i is None:
                missing.append(check.name)
            else:
                jobs.append((check, _one_array(table.column(i))))
        found = self._run(jobs, self._builder.rows, rows)
        for hit in type_hits:
            _replace_nulls(found, hit)
        self._schema(names, missing, rows, found)
        self._builder.add(found.hits, rows, found.nulls)

    def _run(self, jobs: list[tuple[FieldCheck, pa.Array]], offset: int, rows: int) -> Found:
        # One thread: measured on 2 shared cores, a thread per field was slower (bench/README.md).
        found = Found()
        for check, arr in jobs:
            check.check(arr, found, self._parse_text, self._chunk_repeats(check, offset, rows))
        return found

    def _chunk_repeats(self, check: FieldCheck, offset: int, rows: int) -> np.ndarray | None:
        """This chunk's rows (from 0) that repeat an id over the whole data, if known."""
        if self._repeats is None or not check.spec.id:
            return None
        every = self._repeats.get(check.name)
        if every is None:
            return np.empty(0, dtype=np.int64)
        lo, hi = np.searchsorted(every, [offset, offset + rows])
        return every[lo:hi] - offset

    def _schema(self, names: list[str], missing: list[str], rows: int, found: Found) -> None:
        fields = self._c.contract.fields
        required = [n for n in missing if not fields[n].nullable]
        optional = [n for n in missing if fields[n].nullable]
        if required:
            self._missing_required = True
            self._builder.schema(
                _schema_violation(
                    Rule.MISSING_COLUMN, required, "seen in the contract, yet missing"
                )
            )
        if optional:
            for name in optional:
                found.nulls[name] = rows
            self._builder.schema(
                _schema_violation(
                    Rule.MISSING_COLUMN, optional, "nullable, absent, read as all null"
                ),
                notice=True,
            )
        if not self._allow_extra:
            unexpected = [n for n in names if n not in fields and n not in self._extra_ok]
            if unexpected:
                self._builder.schema(
                    _schema_violation(Rule.UNEXPECTED_COLUMN, unexpected, "not in the contract")
                )

    def finish(self) -> ValidationReport:
        violations, notices, failing = self._builder.finish(self._c._order, self._c._null_limits)
        rows = self._builder.rows
        return ValidationReport(
            rows=rows,
            violations=violations,
            notices=notices,
            failing_rows=rows if self._missing_required else failing,
        )


def _replace_nulls(found: Found, type_hit: Hit) -> None:
    """Add a type hit found before validation, whose values were replaced by nulls: those rows
    break the type rule, not the null rules; one type hit per field, rows in order."""
    name, rows = type_hit.field, type_hit.rows
    if name in found.nulls:
        found.nulls[name] -= len(rows)
    for hit in [h for h in found.hits if h.field == name]:
        if hit.rule == Rule.NOT_NULL:
            keep = ~np.isin(hit.rows, rows)
            hit.rows = hit.rows[keep]
            hit.shown = None if hit.shown is None else hit.shown[keep]
            if not len(hit.rows):
                found.hits.remove(hit)
        elif hit.rule == Rule.TYPE:  # the validator's own (text that is no time): one hit
            found.hits.remove(hit)
            type_hit = _merged(type_hit, hit)
    found.hits.append(type_hit)


def _merged(first: Hit, second: Hit) -> Hit:
    """Two hits of one rule as one, rows in order, each with its value."""
    shown = np.empty(len(first.rows) + len(second.rows), dtype=object)
    shown[: len(first.rows)] = list(first.shown) if first.shown is not None else []
    others = second.shown if second.shown is not None else second.values.take(second.rows)
    for j, value in enumerate(list(others)):
        shown[len(first.rows) + j] = value.as_py() if isinstance(value, pa.Scalar) else value
    rows = np.concatenate([first.rows, second.rows])
    order = np.argsort(rows, kind="stable")
    what = f"{first.what}; {second.what}"
    return Hit(first.field, first.rule, what, rows[order], first.values, first.notice, shown[order])


def _one_array(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(column, pa.Array):
        return column
    if column.num_chunks == 1:
        return column.chunk(0)
    if column.num_chunks == 0:
        return pa.array([], type=column.type)
    return column.combine_chunks()


def _schema_violation(rule: Rule, names: list[str], what: str) -> Violation:
    shown = ", ".join(names[:5]) + (f" (+{len(names) - 5} more)" if len(names) > 5 else "")
    return FieldViolation(
        field=names[0], rule=rule.value, message=f"{what}: {shown}", count=len(names), values=[]
    )

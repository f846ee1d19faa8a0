"""The one reader: ``read_table`` and ``validate_file`` see the same typed values in every format."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlhandoff.contract import CompiledContract, read_table, validate_file
from mlhandoff.contract.reader import open_batches
from mlhandoff.contract.types import arrow_type
from mlhandoff.spec.models import DataContract

CONTRACT = DataContract.model_validate(
    {
        "label": "y",
        "fields": {
            "n": {"type": "int", "min": 0},
            "x": {"type": "float", "min": 0, "max": 100, "nullable": True},
            "b": {"type": "bool"},
            "c": {"type": "category", "domain": ["a", "b"]},
            "s": {"type": "string"},
            "t": {"type": "timestamp", "timezone": "UTC"},
            "d": {"type": "date"},
        },
    }
)
FORMATS = ("csv", "parquet", "json", "jsonl")
UTC = dt.UTC


def _record(i: int) -> dict[str, Any]:
    return {
        "n": i,
        "x": None if i % 7 == 3 else i * 0.5,
        "b": i % 2 == 0,
        "c": "ab"[i % 2],
        "s": f"00{i}",  # a string that looks like a number keeps its leading zeros
        "t": dt.datetime(2026, 1, 1, tzinfo=UTC) + dt.timedelta(hours=i),
        "d": dt.date(2026, 1, 1) + dt.timedelta(days=i),
        "y": i % 2,
    }


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(_json_value(value))


def _write(records: list[dict[str, Any]], kind: str, path: Path) -> Path:
    """The same records in one format, each value as that format writes it."""
    target = path / f"d.{kind}"
    names = list(records[0])
    if kind == "parquet":
        types = {n: arrow_type(f) for n, f in CONTRACT.fields.items()} | {"y": pa.int64()}
        columns = {n: pa.array([r[n] for r in records], types[n]) for n in names}
        pq.write_table(pa.table(columns), target, row_group_size=7)
    elif kind == "csv":
        lines = [",".join(names)] + [",".join(_csv_value(r[n]) for n in names) for r in records]
        target.write_text("\n".join(lines) + "\n")
    else:
        rows = [{n: _json_value(v) for n, v in r.items()} for r in records]
        text = json.dumps(rows) if kind == "json" else "\n".join(json.dumps(r) for r in rows)
        target.write_text(text)
    return target


def _violations(report: Any) -> set[tuple[str, str, int, tuple[int, ...]]]:
    return {(v.field, v.rule, v.count, tuple(v.rows)) for v in report.violations}


def _same_values(a: list[Any], b: list[Any]) -> bool:
    return all(
        (x is None and y is None) or x == y or (isinstance(x, float) and math.isnan(x) and y != y)
        for x, y in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("kind", FORMATS)
def test_read_table_is_the_batches_typed_as_the_contract_says(tmp_path: Path, kind: str) -> None:
    records = [_record(i) for i in range(30)]
    path = _write(records, kind, tmp_path)
    table = read_table(path, contract=CONTRACT)
    for name, spec in CONTRACT.fields.items():
        assert table.schema.field(name).type == arrow_type(spec), (kind, name)
        assert _same_values(table.column(name).to_pylist(), [r[name] for r in records])
    batches = list(open_batches(path, CONTRACT, chunk_rows=4))
    if kind != "csv":  # CSV is read in blocks of at least 1 MB
        assert len(batches) > 1 and max(b.num_rows for b in batches) <= 4
    assert (
        pa.Table.from_batches(batches)
        .select(list(CONTRACT.fields))
        .equals(table.select(list(CONTRACT.fields)))
    )
    assert validate_file(path, CONTRACT, chunk_rows=4).ok
    assert CompiledContract(CONTRACT).validate(table).ok


@pytest.mark.parametrize("kind", ["json", "jsonl", "csv"])
def test_a_utc_timestamp_written_with_z_passes_validate_and_read_table_alike(
    tmp_path: Path, kind: str
) -> None:
    """Regression: JSON lines "…Z" was read as a naive timestamp by read_table (pack's reader),
    so pack failed the timezone rule on a file that validate passed."""
    path = _write([_record(0), _record(1)], kind, tmp_path)
    table = read_table(path, contract=CONTRACT)
    assert table.schema.field("t").type == pa.timestamp("us", tz="UTC")
    assert table.column("t")[0].as_py() == dt.datetime(2026, 1, 1, tzinfo=UTC)
    assert CompiledContract(CONTRACT).validate(table, allow_extra=True).ok
    assert validate_file(path, CONTRACT).ok


def test_a_jsonl_timestamp_field_absent_from_the_file_stays_absent(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"n": 1, "s": "a"}\n{"n": 2, "s": "b"}\n')
    table = read_table(path, contract=CONTRACT)
    assert table.column_names == ["n", "s"]
    report = validate_file(path, CONTRACT)
    missing = next(v for v in report.violations if v.rule == "missing_column")
    assert "t" in missing.message and "d" in missing.message


def test_csv_is_typed_by_the_contract_not_guessed_by_arrow(tmp_path: Path) -> None:
    """Arrow's guesses broke the contract: "007" read as 7, 1/0 read as int for a bool field."""
    path = tmp_path / "d.csv"
    path.write_text(
        "n,x,b,c,s,t,d,y\n"
        "1,2,1,a,007,2026-01-01T00:00:00Z,2026-01-01,0\n"
        "2.0,3,0,b,010,2026-01-02T00:00:00+01:00,2026-01-02,1\n"
    )
    table = read_table(path, contract=CONTRACT)
    assert table.column("s").to_pylist() == ["007", "010"]
    assert table.column("b").to_pylist() == [True, False]
    assert table.column("n").to_pylist() == [1, 2] and table.schema.field("n").type == pa.int64()
    assert table.schema.field("x").type == pa.float64()
    assert table.column("t")[1].as_py() == dt.datetime(2026, 1, 1, 23, tzinfo=UTC)
    assert table.column("y").to_pylist() == [0, 1]  # not in the contract: Arrow's inference
    assert CompiledContract(CONTRACT).validate(table, allow_extra=True).ok


@pytest.mark.parametrize("kind", ["csv", "json", "jsonl"])
def test_a_value_that_does_not_type_is_located_alike_by_both_paths(
    tmp_path: Path, kind: str
) -> None:
    records = [_record(i) for i in range(12)]
    records[4]["x"] = -1.0
    records[6]["t"] = "2026-01-01T00:00:00"  # naive
    records[7]["d"] = "2026-02-30"
    expected = {("x", "min", 1, (4,)), ("t", "timezone", 1, (6,)), ("d", "type", 1, (7,))}
    if kind == "csv":  # JSON holding text in a number column is refused as a whole file
        records[2]["x"], records[5]["b"] = "abc", "maybe"
        expected |= {("x", "type", 1, (2,)), ("b", "type", 1, (5,))}
    path = _write(records, kind, tmp_path)
    by_file = _violations(validate_file(path, CONTRACT, chunk_rows=5))
    table, report = CompiledContract(CONTRACT).read(path, allow_extra=True)
    assert _violations(report) == by_file == expected
    assert table.num_rows == 12


@st.composite
def _records(draw: st.DrawFn) -> list[dict[str, Any]]:
    rows = draw(st.integers(1, 25))
    records = [_record(i) for i in range(rows)]
    for record in records:
        record["n"] = draw(st.integers(-3, 10**12))
        record["x"] = draw(
            st.none() | st.floats(-10, 200, allow_nan=False).map(lambda v: round(v, 3))
        )
        record["c"] = draw(st.sampled_from(["a", "b", "z"]))
        record["s"] = draw(st.text("0123456789ab", min_size=1, max_size=6))
        record["t"] = draw(
            st.datetimes(dt.datetime(1970, 1, 1), dt.datetime(2100, 1, 1)).map(
                lambda v: v.replace(microsecond=0, tzinfo=UTC)
            )
        )
        record["d"] = draw(st.dates(dt.date(1900, 1, 1), dt.date(2200, 1, 1)))
    return records


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(records=_records(), chunk=st.integers(1, 30))
def test_every_format_reads_the_same_table_and_report(
    tmp_path_factory: pytest.TempPathFactory, records: list[dict[str, Any]], chunk: int
) -> None:
    directory = tmp_path_factory.mktemp("formats")
    tables, reports = {}, {}
    for kind in FORMATS:
        path = _write(records, kind, directory)
        tables[kind] = read_table(path, contract=CONTRACT).select(list(CONTRACT.fields))
        reports[kind] = _violations(validate_file(path, CONTRACT, chunk_rows=chunk))
        assert _violations(CompiledContract(CONTRACT).read(path)[1]) == reports[kind], kind
    for kind in FORMATS[1:]:
        assert tables[kind].equals(tables["csv"]), kind
        assert reports[kind] == reports["csv"], kind


def test_json_lines_without_a_contract_keep_the_offset_arrow_drops(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(
        '{"t": "2026-01-01T00:00:00Z", "u": "2026-01-01T00:00:00", "n": 1}\n'
        '{"t": "2026-01-01T02:00:00+01:00", "u": "2026-01-02T00:00:00", "n": 2}\n'
    )
    table = read_table(path)
    assert table.column_names == ["t", "u", "n"]
    assert table.schema.field("t").type == pa.timestamp("us", tz="UTC")
    assert table.column("t")[1].as_py() == dt.datetime(2026, 1, 1, 1, tzinfo=UTC)
    assert table.schema.field("u").type == pa.timestamp("us")  # naive stays naive


def test_pack_accepts_the_json_lines_sample_validate_accepts(
    example_dir: Path, tmp_path: Path
) -> None:
    """Regression: `validate x.jsonl` passed where `pack --sample x.jsonl` failed on the
    `timezone: UTC` field (pack's reader read "…Z" as a naive timestamp)."""
    import mlhandoff

    sample = pq.read_table(example_dir / "work" / "sample.parquet").slice(0, 200)
    path = tmp_path / "sample.jsonl"
    rows = [
        {n: _json_value(v.replace(microsecond=0) if n == "event_time" else v) for n, v in r.items()}
        for r in sample.to_pylist()
    ]  # whole seconds: what Arrow's JSON reader reads as a (naive) timestamp
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    spec = mlhandoff.load_spec(example_dir / "handoff.yaml")
    assert validate_file(path, spec, label=spec.data_contract.label).ok
    result = mlhandoff.pack(spec=example_dir / "handoff.yaml", sample=path, out=tmp_path / "dist")
    golden = pq.read_table(result.path / "data" / "golden_inputs.parquet")
    assert golden.schema.field("event_time").type.tz == "UTC"

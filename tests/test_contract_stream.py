"""Validating files in chunks (Python and ``mlhandoff validate``): bounded memory, one report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from mlhandoff.cli import app
from mlhandoff.contract import validate_file
from mlhandoff.errors import InputError
from mlhandoff.spec.models import DataContract

CONTRACT = DataContract.model_validate(
    {
        "label": "y",
        "fields": {
            "x": {"type": "float", "min": 0, "max": 10, "nullable": True, "max_null_fraction": 0.1},
            "c": {"type": "category", "domain": ["a", "b"]},
            "n": {"type": "int", "min": 0},
            "t": {"type": "timestamp", "timezone": "UTC"},
        },
    }
)


def _table(rows: int = 100) -> pa.Table:
    return pa.table(
        {
            "x": [float(i % 10) for i in range(rows)],
            "c": ["a" if i % 3 else "b" for i in range(rows)],
            "n": list(range(rows)),
            "t": pa.array(range(rows), pa.timestamp("s", tz="UTC")),
            "y": [i % 2 for i in range(rows)],
        }
    )


def test_parquet_streams_in_chunks_with_global_row_numbers(tmp_path: Path) -> None:
    table = _table()
    x = table.column("x").to_pylist()
    x[3], x[77] = 11.0, -1.0
    x[50:62] = [None] * 12  # 12% nulls over the file, though most chunks have none
    table = table.set_column(0, "x", pa.array(x, pa.float64()))
    pq.write_table(table, tmp_path / "d.parquet", row_group_size=30)
    seen: list[int] = []
    report = validate_file(tmp_path / "d.parquet", CONTRACT, chunk_rows=16, on_rows=seen.append)
    assert sum(seen) == 100 and max(seen) <= 16
    by_rule = {v.rule: v for v in report.violations}
    assert by_rule["max"].rows == [3] and by_rule["min"].rows == [77]
    assert by_rule["max_null_fraction"].count == 12
    assert report.rows == 100 and report.failing_rows == 2
    assert report.to_dict() == validate_file(tmp_path / "d.parquet", CONTRACT).to_dict()


def test_csv_streams_as_text_and_locates_a_bad_value_deep_in_the_file(tmp_path: Path) -> None:
    lines = ["x,c,n,t,y"] + [f"{i % 10}.5,a,{i},2026-01-01T00:00:00Z,0" for i in range(3000)]
    lines[2501] = "abc,a,2500,2026-01-01T00:00:00Z,0"  # row 2500
    lines[2801] = ",zz,2800,2026-01-01T00:00:00Z,1"  # row 2800: empty x is null
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    report = validate_file(tmp_path / "d.csv", CONTRACT, chunk_rows=500)
    assert {(v.field, v.rule, tuple(v.rows)) for v in report.violations} == {
        ("x", "type", (2500,)),
        ("c", "domain", (2800,)),
    }
    assert report.violations[0].values == ["abc"]


def test_json_and_jsonl_files(tmp_path: Path) -> None:
    records = [
        {"x": 1.0, "c": "a", "n": 1, "t": "2026-01-01T00:00:00Z"},
        {"x": 2.0, "c": "b", "n": -2, "t": "2026-01-01T00:00:00"},
    ]
    (tmp_path / "d.json").write_text(json.dumps(records))
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    for name in ("d.json", "d.jsonl"):
        report = validate_file(tmp_path / name, CONTRACT)
        assert {(v.field, v.rule, tuple(v.rows)) for v in report.violations} == {
            ("n", "min", (1,)),
            ("t", "timezone", (1,)),
        }


def test_bad_files_are_input_errors(tmp_path: Path) -> None:
    (tmp_path / "corrupt.parquet").write_bytes(b"PAR1 not parquet at all PAR1")
    with pytest.raises(InputError, match="not a readable Parquet file"):
        validate_file(tmp_path / "corrupt.parquet", CONTRACT)
    (tmp_path / "semi.csv").write_text("x;c;n;t\n1;a;1;2026-01-01T00:00:00Z\n")
    with pytest.raises(InputError, match="convert the delimiter"):
        validate_file(tmp_path / "semi.csv", CONTRACT)
    (tmp_path / "latin.csv").write_bytes("x,c,n,t\n1,é,1,2026-01-01T00:00:00Z\n".encode("latin-1"))
    with pytest.raises(InputError, match="UTF-8"):
        validate_file(tmp_path / "latin.csv", CONTRACT)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="file is empty"):
        validate_file(tmp_path / "empty.csv", CONTRACT)
    with pytest.raises(InputError, match="file not found"):
        validate_file(tmp_path / "nope.parquet", CONTRACT)
    with pytest.raises(InputError, match="label column 'nope'"):
        pq.write_table(_table(), tmp_path / "d.parquet")
        validate_file(tmp_path / "d.parquet", CONTRACT, label="nope")


def test_zero_rows_still_checks_the_columns(tmp_path: Path) -> None:
    pq.write_table(_table().slice(0, 0).drop_columns(["n"]), tmp_path / "empty.parquet")
    report = validate_file(tmp_path / "empty.parquet", CONTRACT)
    assert report.rows == 0 and [v.rule for v in report.violations] == ["missing_column"]
    (tmp_path / "header.csv").write_text("x,c,n,t\n")
    assert validate_file(tmp_path / "header.csv", CONTRACT).ok


# --- the command --------------------------------------------------------------------------------

runner = CliRunner()


def _spec(tmp_path: Path) -> Path:
    spec = {
        "name": "demo",
        "version": "1",
        "model": {"path": "m.skops", "task": "binary_classification", "version_tag": "v1"},
        "data_contract": CONTRACT.model_dump(mode="json", exclude_none=True),
    }
    path = tmp_path / "handoff.yaml"
    path.write_text(json.dumps(spec))  # JSON is YAML
    return path


def test_validate_command_exit_codes_table_and_json(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    pq.write_table(_table(), tmp_path / "good.parquet")
    ok = runner.invoke(app, ["validate", str(tmp_path / "good.parquet"), "--contract", str(spec)])
    assert ok.exit_code == 0 and "all 100 rows satisfy the contract" in ok.output

    bad = _table().set_column(2, "n", pa.array([-1] * 100))
    pq.write_table(bad, tmp_path / "bad.parquet")
    args = ["validate", str(tmp_path / "bad.parquet"), "-c", str(spec), "--max-examples", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "below min 0" in result.output and "100 of 100 rows" in result.output
    assert "numbered from 0 over the data rows" in result.output
    as_json = runner.invoke(app, [*args, "--json"])
    assert as_json.exit_code == 1
    data = json.loads(as_json.output)  # nothing but JSON on stdout: no progress bar
    assert data["row_numbering"].startswith("0-based data rows")
    (violation,) = data["violations"]
    assert (violation["field"], violation["count"], violation["rows"]) == ("n", 100, [0, 1])

    missing = runner.invoke(app, ["validate", str(tmp_path / "nope.csv"), "-c", str(spec)])
    assert missing.exit_code == 2 and "file not found" in missing.output
    assert "Traceback" not in missing.output


def test_validate_with_label_reports_leakage_as_warnings(tmp_path: Path) -> None:
    table = _table(200)
    table = table.set_column(2, "n", pa.array([i % 2 * 100 + i % 7 for i in range(200)]))
    pq.write_table(table, tmp_path / "leaky.parquet")
    args = ["validate", str(tmp_path / "leaky.parquet"), "-c", str(_spec(tmp_path))]
    result = runner.invoke(app, [*args, "--label", "y", "--json"])
    assert result.exit_code == 0
    (finding,) = json.loads(result.output)["leakage"]
    assert (finding["check"], finding["field"], finding["score"]) == ("single_feature", "n", 1.0)
    text = runner.invoke(app, [*args, "--label", "y"])
    assert text.exit_code == 0 and "leakage warning" in text.output


def test_validate_against_a_bundle_checks_its_integrity_first(
    example_bundle: Path, example_dir: Path, tmp_path: Path
) -> None:
    sample = example_dir / "work" / "sample.parquet"
    ok = runner.invoke(
        app, ["validate", str(sample), "-c", str(example_bundle), "--label", "is_fraud"]
    )
    assert ok.exit_code == 0, ok.output
    tampered = tmp_path / "bundle"
    shutil.copytree(example_bundle, tampered)
    spec = tampered / "handoff.yaml"
    spec.write_text(spec.read_text().replace("max: 5000", "max: 5"))
    refused = runner.invoke(app, ["validate", str(sample), "-c", str(tampered)])
    assert refused.exit_code == 2 and "MANIFEST" in refused.output

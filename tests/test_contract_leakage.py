"""Leakage checks: single-feature leaks, shared ids/rows/groups, time-split breaches; at pack."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

import mlhandoff
from mlhandoff.contract import check_training_data, feature_leakage, split_leakage
from mlhandoff.spec.models import DataContract, DataFile, LeakageRecord

RNG = np.random.default_rng(7)


def _frame(rows: int = 600) -> pd.DataFrame:
    y = RNG.integers(0, 2, rows)
    return pd.DataFrame(
        {
            "id": [f"t{i}" for i in range(rows)],
            "noise": RNG.normal(size=rows),
            "city": RNG.choice(["a", "b", "c", "d"], rows),
            "y": y,
        }
    )


def _checks(findings) -> dict[str, float]:
    return {f.field: f.score for f in findings}


def test_single_feature_leaks_for_binary_labels() -> None:
    frame = _frame()
    frame["refund"] = frame["y"] * 10.0 + RNG.uniform(0, 1, len(frame))  # numeric leak
    frame["status"] = np.where(
        frame["y"] == 1, "chargeback", RNG.choice(["ok", "fine"], len(frame))
    )
    frame["near"] = frame["y"] + RNG.normal(0, 2, len(frame))  # informative, not a leak
    findings = feature_leakage(pa.Table.from_pandas(frame), "y")
    assert set(_checks(findings)) == {"refund", "status"}
    assert all(f.score == 1.0 and f.check == "single_feature" for f in findings)
    assert "ROC AUC 1.000" in findings[0].detail


def test_near_unique_values_cannot_leak_by_memorising() -> None:
    frame = _frame()
    frame["nearly_unique"] = [f"v{i // 2}" for i in range(len(frame))]  # 2 rows per value
    assert feature_leakage(pa.Table.from_pandas(frame), "y") == []


def test_multiclass_and_regression_labels() -> None:
    frame = _frame()
    frame["k"] = RNG.integers(0, 4, len(frame))
    frame["k_code"] = frame["k"].map({0: "zero", 1: "one", 2: "two", 3: "three"})
    found = feature_leakage(pa.Table.from_pandas(frame.drop(columns=["y"])), "k")
    assert set(_checks(found)) == {"k_code"}
    assert "Goodman-Kruskal lambda" in found[0].detail
    frame["price"] = RNG.lognormal(size=len(frame))
    frame["price_x2"] = frame["price"] * 2 + 1
    found = feature_leakage(pa.Table.from_pandas(frame.drop(columns=["y", "k", "k_code"])), "price")
    assert set(_checks(found)) == {"price_x2"} and "Spearman" in found[0].detail


CONTRACT = DataContract.model_validate(
    {
        "label": "y",
        "split": {"kind": "time", "column": "ts"},
        "fields": {
            "id": {"type": "string", "id": True, "pii": True},
            "noise": {"type": "float"},
            "city": {"type": "category", "domain": ["a", "b", "c", "d"]},
            "ts": {"type": "timestamp", "timezone": "UTC"},
        },
    }
)


def _split(frame: pd.DataFrame) -> tuple[pa.Table, pa.Table]:
    frame = frame.assign(ts=pd.date_range("2026-01-01", periods=len(frame), freq="h", tz="UTC"))
    cut = int(len(frame) * 0.8)
    return pa.Table.from_pandas(frame[:cut]), pa.Table.from_pandas(frame[cut:])


def test_a_clean_time_split_has_no_findings() -> None:
    train, test = _split(_frame())
    assert split_leakage(train, test, CONTRACT) == []


def test_shared_ids_rows_and_time_split_breaches() -> None:
    frame = _frame()
    train, test = _split(frame)
    overlap = train.slice(0, 12)  # 12 training rows copied into the test set
    test = pa.concat_tables([test, overlap])
    findings = {f.check: f for f in split_leakage(train, test, CONTRACT, "test")}
    assert set(findings) == {"shared_ids", "shared_rows", "time_split"}
    assert (
        findings["shared_ids"].field == "id"
        and "12 of 132 test rows" in findings["shared_ids"].detail
    )
    assert (
        "<redacted>" in findings["shared_ids"].detail
        and "'t0'" not in findings["shared_ids"].detail
    )
    assert findings["time_split"].score == round(12 / 132, 4)
    assert "earlier than the training cut-off" in findings["time_split"].detail


def test_group_split_shares_no_group() -> None:
    contract = DataContract.model_validate(
        {**CONTRACT.model_dump(), "split": {"kind": "group", "column": "city"}}
    )
    train, test = _split(_frame())
    (finding,) = [f for f in split_leakage(train, test, contract) if f.check == "shared_groups"]
    assert finding.field == "city" and finding.score == 1.0


def test_check_training_data_reads_the_files_by_role(tmp_path: Path) -> None:
    frame = _frame()
    frame["refund"] = frame["y"] * 3.0
    train, test = _split(frame)
    contract = DataContract.model_validate(
        {
            **CONTRACT.model_dump(),
            "fields": {**CONTRACT.model_dump()["fields"], "refund": {"type": "float"}},
        }
    )
    pq.write_table(train, tmp_path / "train.parquet")
    pq.write_table(test, tmp_path / "test.parquet")
    (tmp_path / "notes.txt").write_text("not a table")
    files = [
        DataFile(path="train.parquet", role="train"),
        DataFile(path="test.parquet", role="test"),
        DataFile(path="notes.txt", role="other"),
    ]
    record = check_training_data(contract, files, tmp_path)
    assert [(f.check, f.field) for f in record.findings] == [("single_feature", "refund")]
    assert len(record.checked) == 2 and "time split on ts" in record.checked[1]
    assert check_training_data(contract, [], tmp_path).checked == []


def test_shared_rows_with_an_array_field(tmp_path: Path) -> None:
    """Regression: pack crashed (TypeError: unhashable type: 'numpy.ndarray') when training.data
    listed train and test files and the contract had an array field."""
    contract = DataContract.model_validate(
        {
            "label": "y",
            "fields": {"pixels": {"type": "array", "length": 3}, "x": {"type": "float"}},
        }
    )
    rng = np.random.default_rng(0)

    def table(rows: int) -> pa.Table:
        pixels = rng.random((rows, 3)).ravel()
        return pa.table(
            {
                "pixels": pa.FixedSizeListArray.from_arrays(pa.array(pixels), 3),
                "x": rng.random(rows),
                "y": rng.integers(0, 2, rows),
            }
        )

    train, test = table(40), table(10)
    copied = train.slice(5, 3)  # 3 training rows in the test set ...
    # ... and one that differs from a training row only inside its array
    near = train.slice(9, 1).set_column(
        0, "pixels", pa.FixedSizeListArray.from_arrays(pa.array([0.5, 0.5, 0.5]), 3)
    )
    pq.write_table(train, tmp_path / "train.parquet")
    pq.write_table(pa.concat_tables([test, copied, near]), tmp_path / "test.parquet")
    files = [
        DataFile(path="train.parquet", role="train"),
        DataFile(path="test.parquet", role="test"),
    ]
    record = check_training_data(contract, files, tmp_path)
    (finding,) = [f for f in record.findings if f.check == "shared_rows"]
    assert "3 of 14" in finding.detail and "all 2 fields" in finding.detail
    lists = train.set_column(0, "pixels", train.column("pixels").cast(pa.list_(pa.float64())))
    assert [f.check for f in split_leakage(lists, lists.slice(0, 4), contract)] == ["shared_rows"]


def test_pack_records_findings_and_the_checklist_warns(example_dir: Path, tmp_path: Path) -> None:
    work = example_dir / "work"
    train = pd.read_parquet(work / "train.parquet")
    test = pd.read_parquet(work / "test.parquet")
    train["tx_count_1h"] = train["is_fraud"] * 40 + train["tx_count_1h"] % 5  # a leak
    test = pd.concat([test, train.iloc[:25]])  # training rows (ids, times) in the test set
    train.to_parquet(work / f"{tmp_path.name}-train.parquet")
    test.to_parquet(work / f"{tmp_path.name}-test.parquet")
    data = yaml.safe_load((example_dir / "handoff.yaml").read_text())
    data["data_contract"]["split"] = {"kind": "time", "column": "event_time"}
    data["training"]["data"] = [
        {"path": f"work/{tmp_path.name}-train.parquet", "role": "train"},
        {"path": f"work/{tmp_path.name}-test.parquet", "role": "test"},
    ]
    spec_path = example_dir / f"{tmp_path.name}-handoff.yaml"
    spec_path.write_text(yaml.safe_dump(data, sort_keys=False))

    result = mlhandoff.pack(spec=spec_path, out=tmp_path / "dist")
    record = LeakageRecord.model_validate_json(
        (result.path / "reports" / "leakage.json").read_bytes()
    )
    assert {(f.check, f.field) for f in record.findings} == {
        ("single_feature", "tx_count_1h"),
        ("shared_ids", "transaction_id"),
        ("shared_rows", None),
        ("time_split", "event_time"),
    }
    (line,) = [r for r in mlhandoff.verify(result.path).results if r.id == "leakage"]
    assert line.status == "warn" and not line.failed
    assert "tx_count_1h" in line.detail and "score" in line.detail
    assert "⚠️ warn" in (result.path / "docs" / "README.md").read_text()

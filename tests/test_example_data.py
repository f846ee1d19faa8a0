"""Tests for the bundled risky-transactions example (data generator and training)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "risky_transactions"


def _load(name: str) -> ModuleType:
    """Import an example script by path (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        f"risky_transactions_{name}", EXAMPLE / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


generate = _load("generate")
train = _load("train")

EXPECTED_DTYPES = {
    "transaction_id": pa.string(),
    "event_time": pa.timestamp("us", tz="UTC"),
    "amount_eur": pa.float64(),
    "merchant_category": pa.string(),
    "country": pa.string(),
    "hour_of_day": pa.int64(),
    "card_age_days": pa.int64(),
    "tx_count_1h": pa.int64(),
    "tx_count_24h": pa.int64(),
    "distance_from_home_km": pa.float64(),
    "device_changed": pa.bool_(),
    "is_fraud": pa.int64(),
}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return generate.generate(20_000, seed=42)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("risky_transactions")
    generate.write(8_000, 42, out)
    return out


def test_same_seed_same_frame() -> None:
    pd.testing.assert_frame_equal(generate.generate(3_000, 7), generate.generate(3_000, 7))


def test_different_seed_differs() -> None:
    first, second = generate.generate(3_000, 7), generate.generate(3_000, 8)
    assert not first["amount_eur"].equals(second["amount_eur"])
    assert not first["is_fraud"].equals(second["is_fraud"])


def test_columns_and_dtypes(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == list(EXPECTED_DTYPES)
    assert str(frame["event_time"].dtype) == "datetime64[us, UTC]"
    for name in ["transaction_id", "merchant_category", "country"]:
        assert pd.api.types.is_string_dtype(frame[name]), name
    schema = generate.to_arrow(frame).schema
    for name, dtype in EXPECTED_DTYPES.items():
        assert schema.field(name).type == dtype, name


def test_parquet_round_trip(files: Path) -> None:
    table = pq.read_table(files / "train.parquet")
    for name, dtype in EXPECTED_DTYPES.items():
        assert table.schema.field(name).type == dtype, name
    assert 0 < table.column("distance_from_home_km").null_count < 0.05 * table.num_rows
    expected, _ = generate.split(generate.generate(8_000, 42))
    pd.testing.assert_frame_equal(table.to_pandas(), expected)


def test_value_ranges(frame: pd.DataFrame) -> None:
    assert frame["transaction_id"].is_unique
    assert frame["transaction_id"].str.fullmatch(r"tx_\d{8}").all()
    assert frame["event_time"].is_monotonic_increasing
    assert (frame["event_time"].dt.year == 2026).all()
    days = (frame["event_time"].max() - frame["event_time"].min()).days
    assert 85 <= days <= 90
    assert (frame["amount_eur"] > 0).all()
    assert frame["amount_eur"].max() > 1_000
    assert frame["amount_eur"].median() < 100
    assert frame["hour_of_day"].between(0, 23).all()
    assert frame["hour_of_day"].nunique() == 24
    assert (frame["card_age_days"] >= 0).all()
    assert (frame["tx_count_1h"] >= 0).all()
    assert (frame["tx_count_24h"] >= frame["tx_count_1h"]).all()
    distance = frame["distance_from_home_km"]
    assert (distance.dropna() >= 0).all()
    assert 0.01 < distance.isna().mean() < 0.03
    assert set(frame["is_fraud"].unique()) == {0, 1}
    assert 0.01 <= frame["is_fraud"].mean() <= 0.02


def test_categories(frame: pd.DataFrame) -> None:
    categories = frame["merchant_category"].value_counts(normalize=True)
    assert set(categories.index) == set(generate.CATEGORIES)
    assert categories.index[0] == "grocery"
    countries = frame["country"].value_counts(normalize=True)
    assert {"DE", "FR", "ES", "IT", "NL", "BE", "AT", "PL", "GB", "US"} <= set(countries.index)
    assert countries["DE"] > 0.5
    fraud = frame.groupby("merchant_category")["is_fraud"].mean()
    assert fraud["gambling"] > fraud["grocery"]


def test_hour_is_local_berlin_time(frame: pd.DataFrame) -> None:
    local_hour = frame["event_time"].dt.tz_convert("Europe/Berlin").dt.hour
    assert (local_hour == frame["hour_of_day"]).all()


def test_time_split(files: Path) -> None:
    train_df = pq.read_table(files / "train.parquet").to_pandas()
    test_df = pq.read_table(files / "test.parquet").to_pandas()
    sample = pq.read_table(files / "sample.parquet").to_pandas()
    assert len(train_df) + len(test_df) == 8_000
    assert 0.18 <= len(test_df) / 8_000 <= 0.22
    assert train_df["event_time"].max() < test_df["event_time"].min()
    assert len(sample) == 2_000
    assert list(sample.columns) == list(EXPECTED_DTYPES)
    assert set(sample["transaction_id"]) <= set(train_df["transaction_id"])


def test_training_is_good_and_deterministic(files: Path) -> None:
    train_df = pq.read_table(files / "train.parquet").to_pandas()
    test_df = pq.read_table(files / "test.parquet").to_pandas()
    first = train.train(train_df, seed=42)
    second = train.train(train_df, seed=42)
    assert train.evaluate(first, test_df)["roc_auc"] > 0.75
    np.testing.assert_array_equal(first.predict_proba(test_df), second.predict_proba(test_df))
    # Serving frames have no label and may show categories never seen in training.
    request = test_df.drop(columns=["is_fraud"]).head(5)
    request.loc[0, "country"] = "ZZ"
    assert first.predict_proba(request).shape == (5, 2)

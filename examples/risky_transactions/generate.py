"""Deterministic synthetic card transactions for the risky-transactions example.

Each row is one card payment. ``event_time`` is the UTC instant of the payment;
``hour_of_day`` is the card holder's *local* hour. All card holders live in
Germany (time zone Europe/Berlin, so UTC+1, or UTC+2 after the switch to summer
time on 2026-03-29), which makes ``country`` the country of the merchant and
any country other than DE a foreign payment.

``is_fraud`` is drawn from a logistic model with real signal in the features
plus hidden noise, so a good model ranks well but not perfectly.

Usage: ``python generate.py --rows 60000 --seed 42 --out DIR`` writes
``DIR/train.parquet``, ``DIR/test.parquet`` (the last 20% by event_time) and
``DIR/sample.parquet`` (2,000 rows drawn from train).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

HOME_TZ = "Europe/Berlin"
START = pd.Timestamp("2026-01-02")  # local midnight, so every UTC time is in 2026
DAYS = 90
TEST_FRACTION = 0.2
SAMPLE_ROWS = 2_000
TARGET_POSITIVE_RATE = 0.015

# category: (share of transactions, median amount in EUR, log-sd of amount, fraud log-odds)
CATEGORIES = {
    "grocery": (0.28, 32.0, 0.7, -1.0),
    "restaurants": (0.16, 28.0, 0.6, -0.6),
    "fuel": (0.10, 55.0, 0.4, -0.5),
    "fashion": (0.09, 70.0, 0.8, 0.2),
    "electronics": (0.06, 160.0, 1.0, 1.4),
    "travel": (0.05, 280.0, 0.9, 0.6),
    "digital_goods": (0.07, 18.0, 0.9, 1.8),
    "pharmacy": (0.05, 22.0, 0.6, -0.8),
    "gambling": (0.02, 50.0, 1.0, 2.4),
    "other": (0.12, 40.0, 1.0, 0.0),
}

# country: (share of transactions, typical distance from home in km, fraud log-odds)
COUNTRIES = {
    "DE": (0.60, 0.0, 0.0),
    "FR": (0.07, 600.0, 0.5),
    "NL": (0.05, 450.0, 0.5),
    "AT": (0.05, 500.0, 0.3),
    "IT": (0.04, 900.0, 0.6),
    "ES": (0.04, 1500.0, 0.6),
    "BE": (0.03, 500.0, 0.5),
    "PL": (0.03, 700.0, 0.8),
    "GB": (0.04, 900.0, 1.1),
    "US": (0.03, 6500.0, 1.6),
    "CH": (0.01, 500.0, 0.8),
    "TR": (0.01, 2200.0, 1.8),
}

# Relative share of transactions per local hour 0..23.
# fmt: off
HOUR_WEIGHTS = np.array([
    1.0, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.5, 4.0, 4.8, 5.2, 5.8,  # 00..11
    6.8, 6.5, 5.5, 5.3, 5.8, 6.6, 6.8, 6.0, 4.8, 3.6, 2.6, 1.6,  # 12..23
])
# fmt: on

COLUMNS = pa.schema(
    [
        ("transaction_id", pa.string()),
        ("event_time", pa.timestamp("us", tz="UTC")),
        ("amount_eur", pa.float64()),
        ("merchant_category", pa.string()),
        ("country", pa.string()),
        ("hour_of_day", pa.int64()),
        ("card_age_days", pa.int64()),
        ("tx_count_1h", pa.int64()),
        ("tx_count_24h", pa.int64()),
        ("distance_from_home_km", pa.float64()),
        ("device_changed", pa.bool_()),
        ("is_fraud", pa.int64()),
    ]
)


def _choice(rng: np.random.Generator, table: dict, rows: int) -> np.ndarray:
    """Draw keys of ``table`` with the shares in the first field of each value."""
    keys = np.array(list(table))
    shares = np.array([value[0] for value in table.values()])
    return rng.choice(keys, size=rows, p=shares / shares.sum())


def _lookup(values: np.ndarray, table: dict, field: int) -> np.ndarray:
    """Map each key in ``values`` to field ``field`` of its entry in ``table``."""
    return np.array([table[key][field] for key in values.tolist()], dtype=float)


def _event_times(rng: np.random.Generator, rows: int) -> pd.DatetimeIndex:
    """Local wall-clock times with a daily rhythm, returned as Europe/Berlin times."""
    day = rng.integers(0, DAYS, size=rows)
    hour = rng.choice(24, size=rows, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    micros = rng.integers(0, 3_600_000_000, size=rows)
    offset = pd.to_timedelta(day * 86_400_000_000 + hour * 3_600_000_000 + micros, unit="us")
    local = pd.DatetimeIndex(START + offset).as_unit("us")
    # The hour skipped at the switch to summer time does not exist: move it forward.
    return local.tz_localize(HOME_TZ, nonexistent="shift_forward")


def _intercept(logit: np.ndarray, target: float) -> float:
    """Intercept that makes the mean fraud probability equal ``target`` (bisection)."""
    low, high = -30.0, 30.0
    for _ in range(60):
        mid = (low + high) / 2
        if np.mean(1 / (1 + np.exp(-(logit + mid)))) < target:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def generate(rows: int, seed: int = 42) -> pd.DataFrame:
    """Return ``rows`` synthetic transactions sorted by event_time; same seed, same frame."""
    rng = np.random.default_rng(seed)

    local_time = _event_times(rng, rows).sort_values()
    hour = np.asarray(local_time.hour, dtype=np.int64)
    night = (hour < 6).astype(float)

    category = _choice(rng, CATEGORIES, rows)
    country = _choice(rng, COUNTRIES, rows)
    # Travel bookings are more often made abroad.
    travel = category == "travel"
    country[travel] = _choice(rng, COUNTRIES, rows)[travel]
    country[travel & (rng.random(rows) < 0.3)] = "ES"

    median = _lookup(category, CATEGORIES, 1)
    spread = _lookup(category, CATEGORIES, 2)
    amount = median * np.exp(spread * rng.standard_normal(rows))
    amount = np.round(np.clip(amount, 0.5, 4_999.0), 2)

    # Most cards are years old; a few are brand new.
    card_age = rng.gamma(1.6, 450.0, size=rows)
    new_card = rng.random(rows) < 0.04
    card_age[new_card] = rng.integers(0, 30, size=new_card.sum())
    card_age = np.minimum(card_age, 3_650).astype(np.int64)

    tx_24h = rng.poisson(2.2, size=rows)
    tx_1h = rng.binomial(tx_24h, 0.12)
    burst = rng.random(rows) < 0.03
    extra = rng.poisson(3.0, size=rows) * burst
    tx_1h = (tx_1h + extra).astype(np.int64)
    tx_24h = (tx_24h + extra + rng.poisson(1.0, size=rows) * burst).astype(np.int64)

    base_km = _lookup(country, COUNTRIES, 1)
    distance = np.where(
        country == "DE",
        8.0 * np.exp(1.1 * rng.standard_normal(rows)),
        base_km * np.exp(0.25 * rng.standard_normal(rows)),
    )
    distance = np.round(np.clip(distance, 0.0, 15_000.0), 1)

    device_changed = rng.random(rows) < 0.05

    logit = (
        0.9 * np.log(amount / 50.0)
        + _lookup(category, CATEGORIES, 3)
        + _lookup(country, COUNTRIES, 2)
        + 1.4 * night
        + 2.1 * (card_age < 30)
        - 0.25 * np.log1p(card_age / 365.0)
        + 0.7 * np.minimum(tx_1h, 8)
        + 0.2 * np.log1p(distance)
        + 1.9 * device_changed
        + 0.5 * rng.standard_normal(rows)  # signal the features do not carry
    )
    probability = 1 / (1 + np.exp(-(logit + _intercept(logit, TARGET_POSITIVE_RATE))))
    is_fraud = (rng.random(rows) < probability).astype(np.int64)

    # About 2% of rows have no location, so no distance (after it fed the label).
    distance[rng.random(rows) < 0.02] = np.nan

    frame = pd.DataFrame(
        {
            "transaction_id": [f"tx_{i:08d}" for i in range(1, rows + 1)],
            "event_time": local_time.tz_convert("UTC"),
            "amount_eur": amount,
            "merchant_category": category,
            "country": country,
            "hour_of_day": hour,
            "card_age_days": card_age,
            "tx_count_1h": tx_1h,
            "tx_count_24h": tx_24h,
            "distance_from_home_km": distance,
            "device_changed": device_changed,
            "is_fraud": is_fraud,
        }
    )
    # Normalise dtypes to exactly what reading the parquet files back gives.
    return to_arrow(frame).to_pandas()


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    """Convert to an arrow table with the documented schema (NaN becomes null)."""
    return pa.Table.from_pandas(frame, schema=COLUMNS, preserve_index=False)


def split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Time split: test is the last ~20% by event_time, train strictly earlier."""
    cutoff = frame["event_time"].sort_values().iloc[int(len(frame) * (1 - TEST_FRACTION))]
    train = frame[frame["event_time"] < cutoff].reset_index(drop=True)
    test = frame[frame["event_time"] >= cutoff].reset_index(drop=True)
    return train, test


def write(rows: int, seed: int, out: Path) -> None:
    """Write train.parquet, test.parquet and sample.parquet into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    train, test = split(generate(rows, seed))
    sample = train.sample(n=min(SAMPLE_ROWS, len(train)), random_state=seed).sort_index()
    for name, part in [("train", train), ("test", test), ("sample", sample)]:
        pq.write_table(to_arrow(part), out / f"{name}.parquet")
        print(f"{out / f'{name}.parquet'}: {len(part)} rows, {part['is_fraud'].mean():.2%} fraud")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=Path("data"))
    args = parser.parse_args()
    write(args.rows, args.seed, args.out)


if __name__ == "__main__":
    main()

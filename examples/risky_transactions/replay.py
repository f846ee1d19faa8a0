"""A day of synthetic traffic, scored by the bundle, written as the server's prediction log.

Transactions come from ``generate.py`` (a seed of its own), spread evenly over ``--hours`` from
``--start``; from hour ``--drift-at`` on, the drift the example's monitoring watches for is
injected: amounts three times larger (capped at the contract's 5000 EUR) and twice the
transactions per hour on the card. Each hour goes into one file named and laid out as
``mlhandoff serve --log-dir`` writes it (``serve/predlog.py``): ``request_id``, ``logged_at``
(UTC), ``model_version``, ``input.<field>`` (PII redacted to null), ``output.<name>``.

Usage: ``python replay.py --bundle work/dist/risky-transactions-1.0.0 --out work/predictions``
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent


def _generator():  # the example's generator, importable from anywhere
    spec = importlib.util.spec_from_file_location("risky_generate", HERE / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def traffic(
    rows: int, seed: int, start: str, days: int, drift_at: float
) -> tuple[pd.DataFrame, pd.DatetimeIndex]:
    """``rows`` transactions over ``days`` local days from ``start`` (a date, Europe/Berlin),
    each at its own local hour of day (the generator's daily rhythm), sorted by time; from
    ``drift_at`` hours after the start on, drifted. Returns the rows and their UTC times."""
    gen = _generator()
    frame = gen.generate(rows, seed)
    rng = np.random.default_rng(seed + 1)
    day = rng.integers(0, days, rows)
    seconds = day * 86_400 + frame["hour_of_day"].to_numpy() * 3600 + rng.uniform(0, 3600, rows)
    midnight = pd.Timestamp(start)
    local = pd.DatetimeIndex(midnight + pd.to_timedelta(seconds, unit="s"))
    at = local.tz_localize(gen.HOME_TZ, nonexistent="shift_forward", ambiguous=False).tz_convert(
        "UTC"
    )
    order = np.argsort(at.asi8, kind="stable")
    frame, at = frame.iloc[order].reset_index(drop=True), at[order].as_unit("us")
    frame["event_time"] = at
    frame["hour_of_day"] = np.asarray(at.tz_convert(gen.HOME_TZ).hour, dtype=np.int64)
    drifted = np.asarray(local[order] >= midnight + pd.Timedelta(hours=drift_at))
    frame.loc[drifted, "amount_eur"] = np.minimum(frame.loc[drifted, "amount_eur"] * 3, 5000.0)
    frame.loc[drifted, "tx_count_1h"] = np.minimum(frame.loc[drifted, "tx_count_1h"] * 2 + 1, 100)
    frame.loc[drifted, "tx_count_24h"] = np.maximum(
        frame.loc[drifted, "tx_count_24h"], frame.loc[drifted, "tx_count_1h"]
    )
    frame["transaction_id"] = [f"tx_r{seed}_{i:07d}" for i in range(rows)]
    frame.loc[drifted, "is_fraud"] = -1  # the generator's labels hold for undrifted rows only
    return frame, at


def write_labels(frame: pd.DataFrame, path: Path) -> int:
    """The labels that have arrived (chargebacks come weeks late): the undrifted rows'."""
    known = frame.loc[frame["is_fraud"] >= 0, ["transaction_id", "is_fraud"]]
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(known, preserve_index=False), path)
    return len(known)


def write_log(bundle_dir: Path, frame: pd.DataFrame, at: pd.DatetimeIndex, out: Path) -> list[Path]:
    """Score ``frame`` with the bundle and write one prediction-log file per hour."""
    import mlhandoff

    bundle = mlhandoff.open_bundle(bundle_dir)
    spec = bundle.spec
    fields = list(spec.data_contract.fields)
    inputs = pa.Table.from_pandas(frame[fields], preserve_index=False)
    outputs = bundle.predict(inputs)
    logged_at = at.as_unit("us")
    columns: dict[str, pa.Array] = {
        "request_id": pa.array([f"replay-{i:08d}" for i in range(len(frame))], pa.string()),
        "logged_at": pa.array(logged_at, pa.timestamp("us", tz="UTC")),
        "model_version": pa.array([spec.version] * len(frame), pa.string()),
    }
    pii = {n for n, f in spec.data_contract.fields.items() if f.pii}
    for name in fields:
        column = inputs.column(name)
        columns[f"input.{name}"] = pa.nulls(len(frame), pa.string()) if name in pii else column
    for name in outputs.column_names:
        columns[f"output.{name}"] = outputs.column(name)
    table = pa.table(columns)
    out.mkdir(parents=True, exist_ok=True)
    hours = logged_at.floor("h")
    written = []
    for seq, hour in enumerate(sorted(set(hours)), start=1):
        part = table.filter(pa.array(hours == hour))
        path = out / f"predictions-{hour.strftime('%Y%m%dT%H%M%S')}-{seq:05d}.parquet"
        pq.write_table(part, path)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("work/predictions"))
    parser.add_argument("--rows", type=int, default=96_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", default="2026-04-20", help="first local day (Europe/Berlin)")
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--drift-at", type=float, default=24.0, help="hours after the start")
    parser.add_argument("--labels", type=Path, help="also write the labels known so far here")
    args = parser.parse_args()
    frame, at = traffic(args.rows, args.seed, args.start, args.days, args.drift_at)
    files = write_log(args.bundle, frame, at, args.out)
    if args.labels:
        print(
            f"{args.labels}: {write_labels(frame, args.labels)} labels (transaction_id, is_fraud)"
        )
    print(
        f"{args.out}: {len(frame)} predictions in {len(files)} hourly files; drift from "
        f"{args.drift_at:g} h after {args.start} (Europe/Berlin) on"
    )


if __name__ == "__main__":
    main()

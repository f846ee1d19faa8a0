"""Train the risky-transactions classifier and save it with skops.

Usage: ``python train.py --train DIR/train.parquet --test DIR/test.parquet
--out DIR/model.skops --seed 42`` saves the pipeline, prints the test ROC AUC
and writes ``DIR/metrics.json`` next to the model.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

TARGET = "is_fraud"
CATEGORICAL = ["merchant_category", "country"]
NUMERIC = [
    "amount_eur",
    "hour_of_day",
    "card_age_days",
    "tx_count_1h",
    "tx_count_24h",
    "distance_from_home_km",
    "device_changed",
]


def build_pipeline(seed: int) -> Pipeline:
    """Ordinal-encode the categories, pass numbers through, then gradient boosting."""
    encoder = OrdinalEncoder(
        handle_unknown="use_encoded_value",
        unknown_value=-1,  # unseen categories: negative codes count as missing
        dtype=np.float64,
    )
    features = ColumnTransformer(
        [("categorical", encoder, CATEGORICAL), ("numeric", "passthrough", NUMERIC)],
        remainder="drop",  # transaction_id, event_time and the label are not features
        verbose_feature_names_out=False,
    )
    model = HistGradientBoostingClassifier(
        categorical_features=CATEGORICAL,
        max_iter=200,
        learning_rate=0.05,
        max_leaf_nodes=15,
        min_samples_leaf=40,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=seed,
    )
    pipeline = Pipeline([("features", features), ("model", model)])
    return pipeline.set_output(transform="pandas")


FEATURES = CATEGORICAL + NUMERIC


def train(train_df: pd.DataFrame, seed: int = 42) -> Pipeline:
    """Fit the pipeline on the feature columns of ``train_df`` (the label is ``is_fraud``)."""
    return build_pipeline(seed).fit(train_df[FEATURES], train_df[TARGET])


def evaluate(pipeline: Pipeline, test_df: pd.DataFrame) -> dict[str, float]:
    """Test ROC AUC and the share of positive labels."""
    scores = pipeline.predict_proba(test_df)[:, 1]
    return {
        "roc_auc": float(roc_auc_score(test_df[TARGET], scores)),
        "positive_rate": float(test_df[TARGET].mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    train_df = pq.read_table(args.train).to_pandas()
    test_df = pq.read_table(args.test).to_pandas()

    started = time.perf_counter()
    pipeline = train(train_df, args.seed)
    print(f"trained on {len(train_df)} rows in {time.perf_counter() - started:.1f}s")

    metrics = evaluate(pipeline, test_df) | {"n_train": len(train_df), "n_test": len(test_df)}
    print(f"test ROC AUC {metrics['roc_auc']:.4f}, positive rate {metrics['positive_rate']:.4f}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    sio.dump(pipeline, args.out)
    (args.out.parent / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"saved {args.out}")
    print("untrusted types:", sio.get_untrusted_types(file=args.out))


if __name__ == "__main__":
    main()

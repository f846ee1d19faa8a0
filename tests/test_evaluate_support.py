"""Helpers for the acceptance tests: small python_function bundles with labelled data."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

import mlhandoff

FIELDS = {
    "x": {"type": "float", "min": 0, "max": 100, "description": "A number."},
    "g": {"type": "category", "domain": ["a", "b", "c"], "description": "A group."},
}

#: score = x / 100 (a decent binary scorer when the label is drawn with P = x / 100)
SCORE_X = """
import numpy as np

def predict(frame):
    return np.clip(frame["x"].to_numpy() / 100.0, 0, 1)
"""


def labelled(n: int = 600, seed: int = 0, label: str = "y") -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 100, n)
    return pa.table(
        {
            "x": x,
            "g": rng.choice(["a", "b", "c"], n, p=[0.5, 0.45, 0.05]),
            label: (rng.random(n) < x / 100).astype(np.int64),
        }
    )


def make_bundle(
    root: Path,
    name: str,
    *,
    code: str = SCORE_X,
    task: str = "binary_classification",
    acceptance: dict[str, Any] | None = None,
    data: pa.Table | None = None,
    fields: dict[str, Any] | None = None,
    version: str = "1.0.0",
    label: str = "y",
    api: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    sections: dict[str, Any] | None = None,
) -> Path:
    """Pack a python_function bundle; ``data`` (labelled) becomes acceptance.data."""
    work = root / f"{name}-{version}-src"
    (work / "model_code").mkdir(parents=True, exist_ok=True)
    module = f"{name.replace('-', '_')}_model"
    (work / "model_code" / f"{module}.py").write_text(textwrap.dedent(code))
    data = labelled() if data is None else data
    pq.write_table(data, work / "eval.parquet")
    spec: dict[str, Any] = {
        "name": name,
        "version": version,
        "model": {
            "path": "model_code",
            "flavor": "python_function",
            "entrypoint": f"{module}:predict",
            "task": task,
            "version_tag": f"v{version}",
        },
        "data_contract": {"label": label, "fields": fields or FIELDS},
        "golden": {"rows": 20},
        "api": api or {},
        "acceptance": {"data": "eval.parquet", **(acceptance or {})},
        "training": training or {},
        **(sections or {}),
    }
    (work / "handoff.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    inputs = data.select([c for c in data.column_names if c in (fields or FIELDS)])
    return mlhandoff.pack(
        spec=work / "handoff.yaml", sample=inputs, out=root / "dist", force=True
    ).path

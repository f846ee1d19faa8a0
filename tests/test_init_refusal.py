"""init refuses a pickle pack would refuse, before a spec is written (issue 13, part 6)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import joblib
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from mlhandoff.cli import app
from mlhandoff.errors import UnsafeModelError


class _Call:
    """Pickles as ``fn(*args)``: what an attacker's ``__reduce__`` looks like."""

    def __init__(self, fn: Any, *args: Any) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.fn, self.args


def _init(model: Path, sample: Path, out: Path):
    args = ["init", "--model", model, "--sample", sample, "--out", out, "--label", "is_fraud"]
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_init_refuses_a_pickle_the_allowlist_refuses(example_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    model = tmp_path / "model.pkl"
    model.write_bytes(pickle.dumps(_Call(os.system, f"touch {marker}")))
    out = tmp_path / "handoff.yaml"
    result = _init(model, example_dir / "work" / "sample.parquet", out)
    assert result.exit_code == 2, result.output
    assert "model_unsafe" in result.output and "posix.system" in result.output
    assert not marker.exists() and not out.exists()


def test_init_accepts_a_pickle_of_allowed_types(example_dir: Path, tmp_path: Path) -> None:
    import pandas as pd

    sample = pd.read_parquet(example_dir / "work" / "sample.parquet")
    features = ["amount_eur", "hour_of_day"]
    model = LogisticRegression().fit(sample[features], sample["is_fraud"])
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    result = _init(path, example_dir / "work" / "sample.parquet", tmp_path / "handoff.yaml")
    assert result.exit_code == 0, result.output


def test_init_lists_the_globals_a_joblib_model_needs_trusted(
    example_dir: Path, tmp_path: Path
) -> None:
    """As for a .skops file: what is off the allowlist is listed for review, commented out, and
    exactly those names, once trusted, load the model (issue 11, item 20)."""
    import functools

    import numpy as np
    import pandas as pd
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from mlhandoff.flavors._safe_pickle import load
    from mlhandoff.spec.loader import load_spec

    sample = pd.read_parquet(example_dir / "work" / "sample.parquet")
    features = ["amount_eur", "hour_of_day"]
    clip = functools.partial(np.clip, a_min=0, a_max=None)
    model = make_pipeline(
        FunctionTransformer(clip), FunctionTransformer(np.log1p), LogisticRegression()
    ).fit(sample[features], sample["is_fraud"])
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    out = tmp_path / "handoff.yaml"
    result = _init(path, example_dir / "work" / "sample.parquet", out)
    assert result.exit_code == 0, result.output
    assert "security.trusted_types" in result.output
    text = out.read_text()
    listed = [line.split("#  - ", 1)[1] for line in text.splitlines() if "#  - " in line]
    assert listed == ["functools.partial", "numpy.clip", "numpy.log1p"]
    assert load_spec(out).security.trusted_types == []  # nothing trusted until reviewed
    with pytest.raises(UnsafeModelError, match=r"functools\.partial"):
        load(path)
    again = load(path, listed)
    assert (again.predict(sample[features]) == model.predict(sample[features])).all()


def test_a_truncated_joblib_file_is_a_clear_error(example_dir: Path, tmp_path: Path) -> None:
    import pandas as pd

    sample = pd.read_parquet(example_dir / "work" / "sample.parquet")
    model = LogisticRegression().fit(sample[["amount_eur"]], sample["is_fraud"])
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    path.write_bytes(path.read_bytes()[:40])
    result = _init(path, example_dir / "work" / "sample.parquet", tmp_path / "handoff.yaml")
    assert result.exit_code == 2 and "truncated" in result.output
    assert not (tmp_path / "handoff.yaml").exists()

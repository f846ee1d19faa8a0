"""The restricted unpickler: real models load exactly; broken files are clear errors.

Hostile files (payloads that would run code or corrupt memory) are in tests/security/."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder
from threadpoolctl import threadpool_limits

from mlhandoff.errors import ModelLoadError, UnsafeModelError
from mlhandoff.flavors import LoadOptions, load_predictor
from mlhandoff.flavors import _safe_pickle as safe_pickle

# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """OpenMP workers spin-wait: on a busy 2-core machine one thread per library is faster."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    x, y = make_classification(n_samples=300, n_features=4, random_state=0)
    rng = np.random.default_rng(0)
    df = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    df["city"] = rng.choice(["paris", "rome", "oslo"], size=len(df))
    df["plan"] = rng.choice(["free", "pro"], size=len(df))
    df["y"] = y
    return df


@pytest.fixture(scope="module")
def hgb_pipeline(frame: pd.DataFrame) -> Pipeline:
    encode = ColumnTransformer(
        [("cat", OrdinalEncoder(), ["city", "plan"])], remainder="passthrough"
    )
    model = HistGradientBoostingClassifier(max_iter=15, random_state=0)
    pipe = Pipeline([("encode", encode), ("model", model)])
    return pipe.fit(frame.drop(columns="y"), frame["y"])


# --- real models ----------------------------------------------------------------------------


def _table(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame.drop(columns="y"), preserve_index=False)


@pytest.mark.parametrize(
    ("filename", "dump"),
    [
        ("model.joblib", lambda m, p: joblib.dump(m, p)),
        ("model.joblib", lambda m, p: joblib.dump(m, p, compress=("zlib", 3))),
        ("model.pkl", lambda m, p: p.write_bytes(pickle.dumps(m, protocol=5))),
        ("model.pickle", lambda m, p: p.write_bytes(pickle.dumps(m, protocol=2))),
    ],
    ids=["joblib", "joblib-zlib", "pickle-5", "pickle-2"],
)
def test_hgb_pipeline_loads_with_nothing_trusted(
    tmp_path: Path, frame: pd.DataFrame, hgb_pipeline: Pipeline, filename: str, dump: Any
) -> None:
    path = tmp_path / filename
    dump(hgb_pipeline, path)
    loaded: Any = safe_pickle.load(path)
    x = frame.drop(columns="y")
    np.testing.assert_array_equal(loaded.predict_proba(x), hgb_pipeline.predict_proba(x))

    predictor = load_predictor(path, "sklearn", LoadOptions(task="binary_classification"))
    outputs = predictor.predict(_table(frame))
    np.testing.assert_allclose(outputs["score"], hgb_pipeline.predict_proba(x)[:, 1])
    np.testing.assert_array_equal(outputs["label"], hgb_pipeline.predict(x))


def test_plain_function_needs_trust(tmp_path: Path, frame: pd.DataFrame) -> None:
    x = frame[["a", "b"]].abs()
    pipe = Pipeline([("log", FunctionTransformer(np.log1p)), ("lr", LogisticRegression())])
    pipe.fit(x, frame["y"])
    path = tmp_path / "model.joblib"
    joblib.dump(pipe, path)
    with pytest.raises(UnsafeModelError, match=r"numpy\.log1p.*security\.trusted_types"):
        safe_pickle.load(path)
    loaded: Any = safe_pickle.load(path, trusted_types=["numpy.log1p"])
    np.testing.assert_array_equal(loaded.predict_proba(x), pipe.predict_proba(x))


@pytest.mark.parametrize("writer", ["pickle-2", "pickle-5", "joblib"])
def test_arrays_of_every_dtype_layout_round_trip(tmp_path: Path, writer: str) -> None:
    """Dtype state is checked and applied to a copy: every real layout still loads exactly, and
    arrays that shared a dtype still share one."""
    record = np.dtype([("a", "f8"), ("b", "i4"), ("t", "M8[ns]")], align=True)
    titled = np.dtype(
        {"names": ["x"], "formats": ["<u2"], "titles": ["X"], "offsets": [4], "itemsize": 8}
    )
    arrays = [
        np.zeros(3, dtype=record),
        np.ones(2, dtype=record),
        np.arange(6, dtype="f4").reshape(2, 3),
        np.zeros(2, dtype=titled),
        np.array([1, "x", None], dtype=object),
        np.array([(None, 1.5)], dtype=[("o", "O"), ("f", "f8")]),
        np.array(["ab", "c"], dtype="U3"),
        np.zeros(2, dtype=("f2", (2, 2))),
    ]
    path = tmp_path / ("model.joblib" if writer == "joblib" else "model.pkl")
    if writer == "joblib":
        joblib.dump(arrays, path)
    else:
        path.write_bytes(pickle.dumps(arrays, protocol=int(writer[-1])))
    loaded: Any = safe_pickle.load(path)
    for got, want in zip(loaded, arrays, strict=True):
        assert got.dtype == want.dtype and got.dtype.flags == want.dtype.flags
        assert got.tolist() == want.tolist()
    assert loaded[0].dtype is loaded[1].dtype


# --- broken files ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_garbage_is_refused(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(np.random.default_rng(seed).bytes(2048))
    with pytest.raises(ModelLoadError):  # UnsafeModelError is one too
        safe_pickle.load(path)


@pytest.mark.parametrize("content", [b"", b"hello, world\n", b"PK\x03\x04not a zip"])
def test_non_pickles_are_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(content)
    with pytest.raises(ModelLoadError, match=r"model\.pkl"):
        safe_pickle.load(path)


@pytest.mark.parametrize("compress", [0, 3])
def test_truncated_joblib_is_a_load_error(
    tmp_path: Path, hgb_pipeline: Pipeline, compress: int
) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump(hgb_pipeline, path, compress=compress)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match=r"model\.joblib"):
        safe_pickle.load(path)

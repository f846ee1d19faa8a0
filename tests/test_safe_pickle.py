"""The restricted unpickler: real models load, hostile files are refused before they run."""

from __future__ import annotations

import builtins
import os
import pickle
import shlex
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.base import BaseEstimator
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


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """The file every hostile payload tries to create."""
    return tmp_path / "pwned"


class _Call:
    """Pickles as ``fn(*args)``: what an attacker's ``__reduce__`` looks like."""

    def __init__(self, fn: Any, *args: Any) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.fn, self.args


def _touch(marker: Path) -> str:
    return f"{shlex.quote(sys.executable)} -c \"open({str(marker)!r}, 'w').close()\""


def _payloads(marker: Path) -> dict[str, Any]:
    code = f"open({str(marker)!r}, 'w').close()"
    nested = LogisticRegression()
    nested.surprise = _Call(os.system, _touch(marker))  # inside an otherwise valid estimator
    return {
        "os.system": _Call(os.system, _touch(marker)),
        "subprocess.call": _Call(subprocess.call, ["touch", str(marker)]),
        "subprocess.Popen": _Call(subprocess.Popen, ["touch", str(marker)]),
        "builtins.eval": _Call(builtins.eval, code),
        "builtins.exec": _Call(builtins.exec, code),
        "nested in sklearn": nested,
        "inside a list": [1, 2, _Call(os.system, _touch(marker))],
    }


def _short_unicode(s: str) -> bytes:
    data = s.encode()
    return b"\x8c" + bytes([len(data)]) + data


def _handwritten(marker: Path) -> dict[str, bytes]:
    """Streams no pickler would write from a normal object: they reach for code directly."""
    cmd = _touch(marker).encode()
    getattr_trick = (
        b"cbuiltins\ngetattr\n(cbuiltins\n__import__\n(Vos\ntRVsystem\ntR(V" + cmd + b"\ntR."
    )
    stack_global = (
        b"\x80\x04"
        + _short_unicode("posix")
        + _short_unicode("system")
        + b"\x93"  # STACK_GLOBAL
        + b"X"
        + struct.pack("<I", len(cmd))
        + cmd
        + b"\x85R."  # TUPLE1, REDUCE, STOP
    )
    # Dotted-name traversal: the stock unpickler walks sklearn -> sklearn.os -> os.system.
    dotted = (
        b"\x80\x04"
        + _short_unicode("sklearn")
        + _short_unicode("os.system")
        + b"\x93X"
        + struct.pack("<I", len(cmd))
        + cmd
        + b"\x85R."
    )
    return {"getattr trick": getattr_trick, "STACK_GLOBAL": stack_global, "dotted name": dotted}


# --- hostile files --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["os.system", "getattr trick", "STACK_GLOBAL", "dotted name"])
def test_payloads_are_real(marker: Path, kind: str) -> None:
    """Control: the stock unpickler does run them, so the refusals below mean something."""
    streams = _handwritten(marker)
    stream = streams[kind] if kind in streams else pickle.dumps(_payloads(marker)[kind])
    pickle.loads(stream)
    assert marker.exists()


@pytest.mark.parametrize(
    "kind",
    [
        "os.system",
        "subprocess.call",
        "subprocess.Popen",
        "builtins.eval",
        "builtins.exec",
        "nested in sklearn",
        "inside a list",
    ],
)
@pytest.mark.parametrize("writer", ["pickle", "joblib", "joblib-compressed"])
def test_hostile_pickles_are_refused(tmp_path: Path, marker: Path, kind: str, writer: str) -> None:
    payload = _payloads(marker)[kind]
    path = tmp_path / ("model.pkl" if writer == "pickle" else "model.joblib")
    if writer == "pickle":
        path.write_bytes(pickle.dumps(payload))
    else:
        joblib.dump(payload, path, compress=3 if writer == "joblib-compressed" else 0)
    with pytest.raises(UnsafeModelError) as info:
        safe_pickle.load(path)
    assert not marker.exists()
    assert "refused" in str(info.value)


@pytest.mark.parametrize("kind", ["getattr trick", "STACK_GLOBAL", "dotted name"])
def test_handwritten_streams_are_refused(tmp_path: Path, marker: Path, kind: str) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(_handwritten(marker)[kind])
    with pytest.raises(UnsafeModelError):
        safe_pickle.load(path)
    with pytest.raises(UnsafeModelError):
        safe_pickle.loads(path.read_bytes())
    assert not marker.exists()


def test_refusal_names_the_global(tmp_path: Path, marker: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(_payloads(marker)["subprocess.call"]))
    with pytest.raises(UnsafeModelError, match=r"subprocess\.call"):
        safe_pickle.load(path)


def test_object_array_in_joblib_is_gated(tmp_path: Path, marker: Path) -> None:
    """joblib writes object arrays as a nested pickle stream; that stream is gated too."""
    array = np.array([_Call(os.system, _touch(marker)), "x"], dtype=object)
    path = tmp_path / "model.joblib"
    joblib.dump({"weights": array}, path)
    with pytest.raises(UnsafeModelError, match="system"):
        safe_pickle.load(path)
    assert not marker.exists()


def test_trusting_os_system_does_not_unlock_it(tmp_path: Path, marker: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(_payloads(marker)["os.system"]))
    with pytest.raises(UnsafeModelError, match="never trusted"):
        safe_pickle.load(path, trusted_types=[f"{os.system.__module__}.system"])
    assert not marker.exists()


def test_build_on_a_class_is_refused() -> None:
    """BUILD on an allowed class would monkeypatch it for the whole process."""
    stream = b"csklearn.base\nBaseEstimator\n}Vfit\nNsb."
    with pytest.raises(UnsafeModelError, match="set attributes"):
        safe_pickle.loads(stream)
    assert BaseEstimator.__dict__.get("fit") is None


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("sklearn.utils._testing", "TempMemmap"),
        ("sklearn.datasets", "load_iris"),
        ("sklearn", "datasets"),
        ("sklearn.utils.validation", "check_array"),
        ("numpy", "memmap"),
        ("numpy", "load"),
        ("numpy", "f2py"),
        ("numpy.testing", "assert_equal"),
        ("joblib", "load"),
        ("functools", "partial"),
        ("builtins", "type"),
    ],
)
def test_globals_outside_the_allowlist(module: str, name: str) -> None:
    stream = b"\x80\x04" + _short_unicode(module) + _short_unicode(name) + b"\x93."
    with pytest.raises(UnsafeModelError, match=rf"{module}\.{name}"):
        safe_pickle.loads(stream)


def test_allowlist_has_no_code_runners() -> None:
    dangerous = {"builtins.eval", "builtins.exec", "builtins.getattr", "builtins.__import__"}
    assert not dangerous & safe_pickle.ALLOWED_GLOBALS
    roots = {g.split(".", 1)[0] for g in safe_pickle.ALLOWED_GLOBALS}
    assert roots <= {"numpy", "copyreg", "_codecs", "collections", "builtins"}


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

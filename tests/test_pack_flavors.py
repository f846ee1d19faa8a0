"""Every flavor through the whole flow: pack an in-memory model, verify the bundle, predict."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

import mlhandoff
from mlhandoff.spec import parse_spec


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 400
    data = pd.DataFrame({"a": rng.normal(size=n), "b": rng.uniform(0, 10, n)})
    data["y"] = ((data["a"] + data["b"] / 5 + rng.normal(scale=0.5, size=n)) > 1).astype("int64")
    return data


def _spec(flavor: str) -> Any:
    return parse_spec(
        f"""
name: tiny-{flavor}
version: "1"
model: {{path: unused, flavor: {flavor}, task: binary_classification, version_tag: v1}}
data_contract:
  label: y
  fields:
    a: {{type: float, description: feature a}}
    b: {{type: float, min: 0, max: 10, description: feature b}}
"""
    )


def _models(frame: pd.DataFrame) -> dict[str, tuple[Any, Any]]:
    """flavor -> (model to pack, function giving the library's own P(y=1) for a frame)."""
    x, y = frame[["a", "b"]], frame["y"]
    lgbm = lgb.LGBMClassifier(n_estimators=20, verbose=-1).fit(x, y)
    booster = xgb.XGBClassifier(n_estimators=20, max_depth=3).fit(x, y)
    logistic = LogisticRegression().fit(x.to_numpy(np.float32), y)
    onnx_model = to_onnx(
        logistic, x.to_numpy(np.float32)[:1], options={id(logistic): {"zipmap": False}}
    )
    return {
        "sklearn": (LogisticRegression().fit(x, y), None),
        "lightgbm": (lgbm, lambda f: lgbm.predict_proba(f[["a", "b"]])[:, 1]),
        "xgboost": (booster, lambda f: booster.predict_proba(f[["a", "b"]])[:, 1]),
        "onnx": (
            onnx_model,
            lambda f: logistic.predict_proba(f[["a", "b"]].to_numpy(np.float32))[:, 1],
        ),
    }


@pytest.mark.parametrize("flavor", ["sklearn", "lightgbm", "xgboost", "onnx"])
def test_in_memory_model_packs_verifies_and_predicts(
    flavor: str, frame: pd.DataFrame, tmp_path: Path
) -> None:
    model, reference = _models(frame)[flavor]
    if reference is None:
        reference = lambda f: model.predict_proba(f[["a", "b"]])[:, 1]  # noqa: E731
    result = mlhandoff.pack(
        model, sample=frame, spec=_spec(flavor), out=tmp_path, base_dir=tmp_path
    )
    report = mlhandoff.verify(result.path)
    by_id = {r.id: r for r in report.results}
    for check in ("integrity", "golden_contract", "golden_replay", "artifacts"):
        assert by_id[check].status == "pass", (check, by_id[check])
    bundle = mlhandoff.open_bundle(result.path)
    assert bundle.record.model.flavor == flavor
    # Tree boosters compile (proven at pack, again at verify); the linear models do not.
    trees = flavor in ("lightgbm", "xgboost")
    assert bundle.compiled is trees, result.notices
    assert by_id["compiled_equivalent"].status == ("pass" if trees else "skipped")
    scores = bundle.predict(frame[["a", "b"]]).column("score").to_numpy()
    np.testing.assert_allclose(scores, reference(frame), rtol=1e-5, atol=1e-6)
    lock = json.loads((result.path / "env" / "environment.json").read_text())["packages"]
    expected = {
        "sklearn": "scikit-learn",
        "lightgbm": "lightgbm",
        "xgboost": "xgboost",
        "onnx": "onnxruntime",
    }[flavor]
    assert any(name.lower().startswith(expected) for name in lock), lock


def test_python_function_bundle_stays_intact_after_loading(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    """Importing bundled code must not write __pycache__ into the bundle (an extra file)."""
    code = tmp_path / "src" / "scorer"
    code.mkdir(parents=True)
    (code / "helpers.py").write_text("def scale(x):\n    return x / 10.0\n")
    (code / "model.py").write_text(
        "import numpy as np\nfrom helpers import scale\n\n\ndef predict(frame):\n"
        "    return np.clip(scale(frame['b'].to_numpy()), 0, 1)\n"
    )
    spec = parse_spec(
        """
name: tiny-pyfunc
version: "1"
model: {path: src/scorer, flavor: python_function, entrypoint: "model:predict", task: binary_classification, version_tag: v1}
data_contract:
  label: y
  fields:
    a: {type: float}
    b: {type: float, min: 0, max: 10}
"""
    )
    result = mlhandoff.pack(spec=spec, sample=frame, out=tmp_path / "dist", base_dir=tmp_path)
    bundle = mlhandoff.open_bundle(result.path)
    scores = bundle.predict(frame[["a", "b"]]).column("score").to_numpy()
    np.testing.assert_allclose(scores, np.clip(frame["b"].to_numpy() / 10, 0, 1))
    assert not list(result.path.rglob("__pycache__"))
    assert mlhandoff.verify(result.path).results[0].status == "pass"


@pytest.mark.parametrize(
    ("task", "labels", "arrow_type"),
    [
        ("multiclass_classification", [3, 5, 7], "int64"),
        ("binary_classification", ["no", "yes"], "string"),
        ("multiclass_classification", ["cat", "dog", "eel"], "string"),
    ],
)
def test_labels_keep_the_type_the_training_labels_had(
    frame: pd.DataFrame, tmp_path: Path, task: str, labels: list, arrow_type: str
) -> None:
    """No output contract written: the standard label output follows the model's classes."""
    x = frame[["a", "b"]]
    y = np.array(labels)[(frame["a"].rank(pct=True) * len(labels) * 0.999).astype(int)]
    model = LogisticRegression().fit(x, y)
    spec = parse_spec(
        f"""
name: typed-{len(labels)}
version: "1"
model: {{path: unused, task: {task}, version_tag: v1}}
data_contract:
  fields:
    a: {{type: float, description: feature a}}
    b: {{type: float, min: 0, max: 10, description: feature b}}
"""
    )
    result = mlhandoff.pack(model, sample=x, spec=spec, out=tmp_path, base_dir=tmp_path)
    bundle = mlhandoff.open_bundle(result.path)
    assert bundle.record.model.classes == labels
    out = bundle.predict(x.head(20))
    assert str(out.schema.field("label").type) == arrow_type
    assert out.column("label").to_pylist() == list(model.predict(x.head(20)))
    replay = {r.id: r for r in mlhandoff.verify(result.path).results}["golden_replay"]
    assert replay.status == "pass"
    schema = json.loads((result.path / "docs" / "openapi.json").read_text())
    label = schema["components"]["schemas"]["Prediction"]["properties"]["label"]
    assert label["type"] == ("integer" if arrow_type == "int64" else "string")

"""The digits dataset (8x8 images as one 64-value array field) through every flavor.

Array features end to end: packed, verified and predicted from the bundle, numbers compared
with the library called directly. Class labels and probabilities: every classifier flavor gives
each class's probability (``proba``, in the order of its ``classes``), labels keep the type of
the training labels, and ``top_k_accuracy@k`` is measured from them.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xgboost as xgb
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from skl2onnx import to_onnx
from sklearn.datasets import load_digits, make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import top_k_accuracy_score
from threadpoolctl import threadpool_limits

import mlhandoff
from mlhandoff.errors import InputError
from mlhandoff.flavors import LoadOptions, get_flavor, load_predictor
from mlhandoff.flavors._frame import to_frame
from mlhandoff.flavors.outputs import label_type
from mlhandoff.flavors.sklearn import untrusted_types
from mlhandoff.spec import parse_spec

MULTICLASS = "multiclass_classification"
PIXELS_ONLY = LoadOptions(task=MULTICLASS, features=("pixels",))
PIXELS = [f"pixels[{i}]" for i in range(64)]


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """400 rows of sklearn's digits: 64 pixel intensities (0..16) and the digit (10 classes);
    tests that evaluate fit on the first 200 and evaluate on the others."""
    x, y = load_digits(return_X_y=True)
    return x[:400], y[:400]


def _frame(x: np.ndarray, y: np.ndarray | None = None) -> pd.DataFrame:
    """The pixels as one array column, as a scientist would hold images in pandas."""
    frame = pd.DataFrame({"pixels": list(x)})
    if y is not None:
        frame["digit"] = y
    return frame


def _spec(flavor: str, task: str = MULTICLASS, extra: str = "") -> Any:
    return parse_spec(
        f"""
name: digits-{flavor.replace("_", "-")}
version: "1"
model: {{path: model, flavor: {flavor}, task: {task}, version_tag: v1{extra}}}
data_contract:
  label: digit
  fields:
    pixels: {{type: array, length: 64, min: 0, max: 16, description: "8x8 image, row by row"}}
"""
    )


def _pack_and_verify(model: Any, spec: Any, frame: pd.DataFrame, tmp_path: Path) -> Any:
    result = mlhandoff.pack(
        model, spec=spec, sample=frame, out=tmp_path / "dist", base_dir=tmp_path
    )
    report = mlhandoff.verify(result.path)
    by_id = {r.id: r for r in report.results}
    for check in ("integrity", "golden_contract", "golden_replay", "artifacts"):
        assert by_id[check].status == "pass", (check, by_id[check])
    return mlhandoff.open_bundle(result.path)


def _assert_multiclass(bundle: Any, frame: pd.DataFrame, proba: np.ndarray, classes: Any) -> None:
    """Bundle.predict (named outputs) and the predictor's probabilities against the library's."""
    named = bundle.predict(frame[["pixels"]])
    expected = np.asarray(classes)[proba.argmax(axis=1)]
    assert named.column("label").to_pylist() == expected.tolist()  # the classes' own type
    np.testing.assert_allclose(named.column("confidence").to_numpy(), proba.max(axis=1), rtol=1e-5)
    raw = bundle.predictor().predict(pa.Table.from_pandas(frame[["pixels"]]))
    np.testing.assert_allclose(raw["proba"], proba, rtol=1e-5, atol=1e-7)


# --- ONNX -----------------------------------------------------------------------------------


def test_onnx_digits_model_takes_the_array_as_one_tensor(
    digits: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    x, y = digits
    x32 = x.astype(np.float32)
    model = LogisticRegression(max_iter=2000).fit(x32, y)
    proto = to_onnx(model, x32[:1], options={id(model): {"zipmap": False}})
    bundle = _pack_and_verify(proto, _spec("onnx"), _frame(x, y), tmp_path)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    labels, proba = session.run(None, {"X": x32})
    _assert_multiclass(bundle, _frame(x), proba, model.classes_)
    assert bundle.predict(_frame(x)).column("label").to_pylist() == labels.tolist()


def test_onnx_array_and_scalars_stack_in_the_models_input_order(
    digits: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    """One tensor input: a scalar, then the 64 pixels, as model.features orders them."""
    x, y = digits
    ink = x.sum(axis=1, keepdims=True) / 100
    matrix = np.hstack([ink, x]).astype(np.float32)
    model = LogisticRegression(max_iter=2000).fit(matrix, y)
    path = tmp_path / "model.onnx"
    get_flavor("onnx").save(to_onnx(model, matrix[:1]), path)
    table = pa.table({"pixels": list(x), "ink": ink[:, 0]})
    options = LoadOptions(task=MULTICLASS, features=("ink", "pixels"))
    outputs = load_predictor(path, "onnx", options).predict(table)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    labels, zipmap = session.run(None, {"X": matrix})
    np.testing.assert_array_equal(outputs["label"], labels)
    np.testing.assert_allclose(outputs["proba"], [[row[c] for c in range(10)] for row in zipmap])

    with pytest.raises(InputError, match=r"takes 65 values per row.*pixels \(64 values\)"):
        load_predictor(path, "onnx", PIXELS_ONLY).predict(table)


def test_onnx_one_input_per_field_feeds_the_array_by_name(
    digits: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    x, y = digits
    ink = x.sum(axis=1, keepdims=True) / 100
    matrix = np.hstack([x, ink]).astype(np.float32)
    model = LogisticRegression(max_iter=2000).fit(matrix, y)
    proto = to_onnx(model, matrix[:1], options={id(model): {"zipmap": False}})
    # The graph takes each field as its own input and concatenates them itself.
    del proto.graph.input[:]
    proto.graph.input.extend(
        [
            helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", 64]),
            helper.make_tensor_value_info("ink", TensorProto.FLOAT, ["N", 1]),
        ]
    )
    proto.graph.node.insert(0, helper.make_node("Concat", ["pixels", "ink"], ["X"], axis=1))
    onnx.checker.check_model(proto)
    path = tmp_path / "model.onnx"
    get_flavor("onnx").save(proto, path)
    assert [i.name for i in proto.graph.input] == ["pixels", "ink"]
    options = LoadOptions(task=MULTICLASS, features=("pixels", "ink"))
    predictor = load_predictor(path, "onnx", options)
    outputs = predictor.predict(pa.table({"ink": ink[:, 0], "pixels": list(x)}))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    labels, proba = session.run(
        None, {"pixels": x.astype(np.float32), "ink": ink.astype(np.float32)}
    )
    np.testing.assert_array_equal(outputs["label"], labels)
    np.testing.assert_allclose(outputs["proba"], proba)


def test_onnx_input_with_image_dimensions_gets_the_values_reshaped(
    digits: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    """An input declared [N, 8, 8] receives the 64 values row by row."""
    x, _ = digits
    graph = helper.make_graph(
        [
            helper.make_node("ReduceSum", ["image", "axis"], ["rows"], keepdims=0),
            helper.make_node("MatMul", ["rows", "weights"], ["prediction"]),
        ],
        "image_rows",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 8, 8])],
        [helper.make_tensor_value_info("prediction", TensorProto.FLOAT, ["N"])],
        initializer=[
            helper.make_tensor("axis", TensorProto.INT64, [1], [2]),
            helper.make_tensor("weights", TensorProto.FLOAT, [8], list(range(8))),
        ],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(proto)
    path = tmp_path / "model.onnx"
    get_flavor("onnx").save(proto, path)
    options = LoadOptions(task="regression", features=("pixels",))
    outputs = load_predictor(path, "onnx", options).predict(pa.table({"pixels": list(x)}))
    expected = x.reshape(-1, 8, 8).sum(axis=2) @ np.arange(8)  # image row i weighs i
    np.testing.assert_allclose(outputs["prediction"], expected, rtol=1e-6)


# --- scikit-learn ---------------------------------------------------------------------------


def test_sklearn_fitted_on_a_matrix_gets_the_array_as_columns(
    digits: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    x, y = digits
    model = LogisticRegression(max_iter=2000).fit(x, y)
    bundle = _pack_and_verify(model, _spec("sklearn"), _frame(x, y), tmp_path)
    _assert_multiclass(bundle, _frame(x), model.predict_proba(x), model.classes_)


def test_sklearn_fitted_on_named_element_columns(
    digits: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    """A DataFrame with columns pixels[0]..pixels[63]: the names map to the array's elements,
    in whatever order the model was fitted."""
    x, y = digits
    named = pd.DataFrame(x, columns=PIXELS)[PIXELS[::-1]]
    model = LogisticRegression(max_iter=2000).fit(named, y)
    bundle = _pack_and_verify(model, _spec("sklearn"), _frame(x, y), tmp_path)
    assert bundle.predictor().feature_names == ("pixels",)
    _assert_multiclass(bundle, _frame(x), model.predict_proba(named), model.classes_)


def test_sklearn_null_array_is_a_row_of_missing_values(
    digits: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    x, y = digits
    holes = x.copy()
    holes[::7, ::5] = np.nan
    model = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(holes, y)
    path = tmp_path / "model.skops"
    get_flavor("sklearn").save(model, path)
    trusted = tuple(untrusted_types(path))
    options = LoadOptions(task=MULTICLASS, features=("pixels",), trusted_types=trusted)
    cells = [
        None if i == 3 else [None if np.isnan(v) else v for v in row]
        for i, row in enumerate(holes[:10])
    ]
    table = pa.table({"pixels": pa.array(cells, pa.list_(pa.float64()))})
    outputs = load_predictor(path, "sklearn", options).predict(table)
    expected = holes[:10].copy()
    expected[3] = np.nan
    np.testing.assert_allclose(outputs["proba"], model.predict_proba(expected))


def test_array_rows_of_different_lengths_are_refused(
    digits: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    x, y = digits
    path = tmp_path / "model.skops"
    get_flavor("sklearn").save(LogisticRegression(max_iter=2000).fit(x, y), path)
    predictor = load_predictor(path, "sklearn", PIXELS_ONLY)
    ragged = pa.table({"pixels": [list(x[0]), list(x[1][:60])]})
    with pytest.raises(InputError, match=r"every 'pixels' array .* lengths \[60, 64\]"):
        predictor.predict(ragged)


# --- python function ------------------------------------------------------------------------


def test_python_function_receives_the_array_column_as_is(
    digits: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    x, y = digits
    code = tmp_path / "model"
    code.mkdir()
    (code / "scorer.py").write_text(
        textwrap.dedent(
            """
            import numpy as np

            def predict(frame):
                cells = frame["pixels"]
                assert all(isinstance(c, np.ndarray) and c.shape == (64,) for c in cells)
                return np.stack(cells).mean(axis=1)
            """
        )
    )
    spec = _spec("python_function", "regression", ', entrypoint: "scorer:predict"')
    frame = _frame(x, y.astype(float))
    bundle = _pack_and_verify(None, spec, frame, tmp_path)
    predicted = bundle.predict(_frame(x)).column("prediction").to_numpy()
    np.testing.assert_allclose(predicted, x.mean(axis=1))


# --- class labels and probabilities ---------------------------------------------------------


def _boosters(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    return {
        "xgboost": xgb.XGBClassifier(n_estimators=10, max_depth=3, n_jobs=1).fit(x, y),
        "lightgbm": lgb.LGBMClassifier(n_estimators=10, verbose=-1, n_jobs=1).fit(x, y),
    }


@pytest.mark.parametrize("flavor", ["xgboost", "lightgbm"])
def test_multiclass_probabilities_and_integer_labels(
    flavor: str, digits: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    x, y = digits
    model = _boosters(x[:200], y[:200])[flavor]
    path = tmp_path / get_flavor(flavor).default_filename
    get_flavor(flavor).save(model, path)
    predictor = load_predictor(path, flavor, PIXELS_ONLY)
    outputs = predictor.predict(pa.table({"pixels": list(x[200:])}))
    np.testing.assert_allclose(outputs["proba"], model.predict_proba(x[200:]), rtol=1e-6)
    np.testing.assert_array_equal(outputs["label"], model.predict(x[200:]))
    assert outputs["label"].dtype.kind == "i"
    np.testing.assert_array_equal(getattr(predictor, "classes", None), np.arange(10))
    assert label_type(predictor.classes) == "int"  # type: ignore[attr-defined]


def test_lightgbm_keeps_integer_classes_that_are_not_0_to_k(tmp_path: Path) -> None:
    x, y = make_classification(
        n_samples=300, n_features=6, n_informative=4, n_classes=3, random_state=0
    )
    labels = np.array([3, 5, 7])[y]
    model = lgb.LGBMClassifier(n_estimators=10, verbose=-1, n_jobs=1).fit(x, labels)
    path = tmp_path / "model.txt"
    get_flavor("lightgbm").save(model, path)
    names = tuple(f"f{i}" for i in range(6))
    options = LoadOptions(task="multiclass_classification", features=names)
    outputs = load_predictor(path, "lightgbm", options).predict(
        pa.table({n: x[:, i] for i, n in enumerate(names)})
    )
    np.testing.assert_array_equal(outputs["label"], model.predict(x))
    assert outputs["label"].dtype.kind == "i"
    np.testing.assert_allclose(outputs["proba"], model.predict_proba(x))


def test_label_type_follows_the_classes() -> None:
    assert label_type(np.arange(3)) == "int"
    assert label_type(np.array([3, 5], dtype=np.uint8)) == "int"
    assert label_type(np.array([False, True])) == "bool"
    assert label_type(np.array(["cat", "dog"], dtype=object)) == "string"
    assert label_type(["cat", "dog"]) == "string"


# --- top-k accuracy through pack ------------------------------------------------------------


def _pack_with_top_k(
    model: Any,
    flavor: str,
    fit: pd.DataFrame,
    held_out: pd.DataFrame,
    tmp_path: Path,
    baseline: Path | None = None,
) -> tuple[dict[str, Any], Any]:
    """Pack with a top_k_accuracy@2 criterion on ``held_out`` (against ``baseline`` when given)
    and integer labels in the output contract; verify must recompute the same numbers from the
    bundle. The measured row and the bundle."""
    pq.write_table(pa.Table.from_pandas(held_out, preserve_index=False), tmp_path / "eval.parquet")
    bound = "threshold: 0.1" if baseline is None else "min_absolute_change: -1"
    compared = "" if baseline is None else f"baseline: {baseline.relative_to(tmp_path)}"
    spec = parse_spec(
        f"""
name: top-k-{flavor}
version: "{1 if baseline is None else 2}"
model: {{path: model, flavor: {flavor}, task: multiclass_classification, version_tag: v1}}
data_contract:
  label: digit
  fields:
    pixels: {{type: array, length: 64, min: 0, max: 16}}
output_contract:
  fields:
    label: {{type: int}}
    confidence: {{type: float, min: 0, max: 1}}
acceptance:
  data: eval.parquet
  bootstrap: {{resamples: 0}}
  {compared}
  criteria:
    - {{metric: top_k_accuracy@2, {bound}}}
"""
    )
    result = mlhandoff.pack(model, spec=spec, sample=fit, out=tmp_path / "dist", base_dir=tmp_path)
    report = json.loads((result.path / "reports" / "acceptance.json").read_text())
    (row,) = [r for r in report["rows"] if r["metric"] == "top_k_accuracy@2"]
    assert row["verdict"] == "pass", row
    verified = {r.id: r.status for r in mlhandoff.verify(result.path).results}
    assert verified["acceptance_measured"] == "pass", verified
    return row, mlhandoff.open_bundle(result.path)


@pytest.mark.parametrize("flavor", ["xgboost", "lightgbm"])
def test_top_k_accuracy_of_a_booster(
    flavor: str, digits: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    x, y = digits
    model = _boosters(x[:200], y[:200])[flavor]
    fit = pd.DataFrame({"pixels": list(x[:200]), "digit": y[:200]})
    held_out = pd.DataFrame({"pixels": list(x[200:]), "digit": y[200:]})
    row, bundle = _pack_with_top_k(model, flavor, fit, held_out, tmp_path)
    expected = top_k_accuracy_score(y[200:], model.predict_proba(x[200:]), k=2)
    assert row["value"] == pytest.approx(expected)
    labels = bundle.predict(held_out[["pixels"]]).column("label")
    assert labels.type == pa.int64()
    np.testing.assert_array_equal(labels.to_numpy(), model.predict(x[200:]))


def test_top_k_accuracy_with_classes_the_data_lacks(tmp_path: Path) -> None:
    """12 classes (their text order, 0 1 10 11 2 ..., is not theirs) and evaluation data
    without classes 3 and 10: each probability still counts for its own class, and the
    missing classes still take their places in the top 2."""
    x, y = make_classification(
        n_samples=1200, n_features=64, n_informative=20, n_classes=12, random_state=1
    )
    x = np.clip(np.round(np.abs(x) * 3), 0, 16)
    model = LogisticRegression(C=0.01, max_iter=3000).fit(x[:600], y[:600])
    lacking = np.isin(y[600:], [3, 10]) | np.isin(model.predict(x[600:]), [3, 10])
    keep = ~lacking  # nor predicted there: a predicted class the labels lack is refused
    held_x, held_y = x[600:][keep], y[600:][keep]
    fit = pd.DataFrame({"pixels": list(x[:600]), "digit": y[:600]})
    held_out = pd.DataFrame({"pixels": list(held_x), "digit": held_y})
    row, _ = _pack_with_top_k(model, "sklearn", fit, held_out, tmp_path)
    expected = top_k_accuracy_score(held_y, model.predict_proba(held_x), k=2, labels=model.classes_)
    assert row["value"] == pytest.approx(expected)


def test_top_k_accuracy_against_a_baseline_bundle(
    digits: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    """The baseline's probabilities are packed with the sample, so verify recomputes the
    comparison from the bundle alone."""
    x, y = digits
    old = xgb.XGBClassifier(n_estimators=2, max_depth=1, n_jobs=1).fit(x[:200], y[:200])
    new = _boosters(x[:200], y[:200])["xgboost"]
    fit = pd.DataFrame({"pixels": list(x[:200]), "digit": y[:200]})
    held_out = pd.DataFrame({"pixels": list(x[200:]), "digit": y[200:]})
    _, baseline = _pack_with_top_k(old, "xgboost", fit, held_out, tmp_path)
    row, _ = _pack_with_top_k(new, "xgboost", fit, held_out, tmp_path, baseline.root)
    top_2 = [top_k_accuracy_score(y[200:], m.predict_proba(x[200:]), k=2) for m in (new, old)]
    assert row["value"] == pytest.approx(top_2[0])
    assert row["baseline"]["delta"] == pytest.approx(top_2[0] - top_2[1])


# --- array columns as the libraries see them ------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.one_of(
            st.none(), st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6)), min_size=3, max_size=3)
        ),
        min_size=1,
        max_size=12,
    ),
    kind=st.sampled_from(["list", "large_list", "fixed_size_list"]),
    split=st.integers(0, 12),
)
def test_array_column_becomes_element_columns(
    rows: list[list[float | None] | None], kind: str, split: int
) -> None:
    """Whatever the Arrow list type, nulls and chunking: element i of row r, NaN for null."""
    item = pa.float64()
    arrow_type = {
        "list": pa.list_(item),
        "large_list": pa.large_list(item),
        "fixed_size_list": pa.list_(item, 3),
    }[kind]
    if all(r is None for r in rows) and kind != "fixed_size_list":
        rows = [*rows, [1.0, 2.0, 3.0]]  # a variable-length list needs one row to say its length
    cut = min(split, len(rows))
    column = pa.chunked_array(
        [pa.array(rows[:cut], arrow_type), pa.array(rows[cut:], arrow_type)], arrow_type
    )
    table = pa.table({"before": np.arange(len(rows)), "v": column})
    frame = to_frame(table, ["v", "before"], "test")
    assert list(frame.columns) == ["v[0]", "v[1]", "v[2]", "before"]
    expected = np.array(
        [[np.nan] * 3 if r is None else [np.nan if e is None else e for e in r] for r in rows]
    )
    np.testing.assert_array_equal(frame[["v[0]", "v[1]", "v[2]"]].to_numpy(), expected)
    np.testing.assert_array_equal(frame["before"], np.arange(len(rows)))
    reversed_names = to_frame(table, ["v[2]", "before", "v[0]"], "test")
    np.testing.assert_array_equal(reversed_names["v[2]"], expected[:, 2])
    assert list(reversed_names.columns) == ["v[2]", "before", "v[0]"]

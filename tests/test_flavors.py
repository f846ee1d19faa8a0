"""Every flavor: fit a small real model, save it, load it back, predict like the library does."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import onnxruntime as ort
import pandas as pd
import pyarrow as pa
import pytest
import xgboost as xgb
from skl2onnx import convert_sklearn, to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder
from threadpoolctl import threadpool_limits

from mlhandoff.errors import (
    InputError,
    MissingExtraError,
    ModelLoadError,
    PredictError,
    UnsafeModelError,
)
from mlhandoff.flavors import (
    FLAVOR_NAMES,
    LoadOptions,
    Predictor,
    flavor_for_model,
    flavor_for_path,
    get_flavor,
    load_predictor,
)
from mlhandoff.flavors.base import STANDARD_OUTPUTS, Task
from mlhandoff.flavors.outputs import check_classes, from_mapping, from_probabilities
from mlhandoff.flavors.sklearn import untrusted_types

NUMERIC = ["a", "b", "c", "d"]
CATEGORICAL = ["city", "plan"]
FEATURES = NUMERIC + CATEGORICAL
BINARY = LoadOptions(task="binary_classification")
MULTICLASS = LoadOptions(task="multiclass_classification")
REGRESSION = LoadOptions(task="regression")

# --- data -----------------------------------------------------------------------------------


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """OpenMP workers spin-wait: on a busy 2-core machine one thread per library is faster."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    """300 rows: 4 numeric and 2 text features, with binary, 3-class and numeric targets."""
    x, y = make_classification(
        n_samples=300, n_features=4, n_informative=3, n_redundant=0, random_state=0
    )
    rng = np.random.default_rng(0)
    city = rng.choice(["paris", "rome", "oslo"], size=len(x))
    plan = rng.choice(["free", "pro"], size=len(x))
    y = np.where(city == "oslo", 1 - y, y)  # make a text feature matter
    table = pa.table({**{n: x[:, i] for i, n in enumerate(NUMERIC)}, "city": city, "plan": plan})
    return {
        "table": table,
        "frame": table.to_pandas(),  # what a scientist fits on: pandas, text as str
        "binary": y,
        "multiclass": (x[:, 0] > -0.5).astype(int) + (x[:, 1] > 0.5).astype(int),
        "regression": x @ np.array([1.0, -2.0, 0.5, 3.0]) + (city == "rome"),
    }


def _categorical(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with text columns as pandas categoricals, as LightGBM/XGBoost train on."""
    return frame.astype({c: "category" for c in CATEGORICAL})


def _reversed(table: pa.Table) -> pa.Table:
    """Rows reversed: categories are first seen in another order than at training."""
    return table.take(pa.array(np.arange(table.num_rows)[::-1]))


def _assert_standard(outputs: dict[str, np.ndarray], task: Task, rows: int) -> None:
    """The task's standard outputs; multiclass ones with every class's probability too."""
    extra = ("proba",) if task == "multiclass_classification" else ()
    assert tuple(outputs) == STANDARD_OUTPUTS[task] + extra
    for values in outputs.values():
        assert len(values) == rows
    for name in ("score", "confidence", "prediction", "proba"):
        if name in outputs:
            assert outputs[name].dtype == np.float64
    if "proba" in outputs:
        np.testing.assert_array_equal(outputs["confidence"], outputs["proba"].max(axis=1))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


# --- registry -------------------------------------------------------------------------------


def test_public_names() -> None:
    import mlhandoff.flavors

    assert set(mlhandoff.flavors.__all__) == {
        "FLAVOR_NAMES",
        "STANDARD_OUTPUTS",
        "Flavor",
        "LoadOptions",
        "Predictor",
        "Task",
        "flavor_for_model",
        "flavor_for_path",
        "get_flavor",
        "load_predictor",
    }


def test_flavor_names() -> None:
    assert FLAVOR_NAMES == ("sklearn", "lightgbm", "xgboost", "onnx", "python_function")
    for name in FLAVOR_NAMES:
        flavor = get_flavor(name)
        assert flavor.name == name
        assert flavor.default_filename
        assert flavor.packages()


def test_unknown_flavor_suggests_a_name() -> None:
    with pytest.raises(InputError, match="did you mean 'sklearn'") as info:
        get_flavor("sklern")
    assert "python_function" in str(info.value)


@pytest.mark.parametrize(
    ("name", "flavor"),
    [
        ("model.skops", "sklearn"),
        ("model.joblib", "sklearn"),
        ("model.pkl", "sklearn"),
        ("model.PICKLE", "sklearn"),
        ("model.txt", "lightgbm"),
        ("model.json", "xgboost"),
        ("model.ubj", "xgboost"),
        ("model.onnx", "onnx"),
    ],
)
def test_flavor_for_path(name: str, flavor: str) -> None:
    assert flavor_for_path(Path(name)) == flavor


def test_flavor_for_path_directory_and_unknown(tmp_path: Path) -> None:
    assert flavor_for_path(tmp_path) == "python_function"
    with pytest.raises(InputError, match=r"model\.bin"):
        flavor_for_path(tmp_path / "model.bin")


def test_flavor_for_model(data: dict[str, Any]) -> None:
    x, y = data["frame"][NUMERIC], data["binary"]
    assert flavor_for_model(LogisticRegression().fit(x, y)).name == "sklearn"
    booster_model = lgb.LGBMClassifier(n_estimators=2, verbose=-1, n_jobs=1).fit(x, y)
    assert flavor_for_model(booster_model).name == "lightgbm"
    assert flavor_for_model(booster_model.booster_).name == "lightgbm"
    assert flavor_for_model(xgb.XGBClassifier(n_estimators=2, n_jobs=1).fit(x, y)).name == "xgboost"
    proto = to_onnx(LogisticRegression().fit(x, y), x.to_numpy(np.float32)[:1])
    assert flavor_for_model(proto).name == "onnx"
    with pytest.raises(InputError, match="supported models are"):
        flavor_for_model(object())


# --- outputs --------------------------------------------------------------------------------


def test_binary_outputs_use_threshold_and_classes() -> None:
    proba = np.array([[0.9, 0.1], [0.35, 0.65], [0.2, 0.8]])
    out = from_probabilities(
        proba, "binary_classification", flavor="t", classes=["no", "yes"], threshold=0.7
    )
    np.testing.assert_array_equal(out["score"], [0.1, 0.65, 0.8])
    np.testing.assert_array_equal(out["label"], ["no", "no", "yes"])


def test_multiclass_outputs() -> None:
    proba = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]])
    out = from_probabilities(proba, "multiclass_classification", flavor="t", classes=[3, 5, 7])
    np.testing.assert_array_equal(out["label"], [5, 3])
    assert out["label"].dtype.kind == "i"  # integer classes stay integers
    np.testing.assert_array_equal(out["confidence"], [0.5, 0.6])
    np.testing.assert_array_equal(out["proba"], proba)


def test_output_shape_errors() -> None:
    with pytest.raises(PredictError, match="binary"):
        from_probabilities(np.ones((2, 3)), "binary_classification", flavor="t")
    with pytest.raises(PredictError, match="confidence"):
        from_mapping({"label": [1]}, "multiclass_classification", flavor="t")
    with pytest.raises(ModelLoadError, match="binary_classification"):
        check_classes([0, 1, 2], "binary_classification", "t")


# --- sklearn --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hgb_pipeline(data: dict[str, Any]) -> Pipeline:
    encode = ColumnTransformer([("cat", OrdinalEncoder(), CATEGORICAL)], remainder="passthrough")
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0)
    return Pipeline([("encode", encode), ("model", model)]).fit(data["frame"], data["binary"])


def test_sklearn_binary_skops_needs_trust(
    tmp_path: Path, data: dict[str, Any], hgb_pipeline: Pipeline
) -> None:
    path = tmp_path / "model.skops"
    get_flavor("sklearn").save(hgb_pipeline, path)
    needed = untrusted_types(path)
    assert "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor" in needed

    with pytest.raises(UnsafeModelError, match=r"security\.trusted_types") as info:
        load_predictor(path, "sklearn", BINARY)
    assert all(t in str(info.value) for t in needed)

    options = LoadOptions(task="binary_classification", trusted_types=tuple(needed))
    predictor = load_predictor(path, "sklearn", options)
    assert isinstance(predictor, Predictor)
    assert predictor.flavor == "sklearn"
    outputs = predictor.predict(data["table"])
    _assert_standard(outputs, "binary_classification", data["table"].num_rows)
    np.testing.assert_allclose(outputs["score"], hgb_pipeline.predict_proba(data["frame"])[:, 1])
    np.testing.assert_array_equal(outputs["label"], hgb_pipeline.predict(data["frame"]))


def test_sklearn_multiclass(tmp_path: Path, data: dict[str, Any]) -> None:
    model = LogisticRegression(max_iter=500).fit(data["frame"][NUMERIC], data["multiclass"])
    path = tmp_path / "model.skops"
    get_flavor("sklearn").save(model, path)
    assert untrusted_types(path) == []
    # Extra columns are dropped and the order comes from the model's own feature names.
    table = data["table"].select(["city", "d", "c", "b", "a", "plan"])
    outputs = load_predictor(path, "sklearn", MULTICLASS).predict(table)
    _assert_standard(outputs, "multiclass_classification", table.num_rows)
    proba = model.predict_proba(data["frame"][NUMERIC])
    np.testing.assert_array_equal(outputs["label"], model.predict(data["frame"][NUMERIC]))
    np.testing.assert_allclose(outputs["proba"], proba)


def test_sklearn_regression(tmp_path: Path, data: dict[str, Any]) -> None:
    model = HistGradientBoostingRegressor(max_iter=20, random_state=0)
    model.fit(data["frame"][NUMERIC], data["regression"])
    path = tmp_path / "model.skops"
    get_flavor("sklearn").save(model, path)
    options = LoadOptions(task="regression", trusted_types=tuple(untrusted_types(path)))
    outputs = load_predictor(path, "sklearn", options).predict(data["table"])
    _assert_standard(outputs, "regression", data["table"].num_rows)
    np.testing.assert_allclose(outputs["prediction"], model.predict(data["frame"][NUMERIC]))


def test_sklearn_fitted_on_array_uses_spec_features(tmp_path: Path, data: dict[str, Any]) -> None:
    x = data["frame"][NUMERIC].to_numpy()
    model = LogisticRegression().fit(x, data["binary"])
    path = tmp_path / "model.skops"
    get_flavor("sklearn").save(model, path)
    options = LoadOptions(task="binary_classification", features=tuple(NUMERIC))
    predictor = load_predictor(path, "sklearn", options)
    assert getattr(predictor, "feature_names", None) is None
    outputs = predictor.predict(data["table"].select(["plan", "d", "b", "a", "c"]))
    np.testing.assert_allclose(outputs["score"], model.predict_proba(x)[:, 1])


def test_sklearn_joblib_roundtrip(
    tmp_path: Path, data: dict[str, Any], hgb_pipeline: Pipeline
) -> None:
    path = tmp_path / "model.joblib"
    get_flavor("sklearn").save(hgb_pipeline, path)
    outputs = load_predictor(path, "sklearn", BINARY).predict(data["table"])
    np.testing.assert_allclose(outputs["score"], hgb_pipeline.predict_proba(data["frame"])[:, 1])


def test_sklearn_refusals(tmp_path: Path, data: dict[str, Any], hgb_pipeline: Pipeline) -> None:
    flavor = get_flavor("sklearn")
    multi = LogisticRegression(max_iter=500).fit(data["frame"][NUMERIC], data["multiclass"])
    path = tmp_path / "multi.skops"
    flavor.save(multi, path)
    with pytest.raises(ModelLoadError, match="3 classes"):
        load_predictor(path, "sklearn", BINARY)

    regressor = LinearRegression().fit(data["frame"][NUMERIC], data["regression"])
    flavor.save(regressor, tmp_path / "reg.skops")
    with pytest.raises(ModelLoadError, match="predict_proba"):
        load_predictor(tmp_path / "reg.skops", "sklearn", BINARY)

    predictor = load_predictor(path, "sklearn", MULTICLASS)
    with pytest.raises(InputError, match="lacks: a"):
        predictor.predict(data["table"].drop_columns(["a"]))
    broken = data["table"].set_column(0, "a", pa.array(["x"] * data["table"].num_rows))
    with pytest.raises(PredictError, match="sklearn"):
        predictor.predict(broken)

    with pytest.raises(InputError, match="skops"):
        flavor.save(hgb_pipeline, tmp_path / "model.bin")


@pytest.mark.parametrize("name", ["model.skops", "model.joblib"])
def test_sklearn_truncated_file(tmp_path: Path, hgb_pipeline: Pipeline, name: str) -> None:
    path = tmp_path / name
    get_flavor("sklearn").save(hgb_pipeline, path)
    _truncate(path)
    with pytest.raises(ModelLoadError, match=name.replace(".", r"\.")):
        load_predictor(path, "sklearn", BINARY)


# --- lightgbm -------------------------------------------------------------------------------


def _lgbm(data: dict[str, Any], target: str) -> Any:
    kwargs: dict[str, Any] = {
        "n_estimators": 15,
        "min_child_samples": 5,
        "verbose": -1,
        "n_jobs": 1,
    }
    frame = _categorical(data["frame"])
    if target == "regression":
        return lgb.LGBMRegressor(**kwargs).fit(frame, data[target])
    return lgb.LGBMClassifier(**kwargs).fit(frame, data[target])


def test_lightgbm_binary_with_categoricals(tmp_path: Path, data: dict[str, Any]) -> None:
    model = _lgbm(data, "binary")
    path = tmp_path / get_flavor("lightgbm").default_filename
    get_flavor("lightgbm").save(model, path)
    predictor = load_predictor(path, "lightgbm", BINARY)
    assert getattr(predictor, "feature_names", None) == tuple(FEATURES)
    table = _reversed(data["table"])
    outputs = predictor.predict(table)
    _assert_standard(outputs, "binary_classification", table.num_rows)
    expected = _categorical(table.to_pandas())
    np.testing.assert_allclose(outputs["score"], model.predict_proba(expected)[:, 1])
    np.testing.assert_array_equal(outputs["label"], model.predict(expected))


def test_lightgbm_string_classes(tmp_path: Path, data: dict[str, Any]) -> None:
    labels = np.where(data["binary"] == 1, "yes", "no")
    frame = _categorical(data["frame"])
    model = lgb.LGBMClassifier(n_estimators=10, verbose=-1, n_jobs=1).fit(frame, labels)
    path = tmp_path / "model.txt"
    get_flavor("lightgbm").save(model, path)
    outputs = load_predictor(path, "lightgbm", BINARY).predict(data["table"])
    np.testing.assert_array_equal(outputs["label"], model.predict(frame))


def test_lightgbm_multiclass_and_regression(tmp_path: Path, data: dict[str, Any]) -> None:
    frame = _categorical(data["frame"])
    multi = _lgbm(data, "multiclass")
    get_flavor("lightgbm").save(multi, tmp_path / "multi.txt")
    outputs = load_predictor(tmp_path / "multi.txt", "lightgbm", MULTICLASS).predict(data["table"])
    _assert_standard(outputs, "multiclass_classification", len(frame))
    np.testing.assert_array_equal(outputs["label"], multi.predict(frame))
    np.testing.assert_allclose(outputs["proba"], multi.predict_proba(frame))

    reg = _lgbm(data, "regression")
    get_flavor("lightgbm").save(reg, tmp_path / "reg.txt")
    outputs = load_predictor(tmp_path / "reg.txt", "lightgbm", REGRESSION).predict(data["table"])
    _assert_standard(outputs, "regression", len(frame))
    np.testing.assert_allclose(outputs["prediction"], reg.predict(frame))

    with pytest.raises(ModelLoadError, match="objective"):
        load_predictor(tmp_path / "reg.txt", "lightgbm", BINARY)


@pytest.mark.parametrize("cut", ["in a tree", "in the parameters", "in the categories"])
def test_lightgbm_truncated_file(tmp_path: Path, data: dict[str, Any], cut: str) -> None:
    """Each of these cuts crashes the process inside LightGBM unless caught before it."""
    path = tmp_path / "model.txt"
    get_flavor("lightgbm").save(_lgbm(data, "binary"), path)
    text = path.read_text("utf-8")
    anchor = {"in a tree": "Tree=3", "in the parameters": "[objective", "in the categories": '"pro'}
    path.write_text(text[: text.index(anchor[cut]) + 5], "utf-8")
    with pytest.raises(ModelLoadError, match=r"model\.txt"):
        load_predictor(path, "lightgbm", BINARY)


# --- xgboost --------------------------------------------------------------------------------


def _xgb_params() -> dict[str, Any]:
    return {
        "n_estimators": 15,
        "enable_categorical": True,
        "tree_method": "hist",
        "max_depth": 3,
        "n_jobs": 1,
    }


@pytest.mark.parametrize("name", ["model.json", "model.ubj"])
def test_xgboost_binary_with_categoricals(tmp_path: Path, data: dict[str, Any], name: str) -> None:
    frame = _categorical(data["frame"])
    model = xgb.XGBClassifier(**_xgb_params()).fit(frame, data["binary"])
    path = tmp_path / name
    get_flavor("xgboost").save(model, path)
    table = _reversed(data["table"])
    outputs = load_predictor(path, "xgboost", BINARY).predict(table)
    _assert_standard(outputs, "binary_classification", table.num_rows)
    expected = _categorical(table.to_pandas())
    np.testing.assert_allclose(outputs["score"], model.predict_proba(expected)[:, 1])
    np.testing.assert_array_equal(outputs["label"], model.predict(expected))


def test_xgboost_multiclass_and_regression(tmp_path: Path, data: dict[str, Any]) -> None:
    frame = _categorical(data["frame"])
    multi = xgb.XGBClassifier(**_xgb_params()).fit(frame, data["multiclass"])
    get_flavor("xgboost").save(multi, tmp_path / "multi.json")
    outputs = load_predictor(tmp_path / "multi.json", "xgboost", MULTICLASS).predict(data["table"])
    _assert_standard(outputs, "multiclass_classification", len(frame))
    np.testing.assert_array_equal(outputs["label"], multi.predict(frame))
    np.testing.assert_allclose(outputs["proba"], multi.predict_proba(frame), rtol=1e-6)

    reg = xgb.XGBRegressor(**_xgb_params()).fit(frame, data["regression"])
    get_flavor("xgboost").save(reg, tmp_path / "reg.json")
    outputs = load_predictor(tmp_path / "reg.json", "xgboost", REGRESSION).predict(data["table"])
    np.testing.assert_allclose(outputs["prediction"], reg.predict(frame))


def test_xgboost_softmax_booster(tmp_path: Path, data: dict[str, Any]) -> None:
    """multi:softmax predicts labels only; probabilities come back from the margin."""
    x = data["frame"][NUMERIC].to_numpy()
    params = {"objective": "multi:softmax", "num_class": 3, "max_depth": 3, "nthread": 1}
    booster = xgb.train(params, xgb.DMatrix(x, label=data["multiclass"]), num_boost_round=10)
    get_flavor("xgboost").save(booster, tmp_path / "model.json")
    options = LoadOptions(task="multiclass_classification", features=tuple(NUMERIC))
    outputs = load_predictor(tmp_path / "model.json", "xgboost", options).predict(data["table"])
    np.testing.assert_array_equal(outputs["label"], booster.predict(xgb.DMatrix(x)))
    margin = booster.predict(xgb.DMatrix(x), output_margin=True)
    softmax = np.exp(margin) / np.exp(margin).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(outputs["proba"], softmax, rtol=1e-6)


@pytest.mark.parametrize("name", ["model.json", "model.ubj"])
def test_xgboost_truncated_file(tmp_path: Path, data: dict[str, Any], name: str) -> None:
    frame = _categorical(data["frame"])
    path = tmp_path / name
    get_flavor("xgboost").save(xgb.XGBClassifier(**_xgb_params()).fit(frame, data["binary"]), path)
    whole = path.read_bytes()
    for size in (len(whole) // 2, len(whole) - 1, 17):
        path.write_bytes(whole[:size])  # UBJ cuts crash XGBoost's own reader
        with pytest.raises(ModelLoadError, match=name.replace(".", r"\.")):
            load_predictor(path, "xgboost", BINARY)


# --- onnx -----------------------------------------------------------------------------------


def _session(path: Path) -> Any:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_onnx_single_tensor_with_zipmap(tmp_path: Path, data: dict[str, Any]) -> None:
    x = data["frame"][NUMERIC].to_numpy(np.float32)
    model = LogisticRegression().fit(x, data["binary"])
    path = tmp_path / "model.onnx"
    get_flavor("onnx").save(to_onnx(model, x[:1]), path)
    options = LoadOptions(task="binary_classification", features=tuple(NUMERIC))
    outputs = load_predictor(path, "onnx", options).predict(data["table"])
    _assert_standard(outputs, "binary_classification", len(x))
    labels, zipmap = _session(path).run(None, {"X": x})
    np.testing.assert_allclose(outputs["score"], [row[1] for row in zipmap])
    np.testing.assert_array_equal(outputs["label"], labels)
    np.testing.assert_allclose(outputs["score"], model.predict_proba(x)[:, 1], rtol=1e-5)


def test_onnx_per_column_inputs(tmp_path: Path, data: dict[str, Any]) -> None:
    frame = data["frame"]
    encode = ColumnTransformer(
        [("oh", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)], remainder="passthrough"
    )
    pipe = Pipeline([("encode", encode), ("lr", LogisticRegression(max_iter=500))])
    pipe.fit(frame, data["multiclass"])
    types = [(c, FloatTensorType([None, 1])) for c in NUMERIC]
    types += [(c, StringTensorType([None, 1])) for c in CATEGORICAL]
    proto = convert_sklearn(pipe, initial_types=types, options={id(pipe): {"zipmap": False}})
    path = tmp_path / "model.onnx"
    get_flavor("onnx").save(proto, path)
    options = LoadOptions(task="multiclass_classification", features=tuple(FEATURES))
    predictor = load_predictor(path, "onnx", options)
    outputs = predictor.predict(data["table"].select(["plan", *NUMERIC, "city"]))
    _assert_standard(outputs, "multiclass_classification", len(frame))
    feeds: dict[str, np.ndarray] = {c: frame[[c]].to_numpy(np.float32) for c in NUMERIC}
    feeds |= {c: frame[[c]].to_numpy().astype(object) for c in CATEGORICAL}
    labels, proba = _session(path).run(None, feeds)
    np.testing.assert_array_equal(outputs["label"], labels)
    np.testing.assert_allclose(outputs["proba"], proba)


def test_onnx_regression(tmp_path: Path, data: dict[str, Any]) -> None:
    x = data["frame"][NUMERIC].to_numpy(np.float32)
    model = LinearRegression().fit(x, data["regression"])
    path = tmp_path / "model.onnx"
    get_flavor("onnx").save(to_onnx(model, x[:1]), path)
    options = LoadOptions(task="regression", features=tuple(NUMERIC))
    outputs = load_predictor(path, "onnx", options).predict(data["table"])
    _assert_standard(outputs, "regression", len(x))
    (expected,) = _session(path).run(None, {"X": x})
    np.testing.assert_allclose(outputs["prediction"], expected.ravel())


def test_onnx_truncated_file(tmp_path: Path, data: dict[str, Any]) -> None:
    x = data["frame"][NUMERIC].to_numpy(np.float32)
    path = tmp_path / "model.onnx"
    get_flavor("onnx").save(to_onnx(LogisticRegression().fit(x, data["binary"]), x[:1]), path)
    _truncate(path)
    with pytest.raises(ModelLoadError, match=r"model\.onnx"):
        load_predictor(path, "onnx", BINARY)


# --- missing extras -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flavor", "module", "extra", "filename"),
    [
        ("lightgbm", "lightgbm", "lightgbm", "model.txt"),
        ("xgboost", "xgboost", "xgboost", "model.json"),
        ("onnx", "onnxruntime", "onnx", "model.onnx"),
    ],
)
def test_missing_extra(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    flavor: str,
    module: str,
    extra: str,
    filename: str,
) -> None:
    path = tmp_path / filename
    path.write_bytes(b"not read: the import fails first")
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingExtraError, match=rf"pip install 'mlhandoff\[{extra}\]'") as info:
        load_predictor(path, flavor, BINARY)
    assert info.value.package == module
    assert not get_flavor(flavor).handles(object())


# --- python_function ------------------------------------------------------------------------


def _code(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(source), "utf-8")
    return root


def _pyfunc(code_dir: Path, entrypoint: str, task: Task = "binary_classification") -> Predictor:
    options = LoadOptions(task=task, entrypoint=entrypoint, code_dir=code_dir)
    return load_predictor(code_dir, "python_function", options)


def test_pyfunc_array_is_binary_score(tmp_path: Path, data: dict[str, Any]) -> None:
    code = _code(
        tmp_path / "code",
        {
            "model.py": """
                import numpy as np
                from helpers import WEIGHT

                def predict(frame):
                    return 1 / (1 + np.exp(-WEIGHT * frame["a"].to_numpy()))
            """,
            "helpers.py": "WEIGHT = 2.0\n",
        },
    )
    path_before = list(sys.path)
    predictor = _pyfunc(code, "model:predict")
    assert sys.path == path_before
    assert "helpers" not in sys.modules
    outputs = predictor.predict(data["table"])
    _assert_standard(outputs, "binary_classification", data["table"].num_rows)
    expected = 1 / (1 + np.exp(-2.0 * data["frame"]["a"].to_numpy()))
    np.testing.assert_allclose(outputs["score"], expected)
    np.testing.assert_array_equal(outputs["label"], (expected >= 0.5).astype(int))


def test_pyfunc_dict_and_package_code(tmp_path: Path, data: dict[str, Any]) -> None:
    code = _code(
        tmp_path / "code",
        {
            "pkg/__init__.py": "",
            "pkg/scale.py": "FACTOR = 3.0\n",
            "pkg/model.py": """
                from .scale import FACTOR

                def predict(frame):
                    return {"prediction": FACTOR * frame["b"].to_numpy()}
            """,
        },
    )
    outputs = _pyfunc(code, "pkg.model:predict", "regression").predict(data["table"])
    np.testing.assert_allclose(outputs["prediction"], 3.0 * data["frame"]["b"].to_numpy())


def test_pyfunc_bundles_do_not_collide(tmp_path: Path, data: dict[str, Any]) -> None:
    predictors = []
    for value in (1.0, 2.0):
        source = f"def predict(frame):\n    return [{value}] * len(frame)\n"
        code = _code(tmp_path / str(value), {"model.py": source})
        predictors.append(_pyfunc(code, "model:predict", "regression"))
    first, second = (p.predict(data["table"])["prediction"] for p in predictors)
    assert set(first) == {1.0}
    assert set(second) == {2.0}


def test_pyfunc_errors(tmp_path: Path, data: dict[str, Any]) -> None:
    code = _code(
        tmp_path / "code",
        {
            "model.py": "def predict(frame):\n    raise RuntimeError('boom')\n",
            "broken.py": "raise ImportError('no such thing')\n",
        },
    )
    with pytest.raises(ModelLoadError, match="model:nope"):
        _pyfunc(code, "model:nope")
    with pytest.raises(ModelLoadError, match="missing:predict"):
        _pyfunc(code, "missing:predict")
    with pytest.raises(ModelLoadError, match="broken:predict"):
        _pyfunc(code, "broken:predict")
    with pytest.raises(ModelLoadError, match="module:function"):
        _pyfunc(code, "model.predict")
    with pytest.raises(PredictError, match="boom"):
        _pyfunc(code, "model:predict").predict(data["table"])

    flavor = get_flavor("python_function")
    assert not flavor.handles(lambda frame: frame)
    with pytest.raises(InputError, match="entrypoint"):
        flavor.save(lambda frame: frame, tmp_path / "code")

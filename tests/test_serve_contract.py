"""The server enforces the one contract: every violation of every record, typed v2 metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from serving import live_server, pyfunc_bundle
from test_evaluate_support import make_bundle

SCORE = """
import numpy as np

def predict(frame):
    return np.clip(frame["x"].to_numpy() / 100.0, 0, 1)
"""


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pyfunc_bundle(tmp_path_factory.mktemp("contract"), "every-violation", SCORE)


def _violations(body: dict) -> dict[tuple[str, str], dict]:
    return {(v["field"], v["rule"]): v for v in body["error"]["violations"]}


def test_a_batch_lists_every_violation_with_its_record_index(bundle: Path) -> None:
    batch = [
        {"x": 1.0, "c": "a"},
        {"x": "oops", "c": "a"},
        {"x": -3.0, "c": "zz", "coupon": 1},
    ]
    with live_server(bundle) as server:
        got = server.client.post("/predict", json={"instances": batch})
    assert got.status_code == 422
    found = _violations(got.json())
    assert found[("x", "type")]["rows"] == [1] and found[("x", "type")]["count"] == 1
    assert "got a string" in found[("x", "type")]["message"]
    assert found[("x", "min")]["rows"] == [2]  # not hidden behind the type error
    assert found[("c", "domain")]["rows"] == [2]
    assert ("coupon", "unexpected_column") in found


def test_one_record_gets_all_its_violations(bundle: Path) -> None:
    with live_server(bundle) as server:
        got = server.client.post("/predict", json={"x": "s", "coupon": 1})
    assert got.status_code == 422
    found = _violations(got.json())
    assert {("x", "type"), ("c", "missing_column"), ("coupon", "unexpected_column")} <= set(found)


def test_many_bad_records_are_counted_in_full_and_listed_bounded(bundle: Path) -> None:
    batch = [{"x": -1.0, "c": "a"} for _ in range(60)]
    with live_server(bundle) as server:
        got = server.client.post("/predict", json={"instances": batch})
    (violation,) = got.json()["error"]["violations"]
    assert violation["count"] == 60 and violation["rows"] == list(range(20))


def test_v2_metadata_of_a_model_with_an_array_field(tmp_path: Path) -> None:
    """An array field used to make GET /v2/models/{name} a plain-text 500."""
    fields = {
        "x": {"type": "float", "min": 0, "max": 100, "description": "A number."},
        "v": {"type": "array", "length": 3, "min": 0, "max": 1, "description": "Three values."},
    }
    rng = np.random.default_rng(0)
    n = 200
    x = rng.uniform(0, 100, n)
    data = pa.table(
        {
            "x": x,
            "v": pa.array(rng.uniform(0, 1, (n, 3)).tolist(), pa.list_(pa.float64(), 3)),
            "y": (rng.random(n) < x / 100).astype(np.int64),
        }
    )
    arrays = make_bundle(tmp_path, "arrays", fields=fields, data=data, acceptance={})
    with live_server(arrays) as server:
        meta = server.client.get("/v2/models/arrays")
        assert meta.status_code == 200, meta.text
        inputs = {t["name"]: t for t in meta.json()["inputs"]}
        assert inputs["v"]["shape"] == [-1, 3] and inputs["v"]["datatype"] == "FP64"
        assert inputs["x"]["datatype"] == "FP64"
        answer = server.client.post("/predict", json={"x": 50.0, "v": [0.1, 0.2, 0.3]})
        assert answer.status_code == 200, answer.text
        short = server.client.post("/predict", json={"x": 50.0, "v": [0.1, 0.2]})
        assert short.status_code == 422


def test_clients_that_send_no_content_type_or_nan_literals(bundle: Path) -> None:
    """What MLflow's and Triton's Python clients send, unchanged."""
    import json as std_json

    with live_server(bundle) as server:
        frame = {
            "dataframe_split": {"columns": ["x", "c", "secret"], "data": [[5.0, "a", float("nan")]]}
        }
        body = std_json.dumps(frame)  # Python's default: a bare NaN for the missing value
        assert "NaN" in body
        got = server.client.post(
            "/invocations", content=body, headers={"Content-Type": "application/json"}
        )
        assert got.status_code == 200, got.text  # NaN is the contract's null (secret is nullable)
        broken = body.replace("5.0", "NaN")  # x is not nullable: the contract says so
        got = server.client.post(
            "/invocations", content=broken, headers={"Content-Type": "application/json"}
        )
        assert got.status_code == 422 and got.json()["error"]["violations"][0]["rule"] == "not_null"
        infinite = body.replace("5.0", "Infinity")
        got = server.client.post(
            "/invocations", content=infinite, headers={"Content-Type": "application/json"}
        )
        assert got.status_code == 400 and "Infinity" in got.json()["error"]["message"]

        v2 = {
            "inputs": [
                {"name": "x", "shape": [1], "datatype": "FP64", "data": [5.0]},
                {"name": "c", "shape": [1], "datatype": "BYTES", "data": ["a"]},
            ]
        }
        raw = std_json.dumps(v2).encode()
        request = server.client.build_request(
            "POST", "/v2/models/every-violation/infer", content=raw
        )
        assert "content-type" not in request.headers
        assert server.client.send(request).status_code == 200  # Triton's client sends none
        wrong = server.client.post(
            "/v2/models/every-violation/infer", content=raw, headers={"Content-Type": "text/plain"}
        )
        assert wrong.status_code == 415
        # /predict stays strict JSON
        got = server.client.post(
            "/predict",
            content=b'{"x": NaN, "c": "a"}',
            headers={"Content-Type": "application/json"},
        )
        assert got.status_code == 400


def test_a_405_names_the_allowed_methods(bundle: Path) -> None:
    with live_server(bundle) as server:
        got = server.client.get("/predict")
        assert got.status_code == 405 and got.json()["error"]["code"] == "method_not_allowed"
        assert "POST" in got.headers["Allow"]

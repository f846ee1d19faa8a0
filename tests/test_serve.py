"""The HTTP server, on a real uvicorn server on 127.0.0.1: every status code from a real request."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlhandoff.errors import IntegrityError
from mlhandoff.serve import ServeConfig, create_app
from mlhandoff.serve.fallback import CircuitBreaker
from mlhandoff.serve.loadtest import golden_bodies
from mlhandoff.serve.predlog import PredictionLog
from serving import SCORER, in_one_second, live_server, pyfunc_bundle, scrape, wait_until

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def example_server(example_bundle: Path):
    with live_server(example_bundle, token=None) as server:
        yield server


@pytest.fixture(scope="module")
def records(example_bundle: Path) -> list[dict]:
    import mlhandoff

    return [json.loads(b) for b in golden_bodies(mlhandoff.open_bundle(example_bundle))]


@pytest.fixture(scope="module")
def scorer_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scorer")
    return pyfunc_bundle(root, "scorer", SCORER, api={"timeout_ms": 300, "rate_limit_rps": 1000})


def _post(server, path: str, body, headers=None) -> httpx.Response:
    return server.client.post(path, content=json.dumps(body), headers={**JSON, **(headers or {})})


# --- the happy paths -------------------------------------------------------------------------


def test_predict_one_and_batch_match_the_bundle(example_server, example_bundle, records) -> None:
    import mlhandoff

    _, expected = mlhandoff.open_bundle(example_bundle).golden()
    one = _post(example_server, "/predict", records[0], {"X-Request-ID": "req-1"})
    assert one.status_code == 200
    body = one.json()
    assert body["request_id"] == "req-1" and one.headers["X-Request-ID"] == "req-1"
    assert body["model"]["version_tag"] == "v1.0.0"
    assert body["predictions"][0]["score"] == pytest.approx(
        expected.column("score")[0].as_py(), rel=1e-9
    )
    batch = _post(example_server, "/predict", {"instances": records[:50]})
    assert batch.status_code == 200
    scores = [p["score"] for p in batch.json()["predictions"]]
    assert scores == pytest.approx(expected.column("score").to_pylist()[:50], rel=1e-9)
    assert len(batch.headers["X-Request-ID"]) == 32  # generated when not given


def test_mlflow_invocations_formats(example_server, records) -> None:
    columns = list(records[0])
    formats = [
        {
            "dataframe_split": {
                "columns": columns,
                "data": [[r[c] for c in columns] for r in records[:3]],
            }
        },
        {"dataframe_records": records[:3]},
        {"instances": records[:3]},
        {"inputs": {c: [r[c] for r in records[:3]] for c in columns}},
    ]
    answers = []
    for body in formats:
        response = _post(example_server, "/invocations", body)
        assert response.status_code == 200, response.text
        answers.append(response.json()["predictions"])
    assert all(a == answers[0] for a in answers)


def test_open_inference_protocol_v2(example_server, records) -> None:
    assert example_server.client.get("/v2/health/live").status_code == 200
    assert example_server.client.get("/v2/health/ready").status_code == 200
    meta = example_server.client.get("/v2/models/risky-transactions").json()
    assert meta["versions"] == ["1.0.0"] and {i["name"] for i in meta["inputs"]} >= {
        "amount_eur",
        "country",
    }
    inputs = [
        {"name": c, "shape": [2], "datatype": "BYTES", "data": [r[c] for r in records[:2]]}
        for c in records[0]
    ]
    response = _post(example_server, "/v2/models/risky-transactions/infer", {"inputs": inputs})
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert outputs["score"]["shape"] == [2] and outputs["score"]["datatype"] == "FP64"
    assert _post(example_server, "/v2/models/other/infer", {"inputs": inputs}).status_code == 404


def test_health_metrics_openapi_docs(example_server, records) -> None:
    client = example_server.client
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"
    before = scrape(client)
    assert _post(example_server, "/predict", records[0]).status_code == 200
    after = scrape(client)
    for name, labels in (
        ("mlhandoff_requests_total", {"route": "/predict", "status": "200"}),
        ("mlhandoff_request_latency_seconds_count", {"route": "/predict"}),
        ("mlhandoff_prediction_value_count", {"output": "score"}),
        ("mlhandoff_batch_rows_count", {}),
    ):  # samples that this request added to, not "# HELP" lines present from registration
        assert after.value(name, **labels) == _value_or_zero(before, name, labels) + 1, name
    assert after.value("mlhandoff_in_flight_requests") == 0
    assert after.value("mlhandoff_ready") == 1
    assert after.value("mlhandoff_model_info", name="risky-transactions", version="1.0.0") == 1
    doc = client.get("/openapi.json").json()
    record = doc["components"]["schemas"]["Record"]
    assert record["properties"]["amount_eur"] == {
        "type": "number",
        "minimum": 0.01,
        "maximum": 5000,
        "description": "Transaction amount converted to EUR at the day's reference rate.",
    }
    assert "422" in doc["paths"]["/predict"]["post"]["responses"]
    assert "/openapi.json" in client.get("/docs").text
    assert client.get("/nope").json()["error"]["code"] == "not_found"
    assert client.get("/predict").json()["error"]["code"] == "method_not_allowed"


def _value_or_zero(scraped, name: str, labels: dict[str, str]) -> float:
    try:
        return scraped.value(name, **labels)
    except KeyError:
        return 0.0


# --- every client error ----------------------------------------------------------------------


def test_400_malformed_json_and_shapes(example_server) -> None:
    client = example_server.client
    bad = client.post("/predict", content=b"{not json", headers=JSON)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "malformed_request"
    assert bad.json()["error"]["request_id"] == bad.headers["X-Request-ID"]
    for body in ([1, 2], {"instances": []}, {"instances": [1]}, {"instances": [{}], "extra": 1}):
        assert _post(example_server, "/predict", body).status_code == 400, body
    assert (
        _post(example_server, "/invocations", {"dataframe_split": {"columns": ["a"]}}).status_code
        == 400
    )
    assert client.post("/predict", content=b"", headers=JSON).status_code == 400


def test_413_body_and_batch_too_large(example_server, records) -> None:
    big = example_server.client.post(
        "/predict", content=b"[" + b" " * 1_100_000 + b"]", headers=JSON
    )
    assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"
    many = _post(example_server, "/predict", {"instances": [records[0]] * 1001})
    assert many.status_code == 413 and "max_batch_size" in many.json()["error"]["message"]


def test_415_wrong_content_type(example_server) -> None:
    response = example_server.client.post(
        "/predict", content=b"a=1", headers={"content-type": "text/plain"}
    )
    assert (
        response.status_code == 415 and response.json()["error"]["code"] == "unsupported_media_type"
    )


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"amount_eur": None}, "amount_eur", "not_null"),
        ({"amount_eur": -5.0}, "amount_eur", "min"),
        ({"amount_eur": "lots"}, "amount_eur", "type"),
        ({"country": "ZZ"}, "country", "domain"),
        ({"surprise": 1}, "surprise", "unexpected_column"),
        ({"event_time": "2026-01-01T10:00:00"}, "event_time", "timezone"),
    ],
)
def test_422_each_contract_violation(example_server, records, change, field, rule) -> None:
    response = _post(example_server, "/predict", {**records[0], **change})
    assert response.status_code == 422, response.text
    violations = response.json()["error"]["violations"]
    assert (field, rule) in {(v["field"], v["rule"]) for v in violations}


def test_422_missing_field_and_pii_values_never_echoed(example_server, records) -> None:
    record = dict(records[0])
    del record["country"]
    missing = _post(example_server, "/predict", record)
    assert (
        missing.status_code == 422
        and missing.json()["error"]["violations"][0]["rule"] == "missing_column"
    )
    secret = -123456.789
    leaked = _post(example_server, "/predict", {**records[0], "distance_from_home_km": secret})
    assert leaked.status_code == 422
    assert "123456" not in leaked.text
    assert leaked.json()["error"]["violations"][0]["field"] == "distance_from_home_km"


def test_401_403_with_a_bearer_token(example_bundle, records) -> None:
    with live_server(example_bundle, token="s3cret-token") as server:
        assert _post(server, "/predict", records[0]).status_code == 401
        wrong = _post(server, "/predict", records[0], {"Authorization": "Bearer nope"})
        assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "forbidden"
        assert (
            _post(
                server, "/predict", records[0], {"Authorization": "Bearer s3cret-token"}
            ).status_code
            == 200
        )


def test_409_idempotency(example_server, records) -> None:
    key = {"Idempotency-Key": "order-42"}
    first = _post(example_server, "/predict", records[0], key)
    again = _post(example_server, "/predict", records[0], key)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()  # same stored response, request id included
    other = _post(example_server, "/predict", records[1], key)
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_conflict"


def test_429_rate_limited_with_retry_after(tmp_path: Path) -> None:
    bundle = pyfunc_bundle(tmp_path, "limited", SCORER, api={"rate_limit_rps": 3})
    with live_server(bundle) as server:
        responses = in_one_second(
            lambda: [
                _post(server, "/predict", {"x": 1.0, "c": "a", "secret": "s"}) for _ in range(6)
            ]
        )
        codes = [r.status_code for r in responses]
        assert codes[:3] == [200, 200, 200] and set(codes[3:]) == {429}
        limited = responses[-1]
        assert (
            int(limited.headers["Retry-After"]) >= 1
            and limited.json()["error"]["code"] == "rate_limited"
        )


# --- model failures, time budget, fallback, readiness ---------------------------------------------


def test_500_model_failure_and_504_timeout(scorer_bundle) -> None:
    with live_server(scorer_bundle) as server:
        failed = _post(server, "/predict", {"x": 66.0, "c": "a", "secret": "s"})
        assert failed.status_code == 500
        error = failed.json()["error"]
        assert error["code"] == "model_error" and error["request_id"] in error["message"]
        assert "Traceback" not in failed.text and "boom" not in failed.text
        slow = _post(server, "/predict", {"x": 77.0, "c": "a", "secret": "s"})
        assert slow.status_code == 504 and slow.json()["error"]["code"] == "model_timeout"
        calls = scrape(server.client).value("mlhandoff_batch_rows_count")
        wait_until(  # the slow call finishes in the model process: its rows are counted
            lambda: scrape(server.client).value("mlhandoff_batch_rows_count") > calls,
            "the slow call to finish",
        )
        assert (
            _post(server, "/predict", {"x": 5.0, "c": "b", "secret": "s"}).json()["predictions"][0][
                "score"
            ]
            == 0.05
        )


def test_fallback_answers_when_primary_fails_or_is_slow(scorer_bundle, tmp_path: Path) -> None:
    fallback = pyfunc_bundle(
        tmp_path, "constant", "def predict(frame):\n    return [0.25] * len(frame)\n"
    )
    with live_server(
        scorer_bundle, fallback=fallback, breaker_failures=2, breaker_cooldown_s=60
    ) as server:
        ok = _post(server, "/predict", {"x": 10.0, "c": "a", "secret": "s"})
        assert ok.json()["predictions"][0]["score"] == 0.1 and "X-Model-Fallback" not in ok.headers
        failed = _post(server, "/predict", {"x": 66.0, "c": "a", "secret": "s"})
        assert failed.status_code == 200 and failed.headers["X-Model-Fallback"] == "constant-1.0.0"
        assert failed.json()["predictions"][0]["score"] == 0.25
        slow = _post(server, "/predict", {"x": 77.0, "c": "a", "secret": "s"})
        assert slow.status_code == 200 and slow.headers["X-Model-Fallback"] == "constant-1.0.0"
        # two failures opened the breaker: a good request now goes to the fallback too
        after = _post(server, "/predict", {"x": 10.0, "c": "a", "secret": "s"})
        assert after.headers["X-Model-Fallback"] == "constant-1.0.0"
        scraped = scrape(server.client)
        for reason in ("error", "timeout", "circuit_open"):
            assert scraped.value("mlhandoff_fallback_total", reason=reason) == 1, reason


def test_circuit_breaker_half_opens_after_cooldown() -> None:
    breaker = CircuitBreaker(failures=2, cooldown_s=0.05)
    breaker.record(False)
    assert breaker.allow()
    breaker.record(False)
    assert not breaker.allow()
    wait_until(breaker.allow, "the cool-down to pass", timeout_s=5)
    breaker.record(True)
    assert breaker.allow() and not breaker.is_open


def test_503_until_the_model_is_loaded(tmp_path: Path) -> None:
    slow_load = (
        "import time\ntime.sleep(2.0)\n\ndef predict(frame):\n    return [0.5] * len(frame)\n"
    )
    bundle = pyfunc_bundle(tmp_path, "slowload", slow_load)
    with live_server(bundle, wait_ready=False) as server:
        assert server.client.get("/healthz").status_code == 200
        assert server.client.get("/readyz").status_code == 503
        early = _post(server, "/predict", {"x": 1.0, "c": "a", "secret": "s"})
        assert early.status_code == 503 and early.json()["error"]["code"] == "not_ready"


def test_abstain_below_confidence(tmp_path: Path) -> None:
    bundle = pyfunc_bundle(tmp_path, "abstainer", SCORER, api={"abstain_below": 0.8})
    with live_server(bundle) as server:
        body = _post(
            server,
            "/predict",
            {
                "instances": [
                    {"x": 50.0, "c": "a", "secret": "s"},
                    {"x": 5.0, "c": "b", "secret": "t"},
                ]
            },
        )
        unsure, sure = body.json()["predictions"]
        assert unsure == {"score": 0.5, "label": None, "abstain": True}
        assert sure == {"score": 0.05, "label": 0, "abstain": False}


def test_tampered_bundle_is_refused_before_loading(example_bundle, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "tampered"
    shutil.copytree(example_bundle, copy)
    with (copy / "model" / "model.skops").open("r+b") as handle:
        handle.seek(64)
        handle.write(b"\x00\x01")
    with pytest.raises(IntegrityError, match=r"model/model\.skops"):
        create_app(ServeConfig(bundle=copy))


# --- prediction log ----------------------------------------------------------------------------


def test_prediction_log_writes_parquet_with_pii_redacted(scorer_bundle, tmp_path: Path) -> None:
    log_dir = tmp_path / "predlog"
    with live_server(scorer_bundle, log_dir=log_dir) as server:
        for i in range(5):
            assert (
                _post(
                    server,
                    "/predict",
                    {"x": float(i), "c": "a", "secret": "my-ssn"},
                    {"X-Request-ID": f"r{i}"},
                ).status_code
                == 200
            )
    files = sorted(log_dir.glob("*.parquet"))
    assert files and not list(log_dir.glob("*.partial"))
    table = pa.concat_tables([pq.read_table(f) for f in files])
    assert sorted(table.column("request_id").to_pylist()) == [f"r{i}" for i in range(5)]
    assert table.column("input.secret").null_count == 5
    assert table.column("output.score").to_pylist() == pytest.approx([i / 100 for i in range(5)])


def test_prediction_log_drops_and_counts_when_full(tmp_path: Path) -> None:
    log = PredictionLog(
        tmp_path, pii_fields=["secret"], model_version="m", max_queue=4, pii="hash", pii_key=b"k"
    )
    inputs = pa.table({"x": [1.0], "secret": ["a"]})
    outputs = pa.table({"score": [0.1]})
    for i in range(20_000):
        log.record(str(i), inputs, outputs)
    log.close()
    table = pa.concat_tables([pq.read_table(f) for f in tmp_path.glob("*.parquet")])
    assert log.dropped > 0
    assert table.num_rows + log.dropped == 20_000
    hashed = table.column("input.secret").to_pylist()
    assert all(len(h) == 64 and h != "a" for h in hashed)


def test_access_log_lines_are_json_with_the_request_id(scorer_bundle, capsys) -> None:
    import logging

    from mlhandoff.serve.logs import JsonFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    access = logging.getLogger("mlhandoff.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        with live_server(scorer_bundle) as server:
            _post(
                server,
                "/predict",
                {"x": 3.0, "c": "a", "secret": "hidden"},
                {"X-Request-ID": "trace-me"},
            )
    finally:
        access.removeHandler(handler)
    lines = [
        json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")
    ]
    entry = next(line for line in lines if line.get("request_id") == "trace-me")
    assert entry["status"] == 200 and entry["route"] == "/predict" and entry["latency_ms"] > 0
    assert "hidden" not in json.dumps(lines)


def test_prediction_log_rotates_files_by_size(tmp_path: Path) -> None:
    log = PredictionLog(
        tmp_path, pii_fields=[], model_version="m", rotate_bytes=1, flush_rows=1, flush_seconds=0.01
    )
    for i in range(5):
        log.record(str(i), pa.table({"x": [float(i)]}), pa.table({"score": [0.5]}))
        wait_until(  # flushed: i files closed by size, one open
            lambda i=i: len(list(tmp_path.glob("*.parquet*"))) == i + 1, f"record {i} written"
        )
    log.close()
    files = sorted(tmp_path.glob("*.parquet"))
    assert len(files) >= 2
    assert sum(pq.read_table(f).num_rows for f in files) == 5


SLOW_COUNTER = """
import time
import numpy as np

CALLS = []

def predict(frame):
    CALLS.append(len(frame))
    time.sleep(0.05)
    return np.clip(frame["x"].to_numpy() / 100.0, 0, 1)
"""


def test_concurrent_requests_share_model_calls(tmp_path: Path) -> None:
    bundle = pyfunc_bundle(tmp_path, "batched", SLOW_COUNTER)
    with live_server(bundle) as server:
        codes: list[int] = []

        def worker(i: int) -> None:
            with httpx.Client(base_url=server.url, timeout=20) as client:
                for _ in range(4):
                    codes.append(
                        client.post(
                            "/predict",
                            content=json.dumps({"x": float(i), "c": "a", "secret": "s"}),
                            headers=JSON,
                        ).status_code
                    )

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert codes.count(200) == 32
        scraped = scrape(server.client)
        batches = scraped.value("mlhandoff_batch_rows_count")
        rows = scraped.value("mlhandoff_batch_rows_sum")
        # warm-up calls aside, 32 requests were answered in far fewer model calls
        assert rows >= 32 and batches < 32 - 8


LEAKY = """
def predict(frame):
    if "boom-ssn" in list(frame["secret"]):
        raise ValueError(f"cannot score {list(frame['secret'])}")
    return [0.5] * len(frame)
"""


def test_model_failure_logs_never_carry_input_values(tmp_path: Path, caplog) -> None:
    import logging

    bundle = pyfunc_bundle(
        tmp_path,
        "leaky",
        LEAKY,
    )
    with caplog.at_level(logging.INFO, logger="mlhandoff"), live_server(bundle) as server:
        failed = _post(server, "/predict", {"x": 1.0, "c": "a", "secret": "boom-ssn"})
        assert failed.status_code == 500
    assert any(r.levelname == "ERROR" for r in caplog.records)
    for record in caplog.records:
        assert "boom-ssn" not in record.getMessage() and "boom-ssn" not in str(
            getattr(record, "stack", "")
        )
    assert "boom-ssn" not in failed.text


def test_dates_arrays_codes_and_absent_nullable_fields_over_http(tmp_path: Path) -> None:
    import yaml

    import mlhandoff

    work = tmp_path / "src"
    (work / "code").mkdir(parents=True)
    (work / "code" / "m.py").write_text(
        "import numpy as np\n\ndef predict(frame):\n    return np.array([min(1.0, len(v) / 10) for v in frame['emb']])\n"
    )
    spec = {
        "name": "typed",
        "version": "1",
        "model": {
            "path": "code",
            "flavor": "python_function",
            "entrypoint": "m:predict",
            "task": "binary_classification",
            "version_tag": "v1",
        },
        "data_contract": {
            "fields": {
                "day": {"type": "date"},
                "at": {"type": "timestamp"},
                "emb": {"type": "array", "length": 3, "min": -1, "max": 1},
                "plan": {"type": "category", "domain": ["1", "2"]},
                "note": {"type": "string", "nullable": True},
            }
        },
    }
    (work / "handoff.yaml").write_text(yaml.safe_dump(spec))
    sample = [
        {
            "day": "2026-01-01",
            "at": "2026-01-01T10:00:00Z",
            "emb": [0.1, 0.2, 0.3],
            "plan": "1",
            "note": "n",
        }
    ] * 5
    table = pa.Table.from_pylist(sample).set_column(
        0, "day", pa.array(["2026-01-01"] * 5).cast(pa.date32())
    )
    table = table.set_column(
        1, "at", pa.array(["2026-01-01T10:00:00Z"] * 5).cast(pa.timestamp("us", tz="UTC"))
    )
    bundle = mlhandoff.pack(spec=work / "handoff.yaml", sample=table, out=tmp_path / "dist").path
    with live_server(bundle) as server:
        ok = _post(
            server,
            "/predict",
            {
                "day": "2026-02-03",
                "at": "2026-02-03T04:05:06+01:00",
                "emb": [0.5, -0.5, 0.0],
                "plan": 2,
            },
        )
        assert ok.status_code == 200, ok.text
        assert ok.json()["predictions"][0]["score"] == pytest.approx(0.3)
        bad = _post(
            server,
            "/predict",
            {"day": "2026-02-30", "at": "2026-02-03T04:05:06Z", "emb": [0.5, 2.0], "plan": "3"},
        )
        assert bad.status_code == 422
        rules = {(v["field"], v["rule"]) for v in bad.json()["error"]["violations"]}
        assert ("day", "type") in rules
        schema = server.client.get("/openapi.json").json()["components"]["schemas"]["Record"]
        assert schema["properties"]["emb"] == {
            "type": "array",
            "items": {"type": "number", "minimum": -1, "maximum": 1},
            "minItems": 3,
            "maxItems": 3,
        }
        assert "note" not in schema["required"]


def test_hashed_pii_needs_a_secret_key(scorer_bundle, tmp_path: Path) -> None:
    from mlhandoff.errors import InputError

    with pytest.raises(InputError, match="secret key"):
        create_app(ServeConfig(bundle=scorer_bundle, log_dir=tmp_path, log_pii="hash"))


def test_rate_limit_is_not_bypassed_by_made_up_authorization_headers(tmp_path: Path) -> None:
    bundle = pyfunc_bundle(tmp_path, "strictlimit", SCORER, api={"rate_limit_rps": 2})
    with live_server(bundle) as server:
        codes = in_one_second(
            lambda: [
                _post(
                    server,
                    "/predict",
                    {"x": 1.0, "c": "a", "secret": "s"},
                    {"Authorization": f"Bearer x{i}"},
                ).status_code
                for i in range(4)
            ]
        )
        assert codes.count(200) == 2 and codes.count(429) == 2, codes


def test_concurrent_requests_with_one_idempotency_key_run_the_model_once(tmp_path: Path) -> None:
    bundle = pyfunc_bundle(tmp_path, "idem", SLOW_COUNTER)
    with live_server(bundle) as server:
        responses: list[httpx.Response] = []

        def send(x: float) -> None:
            with httpx.Client(base_url=server.url, timeout=20) as client:
                body = json.dumps({"x": x, "c": "a", "secret": "s"})
                responses.append(
                    client.post(
                        "/predict", content=body, headers={**JSON, "Idempotency-Key": "same"}
                    )
                )

        threads = [threading.Thread(target=send, args=(1.0,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = sorted(r.status_code for r in responses)
        assert codes.count(200) >= 1 and set(codes) <= {200, 409}
        assert all(
            r.json()["error"]["code"] == "idempotency_conflict"
            for r in responses
            if r.status_code == 409
        )
        winners = {r.json()["request_id"] for r in responses if r.status_code == 200}
        assert len(winners) == 1  # replays carry the first answer, never a second model run
        # a rejected request releases its key: the same key then works for a corrected body
        bad = _post(
            server, "/predict", {"x": -1.0, "c": "a", "secret": "s"}, {"Idempotency-Key": "fix-me"}
        )
        assert bad.status_code == 422
        fixed = _post(
            server, "/predict", {"x": 1.0, "c": "a", "secret": "s"}, {"Idempotency-Key": "fix-me"}
        )
        assert fixed.status_code == 200

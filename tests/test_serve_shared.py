"""Replicas and the API as a whole: Redis-shared state across processes, schemathesis, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pyarrow as pa
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    allow_header_conformance,
    content_type_conformance,
    not_a_server_error,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from serving import (
    SCORER,
    free_port,
    in_one_second,
    live_server,
    pyfunc_bundle,
    redis_server,
    serve_process,
    wait_ready_at,
)

JSON = {"content-type": "application/json"}
RECORD = {"x": 1.0, "c": "a", "secret": "s"}


def test_two_server_processes_share_idempotency_and_rate_limit_through_redis(
    tmp_path: Path,
) -> None:
    bundle = pyfunc_bundle(tmp_path, "shared", SCORER, api={"rate_limit_rps": 4})
    redis_port = free_port()
    redis = redis_server(redis_port)
    url = f"redis://127.0.0.1:{redis_port}/0"
    ports = free_port(), free_port()
    servers = [
        serve_process(bundle, ports[0], "--redis", url, "--workers", "2"),
        serve_process(bundle, ports[1], "--redis", url),
    ]
    clients = [httpx.Client(base_url=f"http://127.0.0.1:{p}", timeout=20) for p in ports]
    try:
        for client in clients:
            wait_ready_at(client, timeout_s=60)
        a, b = clients
        first = a.post(
            "/predict", content=json.dumps(RECORD), headers={**JSON, "Idempotency-Key": "k1"}
        )
        replay = b.post(
            "/predict", content=json.dumps(RECORD), headers={**JSON, "Idempotency-Key": "k1"}
        )
        assert first.status_code == replay.status_code == 200
        assert replay.headers["Idempotent-Replayed"] == "true" and replay.json() == first.json()
        conflict = b.post(
            "/predict",
            content=json.dumps({**RECORD, "x": 2.0}),
            headers={**JSON, "Idempotency-Key": "k1"},
        )
        assert conflict.status_code == 409

        codes = in_one_second(
            lambda: [
                clients[i % 2]
                .post("/predict", content=json.dumps(RECORD), headers=JSON)
                .status_code
                for i in range(8)
            ]
        )
        assert codes.count(200) == 4 and codes.count(429) == 4, codes
    finally:
        for client in clients:
            client.close()
        for process in servers:
            process.terminate()
        for process in servers:
            process.communicate(timeout=15)
        redis.terminate()
        redis.wait(10)


def test_serve_cli_refuses_bad_options(tmp_path: Path) -> None:
    bundle = pyfunc_bundle(tmp_path, "cli", SCORER)
    unreachable = serve_process(
        bundle, free_port(), "--redis", f"redis://127.0.0.1:{free_port()}/0"
    )
    _, stderr = unreachable.communicate(timeout=60)
    assert (
        unreachable.returncode == 2
        and b"cannot reach Redis" in stderr
        and b"Traceback" not in stderr
    )
    missing = serve_process(tmp_path / "nope", free_port())
    _, stderr = missing.communicate(timeout=60)
    assert missing.returncode == 2 and b"not a bundle directory" in stderr
    for option in ("--token-env", "--log-pii-key-env"):
        unset = serve_process(bundle, free_port(), option, "MLH_TEST_SURELY_UNSET")
        _, stderr = unset.communicate(timeout=60)
        assert unset.returncode == 2
        expected = f"{option} MLH_TEST_SURELY_UNSET: that environment variable is not set"
        assert expected.encode() in stderr
    zero_kill = serve_process(bundle, free_port(), "--model-kill-after-s", "0")
    _, stderr = zero_kill.communicate(timeout=60)
    assert zero_kill.returncode == 2 and b"--model-kill-after-s" in stderr


def test_api_conforms_to_its_openapi(tmp_path: Path) -> None:
    """schemathesis against the live server: for generated inputs to every operation, no 5xx and
    every response matches its documented schema (bounded: 25 examples per operation)."""
    bundle = pyfunc_bundle(tmp_path, "schema", SCORER)
    with live_server(bundle) as server:
        schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert {op.path for op in operations} >= {"/predict", "/invocations", "/readyz"}
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(
                max_examples=25,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            def check(case) -> None:
                response = case.call()
                assert response.status_code < 500, (case.path, response.text)
                case.validate_response(
                    response,
                    checks=[
                        not_a_server_error,
                        response_schema_conformance,
                        status_code_conformance,
                        content_type_conformance,
                    ],
                )

            check()


def _loadtest(url: str, bundle: Path, *options: str):
    from typer.testing import CliRunner

    from mlhandoff.cli import app

    return CliRunner().invoke(app, ["loadtest", url, "--bundle", str(bundle), *options])


def test_loadtest_reports_latency_and_budget(tmp_path: Path) -> None:
    bundle = pyfunc_bundle(
        tmp_path,
        "loaded",
        SCORER,
        api={"latency_budget": {"p50_ms": 500, "p99_ms": 2000}, "throughput_rps": 1},
    )
    with live_server(bundle) as server:
        result = _loadtest(server.url, bundle, "--concurrency", "4", "--duration", "1", "--json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert report["ok"] == report["requests"] > 0 and report["statuses"] == {
            "200": report["requests"]
        }
        assert 0 < report["p50_ms"] <= report["p99_ms"]
        assert [b["met"] for b in report["budget"]] == [True, None, True, True]
    strict = pyfunc_bundle(tmp_path, "strict", SCORER, api={"latency_budget": {"p50_ms": 0.001}})
    with live_server(strict) as server:
        missed = _loadtest(server.url, strict, "--duration", "0.5", "--max-requests", "5")
        assert missed.exit_code == 1 and "missed" in missed.output


def test_loadtest_bad_inputs(tmp_path: Path) -> None:
    bundle = pyfunc_bundle(tmp_path, "target", SCORER)
    nobody = f"http://127.0.0.1:{free_port()}"
    refused = _loadtest(nobody, bundle, "--duration", "0.3", "--max-requests", "3", "--json")
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert json.loads(refused.output)["failures"]  # connection errors are counted, not raised
    missing = _loadtest(nobody, tmp_path / "nope")
    assert missing.exit_code == 2 and "not a bundle directory" in missing.output
    unset = _loadtest(nobody, bundle, "--token-env", "MLH_TEST_SURELY_UNSET")
    assert unset.exit_code == 2 and "that environment variable is not set" in unset.output


#: Every field type the contract has, each with the rules a fuzzer should respect.
RICH_FIELDS = {
    "x": {"type": "float", "min": 0, "max": 100, "description": "A number."},
    "n": {"type": "int", "min": -5, "max": 5, "nullable": True, "description": "A count."},
    "c": {"type": "category", "domain": ["a", "b"], "description": "A category."},
    "s": {"type": "string", "max_length": 8, "nullable": True, "description": "Free text."},
    "flag": {"type": "bool", "description": "A flag."},
    "at": {"type": "timestamp", "description": "When, with its zone."},
    "day": {"type": "date", "nullable": True, "description": "A day."},
    "v": {"type": "array", "length": 3, "min": -10, "max": 10, "description": "A vector."},
}
SUMMER = """
import numpy as np

def predict(frame):
    return np.clip(frame["x"].to_numpy() / 100.0, 0, 1)
"""


def _rich_sample() -> pa.Table:
    import datetime as dt

    import numpy as np

    rng = np.random.default_rng(1)
    n = 40
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return pa.table(
        {
            "x": rng.uniform(0, 100, n),
            "n": pa.array([int(i % 11) - 5 for i in range(n)], pa.int64()),
            "c": rng.choice(["a", "b"], n),
            "s": [f"t{i}" for i in range(n)],
            "flag": [bool(i % 2) for i in range(n)],
            "at": pa.array(
                [start + dt.timedelta(hours=i) for i in range(n)], pa.timestamp("us", "UTC")
            ),
            "day": pa.array([dt.date(2026, 1, 1 + i % 28) for i in range(n)], pa.date32()),
            "v": pa.array([[float(i % 10), 0.5, -1.0] for i in range(n)], pa.list_(pa.float64())),
        }
    )


def test_every_request_its_openapi_allows_is_answered(tmp_path: Path) -> None:
    """The document says exactly what is enforced (issue 11, item 14): schemathesis generates
    schema-valid requests for every operation and each must be accepted (2xx), and every 405 must
    carry Allow. Covers the shapes a fuzzer found refused before: an empty dataframe_split,
    ``inputs: {}``, v2 ``inputs: []``, timestamps the schema allowed."""
    bundle = pyfunc_bundle(
        tmp_path,
        "rich",
        SUMMER,
        fields=RICH_FIELDS,
        sample=_rich_sample(),
        api={"rate_limit_rps": 100_000},
    )
    with live_server(bundle) as server:
        schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(
                max_examples=40,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            def check(case) -> None:
                response = case.call()
                case.validate_response(
                    response,
                    checks=[
                        not_a_server_error,
                        positive_data_acceptance,
                        allow_header_conformance,
                        response_schema_conformance,
                    ],
                )

            check()


def test_v2_array_tensors_nested_or_flat_row_major(tmp_path: Path) -> None:
    """An array field's tensor is rows of values, nested or flat row-major in chunks of its
    length; a flat tensor that is not whole rows is a 400 naming the field."""
    bundle = pyfunc_bundle(tmp_path, "rich", SUMMER, fields=RICH_FIELDS, sample=_rich_sample())
    scalars = {
        "x": [10.0, 20.0],
        "n": [1, None],
        "c": ["a", "b"],
        "s": ["u", None],
        "flag": [True, False],
        "at": ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00+01:00"],
        "day": ["2026-01-01", None],
    }

    def body(v: list[object]) -> dict[str, object]:
        tensors = [
            {"name": k, "shape": [2], "datatype": "BYTES", "data": d} for k, d in scalars.items()
        ]
        return {"inputs": [*tensors, {"name": "v", "shape": [2, 3], "datatype": "FP64", "data": v}]}

    with live_server(bundle) as server:
        url = "/v2/models/rich/infer"
        nested = server.client.post(url, json=body([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
        flat = server.client.post(url, json=body([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
        assert nested.status_code == flat.status_code == 200, (nested.text, flat.text)
        assert nested.json()["outputs"] == flat.json()["outputs"]
        assert [o["data"] for o in flat.json()["outputs"] if o["name"] == "score"] == [[0.1, 0.2]]
        ragged = server.client.post(url, json=body([1.0, 2.0, 3.0, 4.0]))
        assert ragged.status_code == 400
        assert "'v' holds 4 values, not a whole number of rows of 3" in ragged.text

"""Benches that nothing runs rot: each bench script runs here at tiny sizes (no timings judged)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _bench(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def test_evaluate_bench_runs() -> None:
    assert "speed-up" in _bench("evaluate.py", "--rows", "2000", "--resamples", "20")


def test_pack_verify_bench_runs(tmp_path: Path) -> None:
    out = _bench("pack_verify.py", "--size-mb", "1", "--repeat", "1", "--dir", str(tmp_path))
    assert "mlhandoff verify" in out


def test_contract_bench_runs(tmp_path: Path) -> None:
    out = _bench(
        "contract.py", "--rows", "2000", "--repeat", "1", "--latency-only", "--dir", str(tmp_path)
    )
    assert out.strip()


@pytest.fixture(scope="module")
def serve_bench():
    spec = importlib.util.spec_from_file_location("bench_serve", BENCH / "serve.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_serve_bench_in_process_layers_run(serve_bench, example_bundle: Path) -> None:
    """The in-process part of bench/serve.py (the HTTP runs need wrk and the peers' venvs)."""
    timed, raw = serve_bench.measure_raw(example_bundle, calls=20)
    assert raw["calls"] == 20 and min(timed()) > 0  # the pipeline, the compiled form
    records = serve_bench.golden_records(example_bundle)
    assert records and all(
        isinstance(v, str | int | float | bool | None) for v in records[0].values()
    )


def test_serve_bench_batch_and_bars_run(serve_bench, example_bundle: Path) -> None:
    batch = serve_bench.measure_batch(example_bundle, rows=500)
    assert batch["rows"] == 500 and batch["bundle_predict_rows_per_s"] > 0
    _, raw = serve_bench.measure_raw(example_bundle, calls=20)
    assert raw["compiled_form"] and raw["raw_compiled_p50_ms"] > 0
    run = {"p50_ms": 1.0, "p99_ms": 2.0, "rps": 100.0, "errors": 0}
    results = {
        "raw": raw,
        "batch": batch,
        "runs": [{"server": "mlhandoff", "concurrency": c, **run} for c in (1, 16)],
    }
    assert len(serve_bench.bars(results)) == 6  # c=1: two latency bars, errors; c=16: p99, errors


def test_serve_bench_and_loadtest_share_one_percentile(serve_bench) -> None:
    from mlhandoff.serve.loadtest import percentile

    values = [float(v) for v in range(1, 102)]
    assert serve_bench._pct(values, 99) == percentile(values, 99) == pytest.approx(100.0)


def test_routing_bench_runs() -> None:
    """bench/routing.py at one round of one second: the canary server really splits traffic."""
    out = _bench("routing.py", "--smoke", "--json")
    result = json.loads(out)
    assert result["plain_rps"] > 0 and result["canary_rps"] > 0
    assert 0 < result["candidate_share"] < 0.5  # weight 10: some, not most, to the candidate
    assert result["errors"] == {"plain": 0, "canary 10%": 0}


def test_serve_bench_drift_cost_runs(example_dir: Path, tmp_path: Path) -> None:
    """bench/serve.py --drift-cost --smoke: two real servers (live drift on and off) under wrk,
    on the example packed as the bench packs it (the rate limit out of the way)."""
    import mlhandoff
    from mlhandoff.spec import dump_spec, load_spec

    spec = load_spec(example_dir / "handoff.yaml")
    spec.api.rate_limit_rps = 1_000_000
    spec.security.keyring = None
    (example_dir / "handoff.drift-bench.yaml").write_text(dump_spec(spec))
    bundle = mlhandoff.pack(spec=example_dir / "handoff.drift-bench.yaml", out=tmp_path).path
    out = _bench("serve.py", "--drift-cost", "--smoke", "--bundle", str(bundle))
    assert "live drift's cost at c=16" in out, out
    assert "errors 0)" in out and "gauges exported at the end: 6" in out, out


def test_engines_bench_runs(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    out = _bench("engines.py", "--smoke", "--dir", str(tmp_path))
    assert "dask2" in out and "DIFFERENT" not in out

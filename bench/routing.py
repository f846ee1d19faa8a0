"""Routing overhead (issue 14): c=16 throughput of `mlhandoff serve` with a 10 % canary against
the same server without one, in one run.

Two python-function bundles of one cheap scorer (a baseline 1.0.0 and a candidate 1.1.0, sticky
key ``user``), so that HTTP, validation and routing are most of the time: the harshest case for
the ratio. The plain server serves the candidate alone; the canary server serves it beside the
baseline at weight 10 (two model processes). Runs alternate plain / canary for ``--rounds``
rounds, wrk at c=16 on single-record requests (200 users in turn); the ratio is canary over
plain median throughput. The share the candidate really answered is read back from /metrics.

    .venv/bin/python bench/routing.py              # 3 rounds of 10 s each (about 2 minutes)
    .venv/bin/python bench/routing.py --smoke      # 1 round of 1 s (tests/test_bench_smoke.py)

Bar: canary throughput >= 90 % of plain. Needs wrk; work files in bench/out/routing/.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import textwrap
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out" / "routing"
BAR = 0.90
CONCURRENCY = 16

_SPEC = importlib.util.spec_from_file_location("bench_serve", BENCH / "serve.py")
assert _SPEC and _SPEC.loader
serve_bench = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = serve_bench
_SPEC.loader.exec_module(serve_bench)  # its Server, wrk and wrk_script drive the runs

_MODEL = """
import numpy as np

def predict(frame):
    return 1 / (1 + np.exp(-(frame["amount"].to_numpy() - 50.0) / 10.0))
"""


def prepare_bundles(out: Path) -> tuple[Path, Path]:
    """(baseline, candidate) under ``out``, packed once and reused."""
    import numpy as np
    import pyarrow as pa
    import yaml

    import mlhandoff

    paths = []
    for version in ("1.0.0", "1.1.0"):
        bundle = out / "dist" / f"routed-{version}"
        paths.append(bundle)
        if (bundle / "MANIFEST.json").exists():
            continue
        work = out / f"routed-{version}-src"
        (work / "model_code").mkdir(parents=True, exist_ok=True)
        (work / "model_code" / "routed_model.py").write_text(textwrap.dedent(_MODEL))
        spec = {
            "name": "routed",
            "version": version,
            "model": {
                "path": "model_code",
                "flavor": "python_function",
                "entrypoint": "routed_model:predict",
                "task": "binary_classification",
                "version_tag": f"v{version}",
            },
            "data_contract": {
                "fields": {
                    "amount": {"type": "float", "min": 0, "max": 100, "description": "Amount."},
                    "user": {"type": "string", "description": "Whose request."},
                }
            },
            "api": {"examples": [{"amount": 10.0, "user": "u1"}], "rate_limit_rps": 1e6},
            "rollout": {"sticky_key": "user"},
        }
        (work / "handoff.yaml").write_text(yaml.safe_dump(spec))
        rng = np.random.default_rng(0)
        sample = pa.table(
            {"amount": rng.uniform(0, 100, 200), "user": [f"u{i}" for i in range(200)]}
        )
        mlhandoff.pack(spec=work / "handoff.yaml", sample=sample, out=out / "dist", force=True)
    return paths[0], paths[1]


def _server(name: str, candidate: Path, *options: str) -> Any:
    exe = Path(sys.executable).with_name("mlhandoff")
    port = serve_bench.free_port()
    return serve_bench.Server(
        name=name,
        command=[str(exe), "serve", str(candidate), "--port", str(port), *options],
        path="/predict",
        wrap=lambda record: record,
        ready_path="/readyz",
        port=port,
    )


def _candidate_share(server: Any) -> float:
    """The share of 200s the candidate answered, from the server's own metrics."""
    from mlhandoff.serve.metrics import Scrape

    _, body = serve_bench.http("GET", server.url + "/metrics")
    scrape = Scrape(body.decode())
    candidate = scrape.value("mlhandoff_requests_total", version="1.1.0", status="200")
    total = scrape.value("mlhandoff_requests_total", status="200")
    return candidate / total if total else 0.0


def run(rounds: int, seconds: float) -> dict[str, Any]:
    if not Path(serve_bench.WRK).exists():
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    OUT.mkdir(parents=True, exist_ok=True)
    baseline, candidate = prepare_bundles(OUT)
    records = [{"amount": float(i % 100), "user": f"user-{i}"} for i in range(200)]
    servers = {
        "plain": _server("routing-plain", candidate),
        "canary 10%": _server(
            "routing-canary", candidate, "--baseline", str(baseline), "--canary-weight", "10"
        ),
    }
    runs: dict[str, list[Any]] = {name: [] for name in servers}
    shares = []
    for round_ in range(rounds):
        for name, server in servers.items():
            with serve_bench.running(server):
                script = serve_bench.wrk_script(server, records)
                serve_bench.wrk(server, script, CONCURRENCY, min(1.0, seconds))  # warm-up
                cpu = serve_bench.server_cpu(server)
                result = serve_bench.wrk(server, script, CONCURRENCY, seconds)
                cpu = serve_bench.server_cpu(server) - cpu
                result.cpu_ms_per_request = 1000 * cpu / max(1, result.requests)
                runs[name].append(result)
                serve_bench.log(f"round {round_ + 1} {name}: {result.rps:.0f} req/s")
                if name != "plain":
                    shares.append(_candidate_share(server))
    plain = statistics.median(r.rps for r in runs["plain"])
    canary = statistics.median(r.rps for r in runs["canary 10%"])
    return {
        "rounds": rounds,
        "seconds": seconds,
        "concurrency": CONCURRENCY,
        "plain_rps": plain,
        "canary_rps": canary,
        "ratio": canary / plain if plain else 0.0,
        "candidate_share": statistics.mean(shares) if shares else 0.0,
        "p99_ms": {name: statistics.median(r.p99_ms for r in rs) for name, rs in runs.items()},
        "cpu_ms_per_request": {
            name: statistics.median(r.cpu_ms_per_request for r in rs) for name, rs in runs.items()
        },
        "rps_per_round": {name: [round(r.rps) for r in rs] for name, rs in runs.items()},
        "errors": {name: sum(r.errors for r in rs) for name, rs in runs.items()},
    }


def report(result: dict[str, Any]) -> str:
    ratio = result["ratio"]
    lines = [
        f"routing overhead: wrk c={result['concurrency']}, {result['rounds']} round(s) of "
        f"{result['seconds']:g} s, median of rounds",
        f"{'server':<14}{'req/s':>10}{'p99 ms':>10}{'CPU ms/req':>12}{'errors':>8}  rounds",
        *(
            f"{name:<14}{rps:>10.0f}{result['p99_ms'][name]:>10.2f}"
            f"{result['cpu_ms_per_request'][name]:>12.3f}{result['errors'][name]:>8}  "
            f"{result['rps_per_round'][name]}"
            for name, rps in (("plain", result["plain_rps"]), ("canary 10%", result["canary_rps"]))
        ),
        f"candidate answered {result['candidate_share']:.1%} of the canary server's requests",
        f"bar: canary >= {BAR:.0%} of plain -> {'PASS' if ratio >= BAR else 'FAIL'} ({ratio:.1%})",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--smoke", action="store_true", help="1 round of 1 s: does it run?")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rounds, seconds = (1, 1.0) if args.smoke else (args.rounds, args.seconds)
    result = run(rounds, seconds)
    print(json.dumps(result, indent=2) if args.json else report(result))


if __name__ == "__main__":
    main()

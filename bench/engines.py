"""Validate a partitioned Parquet dataset on the local engine and on Dask LocalClusters.

Issue 16: local engine vs a Dask LocalCluster of 1 and 2 worker processes on N rows (files of
equal size, 22 columns as in bench/contract.py plus an ``id: true`` column with 0.01 % repeats
across files, 1 % of rows broken), time and peak RSS per worker; the same 5M-row file as
bench/contract.py to show the overhead on small data; every report checked identical to the
local one. Each engine runs in its own child process; cluster start-up is timed apart, and so is the
first run (fresh workers import mlhandoff and pyarrow on their first task); ``run s`` is the
second, warm run (best steady-state figure).

    python bench/engines.py [--rows 100000000] [--files 50] [--small-rows 5000000] [--dir bench/out]
    python bench/engines.py --smoke         # tiny sizes, local and 2 workers (the smoke test)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import contract as contract_bench  # noqa: E402  (bench/contract.py: the same data and contract)

REPEATED_IDS = 0.0001


def write_dataset(out: Path, rows: int, files: int) -> int:
    """``files`` Parquet files of ``rows // files`` rows each; returns the rows written."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    per_file = max(1, rows // files)
    _, bad, _ = contract_bench.make_tables(per_file)
    rng = np.random.default_rng(1)
    for i in range(files):
        ids = np.arange(i * per_file, (i + 1) * per_file, dtype=np.int64)
        again = rng.random(per_file) < REPEATED_IDS
        ids[again] = rng.integers(
            0, (i + 1) * per_file, int(again.sum())
        )  # maybe an earlier file's
        table = bad.append_column("id", pa.array(ids))
        pq.write_table(table, out / f"part-{i:04d}.parquet", row_group_size=1 << 19)
    return per_file * files


def contract_with_id() -> dict[str, Any]:
    spec = contract_bench.contract_json()
    spec["fields"]["id"] = {"type": "int", "id": True, "min": 0}
    return spec


# --- one engine, in a child process ------------------------------------------------------------


def child(engine: str, data: Path, contract: Path, partition_rows: int) -> dict[str, Any]:
    from mlhandoff.contract.validate import CompiledContract
    from mlhandoff.spec.models import DataContract

    compiled = CompiledContract(DataContract.model_validate(json.loads(contract.read_text())))
    start = time.perf_counter()
    workers = 0 if engine == "local" else int(engine.removeprefix("dask"))
    if workers:
        from mlhandoff.engines.dask_engine import DaskEngine

        runner: Any = DaskEngine.connect(None, workers=workers)
        runner.partition_rows = partition_rows
    else:
        from mlhandoff.engines import LocalEngine

        runner = LocalEngine()
    started = time.perf_counter() - start
    start = time.perf_counter()
    report = runner.validate(data, compiled)
    first = time.perf_counter() - start  # a fresh worker imports mlhandoff, pyarrow ... first
    if workers:
        runner.client.run(_warm)  # every worker, not only those the first run used
    start = time.perf_counter()
    report = runner.validate(data, compiled)
    seconds = time.perf_counter() - start
    worker_rss: list[int] = []
    parts = 0
    if workers:
        from mlhandoff.engines.partitions import parquet_parts

        worker_rss = sorted(runner.client.run(contract_bench._peak_rss).values())
        parts = len(parquet_parts(data, partition_rows=partition_rows)[1])
        runner.close()
    digest = hashlib.sha256(json.dumps(report.to_dict(), sort_keys=True).encode()).hexdigest()
    return {
        "startup": started,
        "first": first,
        "seconds": seconds,
        "rows": report.rows,
        "violations": sum(v.count for v in report.violations),
        "client_rss": contract_bench._peak_rss(),
        "worker_rss": worker_rss,
        "partitions": parts,
        "digest": digest,
    }


def _warm() -> None:
    import dask.dataframe  # noqa: F401

    import mlhandoff.engines.dask_validate  # noqa: F401


def spawn(engine: str, data: Path, contract: Path, partition_rows: int) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            engine,
            "--data",
            str(data),
            "--contract",
            str(contract),
            "--partition-rows",
            str(partition_rows),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"{engine} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the tables --------------------------------------------------------------------------------


def compare(
    title: str, data: Path, contract: Path, partition_rows: int, engines: list[str]
) -> None:
    print(f"\n{title}", flush=True)
    print(
        f"{'engine':<14}{'start s':>9}{'1st run':>9}{'run s':>9}{'M rows/s':>10}{'parts':>7}"
        f"{'client MiB':>12}  worker peak MiB   report"
    )
    local: dict[str, Any] | None = None
    for engine in engines:
        r = spawn(engine, data, contract, partition_rows)
        local = local or r
        same = "identical" if r["digest"] == local["digest"] else "DIFFERENT"
        workers = ", ".join(f"{m / 2**20:.0f}" for m in r["worker_rss"]) or "-"
        print(
            f"{engine:<14}{r['startup']:>9.1f}{r['first']:>9.1f}{r['seconds']:>9.1f}"
            f"{r['rows'] / r['seconds'] / 1e6:>10.2f}{r['partitions'] or '-':>7}"
            f"{r['client_rss'] / 2**20:>12.0f}  {workers:<16} {same}",
            flush=True,
        )
        if r["partitions"]:
            per_part = r["seconds"] * int(engine.removeprefix("dask")) / r["partitions"]
            print(
                f"{'':<14}per partition {per_part:.2f} s of worker time; 16 workers, same "
                f"partitions: ~{r['partitions'] * per_part / 16:.1f} s + scheduling",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--small-rows", type=int, default=5_000_000)
    parser.add_argument("--partition-rows", type=int, default=2_000_000)
    parser.add_argument("--dir", type=Path, default=HERE / "out" / "engines")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for the tests")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--contract", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.data, args.contract, args.partition_rows)))
        return
    if args.smoke:
        args.rows, args.files, args.small_rows, args.partition_rows = 40_000, 4, 20_000, 8_000
    import pyarrow.parquet as pq

    out: Path = args.dir
    out.mkdir(parents=True, exist_ok=True)
    contract = out / "contract.json"
    contract.write_text(json.dumps(contract_with_id()))
    print(f"writing {args.rows:,} rows in {args.files} files ...", flush=True)
    rows = write_dataset(out / "big", args.rows, args.files)
    engines = ["local", "dask2"] if args.smoke else ["local", "dask1", "dask2"]
    compare(
        f"{rows:,} rows, {args.files} Parquet files, id: true checked over all of them",
        out / "big",
        contract,
        args.partition_rows,
        engines,
    )
    if args.smoke:
        return
    plain = out / "contract-plain.json"
    plain.write_text(json.dumps(contract_bench.contract_json()))
    compare(
        f"the same {rows:,} rows without the id field (no shuffle)",
        out / "big",
        plain,
        args.partition_rows,
        engines,
    )
    small = out / "small.parquet"
    _, bad, _ = contract_bench.make_tables(args.small_rows)
    pq.write_table(bad, small)
    compare(
        f"{args.small_rows:,} rows, one file (bench/contract.py's workload): the overhead",
        small,
        plain,
        args.partition_rows,
        engines,
    )


if __name__ == "__main__":
    main()

"""Validate 5M rows x 22 columns: mlhandoff vs pandera vs a bare numpy pass; stream 50M rows.

Bars (issue 3): mlhandoff >= 5x faster than pandera and within 2x of the bare numpy pass, each
producing its complete failure report on a copy with 1 % bad rows; a 50M-row Parquet file
validates streaming with peak RSS under 1 GiB.

Every tool runs in its own child process, reads the same Parquet file before its clock starts,
times only validation (best of --repeat) and reports its own peak RSS. pandera runs on pandas 3
in bench/.venvs/pandera (``bash bench/setup.sh pandera``), never in mlhandoff's dependencies.

    python bench/contract.py [--rows 5000000] [--stream-rows 50000000] [--repeat 3] [--dir bench/out]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PANDERA_PYTHON = HERE / ".venvs" / "pandera" / "bin" / "python"
FLOATS, INTS = 10, 10
CATEGORIES = {"c0": [f"k{i}" for i in range(10)], "c1": [f"m{i:02d}" for i in range(50)]}
BAD_FRACTION = 0.01


def contract_json() -> dict[str, Any]:
    """The contract every tool enforces: dtype, range, domain, not-null on all 22 columns."""
    fields: dict[str, Any] = {}
    for i in range(FLOATS):
        fields[f"f{i}"] = {"type": "float", "min": -10.0, "max": 10.0}
    for i in range(INTS):
        fields[f"i{i}"] = {"type": "int", "min": 0, "max": 999}
    for name, values in CATEGORIES.items():
        fields[name] = {"type": "category", "domain": values}
    return {"fields": fields}


# --- data ------------------------------------------------------------------------------------


def make_tables(rows: int, seed: int = 0) -> tuple[Any, Any, int]:
    """A clean table and a copy where 1 % of rows break one rule each (range, null, domain)."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    clean: dict[str, Any] = {}
    bad: dict[str, Any] = {}
    broken = rng.choice(rows, size=int(rows * BAD_FRACTION), replace=False)
    column_of = rng.integers(0, FLOATS + INTS + len(CATEGORIES), size=len(broken))
    names = [*(f"f{i}" for i in range(FLOATS)), *(f"i{i}" for i in range(INTS)), *CATEGORIES]
    for j, name in enumerate(names):
        rows_here = broken[column_of == j]
        how = rng.integers(0, 3, size=len(rows_here))
        if name.startswith("f"):
            x = rng.normal(0, 2, size=rows).clip(-9.9, 9.9)
            clean[name] = pa.array(x)
            y = x.copy()
            y[rows_here[how == 0]] = 20.0
            y[rows_here[how == 1]] = -20.0
            y[rows_here[how == 2]] = np.nan
            bad[name] = pa.array(y, from_pandas=True)  # NaN -> null, as pandas writes it
        elif name.startswith("i"):
            x = rng.integers(0, 1000, size=rows)
            clean[name] = pa.array(x)
            y = x.copy()
            y[rows_here[how < 2]] = 5000
            y[rows_here[how == 2]] = -1
            bad[name] = pa.array(y)
        else:
            values = CATEGORIES[name]
            codes = rng.integers(0, len(values), size=rows).astype(np.int32)
            clean[name] = pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(values))
            codes = codes.copy()
            codes[rows_here] = len(values)  # an unseen value
            bad[name] = pa.DictionaryArray.from_arrays(
                pa.array(codes), pa.array([*values, "ZZ-unseen"])
            )
    return pa.table(clean), pa.table(bad), len(broken)


# --- the tools, each in its own process -------------------------------------------------------


def _peak_rss() -> int:
    """This process's peak RSS in bytes: VmHWM from /proc (Linux), else ru_maxrss.

    ru_maxrss is not enough here: Linux keeps it across execve, so a child of this (large)
    parent would report at least the parent's RSS. VmHWM belongs to the new address space.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _best(fn: Any, repeat: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def child_mlhandoff(data: Path, contract: dict[str, Any], repeat: int, every_row: bool) -> dict:
    import pyarrow.parquet as pq

    from mlhandoff.contract import CompiledContract
    from mlhandoff.spec.models import DataContract

    table = pq.read_table(data)
    spec = DataContract.model_validate(contract)
    examples = table.num_rows if every_row else 5

    def run() -> Any:
        return CompiledContract(spec, max_examples=examples).validate(table)

    seconds, report = _best(run, repeat)
    listed = sum(len(v.rows) for v in report.violations)
    return {
        "seconds": seconds,
        "failures": sum(v.count for v in report.violations),
        "failing_rows": report.failing_rows,
        "rows_listed": listed,
        "peak_rss": _peak_rss(),
    }


def child_numpy(data: Path, contract: dict[str, Any], repeat: int) -> dict:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(data)
    columns: dict[str, Any] = {}
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        if pa.types.is_dictionary(column.type):
            codes = column.indices.fill_null(-1).to_numpy(zero_copy_only=False)
            columns[name] = (codes, np.asarray(column.dictionary.to_pylist(), dtype=object))
        else:
            columns[name] = column.to_numpy(zero_copy_only=False)
    rules = contract["fields"]
    rows = table.num_rows

    def run() -> tuple[dict[str, int], np.ndarray]:
        failing = np.zeros(rows, dtype=bool)
        counts = {}
        for name, rule in rules.items():
            values = columns[name]
            if "domain" in rule:
                codes, dictionary = values
                outside = ~np.isin(dictionary, np.asarray(rule["domain"], dtype=object))
                bad = outside[codes] | (codes < 0)
            else:
                values.min(), values.max()
                bad = (values < rule["min"]) | (values > rule["max"])
                if values.dtype.kind == "f":
                    bad |= np.isnan(values)
            counts[name] = int(np.count_nonzero(bad))
            failing |= bad
        return counts, np.flatnonzero(failing)

    seconds, (counts, failing_rows) = _best(run, repeat)
    return {
        "seconds": seconds,
        "failures": sum(counts.values()),
        "failing_rows": len(failing_rows),
        "rows_listed": len(failing_rows),
        "peak_rss": _peak_rss(),
    }


def child_pandera(data: Path, contract: dict[str, Any], repeat: int) -> dict:
    import pandas as pd
    import pandera.pandas as pa

    frame = pd.read_parquet(data)
    columns = {}
    for name, rule in contract["fields"].items():
        if "domain" in rule:
            columns[name] = pa.Column("category", pa.Check.isin(rule["domain"]), nullable=False)
        else:
            dtype = "float64" if rule["type"] == "float" else "int64"
            check = pa.Check.in_range(rule["min"], rule["max"])
            columns[name] = pa.Column(dtype, check, nullable=False)
    schema = pa.DataFrameSchema(columns, strict=True)

    def run() -> Any:
        try:
            schema.validate(frame, lazy=True)
        except pa.errors.SchemaErrors as exc:
            return exc.failure_cases
        return frame.iloc[:0]

    seconds, cases = _best(run, repeat)
    return {
        "seconds": seconds,
        "failures": len(cases),
        "failing_rows": int(cases["index"].nunique()) if len(cases) else 0,
        "rows_listed": len(cases),
        "peak_rss": _peak_rss(),
        "versions": f"pandera {pa.__version__ if hasattr(pa, '__version__') else ''} "
        f"pandas {pd.__version__}",
    }


def child_stream(data: Path, contract: dict[str, Any]) -> dict:
    from mlhandoff.contract import validate_file
    from mlhandoff.spec.models import DataContract

    start = time.perf_counter()
    report = validate_file(data, DataContract.model_validate(contract))
    return {
        "seconds": time.perf_counter() - start,
        "rows": report.rows,
        "failures": sum(v.count for v in report.violations),
        "failing_rows": report.failing_rows,
        "peak_rss": _peak_rss(),
    }


def spawn(python: Path | str, tool: str, data: Path, contract: Path, repeat: int) -> dict:
    command = [str(python), __file__, "--child", tool, "--data", str(data)]
    command += ["--contract", str(contract), "--repeat", str(repeat)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{tool} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def one_row_latency(runs: int = 20_000) -> tuple[float, float]:
    """Median and p99 microseconds to validate one request of the example contract (11 fields).

    This is what the HTTP server pays per request: a 1-row table through the same validator.
    """
    import pyarrow as pa

    from mlhandoff.contract import CompiledContract
    from mlhandoff.spec import load_spec

    spec = load_spec(HERE.parent / "examples" / "risky_transactions" / "handoff.yaml")
    contract = CompiledContract(spec.data_contract)
    record = dict(spec.api.examples[0])
    record.setdefault("transaction_id", "tx_00000001")
    record.setdefault("event_time", "2026-01-01T23:22:24Z")
    table = pa.Table.from_pylist([record])
    assert len(table.column_names) == 11 and contract.validate(table).ok
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        contract.validate(table)
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2] * 1e6, times[int(len(times) * 0.99)] * 1e6


# --- the run ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--stream-rows", type=int, default=50_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=HERE / "out")
    parser.add_argument("--latency-only", action="store_true", help="only the 1-row latency")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--contract", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        contract = json.loads(args.contract.read_text())
        result = {
            "mlhandoff": lambda: child_mlhandoff(args.data, contract, args.repeat, False),
            "mlhandoff-all": lambda: child_mlhandoff(args.data, contract, args.repeat, True),
            "numpy": lambda: child_numpy(args.data, contract, args.repeat),
            "pandera": lambda: child_pandera(args.data, contract, args.repeat),
            "stream": lambda: child_stream(args.data, contract),
        }[args.child]()
        print(json.dumps(result))
        return
    median, p99 = one_row_latency()
    print(
        f"1-row validation, example contract (11 fields): median {median:.0f} us, p99 {p99:.0f} us"
    )
    if not args.latency_only:
        run(args)


def run(args: argparse.Namespace) -> None:
    import pyarrow.parquet as pq

    out: Path = args.dir
    out.mkdir(parents=True, exist_ok=True)
    contract_path = out / "contract.json"
    contract_path.write_text(json.dumps(contract_json()))
    print(f"generating {args.rows:,} rows x 22 columns ...", flush=True)
    clean, bad, broken = make_tables(args.rows)
    pq.write_table(clean, out / "clean.parquet")
    pq.write_table(bad, out / "bad.parquet")
    print(f"{broken:,} rows broken in the bad copy ({BAD_FRACTION:.0%})", flush=True)

    tools = [
        ("mlhandoff (first 5 rows/rule)", sys.executable, "mlhandoff"),
        ("mlhandoff (every failing row)", sys.executable, "mlhandoff-all"),
        ("bare numpy pass", sys.executable, "numpy"),
    ]
    if PANDERA_PYTHON.exists():
        tools.append(("pandera (lazy=True)", PANDERA_PYTHON, "pandera"))
    else:
        print(f"skipping pandera: run `bash bench/setup.sh pandera` ({PANDERA_PYTHON} missing)")
    results: dict[tuple[str, str], dict] = {}
    for data in ("clean", "bad"):
        for label, python, tool in tools:
            print(f"  {label} on {data} ...", flush=True)
            results[(label, data)] = spawn(
                python, tool, out / f"{data}.parquet", contract_path, args.repeat
            )

    print(
        f"\n{args.rows:,} rows x 22 columns, best of {args.repeat}; ratio = tool time / "
        "mlhandoff (every failing row) time on the same data"
    )
    header = f"{'tool':32} {'data':6} {'seconds':>8} {'ratio':>7} {'failures':>9} {'failing rows':>13} {'rows listed':>12} {'peak RSS':>9}"
    print(header)
    print("-" * len(header))
    for data in ("clean", "bad"):
        base = results[("mlhandoff (every failing row)", data)]["seconds"]
        for label, _, _ in tools:
            r = results[(label, data)]
            print(
                f"{label:32} {data:6} {r['seconds']:8.3f} {r['seconds'] / base:7.2f} "
                f"{r['failures']:9,} {r['failing_rows']:13,} {r['rows_listed']:12,} "
                f"{r['peak_rss'] / 2**30:7.2f} G"
            )
    print()
    for data in ("clean", "bad"):
        ours = results[("mlhandoff (every failing row)", data)]["seconds"]
        numpy_s = results[("bare numpy pass", data)]["seconds"]
        line = f"{data}: mlhandoff / numpy = {ours / numpy_s:.2f}x (bar <= 2x)"
        if ("pandera (lazy=True)", data) in results:
            pandera_s = results[("pandera (lazy=True)", data)]["seconds"]
            line += f"; pandera / mlhandoff = {pandera_s / ours:.1f}x (bar >= 5x)"
        print(line)

    if args.stream_rows:
        stream_file = out / "stream.parquet"
        repeats = max(1, args.stream_rows // args.rows)
        print(f"\nwriting {repeats * args.rows:,} rows to {stream_file} ...", flush=True)
        with pq.ParquetWriter(stream_file, bad.schema) as writer:
            for _ in range(repeats):
                writer.write_table(bad, row_group_size=1 << 20)
        size = stream_file.stat().st_size
        r = spawn(sys.executable, "stream", stream_file, contract_path, 1)
        print(
            f"streamed {r['rows']:,} rows ({size / 2**30:.1f} GiB Parquet) in {r['seconds']:.1f} s "
            f"({r['rows'] / r['seconds'] / 1e6:.1f} M rows/s), {r['failures']:,} violations, "
            f"peak RSS {r['peak_rss'] / 2**20:.0f} MiB (bar < 1024 MiB)"
        )
        stream_file.unlink()


if __name__ == "__main__":
    main()

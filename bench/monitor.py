"""Drift on 1M rows x 22 features against a 100k-row reference: mlhandoff monitor vs a bare numpy
PSI pass over the same bins vs Evidently's DataDriftPreset; streaming a large log directory.

Bars (issue 12): mlhandoff >= 20x faster than Evidently with the same 3 (of 22) features flagged;
within 2x of the bare numpy pass; 100M rows streamed from Parquet with peak RSS under 1 GiB.

The reference (100k rows) is packed into a python-function bundle whose spec has one PSI rule per
feature (threshold 0.2, window 1d); the current day (1M rows, 3 features shifted) is one Parquet
file laid out as the server's prediction log. Every tool runs in its own child process and
reports its own peak RSS; each is timed best of --repeat:

* mlhandoff: ``mlhandoff.monitor.run.monitor(bundle, file, step="1d")`` — opens the bundle, reads
  the file batch by batch, counts it into the reference profile's bins, judges every rule;
* numpy: reads the same columns, bins each against the same edges (``np.searchsorted`` +
  ``np.bincount``, categories by dictionary code) and computes PSI — the floor for this work;
* Evidently 0.7 (bench/.venvs/evidently, ``bash bench/setup.sh evidently``): reads both files
  with pandas before its clock starts, then ``Report([DataDriftPreset()]).run(...)``.

    python bench/monitor.py [--reference-rows 100000] [--current-rows 1000000] [--repeat 3]
                            [--stream-copies 100] [--dir bench/out/monitor]

``--stream-copies N`` also monitors a directory of N links to the current file (N million rows)
in one child and reports its time and peak RSS. ``--smoke`` runs tiny sizes, numpy side only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
EVIDENTLY_PYTHON = HERE / ".venvs" / "evidently" / "bin" / "python"
FLOATS, INTS = 16, 3
CATEGORIES = {"c0": 10, "c1": 20, "c2": 5}
#: The features drifted in the current table: a mean shift, a wider spread, another mix.
SHIFTED = ("f0", "f1", "c0")
DAY = "2026-04-20"


def feature_names() -> list[str]:
    return [*(f"f{i}" for i in range(FLOATS)), *(f"i{i}" for i in range(INTS)), *CATEGORIES]


# --- data and bundle -------------------------------------------------------------------------


def make_table(rows: int, seed: int, shifted: bool) -> Any:
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for i in range(FLOATS):
        loc, scale = (0.6, 1.0) if shifted and i == 0 else (0.0, 1.0)
        if shifted and i == 1:
            scale = 1.6
        x = rng.normal(loc, scale, rows) if i % 2 == 0 else np.exp(rng.normal(loc, scale / 2, rows))
        columns[f"f{i}"] = x
    for i in range(INTS):
        columns[f"i{i}"] = rng.poisson(3 + i, rows).astype(np.int64)
    for name, k in CATEGORIES.items():
        weights = np.linspace(1, 3, k)
        if shifted and name == "c0":
            weights = weights[::-1] ** 2
        values = [f"{name}_{j}" for j in range(k)]
        codes = rng.choice(k, size=rows, p=weights / weights.sum()).astype(np.int32)
        columns[name] = pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(values))
    return pa.table(columns)


def as_log(table: Any) -> Any:
    """The table as the server's prediction log: input./output. columns, logged_at over a day."""
    import numpy as np
    import pyarrow as pa

    n = table.num_rows
    start = np.datetime64(f"{DAY}T00:00:00", "us").astype(np.int64)
    micros = start + np.sort(np.random.default_rng(1).integers(0, 86_400_000_000, n))
    score = 1 / (1 + np.exp(-table.column("f0").to_numpy()))
    columns = {
        "request_id": pa.array(np.char.add("r", np.arange(n).astype(str))),
        "logged_at": pa.array(micros, pa.timestamp("us", tz="UTC")),
    }
    columns |= {f"input.{name}": table.column(name) for name in table.column_names}
    columns |= {
        "output.score": pa.array(score),
        "output.label": pa.array((score >= 0.5).astype(np.int64)),
    }
    return pa.table(columns)


def spec_yaml() -> dict[str, Any]:
    fields: dict[str, Any] = {f"f{i}": {"type": "float"} for i in range(FLOATS)}
    fields |= {f"i{i}": {"type": "int"} for i in range(INTS)}
    fields |= {name: {"type": "category"} for name in CATEGORIES}
    drift = [
        {"field": n, "statistic": "psi", "threshold": 0.2, "window": "1d", "alert": "Drift"}
        for n in feature_names()
    ]
    return {
        "name": "bench-monitor",
        "version": "1.0.0",
        "model": {
            "path": "model_code",
            "flavor": "python_function",
            "entrypoint": "bench_model:predict",
            "task": "binary_classification",
            "version_tag": "v1",
        },
        "data_contract": {"fields": fields},
        "golden": {"rows": 20},
        "monitoring": {"drift": drift, "alerts": [{"name": "Drift", "runbook": "look"}]},
    }


MODEL = """
import numpy as np

def predict(frame):
    return 1 / (1 + np.exp(-frame["f0"].to_numpy()))
"""


def pack_bundle(out: Path, reference: Any) -> Path:
    import yaml

    import mlhandoff

    work = out / "bundle-src"
    shutil.rmtree(work, ignore_errors=True)
    (work / "model_code").mkdir(parents=True)
    (work / "model_code" / "bench_model.py").write_text(textwrap.dedent(MODEL))
    (work / "handoff.yaml").write_text(yaml.safe_dump(spec_yaml()))
    sample = _plain(reference)
    return mlhandoff.pack(
        spec=work / "handoff.yaml", sample=sample, out=out / "dist", force=True
    ).path


def _plain(table: Any) -> Any:
    """Categories as plain strings (how a sample file holds them)."""
    import pyarrow as pa

    for name in CATEGORIES:
        i = table.column_names.index(name)
        table = table.set_column(i, name, table.column(name).cast(pa.string()))
    return table


# --- the tools, each in its own process ------------------------------------------------------


def _peak_rss() -> int:
    """This process's peak RSS in bytes (VmHWM: ru_maxrss survives execve on Linux)."""
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


def child_mlhandoff(bundle: Path, data: Path, repeat: int) -> dict[str, Any]:
    from mlhandoff.monitor.run import monitor

    seconds, report = _best(lambda: monitor(bundle, data, step="1d"), repeat)
    window = report.windows[-1]
    values = {r.rule.split()[0]: r.value for r in window.rules}
    flagged = sorted(r.rule.split()[0] for r in window.rules if r.state == "firing")
    return {
        "seconds": seconds,
        "rows": report.rows,
        "flagged": flagged,
        "psi": values,
        "peak_rss": _peak_rss(),
    }


def child_numpy(bundle: Path, data: Path, repeat: int, in_memory: bool) -> dict[str, Any]:
    import numpy as np
    import pyarrow.parquet as pq

    profile = json.loads((bundle / "data" / "reference_profile.json").read_text())["inputs"]
    names = feature_names()
    eps = 1e-4

    def load() -> dict[str, Any]:
        table = pq.read_table(data, columns=[f"input.{n}" for n in names])
        return {n: table.column(f"input.{n}").combine_chunks() for n in names}

    loaded = load() if in_memory else None

    def run() -> dict[str, float]:
        columns = loaded if loaded is not None else load()
        out = {}
        for name in names:
            ref = profile[name]
            column = columns[name]
            if "edges" in ref:
                x = column.to_numpy(zero_copy_only=False)
                edges = np.asarray(ref["edges"])
                slot = np.searchsorted(edges, x, side="right") + 1
                slot[x == edges[-1]] = edges.size
                counts = np.bincount(slot, minlength=edges.size + 2)
            else:
                categories = ref["categories"]
                dictionary = column.dictionary.to_pylist()
                lookup = np.array(
                    [
                        categories.index(v) + 1 if v in categories else len(categories) + 1
                        for v in dictionary
                    ]
                )
                codes = column.indices.to_numpy(zero_copy_only=False)
                counts = np.bincount(lookup[codes], minlength=len(categories) + 2)
            p = np.asarray(ref["counts"][1:], dtype=float)
            q = counts[1:].astype(float)
            p = (p / p.sum() + eps) / (1 + eps * p.size)
            q = (q / q.sum() + eps) / (1 + eps * q.size)
            out[name] = float(np.sum((q - p) * np.log(q / p)))
        return out

    seconds, psi = _best(run, repeat)
    flagged = sorted(n for n, v in psi.items() if v > 0.2)
    return {"seconds": seconds, "flagged": flagged, "psi": psi, "peak_rss": _peak_rss()}


EVIDENTLY_CHILD = r"""
import json, sys, time
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
import evidently

reference, current, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
ref = pd.read_parquet(reference)
cur = pd.read_parquet(current)
cur = cur[[c for c in cur.columns if c.startswith("input.")]]
cur.columns = [c.removeprefix("input.") for c in cur.columns]
for name in ref.columns:
    if str(ref[name].dtype) == "category":
        ref[name] = ref[name].astype(str)
        cur[name] = cur[name].astype(str)
best, snapshot = float("inf"), None
for _ in range(repeat):
    start = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
    best = min(best, time.perf_counter() - start)
flagged, methods = [], {}
for metric in snapshot.dict()["metrics"]:
    config = metric.get("config", {})
    column = config.get("column")
    value = metric.get("value")
    if column is None or not isinstance(value, (int, float)):
        continue
    threshold = config.get("threshold")
    method = config.get("method")
    methods[column] = f"{method} {value:.4g} (threshold {threshold})"
    if threshold is not None and value >= threshold:
        flagged.append(column)
with open("/proc/self/status") as status:
    rss = next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmHWM:"))
print(json.dumps({"seconds": best, "flagged": sorted(flagged), "methods": methods,
                  "peak_rss": rss, "version": evidently.__version__}))
"""


def spawn(command: list[str]) -> dict[str, Any]:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{command[:3]} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def tool(name: str, bundle: Path, data: Path, repeat: int) -> list[str]:
    return [
        sys.executable,
        __file__,
        "--child",
        name,
        "--bundle",
        str(bundle),
        "--data",
        str(data),
        "--repeat",
        str(repeat),
    ]


# --- the run ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-rows", type=int, default=100_000)
    parser.add_argument("--current-rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stream-copies", type=int, default=0)
    parser.add_argument("--dir", type=Path, default=HERE / "out" / "monitor")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, no Evidently")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--bundle", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = {
            "mlhandoff": lambda: child_mlhandoff(args.bundle, args.data, args.repeat),
            "numpy": lambda: child_numpy(args.bundle, args.data, args.repeat, in_memory=False),
            "numpy-memory": lambda: child_numpy(
                args.bundle, args.data, args.repeat, in_memory=True
            ),
        }[args.child]()
        print(json.dumps(result))
        return
    if args.smoke:
        args.reference_rows, args.current_rows, args.repeat = 2_000, 20_000, 1
    run(args)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import pyarrow.parquet as pq

    out: Path = args.dir
    out.mkdir(parents=True, exist_ok=True)
    names = feature_names()
    print(
        f"reference {args.reference_rows:,} rows, current {args.current_rows:,} rows, "
        f"{len(names)} features ({', '.join(SHIFTED)} shifted)",
        flush=True,
    )
    reference = make_table(args.reference_rows, 0, shifted=False)
    current = make_table(args.current_rows, 1, shifted=True)
    pq.write_table(reference, out / "reference.parquet")
    pq.write_table(as_log(current), out / "current.parquet", row_group_size=65_536)
    bundle = pack_bundle(out, reference)
    data = out / "current.parquet"
    results = {
        "mlhandoff monitor (from Parquet)": spawn(tool("mlhandoff", bundle, data, args.repeat)),
        "numpy PSI pass (from Parquet)": spawn(tool("numpy", bundle, data, args.repeat)),
        "numpy PSI pass (columns in memory)": spawn(
            tool("numpy-memory", bundle, data, args.repeat)
        ),
    }
    if not args.smoke:
        if EVIDENTLY_PYTHON.exists():
            command = [
                str(EVIDENTLY_PYTHON),
                "-c",
                EVIDENTLY_CHILD,
                str(out / "reference.parquet"),
                str(data),
                str(max(1, min(args.repeat, 2))),
            ]
            results["Evidently DataDriftPreset"] = spawn(command)
        else:
            print(
                f"skipping Evidently: run `bash bench/setup.sh evidently` ({EVIDENTLY_PYTHON} missing)"
            )
    report(results, args)
    if args.stream_copies:
        stream(args, bundle, data, out)
    return results


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"\n{'tool':38} {'seconds':>8} {'peak RSS':>10}  flagged")
    for label, r in results.items():
        print(
            f"{label:38} {r['seconds']:8.3f} {r['peak_rss'] / 2**20:8.0f} MB  {', '.join(r['flagged'])}"
        )
    ours = results["mlhandoff monitor (from Parquet)"]
    numpy = results["numpy PSI pass (from Parquet)"]
    same = ours["psi"] == {k: v for k, v in numpy["psi"].items()} or all(
        abs(ours["psi"][k] - v) < 1e-9 for k, v in numpy["psi"].items()
    )
    print(f"\nPSI values identical to the numpy pass: {same}")
    ratio = ours["seconds"] / numpy["seconds"]
    print(f"bar: within 2x of the numpy pass -> {'PASS' if ratio <= 2 else 'FAIL'} ({ratio:.2f}x)")
    expected = sorted(SHIFTED)
    print(f"flagged by mlhandoff: {ours['flagged']} (expected {expected})")
    evidently = results.get("Evidently DataDriftPreset")
    if evidently:
        speedup = evidently["seconds"] / ours["seconds"]
        print(
            f"Evidently {evidently['version']}: {evidently['seconds']:.2f} s, flagged {evidently['flagged']}"
        )
        print(
            f"bar: >= 20x faster than Evidently, same features -> "
            f"{'PASS' if speedup >= 20 and evidently['flagged'] == ours['flagged'] else 'FAIL'} "
            f"({speedup:.1f}x)"
        )


def stream(args: argparse.Namespace, bundle: Path, data: Path, out: Path) -> None:
    logs = out / "stream"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir()
    for i in range(args.stream_copies):
        os.symlink(data.resolve(), logs / f"predictions-{i:05d}.parquet")
    rows = args.stream_copies * args.current_rows
    print(
        f"\nstreaming {rows:,} rows ({args.stream_copies} links to the current file) ...",
        flush=True,
    )
    result = spawn(tool("mlhandoff", bundle, logs, 1))
    print(
        f"mlhandoff monitor: {result['seconds']:.1f} s, {result['rows'] / result['seconds']:,.0f} rows/s, "
        f"peak RSS {result['peak_rss'] / 2**20:.0f} MB "
        f"(bar: < 1024 MB -> {'PASS' if result['peak_rss'] < 2**30 else 'FAIL'})"
    )


if __name__ == "__main__":
    main()

"""bench/monitor.py runs (tiny sizes, numpy side only): it finds the 3 shifted features and its
PSI values are the bare numpy pass's, so the script a release is measured with keeps working."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "monitor.py"


def test_bench_monitor_smoke(tmp_path: Path, capsys) -> None:
    spec = importlib.util.spec_from_file_location("bench_monitor", BENCH)
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench
    spec.loader.exec_module(bench)
    args = argparse.Namespace(
        reference_rows=2_000,
        current_rows=20_000,
        repeat=1,
        stream_copies=2,
        dir=tmp_path,
        smoke=True,
    )
    results = bench.run(args)
    ours = results["mlhandoff monitor (from Parquet)"]
    numpy = results["numpy PSI pass (from Parquet)"]
    assert ours["flagged"] == numpy["flagged"] == sorted(bench.SHIFTED)
    assert ours["rows"] == 20_000
    assert ours["psi"].keys() == numpy["psi"].keys() and len(ours["psi"]) == 22
    for name, value in numpy["psi"].items():
        assert abs(ours["psi"][name] - value) < 1e-9, name
    printed = capsys.readouterr().out
    assert "PSI values identical to the numpy pass: True" in printed
    assert "streaming 40,000 rows" in printed and "peak RSS" in printed

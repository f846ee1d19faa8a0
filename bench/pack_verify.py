"""Pack and verify a bundle holding a 1 GB model file, against `sha256sum` of the same file.

Bar (issue 2): verify within 1.5x of sha256sum. Each timing is the best of --repeat runs, taken
alternately in the same process so both see the same page cache and machine load.

    python bench/pack_verify.py [--size-mb 1024] [--repeat 3] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import yaml

import mlhandoff

_SCORER = '''\
"""A python_function model whose weights are a large file next to it (memory-mapped)."""
from pathlib import Path

import numpy as np

_WEIGHTS = np.memmap(Path(__file__).with_name("weights.bin"), dtype=np.uint8, mode="r")


def predict(frame):
    bias = float(_WEIGHTS[0]) / 255.0
    return frame["x"].to_numpy() * 0.5 + bias
'''


def _write_weights(path: Path, size_mb: int) -> None:
    block = np.random.default_rng(0).bytes(64 * 1024 * 1024)
    with path.open("wb") as handle:
        written = 0
        while written < size_mb * 1024 * 1024:
            chunk = block[: min(len(block), size_mb * 1024 * 1024 - written)]
            handle.write(chunk)
            written += len(chunk)


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--dir", type=Path, default=None, help="Where to write the temporary files."
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mlhandoff-bench-", dir=args.dir))
    try:
        code = work / "model_code"
        code.mkdir()
        (code / "scorer.py").write_text(_SCORER)
        _write_weights(code / "weights.bin", args.size_mb)
        spec = {
            "name": "bench-large-model",
            "version": "1",
            "model": {
                "path": "model_code",
                "flavor": "python_function",
                "entrypoint": "scorer:predict",
                "task": "regression",
                "version_tag": "v1",
            },
            "data_contract": {"fields": {"x": {"type": "float"}}},
            "golden": {"rows": 100},
        }
        (work / "handoff.yaml").write_text(yaml.safe_dump(spec))
        sample = pa.table({"x": np.random.default_rng(1).normal(size=1000)})

        start = time.perf_counter()
        bundle = mlhandoff.pack(spec=work / "handoff.yaml", sample=sample, out=work / "dist").path
        pack_s = time.perf_counter() - start
        weights = bundle / "model" / "model_code" / "weights.bin"

        def verify() -> None:
            report = mlhandoff.verify(bundle)
            assert report.results[0].status == "pass", report.results[0]

        def sha256sum() -> None:
            subprocess.run(["sha256sum", str(weights)], check=True, capture_output=True)

        sha_s, verify_s = [], []
        for _ in range(args.repeat):
            sha_s.append(_best(sha256sum, 1))
            verify_s.append(_best(verify, 1))
        sha, ver = min(sha_s), min(verify_s)
        size_gb = weights.stat().st_size / 1e9
        print(f"model file: {size_gb:.2f} GB; best of {args.repeat}")
        print(f"{'step':<28}{'seconds':>10}{'GB/s':>8}{'vs sha256sum':>14}")
        print(f"{'sha256sum (reference)':<28}{sha:>10.2f}{size_gb / sha:>8.2f}{1.0:>13.2f}x")
        print(f"{'mlhandoff verify':<28}{ver:>10.2f}{size_gb / ver:>8.2f}{ver / sha:>13.2f}x")
        print(
            f"{'mlhandoff pack (once)':<28}{pack_s:>10.2f}{size_gb / pack_s:>8.2f}{pack_s / sha:>13.2f}x"
        )
        verdict = "PASS" if ver / sha <= 1.5 else "FAIL"
        print(f"bar: verify <= 1.5x sha256sum -> {verdict} ({ver / sha:.2f}x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Rollout judge: false graduations under repeated peeking, and the judge's speed on a day of
logs.

    python bench/rollout.py                      # 2,000 rollouts x 24 looks; a day at 200 req/s
    python bench/rollout.py --rollouts 200 --hours 1   # a quick look

Prints, per scenario, how often the judge graduated / rolled back / kept going, the
false-graduation rate with its Wilson 95 % interval, then the time ``rollout judge`` takes on a
prediction log of ``--hours`` at ``--rps`` requests per second (5 % canary, labels joined).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

import pyarrow.parquet as pq  # noqa: E402

from mlhandoff.spec import load_spec  # noqa: E402
from rollout_sim import Truth, simulate, simulation_spec, wilson  # noqa: E402
from rollout_traffic import Arm, traffic  # noqa: E402

EXAMPLE = ROOT / "examples" / "risky_transactions"


def peeking(rollouts: int, looks: int, requests: int) -> None:
    spec = simulation_spec(load_spec(EXAMPLE / "handoff.yaml"))
    alpha = spec.rollout.alpha
    print(f"## Repeated looks: {rollouts} rollouts x {looks} looks, {requests:,} requests per arm")
    print(f"alpha {alpha:g}; rules: " + "; ".join(r.describe() for r in spec.rollout.graduate_when))
    print("| candidate | graduate | roll back | continue | false graduation [Wilson 95 %] |")
    print("|---|---|---|---|---|")
    scenarios = [
        ("equal (no lift): must not graduate", Truth(), True),
        (
            "lift, but 5xx +0.002 (at its tolerance): must not graduate",
            Truth(recall=0.7, error_rate=0.003),
            True,
        ),
        ("lift of 0.1, all else equal: should graduate", Truth(recall=0.7), False),
        ("recall 0.45: should roll back", Truth(recall=0.45), False),
    ]
    for name, truth, is_null in scenarios:
        start = time.perf_counter()
        counts = simulate(
            spec, truth, Truth(), rollouts=rollouts, requests_per_arm=requests, looks=looks, seed=11
        )
        took = time.perf_counter() - start
        rate = counts["graduate"] / rollouts
        low, high = wilson(counts["graduate"], rollouts)
        shown = f"{rate:.4f} [{low:.4f}, {high:.4f}]" if is_null else "—"
        print(
            f"| {name} | {counts['graduate']} | {counts['rollback']} | {counts['continue']} | "
            f"{shown} | ({took:.1f} s)"
        )


def judge_speed(rps: float, hours: float, bundle: Path | None) -> None:
    from mlhandoff.bundle import open_bundle
    from mlhandoff.rollout import judge_rollout

    if bundle is None:
        print(
            "\n(judge speed skipped: pass --bundle dist/risky-transactions-1.0.0, packed by make demo)"
        )
        return
    work = Path(tempfile.mkdtemp(prefix="mlhandoff-rollout-bench-"))
    try:
        requests = int(rps * hours * 3600)
        start = time.perf_counter()
        labels = traffic(
            work / "logs",
            requests=requests,
            candidate=Arm(),
            baseline=Arm(),
            share=0.05,
            hours=hours,
            files=max(1, int(hours)),
        )
        pq.write_table(labels, work / "labels.parquet")
        print(
            f"\n## Judge speed: {requests:,} requests ({hours:g} h at {rps:g} req/s), written in {time.perf_counter() - start:.1f} s"
        )
        opened = open_bundle(bundle)
        for with_labels in (False, True):
            start = time.perf_counter()
            result = judge_rollout(
                opened,
                work / "logs",
                labels=work / "labels.parquet" if with_labels else None,
                join_key="transaction_id" if with_labels else None,
            )
            took = time.perf_counter() - start
            print(
                f"rollout judge{' --labels' if with_labels else ''}: {took:.2f} s "
                f"({requests / took:,.0f} requests/s), verdict {result.verdict}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=2000)
    parser.add_argument("--looks", type=int, default=24)
    parser.add_argument("--requests", type=int, default=100_000, help="per arm, at the last look")
    parser.add_argument("--rps", type=float, default=200.0)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--bundle", type=Path, default=None, help="the example bundle (make demo)")
    args = parser.parse_args()
    peeking(args.rollouts, args.looks, args.requests)
    judge_speed(args.rps, args.hours, args.bundle)


if __name__ == "__main__":
    main()

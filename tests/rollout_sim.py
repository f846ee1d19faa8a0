"""Simulated canaries judged at repeated looks: what the false-graduation rate is when the
judge reads the log every hour (shared by tests/test_rollout_sim.py and bench/rollout.py)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from mlhandoff.rollout.judge import judge_observations
from mlhandoff.rollout.observations import Observations
from mlhandoff.spec.models import HandoffSpec


@dataclass(frozen=True)
class Truth:
    """Per-request rates of one arm: 5xx, step-up (score >= threshold), frauds caught."""

    error_rate: float = 0.001
    positive_rate: float = 0.012
    recall: float = 0.6


PREVALENCE = 0.015


def run_rollout(
    spec: HandoffSpec,
    candidate: Truth,
    baseline: Truth,
    *,
    requests_per_arm: int,
    looks: int,
    rng: np.random.Generator,
) -> str:
    """The first decisive verdict over ``looks`` evenly spaced looks, or ``continue``."""
    n = requests_per_arm
    frauds = rng.binomial(n, PREVALENCE, size=2)
    draws = {
        "error_rate": [rng.random(n) < t.error_rate for t in (candidate, baseline)],
        "positive_rate": [rng.random(n) < t.positive_rate for t in (candidate, baseline)],
        "recall": [
            rng.random(f) < t.recall for f, t in zip(frauds, (candidate, baseline), strict=True)
        ],
    }
    for look in range(1, looks + 1):
        share = look / looks

        def observations(name: str, share: float = share) -> Observations:
            c, b = draws[name]
            c, b = c[: math.ceil(len(c) * share)], b[: math.ceil(len(b) * share)]
            values = np.concatenate([c, b]).astype(np.float64)
            arm = np.concatenate([np.ones(len(c), bool), np.zeros(len(b), bool)])
            return Observations(values, np.zeros(len(values)), arm)

        judgement = judge_observations(
            spec,
            observations,
            candidate="new",
            baseline="old",
            requests=(int(n * share), int(n * share)),
            elapsed_s=0.0,
        )
        if judgement.verdict != "continue":
            return judgement.verdict
    return "continue"


def simulate(
    spec: HandoffSpec,
    candidate: Truth,
    baseline: Truth,
    *,
    rollouts: int,
    requests_per_arm: int,
    looks: int,
    seed: int = 0,
) -> Counter[str]:
    rng = np.random.default_rng(seed)
    return Counter(
        run_rollout(
            spec, candidate, baseline, requests_per_arm=requests_per_arm, looks=looks, rng=rng
        )
        for _ in range(rollouts)
    )


def wilson(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of a proportion."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def simulation_spec(base: HandoffSpec) -> HandoffSpec:
    """The example's rate rules with no step gating and no triggers: graduation rests on the
    statistics alone, the worst case for false graduations."""
    spec = base.model_copy(deep=True)
    rules = [r for r in spec.rollout.graduate_when if r.metric != "latency_p95"]
    spec.rollout = spec.rollout.model_copy(update={"steps": [], "graduate_when": rules})
    spec.rollback = spec.rollback.model_copy(update={"triggers": []})
    return spec

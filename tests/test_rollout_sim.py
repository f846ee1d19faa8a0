"""The judge under repeated peeking: hundreds of simulated rollouts, looked at ten times each.

A candidate that does not meet its rules (no lift; a guardrail exactly at its tolerance) must
graduate at most alpha of the time however often the judge looks; a better one graduates.
Measured rates with their Wilson intervals are in bench/rollout.py's output.
"""

from __future__ import annotations

import pytest

from mlhandoff.spec import load_spec
from rollout_sim import Truth, simulate, simulation_spec, wilson
from test_rollout_spec import EXAMPLE_SPEC

ROLLOUTS = 300
SPEC = simulation_spec(load_spec(EXAMPLE_SPEC))
ALPHA = SPEC.rollout.alpha


@pytest.mark.parametrize(
    "candidate",
    [
        pytest.param(Truth(), id="equal (no lift)"),
        pytest.param(Truth(recall=0.7, error_rate=0.003), id="lift, 5xx at the tolerance"),
    ],
)
def test_false_graduations_stay_under_alpha_with_peeking(candidate: Truth) -> None:
    verdicts = simulate(
        SPEC, candidate, Truth(), rollouts=ROLLOUTS, requests_per_arm=60_000, looks=10, seed=1
    )
    graduated = verdicts["graduate"]
    low, _ = wilson(graduated, ROLLOUTS)
    assert graduated / ROLLOUTS <= ALPHA, verdicts
    assert low <= ALPHA / 2  # far from the bound, not merely under it


def test_a_better_candidate_graduates_and_a_worse_one_rolls_back() -> None:
    better = simulate(
        SPEC, Truth(recall=0.7), Truth(), rollouts=40, requests_per_arm=150_000, looks=10, seed=2
    )
    assert better["graduate"] >= 36, better
    worse = simulate(
        SPEC, Truth(recall=0.45), Truth(), rollouts=40, requests_per_arm=60_000, looks=10, seed=3
    )
    assert worse["rollback"] >= 36 and worse["graduate"] == 0, worse


def test_wilson_interval() -> None:
    low, high = wilson(5, 100)
    assert low == pytest.approx(0.02154, abs=1e-4) and high == pytest.approx(0.11175, abs=1e-4)

"""``mlhandoff rollout plan``: sample sizes (checked against statsmodels), step durations,
warnings for steps too short for their samples."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import proportion_effectsize
from typer.testing import CliRunner

from mlhandoff.cli import app
from mlhandoff.errors import InputError
from mlhandoff.rollout import plan_rollout, stats
from mlhandoff.spec import load_spec
from mlhandoff.spec.models import Rollout
from test_rollout_spec import EXAMPLE_SPEC

runner = CliRunner()


@settings(max_examples=40, deadline=None)
@given(
    p=st.floats(0.001, 0.9),
    margin=st.floats(0.001, 0.09),
    alpha=st.sampled_from([0.01, 0.05, 0.1]),
    power=st.sampled_from([0.8, 0.9]),
    two_sided=st.booleans(),
)
def test_two_proportion_sizes_match_statsmodels(
    p: float, margin: float, alpha: float, power: float, two_sided: bool
) -> None:
    ours = stats.proportions_n(p, p + margin, alpha, power, two_sided)
    theirs = NormalIndPower().solve_power(
        proportion_effectsize(p + margin, p),
        alpha=alpha,
        power=power,
        ratio=1.0,
        alternative="two-sided" if two_sided else "larger",
    )
    assert ours == math.ceil(theirs - 1e-6)


@settings(max_examples=25, deadline=None)
@given(
    effect=st.floats(0.05, 2.0),
    sd=st.floats(0.5, 5.0),
    alpha=st.sampled_from([0.01, 0.05]),
    two_sided=st.booleans(),
)
def test_continuous_sizes_match_statsmodels(
    effect: float, sd: float, alpha: float, two_sided: bool
) -> None:
    ours = stats.means_n(effect, sd, alpha, 0.8, two_sided)
    theirs = TTestIndPower().solve_power(
        effect / sd,
        alpha=alpha,
        power=0.8,
        ratio=1.0,
        alternative="two-sided" if two_sided else "larger",
    )
    assert ours == math.ceil(theirs - 1e-6)


def test_example_plan_sizes_each_rule_and_step(example_bundle: Path) -> None:
    result = runner.invoke(
        app, ["rollout", "plan", str(example_bundle), "--traffic-rps", "200", "--json"]
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    rules = {m["metric"]: m for m in plan["metrics"]}
    assert set(rules) == {"error_rate", "latency_p95", "positive_rate", "recall"}
    band = rules["positive_rate"]  # ±20 % of 1.2 %: a two-sided band of 0.0024
    assert band["margin"] == pytest.approx(0.0024) and band["test"] == "two proportions"
    expected = NormalIndPower().solve_power(
        proportion_effectsize(0.0144, 0.012), alpha=0.05, power=0.8, alternative="two-sided"
    )
    assert band["n_fixed"] == math.ceil(expected)
    recall = rules["recall"]  # a lift of 0.05 over 0.6, one-sided
    lift = NormalIndPower().solve_power(
        proportion_effectsize(0.65, 0.6), alpha=0.05, power=0.8, alternative="larger"
    )
    assert recall["n_fixed"] == math.ceil(lift)
    assert 0 < recall["population"] < 0.1  # frauds only: the eval sample's prevalence
    assert recall["requests_needed"] == pytest.approx(recall["n_sequential"] / recall["population"])
    for m in plan["metrics"]:  # looking at every hour costs samples over a single look
        assert m["n_sequential"] > m["n_fixed"]
    first, second, last = plan["steps"]
    assert first["candidate_requests"] == 200 * 0.05 * 86400
    assert first["baseline_requests"] == 200 * 0.95 * 86400
    assert 0 < second["seconds_needed"] < first["seconds_needed"] < 86400
    assert last["seconds_needed"] is None  # 100 %: nothing left to compare with
    assert plan["warnings"] == []


def test_a_step_too_short_for_its_samples_is_warned() -> None:
    spec = load_spec(EXAMPLE_SPEC)
    spec.rollout = Rollout.model_validate(
        {
            "steps": [
                {"traffic_percent": 1, "duration": "10m", "min_samples": 50000},
                {"traffic_percent": 50, "duration": "1d"},
            ],
            "graduate_when": [
                {"metric": "positive_rate", "relative_tolerance": 0.1, "expected": 0.012},
                {"metric": "mean(output.score)", "tolerance": 0.01},
            ],
        }
    )
    plan = plan_rollout(spec, 200)
    (short, long) = plan.steps
    assert short.seconds_needed is not None and short.seconds_needed > 600
    assert any("is too short for positive_rate" in w for w in short.warnings)
    assert any("min_samples 50,000 per arm is more than" in w for w in short.warnings)
    assert long.warnings == []
    assert "mean(output.score): cannot size: set sd (the spread of the values) in the rule" in (
        plan.warnings
    )


def test_a_spec_without_rules_cannot_be_planned() -> None:
    spec = load_spec(EXAMPLE_SPEC)
    spec.rollout = Rollout()
    with pytest.raises(InputError, match=r"no rollout\.graduate_when rules"):
        plan_rollout(spec, 200)


@pytest.mark.parametrize("rps", ["0", "-5", "nan"])
def test_traffic_must_be_positive(example_bundle: Path, rps: str) -> None:
    result = runner.invoke(
        app, ["rollout", "plan", str(example_bundle), "--traffic-rps", rps, "--json"]
    )
    assert result.exit_code == 2
    assert "traffic-rps must be a positive number" in json.loads(result.output)["error"]["message"]

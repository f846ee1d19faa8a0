"""Rollout: size the canary steps, judge candidate against baseline from the prediction log.

A stage above the bundle and evaluation: it reads bundles, specs and prediction logs, never the
server, pack or verify.
"""

from mlhandoff.rollout.judge import EXIT_CODES, Judgement, judge_rollout
from mlhandoff.rollout.plan import RolloutPlan, plan_bundle, plan_rollout

__all__ = ["EXIT_CODES", "Judgement", "RolloutPlan", "judge_rollout", "plan_bundle", "plan_rollout"]

"""Verdicts: pass when the whole interval meets the bound, fail when none of it does.

An interval that straddles the bound is *inconclusive*: the data cannot tell, and saying "pass"
would be a coin flip. A value that is undefined (NaN) is inconclusive too, never a pass, and so
is one undefined in more than 5% of resamples (e.g. a slice with a handful of positives).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from mlhandoff.evaluate.bootstrap import Interval

Verdict = Literal["pass", "fail", "inconclusive"]

_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
_SIGNS = {">=": ">=", ">": ">", "<=": "<=", "<": "<"}


@dataclass(frozen=True)
class Bound:
    op: str
    threshold: float

    def __str__(self) -> str:
        return f"{_SIGNS[self.op]} {self.threshold:g}"

    def holds(self, value: float) -> bool:
        return bool(_OPS[self.op](value, self.threshold))

    def judge(self, est: Interval) -> Verdict:
        if math.isnan(est.value) or est.thin:
            return "inconclusive"
        if est.low is None or est.high is None:
            return "pass" if self.holds(est.value) else "fail"
        # The end of the interval nearest to failing decides a pass; the other end a fail.
        worst, best = (est.low, est.high) if self.op[0] == ">" else (est.high, est.low)
        if self.holds(worst):
            return "pass"
        if not self.holds(best):
            return "fail"
        return "inconclusive"


def combine(verdicts: Iterable[Verdict]) -> Verdict:
    """Fail if any part fails; otherwise inconclusive if any part is; otherwise pass."""
    seen = set(verdicts)
    if "fail" in seen:
        return "fail"
    return "inconclusive" if "inconclusive" in seen else "pass"

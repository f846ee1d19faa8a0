"""How closely a compiled predictor answers like the original: the proof pack records.

Both predictors score the same rows; every numeric output (``score``, ``proba``, ``confidence``,
``prediction``) is compared within the golden set's tolerance (``numpy.isclose`` with the spec's
``golden.rtol`` / ``golden.atol``), and a ``label`` that differs is a flip (for a binary model,
a score on the other side of the decision threshold). A compiled form is used only when no value
is out of tolerance and no label flips.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from mlhandoff.flavors.base import Predictor


@dataclass(frozen=True)
class Agreement:
    """One set of rows scored by both: how far apart the answers were."""

    name: str
    rows: int
    max_abs_diff: float
    #: Values (cells) outside the tolerance.
    out_of_tolerance: int
    label_flips: int

    @property
    def ok(self) -> bool:
        return self.out_of_tolerance == 0 and self.label_flips == 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare(
    original: Predictor,
    compiled: Predictor,
    table: pa.Table,
    *,
    rtol: float,
    atol: float,
    name: str,
) -> Agreement:
    """Score ``table`` (contract-typed, normalised) with both and compare every output."""
    want, got = original.predict(table), compiled.predict(table)
    worst, outside, flips = 0.0, 0, 0
    for key, expected in want.items():
        actual = got.get(key)
        if actual is None or np.shape(actual) != np.shape(expected):
            return Agreement(name, table.num_rows, float("inf"), int(np.size(expected)), 0)
        if key == "label":
            flips = int(np.count_nonzero(np.asarray(actual) != np.asarray(expected)))
            continue
        a, e = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
        close = np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=True)
        outside += int(np.count_nonzero(~close))
        both_nan = np.isnan(a) & np.isnan(e)
        diff = np.where(both_nan, 0.0, np.abs(a - e))
        if diff.size:
            worst = max(worst, float(np.nan_to_num(diff, nan=np.inf).max()))
    return Agreement(name, table.num_rows, worst, outside, flips)

"""Paired percentile bootstrap: one set of resample indices for every statistic and model.

Resample ``i`` is row ``i`` of the index blocks drawn, in order, from
``numpy.random.default_rng(seed).integers(0, units, size=(block, units))`` where ``block`` depends
only on ``units`` and ``resamples`` (see :func:`block_size`): the same seed gives the same resamples on any machine,
for the model and the baseline alike (paired), so the interval of their difference is honest.
The units are rows, or whole queries for ranking. Intervals are percentile intervals
(``numpy.percentile``, linear interpolation) over the resamples where the statistic is defined.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from mlhandoff.evaluate.metrics import Weights

#: Target size of one block of weights, in elements: big enough to amortise Python overhead,
#: small enough to stay in cache-friendly territory.
BLOCK_ELEMENTS = 1 << 20

Job = Callable[[Weights], np.ndarray]


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap interval (None without resamples)."""

    value: float
    low: float | None = None
    high: float | None = None
    undefined: int = 0  # resamples in which the statistic was undefined (NaN)
    resamples: int = 0

    @property
    def thin(self) -> bool:
        """Undefined in more than 5% of resamples: the interval describes a biased subset."""
        return self.resamples > 0 and self.undefined > 0.05 * self.resamples


def block_size(units: int, resamples: int) -> int:
    return max(1, min(resamples, BLOCK_ELEMENTS // max(units, 1)))


def index_blocks(units: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Resample indices in blocks of shape (b, units); concatenated, they are (resamples, units)."""
    rng = np.random.default_rng(seed)
    block = block_size(units, resamples)
    done = 0
    while done < resamples:
        b = min(block, resamples - done)
        yield rng.integers(0, units, size=(b, units))
        done += b


def counts(indices: np.ndarray) -> np.ndarray:
    """How often each unit was drawn, per resample: (b, units) int64."""
    b, units = indices.shape
    flat = indices + (np.arange(b, dtype=indices.dtype) * units)[:, None] if b > 1 else indices
    return np.bincount(flat.ravel(), minlength=b * units).reshape(b, units)


def run(jobs: Sequence[Job], units: int, resamples: int, seed: int) -> list[np.ndarray]:
    """Every job's values on every resample: one array of shape (resamples, ...) per job."""
    parts: list[list[np.ndarray]] = [[] for _ in jobs]
    for block in index_blocks(units, resamples, seed):
        w = Weights(counts(block))
        for part, job in zip(parts, jobs, strict=True):
            part.append(job(w))
    return [np.concatenate(p) if p else np.empty(0) for p in parts]


def point(jobs: Sequence[Job], units: int) -> list[np.ndarray]:
    """Every job on the data as it is (all weights 1)."""
    w = Weights(np.ones((1, units), dtype=np.int64))
    return [job(w)[0] for job in jobs]


def interval(value: float, samples: np.ndarray | None, confidence: float) -> Interval:
    if samples is None or not len(samples):
        return Interval(float(value))
    defined = samples[~np.isnan(samples)]
    undefined = len(samples) - len(defined)
    if not len(defined) or np.isnan(value):
        return Interval(float(value), None, None, undefined, len(samples))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(defined, [tail, 100 - tail])
    return Interval(float(value), float(low), float(high), undefined, len(samples))

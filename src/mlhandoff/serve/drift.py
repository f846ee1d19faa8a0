"""Live drift: the spec's drift and output rules judged on the rows the server answers.

Each distinct rule ``window`` W keeps a ring of ``SUB_WINDOWS`` buckets, W / SUB_WINDOWS long,
of counts in the reference profile's slots (``monitor/profile.py``) for the fields its rules
watch: memory is fixed (slots × buckets per field and window) whatever the traffic. A request
adds its validated inputs and its outputs to a queue (one append); queued rows are counted
together, one vectorised pass per field, every ``QUEUE_REQUESTS`` requests (or ``QUEUE_ROWS``
rows) and before every scrape, each row into the bucket of the time it was answered.

The gauges are computed at scrape time (a prometheus_client custom collector), so a series is
exported continuously and never goes stale (a stale series resets Prometheus's ``for:`` clock):

* ``mlhandoff_drift{field, statistic}``: each drift and output rule's statistic over the last
  W — the buckets of the last W, so between W − W/SUB_WINDOWS and W of traffic — judged by the
  same compiled rule as ``mlhandoff monitor`` (``monitor/rules.py``), hence the same number on
  the same rows. NaN while the window cannot be judged (no rows, fewer than ``min_rows``):
  ``NaN > x`` is false, so the alert resets as the batch monitor's "not judged" does.
* ``mlhandoff_null_rate{field}`` and ``mlhandoff_unseen_rate{field}``: per input field with a
  drift rule, over its shortest rule window, the share of nulls and the share of values outside
  the reference (categories it has not seen, numbers beyond its range; ``stats.unseen_rate``).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from mlhandoff.bundle.bundle import Bundle
from mlhandoff.contract.types import arrow_type
from mlhandoff.errors import BundleError
from mlhandoff.monitor.profile import FieldProfile, Profile, ProfileCounter, Role
from mlhandoff.monitor.reference import load_reference
from mlhandoff.monitor.rules import (
    CompiledRule,
    Context,
    WindowCounts,
    compile_rules,
    positive_class,
)
from mlhandoff.monitor.stats import unseen_rate
from mlhandoff.spec.models import HandoffSpec

#: Buckets per window: the window slides in steps of W / SUB_WINDOWS.
SUB_WINDOWS = 60
#: Queued requests (or rows) are counted together at this many, and before every scrape.
QUEUE_REQUESTS = 256
QUEUE_ROWS = 65_536

Key = tuple[Role, str]
#: A queued request: when it was answered, its validated inputs, its outputs.
Entry = tuple[float, pa.Table, pa.Table]

log = logging.getLogger("mlhandoff.serve")


def live_drift(bundle: Bundle, registry: CollectorRegistry) -> LiveDrift | None:
    """The bundle's live drift, registered on ``registry``; None when there is nothing to watch
    (no drift or output rules) or nothing to compare with (a bundle packed without a reference
    profile: re-pack it)."""
    spec = bundle.spec
    if not (spec.monitoring.drift or spec.monitoring.outputs):
        return None
    try:
        reference = load_reference(bundle)
    except BundleError as exc:
        log.warning("live drift is off: %s", exc)
        return None
    drift = LiveDrift(spec, reference, positive_class(bundle.record.model.classes))
    registry.register(drift)
    return drift


class LiveDrift(Collector):
    """Counts of the served rows per reference slot over each rule's sliding window, exported as
    gauges at scrape time (register it on the server's registry)."""

    def __init__(
        self,
        spec: HandoffSpec,
        reference: Profile,
        positive: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        ctx = Context(spec, reference, positive)
        self._rules = [r for r in compile_rules(ctx) if r.field is not None and r.statistic]
        watched: dict[int, set[Key]] = {}
        for rule in self._rules:
            assert rule.field is not None
            if reference.field(*rule.field) is not None:
                watched.setdefault(rule.window_s, set()).add(rule.field)
        self._rings = {w: _Ring(w, _subset(reference, keys)) for w, keys in watched.items()}
        #: Input fields with a drift rule: their null and unseen rates, over the shortest window.
        self._rates: dict[str, int] = {}
        for rule in sorted(self._rules, key=lambda r: r.window_s):
            role, name = rule.field or ("output", "")
            if role == "input" and name in reference.inputs:
                self._rates.setdefault(name, rule.window_s)
        self._reference = reference
        contract = spec.data_contract.fields
        self._inputs = sorted(
            {n for ring in self._rings.values() for r, n in ring.keys if r == "input"}
        )
        self._outputs = sorted(
            {n for ring in self._rings.values() for r, n in ring.keys if r == "output"}
        )
        self._input_types = {n: arrow_type(contract[n]) for n in self._inputs}
        self._queue: list[Entry] = []
        self._queued_rows = 0
        self._lock = threading.Lock()

    def observe(self, inputs: pa.Table, outputs: pa.Table) -> None:
        """Queue one answered request's validated inputs and outputs (the per-request part)."""
        if inputs.num_rows == 0:
            return
        with self._lock:
            self._queue.append((self._clock(), inputs, outputs))
            self._queued_rows += inputs.num_rows
            if len(self._queue) >= QUEUE_REQUESTS or self._queued_rows >= QUEUE_ROWS:
                self._count()

    def _count(self) -> None:
        """Count the queue into the rings (the lock held): each run of requests whose tables
        have the same columns and types as one table (usually the whole queue is one run)."""
        queue, self._queue, self._queued_rows = self._queue, [], 0
        start = 0
        for end in range(1, len(queue) + 1):
            if end == len(queue) or not _same_schemas(queue[start], queue[end]):
                self._count_run(queue[start:end])
                start = end

    def _count_run(self, run: list[Entry]) -> None:
        rows = [i.num_rows for _, i, _ in run]
        times = np.repeat(np.array([at for at, _, _ in run], np.float64), rows)
        inputs = self._columns(pa.concat_tables([i for _, i, _ in run]), self._inputs)
        outputs = pa.concat_tables([o for _, _, o in run])
        outputs = outputs.select([n for n in self._outputs if n in outputs.column_names])
        for ring in self._rings.values():
            ring.add(times, inputs, outputs.combine_chunks())

    def _columns(self, table: pa.Table, names: list[str]) -> pa.Table:
        """``table``'s columns ``names`` in one chunk each; a field the requests left out
        (nullable) is null in them."""
        present = table.column_names
        columns = [
            table.column(n) if n in present else pa.nulls(table.num_rows, self._input_types[n])
            for n in names
        ]
        return pa.Table.from_arrays(columns, names=names).combine_chunks()

    # --- the collector (prometheus_client calls it on every scrape) ----------------------------

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield from self._families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        drift, nulls, unseen = self._families()
        now = self._clock()
        with self._lock:
            self._count()
            windows = {w: ring.window(now) for w, ring in self._rings.items()}
        exported: set[tuple[str, str]] = set()
        for rule in self._rules:  # one series per field and statistic (the loader holds two
            assert rule.field is not None  # rules on one pair to one window)
            labels = (rule.field[1], rule.statistic)
            if labels in exported:
                continue
            exported.add(labels)
            window = windows.get(rule.window_s)
            value = math.nan if window is None else _value(rule, window)
            drift.add_metric(list(labels), value)
        for name, window_s in self._rates.items():
            ref = self._reference.inputs[name]
            cur = windows[window_s].inputs[name]
            nulls.add_metric([name], cur.nulls / cur.rows if cur.rows else math.nan)
            rate = unseen_rate(ref, cur) if ref.kind != "other" else None
            unseen.add_metric([name], math.nan if rate is None else rate)
        yield from (drift, nulls, unseen)

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "mlhandoff_drift",
                "Each drift and output rule's statistic over its window against the reference "
                "profile (NaN while the window cannot be judged).",
                labels=["field", "statistic"],
            ),
            GaugeMetricFamily(
                "mlhandoff_null_rate",
                "Share of null values of an input field over its shortest drift-rule window.",
                labels=["field"],
            ),
            GaugeMetricFamily(
                "mlhandoff_unseen_rate",
                "Share of an input field's values outside the reference (unseen categories, "
                "numbers beyond its range) over its shortest drift-rule window.",
                labels=["field"],
            ),
        )


def _value(rule: CompiledRule, window: Profile) -> float:
    value, breach, _ = rule.judge(WindowCounts(window))
    return math.nan if value is None or breach is None else value


def _same_schemas(a: Entry, b: Entry) -> bool:
    return a[1].schema.equals(b[1].schema) and a[2].schema.equals(b[2].schema)


def _subset(reference: Profile, keys: set[Key]) -> Profile:
    """The reference's fields in ``keys``, nothing counted: one ring's slots."""
    return Profile(
        {n: p for n, p in reference.inputs.items() if ("input", n) in keys},
        {n: p for n, p in reference.outputs.items() if ("output", n) in keys},
    ).empty()


@dataclass
class _Slots:
    """One field's buckets: counts (and for numbers sums, finite counts, sums of squares)."""

    shape: FieldProfile
    counts: np.ndarray
    sums: np.ndarray | None
    finite: np.ndarray
    sumsq: np.ndarray

    @classmethod
    def of(cls, shape: FieldProfile, buckets: int) -> _Slots:
        slots = len(shape.counts)
        return cls(
            shape,
            np.zeros((buckets, slots), np.int64),
            None if shape.sums is None else np.zeros((buckets, slots), np.float64),
            np.zeros(buckets, np.int64),
            np.zeros(buckets, np.float64),
        )

    def reset(self, i: int) -> None:
        self.counts[i] = 0
        if self.sums is not None:
            self.sums[i] = 0.0
        self.finite[i] = 0
        self.sumsq[i] = 0.0

    def add(self, i: int, counted: FieldProfile) -> None:
        self.counts[i] += counted.counts
        if self.sums is not None and counted.sums is not None:
            self.sums[i] += counted.sums
        self.finite[i] += counted.finite
        self.sumsq[i] += counted.sumsq

    def total(self, keep: np.ndarray) -> FieldProfile:
        return replace(
            self.shape,
            counts=self.counts[keep].sum(axis=0),
            sums=None if self.sums is None else self.sums[keep].sum(axis=0),
            finite=int(self.finite[keep].sum()),
            sumsq=float(self.sumsq[keep].sum()),
        )


class _Ring:
    """One window's buckets for the fields of the rules with that window."""

    def __init__(self, window_s: int, shape: Profile, buckets: int = SUB_WINDOWS) -> None:
        self.width = window_s / buckets
        self.buckets = buckets
        self.counter = ProfileCounter(shape)
        self.keys: set[Key] = {("input", n) for n in shape.inputs} | {
            ("output", n) for n in shape.outputs
        }
        self.ids = np.full(buckets, -1, np.int64)  # the bucket number each place holds
        self.rows = np.zeros(buckets, np.int64)
        self.slots: dict[Key, _Slots] = {
            ("input", n): _Slots.of(p, buckets) for n, p in shape.inputs.items()
        } | {("output", n): _Slots.of(p, buckets) for n, p in shape.outputs.items()}

    def add(self, times: np.ndarray, inputs: pa.Table, outputs: pa.Table) -> None:
        ids = (times // self.width).astype(np.int64)
        first = int(ids.min())
        groups = (ids - first).astype(np.intp)
        counted = self.counter.count(inputs, outputs, groups=groups, n_groups=int(groups.max()) + 1)
        for g, profile in enumerate(counted):
            bucket = first + g
            place = bucket % self.buckets
            if profile.rows == 0 or self.ids[place] > bucket:  # nothing, or already slid past
                continue
            if self.ids[place] != bucket:
                self.ids[place] = bucket
                self.rows[place] = 0
                for slots in self.slots.values():
                    slots.reset(place)
            self.rows[place] += profile.rows
            for (role, name), slots in self.slots.items():
                field = profile.field(role, name)
                assert field is not None
                slots.add(place, field)

    def window(self, now: float) -> Profile:
        """The counts of the buckets of the last window (merged exactly: counts add)."""
        current = int(now // self.width)
        keep = (self.ids > current - self.buckets) & (self.ids <= current)
        totals = {key: slots.total(keep) for key, slots in self.slots.items()}
        return Profile(
            {n: p for (r, n), p in totals.items() if r == "input"},
            {n: p for (r, n), p in totals.items() if r == "output"},
            rows=int(self.rows[keep].sum()),
        )

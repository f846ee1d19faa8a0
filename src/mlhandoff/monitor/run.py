"""``mlhandoff monitor``: the spec's rules on a prediction log (or any table), window by window.

Rows are counted into the reference profile's slots per evaluation step (``step``, e.g. 1h,
aligned to UTC), one record batch at a time: memory holds the counts, never the rows. Each rule
then merges the steps its own window spans and is judged at the end of every step; its alert is
pending while the breach lasts and firing once it has lasted the rule's ``for:``.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlhandoff.bundle.bundle import Bundle, open_bundle
from mlhandoff.contract.validate import CompiledContract, without_batch_rules
from mlhandoff.errors import InputError
from mlhandoff.monitor.labels import Labels
from mlhandoff.monitor.logs import LogBatch, LogReader, Skipped, Unreadable, log_files
from mlhandoff.monitor.performance import ScoreCounts, count_scores, estimated, realised
from mlhandoff.monitor.profile import FieldProfile, Profile, ProfileCounter, Role, category_text
from mlhandoff.monitor.reference import load_reference
from mlhandoff.monitor.report import Firing, Histogram, MonitorReport, RuleRow, State, WindowReport
from mlhandoff.monitor.rules import CompiledRule, Context, WindowCounts, compile_rules
from mlhandoff.spec.durations import duration_seconds, format_duration
from mlhandoff.spec.monitoring import STATISTICS, score_output

_US = 1_000_000


def monitor(
    bundle: Bundle | str | Path,
    data: str | Path,
    *,
    step: str = "1h",
    labels: str | Path | None = None,
    join_key: str | None = None,
    label_column: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    time_column: str | None = None,
    timezone: str | None = None,
    chunk_rows: int = 262_144,
) -> MonitorReport:
    """Judge every monitoring rule of ``bundle``'s spec on ``data`` (a prediction-log directory
    or a Parquet/CSV file), per ``step``; ``labels`` (joined on ``join_key``) give realised
    performance. Unreadable files are skipped and listed in the report."""
    opened = bundle if isinstance(bundle, Bundle) else open_bundle(bundle)
    spec = opened.spec
    try:
        step_s = duration_seconds(step)
    except ValueError as exc:
        raise InputError(f"--window: {exc}") from None
    if step_s == 0:
        raise InputError("--window must be longer than 0s")
    if (labels is None) != (join_key is None):
        raise InputError("--labels and --join-key go together: the key joins labels to rows")
    reference = load_reference(opened)
    outputs = opened.outputs
    classes = opened.record.model.classes
    positive = category_text(classes[-1]) if classes else "1"
    joined = (
        Labels(
            Path(labels), join_key, label_column or spec.data_contract.label or "label", positive
        )
        if labels is not None and join_key is not None
        else None
    )
    reader = LogReader(
        spec,
        list(outputs.fields),
        time_column=time_column,
        timezone=timezone,
        chunk_rows=chunk_rows,
        categorical=frozenset(n for n, f in reference.inputs.items() if f.kind == "categorical"),
        extra=(join_key,) if join_key else (),
    )
    counting = _Counting(
        ProfileCounter(reference),
        score_output(spec),
        spec.model.threshold,
        joined,
        join_key,
        CompiledContract(without_batch_rules(spec.data_contract)),
        step_s * _US,
        _lookback(_micros(since), spec.monitoring.rules()),
        _micros(until),
    )
    report = MonitorReport(str(opened.root), str(data), format_duration(step_s), reference.source)
    skipped: list[Skipped] = []
    for path in log_files(Path(data)):
        local: dict[int, WindowCounts] = {}
        counting.file_values, counting.file_nonfinite = Counter(), Counter()
        try:
            for batch in reader.read(path):
                counting.add(batch, local, reader.layout == "table")
        except Unreadable as exc:
            skipped.append(Skipped(str(path), _reason(exc)))
            continue  # what this file added is dropped with it: whole files only
        report.files += 1
        counting.values.update(counting.file_values)
        counting.nonfinite.update(counting.file_nonfinite)
        for index, counts in local.items():
            mine = counting.windows.get(index)
            counting.windows[index] = counts if mine is None else mine.merge(counts)
    report.layout = reader.layout or ""
    report.skipped = [{"path": s.path, "reason": s.reason} for s in skipped]
    redacted = (
        frozenset(n for n, f in spec.data_contract.fields.items() if f.pii)
        if reader.layout == "prediction log"
        else frozenset()
    )
    ctx = Context(spec, reference, positive, redacted, validated=reader.layout == "table")
    rules = compile_rules(ctx)
    severity = {a.name: str(a.severity) for a in spec.monitoring.alerts}
    _judge(report, rules, counting, step_s, reference, severity, _micros(since))
    report.notes += counting.notes
    report.output_values = {
        k: {"values": n, "nonfinite": counting.nonfinite[k]}
        for k, n in sorted(counting.values.items())
    }
    for name in sorted(redacted & {r.field for r in spec.monitoring.drift}):
        report.notes.append(f"{name} is PII, redacted in the prediction log: judged live only")
    live = [r.label for r in rules if not r.batch]
    if live:
        report.notes.append(
            f"judged live by Prometheus (docs/alerts.yaml), not from logs: {', '.join(live)}"
        )
    if joined is not None:
        counted = sum(w.scores.labelled for w in counting.windows.values() if w.scores)
        report.labels = {**joined.summary(), "joined_rows": counted}
    return report


class _Counting:
    """Counts batches into per-step window counts (the file's own, merged when it is whole)."""

    def __init__(
        self,
        counter: ProfileCounter,
        score: str | None,
        threshold: float,
        labels: Labels | None,
        join_key: str | None,
        contract: CompiledContract,
        step_us: int,
        since: int | None,
        until: int | None,
    ) -> None:
        self.counter = counter
        self.score = score
        self.threshold = threshold
        self.labels = labels
        self.join_key = join_key
        self.contract = contract
        self.step_us = step_us
        self.since, self.until = since, until
        self.windows: dict[int, WindowCounts] = {}
        self.pii = {n for n, f in contract.contract.fields.items() if f.pii}
        self.notes: list[str] = []
        self._noted: set[str] = set()
        #: Floating-point output values read, and the NaN or infinite ones among them: the
        #: whole run's, and the file being read's (dropped with it when it is unreadable).
        self.values: Counter[str] = Counter()
        self.nonfinite: Counter[str] = Counter()
        self.file_values: Counter[str] = Counter()
        self.file_nonfinite: Counter[str] = Counter()

    def add(self, batch: LogBatch, into: dict[int, WindowCounts], table: bool) -> None:
        """Count ``batch`` into ``into`` by step; ``table``: a plain table (validated against
        the contract) rather than a prediction log (PII redacted: those inputs not counted)."""
        labels = self._labels(batch)  # every logged key, so unknown_keys means unknown
        keep = np.ones(len(batch.micros), dtype=bool)
        if self.since is not None:
            keep &= batch.micros >= self.since
        if self.until is not None:
            keep &= batch.micros < self.until
        if not keep.any():
            return
        if not keep.all():
            batch = _filtered(batch, keep)
            labels = None if labels is None else labels[keep]
        steps = batch.micros // self.step_us
        first = int(steps.min())
        groups = (steps - first).astype(np.intp)
        n = int(groups.max()) + 1
        inputs = {
            k: v
            for k, v in batch.inputs.items()
            if (table or k not in self.pii) and self._usable("input", k, v)
        }
        outputs = {k: v for k, v in batch.outputs.items() if self._usable("output", k, v)}
        for name, column in outputs.items():
            values, nonfinite = _nonfinite(column)
            if values:
                self.file_values[name] += values
                self.file_nonfinite[name] += nonfinite
        profiles = self.counter.count(inputs or None, outputs or None, groups=groups, n_groups=n)
        if not inputs and not outputs:
            profiles = [
                Profile(p.inputs, p.outputs, rows=int(c))
                for p, c in zip(profiles, np.bincount(groups, minlength=n), strict=True)
            ]
        scores = self._scores(batch, labels, groups, n)
        for g, profile in enumerate(profiles):
            if profile.rows == 0:
                continue
            counts = WindowCounts(profile, scores[g] if scores else None)
            if table:
                self._validate(batch.batch.filter(pa.array(groups == g)), counts)
            index = first + g
            mine = into.get(index)
            into[index] = counts if mine is None else mine.merge(counts)

    def _usable(self, role: Role, name: str, column: pa.Array) -> bool:
        shape = self.counter.reference.field(role, name)
        if shape is None or shape.kind != "numeric":
            return True
        t = column.type
        if pa.types.is_dictionary(t):
            t = t.value_type
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_null(t):
            return True
        note = f"{role} {name}: the data holds {t}, not numbers: not counted"
        if note not in self._noted:
            self._noted.add(note)
            self.notes.append(note)
        return False

    def _labels(self, batch: LogBatch) -> np.ndarray | None:
        if self.labels is None or self.join_key is None:
            return None
        keys = batch.column(self.join_key)
        if keys is None:
            raise InputError(
                f"the data has no column '{self.join_key}' (--join-key) to join labels on"
            )
        return self.labels.lookup(keys)

    def _scores(
        self, batch: LogBatch, labels: np.ndarray | None, groups: np.ndarray, n: int
    ) -> list[ScoreCounts] | None:
        column = batch.outputs.get(self.score) if self.score else None
        if column is None or not (
            pa.types.is_floating(column.type) or pa.types.is_integer(column.type)
        ):
            return None
        scores = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        return count_scores(scores, labels, self.threshold, groups=groups, n_groups=n)

    def _validate(self, rows: pa.RecordBatch, counts: WindowCounts) -> None:
        report = self.contract.validate(rows, allow_extra=True)
        counts.checked, counts.failing = report.rows, report.failing_rows
        counts.violations = Counter({(v.field, v.rule): v.count for v in report.violations})


def _nonfinite(column: pa.Array) -> tuple[int, int]:
    """Values in a floating-point column (a null is none) and how many are NaN or infinite."""
    t = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
    if not pa.types.is_floating(t):
        return 0, 0
    finite = pc.is_finite(pc.cast(column, pa.float64()))
    return len(column) - column.null_count, int(pc.sum(pc.invert(finite)).as_py() or 0)


def _filtered(batch: LogBatch, keep: np.ndarray) -> LogBatch:
    mask = pa.array(keep)
    return LogBatch(
        batch.micros[keep],
        {k: v.filter(mask) for k, v in batch.inputs.items()},
        {k: v.filter(mask) for k, v in batch.outputs.items()},
        batch.batch.filter(mask),
    )


def _judge(
    report: MonitorReport,
    rules: list[CompiledRule],
    counting: _Counting,
    step_s: int,
    reference: Profile,
    severity: dict[str, str],
    since: int | None,
) -> None:
    """Judge every rule at the end of every step; report the steps from ``since`` on (the
    earlier ones are the history the first windows look back on)."""
    windows = counting.windows
    if not windows:
        report.notes.append("no rows in the data (or between --since and --until)")
        return
    first, last = min(windows), max(windows)
    empty = next(iter(windows.values())).empty()
    steps = [windows.get(i, empty) for i in range(first, last + 1)]
    merged: dict[tuple[int, int], WindowCounts] = {}

    def trailing(i: int, k: int) -> WindowCounts:
        key = (i, k)
        if key not in merged:
            out = steps[i]
            for j in range(max(0, i - k + 1), i):
                out = out.merge(steps[j])
            merged[key] = out
        return merged[key]

    active: dict[int, int] = {}  # rule index → end (seconds) of the step its breach began
    fired: set[int] = set()
    worst: dict[int, tuple[float, int]] = {}
    uncovered: set[int] = set()
    scores: ScoreCounts | None = None  # every reported window's, for the run's performance
    for i, counts in enumerate(steps):
        end_s = (first + i + 1) * step_s
        shown = since is None or end_s * _US > since
        rows: list[RuleRow] = []
        for r, rule in enumerate(rules):
            if not rule.batch:
                continue
            k = _steps(rule, step_s)
            if i + 1 < k:  # Prometheus would have the history; a batch run starts with none
                value, breach = None, None
                note = f"its {format_duration(rule.window_s)} window is not covered by the data yet"
                uncovered.add(r)
            else:
                value, breach, note = rule.judge(trailing(i, k))
                uncovered.discard(r)
            state = _state(active, r, breach, end_s, rule.for_s)
            if breach:
                badness = _badness(rule, value)
                if shown and (r not in worst or badness > worst[r][0]):
                    worst[r] = (badness, i)
            alert_severity = severity.get(rule.alert, "")
            if shown and state == "firing" and r not in fired:
                fired.add(r)
                report.fired.append(
                    Firing(rule.alert, alert_severity, rule.label, _time(end_s), value)
                )
            rows.append(
                RuleRow(rule.label, rule.alert, alert_severity, rule.bound, value, state, note)
            )
        if shown:
            report.windows.append(
                WindowReport(
                    _time(end_s - step_s),
                    _time(end_s),
                    counts.profile.rows,
                    rows,
                    {f"{f} {why}": n for (f, why), n in sorted(counts.violations.items())},
                    _performance(counts.scores),
                )
            )
            report.rows += counts.profile.rows
            if counts.scores is not None:
                scores = counts.scores if scores is None else scores.merge(counts.scores)
    report.performance = _performance(scores)
    for r in sorted(uncovered):
        rule = rules[r]
        report.notes.append(
            f"{rule.label} was not judged: the data spans less than its "
            f"{format_duration(rule.window_s)} window"
        )
    for r, (_, i) in worst.items():
        rule = rules[r]
        if rule.field is not None:
            k = _steps(rule, step_s)
            start = _time((first + max(0, i - k + 1)) * step_s)
            span = f"{_iso(start)} – {_iso(_time((first + i + 1) * step_s))}"
            histogram = _histogram(rule, span, reference, trailing(i, k).profile)
            if histogram is not None:
                report.histograms.append(histogram)


def _state(active: dict[int, int], r: int, breach: bool | None, end_s: int, for_s: int) -> State:
    """Prometheus's alert states: pending from the first breached evaluation, firing once the
    breach has lasted ``for_s``; a step that is not breached (or not judged) resets it."""
    if not breach:
        active.pop(r, None)
        return "ok" if breach is False else "not judged"
    began = active.setdefault(r, end_s)
    return "firing" if end_s - began >= for_s else "pending"


def _lookback(since: int | None, rules: list) -> int | None:
    """Rows from this instant on count: ``since`` less the longest window a rule looks back."""
    if since is None:
        return None
    return since - max((duration_seconds(r.window) for r in rules), default=0) * _US


def _steps(rule: CompiledRule, step_s: int) -> int:
    """The evaluation steps a rule's window spans (at least one)."""
    return max(1, -(-rule.window_s // step_s))


def _badness(rule: CompiledRule, value: float | None) -> float:
    if value is None:
        return float("-inf")
    info = STATISTICS.get(rule.statistic)
    return -value if info is not None and info.breach == "below" else value


def _performance(scores: ScoreCounts | None) -> dict[str, object]:
    if scores is None or scores.n == 0:
        return {}
    return {
        "rows": scores.n,
        "labelled": scores.labelled,
        "estimated": estimated(scores),
        "realised": realised(scores),
    }


def _histogram(
    rule: CompiledRule, span: str, reference: Profile, window: Profile
) -> Histogram | None:
    assert rule.field is not None
    role, name = rule.field
    ref, cur = reference.field(role, name), window.field(role, name)
    if ref is None or cur is None:
        return None

    def shares(p: FieldProfile) -> list[float]:
        total = p.values.sum()
        return (p.values / total).tolist() if total else [0.0] * len(p.values)

    return Histogram(rule.label, name, span, slot_names(ref), shares(ref), shares(cur))


def slot_names(profile: FieldProfile) -> list[str]:
    """Names of the non-null slots, in order."""
    if profile.kind == "categorical" and profile.categories is not None:
        return [*profile.categories, "unseen"]
    if profile.kind == "numeric" and profile.edges is not None:
        e = profile.edges
        if e.size == 0:
            return ["any value"]
        inner = [
            f"[{e[j]:.4g}, {e[j + 1]:.4g}{']' if j == e.size - 2 else ')'}"
            for j in range(e.size - 1)
        ]
        return [f"< {e[0]:.4g}", *inner, f"> {e[-1]:.4g}"]
    return ["present"]


def _micros(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * _US)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _time(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]

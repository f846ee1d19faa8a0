"""Evaluating bundles: on new data or on the evaluation sample packed inside them.

``pack`` calls :func:`pack_evaluation` when the spec names ``acceptance.data``: a seeded sample of
that data (at most ``acceptance.max_rows`` rows, with the baseline's predictions when the spec
names a baseline bundle) and the report computed on it are written into the bundle, so its README
shows measured numbers and ``verify`` can recompute them from the bundle's own files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlhandoff.bundle import layout
from mlhandoff.bundle.bundle import Bundle, open_bundle, without_fields
from mlhandoff.contract.diff import diff_contracts
from mlhandoff.contract.tables import TableLike, read_table
from mlhandoff.contract.validate import CompiledContract
from mlhandoff.errors import EvaluationError, HandoffError, InputError, PredictError
from mlhandoff.evaluate import latency as latency_mod
from mlhandoff.evaluate.acceptance import evaluate_sets
from mlhandoff.evaluate.data import EvalSet, build_eval_set, model_outputs
from mlhandoff.evaluate.report import AcceptanceReport
from mlhandoff.flavors.base import STANDARD_OUTPUTS, Predictor
from mlhandoff.spec.models import HandoffSpec

#: Prefix of the columns of the packed evaluation sample that hold the baseline's outputs.
BASELINE_PREFIX = "baseline:"
#: Then, for a multiclass baseline, one column per class: ``baseline:proba:<class>``.
_PROBA = "proba:"


def needed_columns(spec: HandoffSpec) -> list[str]:
    """Columns an evaluation reads: the contract's fields, label, slice and query columns."""
    return list(dict.fromkeys([*spec.data_contract.fields, *eval_columns(spec)]))


def eval_set(spec: HandoffSpec, table: pa.Table, name: str) -> EvalSet:
    """The label, query and slice columns of ``table``, checked."""
    return build_eval_set(
        table,
        task=spec.model.task,
        label=spec.data_contract.label,
        query=spec.acceptance.query,
        slice_columns=[g.by for g in spec.acceptance.guardrails if g.by],
        name=name,
    )


def predict_checked(
    predictor: Predictor, table: pa.Table, who: str, on: str = "the evaluation data"
) -> dict[str, np.ndarray]:
    """The predictor's outputs; what a user model raises becomes a PredictError naming ``who``
    and the rows it failed ``on``."""
    try:
        return predictor.predict(table)
    except HandoffError:
        raise
    except Exception as exc:  # a user model can raise anything
        raise PredictError(f"{who} failed on {on}: {type(exc).__name__}: {exc}") from exc


def classes_of(predictor: Predictor) -> Any:
    """The labels of a classifier's ``proba`` columns (None: 0..k-1)."""
    return getattr(predictor, "classes", None)


def _check_contract(
    spec: HandoffSpec, table: pa.Table, name: str, skip: frozenset[str] = frozenset()
) -> None:
    """``skip``: PII fields pack dropped from the eval sample (the model does not use them)."""
    contract = without_fields(spec.data_contract, skip)
    CompiledContract(contract).validate(table, allow_extra=True).raise_for_violations(name)


def _baseline_from_columns(table: pa.Table) -> tuple[dict[str, np.ndarray], list[str]] | None:
    """The packed baseline's outputs, and the classes of its ``proba`` columns."""
    cols = [c[len(BASELINE_PREFIX) :] for c in table.column_names if c.startswith(BASELINE_PREFIX)]
    if not cols:
        return None
    values = {c: table.column(BASELINE_PREFIX + c).to_numpy(zero_copy_only=False) for c in cols}
    outputs = {c: v for c, v in values.items() if not c.startswith(_PROBA)}
    classes = [c[len(_PROBA) :] for c in cols if c.startswith(_PROBA)]
    if classes:
        outputs["proba"] = np.column_stack([values[_PROBA + c] for c in classes])
    return outputs, classes


def _with_baseline(
    table: pa.Table, raw: dict[str, np.ndarray], task: str, classes: Any
) -> pa.Table:
    """The sample with the baseline's outputs, so evaluation can compare without it."""
    for key in STANDARD_OUTPUTS[task]:
        if key in raw:
            table = table.append_column(BASELINE_PREFIX + key, pa.array(np.asarray(raw[key])))
    proba = raw.get("proba")
    if proba is not None:
        names = range(proba.shape[1]) if classes is None else classes
        for i, name in enumerate(names):
            table = table.append_column(f"{BASELINE_PREFIX}{_PROBA}{name}", pa.array(proba[:, i]))
    return table


def _baseline_outputs(
    baseline: Bundle, spec: HandoffSpec, table: pa.Table, name: str
) -> dict[str, np.ndarray]:
    """The baseline's predictions on ``table``; an incompatible contract is refused, explained."""
    if baseline.spec.model.task != spec.model.task:
        raise EvaluationError(
            f"the baseline {baseline.root.name} is a {baseline.spec.model.task} model; "
            f"{spec.name} is {spec.model.task}: they cannot be compared"
        )
    report = CompiledContract(baseline.spec.data_contract).validate(table, allow_extra=True)
    if not report.ok:
        breaking = diff_contracts(baseline.spec.data_contract, spec.data_contract).breaking
        shown = "; ".join(f"{v.field}: {v.message}" for v in report.violations[:3])
        why = (
            "; breaking contract changes: "
            + "; ".join(f"{c.field} {c.detail}" for c in breaking[:5])
            if breaking
            else ""
        )
        raise EvaluationError(
            f"the baseline {baseline.root.name} cannot score {name}: its data contract is "
            f"incompatible ({shown}){why}"
        )
    return predict_checked(baseline.predictor(), table, f"the baseline {baseline.root.name}")


def evaluate_bundle(
    bundle: Bundle | str | Path,
    data: TableLike | None = None,
    *,
    baseline: Bundle | str | Path | None = None,
    model: str | Path | None = None,
    latency: bool = True,
    resamples: int | None = None,
) -> AcceptanceReport:
    """Judge the bundle's acceptance section on ``data`` (default: its packed evaluation sample).

    ``baseline`` is another bundle scored on the same rows (paired intervals); without it, the
    baseline predictions packed with the sample are used when there are any. ``model`` swaps in
    another model file (e.g. a retrained one) loaded with the bundle's options.
    """
    b = bundle if isinstance(bundle, Bundle) else open_bundle(bundle)
    spec = b.spec
    packed = data is None
    if packed:
        path = b.root / layout.EVAL_SAMPLE
        if not path.exists():
            raise EvaluationError(
                f"{b.root}: the bundle has no evaluation sample (the spec set no acceptance.data "
                "when it was packed); pass the labelled data with --data (data= in Python)"
            )
        table, name = pq.read_table(path), f"{b.root.name}/{layout.EVAL_SAMPLE}"
    else:
        table, name = (
            read_table(data, contract=spec.data_contract, name="evaluation data"),
            _name(data),
        )
    _check_contract(spec, table, name, skip=b.dropped_fields if packed else frozenset())
    evalset = eval_set(spec, table, name)
    predictor = b.predictor() if model is None else _load_other(b, Path(model))
    raw = predict_checked(predictor, table, "the model")
    outputs = model_outputs(
        raw, evalset, threshold=spec.model.threshold, classes=classes_of(predictor)
    )
    base_out, base_name = None, None
    if baseline is not None:
        other = baseline if isinstance(baseline, Bundle) else open_bundle(baseline)
        base_raw = _baseline_outputs(other, spec, table, name)
        base_name = other.root.name
        base_out = model_outputs(
            base_raw,
            evalset,
            threshold=other.spec.model.threshold,
            who=f"the baseline {base_name}",
            classes=classes_of(other.predictor()),
        )
    elif packed and (stored := _baseline_from_columns(table)) is not None:
        base_name = _recorded_baseline(b)
        base_out = model_outputs(
            stored[0],
            evalset,
            threshold=spec.model.threshold,
            who="the packed baseline",
            classes=stored[1] or None,
        )
    report = evaluate_sets(
        spec.acceptance,
        evalset,
        outputs,
        base_out,
        data_name=name,
        baseline_name=base_name,
        resamples=resamples,
    )
    if latency:
        add_latency(report, b, predictor, table, other_model=model is not None)
    return report


def add_latency(
    report: AcceptanceReport,
    b: Bundle,
    predictor: Predictor,
    table: pa.Table,
    *,
    other_model: bool = False,
) -> None:
    """Measure in-process latency on the first rows of ``table`` (here, on this machine) and
    judge it against ``api.latency_budget``."""
    spec = b.spec
    features = table.select([c for c in spec.data_contract.fields if c in table.column_names])
    measured = latency_mod.measure(predictor.predict, features, batch_size=spec.api.max_batch_size)
    if not other_model and b.compiled and predictor is not b.predictor(compiled=False):
        # What serves is the compiled form (judged below); the model itself, for comparison.
        original = latency_mod.measure(
            b.predictor(compiled=False).predict, features, batch_size=spec.api.max_batch_size
        )
        measured |= {
            "form": "compiled",
            "original": {k: original[k] for k in ("single", "batch")},
        }
    report.latency = measured
    report.rows += latency_mod.budget_rows(measured, spec.api.latency_budget)


def eval_columns(spec: HandoffSpec) -> list[str]:
    """The columns the metrics read besides the model's outputs: label, query, slices."""
    a = spec.acceptance
    return list(
        dict.fromkeys(
            c for c in (spec.data_contract.label, a.query, *(g.by for g in a.guardrails)) if c
        )
    )


def _name(data: TableLike) -> str:
    return str(data) if isinstance(data, str | Path) else "evaluation data"


def _load_other(bundle: Bundle, path: Path) -> Predictor:
    from mlhandoff.flavors import load_predictor

    if not path.exists():
        raise InputError(f"{path}: model file not found")
    return load_predictor(path, bundle.record.model.flavor, bundle.load_options())


def _recorded_baseline(bundle: Bundle) -> str | None:
    recorded = bundle.report(layout.ACCEPTANCE_REPORT)
    return str((recorded or {}).get("baseline") or "packed baseline")


def recorded_report(bundle: Bundle) -> AcceptanceReport | None:
    """The report written at pack time, or None when the spec named no evaluation data."""
    recorded = bundle.report(layout.ACCEPTANCE_REPORT)
    return None if recorded is None else AcceptanceReport.from_dict(recorded)


def pack_evaluation(
    spec: HandoffSpec, base: Path, predictor: Predictor, target: Path
) -> AcceptanceReport | None:
    """Measure the acceptance section at pack time; writes the sample and report under ``target``.

    The spec is left as written: readers find the sample at ``layout.EVAL_SAMPLE``.
    """
    a = spec.acceptance
    if not a.data:
        return None
    source = base / a.data
    table = read_table(source, contract=spec.data_contract, name="acceptance.data")
    _check_contract(spec, table, f"acceptance.data ({a.data})")
    total = table.num_rows
    if total > a.max_rows:
        rng = np.random.default_rng(spec.training.seed or 0)
        table = table.take(pa.array(np.sort(rng.choice(total, size=a.max_rows, replace=False))))
    table = table.select([c for c in needed_columns(spec) if c in table.column_names])
    name = f"{layout.EVAL_SAMPLE} ({table.num_rows} of {total} rows of {a.data})"
    evalset = eval_set(spec, table, f"acceptance.data ({a.data})")
    outputs = model_outputs(
        predict_checked(predictor, table, "the model"),
        evalset,
        threshold=spec.model.threshold,
        classes=classes_of(predictor),
    )
    base_out, base_name = None, None
    if a.baseline:
        other = open_bundle(_bundle_path(base, a.baseline))
        raw = _baseline_outputs(other, spec, table, f"acceptance.data ({a.data})")
        base_name = other.root.name
        classes = classes_of(other.predictor())
        base_out = model_outputs(
            raw,
            evalset,
            threshold=other.spec.model.threshold,
            who=f"the baseline {base_name}",
            classes=classes,
        )
        table = _with_baseline(table, raw, spec.model.task, classes)
    report = evaluate_sets(a, evalset, outputs, base_out, data_name=name, baseline_name=base_name)
    (target / layout.EVAL_SAMPLE).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, target / layout.EVAL_SAMPLE)
    (target / layout.ACCEPTANCE_REPORT).parent.mkdir(parents=True, exist_ok=True)
    (target / layout.ACCEPTANCE_REPORT).write_text(
        json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8"
    )
    return report


def _bundle_path(base: Path, ref: str) -> Path:
    path = base / ref
    if not path.exists():
        raise InputError(f"acceptance.baseline: {path} is not a bundle directory (not found)")
    return path


def compare_reports(
    recorded: AcceptanceReport, fresh: AcceptanceReport, tolerance: float
) -> list[str]:
    """Differences beyond ``tolerance`` between two reports' metric rows (latency aside)."""
    problems = []
    # Keyed with the bound too: two criteria may judge one metric (e.g. >= 0.85 and >= 0.95).
    now: Mapping[tuple[str, str | None, str], Any] = {
        (r.kind + r.metric, r.by, r.bound): r for r in fresh.rows
    }
    for old in recorded.rows:
        if old.kind == "latency":
            continue
        new = now.get((old.kind + old.metric, old.by, old.bound))
        if new is None:
            problems.append(f"{old.label}: no longer evaluated")
            continue
        for attr in ("value", "low", "high"):
            a, b = getattr(old, attr), getattr(new, attr)
            if (a is None) != (b is None) or (a is not None and abs(a - b) > tolerance):
                problems.append(f"{old.label}: {attr} recorded {a}, now {b}")
                break
        else:
            if old.verdict != new.verdict:
                problems.append(f"{old.label}: verdict recorded {old.verdict}, now {new.verdict}")
    return problems

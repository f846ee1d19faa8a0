"""Compiled serving: the model compiled to a native predictor at pack, kept only when proven.

Pack compiles the model (``flavors.compile``: treelite for the trees, numpy for the scikit-learn
steps in front of them), writes it under ``model/compiled/``, loads it back as serve will, and
scores the same rows with both forms: the golden set, the eval sample and edge rows (each
nullable feature null, each numeric feature at its bounds, an unseen category where the contract
lets one through). ``reports/compile.json`` records the largest absolute difference, the label
flips and the rows compared; the compiled form stays in the bundle only when every value is
within ``golden.rtol`` / ``golden.atol`` and no label flips. ``verify`` proves it again from the
bundle's own files. ``serving.compile: required`` turns "not compiled" into a pack error,
``off`` skips the step.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mlhandoff.bundle import layout
from mlhandoff.bundle.bundle import Bundle, load_options
from mlhandoff.bundle.record import CompiledRecord
from mlhandoff.capability import Capability, Check, HandoffView, Outcome, PackContext, Step
from mlhandoff.contract.validate import CompiledContract, without_batch_rules
from mlhandoff.errors import CompileError, HandoffError, MissingExtraError, ModelLoadError
from mlhandoff.flavors.base import Predictor
from mlhandoff.flavors.compile import (
    Agreement,
    NotCompilable,
    compare,
    compile_predictor,
    load_compiled,
    save_compiled,
    treelite_version,
)
from mlhandoff.spec.models import FieldSpec, HandoffSpec

REPORT_VERSION = 1
#: Golden rows each edge variant is built on.
_EDGE_ROWS = 20
_UNSEEN = "__mlhandoff_unseen__"


class _NotEquivalent(Exception):
    """The compiled form was built but answers differently (or fails where the model does not)."""


def compile_model(ctx: PackContext) -> None:
    spec = ctx.spec
    mode = spec.serving.compile
    if mode == "off":
        _write(ctx.root, {"status": "off", "mode": mode, "reason": "serving.compile is off"})
        return
    predictor = ctx.require_predictor()
    assert ctx.model is not None  # the model step ran first
    options = load_options(spec, ctx.model, ctx.root)
    target = ctx.root / layout.COMPILED_DIR
    agreements: list[Agreement] = []
    status, reason = "compiled", None
    try:
        save_compiled(compile_predictor(predictor, options, spec.data_contract.fields), target)
        compiled = load_compiled(target, options)  # as verify and serve will load it
        agreements = prove(spec, ctx.root, predictor, compiled)
    except MissingExtraError:
        status, reason = (
            "not_compiled",
            "treelite is not installed (pip install 'mlhandoff[compile]')",
        )
    except NotCompilable as exc:
        status, reason = "not_compiled", str(exc)
    except _NotEquivalent as exc:
        status, reason = "refused", str(exc)
    report: dict[str, Any] = {"status": status, "mode": mode, "reason": reason}
    if agreements:
        report |= _summary(spec, agreements)
    if status == "compiled":
        ctx.serving_predictor = compiled  # what the README's example answers come from
        version = treelite_version()
        ctx.compiled = CompiledRecord(
            path=layout.COMPILED_DIR, compiler="treelite", version=version
        )
        ctx.packages.append("treelite")
        report |= {"compiler": "treelite", "compiler_version": version, "path": layout.COMPILED_DIR}
    else:
        shutil.rmtree(target, ignore_errors=True)
    _write(ctx.root, report)
    ctx.measured["compile"] = report
    if status != "compiled" and mode == "required":
        raise CompileError(f"serving.compile is 'required', but the model {_why(report)}")
    ctx.notices.append(_notice(report))


def prove(
    spec: HandoffSpec, root: Path, original: Predictor, compiled: Predictor
) -> list[Agreement]:
    """Both forms on the golden set, the eval sample and edge rows; _NotEquivalent unless they
    agree within the golden tolerance with no label flips."""
    rtol, atol = spec.golden.rtol, spec.golden.atol
    agreements = []
    for name, tables in _proof_sets(spec, root):
        parts = [a for t in tables if (a := _compare(original, compiled, t, rtol, atol, name))]
        if parts:
            agreements.append(_combine(name, parts))
    bad = [a for a in agreements if not a.ok]
    if bad:
        raise _NotEquivalent(
            "; ".join(
                f"on the {a.name} rows {a.out_of_tolerance} value(s) differ beyond "
                f"rtol={rtol:g}, atol={atol:g} (largest difference {a.max_abs_diff:.3g}) and "
                f"{a.label_flips} label(s) flip"
                for a in bad
            )
        )
    return agreements


def _compare(
    original: Predictor, compiled: Predictor, table: pa.Table, rtol: float, atol: float, name: str
) -> Agreement | None:
    try:
        original.predict(table)
    except Exception:  # the model itself fails on these rows: nothing to compare
        return None
    try:
        return compare(original, compiled, table, rtol=rtol, atol=atol, name=name)
    except HandoffError as exc:
        raise _NotEquivalent(f"the compiled model fails on the {name} rows: {exc}") from exc


def _combine(name: str, parts: list[Agreement]) -> Agreement:
    return Agreement(
        name,
        sum(a.rows for a in parts),
        max(a.max_abs_diff for a in parts),
        sum(a.out_of_tolerance for a in parts),
        sum(a.label_flips for a in parts),
    )


def _proof_sets(spec: HandoffSpec, root: Path) -> list[tuple[str, list[pa.Table]]]:
    """The rows both forms score, named and normalised as the server normalises requests."""
    contract = CompiledContract(spec.data_contract)
    fields = [f for f in spec.data_contract.fields]
    golden = pq.read_table(root / layout.GOLDEN_INPUTS)
    sets = [("golden", [golden])]
    if (root / layout.EVAL_SAMPLE).exists():
        sample = pq.read_table(root / layout.EVAL_SAMPLE)
        sets.append(
            ("eval sample", [sample.select([f for f in fields if f in sample.column_names])])
        )
    sets.append(("edge", _edge_rows(spec, golden)))
    return [(name, [contract.normalize(t) for t in tables]) for name, tables in sets]


def _edge_rows(spec: HandoffSpec, golden: pa.Table) -> list[pa.Table]:
    """Golden rows with one feature at a time set to a value the contract allows at its edge."""
    base = golden.slice(0, _EDGE_ROWS)
    contract = CompiledContract(without_batch_rules(spec.data_contract))
    variants = []
    for name in spec.features():
        field = spec.data_contract.fields.get(name)
        if field is None or name not in base.column_names:
            continue
        index = base.column_names.index(name)
        kind = base.schema.field(name).type
        for value in _edge_values(field):
            try:
                column = pa.array([value] * base.num_rows, type=kind)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
                continue
            variant = base.set_column(index, name, column)
            if contract.validate(variant).ok:
                variants.append(variant)
    return variants


def _edge_values(field: FieldSpec) -> list[Any]:
    values: list[Any] = [None] if field.nullable else []
    if field.type in ("int", "float"):
        if field.min is not None and not field.min_exclusive:
            values.append(field.min)
        if field.max is not None and not field.max_exclusive:
            values.append(field.max)
    if field.type in ("string", "category") and (field.domain is None or field.unseen != "reject"):
        values.append(_UNSEEN)
    return values


def _summary(spec: HandoffSpec, agreements: list[Agreement]) -> dict[str, Any]:
    worst = max(a.max_abs_diff for a in agreements)
    return {
        "rows_compared": sum(a.rows for a in agreements),
        "max_abs_diff": worst if math.isfinite(worst) else None,
        "label_flips": sum(a.label_flips for a in agreements),
        "out_of_tolerance": sum(a.out_of_tolerance for a in agreements),
        "tolerance": {"rtol": spec.golden.rtol, "atol": spec.golden.atol},
        "sets": [
            a.to_dict()
            | {"max_abs_diff": a.max_abs_diff if math.isfinite(a.max_abs_diff) else None}
            for a in agreements
        ],
    }


def _write(root: Path, report: dict[str, Any]) -> None:
    path = root / layout.COMPILE_REPORT
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"report_version": REPORT_VERSION, **report}
    path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")


def _why(report: dict[str, Any]) -> str:
    if report["status"] == "refused":
        return f"was compiled and refused: {report['reason']}"
    return f"is not compiled: {report['reason']}"


def _proven(report: dict[str, Any]) -> str:
    return (
        f"on {report['rows_compared']:,} rows the largest difference is "
        f"{report['max_abs_diff']:.2g}, with {report['label_flips']} label flips"
    )


def _notice(report: dict[str, Any]) -> str:
    if report["status"] == "compiled":
        return (
            f"compiled the model with treelite {report['compiler_version']}: {_proven(report)}; "
            "the compiled form serves (serving.compile: off to keep the original)"
        )
    return f"the model {_why(report)}; the original serves"


# ---- verify ---------------------------------------------------------------------------------


def compiled_equivalent(bundle: Bundle) -> Outcome:
    """Prove again, from the bundle's files, that the compiled form answers like the model."""
    record = bundle.record.compiled
    report = bundle.report(layout.COMPILE_REPORT)
    if record is None:
        if report is None:
            return "skipped", "packed before compiled serving"
        if report.get("status") == "off":
            return "skipped", "serving.compile is off"
        return "skipped", f"the model {_why(report)}; the original serves"
    original = bundle.predictor(compiled=False)
    try:
        compiled = load_compiled(bundle.root / record.path, bundle.load_options())
    except MissingExtraError as exc:
        return "warn", f"{exc}; the original serves here"
    except ModelLoadError as exc:
        return "fail", str(exc)
    try:
        agreements = prove(bundle.spec, bundle.root, original, compiled)
    except _NotEquivalent as exc:
        return "fail", f"the compiled model no longer answers like the model: {exc}"
    summary = _summary(bundle.spec, agreements)
    return "pass", f"{_proven(summary)} ({record.compiler} {record.version})"


def readme(view: HandoffView) -> str:
    report = view.report(layout.COMPILE_REPORT)
    if report is None or report.get("status") == "off":
        return ""
    head = "## Compiled serving\n"
    if report["status"] != "compiled":
        return head + f"The model {_why(report)}; the model itself serves.\n"
    sets = ", ".join(f"{s['name']} {s['rows']:,}" for s in report["sets"])
    tol = report["tolerance"]
    return head + (
        f"The server answers with the model compiled by treelite {report['compiler_version']} "
        f"(`{report['path']}/`). Pack scored the same rows with both forms ({sets}): "
        f"{_proven(report)} (tolerance rtol={tol['rtol']:g}, atol={tol['atol']:g}; "
        f"`{layout.COMPILE_REPORT}`). `mlhandoff verify` proves it again; "
        "`mlhandoff serve --no-compile` serves the model itself.\n"
    )


CAPABILITY = Capability(
    "compile",
    steps=(Step("compile", "compiling the model", compile_model),),
    checks=(
        Check(
            "compiled_equivalent",
            "Compiled model answers like the model",
            compiled_equivalent,
        ),
    ),
    readme=readme,
)

"""``mlhandoff init``: write a first handoff.yaml from a model file and a data sample.

What the data shows is filled in; what only a person knows is marked TODO, and the verify
checklist keeps reporting it as missing until it is filled in.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from mlhandoff.contract.infer import infer_fields
from mlhandoff.contract.tables import TableLike, read_table
from mlhandoff.errors import InputError
from mlhandoff.spec.loader import parse_spec
from mlhandoff.spec.tasks import Task

_TODO = "TODO"


def infer_task(table: pa.Table, label: str | None) -> Task:
    """Guess the task from the label column: two values → binary, few → multiclass, else regression."""
    if label is None:
        raise InputError("cannot infer the task without --label; pass --task explicitly")
    column = table.column(label)
    distinct = pc.count_distinct(column.drop_null()).as_py()
    if distinct <= 2:
        return "binary_classification"
    if pa.types.is_floating(column.type) or distinct > 50:
        return "regression"
    return "multiclass_classification"


def scaffold(
    *,
    model_path: Path,
    sample: TableLike,
    spec_path: Path,
    label: str | None = None,
    task: Task | None = None,
    name: str | None = None,
    flavor: str | None = None,
    eval_data: TableLike | None = None,
    code: Path | None = None,
    command: str | None = None,
    seed: int | None = None,
) -> str:
    """The text of a new handoff.yaml; paths in it are relative to ``spec_path``'s directory.

    ``eval_data`` (held-out, labelled) widens the inferred ranges and domains to cover it too
    (a contract inferred from training rows alone rejects part of any test split) and becomes
    ``acceptance.data``; ``code``, ``command`` and ``seed`` fill the training section.
    """
    from mlhandoff.flavors import flavor_for_path

    if not model_path.exists():
        raise InputError(f"{model_path}: model file not found")
    if code is not None and not code.exists():
        raise InputError(f"--code: {code} not found")
    flavor = flavor or flavor_for_path(model_path)
    untrusted = _untrusted_types(model_path, flavor)  # what pack would refuse, refused first
    table = read_table(sample, name="sample")
    inferred_from = table
    if eval_data is not None:
        held_out = read_table(eval_data, name="eval data")
        missing = [c for c in table.column_names if c not in held_out.column_names]
        if missing:
            raise InputError(
                f"--eval: the evaluation data lacks columns the sample has: {', '.join(missing[:5])}"
            )
        inferred_from = pa.concat_tables(
            [table, held_out.select(table.column_names)], promote_options="permissive"
        )
    fields = infer_fields(inferred_from, label=label)
    task = task or infer_task(table, label)
    base = spec_path.resolve().parent
    slug = name or re.sub(r"[^a-z0-9._-]+", "-", model_path.stem.lower()).strip("-._") or "model"

    contract: dict[str, Any] = {"label": label, "fields": {}} if label else {"fields": {}}
    for field_name, spec in fields.items():
        entry = spec.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        entry = {"type": spec.type, **entry}
        entry.setdefault("description", f"{_TODO}: what it is, where it comes from")
        contract["fields"][field_name] = entry
    example = _first_record(table, [n for n, s in fields.items() if not s.id])
    sample_rel = _relative(Path(sample), base) if isinstance(sample, str | Path) else None
    eval_rel = _relative(Path(eval_data), base) if isinstance(eval_data, str | Path) else None

    text = _TEMPLATE.format(
        date=dt.date.today().isoformat(),
        name=_scalar(slug),
        model_path=_scalar(_relative(model_path, base)),
        flavor=_scalar(flavor),
        task=_scalar(task),
        sample=f"\n  sample: {_scalar(sample_rel)}" if sample_rel else "",
        data_contract=_indent(
            yaml.safe_dump(contract, sort_keys=False, allow_unicode=True, width=100)
        ),
        example=_indent(
            yaml.safe_dump([example], sort_keys=False, allow_unicode=True, width=100), 4
        ),
        trusted=_trusted_block(untrusted),
        code_path=(
            _scalar(_relative(code, base))
            if code
            else "null           # TODO: training code (file or directory), copied into the bundle"
        ),
        command=_scalar(command) if command else '"TODO: the exact command that trains this model"',
        seed=seed if seed is not None else "null                # TODO: the random seed used",
        acceptance_data=f"\n  data: {_scalar(eval_rel)}             # held-out, labelled: measured at pack"
        if eval_rel
        else "",
    )
    parse_spec(text, file=spec_path)  # what init writes must always load
    return text


def _untrusted_types(model_path: Path, flavor: str) -> list[str]:
    """What the model file needs trusted, for review: skops's own audit for .skops, pack's
    allowlisting unpickler for pickle/joblib (which refuses never-trusted globals outright)."""
    if flavor != "sklearn":
        return []
    if model_path.suffix == ".skops":
        from mlhandoff.flavors.sklearn import untrusted_types

        return untrusted_types(model_path)
    from mlhandoff.capabilities.model_audit import audit_pickle

    return audit_pickle(model_path)


def _trusted_block(untrusted: list[str]) -> str:
    from mlhandoff.flavors.trust import never_trusted

    never = [t for t in untrusted if never_trusted(t)]
    reviewable = [t for t in untrusted if not never_trusted(t)]
    lines = []
    if never:
        lines += [
            "  # The model file also needs these, which can run code, open files or look names",
            "  # up: they are never trusted, and loading refuses this model until it is saved",
            "  # without them.",
        ]
        lines += [f"  #    {_scalar(t)}" for t in never]
    if reviewable:
        lines += [
            "  # The model file asks to construct these types, which are not trusted by default.",
            "  # Review each one; uncomment only those you accept. Loading refuses the rest.",
        ]
    lines.append("  trusted_types: []")
    lines += [f"  #  - {_scalar(t)}" for t in reviewable]
    return "\n".join(lines)


def _scalar(value: str) -> str:
    """``value`` as one line of YAML that reads back as exactly that string: plain when that is
    safe, quoted otherwise, never spilling onto a second line (a comment stays a comment)."""
    text = yaml.safe_dump(value, width=math.inf, allow_unicode=False)
    text = text.removesuffix("\n...\n").removesuffix("\n")
    if "\n" in text:
        text = yaml.safe_dump(value, default_style='"', width=math.inf, allow_unicode=False)
        text = text.removesuffix("\n")
    return text


def _first_record(table: pa.Table, columns: list[str]) -> dict[str, Any]:
    row = table.select(columns).slice(0, 1).to_pylist()[0]
    return {
        k: (v.isoformat() if isinstance(v, dt.date | dt.datetime) else v) for k, v in row.items()
    }


def _relative(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def _indent(text: str, spaces: int = 2) -> str:
    pad = " " * spaces
    return "\n".join(pad + line if line else line for line in text.rstrip("\n").splitlines())


_TEMPLATE = """\
# handoff.yaml, written by `mlhandoff init` on {date}.
# Fill in every TODO, then run: mlhandoff pack handoff.yaml --out dist/
# Annotated reference: docs/handoff.example.yaml. Editor completion: mlhandoff spec-schema.
spec_version: 1
name: {name}
version: 0.1.0
purpose: "TODO: the decision this model supports, and for whom"

owners:
  data_science: {{name: "TODO", email: "TODO"}}
  engineering: {{name: "TODO", email: "TODO"}}
  product: {{name: "TODO", email: "TODO"}}
  on_call:
    rotation: "TODO: pager rotation that answers alerts"
    escalation: []          # e.g. ["primary on-call", "ML lead", "head of risk"]

model:
  path: {model_path}
  flavor: {flavor}
  task: {task}
  version_tag: v0.1.0

training:
  code_path: {code_path}
  command: {command}
  seed: {seed}
  data: []                  # e.g. - {{path: data/train.parquet, role: train}}

golden:{sample}
  rows: 100                 # golden rows replayed by `mlhandoff verify`
  rtol: 1.0e-6
  atol: 1.0e-9

# Inferred from the sample: check every range and domain; describe every field.
# Rules: docs "Writing a data contract". How eval data was split off (pack checks it):
#   split: {{kind: time, column: <timestamp field>}}   # or {{kind: group, column: <field>}}
data_contract:
{data_contract}

api:
  examples:
{example}
  # latency_budget: {{p50_ms: 10, p95_ms: 25, p99_ms: 50}}

acceptance:{acceptance_data}
  criteria: []              # e.g. - {{metric: roc_auc, op: ">=", threshold: 0.85}}
  guardrails: []            # e.g. - {{metric: recall, by: country, op: ">=", threshold: 0.5}}

monitoring:                 # rules checked by `mlhandoff monitor` and rendered for Prometheus
  slos: []                  # e.g. - {{name: availability, kind: availability, target: 0.999, window: 30d, alert: ErrorBudgetBurn}}
  drift: []                 # e.g. - {{field: amount_eur, statistic: psi, threshold: 0.2, window: 1d, for: 1h, alert: InputDrift}}
  alerts: []                # e.g. - {{name: InputDrift, severity: ticket, route: "#team", runbook: "what to do"}}

rollout:
  strategy: canary
  steps: []                 # e.g. - {{traffic_percent: 5, duration: 1d}}

rollback:
  plan: "TODO: how to return to the previous version, and who decides"
  triggers: []

model_card:
  intended_use: "TODO"
  limitations: []
  known_biases: []
  mitigations: []
  training_data: "TODO"
  evaluation_data: "TODO"
  ethical_considerations: "TODO: who could be harmed, and how that is watched"

privacy:
  pii_fields: []
  retention: "TODO"
  notes: "TODO"

security:
{trusted}
  notes: "TODO"

signoffs: []                # - {{role: pm, name: "...", date: 2026-01-31}} (roles: pm, ds, eng)
"""

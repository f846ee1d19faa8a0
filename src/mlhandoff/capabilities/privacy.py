"""Privacy: no undeclared personal data in the bundle, and no PII it does not need.

At pack, after the golden set and the eval sample are written: PII fields the model does not use
(``pii: true`` in the data contract, or ``privacy.pii_fields``) are dropped from both; then the
sample, the golden inputs and the eval sample are scanned (:mod:`.pii_scan`). A finding in a field
that is neither declared PII nor acknowledged under ``privacy.acknowledged`` stops the pack,
naming the field, the rule and the number of rows, never a value. ``reports/pii.json`` records
what was scanned, found, dropped and kept; verify scans the bundled data again.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mlhandoff.bundle import layout
from mlhandoff.bundle.bundle import Bundle
from mlhandoff.capabilities.pii_scan import MAX_SCAN_ROWS, RULE_NAMES, Finding, scan_table
from mlhandoff.capability import Capability, Check, Outcome, PackContext, Step
from mlhandoff.errors import InputError
from mlhandoff.spec.models import HandoffSpec

#: The bundled data files the scan and the drop cover, by the name findings give them.
_BUNDLED = (("golden", layout.GOLDEN_INPUTS), ("eval", layout.EVAL_SAMPLE))


def declared_pii(spec: HandoffSpec) -> set[str]:
    fields = spec.data_contract.fields
    return {n for n, f in fields.items() if f.pii} | set(spec.privacy.pii_fields)


def _dropped(spec: HandoffSpec) -> dict[str, set[str]]:
    """Declared PII columns each bundled file does without: the model's features stay (golden
    replay needs them), and so do the label, slice and query columns of the eval sample."""
    unused = declared_pii(spec) - set(spec.features())
    a = spec.acceptance
    scored = {spec.data_contract.label, a.query, *(g.by for g in a.guardrails)}
    return {"golden": unused, "eval": unused - scored}


def undeclared(spec: HandoffSpec, findings: list[Finding]) -> list[Finding]:
    declared = declared_pii(spec)
    acks = spec.privacy.acknowledged
    return [
        f
        for f in findings
        if f.field not in declared
        and not any(a.field == f.field and a.rule in (None, f.rule) for a in acks)
    ]


def _refusal(bad: list[Finding]) -> str:
    return (
        "pack found personal data the spec does not declare (values not shown): "
        + "; ".join(f.describe() for f in bad[:10])
        + (f" (+{len(bad) - 10} more)" if len(bad) > 10 else "")
        + ". Mark each field `pii: true` in data_contract and list it in privacy.pii_fields, or "
        "acknowledge it under privacy.acknowledged as {field, rule, reason}"
    )


def scan_and_drop(ctx: PackContext) -> None:
    spec = ctx.spec
    dropped: dict[str, list[str]] = {}
    tables: list[tuple[str, pa.Table]] = []
    for name, rel in _BUNDLED:
        path = ctx.root / rel
        if not path.exists():
            continue
        table = pq.read_table(path)
        drop = sorted(_dropped(spec)[name] & set(table.column_names))
        if drop:
            table = table.drop_columns(drop)
            pq.write_table(table, path)
        dropped[name] = drop
        tables.append((name, table))
    fields = [c for c in ctx.sample.column_names if c in spec.data_contract.fields]
    findings = scan_table(ctx.sample, "sample", fields)
    for name, table in tables:
        findings += scan_table(table, name)
    bad = undeclared(spec, findings)
    if bad:
        raise InputError(_refusal(bad))
    declared = declared_pii(spec)
    report: dict[str, Any] = {
        "rules": list(RULE_NAMES),
        "max_rows_per_table": MAX_SCAN_ROWS,
        "scanned": [
            {"data": name, "rows": min(t.num_rows, MAX_SCAN_ROWS), "fields": t.num_columns}
            for name, t in [("sample", ctx.sample.select(fields)), *tables]
        ],
        "findings": [
            {**vars(f), "status": "declared" if f.field in declared else "acknowledged"}
            for f in findings
        ],
        "dropped": dropped,
        "kept_pii_features": sorted(declared & set(spec.features())),
    }
    (ctx.root / layout.PII_REPORT).parent.mkdir(exist_ok=True)
    (ctx.root / layout.PII_REPORT).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    ctx.measured["pii"] = report


def pii_in_bundle(bundle: Bundle) -> Outcome:
    """Scan the bundled golden and eval data again: nothing undeclared, no unused PII."""
    spec = bundle.spec
    findings: list[Finding] = []
    present: list[str] = []
    rows = 0
    for name, rel in _BUNDLED:
        if rel not in bundle.files:
            continue
        table = pq.read_table(bundle.root / rel)
        rows += min(table.num_rows, MAX_SCAN_ROWS)
        present += [f"{c} in {rel}" for c in sorted(_dropped(spec)[name] & set(table.column_names))]
        findings += scan_table(table, name)
    bad = undeclared(spec, findings)
    if bad:
        return "fail", _refusal(bad).replace("pack found", "the bundled data holds", 1)
    if present:
        return "fail", "PII the model does not use is in the bundle: " + ", ".join(present)
    kept = sorted(declared_pii(spec) & set(spec.features()))
    return "pass", (
        f"{rows} rows of golden and eval data scanned ({', '.join(RULE_NAMES)}): nothing "
        f"undeclared; PII features kept (the model uses them): {', '.join(kept) or 'none'}"
    )


CAPABILITY = Capability(
    "privacy",
    steps=(Step("pii", "scanning data for personal information", scan_and_drop),),
    checks=(Check("pii", "No undeclared or unused PII in the bundled data", pii_in_bundle),),
)

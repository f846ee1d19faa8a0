"""``mlhandoff diff OLD NEW``: what an upgrade changes, and whether the spec's rule says go.

Metric deltas are paired (both versions score the same rows, one set of resamples); latency is
measured for both on this machine; data-contract compatibility comes from
``mlhandoff.contract.diff_contracts``. The NEW spec's ``acceptance.upgrade`` rule is judged by
``evaluate.upgrade.judge_upgrade``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlhandoff.bundle.bundle import Bundle, open_bundle
from mlhandoff.contract.diff import diff_contracts
from mlhandoff.contract.tables import TableLike
from mlhandoff.evaluate import latency as latency_mod
from mlhandoff.evaluate.report import AcceptanceReport, clean_json
from mlhandoff.evaluate.run import evaluate_bundle
from mlhandoff.evaluate.upgrade import judge_upgrade


@dataclass
class DiffReport:
    old: str
    new: str
    evaluation: AcceptanceReport
    contract: list[dict[str, Any]]
    latency: dict[str, Any] | None
    decision: str  # "go" or "no-go"
    reasons: list[str] = field(default_factory=list)

    @property
    def go(self) -> bool:
        return self.decision == "go"

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "evaluation"}
        out["evaluation"] = self.evaluation.to_dict()
        return dict(clean_json(out))


def diff_bundles(
    old: Bundle | str | Path,
    new: Bundle | str | Path,
    data: TableLike | None = None,
    *,
    latency: bool = True,
    resamples: int | None = None,
) -> DiffReport:
    """Compare two versions on the same data (default: NEW's packed evaluation sample)."""
    a = old if isinstance(old, Bundle) else open_bundle(old)
    b = new if isinstance(new, Bundle) else open_bundle(new)
    changes = diff_contracts(a.spec.data_contract, b.spec.data_contract).to_dict()["changes"]
    evaluation = evaluate_bundle(b, data, baseline=a, latency=False, resamples=resamples)
    timing = None
    if latency:
        timing = _latency(a, b, evaluation)
        evaluation.rows += latency_mod.budget_rows(timing["new"], b.spec.api.latency_budget)
    decision, reasons = judge_upgrade(b.spec, evaluation, changes, timing)
    return DiffReport(a.root.name, b.root.name, evaluation, changes, timing, decision, reasons)


def _latency(old: Bundle, new: Bundle, evaluation: AcceptanceReport) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from mlhandoff.bundle import layout

    sample = new.root / layout.EVAL_SAMPLE
    inputs = pq.read_table(sample) if sample.exists() else new.golden()[0]
    out = {}
    for key, bundle in (("old", old), ("new", new)):
        cols = [c for c in bundle.spec.data_contract.fields if c in inputs.column_names]
        out[key] = latency_mod.measure(
            bundle.predictor().predict, inputs.select(cols), batch_size=new.spec.api.max_batch_size
        )
    out["p95_ratio"] = out["new"]["single"]["p95_ms"] / out["old"]["single"]["p95_ms"]
    return out

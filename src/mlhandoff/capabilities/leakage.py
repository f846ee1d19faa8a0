"""Signs of leakage in the training data, checked at pack (``reports/leakage.json``).

Findings are warnings with evidence, never failures: a person judges them.
"""

from __future__ import annotations

import json

from mlhandoff.bundle import layout
from mlhandoff.capability import Capability, ChecklistLine, HandoffView, Outcome, PackContext, Step
from mlhandoff.contract.leakage import check_training_data
from mlhandoff.spec.models import LeakageRecord


def check_leakage(ctx: PackContext) -> None:
    record = check_training_data(ctx.spec.data_contract, ctx.spec.training.data, ctx.base)
    path = ctx.root / layout.LEAKAGE_REPORT
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8")


def leakage_line(view: HandoffView) -> Outcome:
    raw = view.report(layout.LEAKAGE_REPORT)
    record = LeakageRecord.model_validate(raw) if raw is not None else None
    if record is None or not record.checked:
        return "skipped", "no leakage check ran: list train and test/eval files under training.data"
    if record.findings:
        shown = "; ".join(
            f"{f.check} {f.field or ''} (score {f.score}): {f.detail}".replace("  ", " ")
            for f in record.findings[:3]
        )
        more = f" (+{len(record.findings) - 3} more)" if len(record.findings) > 3 else ""
        return "warn", shown + more
    return "pass", "checked: " + "; ".join(record.checked)


CAPABILITY = Capability(
    "leakage",
    steps=(Step("leakage", "checking training data for leakage", check_leakage),),
    checklist=(ChecklistLine("leakage", "No signs of leakage in training data", leakage_line),),
)

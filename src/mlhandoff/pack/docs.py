"""The last pack stage: the handoff README, model card and OpenAPI document, rendered from the
spec, the pack record and what the steps measured, with the same checklist verify re-runs."""

from __future__ import annotations

import json
from typing import Any

from mlhandoff.bundle import layout
from mlhandoff.bundle.bundle import model_outputs
from mlhandoff.bundle.manifest import sha256_file
from mlhandoff.bundle.record import PackRecord
from mlhandoff.capability import HandoffView, PackContext, checklist, registered
from mlhandoff.checks import CheckResult
from mlhandoff.contract.outputs import PredictionRows, name_outputs
from mlhandoff.contract.tables import read_table
from mlhandoff.contract.validate import CompiledContract, without_batch_rules
from mlhandoff.render import render_model_card, render_readme
from mlhandoff.render.openapi import openapi_document

#: What the docs step adds, so the checklist at pack sees the files verify will see.
DOCS = (layout.README, layout.MODEL_CARD, layout.OPENAPI)


def write_docs(ctx: PackContext, record: PackRecord) -> list[CheckResult]:
    """Write the docs; returns the checklist they show (what verify will re-check)."""
    spec, root = ctx.spec, ctx.root
    staged = HandoffView.of_directory(spec, root, record)
    view = HandoffView(spec, root, staged.files | set(DOCS), record, staged.report)
    artifacts = [
        {"path": rel, "size": (root / rel).stat().st_size, "sha256": sha256_file(root / rel)}
        for rel in sorted(staged.files)
        if not rel.startswith(layout.CODE_DIR + "/")
    ]
    (root / layout.DOCS_DIR).mkdir(exist_ok=True)  # steps may render docs too
    (root / layout.OPENAPI).write_text(
        json.dumps(openapi_document(spec, model_outputs(spec, record.model)), indent=2) + "\n",
        encoding="utf-8",
    )
    responses = _example_responses(ctx, record)
    env = ctx.measured.get("environment", {})
    acceptance = ctx.measured.get("acceptance")
    blocks = [cap.readme(view) for cap in registered() if cap.readme is not None]
    lines = checklist(view)
    (root / layout.README).write_text(
        render_readme(
            spec,
            record=record,
            artifacts=artifacts,
            environment=env,
            checklist=lines,
            bundle_name=f"{spec.name}-{spec.version}",
            responses=responses,
            acceptance=acceptance,
            blocks=blocks,
            outputs=model_outputs(spec, record.model),
        ),
        encoding="utf-8",
    )
    (root / layout.MODEL_CARD).write_text(
        render_model_card(spec, record=record, environment=env, acceptance=acceptance),
        encoding="utf-8",
    )
    return lines


def _example_responses(ctx: PackContext, record: PackRecord) -> list[dict[str, Any] | None]:
    """What the server answers to each ``api.examples`` request: the model's real output, formed
    as the server forms it (``PredictionRows``), or None for an example the contract refuses."""
    spec = ctx.spec
    contract = CompiledContract(without_batch_rules(spec.data_contract))
    outputs = model_outputs(spec, record.model)
    rows = PredictionRows(outputs, spec.api.abstain_below)
    answers: list[dict[str, Any] | None] = []
    for example in spec.api.examples:
        table = read_table([example], contract=spec.data_contract, name="api.examples")
        if not contract.validate(table).ok:
            answers.append(None)
            continue
        raw = ctx.require_predictor().predict(contract.normalize(table))
        answers.append(
            {
                "predictions": rows(name_outputs(raw, outputs)),
                "model": {
                    "name": spec.name,
                    "version": spec.version,
                    "version_tag": spec.model.version_tag,
                },
                "request_id": "4f0c8e1a2b3d4c5e6f708192a3b4c5d6",
            }
        )
    return answers

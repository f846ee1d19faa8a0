"""The handoff's agreements, checked against the spec: documented contracts, rollback and
on-call, model card, privacy and security notes. (Monitoring is capabilities/monitoring.py; sign-offs
are signed after pack, so capabilities/trust.py checks them.)"""

from __future__ import annotations

from collections.abc import Iterable

from mlhandoff.capability import Capability, ChecklistLine, HandoffView, Outcome, outcome
from mlhandoff.spec.models import is_todo


def _todo(pairs: Iterable[tuple[str, object]]) -> list[str]:
    return [f"{name} is not filled in" for name, value in pairs if is_todo(value)]


def contracts(view: HandoffView) -> Outcome:
    spec = view.spec
    undocumented = [n for n, f in spec.data_contract.fields.items() if is_todo(f.description)]
    gaps = []
    if undocumented:
        gaps.append(f"fields without a description: {', '.join(undocumented[:5])}")
    if not spec.api.examples:
        gaps.append("api.examples has no request example")
    if spec.api.latency_budget is None:
        gaps.append("api.latency_budget is not set")
    return outcome(
        gaps,
        f"{len(spec.data_contract.fields)} fields documented, {len(spec.api.examples)} request example(s)",
    )


def rollback_oncall(view: HandoffView) -> Outcome:
    spec = view.spec
    gaps = _todo([("rollback.plan", spec.rollback.plan)])
    if not spec.rollback.triggers:
        gaps.append("rollback.triggers is empty")
    on_call = spec.owners.on_call
    if on_call is None or is_todo(on_call.rotation):
        gaps.append("owners.on_call.rotation is not filled in")
    elif not on_call.escalation:
        gaps.append("owners.on_call.escalation is empty")
    for role in ("data_science", "engineering", "product"):
        person = getattr(spec.owners, role)
        if person is None or is_todo(person.name):
            gaps.append(f"owners.{role} is not named")
    rotation = on_call.rotation if on_call else ""
    return outcome(gaps, f"{len(spec.rollback.triggers)} rollback trigger(s), on-call {rotation}")


def model_card_privacy(view: HandoffView) -> Outcome:
    """Every field the model card renders (a TODO there is a TODO here), privacy and security."""
    spec = view.spec
    card = spec.model_card
    owner = spec.owners.data_science
    gaps = _todo(
        [
            ("purpose", spec.purpose),
            ("owners.data_science", owner.name if owner else None),
            ("model_card.intended_use", card.intended_use),
            ("model_card.limitations", card.limitations),
            ("model_card.known_biases", card.known_biases),
            ("model_card.mitigations", card.mitigations),
            ("model_card.training_data", card.training_data),
            ("model_card.evaluation_data", card.evaluation_data),
            ("model_card.ethical_considerations", card.ethical_considerations),
            ("acceptance.criteria", spec.acceptance.criteria),
            ("privacy.notes", spec.privacy.notes),
            ("privacy.retention", spec.privacy.retention),
            ("privacy.access_controls", spec.privacy.access_controls),
            ("privacy.data_owner", spec.privacy.data_owner),
            ("security.notes", spec.security.notes),
        ]
    )
    declared_pii = {n for n, f in spec.data_contract.fields.items() if f.pii}
    unlisted = sorted(declared_pii - set(spec.privacy.pii_fields))
    if unlisted:
        gaps.append(f"fields marked pii but not in privacy.pii_fields: {', '.join(unlisted)}")
    retention = spec.privacy.log_retention
    return outcome(
        gaps,
        f"model card complete, {len(spec.privacy.pii_fields)} PII field(s) declared, "
        f"data owner {spec.privacy.data_owner}, prediction logs kept "
        + (retention or "without a limit (privacy.log_retention unset)"),
    )


CAPABILITY = Capability(
    "agreements",
    checklist=(
        ChecklistLine("contracts", "Data and API contracts documented with examples", contracts),
        ChecklistLine(
            "rollback_oncall", "Rollback plan and on-call ownership documented", rollback_oncall
        ),
        ChecklistLine(
            "model_card_privacy",
            "Model card and privacy/security notes completed",
            model_card_privacy,
        ),
    ),
)

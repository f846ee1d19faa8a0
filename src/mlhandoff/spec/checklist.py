"""The handoff checklist: the promises a handoff makes, each checked against the spec and files.

These checks read only the frozen spec and the list of bundled files, so ``pack`` renders the
same lines into the README that ``verify`` later re-checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from mlhandoff.checks import CheckResult
from mlhandoff.spec.models import HandoffSpec, is_todo

SpecCheck = Callable[[HandoffSpec, set[str]], CheckResult]


def _result(id_: str, title: str, gaps: list[str], ok_detail: str) -> CheckResult:
    if gaps:
        return CheckResult(id_, title, "missing", "; ".join(gaps))
    return CheckResult(id_, title, "pass", ok_detail)


def _todo(pairs: Iterable[tuple[str, object]]) -> list[str]:
    return [f"{name} is not filled in" for name, value in pairs if is_todo(value)]


def artifacts(spec: HandoffSpec, files: set[str]) -> CheckResult:
    gaps = _todo([("model.version_tag", spec.model.version_tag), ("version", spec.version)])
    model_files = [f for f in files if f.startswith("model/")]
    if not model_files:
        gaps.append("no model file under model/")
    for required in (
        "env/requirements.txt",
        "data/golden_inputs.parquet",
        "data/golden_outputs.parquet",
    ):
        if required not in files:
            gaps.append(f"{required} is not in the bundle")
    return _result(
        "artifacts",
        "Artifacts packaged and versioned",
        gaps,
        f"{spec.model.flavor} model {spec.model.version_tag}, {len(model_files)} model file(s), env lock, golden set",
    )


def repro(spec: HandoffSpec, files: set[str]) -> CheckResult:
    t = spec.training
    gaps = _todo([("training.command", t.command), ("training.code_path", t.code_path)])
    if t.seed is None:
        gaps.append("training.seed is not set")
    if not t.data:
        gaps.append("training.data lists no data files")
    elif any(d.sha256 is None for d in t.data):
        gaps.append("a training.data file has no sha256 digest")
    if t.code_path and not any(f.startswith("code/") for f in files):
        gaps.append("training code is not in the bundle (code/)")
    return _result(
        "repro",
        "Repro steps present",
        gaps,
        f"`{t.command}` with seed {t.seed}, {len(t.data)} data digest(s)",
    )


def contracts(spec: HandoffSpec, files: set[str]) -> CheckResult:
    undocumented = [n for n, f in spec.data_contract.fields.items() if is_todo(f.description)]
    gaps = []
    if undocumented:
        gaps.append(f"fields without a description: {', '.join(undocumented[:5])}")
    if not spec.api.examples:
        gaps.append("api.examples has no request example")
    if spec.api.latency_budget is None:
        gaps.append("api.latency_budget is not set")
    fields = len(spec.data_contract.fields)
    return _result(
        "contracts",
        "Data and API contracts documented with examples",
        gaps,
        f"{fields} fields documented, {len(spec.api.examples)} request example(s)",
    )


def acceptance(spec: HandoffSpec, files: set[str]) -> CheckResult:
    a = spec.acceptance
    gaps = []
    if not any(c.primary for c in a.criteria):
        gaps.append("acceptance.criteria has no primary criterion")
    if not a.guardrails:
        gaps.append("acceptance.guardrails is empty")
    return _result(
        "acceptance",
        "Acceptance metrics and guardrails defined",
        gaps,
        f"{len(a.criteria)} criteria, {len(a.guardrails)} guardrail(s)",
    )


def monitoring(spec: HandoffSpec, files: set[str]) -> CheckResult:
    m = spec.monitoring
    gaps = []
    if not m.slos:
        gaps.append("monitoring.slos is empty")
    if not m.drift:
        gaps.append("monitoring.drift has no drift rule")
    if not m.alerts:
        gaps.append("monitoring.alerts is empty")
    return _result(
        "monitoring",
        "Monitoring and alerts specified",
        gaps,
        f"{len(m.slos)} SLO(s), {len(m.drift)} drift rule(s), {len(m.alerts)} alert(s)",
    )


def rollback_oncall(spec: HandoffSpec, files: set[str]) -> CheckResult:
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
    return _result(
        "rollback_oncall",
        "Rollback plan and on-call ownership documented",
        gaps,
        f"{len(spec.rollback.triggers)} rollback trigger(s), on-call {rotation}",
    )


def model_card_privacy(spec: HandoffSpec, files: set[str]) -> CheckResult:
    card = spec.model_card
    gaps = _todo(
        [
            ("purpose", spec.purpose),
            ("model_card.intended_use", card.intended_use),
            ("model_card.limitations", card.limitations),
            ("model_card.known_biases", card.known_biases),
            ("model_card.mitigations", card.mitigations),
            ("model_card.training_data", card.training_data),
            ("privacy.notes", spec.privacy.notes),
            ("privacy.retention", spec.privacy.retention),
            ("security.notes", spec.security.notes),
        ]
    )
    declared_pii = {n for n, f in spec.data_contract.fields.items() if f.pii}
    unlisted = sorted(declared_pii - set(spec.privacy.pii_fields))
    if unlisted:
        gaps.append(f"fields marked pii but not in privacy.pii_fields: {', '.join(unlisted)}")
    return _result(
        "model_card_privacy",
        "Model card and privacy/security notes completed",
        gaps,
        f"model card complete, {len(spec.privacy.pii_fields)} PII field(s) declared",
    )


def signoffs(spec: HandoffSpec, files: set[str]) -> CheckResult:
    have = {s.role for s in spec.signoffs}
    names = {"pm": "PM", "ds": "DS", "eng": "Eng"}
    gaps = [f"no sign-off from {names[r]}" for r in ("pm", "ds", "eng") if r not in have]
    detail = ", ".join(f"{names[s.role]} {s.name} {s.date}" for s in spec.signoffs)
    return _result("signoffs", "Sign-offs from PM, DS and Eng", gaps, detail)


def leakage(spec: HandoffSpec, files: set[str]) -> CheckResult:
    """Pack-time leakage findings (data_contract.leakage): warnings with evidence, never failures."""
    title = "No signs of leakage in training data"
    record = spec.data_contract.leakage
    if record is None or not record.checked:
        return CheckResult(
            "leakage",
            title,
            "skipped",
            "no leakage check ran: list train and test/eval files under training.data",
        )
    if record.findings:
        shown = "; ".join(
            f"{f.check} {f.field or ''} (score {f.score}): {f.detail}".replace("  ", " ")
            for f in record.findings[:3]
        )
        more = f" (+{len(record.findings) - 3} more)" if len(record.findings) > 3 else ""
        return CheckResult("leakage", title, "warn", shown + more)
    return CheckResult("leakage", title, "pass", "checked: " + "; ".join(record.checked))


CHECKLIST: tuple[SpecCheck, ...] = (
    artifacts,
    repro,
    contracts,
    acceptance,
    monitoring,
    rollback_oncall,
    model_card_privacy,
    signoffs,
    leakage,
)


def run_checklist(spec: HandoffSpec, files: set[str]) -> list[CheckResult]:
    return [check(spec, files) for check in CHECKLIST]

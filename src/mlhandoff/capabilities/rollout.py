"""The rollout capability: the spec's rollout rendered for Kubernetes (``docs/deploy/rollout.yaml``:
an Argo Rollouts ``Rollout`` and its analysis templates), a verify check that the manifests
still say what the spec says, a checklist line, and the README's rollout section."""

from __future__ import annotations

from mlhandoff.bundle.bundle import Bundle
from mlhandoff.capability import (
    Capability,
    Check,
    ChecklistLine,
    HandoffView,
    Outcome,
    PackContext,
    Step,
)
from mlhandoff.rollout.argo import baseline_version, render_manifests
from mlhandoff.spec.models import HandoffSpec

MANIFESTS = "docs/deploy/rollout.yaml"


def _renders(spec: HandoffSpec) -> bool:
    return spec.rollout.strategy == "canary" and bool(spec.rollout.steps)


def write_manifests(ctx: PackContext) -> None:
    if not _renders(ctx.spec):
        return
    path = ctx.root / MANIFESTS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_manifests(ctx.spec), encoding="utf-8")


def manifests_current(bundle: Bundle) -> Outcome:
    if not _renders(bundle.spec):
        return "skipped", "no canary steps in the spec: nothing rendered"
    if MANIFESTS not in bundle.files:
        return "fail", f"{MANIFESTS} is missing: repack the bundle"
    written = (bundle.root / MANIFESTS).read_text(encoding="utf-8")
    if written != render_manifests(bundle.spec):
        return "fail", f"{MANIFESTS} no longer matches the spec's rollout: repack the bundle"
    return "pass", f"{MANIFESTS}: {len(bundle.spec.rollout.steps)} step(s), rules and triggers"


def rules_line(view: HandoffView) -> Outcome:
    spec = view.spec
    gaps = []
    if not spec.rollout.steps:
        gaps.append("rollout.steps is empty")
    if not spec.rollout.graduate_when:
        gaps.append("rollout.graduate_when has no rule")
    if not spec.rollback.triggers:
        gaps.append("rollback.triggers has no trigger")
    if spec.rollout.strategy == "canary" and not spec.rollback.previous_version:
        gaps.append("rollback.previous_version is not set (the baseline to compare with)")
    critical = sum(r.critical for r in spec.rollout.graduate_when)
    return (
        ("missing", "; ".join(gaps))
        if gaps
        else (
            "pass",
            f"{len(spec.rollout.steps)} step(s), {len(spec.rollout.graduate_when)} rule(s) "
            f"({critical} critical), {len(spec.rollback.triggers)} trigger(s)",
        )
    )


def readme(view: HandoffView) -> str:
    spec = view.spec
    rollout, rollback = spec.rollout, spec.rollback
    name = view.root.name if view.root.name.startswith(spec.name) else f"{spec.name}-{spec.version}"
    lines = ["## Rollout and rollback", ""]
    steps = " → ".join(
        f"{s.traffic_percent:g}% for at least {s.duration}"
        + (f" ({s.min_samples:,} requests per arm)" if s.min_samples else "")
        for s in rollout.steps
    )
    strategy = rollout.strategy.replace("_", " ")
    key = f", sticky by `{rollout.sticky_key}`" if rollout.sticky_key else ""
    lines.append(f"Strategy: {strategy}{key}" + (f": {steps}." if steps else "."))
    baseline = baseline_version(spec) if rollback.previous_version else None
    if baseline:
        lines.append(f"Baseline: version {baseline}.")
    if rollout.graduate_when:
        lines += [
            "",
            f"A step graduates when every rule is proven (anytime-valid, alpha {rollout.alpha:g}) "
            f"and the canary score reaches {rollout.pass_score:g}:",
            "",
        ]
        lines += [f"- {r.describe()}" for r in rollout.graduate_when]
    if rollback.triggers:
        lines += ["", "Roll back when a trigger fires:", ""]
        lines += [f"- **{t.name}**: `{t.describe()}`" for t in rollback.triggers]
    if rollback.plan:
        lines += ["", f"Rollback plan: {rollback.plan}"]
    lines += [
        "",
        "```",
        f"mlhandoff rollout plan {name} --traffic-rps <req/s>      # samples and step durations",
        f"mlhandoff serve {name} --baseline <baseline bundle> --log-dir logs/ "
        "--admin-token-env ADMIN_TOKEN   # the first step's share to this version",
        f"mlhandoff rollout judge {name} --logs logs/ --apply <server URL> "
        "--token-env ADMIN_TOKEN   # 0 graduate, 1 roll back, 4 continue; sets the next weight",
        "mlhandoff rollback <server URL> --token-env ADMIN_TOKEN   # weight 0 in one call",
        "```",
    ]
    if MANIFESTS in view.files:
        lines.append(f"\nArgo Rollouts manifests: `{MANIFESTS}`.")
    return "\n".join(lines) + "\n"


CAPABILITY = Capability(
    "rollout",
    steps=(Step("rollout", "rendering the rollout manifests", write_manifests),),
    checks=(Check("rollout_manifests", "Rollout manifests match the spec", manifests_current),),
    checklist=(
        ChecklistLine("rollout_rules", "Rollout steps, rules and triggers defined", rules_line),
    ),
    readme=readme,
)

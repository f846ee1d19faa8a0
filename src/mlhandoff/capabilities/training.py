"""How the model was made: the training code (copied), its git state, the data digests, and
the record ``mlhandoff repro`` leaves after re-running it all in a clean environment."""

from __future__ import annotations

import json

from mlhandoff.bundle import layout
from mlhandoff.bundle.bundle import Bundle
from mlhandoff.bundle.record import DataDigest
from mlhandoff.capabilities.files import MAX_CODE_BYTES, collect, copy_into
from mlhandoff.capabilities.provenance import data_digest, git_state
from mlhandoff.capabilities.secrets import scan_for_secrets
from mlhandoff.capability import (
    Capability,
    Check,
    ChecklistLine,
    HandoffView,
    Outcome,
    PackContext,
    Step,
    outcome,
)
from mlhandoff.checks import Status
from mlhandoff.errors import InputError
from mlhandoff.spec.models import is_todo


def copy_code(ctx: PackContext) -> None:
    rel = ctx.spec.training.code_path
    if not rel:
        return
    found = collect(
        ctx.base,
        rel,
        "training.code_path",
        max_bytes=MAX_CODE_BYTES,
        allow_outside=ctx.allow_outside,
    )
    state = git_state(found.root)
    copy_into(found, ctx.root / layout.CODE_DIR, ctx.on_bytes)
    scan_for_secrets(ctx.root, layout.CODE_DIR)
    ctx.training.code_path = f"{layout.CODE_DIR}/{found.root.name}"
    ctx.training.git_commit, ctx.training.git_dirty = state.commit, state.dirty


def hash_data(ctx: PackContext) -> None:
    if ctx.spec.training.data:
        ctx.training.data_root = str(ctx.base.resolve())
    for i, entry in enumerate(ctx.spec.training.data):
        field = f"training.data[{i}].path"
        digest = data_digest(ctx.base, entry.path, field, allow_outside=ctx.allow_outside)
        if entry.sha256 is not None and entry.sha256 != digest:
            raise InputError(
                f"training.data[{i}]: {entry.path} has sha256 {digest}, not the {entry.sha256} "
                "the spec declares; the data changed since the digest was written down"
            )
        ctx.training.data.append(DataDigest(path=entry.path, role=entry.role, sha256=digest))


def repro_steps(view: HandoffView) -> Outcome:
    t = view.spec.training
    gaps = [
        f"{name} is not filled in"
        for name, value in (("training.command", t.command), ("training.code_path", t.code_path))
        if is_todo(value)
    ]
    if t.seed is None:
        gaps.append("training.seed is not set")
    if not t.data:
        gaps.append("training.data lists no data files")
    elif len(view.record.training.data) < len(t.data):
        gaps.append("a training.data file has no sha256 digest")
    if t.code_path and not any(f.startswith(layout.CODE_DIR + "/") for f in view.files):
        gaps.append("training code is not in the bundle (code/)")
    detail = f"`{t.command}` with seed {t.seed}, {len(t.data)} data digest(s)"
    if not gaps and view.record.model.from_memory:
        return "warn", (
            f"{detail}; but the model was packed from memory (a notebook): nothing shows this "
            "command trains it — `mlhandoff repro --retrain` checks that it does"
        )
    return outcome(gaps, detail)


def repro_validated(bundle: Bundle) -> Outcome:
    """Read the record ``mlhandoff repro`` leaves next to the bundle (never inside: immutable)."""
    path = layout.repro_record(bundle.root)
    if not path.exists():
        return (
            "skipped",
            f"not run yet: `mlhandoff repro {bundle.root}` records its result in {path.name}",
        )
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return "fail", f"{path.name} is unreadable: {exc}"
    if not isinstance(record, dict):
        return "fail", f"{path.name} is not a repro record"
    if record.get("bundle_digest") != bundle.digest:
        return "skipped", f"{path.name} is for another bundle digest"
    status: Status = "pass" if record.get("ok") else "fail"
    frictions = record.get("frictions") or []
    detail = f"reproduced in {record.get('wall_s', 0):.0f}s in a fresh venv"
    if record.get("tests"):
        detail += f"; bundle tests: {record['tests']}"
    if frictions:
        detail += "; friction: " + "; ".join(frictions[:3])
    return status, detail


CAPABILITY = Capability(
    "training",
    steps=(
        Step("copy_code", "copying training code", copy_code),
        Step("hash_data", "hashing training data", hash_data),
    ),
    checks=(Check("repro_validated", "Repro steps validated (mlhandoff repro)", repro_validated),),
    checklist=(ChecklistLine("repro", "Repro steps present", repro_steps),),
)

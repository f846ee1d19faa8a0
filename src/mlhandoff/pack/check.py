"""``mlhandoff check``: the handoff checklist against a spec before anything is packed.

The checklist lines run on a view of the bundle pack would build from this spec (the files it
would write, the record it would make for the files that exist), so the answer is the README's
checklist minus what only packing can measure (leakage, acceptance numbers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import mlhandoff.capabilities  # noqa: F401  (registers the built-in capabilities)
from mlhandoff.bundle import layout
from mlhandoff.bundle.record import DataDigest, ModelRecord, PackRecord, TrainingRecord
from mlhandoff.capability import HandoffView, checklist, registered
from mlhandoff.checks import CheckResult
from mlhandoff.errors import HandoffError
from mlhandoff.flavors import flavor_for_path
from mlhandoff.spec.loader import load_spec
from mlhandoff.spec.todos import Todo, find_todos_in

_UNKNOWN_DIGEST = "0" * 64  # a file that exists is digested at pack


@dataclass
class SpecCheck:
    spec: str
    todos: list[Todo] = field(default_factory=list)
    checklist: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.todos and not any(r.failed for r in self.checklist)

    def to_dict(self) -> dict[str, object]:
        return {
            "spec": self.spec,
            "ok": self.ok,
            "todos": [{"path": t.path, "line": t.line, "text": t.text} for t in self.todos],
            "checklist": [
                {"id": r.id, "title": r.title, "status": r.status, "detail": r.detail}
                for r in self.checklist
            ],
        }


def check_spec(path: str | Path) -> SpecCheck:
    """Every TODO (with its line) and every checklist line's status, for a spec on disk."""
    path = Path(path)
    spec = load_spec(path)
    base = path.resolve().parent
    files = {layout.SPEC, layout.PACK_RECORD, *(f for cap in registered() for f in cap.writes)}
    model_source = base / spec.model.path
    flavor = spec.model.flavor
    if model_source.exists():
        files.add(f"{layout.MODEL_DIR}/{model_source.name}")
        if flavor is None:
            try:
                flavor = flavor_for_path(model_source)  # type: ignore[assignment]
            except HandoffError:
                flavor = None
    code = spec.training.code_path
    if code and (base / code).exists():
        files.add(f"{layout.CODE_DIR}/{Path(code).name}")
    record = PackRecord(
        model=ModelRecord(
            path=f"{layout.MODEL_DIR}/{model_source.name}", flavor=flavor or "python_function"
        ),
        training=TrainingRecord(
            code_path=f"{layout.CODE_DIR}/{Path(code).name}" if code else None,
            data=[
                DataDigest(path=d.path, role=d.role, sha256=d.sha256 or _UNKNOWN_DIGEST)
                for d in spec.training.data
                if (base / d.path).exists()
            ],
        ),
        golden_rows=spec.golden.rows,
    )
    view = HandoffView(spec, base, frozenset(files), record, lambda rel: None)
    return SpecCheck(str(path), find_todos_in(path), checklist(view))

"""The capability registry: what ``pack`` builds and ``verify`` checks, one module per capability.

A capability (the model, the training provenance, the golden set, acceptance, ...) is a
:class:`Capability` holding its pack steps, its verify checks, its checklist lines and, when
it has one, its block of the handoff README. ``pack`` runs every registered step in order;
``verify`` runs every registered check (skipping those whose dependencies did not pass) and
every checklist line; the README lists the same checklist lines. Adding a capability is adding
a module and registering it, with no edit anywhere else::

    register(Capability("notes", steps=(Step("notes", "writing notes", write_notes),),
                        checks=(Check("notes", "Notes are readable", read_notes),)))

The built-in capabilities are registered, in one visible order, by ``mlhandoff.capabilities``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from mlhandoff.bundle.bundle import Bundle
from mlhandoff.bundle.record import CompiledRecord, ModelRecord, PackRecord, TrainingRecord
from mlhandoff.checks import CheckResult, Status
from mlhandoff.errors import BundleError
from mlhandoff.flavors.base import Predictor
from mlhandoff.spec.models import HandoffSpec

#: What a check or checklist line found: its status and a one-line detail.
Outcome = tuple[Status, str]


@dataclass
class PackContext:
    """Everything a pack step reads, and what earlier steps made for later ones.

    ``spec`` is the spec as the user wrote it (defaults filled): steps never change it. What
    they resolve goes into ``model`` / ``training`` (written to ``reports/pack.json``) and
    ``measured`` (rendered into the docs); the files they add go under ``root``.
    """

    spec: HandoffSpec
    base: Path
    root: Path
    sample: pa.Table
    model_object: object | None = None
    allow_outside: bool = False
    on_bytes: Callable[[int], None] | None = None
    #: Record artifact hashes in env/requirements.txt (network, or offline from ``wheels``).
    lock_hashes: bool = False
    wheels: Path | None = None
    model: ModelRecord | None = None
    training: TrainingRecord = field(default_factory=TrainingRecord)
    predictor: Predictor | None = None
    #: The form the server will run when it is not ``predictor`` (a compiled model).
    serving_predictor: Predictor | None = None
    golden_outputs: pa.Table | None = None
    compiled: CompiledRecord | None = None
    measured: dict[str, Any] = field(default_factory=dict)
    #: Distributions the bundle's environment must pin beyond the flavor's (e.g. treelite).
    packages: list[str] = field(default_factory=list)
    #: One-line notices for the person packing (what pack chose and why); not errors.
    notices: list[str] = field(default_factory=list)

    def require_predictor(self) -> Predictor:
        if self.predictor is None:
            raise BundleError("a pack step needs the model, but no step has loaded it yet")
        return self.predictor

    def record(self) -> PackRecord:
        if self.model is None:
            raise BundleError("no pack step wrote the model")
        golden = self.golden_outputs.num_rows if self.golden_outputs is not None else 0
        return PackRecord(
            model=self.model, training=self.training, golden_rows=golden, compiled=self.compiled
        )


@dataclass(frozen=True)
class HandoffView:
    """A bundle's contents as checklist lines and README blocks see them.

    The same view exists at pack (over the staging directory, before docs are rendered) and
    at verify (over the opened bundle), so the README shows what ``verify`` re-checks.
    """

    spec: HandoffSpec
    root: Path
    files: frozenset[str]
    record: PackRecord
    #: A JSON report of the bundle by relative path, or None when there is none.
    report: Callable[[str], Any | None]

    @classmethod
    def of_bundle(cls, bundle: Bundle) -> HandoffView:
        return cls(bundle.spec, bundle.root, bundle.files, bundle.record, bundle.report)

    @classmethod
    def of_directory(cls, spec: HandoffSpec, root: Path, record: PackRecord) -> HandoffView:
        files = frozenset(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())

        def report(rel: str) -> Any | None:
            if rel not in files:
                return None
            return json.loads((root / rel).read_text(encoding="utf-8"))

        return cls(spec, root, files, record, report)


@dataclass(frozen=True)
class Step:
    """One pack step: adds files under ``context.root`` and records what it resolved."""

    id: str
    title: str
    run: Callable[[PackContext], None]


@dataclass(frozen=True)
class Check:
    """One verify line, run on a bundle whose integrity passed."""

    id: str
    title: str
    run: Callable[[Bundle], Outcome]
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChecklistLine:
    """One promise of the handoff checklist, checked against the spec and the bundle's files."""

    id: str
    title: str
    run: Callable[[HandoffView], Outcome]

    def result(self, view: HandoffView) -> CheckResult:
        status, detail = self.run(view)
        return CheckResult(self.id, self.title, status, detail)


@dataclass(frozen=True)
class Capability:
    name: str
    steps: tuple[Step, ...] = ()
    checks: tuple[Check, ...] = ()
    checklist: tuple[ChecklistLine, ...] = ()
    #: Markdown for the handoff README (a section of its own), from the same view.
    readme: Callable[[HandoffView], str] | None = None
    #: Files its steps always write: what ``mlhandoff check`` expects before anything is packed.
    writes: tuple[str, ...] = ()


_REGISTRY: dict[str, Capability] = {}


def register(capability: Capability) -> Capability:
    """Add a capability after those already registered; its ids must be new."""
    if capability.name in _REGISTRY:
        raise ValueError(f"a capability named '{capability.name}' is already registered")
    taken = {i for cap in _REGISTRY.values() for i in _ids(cap)}
    clash = sorted(taken & set(_ids(capability)))
    if clash:
        raise ValueError(f"check ids already registered: {', '.join(clash)}")
    _REGISTRY[capability.name] = capability
    return capability


def _ids(capability: Capability) -> list[str]:
    return [c.id for c in capability.checks] + [c.id for c in capability.checklist]


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


@contextmanager
def plugged(capability: Capability) -> Iterator[Capability]:
    """Register ``capability`` for the duration of a ``with`` block (tests, one-off runs)."""
    register(capability)
    try:
        yield capability
    finally:
        unregister(capability.name)


def registered() -> tuple[Capability, ...]:
    return tuple(_REGISTRY.values())


def checklist(view: HandoffView) -> list[CheckResult]:
    """Every registered checklist line, in registration order."""
    return [line.result(view) for cap in registered() for line in cap.checklist]


def outcome(gaps: list[str], ok_detail: str, *, gap_status: Status = "missing") -> Outcome:
    """``missing`` (or ``gap_status``) listing every gap, else ``pass`` with ``ok_detail``."""
    return (gap_status, "; ".join(gaps)) if gaps else ("pass", ok_detail)

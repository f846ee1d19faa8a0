"""The tests a bundle carries (``tests/``): golden replay through the library, the contract's
edge cases, and the full path through a live server, for ``pytest`` in the locked environment.

The edge cases are fixed at pack (``tests/contract_cases.json``): each numeric bound just
inside and just outside, nulls, a known and an unseen category; the test module itself is
static (``capabilities/bundled_tests/``) and reads everything else from the bundle.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from mlhandoff.capability import Capability, ChecklistLine, HandoffView, Outcome, PackContext, Step
from mlhandoff.spec.models import FieldSpec

TESTS_DIR = "tests"
CASES = f"{TESTS_DIR}/contract_cases.json"
_SOURCE = Path(__file__).parent / "bundled_tests"
_FILES = ("test_handoff.py", "pytest.ini")
_UNSEEN = "__mlhandoff_unseen__"


def write_tests(ctx: PackContext) -> None:
    target = ctx.root / TESTS_DIR
    target.mkdir()
    for name in _FILES:
        shutil.copyfile(_SOURCE / name, target / name)
    cases = [
        case
        for name, spec in ctx.spec.data_contract.fields.items()
        if name in ctx.sample.column_names
        for case in edge_cases(name, spec)
    ]
    (ctx.root / CASES).write_text(json.dumps(cases, indent=1) + "\n", encoding="utf-8")


def edge_cases(name: str, f: FieldSpec) -> list[dict[str, Any]]:
    """Values at and across each of the field's rules, each with the verdict the contract owes."""
    cases: list[dict[str, Any]] = []

    def case(rule: str, value: Any, accepted: bool) -> None:
        cases.append({"id": f"{name}-{rule}", "field": name, "value": value, "accepted": accepted})

    if f.type in ("int", "float"):
        for side, bound, exclusive in (
            ("min", f.min, f.min_exclusive),
            ("max", f.max, f.max_exclusive),
        ):
            if bound is None:
                continue
            outward = -math.inf if side == "min" else math.inf
            if f.type == "int":
                step = -1 if side == "min" else 1
                edge = math.ceil(bound) if side == "min" else math.floor(bound)
                if edge == bound and exclusive:
                    edge -= step
                values: tuple[Any, ...] = (int(edge), int(edge + step))
            else:
                inside = float(np.nextafter(bound, -outward)) if exclusive else float(bound)
                beyond = float(bound) if exclusive else float(np.nextafter(bound, outward))
                values = (inside, beyond)
            case(f"{side}-edge", values[0], _in_range(values[0], f))
            case(f"{side}-beyond", values[1], False)
    if f.type in ("category", "string") and f.domain:
        case("domain-known", f.domain[0], True)
        case("domain-unseen", _UNSEEN, f.unseen != "reject")
    if f.type != "array":
        case("null", None, f.nullable)
    return cases


def _in_range(value: float, f: FieldSpec) -> bool:
    """Whether ``value`` satisfies both bounds (the other bound may exclude an edge too)."""
    above = f.min is None or (value > f.min if f.min_exclusive else value >= f.min)
    below = f.max is None or (value < f.max if f.max_exclusive else value <= f.max)
    return above and below


def bundle_tests(view: HandoffView) -> Outcome:
    missing = [f"{TESTS_DIR}/{n}" for n in _FILES if f"{TESTS_DIR}/{n}" not in view.files]
    if CASES not in view.files:
        missing.append(CASES)
    if missing:
        return "missing", "not in the bundle: " + ", ".join(missing)
    cases = view.report(CASES)
    counted = f"{len(cases)} contract edge cases, " if cases is not None else ""
    return (
        "pass",
        f"golden replay, {counted}live server; run: PYTHONDONTWRITEBYTECODE=1 python -m pytest "
        f"-p no:cacheprovider <bundle>/{TESTS_DIR}",
    )


CAPABILITY = Capability(
    "bundle_tests",
    writes=(*(f"{TESTS_DIR}/{n}" for n in _FILES), CASES),
    steps=(Step("bundle_tests", "writing the bundle's own tests", write_tests),),
    checklist=(ChecklistLine("bundle_tests", "Bundle carries its own tests", bundle_tests),),
)

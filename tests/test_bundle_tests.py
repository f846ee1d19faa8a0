"""The tests a bundle carries: their edge cases are right, and they run (and fail) from the bundle."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

import mlhandoff
from mlhandoff.capabilities.bundle_tests import edge_cases
from mlhandoff.contract.validate import CompiledContract
from mlhandoff.spec.models import DataContract, FieldSpec

_BOUND = st.one_of(st.none(), st.integers(-1000, 1000), st.floats(-1e6, 1e6, allow_nan=False))


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(["int", "float"]),
    low=_BOUND,
    high=_BOUND,
    low_exclusive=st.booleans(),
    high_exclusive=st.booleans(),
    nullable=st.booleans(),
)
def test_numeric_edge_cases_get_the_verdict_the_validator_gives(
    kind: str, low, high, low_exclusive: bool, high_exclusive: bool, nullable: bool
) -> None:
    if low is not None and high is not None and low >= high:
        return
    spec = FieldSpec(
        type=kind,
        min=low,
        max=high,
        min_exclusive=low_exclusive,
        max_exclusive=high_exclusive,
        nullable=nullable,
    )
    contract = CompiledContract(DataContract(fields={"f": spec}))
    arrow = pa.int64() if kind == "int" else pa.float64()
    for case in edge_cases("f", spec):
        report = contract.validate(pa.table({"f": pa.array([case["value"]], type=arrow)}))
        assert report.ok == case["accepted"], (case, [v.message for v in report.violations])


def test_category_edge_cases() -> None:
    for unseen, accepted in (("reject", False), ("allow", True), ({"bucket": "a"}, True)):
        spec = FieldSpec(type="category", domain=["a", "b"], unseen=unseen)
        contract = CompiledContract(DataContract(fields={"c": spec}))
        cases = {c["id"]: c for c in edge_cases("c", spec)}
        assert cases["c-domain-unseen"]["accepted"] is accepted
        for case in cases.values():
            report = contract.validate(pa.table({"c": pa.array([case["value"]], pa.string())}))
            assert report.ok == case["accepted"], case


def _pytest(tests: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tests.parent.parent,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def test_the_bundle_runs_its_own_tests(example_bundle: Path, tmp_path: Path) -> None:
    bundle = tmp_path / example_bundle.name
    shutil.copytree(example_bundle, bundle)
    cases = json.loads((bundle / "tests" / "contract_cases.json").read_text())
    assert {"amount_eur-min-edge", "amount_eur-min-beyond", "country-domain-unseen"} <= {
        c["id"] for c in cases
    }
    done = _pytest(bundle / "tests")
    assert done.returncode == 0, done.stdout[-3000:]
    assert f"{len(cases) + 2} passed" in done.stdout  # cases + golden replay + live server
    assert mlhandoff.verify(bundle).results[0].status == "pass"  # nothing written inside
    lines = {r.id: r for r in mlhandoff.verify(bundle).results}
    assert lines["bundle_tests"].status == "pass"

    (bundle / "docs" / "README.md").write_text("tampered")
    failed = _pytest(bundle / "tests")
    assert failed.returncode == 1 and "IntegrityError" in failed.stdout

"""A capability plugs into pack, verify, the checklist and the README from its own module."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import mlhandoff
from mlhandoff.bundle.bundle import Bundle
from mlhandoff.capability import (
    Capability,
    Check,
    ChecklistLine,
    HandoffView,
    Outcome,
    PackContext,
    Step,
    plugged,
    register,
    registered,
)

_NOTES = "reports/notes.json"


def _write_notes(ctx: PackContext) -> None:
    # what earlier steps made is there: the model is loaded and the golden set computed
    assert ctx.predictor is not None and ctx.golden_outputs is not None
    path = ctx.root / _NOTES
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"golden_rows": ctx.golden_outputs.num_rows}))


def _read_notes(bundle: Bundle) -> Outcome:
    notes = bundle.report(_NOTES)
    if notes is None:
        return "missing", "no notes"
    ok = notes["golden_rows"] == bundle.record.golden_rows
    return ("pass" if ok else "fail"), f"{notes['golden_rows']} golden rows noted"


def _always_fails(bundle: Bundle) -> Outcome:
    return "fail", "on purpose"


def _noted(view: HandoffView) -> Outcome:
    return ("pass", "notes packed") if _NOTES in view.files else ("missing", "no notes")


NOTES = Capability(
    "notes",
    steps=(Step("notes", "writing notes", _write_notes),),
    checks=(
        Check("notes_readable", "Notes agree with the pack record", _read_notes),
        Check("gate", "A gate that fails", _always_fails),
        Check("behind_gate", "Runs only after the gate", _read_notes, depends_on=("gate",)),
    ),
    checklist=(ChecklistLine("notes_packed", "Notes are in the bundle", _noted),),
    readme=lambda view: f"## Notes\nThis bundle carries {_NOTES}.",
)


@pytest.fixture(scope="module")
def noted_bundle(example_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    with plugged(NOTES):
        out = tmp_path_factory.mktemp("dist")
        return mlhandoff.pack(spec=example_dir / "handoff.yaml", out=out).path


def test_a_plugged_step_writes_into_the_hashed_bundle(noted_bundle: Path) -> None:
    manifest = json.loads((noted_bundle / "MANIFEST.json").read_text())
    assert _NOTES in manifest["files"]
    readme = (noted_bundle / "docs" / "README.md").read_text()
    assert "## Notes\nThis bundle carries reports/notes.json." in readme
    assert "| Notes are in the bundle | ✅ pass |" in readme  # the checklist line, at pack


def test_plugged_checks_run_in_verify_with_their_dependencies(noted_bundle: Path) -> None:
    with plugged(NOTES):
        by_id = {r.id: r for r in mlhandoff.verify(noted_bundle).results}
    assert by_id["notes_readable"].status == "pass"
    assert by_id["notes_packed"].status == "pass"
    assert by_id["gate"].status == "fail"
    assert by_id["behind_gate"].status == "skipped" and "gate" in by_id["behind_gate"].detail
    # unplugged, verify no longer knows the capability
    ids = {r.id for r in mlhandoff.verify(noted_bundle).results}
    assert not ids & {"notes_readable", "gate", "notes_packed"}
    assert "notes" not in {c.name for c in registered()}


def test_a_plugged_check_sees_a_missing_file(noted_bundle: Path, tmp_path: Path) -> None:
    plain = mlhandoff.open_bundle(noted_bundle)
    assert _read_notes(plain)[0] == "pass"
    copy = tmp_path / noted_bundle.name
    shutil.copytree(noted_bundle, copy)
    (copy / _NOTES).unlink()
    report = mlhandoff.verify(copy)
    assert not report.ok and "missing: reports/notes.json" in report.results[0].detail


def test_names_and_ids_are_unique() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register(Capability("model"))
    clash = Capability("other", checks=(Check("golden_replay", "again", _read_notes),))
    with pytest.raises(ValueError, match="golden_replay"):
        register(clash)
    assert "other" not in {c.name for c in registered()}

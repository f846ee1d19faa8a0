"""``mlhandoff check``: TODOs with their lines and the checklist before pack; pack's summary."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

import mlhandoff
from mlhandoff.cli import app
from mlhandoff.spec.todos import find_todos

runner = CliRunner()


def _init(example_dir: Path, out: Path) -> None:
    work = example_dir / "work"
    args = ["init", "--model", str(work / "model.skops"), "--sample", str(work / "sample.parquet")]
    result = runner.invoke(app, [*args, "--label", "is_fraud", "--out", str(out)])
    assert result.exit_code == 0, result.output


def test_check_lists_every_todo_of_a_fresh_spec_with_its_line(
    example_dir: Path, tmp_path: Path
) -> None:
    spec = example_dir / f"{tmp_path.name}-check.yaml"
    _init(example_dir, spec)
    result = runner.invoke(app, ["check", str(spec), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    lines = spec.read_text().splitlines()
    by_path = {t["path"]: t for t in report["todos"]}
    for path in ("purpose", "model_card.ethical_considerations", "rollback.plan"):
        todo = by_path[path]
        assert "TODO" in lines[todo["line"] - 1] and path.split(".")[-1] in lines[todo["line"] - 1]
    assert by_path["training.code_path"]["text"].startswith(
        "TODO: training code"
    )  # a null + comment
    statuses = {c["id"]: c["status"] for c in report["checklist"]}
    assert statuses["artifacts"] == "pass" and statuses["model_card_privacy"] == "missing"
    assert "leakage" in statuses  # only packing can run it: skipped here
    text = runner.invoke(app, ["check", str(spec)]).output
    assert f"{spec}:{by_path['purpose']['line']}: purpose" in text.replace("\n", "")


def test_check_passes_on_the_complete_example(example_dir: Path) -> None:
    result = runner.invoke(app, ["check", str(example_dir / "handoff.yaml")])
    assert result.exit_code == 0, result.output
    assert "nothing left to fill in" in result.output


def test_check_on_a_broken_spec_is_a_spec_error(tmp_path: Path) -> None:
    spec = tmp_path / "handoff.yaml"
    spec.write_text("name: x\nversion: 1\nmodel: {path: m.skops}\n")
    result = runner.invoke(app, ["check", str(spec)])
    assert result.exit_code == 2 and "spec_invalid" in result.output


def test_pack_says_how_many_todos_remain(example_dir: Path, tmp_path: Path) -> None:
    spec = example_dir / f"{tmp_path.name}-pack.yaml"
    _init(example_dir, spec)
    trusted = mlhandoff.load_spec(example_dir / "handoff.yaml").security.trusted_types
    spec.write_text(
        spec.read_text().replace("trusted_types: []", f"trusted_types: {json.dumps(trusted)}")
    )
    result = mlhandoff.pack(spec=spec, out=tmp_path / "dist")
    assert len(result.todos) == len(find_todos(spec.read_text())) > 5
    assert {r.id for r in result.failing} >= {"model_card_privacy", "rollback_oncall"}
    out = runner.invoke(app, ["pack", str(spec), "--out", str(tmp_path / "d2"), "--json"])
    summary = json.loads(out.output)
    assert summary["todos"] == len(result.todos)
    assert "model_card_privacy" in summary["failing_checklist"]


_TEXT = st.text(alphabet="abcdefgh ", min_size=1, max_size=20).map(str.strip).filter(bool)


@given(values=st.lists(st.one_of(_TEXT, _TEXT.map(lambda s: "TODO: " + s)), min_size=1, max_size=8))
def test_todo_strings_are_found_at_their_lines(values: list[str]) -> None:
    text = "".join(f"k{i}: {json.dumps(v)}\n" for i, v in enumerate(values))
    found = find_todos(text)
    expected = [(f"k{i}", i + 1) for i, v in enumerate(values) if v.startswith("TODO")]
    assert [(t.path, t.line) for t in found] == expected


def test_aliases_are_walked_once() -> None:
    text = "a: &x [TODO, TODO]\n" + "".join(f"b{i}: *x\n" for i in range(50))
    assert [t.line for t in find_todos(text)] == [1, 1]

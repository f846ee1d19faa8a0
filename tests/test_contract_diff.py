"""Contract diff: which changes break data that passed before."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from mlhandoff.cli import app
from mlhandoff.contract import diff_contracts
from mlhandoff.spec.models import DataContract

OLD = {
    "label": "y",
    "fields": {
        "amount": {"type": "float", "min": 0, "max": 100, "unit": "EUR"},
        "country": {"type": "category", "domain": ["DE", "FR"]},
        "age": {"type": "int", "min": 0, "max": 120, "nullable": True},
        "note": {"type": "string", "description": "free text"},
        "gone": {"type": "bool"},
        "count": {"type": "int", "min": 0},
    },
}


def _diff(**changes: dict):
    new = json.loads(json.dumps(OLD))
    for name, change in changes.items():
        if change is None:
            del new["fields"][name]
        else:
            new["fields"][name] = {**new["fields"].get(name, {}), **change}
    return diff_contracts(DataContract.model_validate(OLD), DataContract.model_validate(new))


def _kinds(diff) -> dict[tuple[str, str], bool]:
    return {(c.field, c.kind): c.breaking for c in diff.changes}


def test_identical_contracts_have_no_changes() -> None:
    diff = _diff()
    assert diff.changes == [] and diff.breaking == []


def test_breaking_changes() -> None:
    diff = _diff(
        gone=None,
        amount={"max": 50},
        country={"domain": ["DE"]},
        age={"nullable": False},
        extra={"type": "int"},
        count={"type": "float", "min": 1},
        note={"pattern": "[a-z]+"},
    )
    assert _kinds(diff) == {
        ("gone", "field_removed"): True,
        ("amount", "max_narrowed"): True,
        ("country", "domain_narrowed"): True,
        ("age", "nullable_changed"): True,
        ("extra", "field_added"): True,
        ("count", "type_changed"): False,  # int -> float widens
        ("count", "min_narrowed"): True,
        ("note", "pattern_changed"): True,
    }
    assert len(diff.breaking) == 7
    assert all(c.detail for c in diff.changes)


def test_compatible_changes() -> None:
    diff = _diff(
        amount={"max": 200, "description": "now documented"},
        country={"domain": ["DE", "FR", "IT"]},
        extra={"type": "int", "nullable": True},
        count={"min": None},
    )
    assert _kinds(diff) == {
        ("amount", "max_widened"): False,
        ("amount", "metadata_changed"): False,
        ("country", "domain_widened"): False,
        ("extra", "field_added"): False,
        ("count", "min_widened"): False,
    }
    assert diff.breaking == []


def test_subtle_changes() -> None:
    diff = _diff(
        amount={"min_exclusive": True, "unit": "cents"},
        country={"unseen": "allow", "domain": ["DE"]},
    )
    assert _kinds(diff) == {
        ("amount", "min_narrowed"): True,  # 0 itself no longer passes
        ("amount", "unit_changed"): True,  # values change meaning
        ("country", "domain_narrowed"): False,  # FR now allowed and counted, not rejected
        ("country", "unseen_changed"): False,
    }


def _spec(tmp_path: Path, name: str, fields: dict) -> Path:
    spec = {
        "name": "demo",
        "version": name,
        "model": {"path": "m.skops", "task": "binary_classification", "version_tag": "v1"},
        "data_contract": {"fields": fields},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_cli_exits_1_on_breaking_changes(tmp_path: Path) -> None:
    runner = CliRunner()
    old = _spec(tmp_path, "old", {"a": {"type": "int", "min": 0}})
    same = _spec(tmp_path, "same", {"a": {"type": "int", "min": 0}})
    wider = _spec(tmp_path, "wider", {"a": {"type": "int", "min": -5}})
    narrower = _spec(tmp_path, "narrower", {"a": {"type": "int", "min": 5}})
    result = runner.invoke(app, ["contract", "diff", str(old), str(same)])
    assert result.exit_code == 0 and "no changes" in result.output
    result = runner.invoke(app, ["contract", "diff", str(old), str(wider)])
    assert result.exit_code == 0 and "compatible" in result.output
    result = runner.invoke(app, ["contract", "diff", str(old), str(narrower), "--json"])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["breaking"] == 1 and data["changes"][0]["kind"] == "min_narrowed"
    missing = runner.invoke(app, ["contract", "diff", str(old), str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "not found" in missing.output

from __future__ import annotations

import json
import keyword
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mlhandoff.errors import SpecError
from mlhandoff.spec import dump_spec, load_spec, parse_spec, spec_json_schema
from mlhandoff.spec.models import HandoffSpec

EXAMPLE_SPEC = (
    Path(__file__).resolve().parents[1] / "examples" / "risky_transactions" / "handoff.yaml"
)
ANNOTATED_SPEC = Path(__file__).resolve().parents[1] / "docs" / "handoff.example.yaml"

MINIMAL = """\
name: demo
version: "1.0"
model:
  path: model.skops
  task: binary_classification
  version_tag: v1
data_contract:
  label: y
  fields:
    amount: {type: float, min: 0, max: 10}
    country: {type: category, domain: [DE, FR]}
"""


def _error(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse_spec(text, file=Path("handoff.yaml"))
    return info.value


def test_example_and_annotated_specs_load() -> None:
    for path in (EXAMPLE_SPEC, ANNOTATED_SPEC):
        spec = load_spec(path)
        assert spec.name == "risky-transactions"
        assert spec.data_contract.label == "is_fraud"
        assert "transaction_id" not in spec.features()


def test_minimal_spec_gets_defaults() -> None:
    spec = parse_spec(MINIMAL)
    assert spec.golden.rows == 100
    assert list(spec.outputs().fields) == ["score", "label"]
    assert spec.features() == ["amount", "country"]


def test_misspelt_key_names_line_column_and_suggestion() -> None:
    text = MINIMAL.replace("  version_tag: v1\n", "  version_tag: v1\n  treshold: 0.3\n")
    err = _error(text)
    (issue,) = err.issues
    assert (issue.line, issue.column) == (7, 3)
    assert issue.path == "model.treshold"
    assert "did you mean 'threshold'" in str(err)
    assert str(err).startswith("handoff.yaml:7:3: model.treshold:")


def test_unknown_top_level_key_lists_allowed_keys_when_nothing_is_close() -> None:
    err = _error(MINIMAL + "zzzqqq: 1\n")
    assert "unknown key 'zzzqqq'" in str(err)
    assert "allowed here:" in str(err) and "data_contract" in str(err)


def test_wrong_type_names_field_path_and_line() -> None:
    err = _error(MINIMAL.replace("max: 10", "max: lots"))
    (issue,) = err.issues
    assert issue.path == "data_contract.fields.amount.max"
    assert issue.line == 10
    assert "'lots'" in issue.message


def test_all_problems_reported_at_once() -> None:
    text = MINIMAL.replace("task: binary_classification", "task: clustering").replace(
        "max: 10", "max: x"
    )
    assert len(_error(text).issues) == 2


def test_missing_required_section() -> None:
    text = MINIMAL.split("data_contract:")[0]
    err = _error(text)
    assert err.issues[0].path == "data_contract"
    assert "required" in err.issues[0].message


def test_duplicate_key_is_an_error() -> None:
    err = _error(MINIMAL + "name: other\n")
    assert "duplicate key 'name'" in str(err)
    assert err.issues[0].line == 12


def test_invalid_yaml_reports_position() -> None:
    err = _error("name: [unclosed\nversion: 1\n")
    assert "not valid YAML" in str(err)
    assert err.issues[0].line is not None


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just a string"])
def test_non_mapping_documents_are_refused(text: str) -> None:
    assert "must be a YAML mapping" in str(_error(text))


def test_cross_section_references_are_checked() -> None:
    text = MINIMAL + "privacy:\n  pii_fields: [amout]\n"
    err = _error(text)
    assert err.issues[0].path == "privacy.pii_fields[0]"
    assert err.issues[0].line == 13
    assert "did you mean 'amount'" in str(err)


def test_min_above_max_and_label_as_field() -> None:
    text = MINIMAL.replace("min: 0, max: 10", "min: 10, max: 1").replace(
        "label: y", "label: amount"
    )
    messages = [i.message for i in _error(text).issues]
    assert any("greater than max" in m for m in messages)
    assert any("label must not also be an input" in m for m in messages)


def test_output_source_must_be_a_standard_output() -> None:
    text = MINIMAL + "output_contract:\n  fields:\n    prob: {type: float}\n"
    err = _error(text)
    assert "'prob' is not an output of a binary_classification model" in str(err)


def test_missing_spec_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec(tmp_path / "nope.yaml")


def test_dump_round_trips() -> None:
    spec = load_spec(EXAMPLE_SPEC)
    assert parse_spec(dump_spec(spec)) == spec


def test_json_schema_validates_the_example_and_rejects_typos() -> None:
    schema = spec_json_schema()
    json.dumps(schema)
    example = json.loads(json.dumps(yaml.safe_load(EXAMPLE_SPEC.read_text()), default=str))
    jsonschema.validate(example, schema)
    example["model"]["treshold"] = 0.2
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(example, schema)


_KNOWN = set(HandoffSpec.model_fields)
_keys = st.from_regex(r"[a-z][a-z_]{2,15}", fullmatch=True).filter(
    lambda k: k not in _KNOWN and not keyword.iskeyword(k)
)


@settings(max_examples=40, deadline=None)
@given(key=_keys, position=st.integers(min_value=0, max_value=3))
def test_any_unknown_top_level_key_is_located_exactly(key: str, position: int) -> None:
    lines = MINIMAL.splitlines(keepends=True)
    top_level = [i for i, line in enumerate(lines) if not line.startswith(" ")]
    insert_at = top_level[position]
    lines.insert(insert_at, f"{key}: 1\n")
    err = _error("".join(lines))
    (issue,) = err.issues
    assert issue.path == key
    assert issue.line == insert_at + 1
    assert f"unknown key '{key}'" in issue.message


@settings(max_examples=40, deadline=None)
@given(value=st.one_of(st.text(min_size=1, max_size=8), st.lists(st.integers(), max_size=2)))
def test_non_numeric_threshold_is_always_a_located_error(value: object) -> None:
    text = MINIMAL.replace(
        "  version_tag: v1\n", f"  version_tag: v1\n  threshold: {json.dumps(value)}\n"
    )
    try:
        spec = parse_spec(text)
    except SpecError as err:
        assert err.issues[0].path.startswith("model.threshold")
        assert err.issues[0].line == 7
    else:  # a numeric-looking string is a valid number in [0, 1]
        assert 0 <= spec.model.threshold <= 1


def test_annotated_docs_spec_is_the_example_spec() -> None:
    """The annotated spec in docs/ and the example's spec are one text (bar the schema line)."""
    docs = ANNOTATED_SPEC.read_text().splitlines()[1:]
    example = EXAMPLE_SPEC.read_text().splitlines()[1:]
    assert docs == example


def test_committed_json_schema_is_current() -> None:
    committed = json.loads((ANNOTATED_SPEC.parent / "handoff.schema.json").read_text())
    assert committed == spec_json_schema(), (
        "regenerate: mlhandoff spec-schema -o docs/handoff.schema.json"
    )


def test_every_problem_in_one_report_sorted_by_line() -> None:
    """A type error in one section does not hide a wrong field name in another."""
    text = (
        MINIMAL.replace(
            "    amount: {type: float, min: 0, max: 10}",
            "    amount: {type: float, min: 20, max: 10}",
        )
        + "privacy:\n  pii_fields: [amout]\n"
        + "golden:\n  rows: many\n"
    )
    err = _error(text)
    messages = [str(i) for i in err.issues]
    assert len(err.issues) == 3, messages
    assert [i.line for i in err.issues] == sorted(i.line for i in err.issues)
    assert any("min (20" in m for m in messages)  # a cross-check in data_contract
    assert any("amout" in m and "did you mean 'amount'" in m for m in messages)
    assert any("golden.rows" in m for m in messages)  # the type error


def test_guardrails_take_greater_is_better_like_criteria() -> None:
    base = (
        MINIMAL
        + "acceptance:\n  guardrails:\n    - {metric: log_loss, threshold: 0.7, greater_is_better: false}\n"
    )
    spec = parse_spec(base)
    assert spec.acceptance.guardrails[0].greater_is_better is False
    err = _error(base.replace("greater_is_better: false}", 'greater_is_better: true, op: "<="}'))
    assert "contradicts greater_is_better" in str(err)

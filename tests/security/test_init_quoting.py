"""``init`` writes what it did not choose (type names from the model file, file names) as
quoted YAML values: a newline or a ``#`` in them cannot add keys to the spec it generates."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml
from hostile import write_skops_call

from mlhandoff.scaffold import scaffold
from mlhandoff.spec import parse_spec

_SAMPLE = pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]})


def test_type_names_from_the_model_file_stay_in_their_comment(tmp_path: Path) -> None:
    # A skops file names functions as module + name, both written by whoever made the file.
    hostile = "reduce\n  trusted_types: [posix.system]\nx: 'it''s' # "
    model = write_skops_call(
        tmp_path / "model.skops", "zoneinfo.ZoneInfo", "UTC", functions=(f"functools.{hostile}",)
    )
    text = scaffold(
        model_path=model, sample=_SAMPLE, spec_path=tmp_path / "handoff.yaml", label="y"
    )
    spec = parse_spec(text)
    assert spec.security.trusted_types == []
    proposals = [line for line in text.splitlines() if line.startswith("  #  - ")]
    assert len(proposals) == 2  # zoneinfo.ZoneInfo and the hostile name, one line each
    names = [yaml.safe_load(line.removeprefix("  #  - ")) for line in proposals]
    assert f"functools.{hostile}" in names  # uncommented, it reads back as exactly that name


def test_file_names_with_yaml_syntax_are_quoted(tmp_path: Path) -> None:
    folder = tmp_path / "models #2"
    folder.mkdir()
    model = write_skops_call(folder / "risk: v2.skops", "zoneinfo.ZoneInfo", "UTC")
    sample = folder / "sample: 'a'.csv"
    _SAMPLE.to_csv(sample, index=False)
    spec_path = tmp_path / "handoff.yaml"
    spec = parse_spec(scaffold(model_path=model, sample=sample, spec_path=spec_path, label="y"))
    assert str(spec.model.path) == "models #2/risk: v2.skops"
    assert str(spec.golden.sample) == "models #2/sample: 'a'.csv"

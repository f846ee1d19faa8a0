"""``mlhandoff diff OLD NEW``: paired deltas, latency, contract compatibility, the go/no-go rule."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from mlhandoff.cli import app
from mlhandoff.evaluate import diff_bundles
from test_evaluate_support import labelled, make_bundle

runner = CliRunner()

WEAK = """
import numpy as np

def predict(frame):
    x = frame["x"].to_numpy()
    return np.clip(0.5 + (x - 50) / 400.0 + np.sin(x * 7) * 0.2, 0, 1)
"""
ACCEPTANCE = {
    "bootstrap": {"resamples": 200},
    "criteria": [{"metric": "roc_auc", "threshold": 0.6}],
    "upgrade": {"primary": "not_worse", "max_latency_ratio": 50.0},
}


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("diff")
    old = make_bundle(root, "scorer", code=WEAK, acceptance=ACCEPTANCE, version="1.0.0")
    new = make_bundle(root, "scorer", acceptance=ACCEPTANCE, version="1.1.0")
    return old, new


def test_upgrade_is_a_go_with_paired_deltas(versions) -> None:
    old, new = versions
    result = runner.invoke(app, ["diff", str(old), str(new), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["decision"] == "go" and report["contract"] == []
    auc = report["evaluation"]["rows"][0]
    assert auc["baseline"]["delta"] > 0 and auc["baseline"]["delta_low"] > 0
    assert report["latency"]["p95_ratio"] > 0
    assert report["latency"]["old"]["machine"] == report["latency"]["new"]["machine"]


def test_downgrade_is_a_no_go_with_the_reason(versions) -> None:
    old, new = versions
    diff = diff_bundles(new, old, latency=False)  # the weak model as the "new" version
    assert diff.decision == "no-go"
    assert any("roc_auc is significantly worse" in r for r in diff.reasons)
    text = runner.invoke(app, ["diff", str(new), str(old), "--no-latency"], catch_exceptions=False)
    assert text.exit_code == 1 and "NO-GO" in text.output and "significantly worse" in text.output


def test_breaking_contract_change_is_a_no_go(versions, tmp_path: Path) -> None:
    old, _ = versions
    fields = {
        "x": {"type": "float", "min": 0, "max": 100, "description": "A number."},
        "g": {"type": "category", "domain": ["a", "b", "c"], "description": "A group."},
        "z": {"type": "float", "description": "A new required input."},
    }
    table = labelled().append_column("z", pa.array(np.zeros(600)))
    new = make_bundle(
        tmp_path, "scorer", fields=fields, data=table, acceptance=ACCEPTANCE, version="2.0.0"
    )
    diff = diff_bundles(old, new, latency=False)
    assert any(c["field"] == "z" and c["breaking"] for c in diff.contract)
    assert diff.decision == "no-go"
    assert any("data contract changes in a breaking way" in r and "z" in r for r in diff.reasons)


SLOW = """
import time
import numpy as np

def predict(frame):
    time.sleep(0.004)  # same scores, much slower
    return np.clip(frame["x"].to_numpy() / 100.0, 0, 1)
"""


def test_a_large_slowdown_is_called_out_without_a_latency_rule(tmp_path: Path) -> None:
    """No max_latency_ratio: still a go, but never a silent one."""
    acceptance = {
        "bootstrap": {"resamples": 50},
        "criteria": [{"metric": "roc_auc", "threshold": 0.6}],
    }
    old = make_bundle(tmp_path, "timed", acceptance=acceptance, version="1.0.0")
    new = make_bundle(tmp_path, "timed", code=SLOW, acceptance=acceptance, version="1.1.0")
    diff = diff_bundles(old, new)
    assert diff.latency is not None and diff.latency["p95_ratio"] > 1.5
    assert diff.decision == "go"
    (warning,) = [r for r in diff.reasons if r.startswith("WARNING")]
    assert "max_latency_ratio is not set" in warning

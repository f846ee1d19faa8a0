"""Privacy promises enforced: retention, access controls and a data owner are required, and
prediction-log files older than the retention are deleted."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from mlhandoff.cli import app
from mlhandoff.errors import InputError
from mlhandoff.pack.check import check_spec
from mlhandoff.serve.retention import parse_retention, prune

DAY = 86400.0


def _run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


@given(st.integers(1, 999_999), st.sampled_from(["h", "d", "w"]))
def test_retention_parses_whole_hours_days_weeks(n: int, unit: str) -> None:
    hours = {"h": 1, "d": 24, "w": 168}[unit]
    assert parse_retention(f"{n}{unit}") == timedelta(hours=n * hours)


@pytest.mark.parametrize("text", ["", "30", "0d", "-1d", "1.5d", "30 days", "d30", "1y", "1e3d"])
def test_retention_refuses_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(InputError, match="is not a duration"):
        parse_retention(text)


def _log(directory: Path, name: str, age_days: float, now: float) -> Path:
    path = directory / name
    path.write_bytes(b"x" * 10)
    os.utime(path, (now - age_days * DAY, now - age_days * DAY))
    return path


def test_prune_deletes_only_closed_log_files_past_retention(tmp_path: Path) -> None:
    now = time.time()
    old = _log(tmp_path, "predictions-20260101T000000-00001.parquet", 40, now)
    recent = _log(tmp_path, "predictions-20260301T000000-00002.parquet", 5, now)
    open_file = _log(tmp_path, "predictions-20260101T000000-00003.parquet.partial", 40, now)
    other = _log(tmp_path, "notes.parquet", 40, now)
    (tmp_path / "predictions-20260101T000000-00004.parquet").symlink_to(other)
    dry = prune(tmp_path, timedelta(days=30), now=now, dry_run=True)
    assert dry.deleted == [old] and old.exists()
    result = prune(tmp_path, timedelta(days=30), now=now)
    assert result.deleted == [old] and result.kept == 1 and result.bytes_freed == 10
    assert not old.exists()
    assert recent.exists() and open_file.exists() and other.exists()
    assert (tmp_path / "predictions-20260101T000000-00004.parquet").is_symlink()


def test_logs_prune_command(tmp_path: Path, example_bundle: Path) -> None:
    now = time.time()
    _log(tmp_path, "predictions-20260101T000000-00001.parquet", 31, now)
    _log(tmp_path, "predictions-20260101T000000-00002.parquet", 29, now)
    result = _run("logs", "prune", "--dir", tmp_path, "--bundle", example_bundle)
    assert result.exit_code == 0, result.output
    assert "deleted 1 file(s) older than 30d" in result.output and "kept 1" in result.output
    bad = _run("logs", "prune", "--dir", tmp_path, "--retention", "a month")
    assert bad.exit_code == 2 and "is not a duration" in bad.output
    missing = _run("logs", "prune", "--dir", tmp_path / "nope", "--retention", "1d")
    assert missing.exit_code == 2 and "not a prediction-log directory" in missing.output
    neither = _run("logs", "prune", "--dir", tmp_path)
    assert neither.exit_code == 2 and "give --retention" in neither.output


@pytest.mark.parametrize("key", ["retention", "access_controls", "data_owner"])
def test_privacy_needs_retention_access_controls_and_owner(
    example_dir: Path, tmp_path: Path, key: str
) -> None:
    data = yaml.safe_load((example_dir / "handoff.yaml").read_text())
    del data["privacy"][key]
    spec = example_dir / f"{tmp_path.name}-{key}.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    line = {r.id: r for r in check_spec(spec).checklist}["model_card_privacy"]
    assert line.status == "missing" and f"privacy.{key} is not filled in" in line.detail


def test_the_example_keeps_its_privacy_promises(example_dir: Path) -> None:
    line = {r.id: r for r in check_spec(example_dir / "handoff.yaml").checklist}[
        "model_card_privacy"
    ]
    assert line.status == "pass" and "prediction logs kept 30d" in line.detail

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mlhandoff.cli import app
from mlhandoff.spec import load_spec
from signers import SIGNERS

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_help_teaches_the_flow() -> None:
    result = _run("--help")
    assert result.exit_code == 0
    for command in ("init", "pack", "verify", "spec-schema"):
        assert command in result.output


def test_init_infers_contract_and_refuses_to_overwrite(example_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "handoff.yaml"
    work = example_dir / "work"
    args = (work / "model.skops", work / "sample.parquet", out, "--label", "is_fraud")
    result = _init(*args)
    assert result.exit_code == 0, result.output
    spec = load_spec(out)
    assert spec.model.task == "binary_classification" and spec.model.flavor == "sklearn"
    fields = spec.data_contract.fields
    assert "is_fraud" not in fields
    assert fields["transaction_id"].id
    assert fields["event_time"].timezone == "UTC"
    assert fields["country"].type == "category" and "DE" in (fields["country"].domain or [])
    assert fields["distance_from_home_km"].nullable
    assert fields["hour_of_day"].min == 0 and fields["hour_of_day"].max == 23
    text = out.read_text()
    assert "TODO" in text
    # skops' untrusted types are listed for review, not silently trusted
    assert spec.security.trusted_types == []
    assert "#  - sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor" in text

    again = _init(*args)
    assert again.exit_code == 2 and "already exists" in again.output
    assert _init(*args, "--force").exit_code == 0


def _init(model: Path, sample: Path, out: Path, *extra: str):
    return _run("init", "--model", str(model), "--sample", str(sample), "--out", str(out), *extra)


def test_init_bad_inputs(example_dir: Path, tmp_path: Path) -> None:
    work = example_dir / "work"
    out = tmp_path / "h.yaml"
    missing_model = _init(tmp_path / "nope.skops", work / "sample.parquet", out)
    assert missing_model.exit_code == 2 and "model file not found" in missing_model.output
    missing_sample = _init(work / "model.skops", tmp_path / "s.parquet", out)
    assert missing_sample.exit_code == 2 and "file not found" in missing_sample.output
    bad_label = _init(work / "model.skops", work / "sample.parquet", out, "--label", "fraud")
    assert bad_label.exit_code == 2 and "label column 'fraud'" in bad_label.output
    assert not (tmp_path / "h.yaml").exists()


def test_inited_spec_packs_after_trusting_types_and_verify_lists_missing(
    example_dir: Path, tmp_path: Path
) -> None:
    spec_path = example_dir / f"{tmp_path.name}-init.yaml"
    work = example_dir / "work"
    init = _init(work / "model.skops", work / "sample.parquet", spec_path, "--label", "is_fraud")
    assert init.exit_code == 0
    refused = _run("pack", str(spec_path), "--out", str(tmp_path / "dist"))
    assert refused.exit_code == 2 and "trusted_types" in refused.output

    data = yaml.safe_load(spec_path.read_text())
    data["security"]["trusted_types"] = [
        line.split("- ", 1)[1].strip()
        for line in spec_path.read_text().splitlines()
        if line.strip().startswith("#  - ")
    ]
    spec_path.write_text(yaml.safe_dump(data, sort_keys=False))
    packed = _run("pack", str(spec_path), "--out", str(tmp_path / "dist"), "--json")
    assert packed.exit_code == 0, packed.output
    bundle = json.loads(packed.output)["bundle"]

    verified = _run("verify", bundle, "--json")
    assert verified.exit_code == 1
    checks = {c["id"]: c for c in json.loads(verified.output)["checks"]}
    assert checks["integrity"]["status"] == checks["golden_replay"]["status"] == "pass"
    assert checks["signoffs"]["status"] == "missing"
    assert "no signed sign-off from PM" in checks["signoffs"]["detail"]
    assert checks["model_card_privacy"]["status"] == "missing"


def test_verify_summary_counts_warnings_apart() -> None:
    from mlhandoff.checks import CheckResult
    from mlhandoff.cli.core import _summary

    lines = [
        CheckResult("a", "A", "pass"),
        CheckResult("b", "B", "warn"),
        CheckResult("c", "C", "skipped"),
    ]
    assert _summary(lines) == "[bold yellow]no check failed:[/] 1 passed, 1 warning, 1 skipped"
    failing = [*lines, CheckResult("d", "D", "missing")]
    assert _summary(failing).startswith("[bold red]1 of 4 checks failed or missing[/]")


def test_json_errors_are_json(tmp_path: Path) -> None:
    result = _run("verify", str(tmp_path / "nope"), "--json")
    assert result.exit_code == 1  # verify reports a missing bundle as a failed line
    result = _run("check", str(tmp_path / "missing.yaml"), "--json")
    assert result.exit_code == 2
    body = json.loads(result.output)
    assert body["ok"] is False and body["error"]["code"] == "spec_invalid"
    assert "spec file not found" in body["error"]["message"]


def test_pack_and_verify_the_example(example_dir: Path, tmp_path: Path) -> None:
    packed = _run("pack", str(example_dir / "handoff.yaml"), "--out", str(tmp_path / "dist"))
    assert packed.exit_code == 0, packed.output
    bundle = tmp_path / "dist" / "risky-transactions-1.0.0"
    unsigned = _run("verify", str(bundle))
    assert unsigned.exit_code == 1 and "Bundle signed" in unsigned.output
    keys = example_dir / "work" / "keys"
    assert _run("sign", str(bundle), "--key", str(keys / "eli.key")).exit_code == 0
    for key, role, who in SIGNERS:
        done = _run(
            "signoff", str(bundle), "--role", role, "--name", who, "--key", str(keys / f"{key}.key")
        )
        assert done.exit_code == 0, done.output
    trust = ("--public-key", str(keys / "eli.pub"), "--keyring", str(keys))
    verified = _run("verify", str(bundle), *trust)
    assert verified.exit_code == 0, verified.output
    statuses = [
        c["status"]
        for c in json.loads(_run("verify", str(bundle), "--json", *trust).output)["checks"]
    ]
    assert "no check failed:" in verified.output
    assert f"{statuses.count('pass')} passed" in verified.output  # warnings are not passes
    if "warn" in statuses:
        assert f"{statuses.count('warn')} warning" in verified.output

    again = _run("pack", str(example_dir / "handoff.yaml"), "--out", str(tmp_path / "dist"))
    assert again.exit_code == 2 and "already exists" in again.output

    tampered = tmp_path / "tampered"
    shutil.copytree(bundle, tampered)
    with (tampered / "model" / "model.skops").open("r+b") as handle:
        handle.seek(100)
        byte = handle.read(1)
        handle.seek(100)
        handle.write(bytes([byte[0] ^ 0xFF]))
    failed = _run("verify", str(tampered), "--json")
    assert failed.exit_code == 1
    integrity = json.loads(failed.output)["checks"][0]
    assert integrity["status"] == "fail" and "model/model.skops" in integrity["detail"]


def test_bad_spec_is_one_located_line_without_traceback(tmp_path: Path) -> None:
    spec = tmp_path / "handoff.yaml"
    spec.write_text("name: demo\nversion: '1'\nmodle: {}\n")
    result = _run("pack", str(spec), "--out", str(tmp_path / "dist"))
    assert result.exit_code == 2
    assert "handoff.yaml:3:1: modle: unknown key 'modle'; did you mean 'model'?" in result.output
    assert "Traceback" not in result.output


def test_spec_schema(tmp_path: Path) -> None:
    result = _run("spec-schema")
    schema = json.loads(result.output)
    assert "data_contract" in schema["properties"]
    assert _run("spec-schema", "--output", str(tmp_path / "s.json")).exit_code == 0
    assert json.loads((tmp_path / "s.json").read_text()) == schema


def test_installed_console_script_runs(tmp_path: Path) -> None:
    """The real entry point, in a subprocess, as a user runs it."""
    exe = Path(sys.executable).with_name("mlhandoff")
    if not exe.exists():
        pytest.skip("console script not installed in this environment")
    spec = tmp_path / "handoff.yaml"
    spec.write_text("name: demo\n")
    done = subprocess.run(
        [str(exe), "pack", str(spec)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 2
    assert "required field is missing" in done.stderr
    assert "Traceback" not in done.stderr
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("mlhandoff ")


def test_init_with_eval_covers_the_held_out_data_and_fills_training(
    example_dir: Path, tmp_path: Path
) -> None:
    """Ranges from the training sample alone can reject the test split; --eval widens them."""
    from mlhandoff.contract import CompiledContract, read_table

    work = example_dir / "work"
    plain, widened = (
        example_dir / f"{tmp_path.name}-a.yaml",
        example_dir / f"{tmp_path.name}-b.yaml",
    )
    assert (
        _init(work / "model.skops", work / "sample.parquet", plain, "--label", "is_fraud").exit_code
        == 0
    )
    result = _init(
        work / "model.skops",
        work / "sample.parquet",
        widened,
        *("--label", "is_fraud", "--eval", str(work / "test.parquet")),
        *("--code", str(example_dir / "train.py"), "--seed", "42"),
        *("--command", "python train.py --out work/model.skops # trains: the whole line"),
    )
    assert result.exit_code == 0, result.output
    test = read_table(work / "test.parquet")
    narrow = CompiledContract(load_spec(plain).data_contract).validate(test, allow_extra=True)
    wide = CompiledContract(load_spec(widened).data_contract).validate(test, allow_extra=True)
    assert wide.ok, [v.message for v in wide.violations]
    assert not narrow.ok  # the problem --eval solves: inferred from the sample alone
    spec = load_spec(widened)
    assert spec.acceptance.data == "work/test.parquet"
    assert spec.training.code_path == "train.py" and spec.training.seed == 42
    assert (
        spec.training.command == "python train.py --out work/model.skops # trains: the whole line"
    )

    missing = _init(
        work / "model.skops",
        work / "sample.parquet",
        tmp_path / "c.yaml",
        "--eval",
        str(tmp_path / "nope.parquet"),
    )
    assert missing.exit_code == 2 and "nope.parquet" in missing.output

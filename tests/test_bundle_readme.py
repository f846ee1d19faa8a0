"""The handoff README is a runbook: its reproduce commands, run as written, work."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import mlhandoff


def _bash_blocks(readme: str, heading: str) -> list[str]:
    section = readme.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)```", section, flags=re.S)


def test_the_reproduce_section_runs_as_written(
    example_bundle: Path, example_dir: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / example_bundle.name
    shutil.copytree(example_bundle, bundle)
    readme = (bundle / "docs" / "README.md").read_text()
    install, retrain = _bash_blocks(readme, "Reproduce")
    record = mlhandoff.open_bundle(bundle).record
    assert record.training.data_root and f"relative to `{record.training.data_root}`" in readme
    # The venv this test runs in stands for the one the README creates (pip needs an index).
    venv = Path(sys.executable).parent.parent
    script = "\n".join(
        line
        for line in (install + retrain).splitlines()
        if not re.match(r"(VENV=|python[\d.]* -m venv|\$VENV/bin/pip install)", line)
    )
    retrain_dir = tmp_path / f"{bundle.name}.retrain"
    for entry in record.training.data:  # "put the data files listed below in place"
        target = retrain_dir / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(example_dir / entry.path, target)
    script = script.replace("<the model file it wrote>", "work/model.skops")
    # evaluate's exit 1 is a verdict (e.g. a latency budget missed on this busy machine), not a
    # broken command: both runs must print their tables.
    outputs = iter(("packed", "retrained"))
    script = re.sub(
        r"^(\$VENV/bin/mlhandoff evaluate [^#]*?)\s*(#.*)?$",
        lambda m: f"{m.group(1)} --json > ../{next(outputs)}.json || [ $? -eq 1 ]",
        script,
        flags=re.M,
    )
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", f"cd {tmp_path}\n{script}"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "VENV": str(venv)},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "no check failed" in done.stdout  # verify .
    packed, retrained = (
        json.loads((tmp_path / f"{name}.json").read_text()) for name in ("packed", "retrained")
    )

    def auc(report: dict) -> float:
        (row,) = [
            r for r in report["rows"] if r["metric"] == "roc_auc" and r["kind"] == "criterion"
        ]
        return float(row["value"])

    assert auc(packed) > 0.6 and abs(auc(packed) - auc(retrained)) < 0.02  # same recipe, same model
    assert (retrain_dir / "work" / "model.skops").exists()
    assert mlhandoff.verify(bundle).results[0].status == "pass"  # nothing was written inside


def test_the_readme_example_responses_are_what_the_server_answers(example_bundle: Path) -> None:
    """The documented request, sent as documented, gets the documented answer."""
    from serving import live_server

    readme = (example_bundle / "docs" / "README.md").read_text()
    api = readme.split("## API\n", 1)[1]
    requests = re.findall(r"Example request \d+ \(`POST /predict`\):\n```json\n(.*?)```", api, re.S)
    answers = re.findall(r"Its response \(.*?\):\n```json\n(.*?)```", api, re.S)
    spec = mlhandoff.open_bundle(example_bundle).spec
    assert len(requests) == len(answers) == len(spec.api.examples) >= 1
    with live_server(example_bundle) as server:
        for request, answer in zip(requests, answers, strict=True):
            got = server.client.post("/predict", json=json.loads(request))
            assert got.status_code == 200, got.text
            documented = json.loads(answer)
            assert got.json()["predictions"] == documented["predictions"]
            assert got.json()["model"] == documented["model"]

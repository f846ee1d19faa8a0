"""``mlhandoff repro``: the handoff's dry run, done by the tool in a clean virtual environment.

An engineer following the README on a clean machine would: create a venv, install the bundle's
pinned requirements, install mlhandoff, and re-measure the metrics from the bundle's own files.
This does exactly that (``python -m venv``; mlhandoff from the local source tree when running
from a checkout, else the same version from PyPI), times it, and lists every friction point:
a requirement that fails to install, a broken dependency set, a missing data file, a metric that
moved. The record goes *next to* the bundle (``<bundle>.repro.json``): bundles are immutable;
``verify`` reads the record into its "repro steps validated" line.

``--retrain`` also runs the recorded training command with the bundled code. Its limits: the
training data must be present at the recorded paths, relative to ``data_root`` (their sha256 is
checked against the spec); the command runs with the venv's ``python``; the retrained model is
the new file with the bundled model's suffix; metrics are compared within the spec's tolerance,
and the file's sha256 with the bundled model's (equal only when training and the file format
are deterministic — a difference is reported, not failed, when the metrics match).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlhandoff._version import __version__
from mlhandoff.bundle import layout
from mlhandoff.bundle.bundle import Bundle, open_bundle
from mlhandoff.bundle.environment import format_requirements, parse_requirements
from mlhandoff.bundle.manifest import sha256_file
from mlhandoff.capabilities.provenance import data_digest

_PIP = ("-m", "pip", "--disable-pip-version-check", "--no-input")


@dataclass
class Step:
    name: str
    ok: bool
    seconds: float
    detail: str = ""


@dataclass
class ReproResult:
    bundle: str
    bundle_digest: str
    ok: bool = True
    wall_s: float = 0.0
    steps: list[Step] = field(default_factory=list)
    frictions: list[str] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    retrain: dict[str, Any] | None = None
    #: The bundle's own tests (``tests/``) run in the fresh venv: pytest's summary line.
    tests: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def source_tree() -> Path | None:
    """The checkout mlhandoff runs from, if it runs from one (an editable or in-tree install)."""
    root = Path(__file__).resolve().parents[3]  # src/mlhandoff/verify/repro.py
    pyproject = root / "pyproject.toml"
    if pyproject.exists() and 'name = "mlhandoff"' in pyproject.read_text(encoding="utf-8"):
        return root
    return None


class _Runner:
    """Runs the steps, timing each and collecting friction instead of stopping at the first."""

    def __init__(self, result: ReproResult, on_step: Callable[[str], None]) -> None:
        self.result, self.on_step = result, on_step

    def run(
        self, name: str, args: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 900
    ) -> subprocess.CompletedProcess[str] | None:
        self.on_step(name)
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.step(name, False, start, f"{type(exc).__name__}: {exc}")
            return None
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        self.step(name, proc.returncode == 0, start, " | ".join(tail) if proc.returncode else "")
        return proc

    def step(self, name: str, ok: bool, start: float, detail: str = "") -> None:
        self.result.steps.append(Step(name, ok, round(time.perf_counter() - start, 2), detail))

    def friction(self, text: str) -> None:
        self.result.frictions.append(text)


def _clean_env(venv: Path) -> dict[str, str]:
    keep = {
        k: v
        for k, v in os.environ.items()
        if k
        in (
            "HOME",
            "LANG",
            "LC_ALL",
            "TMPDIR",
            "PIP_CACHE_DIR",
            "PIP_CONFIG_FILE",
            "PIP_NO_INDEX",
            "PIP_INDEX_URL",
            "PIP_EXTRA_INDEX_URL",
            "PIP_FIND_LINKS",
        )
    }
    return keep | {
        "PATH": f"{venv / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "VIRTUAL_ENV": str(venv),
    }


def repro(
    bundle: str | Path,
    *,
    retrain: bool = False,
    data_root: str | Path | None = None,
    workdir: str | Path | None = None,
    keep: bool = False,
    python: str = sys.executable,
    on_step: Callable[[str], None] | None = None,
    write_record: bool = True,
) -> ReproResult:
    """Reproduce the bundle's metrics in a fresh venv; never raises for friction, reports it."""
    started = time.perf_counter()
    b = open_bundle(Path(bundle).resolve())  # children run elsewhere: absolute paths
    result = ReproResult(bundle=str(b.root), bundle_digest=b.digest)
    runner = _Runner(result, on_step or (lambda _: None))
    work = Path(tempfile.mkdtemp(prefix="mlhandoff-repro-", dir=workdir))
    try:
        venv = work / "venv"
        env = _clean_env(venv)
        vpy = str(venv / "bin" / "python")
        if _create_venv(runner, python, venv, work) and _install(runner, b, vpy, work, env):
            _measure(runner, b, venv, work, env)
            _bundle_tests(runner, b, vpy, work, env)
            if retrain:
                _retrain(runner, b, venv, work, env, Path(data_root or Path.cwd()))
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    result.wall_s = round(time.perf_counter() - started, 1)
    result.ok = not result.frictions and all(s.ok for s in result.steps)
    if write_record:
        layout.repro_record(b.root).write_text(
            json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8"
        )
    return result


def _bundle_tests(
    runner: _Runner, bundle: Bundle, vpy: str, work: Path, env: dict[str, str]
) -> None:
    """Run the tests the bundle carries, as its README tells a receiving engineer to."""
    tests = bundle.root / "tests"
    if not (tests / "test_handoff.py").exists():
        return  # bundles packed before they carried tests
    proc = runner.run(
        "pip install pytest", [vpy, *_PIP, "install", "-q", "pytest"], cwd=work, env=env
    )
    if proc is None or proc.returncode:
        runner.friction("could not install pytest to run the bundle's tests")
        return
    proc = runner.run(
        "bundle tests (pytest tests/)",
        [vpy, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)],
        cwd=work,
        env={**env, "PYTHONDONTWRITEBYTECODE": "1"},
        timeout=1800,
    )
    if proc is None:
        runner.friction("the bundle's tests did not finish")
        return
    lines = (proc.stdout or "").strip().splitlines()
    runner.result.tests = lines[-1] if lines else ""
    if proc.returncode:
        runner.friction(f"the bundle's tests failed: {runner.result.tests}")


def _create_venv(runner: _Runner, python: str, venv: Path, work: Path) -> bool:
    proc = runner.run(
        "create venv", [python, "-m", "venv", str(venv)], cwd=work, env=dict(os.environ)
    )
    if proc is None or proc.returncode:
        runner.friction("could not create a virtual environment with python -m venv")
        return False
    return True


def _requirements(bundle: Bundle) -> list[tuple[str, list[str]]]:
    """The lock's pins (with their artifact hashes, if it has them), mlhandoff left out."""
    path = bundle.root / layout.ENV_REQUIREMENTS
    entries = parse_requirements(path.read_text(encoding="utf-8")) if path.exists() else []
    return [(pin, h) for pin, h in entries if pin.split("==")[0].strip().lower() != "mlhandoff"]


def _install(runner: _Runner, bundle: Bundle, vpy: str, work: Path, env: dict[str, str]) -> bool:
    reqs = _requirements(bundle)
    if not (bundle.root / layout.ENV_REQUIREMENTS).exists():
        runner.friction(f"missing file: {layout.ENV_REQUIREMENTS}")
    # With hashes, pip installs exactly the audited artifacts or nothing.
    hashed = bool(reqs) and all(h for _, h in reqs)
    mode = ["--require-hashes"] if hashed else []

    def install(
        name: str, entries: list[tuple[str, list[str]]], file: Path
    ) -> subprocess.CompletedProcess[str] | None:
        file.write_text(format_requirements(entries), encoding="utf-8")
        args = [vpy, *_PIP, "install", "-q", *mode, "-r", str(file)]
        return runner.run(name, args, cwd=work, env=env)

    command = "pip install " + ("--require-hashes " if hashed else "") + "-r env/requirements.txt"
    checked = ", hash-checked" if hashed else ""
    proc = install(f"{command} ({len(reqs)} pinned{checked})", reqs, work / "requirements.txt")
    if proc is None or proc.returncode:
        for entry in reqs:  # find which pins fail, one by one
            one = install(f"pip install {entry[0]}", [entry], work / "one.txt")
            if one is None or one.returncode:
                runner.friction(f"package failed to install: {entry[0]}")
    tree = source_tree()
    target = str(tree) if tree else f"mlhandoff=={__version__}"
    proc = runner.run(
        f"pip install mlhandoff ({'local source tree' if tree else 'PyPI'})",
        [vpy, *_PIP, "install", "-q", "--no-deps", target],
        cwd=work,
        env=env,
    )
    if proc is None or proc.returncode:
        runner.friction(f"mlhandoff itself failed to install from {target}")
        return False
    check = runner.run("pip check", [vpy, *_PIP, "check"], cwd=work, env=env)
    if check is not None and check.returncode:
        runner.friction("pip check: " + " | ".join(check.stdout.strip().splitlines()[:3]))
    return True


def _measure(
    runner: _Runner,
    bundle: Bundle,
    venv: Path,
    work: Path,
    env: dict[str, str],
    model: Path | None = None,
) -> list[dict[str, Any]]:
    from mlhandoff.evaluate.report import AcceptanceReport
    from mlhandoff.evaluate.run import compare_reports, recorded_report

    cli = str(venv / "bin" / "mlhandoff")
    label = "retrained model" if model else "bundle"
    if model is None:
        proc = runner.run(
            "mlhandoff verify (fresh venv)",
            [cli, "verify", str(bundle.root), "--json"],
            cwd=work,
            env=env,
        )
        if proc is not None and proc.stdout.strip().startswith("{"):
            checks = json.loads(proc.stdout)["checks"]
            for c in checks:
                if (
                    c["id"] in ("golden_contract", "golden_replay", "acceptance_measured")
                    and c["status"] == "fail"
                ):
                    runner.friction(f"{c['title']}: {c['detail']}")
            runner.result.steps[-1].ok = True  # checklist gaps are verify's business, not repro's
    recorded = recorded_report(bundle)
    if recorded is None:
        runner.friction(
            "no acceptance results were packed (acceptance.data unset): metrics not reproduced"
        )
        return []
    args = [cli, "evaluate", str(bundle.root), "--json", "--no-latency"]
    if model is not None:
        args += ["--model", str(model)]
    proc = runner.run(f"mlhandoff evaluate ({label}, fresh venv)", args, cwd=work, env=env)
    if proc is None or not proc.stdout.strip().startswith("{"):
        runner.friction(f"evaluate of the {label} produced no report")
        return []
    runner.result.steps[-1].ok = proc.returncode in (0, 1)  # 1 = a verdict failed, still measured
    fresh = AcceptanceReport.from_dict(json.loads(proc.stdout))
    tolerance = bundle.spec.acceptance.tolerance
    problems = compare_reports(recorded, fresh, tolerance)
    rows = []
    now = {(r.kind, r.label): r for r in fresh.rows}
    for old in recorded.rows:
        new = now.get((old.kind, old.label))
        value = None if new is None else new.value
        diff = None if value is None or old.value is None else abs(value - old.value)
        rows.append(
            {
                "metric": old.label,
                "recorded": old.value,
                "reproduced": value,
                "difference": diff,
                "ok": diff is not None and diff <= tolerance,
            }
        )
    for p in problems:
        runner.friction(f"{label}: {p} (tolerance {tolerance:g})")
    if model is None:
        runner.result.metrics = rows
    return rows


def _retrain(
    runner: _Runner, bundle: Bundle, venv: Path, work: Path, env: dict[str, str], data_root: Path
) -> None:
    spec = bundle.spec
    info: dict[str, Any] = {"command": spec.training.command, "data_root": str(data_root)}
    runner.result.retrain = info
    if not spec.training.command:
        runner.friction("retrain: the spec records no training.command")
        return
    run_dir = work / "retrain"
    code = bundle.root / layout.CODE_DIR
    shutil.copytree(code, run_dir) if code.exists() else run_dir.mkdir()
    if not code.exists():
        runner.friction(f"retrain: missing directory {layout.CODE_DIR}/ (no training code bundled)")
    digests = {d.path: d.sha256 for d in bundle.record.training.data}
    for entry in spec.training.data:
        source = data_root / entry.path
        if not source.exists():
            runner.friction(f"retrain: missing file {entry.path} (expected under {data_root})")
            continue
        found = data_digest(data_root, entry.path, "training.data", allow_outside=True)
        if entry.path in digests and found != digests[entry.path]:
            runner.friction(
                f"retrain: {entry.path} differs from the data the model was trained on (sha256)"
            )
        target = run_dir / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        # A copy, never a link: a script that writes its splits must not reach the originals.
        if source.is_dir():
            shutil.copytree(source, target, symlinks=False)
        else:
            shutil.copyfile(source, target)
    if any(f.startswith("retrain: missing file") for f in runner.result.frictions):
        return
    args = shlex.split(spec.training.command)
    if args and Path(args[0]).name.startswith("python"):
        args[0] = str(venv / "bin" / "python")
    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()}
    proc = runner.run("retrain (recorded command)", args, cwd=run_dir, env=env, timeout=3600)
    if proc is None or proc.returncode:
        runner.friction("retrain: the training command failed")
        return
    suffix = bundle.model_path.suffix
    made = [
        p
        for p in run_dir.rglob(f"*{suffix}")
        if p.is_file() and before.get(p) != p.stat().st_mtime_ns
    ]
    if len(made) != 1:
        runner.friction(f"retrain: expected one new *{suffix} model file, found {len(made)}")
        return
    bundled = bundle.model_path
    info["model"] = str(made[0].relative_to(run_dir))
    info["same_hash"] = sha256_file(made[0]) == sha256_file(bundled)
    rows = _measure(runner, bundle, venv, work, env, model=made[0])
    info["metrics"] = rows
    info["metrics_match"] = bool(rows) and all(r["ok"] for r in rows)

"""Packing a spec, a model and a sample into an immutable, content-addressed bundle.

Everything is written into a temporary directory beside the destination and renamed into place
only once complete, so a crash never leaves a half-bundle that looks whole.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlhandoff._version import __version__
from mlhandoff.bundle import environment as env_capture
from mlhandoff.bundle import layout
from mlhandoff.bundle.bundle import load_options
from mlhandoff.bundle.manifest import build_manifest, sha256_file, write_manifest
from mlhandoff.bundle.provenance import data_digest, git_state
from mlhandoff.bundle.secrets import scan_for_secrets
from mlhandoff.contract.leakage import check_training_data
from mlhandoff.contract.outputs import name_outputs, output_violations
from mlhandoff.contract.tables import TableLike, read_table
from mlhandoff.contract.validate import CompiledContract
from mlhandoff.errors import (
    BundleExistsError,
    InputError,
    MissingExtraError,
    ModelLoadError,
    PredictError,
)
from mlhandoff.flavors import flavor_for_model, flavor_for_path, get_flavor, load_predictor
from mlhandoff.render import render_model_card, render_readme
from mlhandoff.render.openapi import openapi_document
from mlhandoff.spec.checklist import run_checklist
from mlhandoff.spec.loader import dump_spec, load_spec
from mlhandoff.spec.models import HandoffSpec

#: Reports progress as (stage description, bytes done for that stage or None).
Reporter = Callable[[str], None]
_COPY_CHUNK = 8 * 1024 * 1024
_IGNORED = shutil.ignore_patterns(".git", "__pycache__", ".venv", "*.pyc", ".ipynb_checkpoints")


@dataclass(frozen=True)
class PackResult:
    path: Path
    bundle_digest: str
    golden_rows: int


def pack(
    model: object | None = None,
    *,
    spec: str | Path | HandoffSpec = "handoff.yaml",
    sample: TableLike | None = None,
    out: str | Path = "dist",
    force: bool = False,
    base_dir: str | Path | None = None,
    on_stage: Reporter | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> PackResult:
    """Build a bundle from ``spec``; ``model`` (an in-memory object) overrides ``model.path``.

    ``sample`` overrides ``golden.sample``. Relative paths in the spec are resolved against the
    spec file's directory (or ``base_dir`` when ``spec`` is an object).
    """
    stage = on_stage or (lambda _: None)
    if isinstance(spec, HandoffSpec):
        base = Path(base_dir) if base_dir else Path.cwd()
        spec = spec.model_copy(deep=True)
    else:
        base = Path(base_dir) if base_dir else Path(spec).resolve().parent
        spec = load_spec(spec)
    out = Path(out)
    final = out / f"{spec.name}-{spec.version}"
    if final.exists() and not force:
        raise BundleExistsError(
            f"{final}: a bundle already exists there; bundles are immutable: bump 'version' in the spec, or pass --force to replace it"
        )

    stage("reading sample")
    sample_table = _read_sample(sample, spec, base)
    _check_sample(sample_table, spec)

    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=out))
    try:
        _build(tmp, model, spec, base, sample_table, stage, on_bytes)
        stage("hashing files")
        manifest = build_manifest(tmp, _meta(spec), on_bytes)
        write_manifest(tmp, manifest)
        _publish(tmp, final, force)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return PackResult(
        path=final,
        bundle_digest=manifest["bundle_digest"],
        golden_rows=min(spec.golden.rows, sample_table.num_rows),
    )


def _meta(spec: HandoffSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "version": spec.version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "created_by": f"mlhandoff {__version__}",
    }


def _read_sample(sample: TableLike | None, spec: HandoffSpec, base: Path) -> pa.Table:
    if sample is None:
        if spec.golden.sample is None:
            raise InputError(
                "no sample data: pass --sample (or sample= in Python) or set golden.sample in the spec"
            )
        sample = base / spec.golden.sample
    table = read_table(sample, name="sample")
    if table.num_rows == 0:
        raise InputError("sample has 0 rows; the golden set needs at least one row")
    return table


def _check_sample(table: pa.Table, spec: HandoffSpec) -> None:
    report = CompiledContract(spec.data_contract).validate(table, allow_extra=True)
    report.raise_for_violations("sample")


def _build(
    tmp: Path,
    model: object | None,
    spec: HandoffSpec,
    base: Path,
    sample: pa.Table,
    stage: Reporter,
    on_bytes: Callable[[int], None] | None,
) -> None:
    stage("writing model")
    model_source = "the in-memory model" if model is not None else str(base / spec.model.path)
    model_rel = _write_model(tmp, model, spec, base, on_bytes)
    if spec.model.flavor == "python_function":
        scan_for_secrets(tmp, layout.MODEL_DIR)
    spec.model.path = model_rel

    stage("copying training code")
    if spec.training.code_path:
        source = base / spec.training.code_path
        if not source.exists():
            raise InputError(f"training.code_path: {source} not found")
        state = git_state(source)
        spec.training.git_commit = spec.training.git_commit or state.commit
        spec.training.git_dirty = (
            state.dirty if spec.training.git_dirty is None else spec.training.git_dirty
        )
        spec.training.code_path = _copy_tree(source, tmp / layout.CODE_DIR)
        scan_for_secrets(tmp, layout.CODE_DIR)

    stage("hashing training data")
    for entry in spec.training.data:
        entry.sha256 = data_digest(base / entry.path)

    stage("checking training data for leakage")
    spec.data_contract.leakage = check_training_data(spec.data_contract, spec.training.data, base)

    stage("loading model and computing golden outputs")
    try:
        predictor = load_predictor(
            tmp / model_rel, spec.model.flavor or "", load_options(spec, tmp)
        )
    except ModelLoadError as exc:
        raise _relabel(exc, tmp / model_rel, model_source) from exc
    _check_features(predictor, spec)
    golden_inputs = _golden_rows(sample, spec)
    try:
        outputs = name_outputs(predictor.predict(golden_inputs), spec.outputs())
    except PredictError:
        raise
    except Exception as exc:  # a user model can raise anything; report it as ours
        raise PredictError(f"the model failed on the sample: {type(exc).__name__}: {exc}") from exc
    problems = output_violations(outputs, spec.outputs())
    if problems:
        raise PredictError("model outputs break the output contract: " + "; ".join(problems))
    (tmp / "data").mkdir()
    pq.write_table(golden_inputs, tmp / layout.GOLDEN_INPUTS)
    pq.write_table(outputs, tmp / layout.GOLDEN_OUTPUTS)
    spec.golden.sample = layout.GOLDEN_INPUTS

    stage("evaluating acceptance criteria")
    from mlhandoff.evaluate.run import pack_evaluation  # evaluate builds on bundle: import late

    acceptance = pack_evaluation(spec, base, predictor, tmp)

    stage("capturing environment")
    flavor = get_flavor(spec.model.flavor or "")
    env = env_capture.capture(
        [*flavor.packages(), "mlhandoff", *spec.environment.packages], seed=spec.training.seed
    )
    spec.environment.python = env["python"]
    spec.environment.platform = env["platform"]
    (tmp / "env").mkdir()
    (tmp / layout.ENVIRONMENT).write_text(json.dumps(env, indent=2) + "\n", encoding="utf-8")
    (tmp / layout.ENV_REQUIREMENTS).write_text(env_capture.requirements_txt(env), encoding="utf-8")

    stage("rendering docs")
    (tmp / layout.SPEC).write_text(dump_spec(spec), encoding="utf-8")
    files = _relative_files(tmp)
    artifacts = [
        {"path": rel, "size": (tmp / rel).stat().st_size, "sha256": sha256_file(tmp / rel)}
        for rel in sorted(files)
        if not rel.startswith(layout.CODE_DIR + "/")
    ]
    docs = tmp / "docs"
    docs.mkdir()
    files |= {layout.README, layout.MODEL_CARD, layout.OPENAPI}
    bundle_name = f"{spec.name}-{spec.version}"
    (tmp / layout.OPENAPI).write_text(
        json.dumps(openapi_document(spec), indent=2) + "\n", encoding="utf-8"
    )
    response_example = {
        "predictions": outputs.slice(0, 1).to_pylist(),
        "model": {
            "name": spec.name,
            "version": spec.version,
            "version_tag": spec.model.version_tag,
        },
        "request_id": "4f0c8e1a2b3d4c5e6f708192a3b4c5d6",
    }
    (tmp / layout.README).write_text(
        render_readme(
            spec,
            artifacts=artifacts,
            environment=env,
            checklist=run_checklist(spec, files),
            bundle_name=bundle_name,
            response_example=response_example,
            acceptance=acceptance,
        ),
        encoding="utf-8",
    )
    (tmp / layout.MODEL_CARD).write_text(
        render_model_card(spec, environment=env, acceptance=acceptance), encoding="utf-8"
    )


def _write_model(
    tmp: Path,
    model: object | None,
    spec: HandoffSpec,
    base: Path,
    on_bytes: Callable[[int], None] | None,
) -> str:
    model_dir = tmp / layout.MODEL_DIR
    model_dir.mkdir()
    if model is not None:
        flavor = flavor_for_model(model)
        if spec.model.flavor and spec.model.flavor != flavor.name:
            raise InputError(
                f"model.flavor is '{spec.model.flavor}' in the spec, but the model given is a {flavor.name} model"
            )
        spec.model.flavor = flavor.name  # type: ignore[assignment]
        target = model_dir / flavor.default_filename
        flavor.save(model, target)
        return target.relative_to(tmp).as_posix()
    source = base / spec.model.path
    if not source.exists():
        raise InputError(
            f"model.path: {source} not found (paths are relative to the spec's directory)"
        )
    name = spec.model.flavor or flavor_for_path(source)
    spec.model.flavor = name  # type: ignore[assignment]
    if source.is_dir():
        return _copy_tree(source, model_dir)
    target = model_dir / source.name
    _copy_file(source, target, on_bytes)
    return target.relative_to(tmp).as_posix()


def _relabel(exc: ModelLoadError, staged: Path, source: str) -> ModelLoadError:
    """The same error, naming the user's model file instead of the staging copy."""
    if isinstance(exc, MissingExtraError):
        return exc
    return type(exc)(str(exc).replace(str(staged), source))


def _copy_file(source: Path, target: Path, on_bytes: Callable[[int], None] | None) -> None:
    with source.open("rb") as src, target.open("wb") as dst:
        while chunk := src.read(_COPY_CHUNK):
            dst.write(chunk)
            if on_bytes:
                on_bytes(len(chunk))
    shutil.copystat(source, target)


def _copy_tree(source: Path, dest_dir: Path) -> str:
    """Copy a file or directory into ``dest_dir``; returns its bundle-relative path."""
    dest_dir.mkdir(exist_ok=True)
    target = dest_dir / source.name
    if source.is_dir():
        shutil.copytree(source, target, ignore=_IGNORED, symlinks=False)
    else:
        shutil.copy2(source, target)
    return f"{dest_dir.name}/{source.name}"


def _check_features(predictor: object, spec: HandoffSpec) -> None:
    """Compare the model's own feature names (when it records them) with the data contract."""
    names = getattr(predictor, "feature_names", None)
    if not names:
        return
    label = spec.data_contract.label
    if label and label in names:
        raise InputError(
            f"the model was fitted with the label '{label}' as an input feature (target leakage); "
            "refit it on the feature columns only"
        )
    unknown = [n for n in names if n not in spec.data_contract.fields]
    if unknown:
        unused = [n for n in spec.features() if n not in set(names)]
        raise InputError(
            f"the model was fitted with features the data contract lacks: {', '.join(unknown[:5])}"
            + (
                f"; the contract has fields the model does not use: {', '.join(unused[:5])}"
                if unused
                else ""
            )
            + ". Add them to data_contract.fields"
        )


def _golden_rows(sample: pa.Table, spec: HandoffSpec) -> pa.Table:
    """A deterministic subset of the sample: seeded by training.seed, kept in original order."""
    n = min(spec.golden.rows, sample.num_rows)
    rng = np.random.default_rng(spec.training.seed or 0)
    picked = np.sort(rng.choice(sample.num_rows, size=n, replace=False))
    columns = [c for c in sample.column_names if c in spec.data_contract.fields]
    return sample.select(columns).take(pa.array(picked))


def _relative_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _publish(tmp: Path, final: Path, force: bool) -> None:
    """Rename the finished bundle into place; a replaced bundle is removed only afterwards."""
    os.chmod(tmp, 0o755)
    if final.exists() and force:
        trash = final.with_name(f".{final.name}.replaced-{os.getpid()}")
        final.rename(trash)
        try:
            tmp.rename(final)
        except OSError as exc:
            trash.rename(final)  # put the old bundle back: never lose the one that was there
            raise BundleExistsError(
                f"{final}: cannot move the new bundle into place: {exc}"
            ) from exc
        shutil.rmtree(trash, ignore_errors=True)
    else:
        try:
            tmp.rename(final)
        except OSError as exc:
            raise BundleExistsError(f"{final}: cannot move the bundle into place: {exc}") from exc

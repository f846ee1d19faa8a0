"""The model: written into ``model/`` (saved from an object or copied), loaded back, checked.

Loading it here, through the same allowlisting loaders that serve uses, means a model that
would be refused in production is refused at pack.
"""

from __future__ import annotations

from mlhandoff.bundle import layout
from mlhandoff.bundle.bundle import load_options
from mlhandoff.bundle.record import ModelRecord
from mlhandoff.capabilities.files import MAX_MODEL_BYTES, collect, copy_into
from mlhandoff.capabilities.secrets import scan_for_secrets
from mlhandoff.capability import (
    Capability,
    ChecklistLine,
    HandoffView,
    Outcome,
    PackContext,
    Step,
    outcome,
)
from mlhandoff.errors import InputError, MissingExtraError, ModelLoadError
from mlhandoff.flavors import flavor_for_model, flavor_for_path, load_predictor
from mlhandoff.spec.models import HandoffSpec, is_todo


def write_model(ctx: PackContext) -> None:
    model_dir = ctx.root / layout.MODEL_DIR
    model_dir.mkdir()
    declared = ctx.spec.model.flavor
    if ctx.model_object is not None:
        flavor = flavor_for_model(ctx.model_object)
        if declared and declared != flavor.name:
            raise InputError(
                f"model.flavor is '{declared}' in the spec, but the model given is a {flavor.name} model"
            )
        target = model_dir / flavor.default_filename
        flavor.save(ctx.model_object, target)
        ctx.model = ModelRecord(
            path=target.relative_to(ctx.root).as_posix(), flavor=flavor.name, from_memory=True
        )
        return
    found = collect(
        ctx.base,
        ctx.spec.model.path,
        "model.path",
        max_bytes=MAX_MODEL_BYTES,
        allow_outside=ctx.allow_outside,
    )
    name = declared or flavor_for_path(found.root)
    copy_into(found, model_dir, ctx.on_bytes)
    ctx.model = ModelRecord(path=f"{layout.MODEL_DIR}/{found.root.name}", flavor=name)
    if name == "python_function":
        scan_for_secrets(ctx.root, layout.MODEL_DIR)


def load_model(ctx: PackContext) -> None:
    assert ctx.model is not None  # write_model ran first
    staged = ctx.root / ctx.model.path
    try:
        ctx.predictor = load_predictor(
            staged, ctx.model.flavor, load_options(ctx.spec, ctx.model, ctx.root)
        )
    except MissingExtraError:
        raise
    except ModelLoadError as exc:  # name the user's file, not the staging copy
        source = (
            "the in-memory model"
            if ctx.model_object is not None
            else str(ctx.base / ctx.spec.model.path)
        )
        raise type(exc)(str(exc).replace(str(staged), source)) from exc
    _check_features(getattr(ctx.predictor, "feature_names", None), ctx.spec)
    classes = getattr(ctx.predictor, "classes", None)
    if classes is not None and ctx.spec.model.task in _CLASSIFIERS:
        ctx.model.classes = [c.item() if hasattr(c, "item") else c for c in classes]


_CLASSIFIERS = ("binary_classification", "multiclass_classification")


def _check_features(names: list[str] | None, spec: HandoffSpec) -> None:
    """Compare the model's own feature names (when it records them) with the data contract."""
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


def artifacts(view: HandoffView) -> Outcome:
    spec = view.spec
    gaps = [
        f"{name} is not filled in"
        for name, value in (
            ("model.version_tag", spec.model.version_tag),
            ("version", spec.version),
        )
        if is_todo(value)
    ]
    model_files = [f for f in view.files if f.startswith(layout.MODEL_DIR + "/")]
    if not model_files:
        gaps.append("no model file under model/")
    for required in (layout.ENV_REQUIREMENTS, layout.GOLDEN_INPUTS, layout.GOLDEN_OUTPUTS):
        if required not in view.files:
            gaps.append(f"{required} is not in the bundle")
    return outcome(
        gaps,
        f"{view.record.model.flavor} model {spec.model.version_tag}, {len(model_files)} model "
        "file(s), env lock, golden set",
    )


CAPABILITY = Capability(
    "model",
    steps=(
        Step("write_model", "writing model", write_model),
        Step("load_model", "loading model", load_model),
    ),
    checklist=(ChecklistLine("artifacts", "Artifacts packaged and versioned", artifacts),),
)

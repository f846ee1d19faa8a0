"""Opening a packed bundle: the manifest is checked before anything in it is deserialised.

:func:`open_bundle` is the only way to get a :class:`Bundle`: every command that reads a bundle
(verify, serve, evaluate, diff, repro) goes through the same hash check and the same refusal of
paths that point outside the bundle.
"""

from __future__ import annotations

import functools
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from pydantic import ValidationError

from mlhandoff.bundle import layout
from mlhandoff.bundle.environment import version_mismatches
from mlhandoff.bundle.manifest import IntegrityReport, Progress, check_integrity, read_manifest
from mlhandoff.bundle.record import DataDigest, ModelRecord, PackRecord, TrainingRecord
from mlhandoff.bundle.signing import TrustAnchors, verify_bundle_signature
from mlhandoff.contract.outputs import name_outputs
from mlhandoff.contract.tables import TableLike, read_table
from mlhandoff.contract.validate import CompiledContract, without_batch_rules
from mlhandoff.errors import BundleError, IntegrityError, MissingExtraError, SpecError
from mlhandoff.flavors import load_predictor
from mlhandoff.flavors.base import LoadOptions, Predictor
from mlhandoff.flavors.compile import load_compiled
from mlhandoff.flavors.outputs import label_type
from mlhandoff.spec.loader import load_spec, parse_spec
from mlhandoff.spec.models import DataContract, HandoffSpec, OutputContract


class EnvironmentMismatchWarning(UserWarning):
    """The packages installed here differ from the bundle's lock; results may differ."""


class CompiledUnavailableWarning(UserWarning):
    """The bundle's compiled model needs a library not installed here: the original serves."""


_OPENED = object()  # only open_bundle passes this: a Bundle is never built around unchecked files


@dataclass
class Bundle:
    """A bundle whose files matched its manifest when it was opened (see :func:`open_bundle`)."""

    root: Path
    manifest: dict[str, Any]
    spec: HandoffSpec
    record: PackRecord
    integrity: IntegrityReport
    #: Reports a format-1 bundle kept inside its spec, served as if they were files.
    legacy_reports: dict[str, Any] = field(default_factory=dict, repr=False)
    _token: object = field(default=None, repr=False)
    _predictor: Predictor | None = field(default=None, repr=False)
    _compiled: Predictor | None = field(default=None, repr=False)
    #: The keys the opener trusts (``--public-key``, ``--keyring``); the trust checks read them.
    anchors: TrustAnchors = field(default_factory=TrustAnchors)

    def __post_init__(self) -> None:
        if self._token is not _OPENED:
            raise TypeError("use mlhandoff.open_bundle(path): it checks every hash first")

    @property
    def digest(self) -> str:
        return str(self.manifest["bundle_digest"])

    @property
    def files(self) -> frozenset[str]:
        return frozenset(self.manifest["files"])

    @property
    def model_path(self) -> Path:
        return self.root / self.record.model.path

    @property
    def environment(self) -> dict[str, Any]:
        path = self.root / layout.ENVIRONMENT
        return dict(json.loads(path.read_text(encoding="utf-8"))) if path.exists() else {}

    @property
    def compiled(self) -> bool:
        """Whether the bundle holds a compiled form of its model that pack proved equivalent."""
        return self.record.compiled is not None

    def predictor(self, compiled: bool = True) -> Predictor:
        """Load the model (once); refused unless the integrity check passed.

        With ``compiled`` (the default), the compiled form when the bundle has one: the one
        pack proved to answer like the model. ``compiled=False`` loads the model itself.
        """
        if not self.integrity.ok:
            raise IntegrityError(
                f"{self.root}: refusing to load the model: {self.integrity.describe()}"
            )
        if compiled and self.record.compiled is not None:
            if self._compiled is None:
                self._compiled = self._load_compiled(self.record.compiled.path)
            if self._compiled is not None:
                return self._compiled
        if self._predictor is None:
            self._warn_mismatches()
            self._predictor = load_predictor(  # only files under the root, all hashed above
                self.model_path, self.record.model.flavor, self.load_options()
            )
        return self._predictor

    def _load_compiled(self, rel: str) -> Predictor | None:
        self._warn_mismatches()
        try:
            return load_compiled(self.root / rel, self.load_options())
        except MissingExtraError as exc:
            warnings.warn(
                f"{self.root.name}: the compiled model cannot run here ({exc}); the original "
                "model serves",
                CompiledUnavailableWarning,
                stacklevel=3,
            )
            return None

    def _warn_mismatches(self) -> None:
        if self._predictor is not None or self._compiled is not None:
            return  # said once, for whichever form loaded first
        mismatches = version_mismatches(self.environment)
        if mismatches:
            warnings.warn(
                "installed packages differ from the bundle's env/requirements.txt: "
                + "; ".join(mismatches[:5]),
                EnvironmentMismatchWarning,
                stacklevel=3,
            )

    def load_options(self) -> LoadOptions:
        return load_options(self.spec, self.record.model, self.root)

    def predict(self, data: TableLike, *, validate: bool = True, compiled: bool = True) -> pa.Table:
        """Outputs named as in the output contract, for a table of inputs.

        The inputs are checked first by the validator the server uses (per-record rules; extra
        columns such as a label are ignored): data that breaks the contract raises
        ContractViolation instead of being scored. ``validate=False`` skips the check;
        ``compiled=False`` scores with the model itself, not its compiled form.
        """
        table = read_table(data, contract=self.spec.data_contract, name="input")
        if validate:
            self._record_contract.validate(table, allow_extra=True).raise_for_violations("input")
        return self.predict_table(table, compiled=compiled)

    def predict_table(self, table: pa.Table, *, compiled: bool = True) -> pa.Table:
        """``predict`` for an Arrow table already typed as the data contract says."""
        normalized = self._contract.normalize(table)
        return name_outputs(self.predictor(compiled).predict(normalized), self.outputs)

    @functools.cached_property
    def _contract(self) -> CompiledContract:
        return CompiledContract(self.spec.data_contract)

    @functools.cached_property
    def _record_contract(self) -> CompiledContract:
        # the PII fields pack dropped are not used by the model: their absence is no refusal
        contract = without_fields(without_batch_rules(self.spec.data_contract), self.dropped_fields)
        return CompiledContract(contract)

    @functools.cached_property
    def dropped_fields(self) -> frozenset[str]:
        """PII fields pack dropped from the golden and eval data (``reports/pii.json``)."""
        report = self.report(layout.PII_REPORT) or {}
        return frozenset(f for names in (report.get("dropped") or {}).values() for f in names)

    @functools.cached_property
    def outputs(self) -> OutputContract:
        """The output contract; a standard ``label`` keeps the type of the model's classes."""
        return model_outputs(self.spec, self.record.model)

    def golden(self) -> tuple[pa.Table, pa.Table]:
        return pq.read_table(self.root / layout.GOLDEN_INPUTS), pq.read_table(
            self.root / layout.GOLDEN_OUTPUTS
        )

    def report(self, rel: str) -> Any | None:
        """A JSON report of the bundle (``reports/…``), or None when it has none."""
        if rel in self.legacy_reports:
            return self.legacy_reports[rel]
        if rel not in self.manifest["files"]:
            return None
        return json.loads((self.root / rel).read_text(encoding="utf-8"))


def without_fields(contract: DataContract, names: frozenset[str]) -> DataContract:
    """The contract less ``names`` (fields a bundle's data left out on purpose)."""
    if not names:
        return contract
    fields = {n: f for n, f in contract.fields.items() if n not in names}
    return contract.model_copy(update={"fields": fields})


def model_outputs(spec: HandoffSpec, model: ModelRecord) -> OutputContract:
    """The outputs a packed model answers with (the same at pack, from a bundle, in the server)."""
    classes = model.classes
    return spec.outputs(label_type(classes) if classes else None)  # type: ignore[arg-type]


def load_options(spec: HandoffSpec, model: ModelRecord, base: Path) -> LoadOptions:
    """How to load the model at ``base / model.path``: the same at pack and from a bundle."""
    return LoadOptions(
        task=spec.model.task,
        trusted_types=tuple(spec.security.trusted_types),
        entrypoint=spec.model.entrypoint,
        code_dir=base / model.path if model.flavor == "python_function" else None,
        threshold=spec.model.threshold,
        features=tuple(spec.features()),
    )


def read_bundle(
    path: str | Path, progress: Progress | None = None
) -> tuple[dict[str, Any], IntegrityReport]:
    """The manifest and a full re-hash of the files, without trusting or loading anything."""
    root = Path(path)
    manifest = read_manifest(root)
    return manifest, check_integrity(root, manifest, progress)


def open_bundle(
    path: str | Path,
    progress: Progress | None = None,
    *,
    checked: tuple[dict[str, Any], IntegrityReport] | None = None,
    anchors: TrustAnchors | None = None,
    require_signature: bool = False,
) -> Bundle:
    """Verify every hash, then read the frozen spec and the pack record.

    Raises IntegrityError on any mismatch and BundleError when the spec or record is invalid
    or names a path outside the bundle. ``checked`` is what :func:`read_bundle` just returned
    for this path (so verify, which reports integrity itself, does not hash twice).
    ``require_signature`` (serve ``--public-key``): ``signatures/model.sig`` must verify with
    ``anchors.public_keys`` before anything, the spec included, is parsed (SignatureError).
    """
    root = Path(path)
    anchors = anchors or TrustAnchors()
    manifest, integrity = checked if checked is not None else read_bundle(root, progress)
    if not integrity.ok:
        raise IntegrityError(f"{root}: bundle does not match MANIFEST.json: {integrity.describe()}")
    if require_signature:
        verify_bundle_signature(root, manifest, anchors.public_keys, "the given public keys")
    if manifest["format_version"] == 1:
        spec, record, legacy = _read_format_1(root)
    else:
        spec, record, legacy = _read_spec(root), _read_record(root), {}
    compiled = record.compiled.path if record.compiled else None
    for name, rel in (
        ("model", record.model.path),
        ("compiled model", compiled),
        ("training code", record.training.code_path),
    ):
        if rel is not None and not (root / rel).resolve().is_relative_to(root.resolve()):
            raise BundleError(f"{root}: the {name} path '{rel}' points outside the bundle")
    return Bundle(root, manifest, spec, record, integrity, legacy, _OPENED, anchors=anchors)


def _read_spec(root: Path) -> HandoffSpec:
    try:
        return load_spec(root / layout.SPEC)
    except SpecError as exc:
        raise BundleError(f"{root}: the frozen spec is invalid: {exc}") from exc


def _read_record(root: Path) -> PackRecord:
    path = root / layout.PACK_RECORD
    try:
        return PackRecord.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise BundleError(f"{root}: {layout.PACK_RECORD} is missing") from None
    except ValidationError as exc:
        raise BundleError(f"{root}: {layout.PACK_RECORD} is invalid: {exc}") from exc


#: What format-1 bundles wrote into the frozen spec at pack; format 2 keeps it in reports/.
_FORMAT_1_COMPUTED = (
    ("training", "git_commit"),
    ("training", "git_dirty"),
    ("environment", "python"),
    ("environment", "platform"),
    ("data_contract", "leakage"),
)


def _read_format_1(root: Path) -> tuple[HandoffSpec, PackRecord, dict[str, Any]]:
    """Format 1 froze what pack computed into handoff.yaml: split it back out."""
    path = root / layout.SPEC
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        computed = {
            key: data.get(section, {}).pop(key, None) for section, key in _FORMAT_1_COMPUTED
        }
        spec = parse_spec(yaml.safe_dump(data, sort_keys=False), path)
        model = data["model"]
        training = data.get("training") or {}
        record = PackRecord(
            model=ModelRecord(path=model["path"], flavor=model["flavor"]),
            training=TrainingRecord(
                code_path=training.get("code_path"),
                git_commit=computed["git_commit"],
                git_dirty=computed["git_dirty"],
                data=[
                    DataDigest(path=d["path"], role=d.get("role", "train"), sha256=d["sha256"])
                    for d in training.get("data") or []
                    if d.get("sha256")
                ],
            ),
            golden_rows=pq.read_metadata(root / layout.GOLDEN_OUTPUTS).num_rows,
        )
    except SpecError as exc:
        raise BundleError(f"{root}: the frozen spec is invalid: {exc}") from exc
    except (yaml.YAMLError, AttributeError, KeyError, TypeError, ValidationError) as exc:
        raise BundleError(
            f"{root}: the frozen spec of this format-1 bundle is invalid: {exc}"
        ) from exc
    legacy = {}
    if computed["leakage"] is not None:
        legacy[layout.LEAKAGE_REPORT] = computed["leakage"]
    return spec, record, legacy

"""Opening a packed bundle: the manifest is checked before anything in it is deserialised."""

from __future__ import annotations

import functools
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mlhandoff.bundle import layout
from mlhandoff.bundle.environment import version_mismatches
from mlhandoff.bundle.manifest import IntegrityReport, Progress, check_integrity, read_manifest
from mlhandoff.contract.outputs import name_outputs
from mlhandoff.contract.tables import TableLike, read_table
from mlhandoff.contract.validate import CompiledContract
from mlhandoff.errors import BundleError, IntegrityError, SpecError
from mlhandoff.flavors import load_predictor
from mlhandoff.flavors.base import LoadOptions, Predictor
from mlhandoff.spec.loader import load_spec
from mlhandoff.spec.models import HandoffSpec, OutputContract


class EnvironmentMismatchWarning(UserWarning):
    """The packages installed here differ from the bundle's lock; results may differ."""


@dataclass
class Bundle:
    """A bundle whose files matched its manifest when it was opened."""

    root: Path
    manifest: dict[str, Any]
    spec: HandoffSpec
    integrity: IntegrityReport
    _predictor: Predictor | None = field(default=None, repr=False)

    @property
    def digest(self) -> str:
        return str(self.manifest["bundle_digest"])

    @property
    def environment(self) -> dict[str, Any]:
        path = self.root / layout.ENVIRONMENT
        return dict(json.loads(path.read_text(encoding="utf-8"))) if path.exists() else {}

    def predictor(self) -> Predictor:
        """Load the model (once); refused unless the integrity check passed."""
        if not self.integrity.ok:
            raise IntegrityError(
                f"{self.root}: refusing to load the model: {self.integrity.describe()}"
            )
        if self._predictor is None:
            mismatches = version_mismatches(self.environment)
            if mismatches:
                warnings.warn(
                    "installed packages differ from the bundle's env/requirements.txt: "
                    + "; ".join(mismatches[:5]),
                    EnvironmentMismatchWarning,
                    stacklevel=2,
                )
            self._predictor = load_predictor(  # only files under the root, all hashed above
                self.root / self.spec.model.path, _flavor(self.spec), self.load_options()
            )
        return self._predictor

    def load_options(self) -> LoadOptions:
        return load_options(self.spec, self.root)

    def predict(self, data: TableLike) -> pa.Table:
        """Outputs named as in the output contract, for a table of inputs."""
        return self.predict_table(read_table(data))

    def predict_table(self, table: pa.Table) -> pa.Table:
        """``predict`` for an Arrow table already typed as the data contract says."""
        normalized = self._contract.normalize(table)
        return name_outputs(self.predictor().predict(normalized), self._outputs)

    @functools.cached_property
    def _contract(self) -> CompiledContract:
        return CompiledContract(self.spec.data_contract)

    @functools.cached_property
    def _outputs(self) -> OutputContract:
        return self.spec.outputs()

    def golden(self) -> tuple[pa.Table, pa.Table]:
        return pq.read_table(self.root / layout.GOLDEN_INPUTS), pq.read_table(
            self.root / layout.GOLDEN_OUTPUTS
        )


def _flavor(spec: HandoffSpec) -> str:
    if spec.model.flavor is None:
        raise BundleError("the bundle's frozen spec does not record model.flavor")
    return spec.model.flavor


def load_options(spec: HandoffSpec, base: Path) -> LoadOptions:
    return LoadOptions(
        task=spec.model.task,
        trusted_types=tuple(spec.security.trusted_types),
        entrypoint=spec.model.entrypoint,
        code_dir=base / spec.model.path if spec.model.flavor == "python_function" else None,
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


def open_bundle(path: str | Path, progress: Progress | None = None) -> Bundle:
    """Verify every hash, then read the frozen spec; raises IntegrityError on any mismatch."""
    root = Path(path)
    manifest, integrity = read_bundle(root, progress)
    if not integrity.ok:
        raise IntegrityError(f"{root}: bundle does not match MANIFEST.json: {integrity.describe()}")
    try:
        spec = load_spec(root / layout.SPEC)
    except SpecError as exc:
        raise BundleError(f"{root}: the frozen spec is invalid: {exc}") from exc
    model = (root / spec.model.path).resolve()
    if not model.is_relative_to(root.resolve()):
        raise BundleError(
            f"{root}: model.path '{spec.model.path}' points outside the bundle; refusing it"
        )
    return Bundle(root=root, manifest=manifest, spec=spec, integrity=integrity)

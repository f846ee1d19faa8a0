"""The reference a bundle is monitored against: which rows it is built from, and reading it back."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq

from mlhandoff.bundle import layout
from mlhandoff.bundle.bundle import Bundle, model_outputs
from mlhandoff.bundle.record import ModelRecord
from mlhandoff.contract.outputs import name_outputs
from mlhandoff.contract.validate import CompiledContract
from mlhandoff.errors import BundleError
from mlhandoff.evaluate.run import predict_checked
from mlhandoff.flavors.base import Predictor
from mlhandoff.monitor.profile import Profile, build_reference
from mlhandoff.spec.models import HandoffSpec


def reference_rows(
    spec: HandoffSpec, staged: pa.Table | None, sample: pa.Table
) -> tuple[pa.Table, str]:
    """The evaluation sample when pack wrote one (``acceptance.data``), else the sample pack was
    given (``golden.sample``); with the words the profile records for it."""
    if staged is not None:
        return staged, (
            f"evaluation sample ({layout.EVAL_SAMPLE}, {staged.num_rows} rows of acceptance.data "
            f"{spec.acceptance.data})"
        )
    where = (
        f"golden.sample {spec.golden.sample}" if spec.golden.sample else "the sample given to pack"
    )
    return sample, f"{where} ({sample.num_rows} rows)"


def profile_rows(
    spec: HandoffSpec, model: ModelRecord, predictor: Predictor, table: pa.Table, source: str
) -> Profile:
    """The reference profile of ``table``'s inputs and of the model's outputs on them."""
    contract = CompiledContract(spec.data_contract)
    inputs = table.select([c for c in table.column_names if c in spec.data_contract.fields])
    raw = predict_checked(predictor, contract.normalize(inputs), "the model", "the reference rows")
    outputs = name_outputs(raw, model_outputs(spec, model))
    return build_reference(
        spec.data_contract,
        model_outputs(spec, model),
        inputs,
        outputs,
        source=source,
        classes=model.classes,
    )


def load_reference(bundle: Bundle) -> Profile:
    """The bundle's reference profile; a bundle packed before profiles existed says so."""
    if layout.REFERENCE_PROFILE not in bundle.files:
        raise BundleError(
            f"{bundle.root}: no {layout.REFERENCE_PROFILE}: the bundle was packed by an mlhandoff "
            "without monitoring; re-pack it to monitor it"
        )
    try:
        data = json.loads((bundle.root / layout.REFERENCE_PROFILE).read_text(encoding="utf-8"))
        return Profile.from_json(data)
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(
            f"{bundle.root}: {layout.REFERENCE_PROFILE} is unreadable: {exc}"
        ) from exc


def recount(bundle: Bundle, stored: Profile) -> Profile | None:
    """The reference ``stored`` in the bundle, recomputed from the bundle's own evaluation sample
    (None without one)."""
    if layout.EVAL_SAMPLE not in bundle.files:
        return None
    table = pq.read_table(bundle.root / layout.EVAL_SAMPLE)
    # the model itself, as pack profiled it: the compiled form may differ in the last bit, and a
    # score on a bin edge (edges are quantiles of these very scores) would change bins
    predictor = bundle.predictor(compiled=False)
    return profile_rows(bundle.spec, bundle.record.model, predictor, table, stored.source)

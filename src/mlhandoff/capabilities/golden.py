"""The golden set: seeded sample rows and the model's outputs on them, replayed by ``verify``."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlhandoff.bundle import layout
from mlhandoff.bundle.bundle import Bundle, model_outputs
from mlhandoff.capability import Capability, Check, Outcome, PackContext, Step
from mlhandoff.contract.outputs import name_outputs, output_violations
from mlhandoff.contract.validate import CompiledContract, without_batch_rules
from mlhandoff.errors import HandoffError, PredictError
from mlhandoff.spec.models import HandoffSpec


def golden_outputs(ctx: PackContext) -> None:
    predictor = ctx.require_predictor()
    assert ctx.model is not None  # the model step ran first
    contract = model_outputs(ctx.spec, ctx.model)
    inputs = _golden_rows(ctx.sample, ctx.spec)
    try:
        outputs = name_outputs(predictor.predict(inputs), contract)
    except PredictError:
        raise
    except Exception as exc:  # a user model can raise anything; report it as ours
        raise PredictError(f"the model failed on the sample: {type(exc).__name__}: {exc}") from exc
    problems = output_violations(outputs, contract)
    if problems:
        raise PredictError("model outputs break the output contract: " + "; ".join(problems))
    (ctx.root / layout.GOLDEN_INPUTS).parent.mkdir(exist_ok=True)
    pq.write_table(inputs, ctx.root / layout.GOLDEN_INPUTS)
    pq.write_table(outputs, ctx.root / layout.GOLDEN_OUTPUTS)
    ctx.golden_outputs = outputs


def _golden_rows(sample: pa.Table, spec: HandoffSpec) -> pa.Table:
    """A deterministic subset of the sample: seeded by training.seed, kept in original order."""
    n = min(spec.golden.rows, sample.num_rows)
    rng = np.random.default_rng(spec.training.seed or 0)
    picked = np.sort(rng.choice(sample.num_rows, size=n, replace=False))
    columns = [c for c in sample.column_names if c in spec.data_contract.fields]
    return sample.select(columns).take(pa.array(picked))


def golden_contract(bundle: Bundle) -> Outcome:
    inputs, _ = bundle.golden()
    # The golden rows are a small subset: whole-batch rules were checked on the sample at pack.
    report = CompiledContract(without_batch_rules(bundle.spec.data_contract)).validate(inputs)
    if report.ok:
        return "pass", f"{report.rows} rows, {len(bundle.spec.data_contract.fields)} fields"
    return "fail", "; ".join(f"{v.field} {v.rule}: {v.message}" for v in report.violations[:3])


def golden_replay(bundle: Bundle) -> Outcome:
    inputs, expected = bundle.golden()
    try:
        actual = bundle.predict(inputs)
    except HandoffError as exc:
        return "fail", f"{type(exc).__name__}: {exc}"
    rtol, atol = bundle.spec.golden.rtol, bundle.spec.golden.atol
    mismatches = [
        m
        for name in expected.column_names
        if (m := _compare(name, expected.column(name), actual, rtol, atol))
    ]
    if mismatches:
        return "fail", "; ".join(mismatches)
    return "pass", f"{expected.num_rows} rows match within rtol={rtol:g}, atol={atol:g}"


def _compare(
    name: str, expected: pa.ChunkedArray, actual: pa.Table, rtol: float, atol: float
) -> str | None:
    if name not in actual.column_names:
        return f"output '{name}' is no longer produced"
    want, got = (
        expected.to_numpy(zero_copy_only=False),
        actual.column(name).to_numpy(zero_copy_only=False),
    )
    if want.dtype.kind == "f" or got.dtype.kind == "f":
        close = np.isclose(
            got.astype(float), want.astype(float), rtol=rtol, atol=atol, equal_nan=True
        )
    else:
        close = got == want
    bad = np.flatnonzero(~close)
    if not len(bad):
        return None
    row = int(bad[0])
    return f"{name}: {len(bad)} of {len(want)} rows differ (row {row}: expected {want[row]!r}, got {got[row]!r})"


CAPABILITY = Capability(
    "golden",
    writes=(layout.GOLDEN_INPUTS, layout.GOLDEN_OUTPUTS),
    steps=(Step("golden", "computing golden outputs", golden_outputs),),
    checks=(
        Check("golden_contract", "Golden inputs satisfy the data contract", golden_contract),
        Check("golden_replay", "Golden replay reproduces expected outputs", golden_replay),
    ),
)

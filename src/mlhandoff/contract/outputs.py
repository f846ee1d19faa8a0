"""The output contract: naming a predictor's standard outputs and checking their ranges."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlhandoff.contract.types import arrow_type
from mlhandoff.errors import PredictError
from mlhandoff.spec.models import OutputContract


def name_outputs(raw: dict[str, np.ndarray], contract: OutputContract) -> pa.Table:
    """The outputs the contract names, typed as it says, in its order."""
    columns = {}
    for name, spec in contract.fields.items():
        source = spec.source or name
        if source not in raw:
            raise PredictError(
                f"the model produced no '{source}' output; it produced {', '.join(raw)}"
            )
        values = np.asarray(raw[source])
        try:
            columns[name] = pa.array(values).cast(arrow_type(spec))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise PredictError(f"output '{name}' is not {spec.type}: {exc}") from exc
    return pa.table(columns)


def output_violations(outputs: pa.Table, contract: OutputContract) -> list[str]:
    """Outputs outside the contract's ranges, or not finite, one message per output."""
    problems = []
    for name, spec in contract.fields.items():
        column = outputs.column(name)
        if spec.type == "float":
            bad = pc.sum(pc.invert(pc.is_finite(column))).as_py() or 0
            if bad:
                problems.append(f"{name}: {bad} non-finite value(s)")
        if spec.min is not None:
            below = pc.sum(pc.less(column, spec.min)).as_py() or 0
            if below:
                problems.append(f"{name}: {below} value(s) below {spec.min:g}")
        if spec.max is not None:
            above = pc.sum(pc.greater(column, spec.max)).as_py() or 0
            if above:
                problems.append(f"{name}: {above} value(s) above {spec.max:g}")
    return problems


class PredictionRows:
    """Outputs → one JSON-ready dict per record, as the API answers them: below
    ``api.abstain_below`` confidence (the confidence output, else the score's distance from the
    middle) the label is null and ``abstain`` true. The server and the rendered docs share it,
    so the README's example response is what the server sends."""

    def __init__(
        self,
        contract: OutputContract,
        abstain_below: float | None,
        on_abstain: Callable[[], None] | None = None,
    ) -> None:
        roles = {out.source or name: name for name, out in contract.fields.items()}
        self._label = roles.get("label")
        self._score = roles.get("score")
        self._confidence = roles.get("confidence")
        self._threshold = abstain_below
        self._on_abstain = on_abstain or (lambda: None)

    def __call__(self, outputs: pa.Table) -> list[dict[str, Any]]:
        rows = outputs.to_pylist()
        if self._threshold is None or self._label is None:
            return rows
        for row in rows:
            if self._confidence is not None:
                confidence = row[self._confidence]
            elif self._score is not None:
                confidence = max(row[self._score], 1 - row[self._score])
            else:
                continue
            row["abstain"] = bool(confidence < self._threshold)
            if row["abstain"]:
                row[self._label] = None
                self._on_abstain()
        return rows

"""The model's outputs as JSON rows, with ``api.abstain_below`` applied."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa

from mlhandoff.spec.models import HandoffSpec


class PredictionRows:
    """Outputs → one dict per record. Below ``api.abstain_below`` confidence (the confidence
    output, else the score's distance from the middle), the label is null and ``abstain`` true."""

    def __init__(self, spec: HandoffSpec, on_abstain: Callable[[], None]) -> None:
        roles = {out.source or name: name for name, out in spec.outputs().fields.items()}
        self._label = roles.get("label")
        self._score = roles.get("score")
        self._confidence = roles.get("confidence")
        self._threshold = spec.api.abstain_below
        self._on_abstain = on_abstain

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

"""``POST /invocations``: MLflow's scoring protocol, so MLflow clients work unchanged.

Bodies: ``dataframe_split`` (columns and rows), ``dataframe_records``, ``instances`` (records) or
``inputs`` (records, or a mapping of column to values); answers ``{"predictions": [...]}``.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from mlhandoff.contract.outputs import PredictionRows
from mlhandoff.serve.payload import Columns, Records, columnar, malformed, record_list


class MlflowProtocol:
    route = "/invocations"
    content_type_optional = True
    accepts_nan = True

    def __init__(self, rows: PredictionRows) -> None:
        self._rows = rows

    def parse(self, body: Any) -> Columns | Records:
        if not isinstance(body, dict) or len(body) != 1:
            raise malformed(
                "MLflow scoring takes exactly one of dataframe_split, dataframe_records, "
                "instances, inputs"
            )
        ((key, value),) = body.items()
        if key == "dataframe_split":
            return _split(value)
        if key in ("dataframe_records", "instances"):
            return record_list(value, key)
        if key == "inputs":
            if isinstance(value, list):
                return record_list(value, key)
            if isinstance(value, dict):
                return columnar(value, "inputs")
            raise malformed("'inputs' must be records or a mapping of column to values")
        raise malformed(
            f"unknown MLflow input format '{key}'; use dataframe_split, dataframe_records, "
            "instances or inputs"
        )

    def respond(self, outputs: pa.Table, request_id: str) -> dict[str, Any]:
        return {"predictions": self._rows(outputs)}


def _split(value: Any) -> Columns:
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("columns"), list)
        or not isinstance(value.get("data"), list)
    ):
        raise malformed("dataframe_split needs 'columns' (names) and 'data' (rows)")
    columns: list[Any] = value["columns"]
    rows: list[Any] = value["data"]
    if not rows:
        raise malformed("dataframe_split 'data' is empty")
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(columns):
            raise malformed(f"dataframe_split data[{i}] must be a list of {len(columns)} values")
    return {str(name): [row[j] for row in rows] for j, name in enumerate(columns)}

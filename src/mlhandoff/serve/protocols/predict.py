"""``POST /predict``: one record as a JSON object, or a batch as ``{"instances": [...]}``."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from mlhandoff.contract.outputs import PredictionRows
from mlhandoff.serve.payload import Records, malformed, record_list


class PredictProtocol:
    route = "/predict"
    content_type_optional = False
    accepts_nan = False

    def __init__(self, rows: PredictionRows, model: dict[str, Any]) -> None:
        self._rows = rows
        self._model = model

    def parse(self, body: Any) -> Records:
        if isinstance(body, dict) and "instances" in body:
            if len(body) != 1:
                extra = ", ".join(sorted(k for k in body if k != "instances"))
                raise malformed(f'a batch is {{"instances": [...]}} only; unexpected keys: {extra}')
            return record_list(body["instances"], "instances")
        if isinstance(body, dict):
            return [body]
        raise malformed('send one record as a JSON object, or a batch as {"instances": [records]}')

    def respond(self, outputs: pa.Table, request_id: str) -> dict[str, Any]:
        return {"predictions": self._rows(outputs), "model": self._model, "request_id": request_id}

"""The Open Inference Protocol v2 (KServe, Triton, Seldon): ``POST /v2/models/{name}/infer``
with named input tensors, and ``GET /v2/models/{name}`` for the model's metadata."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from mlhandoff.contract.types import v2_datatype_of, v2_tensor
from mlhandoff.serve.errors import ApiError
from mlhandoff.serve.payload import Columns, columnar, malformed
from mlhandoff.spec.models import HandoffSpec, OutputContract


class V2Protocol:
    route = "/v2/models/{name}/infer"
    content_type_optional = True
    accepts_nan = True

    def __init__(self, spec: HandoffSpec, outputs: OutputContract, flavor: str) -> None:
        self._spec, self._outputs, self._flavor = spec, outputs, flavor

    def unknown_model(self, name: str, *, infer: bool) -> ApiError | None:
        """404 for a model name this server does not serve."""
        if name == self._spec.name:
            return None
        message = f"no model named '{name}'"
        if infer:
            message += f"; this server serves '{self._spec.name}'"
        return ApiError(404, message)

    def parse(self, body: Any) -> Columns:
        """``{"inputs": [{"name", "shape", "datatype", "data"}]}`` → columns."""
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("inputs"), list)
            or not body["inputs"]
        ):
            raise malformed(
                "a v2 inference request needs a non-empty 'inputs' array of named tensors"
            )
        columns: Columns = {}
        for i, tensor in enumerate(body["inputs"]):
            if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
                raise malformed(f"inputs[{i}] must be an object with a 'name'")
            data = tensor.get("data")
            if not isinstance(data, list):
                raise malformed(f"inputs[{i}] ('{tensor['name']}') needs 'data' as an array")
            columns[tensor["name"]] = self._rows(tensor["name"], data)
        return columnar(columns, "inputs")

    def _rows(self, name: str, data: list[Any]) -> list[Any]:
        """One value per row: an array field's rows are lists (nested, or flat row-major in
        chunks of its length); any other field's values may come wrapped in one list."""
        field = self._spec.data_contract.fields.get(name)
        if field is not None and field.type == "array" and field.length:
            if all(isinstance(v, list) for v in data):
                return data
            if len(data) % field.length:
                raise malformed(
                    f"'{name}' holds {len(data)} values, not a whole number of rows of "
                    f"{field.length} (its length)"
                )
            return [data[i : i + field.length] for i in range(0, len(data), field.length)]
        return data[0] if len(data) == 1 and isinstance(data[0], list) else data

    def respond(self, outputs: pa.Table, request_id: str) -> dict[str, Any]:
        tensors = [
            {
                "name": n,
                "shape": [outputs.num_rows],
                "datatype": v2_datatype_of(outputs.column(n).type),
                "data": outputs.column(n).to_pylist(),
            }
            for n in outputs.column_names
        ]
        return {
            "model_name": self._spec.name,
            "model_version": self._spec.version,
            "id": request_id,
            "outputs": tensors,
        }

    def metadata(self) -> dict[str, Any]:
        spec = self._spec
        return {
            "name": spec.name,
            "versions": [spec.version],
            "platform": f"mlhandoff-{self._flavor}",
            "inputs": [v2_tensor(n, f) for n, f in spec.data_contract.fields.items()],
            "outputs": [v2_tensor(n, f) for n, f in self._outputs.fields.items()],
        }

"""The scoring protocols the server speaks, one module each for parsing *and* responding:
``predict`` (our own ``/predict``), ``mlflow`` (``/invocations``) and ``v2`` (the Open
Inference Protocol). A protocol only shapes bodies; the service runs the same guards, contract
and model routing for all of them."""

from __future__ import annotations

from typing import Any, Protocol

import pyarrow as pa

from mlhandoff.serve.payload import Columns, Records
from mlhandoff.serve.protocols.mlflow import MlflowProtocol
from mlhandoff.serve.protocols.predict import PredictProtocol
from mlhandoff.serve.protocols.v2 import V2Protocol


class ScoringProtocol(Protocol):
    #: The route as labelled in metrics and the access log (also part of the idempotency digest).
    route: str
    #: Clients of this protocol may send no Content-Type (Triton's Python client sends none);
    #: a wrong one is still 415.
    content_type_optional: bool
    #: Python clients (MLflow's, Triton's) write a missing value as a bare NaN (json.dumps's
    #: default): read it as the contract's null.
    accepts_nan: bool

    def parse(self, body: Any) -> Columns | Records:
        """The body's records or columns, or a 400 ``ApiError`` naming what is wrong."""
        ...

    def respond(self, outputs: pa.Table, request_id: str) -> dict[str, Any]:
        """The answer's JSON body for the model's outputs."""
        ...


__all__ = ["MlflowProtocol", "PredictProtocol", "ScoringProtocol", "V2Protocol"]

"""A minimal BentoML service of the example's scikit-learn pipeline, as a BentoML user writes one.

Two services over the same model, served one at a time by bench/serve.py from
bench/.venvs/bentoml:

    BENCH_SKOPS_MODEL=/path/model.skops bentoml serve bento_service:RiskyPlain   --port P
    BENCH_SKOPS_MODEL=/path/model.skops bentoml serve bento_service:RiskyBatched --port P

``POST /predict`` takes ``{"records": [record, ...]}`` and answers ``[{"score", "label"}, ...]``.
The endpoint is untyped (``list[dict]``): BentoML checks only that it is a list of objects.
``RiskyBatched`` is the same API with adaptive batching (``batchable=True``, BentoML's default
batch size and latency limits). One worker each, like ``mlhandoff serve`` by default.
"""

from __future__ import annotations

import os
from typing import Any

import bentoml
import pandas as pd
import skops.io as sio

THRESHOLD = 0.5


def _load() -> Any:
    path = os.environ["BENCH_SKOPS_MODEL"]
    return sio.load(path, trusted=sio.get_untrusted_types(file=path))


def _score(model: Any, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    proba = model.predict_proba(pd.DataFrame.from_records(records))[:, 1]
    return [{"score": float(p), "label": int(p >= THRESHOLD)} for p in proba]


@bentoml.service(workers=1)
class RiskyPlain:
    def __init__(self) -> None:
        self.model = _load()

    @bentoml.api
    def predict(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return _score(self.model, records)


@bentoml.service(workers=1)
class RiskyBatched:
    def __init__(self) -> None:
        self.model = _load()

    @bentoml.api(batchable=True)
    def predict(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return _score(self.model, records)

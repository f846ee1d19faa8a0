"""Where validate, monitor and evaluate run: here (``local``, the default) or on a Dask cluster
(``dask``), with the same answers either way.

::

    engine = open_engine("dask", scheduler="tcp://host:8786")   # None: a LocalCluster
    try:
        report = engine.validate("data/", CompiledContract(spec.data_contract))
    finally:
        engine.close()
"""

from mlhandoff.engines.base import ENGINES, Engine, Progress, open_engine
from mlhandoff.engines.local import LocalEngine

__all__ = ["ENGINES", "Engine", "LocalEngine", "Progress", "open_engine"]

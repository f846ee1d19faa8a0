"""Save the example's scikit-learn pipeline as an MLflow model, as an MLflow user would.

Runs inside bench/.venvs/mlflow (made by bench/setup_serve.sh):

    python mlflow_model.py MODEL.skops GOLDEN_INPUTS.parquet OUT_DIR

The pipeline is loaded from the bundle's skops file (trusting the types it lists), then saved
with ``mlflow.sklearn.save_model``: ``pyfunc_predict_fn="predict_proba"`` so the server does the
same work as mlhandoff's, and a signature inferred from the golden inputs (MLflow's best case:
it then checks column types; the
timestamp is typed as a string, see below). ``mlflow models serve -m OUT_DIR --env-manager local`` serves it.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import mlflow.sklearn
import pandas as pd
import pyarrow.parquet as pq
import skops.io as sio
from mlflow.models import infer_signature


def main() -> None:
    model_path, golden_path, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    model = sio.load(model_path, trusted=sio.get_untrusted_types(file=model_path))
    sample = pq.read_table(golden_path).to_pandas()
    # MLflow's datetime type takes only timezone-naive values; the requests carry ISO-8601
    # strings with an offset (as in the spec's examples), so the signature calls it a string.
    for name in sample.columns:
        if isinstance(sample[name].dtype, pd.DatetimeTZDtype):
            sample[name] = sample[name].map(lambda t: t.isoformat())
    signature = infer_signature(sample, model.predict_proba(sample))
    shutil.rmtree(out, ignore_errors=True)
    mlflow.sklearn.save_model(
        model,
        str(out),
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
        signature=signature,
        pyfunc_predict_fn="predict_proba",
    )
    print(f"saved {out} with signature {signature.inputs.input_names()}")


if __name__ == "__main__":
    main()

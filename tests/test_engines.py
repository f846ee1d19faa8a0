"""The dask engine gives the local engine's answers, exactly, on a LocalCluster of 2 workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlhandoff.contract.stream import validate_file
from mlhandoff.contract.validate import CompiledContract
from mlhandoff.engines import LocalEngine
from mlhandoff.spec.models import DataContract

distributed = pytest.importorskip("dask.distributed")

from mlhandoff.engines.dask_engine import DaskEngine  # noqa: E402

CONTRACT = DataContract.model_validate(
    {
        "label": "y",
        "fields": {
            "tx": {"type": "string", "id": True, "pattern": "tx_[0-9]+"},
            "x": {"type": "float", "min": 0, "max": 10, "nullable": True, "max_null_fraction": 0.1},
            "c": {"type": "category", "domain": ["a", "b"]},
            "n": {"type": "int", "min": 0},
            "email": {"type": "string", "pii": True, "pattern": "[a-z]+@[a-z]+"},
        },
    }
)


def _table(rows: int, seed: int) -> pa.Table:
    """Rows with violations spread everywhere: repeated ids across files, out-of-range values,
    unseen categories, PII that breaks its pattern."""
    rng = np.random.default_rng(seed)
    ids = [f"tx_{i}" for i in rng.integers(0, rows * 3, rows)]  # many repeats, across files
    x = rng.uniform(-1, 11, rows)
    x[rng.random(rows) < 0.15] = np.nan
    return pa.table(
        {
            "tx": ids,
            "x": pa.array(x, from_pandas=True),
            "c": rng.choice(["a", "b", "z"], rows, p=[0.5, 0.45, 0.05]).tolist(),
            "n": rng.integers(-3, 1000, rows),
            "email": rng.choice(["ab@cd", "BAD", "ef@gh"], rows).tolist(),
            "y": rng.integers(0, 2, rows),
        }
    )


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    for i, rows in enumerate([700, 1, 1300, 500]):
        pq.write_table(_table(rows, i), root / f"part-{i}.parquet", row_group_size=300)
    return root


@pytest.fixture(scope="module")
def engine() -> Iterator[DaskEngine]:
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    )
    client = distributed.Client(cluster)
    engine = DaskEngine(client, cluster, partition_rows=400)
    yield engine
    engine.close()


def _same(a: object, b: object) -> None:
    assert a == b


def test_validate_equals_local_on_a_directory_of_files(dataset: Path, engine: DaskEngine) -> None:
    compiled = CompiledContract(CONTRACT, max_examples=7)
    local = LocalEngine().validate(dataset, compiled, label="y", chunk_rows=128)
    remote = engine.validate(dataset, compiled, label="y", chunk_rows=128)
    assert remote.to_dict() == local.to_dict()
    rules = {(v.field, v.rule): v for v in local.violations}
    assert {("tx", "unique"), ("x", "max"), ("n", "min"), ("email", "pattern")} <= set(rules)
    assert set(rules[("email", "pattern")].values) == {"<redacted>"}
    assert local.rows == 2501 and 0 < local.failing_rows < local.rows


def test_ids_are_unique_over_the_whole_data_on_both_engines(
    dataset: Path, engine: DaskEngine
) -> None:
    table = pa.concat_tables([pq.read_table(p) for p in sorted(dataset.glob("*.parquet"))])
    ids = table.column("tx").to_pylist()
    first: dict[str, int] = {}
    expected = [i for i, v in enumerate(ids) if first.setdefault(v, i) != i]
    compiled = CompiledContract(CONTRACT, max_examples=5)
    for report in (
        validate_file(dataset, compiled, chunk_rows=64),  # chunks far smaller than the data
        engine.validate(dataset, compiled, chunk_rows=64),
    ):
        unique = next(v for v in report.violations if v.rule == "unique")
        assert unique.count == len(expected) and unique.rows == expected[:5]

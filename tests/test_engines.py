"""The dask engine gives the local engine's answers, exactly, on a LocalCluster of 2 workers."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from mlhandoff.cli import app
from mlhandoff.contract.stream import validate_file
from mlhandoff.contract.validate import CompiledContract
from mlhandoff.engines import LocalEngine, open_engine
from mlhandoff.errors import ContractViolation, EngineError, InputError
from mlhandoff.spec.models import DataContract

distributed = pytest.importorskip("distributed")

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
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
    )
    client = distributed.Client(cluster)
    engine = DaskEngine(client, cluster, partition_rows=400)
    yield engine
    engine.close()


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


@pytest.fixture(scope="module")
def replay() -> ModuleType:
    """examples/risky_transactions/replay.py (not a package: loaded from its file)."""
    path = Path(__file__).resolve().parents[1] / "examples" / "risky_transactions" / "replay.py"
    spec = importlib.util.spec_from_file_location("engines_replay", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def prediction_log(
    example_bundle: Path, replay: ModuleType, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A day and a half of traffic, drifted from hour 20, an hour per file, one file cut short."""
    out = tmp_path_factory.mktemp("log") / "predictions"
    frame, at = replay.traffic(3000, 11, "2026-04-20", 2, 20.0)
    replay.write_log(example_bundle, frame, at, out)
    replay.write_labels(frame, out.parent / "labels.parquet")
    victim = sorted(out.glob("*.parquet"))[3]
    victim.write_bytes(victim.read_bytes()[:200])
    return out


def test_monitor_equals_local(
    example_bundle: Path, prediction_log: Path, engine: DaskEngine
) -> None:
    options = {
        "labels": prediction_log.parent / "labels.parquet",
        "join_key": "transaction_id",
        "chunk_rows": 50,
    }
    local = LocalEngine().monitor(example_bundle, prediction_log, **options)
    remote = engine.monitor(example_bundle, prediction_log, **options)
    assert remote.to_dict() == local.to_dict()
    assert local.fired and len(local.skipped) == 1 and local.labels["joined_rows"] > 0


def test_evaluate_equals_local(
    example_bundle: Path, example_dir: Path, engine: DaskEngine, tmp_path: Path
) -> None:
    """The test split as a directory of files, the model scoring each partition on a worker:
    the same metrics, the same bootstrap intervals."""
    table = pq.read_table(example_dir / "work" / "test.parquet")
    data = tmp_path / "eval"
    data.mkdir()
    half = table.num_rows // 2
    pq.write_table(table.slice(0, half), data / "a.parquet", row_group_size=250)
    pq.write_table(table.slice(half), data / "b.parquet", row_group_size=250)
    local = LocalEngine().evaluate(example_bundle, data, latency=False, resamples=200)
    remote = engine.evaluate(example_bundle, data, latency=False, resamples=200)
    assert remote.to_dict() == local.to_dict()
    assert any(r.low is not None for r in local.rows)


def test_evaluate_stops_at_the_contract_with_the_local_report(
    example_bundle: Path, example_dir: Path, engine: DaskEngine, tmp_path: Path
) -> None:
    table = pq.read_table(example_dir / "work" / "test.parquet").slice(0, 900)
    amounts = table.column("amount_eur").to_pylist()
    amounts[700] = -5.0
    table = table.set_column(
        table.column_names.index("amount_eur"), "amount_eur", pa.array(amounts)
    )
    path = tmp_path / "bad.parquet"
    pq.write_table(table, path, row_group_size=300)
    errors = []
    for runner in (LocalEngine(), engine):
        with pytest.raises(ContractViolation) as caught:
            runner.evaluate(example_bundle, path, latency=False)
        errors.append(str(caught.value))
    assert errors[0] == errors[1] and "700" in errors[0]


runner = CliRunner()


def test_validate_a_single_file_and_a_hive_dataset(tmp_path: Path, engine: DaskEngine) -> None:
    compiled = CompiledContract(CONTRACT)
    single = tmp_path / "one.parquet"
    pq.write_table(_table(1500, 9), single, row_group_size=200)
    hive = tmp_path / "hive"
    for day in (1, 2):
        (hive / f"day={day}").mkdir(parents=True)
        pq.write_table(_table(600, day), hive / f"day={day}" / "x.parquet", row_group_size=250)
    for data in (single, hive):
        local = validate_file(data, compiled, chunk_rows=100, allow_extra=True)
        assert engine.validate(data, compiled, chunk_rows=100, allow_extra=True) == local
    with_day = validate_file(hive, compiled, chunk_rows=100)  # the partition key is a column
    assert any(v.rule == "unexpected_column" and "day" in v.message for v in with_day.violations)


def test_the_dask_engine_reads_parquet_only(tmp_path: Path, engine: DaskEngine) -> None:
    path = tmp_path / "d.csv"
    path.write_text("tx,x\ntx_1,1.0\n")
    with pytest.raises(InputError, match="reads Parquet"):
        engine.validate(path, CompiledContract(CONTRACT))


def test_an_empty_dataset_gives_the_local_report(tmp_path: Path, engine: DaskEngine) -> None:
    path = tmp_path / "empty.parquet"
    pq.write_table(_table(5, 0).slice(0, 0), path)
    compiled = CompiledContract(CONTRACT)
    assert engine.validate(path, compiled) == validate_file(path, compiled)


class _KillOnce(distributed.diagnostics.plugin.SchedulerPlugin):  # type: ignore[misc]
    """A scheduler plugin: when the first partition's result exists, kill (SIGKILL) the worker
    process holding it, so the result is lost and Dask must compute it again."""

    name = "kill-once"

    def __init__(self, scheduler: object) -> None:
        self.killed: int | None = None
        self.scheduler = scheduler

    def transition(self, key: object, start: str, finish: str, *args: object, **kw: object) -> None:
        if self.killed is not None or finish != "memory" or "validate-part" not in str(key):
            return
        holder = next(iter(self.scheduler.tasks[key].who_has))  # type: ignore[attr-defined]
        self.killed = holder.pid
        os.kill(holder.pid, signal.SIGKILL)


def test_a_worker_killed_mid_run_changes_nothing(dataset: Path) -> None:
    compiled = CompiledContract(CONTRACT, max_examples=4)
    expected = validate_file(dataset, compiled, chunk_rows=128, label="y")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        plugin = _KillOnce(cluster.scheduler)
        cluster.scheduler.add_plugin(plugin)
        with distributed.Client(cluster) as client:
            engine = DaskEngine(client, partition_rows=300)
            report = engine.validate(dataset, compiled, chunk_rows=128, label="y")
    assert plugin.killed is not None  # a worker did die mid-run
    assert report == expected


def test_cli_engines_agree_and_errors_are_one_line(
    example_bundle: Path, example_dir: Path, engine: DaskEngine
) -> None:
    data = str(example_dir / "work" / "test.parquet")
    base = ["validate", data, "-c", str(example_bundle), "--json"]
    local = runner.invoke(app, base)
    address = engine.client.scheduler.address
    remote = runner.invoke(app, [*base, "--engine", "dask", "--scheduler", address])
    assert local.exit_code == remote.exit_code == 0, remote.output
    assert json.loads(remote.stdout) == json.loads(local.stdout)
    unknown = runner.invoke(app, [*base, "--engine", "spark"])
    assert unknown.exit_code == 2 and "unknown engine 'spark'" in unknown.stdout
    alone = runner.invoke(app, [*base, "--scheduler", address])
    assert alone.exit_code == 2 and "--scheduler needs --engine dask" in alone.stdout


def test_cli_monitor_and_evaluate_on_both_engines(
    example_bundle: Path, prediction_log: Path, example_dir: Path, engine: DaskEngine
) -> None:
    address = engine.client.scheduler.address
    dask_args = ["--engine", "dask", "--scheduler", address]
    monitor = ["monitor", str(example_bundle), "--data", str(prediction_log), "--json"]
    evaluate = [
        "evaluate",
        str(example_bundle),
        "--data",
        str(example_dir / "work" / "test.parquet"),
        "--no-latency",
        "--resamples",
        "50",
        "--json",
    ]
    for command in (monitor, evaluate):
        local = runner.invoke(app, command)
        remote = runner.invoke(app, [*command, *dask_args])
        assert remote.exit_code == local.exit_code, remote.output
        assert json.loads(remote.stdout) == json.loads(local.stdout)


def test_an_unreachable_scheduler_is_named_without_a_traceback(
    example_bundle: Path, example_dir: Path
) -> None:
    import dask

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        result = runner.invoke(
            app,
            [
                "validate",
                str(example_dir / "work" / "test.parquet"),
                "-c",
                str(example_bundle),
                "--engine",
                "dask",
                "--scheduler",
                address,
            ],
        )
    assert result.exit_code == 2
    assert f"cannot reach the Dask scheduler at {address}" in result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)


def test_a_missing_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(EngineError, match=r"pip install 'mlhandoff\[dask\]'"):
        open_engine("dask")


def test_the_leakage_sample_is_the_same_however_the_rows_are_cut() -> None:
    from mlhandoff.contract.stream import LeakageSample

    batch = pa.record_batch({"i": np.arange(10_000)})
    whole = LeakageSample(1_000_000)  # a fifth of the rows are drawn
    whole.keep(whole.draw(batch, 0))
    pieces = LeakageSample(1_000_000)
    for start in range(0, 10_000, 777):
        pieces.keep(pieces.draw(batch.slice(start, 777), start))
    drawn = pa.Table.from_batches(whole.batches).column("i").to_pylist()
    assert pa.Table.from_batches(pieces.batches).column("i").to_pylist() == drawn
    assert 1_500 < len(drawn) < 2_500


@given(
    st.lists(st.one_of(st.none(), st.integers(0, 6)), max_size=40),
    st.randoms(use_true_random=False),
)
def test_repeat_rows_is_every_later_occurrence(values: list[int | None], rnd: object) -> None:
    """Against a plain loop, with the pairs in any order (a shuffled bucket)."""
    from mlhandoff.contract.ids import repeat_rows

    first: dict[int, int] = {}
    expected = [i for i, v in enumerate(values) if v is not None and first.setdefault(v, i) != i]
    order = list(range(len(values)))
    rnd.shuffle(order)  # type: ignore[attr-defined]
    shuffled = pa.array([values[i] for i in order], pa.int64())
    assert repeat_rows(shuffled, np.array(order, dtype=np.int64)).tolist() == expected

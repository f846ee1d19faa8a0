"""The Dask engine: validate, monitor and evaluate on a ``dask.distributed`` cluster.

It connects to a running scheduler (``--scheduler tcp://host:8786``) or starts a LocalCluster.
Work is Dask's own: delayed tasks, a dataframe shuffle for ids, futures gathered in order;
Dask retries a task whose worker died. What travels to the workers: the compiled contract,
partitions (file path and row groups; the workers read the data themselves, so they must see
the same paths), the monitor's counters, and for evaluate the bundle's path (each worker opens
and verifies the bundle, then loads its model). Results are partial reports, integer counts or
small arrays, merged on the client in partition order.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from mlhandoff.bundle.bundle import Bundle
from mlhandoff.contract.reader import DEFAULT_CHUNK_ROWS, type_columns
from mlhandoff.contract.report import ValidationReport
from mlhandoff.contract.stream import LeakageSample, check_label
from mlhandoff.contract.validate import CompiledContract
from mlhandoff.engines.base import Progress
from mlhandoff.engines.partitions import PARTITION_ROWS, parquet_parts
from mlhandoff.errors import EngineError
from mlhandoff.evaluate.report import AcceptanceReport
from mlhandoff.monitor.report import MonitorReport
from mlhandoff.monitor.run import FileCounts, monitor

_MISSING = (
    "the dask engine needs the 'dask[distributed]' package, which is not installed; "
    "install it with: pip install 'mlhandoff[dask]'"
)


class DaskEngine:
    """Runs on the cluster behind ``client``; closing it closes a cluster it started."""

    name = "dask"

    def __init__(
        self, client: Any, cluster: Any = None, *, partition_rows: int = PARTITION_ROWS
    ) -> None:
        self.client = client
        self.cluster = cluster
        self.partition_rows = partition_rows

    @classmethod
    def connect(cls, scheduler: str | None = None, *, workers: int | None = None) -> DaskEngine:
        """A client of the scheduler at ``scheduler``, or of a new LocalCluster (``workers``
        processes, one thread each; default one per core); EngineError when it cannot be."""
        try:
            import dask
            from dask.distributed import Client, LocalCluster
        except ImportError as exc:
            raise EngineError(_MISSING) from exc
        if scheduler is None:
            cluster = LocalCluster(
                n_workers=workers or os.cpu_count() or 1,
                threads_per_worker=1,
                dashboard_address=":0",
            )
            return cls(Client(cluster), cluster)
        timeout = dask.config.get("distributed.comm.timeouts.connect")
        try:
            return cls(Client(scheduler, timeout=timeout))
        except (OSError, TimeoutError, ValueError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EngineError(
                f"cannot reach the Dask scheduler at {scheduler} ({reason}); check the address "
                "(tcp://HOST:8786) and that the scheduler is running, or leave out --scheduler "
                "for a cluster on this machine"
            ) from None

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    # --- validate ----------------------------------------------------------------------------

    def validate(
        self,
        data: str | Path,
        contract: CompiledContract,
        *,
        allow_extra: bool = False,
        label: str | None = None,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        progress: Progress | None = None,
    ) -> ValidationReport:
        import dask

        from mlhandoff.engines.dask_validate import part_repeats, validate_part

        fields = contract.contract.fields
        categories = [n for n, f in fields.items() if f.type == "category"]
        schema, parts = parquet_parts(
            data, partition_rows=self.partition_rows, dictionary=categories
        )
        check_label(Path(data), schema.names, label)
        total = sum(p.rows for p in parts)
        repeats = part_repeats(parts, contract, chunk_rows)
        sample = LeakageSample(total) if label else None
        extra = [label] if label else []
        token = uuid.uuid4().hex[:8]
        shared = dask.delayed(contract, name=f"contract-{token}", traverse=False)  # sent once
        tasks = [
            dask.delayed(validate_part, pure=False)(
                part,
                shared,
                allow_extra,
                extra,
                chunk_rows,
                None if repeats is None else repeats[i],
                sample,
                dask_key_name=f"validate-part-{token}-{i}",
            )
            for i, part in enumerate(parts)
        ]
        futures = self.client.compute(tasks)
        results = self._gather(futures, [p.rows for p in parts], progress, "validating", total)
        session = contract.session(allow_extra=allow_extra, extra_columns=extra, repeats={})
        for partial_session, _ in results:
            session.merge(partial_session)
        if not parts:
            session.add(type_columns(schema.empty_table(), contract.contract))
        report = session.finish()
        if sample is not None and label is not None:
            from mlhandoff.contract.leakage import feature_leakage

            for _, drawn in results:
                for batch in drawn:
                    sample.keep(batch)
            empty = type_columns(schema.empty_table(), contract.contract)
            report.leakage = feature_leakage(sample.table(empty), label, contract.contract)
        return report

    # --- monitor -----------------------------------------------------------------------------

    def monitor(
        self,
        bundle: str | Path | Bundle,
        data: str | Path,
        *,
        progress: Progress | None = None,
        **options: Any,
    ) -> MonitorReport:
        return monitor(bundle, data, map_files=partial(self._map_files, progress), **options)

    def _map_files(
        self,
        progress: Progress | None,
        count: Callable[[Path], FileCounts],
        files: list[Path],
    ) -> list[FileCounts]:
        token = uuid.uuid4().hex[:8]
        keys = [f"monitor-file-{token}-{i}" for i in range(len(files))]
        futures = self.client.map(count, files, key=keys)
        return self._gather(futures, [1] * len(files), progress, "counting files", len(files))

    # --- evaluate ----------------------------------------------------------------------------

    def evaluate(
        self,
        bundle: str | Path,
        data: str | Path | None = None,
        *,
        progress: Progress | None = None,
        **options: Any,
    ) -> AcceptanceReport:
        from mlhandoff.engines.dask_evaluate import evaluate_on_dask

        return evaluate_on_dask(self, bundle, data, progress=progress, **options)

    # --- shared ------------------------------------------------------------------------------

    def _gather(
        self,
        futures: Sequence[Any],
        sizes: Sequence[int],
        progress: Progress | None,
        what: str,
        total: int,
    ) -> list[Any]:
        """The futures' results in their order (the first error raised as it was), advancing
        ``progress`` by each one's size as it completes."""
        from dask.distributed import as_completed

        if progress is not None:
            progress.start(what, total)
            size = {f.key: n for f, n in zip(futures, sizes, strict=True)}
            for future in as_completed(futures):
                progress.advance(size[future.key])
        return list(self.client.gather(list(futures)))

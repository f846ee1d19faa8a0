"""The engine interface: one method per command that can scale out, the same answers behind it.

The local engine is the stages' own code; the Dask engine runs the same per-partition code on a
cluster and merges partial results that are exact by construction (integer counts, first rows
merged by global row number, in partition order), so its reports equal the local ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mlhandoff.bundle.bundle import Bundle
    from mlhandoff.contract.report import ValidationReport
    from mlhandoff.contract.validate import CompiledContract
    from mlhandoff.evaluate.report import AcceptanceReport
    from mlhandoff.monitor.report import MonitorReport

#: The engines ``--engine`` accepts.
ENGINES = ("local", "dask")


class Progress(Protocol):
    """Where an engine reports how far it is (the CLI draws a bar on stderr)."""

    def start(self, what: str, total: int | None) -> None: ...

    def advance(self, done: int) -> None: ...


class Engine(Protocol):
    """Runs validate, monitor and evaluate; every engine gives the same reports."""

    name: str

    def validate(
        self,
        data: str | Path,
        contract: CompiledContract,
        *,
        allow_extra: bool = False,
        label: str | None = None,
        chunk_rows: int = ...,
        progress: Progress | None = None,
    ) -> ValidationReport: ...

    def monitor(
        self,
        bundle: str | Path | Bundle,
        data: str | Path,
        *,
        progress: Progress | None = None,
        **options: Any,
    ) -> MonitorReport: ...

    def evaluate(
        self,
        bundle: str | Path,
        data: str | Path | None = None,
        *,
        progress: Progress | None = None,
        **options: Any,
    ) -> AcceptanceReport: ...

    def close(self) -> None: ...


def open_engine(
    name: str = "local", *, scheduler: str | None = None, workers: int | None = None
) -> Engine:
    """The engine called ``name``: ``local``, or ``dask`` on the cluster whose scheduler is at
    ``scheduler`` (None: a LocalCluster of ``workers`` processes on this machine)."""
    from mlhandoff.errors import InputError

    if name == "local":
        if scheduler is not None:
            raise InputError("--scheduler needs --engine dask (the local engine has no cluster)")
        from mlhandoff.engines.local import LocalEngine

        return LocalEngine()
    if name == "dask":
        from mlhandoff.engines.dask_engine import DaskEngine

        return DaskEngine.connect(scheduler, workers=workers)
    raise InputError(f"--engine: unknown engine '{name}'; use one of {', '.join(ENGINES)}")

"""The local engine: the stages' own code, one process (streamed, bounded memory)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlhandoff.bundle.bundle import Bundle
from mlhandoff.contract.reader import DEFAULT_CHUNK_ROWS
from mlhandoff.contract.report import ValidationReport
from mlhandoff.contract.stream import validate_file
from mlhandoff.contract.validate import CompiledContract
from mlhandoff.engines.base import Progress
from mlhandoff.evaluate.report import AcceptanceReport
from mlhandoff.evaluate.run import evaluate_bundle
from mlhandoff.monitor.report import MonitorReport
from mlhandoff.monitor.run import monitor


class LocalEngine:
    """Runs everything in this process, as the commands always have."""

    name = "local"

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
        if progress:
            progress.start("validating", None)  # the total once the format tells it
        return validate_file(
            data,
            contract,
            chunk_rows=chunk_rows,
            allow_extra=allow_extra,
            label=label,
            on_rows=progress.advance if progress else None,
            on_total=(lambda total: progress.start("validating", total)) if progress else None,
        )

    def monitor(
        self,
        bundle: str | Path | Bundle,
        data: str | Path,
        *,
        progress: Progress | None = None,
        **options: Any,
    ) -> MonitorReport:
        return monitor(bundle, data, **options)

    def evaluate(
        self,
        bundle: str | Path,
        data: str | Path | None = None,
        *,
        progress: Progress | None = None,
        **options: Any,
    ) -> AcceptanceReport:
        return evaluate_bundle(bundle, data, **options)

    def close(self) -> None:
        """Nothing to release."""

"""The ``mlhandoff`` command line: a thin layer over the library.

Exit codes: 0 success; 1 a check failed (verify, validate, evaluate; rollout judge: roll back);
2 bad input (spec, files, arguments); 3 an internal error (a bug); 4 rollout judge: continue. Commands are registered by the modules imported below, one per stage.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import mlhandoff.cli.evaluate  # noqa: F401  (registers commands)
from mlhandoff.cli import (  # noqa: F401  (registers commands)
    contract,
    core,
    monitor,
    rollout,
    serve,
    trust,
)
from mlhandoff.cli._app import app, err

__all__ = ["app", "main"]


EXIT_INTERNAL = 3


def main(argv: list[str] | None = None) -> Any:
    """The console script. Anything that is not one of our errors is a bug in mlhandoff: one line
    that says so (the traceback with MLHANDOFF_DEBUG=1), exit code 3."""
    try:
        return app(args=argv)
    except Exception as exc:
        if os.environ.get("MLHANDOFF_DEBUG") == "1":
            raise
        err.print(
            f"[bold red]internal error[/]: {type(exc).__name__}: {exc} — this is a bug in mlhandoff; "
            "rerun with MLHANDOFF_DEBUG=1 for the traceback and report it",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(EXIT_INTERNAL)

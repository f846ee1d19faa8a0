"""The ``mlhandoff`` command line: a thin layer over the library.

Exit codes: 0 success; 1 a check failed (verify, validate, evaluate); 2 bad input (spec, files,
arguments). Commands are registered by the modules imported below, one per stage.
"""

from __future__ import annotations

from typing import Any

import mlhandoff.cli.evaluate  # noqa: F401  (registers commands)
from mlhandoff.cli import contract, core, serve  # noqa: F401  (registers commands)
from mlhandoff.cli._app import app

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> Any:
    return app(args=argv)

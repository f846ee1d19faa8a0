"""Serving a bundle over HTTP with its API and data contracts enforced.

The names below are imported on first use, so that the model process (``serve.model_process``)
can import its own modules without loading the HTTP app.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlhandoff.serve.app import create_app
    from mlhandoff.serve.config import ServeConfig
    from mlhandoff.serve.service import ModelService

_WHERE = {
    "ModelService": "mlhandoff.serve.service",
    "ServeConfig": "mlhandoff.serve.config",
    "create_app": "mlhandoff.serve.app",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'mlhandoff.serve' has no attribute '{name}'")
    return getattr(importlib.import_module(_WHERE[name]), name)


__all__ = ["ModelService", "ServeConfig", "create_app"]

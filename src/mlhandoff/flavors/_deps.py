"""Lazy imports of the optional libraries, so a missing extra is a clear error, not a traceback."""

from __future__ import annotations

import importlib
from types import ModuleType

from mlhandoff.errors import MissingExtraError


def require(flavor: str, package: str, extra: str) -> ModuleType:
    """Import ``package`` or raise :class:`MissingExtraError` with the pip command to fix it."""
    try:
        return importlib.import_module(package)
    except ImportError as exc:
        raise MissingExtraError(flavor, package, extra) from exc

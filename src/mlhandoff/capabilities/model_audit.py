"""Refusing at ``init`` the model files ``pack`` would refuse, before anyone fills in a spec.

A pickle or joblib file goes through the same allowlisting unpickler pack loads it with: a file
reaching for ``os.system`` (or any type off the allowlist) is refused by name at once. A skops
file is not refused here: ``init`` lists its untrusted types in the spec for review.
"""

from __future__ import annotations

from pathlib import Path

from mlhandoff.flavors import _safe_pickle
from mlhandoff.flavors.sklearn import PICKLE_SUFFIXES


def refuse_unsafe_pickle(path: Path, trusted_types: tuple[str, ...] = ()) -> None:
    """Raise UnsafeModelError (naming the type) when pack's unpickler would refuse ``path``."""
    if path.suffix.lower() in PICKLE_SUFFIXES and path.is_file():
        _safe_pickle.load(path, trusted_types)

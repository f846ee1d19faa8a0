"""Auditing at ``init`` the model file ``pack`` will load, before anyone fills in a spec.

A pickle or joblib file goes through the same allowlisting unpickler pack loads it with: a file
reaching for ``os.system`` (or anything never trusted) is refused by name at once; the other
globals off the allowlist are listed for review, as skops's untrusted types are for a .skops
file, and ``init`` writes them under ``security.trusted_types`` commented out.
"""

from __future__ import annotations

from pathlib import Path

from mlhandoff.flavors import _safe_pickle
from mlhandoff.flavors.sklearn import PICKLE_SUFFIXES


def audit_pickle(path: Path) -> list[str]:
    """The globals a pickle/joblib ``path`` needs trusted (for review); UnsafeModelError naming
    the global when it needs one that is never trusted."""
    if path.suffix.lower() in PICKLE_SUFFIXES and path.is_file():
        return _safe_pickle.untrusted_globals(path)
    return []

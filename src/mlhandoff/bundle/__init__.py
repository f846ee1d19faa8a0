"""The bundle format: layout, manifest and integrity, the pack record, and opening a bundle."""

from mlhandoff.bundle.bundle import Bundle, EnvironmentMismatchWarning, open_bundle, read_bundle
from mlhandoff.bundle.manifest import FORMAT_VERSION
from mlhandoff.bundle.record import PackRecord

__all__ = [
    "FORMAT_VERSION",
    "Bundle",
    "EnvironmentMismatchWarning",
    "PackRecord",
    "open_bundle",
    "read_bundle",
]

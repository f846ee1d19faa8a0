"""``pack``: run every registered capability's steps into an immutable, hashed bundle."""

from mlhandoff.pack.pack import PackResult, pack

__all__ = ["PackResult", "pack"]

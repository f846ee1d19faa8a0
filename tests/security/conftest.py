"""Fixtures for the hostile-input suite."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """The file every hostile payload tries to create; a test asserts it never appears."""
    return tmp_path / "pwned"

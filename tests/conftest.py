"""Test-wide helpers: where the repository and the shared reference material live."""

from __future__ import annotations

from pathlib import Path

import pytest

# The simulator fixture, its options and the cluster environment live in one module for every directory.
pytest_plugins = ("simenv",)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def shared_dir() -> Path:
    """The ../shared directory beside the repo; tests that need it skip cleanly without it."""
    if not (SHARED / "pve-api" / "apidoc.json").is_file():
        pytest.skip("../shared (official PVE schema and fixtures) is not present beside the repo")
    return SHARED

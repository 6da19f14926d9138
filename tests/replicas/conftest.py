from __future__ import annotations

import pytest


@pytest.fixture
def binaries() -> None:
    """Skip (saying what to install) where PostgreSQL or HAProxy is missing; scripts/test.sh installs both."""
    from .infra import MissingBinaries, require_binaries

    try:
        require_binaries()
    except MissingBinaries as exc:
        pytest.skip(str(exc))

from __future__ import annotations

import pytest


@pytest.fixture
def binaries() -> None:
    """Skip where PostgreSQL or HAProxy is missing (saying what to install); fail under CI instead."""
    from .infra import skip_unless_binaries

    skip_unless_binaries()

"""Fixtures of the adversarial suite: a fresh simulator per test (its request log is the witness)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pvemcp.sim import running_simulator
from pvemcp.sim.runner import RunningSimulator


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    """Seed 1: VMIDs 100-110 and template 9000 on pve1-3; tags dev on 105, 106, 109, 110."""
    async with running_simulator(seed=1, task_speed=200.0) as running:
        yield running

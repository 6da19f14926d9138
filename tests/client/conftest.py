"""Fixtures for the Proxmox client tests: the anyio backend and the simulator over real loopback HTTPS."""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from typing import Any

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _simulator_importable() -> bool:
    """True once ``pvemcp.sim.running_simulator`` exists (it is written in parallel with the client)."""
    if importlib.util.find_spec("pvemcp.sim") is None:
        return False
    try:
        from pvemcp.sim import running_simulator  # noqa: F401
    except ImportError:
        return False
    return True


SIM_AVAILABLE = _simulator_importable()
needs_sim = pytest.mark.skipif(not SIM_AVAILABLE, reason="pvemcp.sim.running_simulator is not importable yet")


@pytest.fixture
async def sim() -> AsyncIterator[Any]:
    """A fresh seeded simulator (3 nodes, 12 guests, fast tasks) on 127.0.0.1 with its own certificate."""
    from pvemcp.sim import running_simulator

    async with running_simulator(seed=1, nodes=3, guests=12, task_speed=50.0, latency_ms=0) as s:
        yield s

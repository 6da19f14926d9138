"""Fixtures for the Proxmox client tests: the anyio backend and the simulator over real loopback HTTPS."""

from __future__ import annotations

import importlib.util

import pytest


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

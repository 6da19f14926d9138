"""The one home of the simulator fixture and of the environment that points pvemcp at it.

Registered for every test by ``tests/conftest.py`` (``pytest_plugins``). A directory or module that needs
a different simulator (frozen tasks, faster tasks, more guests) overrides ``sim_options``, not ``sim``:

    @pytest.fixture
    def sim_options() -> SimOptions:
        return {**DEFAULT_SIM, "task_speed": 200.0}

Every test gets a fresh simulator, so state never leaks between tests; its request log is the witness of
what a test sent.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pvemcp.sim import RunningSimulator, running_simulator

SimOptions = dict[str, Any]

# Seed 1: VMIDs 100-110 and template 9000 on pve1-3 (3 nodes, 12 guests); tasks run 50x faster than PVE's.
DEFAULT_SIM: SimOptions = {"seed": 1, "task_speed": 50.0}


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Every async test runs on asyncio (the MCP SDK and the server are asyncio-only)."""
    return "asyncio"


@pytest.fixture
def sim_options() -> SimOptions:
    """Keyword arguments of :func:`running_simulator` for the ``sim`` fixture; override to change them."""
    return dict(DEFAULT_SIM)


@pytest.fixture
async def sim(sim_options: SimOptions) -> AsyncIterator[RunningSimulator]:
    """A fresh simulator on 127.0.0.1 with its own certificate, stopped when the test ends."""
    async with running_simulator(**sim_options) as running:
        yield running


def cluster_env(sim: RunningSimulator, **extra: str) -> dict[str, str]:
    """What a user would set to reach ``sim`` with the administrator's API token, pinned by fingerprint."""
    return {
        "PROXMOX_URL": sim.url,
        "PROXMOX_TOKEN_ID": sim.token_id,
        "PROXMOX_TOKEN_SECRET": sim.token_secret,
        "PROXMOX_FINGERPRINT": sim.fingerprint,
        **extra,
    }


def ticket_env(sim: RunningSimulator, **extra: str) -> dict[str, str]:
    """The same cluster reached with a user and password (ticket auth)."""
    return {
        "PROXMOX_URL": sim.url,
        "PROXMOX_USER": sim.user,
        "PROXMOX_PASSWORD": sim.password,
        "PROXMOX_FINGERPRINT": sim.fingerprint,
        **extra,
    }


def subprocess_env(sim: RunningSimulator, **extra: str) -> dict[str, str]:
    """A child's environment: the parent's, minus any PROXMOX_/PVEMCP_ leftovers, plus the simulator's."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PROXMOX_", "PVEMCP_"))}
    return {**base, **cluster_env(sim, **extra), "PYTHONUNBUFFERED": "1"}

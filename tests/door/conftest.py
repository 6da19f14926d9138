"""Fixtures for the MCP door tests: a real simulator on loopback HTTPS and the real App pointed at it.

The simulator itself is the shared ``sim`` fixture (tests/simenv.py): fresh for every test. The simulator's
request log is the witness: "nothing was sent" means no new non-GET request in it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pvemcp.door._core import App, load_app_config
from pvemcp.sim.runner import RunningSimulator
from simenv import cluster_env


@pytest.fixture
def audit_log(tmp_path: Path) -> Path:
    return tmp_path / "audit.jsonl"


@pytest.fixture
async def app(sim: RunningSimulator, audit_log: Path) -> AsyncIterator[App]:
    instance = App(load_app_config(config_path=None, env=cluster_env(sim, PVEMCP_AUDIT_LOG=str(audit_log))))
    async with instance:
        yield instance

"""Fixtures for the simulator tests: real HTTPS over loopback to an in-process simulator, no mocks."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

from pvemcp.dialect.upid import parse_upid
from pvemcp.sim import RunningSimulator, running_simulator
from simenv import DEFAULT_SIM, SimOptions

# Tasks move only when the simulated clock is advanced (task_speed=0): tests can look at a running task
# (its lock, its partial log) without racing it, and wait_task finishes tasks by advancing the clock.
FROZEN = 0.0


class Api:
    """A thin HTTP client for one identity; returns raw responses so tests see PVE's wire format."""

    def __init__(self, sim: RunningSimulator, client: httpx2.AsyncClient) -> None:
        self.sim = sim
        self.client = client

    async def get(self, path: str, **params: Any) -> httpx2.Response:
        return await self.client.get(self.sim.url + path, params=params or None)

    async def post(self, path: str, data: dict[str, Any] | None = None, **kw: Any) -> httpx2.Response:
        return await self.client.post(self.sim.url + path, data=data, **kw)

    async def put(self, path: str, data: dict[str, Any] | None = None, **kw: Any) -> httpx2.Response:
        return await self.client.put(self.sim.url + path, data=data, **kw)

    async def delete(self, path: str, **params: Any) -> httpx2.Response:
        return await self.client.delete(self.sim.url + path, params=params or None)

    async def data(self, method: str, path: str, **kw: Any) -> Any:
        r = await self.client.request(method, self.sim.url + path, **kw)
        assert r.status_code == 200, (r.status_code, r.reason_phrase, r.text)
        return r.json()["data"]

    async def wait_task(self, upid: str, max_polls: int = 400) -> dict[str, Any]:
        """Poll the task status; each poll advances the simulated clock so the loop is bounded."""
        node = parse_upid(upid).node
        for _ in range(max_polls):
            status: dict[str, Any] = await self.data("GET", f"/nodes/{node}/tasks/{upid}/status")
            if status["status"] == "stopped":
                return status
            self.sim.advance_clock(2.0)
        raise AssertionError(f"task {upid} did not finish")

    async def log(self, upid: str) -> list[str]:
        node = parse_upid(upid).node
        lines = await self.data("GET", f"/nodes/{node}/tasks/{upid}/log", params={"limit": 0})
        return [entry["t"] for entry in lines]


def ssl_context(sim: RunningSimulator) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=sim.ca_file)


def token_header(token_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": f"PVEAPIToken={token_id}={secret}"}


@pytest.fixture
def sim_options() -> SimOptions:
    """The shared ``sim`` fixture, frozen: a fresh seeded simulator (3 nodes, 12 guests) for tests that change state."""
    return {**DEFAULT_SIM, "task_speed": FROZEN}


@pytest.fixture(scope="module")
async def shared_sim() -> AsyncIterator[RunningSimulator]:
    """One frozen simulator per module for read-only tests."""
    async with running_simulator(**{**DEFAULT_SIM, "task_speed": FROZEN}) as sim:
        yield sim


async def _client(sim: RunningSimulator, headers: dict[str, str] | None) -> AsyncIterator[Api]:
    async with httpx2.AsyncClient(verify=ssl_context(sim), headers=headers, timeout=20.0) as client:
        yield Api(sim, client)


@pytest.fixture
async def admin(sim: RunningSimulator) -> AsyncIterator[Api]:
    """Administrator API token on the per-test simulator."""
    async for api in _client(sim, token_header(sim.token_id, sim.token_secret)):
        yield api


@pytest.fixture
async def auditor(sim: RunningSimulator) -> AsyncIterator[Api]:
    """Read-only (PVEAuditor) API token on the per-test simulator."""
    async for api in _client(sim, token_header(sim.readonly_token_id, sim.readonly_token_secret)):
        yield api


@pytest.fixture
async def anon(sim: RunningSimulator) -> AsyncIterator[Api]:
    """No credentials at all."""
    async for api in _client(sim, None):
        yield api


@pytest.fixture
async def shared_admin(shared_sim: RunningSimulator) -> AsyncIterator[Api]:
    async for api in _client(shared_sim, token_header(shared_sim.token_id, shared_sim.token_secret)):
        yield api

"""Fault injection: errors, resets, hangs, latency, offline nodes, ticket lifetime; the CLI fault spec."""

from __future__ import annotations

import httpx2
import pytest

from pvemcp.sim import RunningSimulator, running_simulator
from pvemcp.sim.faults import FaultSet, parse_fault_spec

from .conftest import Api, ssl_context, token_header

pytestmark = pytest.mark.anyio


async def test_error_fault_with_count_and_method(sim: RunningSimulator, admin: Api) -> None:
    sim.faults.add("error", path="/nodes/*/qemu", method="GET", count=2, status=503, message="simulated outage")
    for _ in range(2):
        r = await admin.get("/nodes/pve1/qemu")
        assert (r.status_code, r.reason_phrase) == (503, "simulated outage")
        assert r.json() == {"data": None, "message": "simulated outage\n"}
    assert (await admin.get("/nodes/pve1/qemu")).status_code == 200
    assert (await admin.get("/nodes/pve1/lxc")).status_code == 200
    assert [r.status for r in sim.request_log[-4:]] == [503, 503, 200, 200]


async def test_reset_fault(sim: RunningSimulator, admin: Api) -> None:
    sim.faults.add("reset", path="/version", count=1)
    with pytest.raises(httpx2.TransportError):
        await admin.get("/version")
    assert (await admin.get("/version")).status_code == 200


async def test_hang_fault_until_client_gives_up(sim: RunningSimulator) -> None:
    sim.faults.add("hang", path="/cluster/resources", count=1)
    headers = token_header(sim.token_id, sim.token_secret)
    async with httpx2.AsyncClient(verify=ssl_context(sim), headers=headers, timeout=0.3) as c:
        with pytest.raises(httpx2.ReadTimeout):
            await c.get(sim.url + "/cluster/resources")
        assert (await c.get(sim.url + "/cluster/resources")).status_code == 200


async def test_slow_hang_and_latency_still_answer(sim: RunningSimulator, admin: Api) -> None:
    sim.faults.add("hang", path="/version", count=1, delay_s=0.05)
    sim.faults.add("latency", path="/version", delay_s=0.01)
    assert (await admin.get("/version")).status_code == 200


async def test_rate_zero_never_fires(sim: RunningSimulator, admin: Api) -> None:
    sim.faults.add("error", rate=0.0)
    for _ in range(5):
        assert (await admin.get("/version")).status_code == 200


async def test_ticket_lifetime_fault(anon: Api) -> None:
    sim = anon.sim
    sim.faults.ticket_lifetime = 60
    login = (await anon.post("/access/ticket", data={"username": sim.user, "password": sim.password})).json()["data"]
    cookie = {"Cookie": f"PVEAuthCookie={login['ticket']}"}
    assert (await anon.client.get(sim.url + "/version", headers=cookie)).status_code == 200
    sim.advance_clock(61)
    assert (await anon.client.get(sim.url + "/version", headers=cookie)).status_code == 401


def test_fault_spec_parsing() -> None:
    faults = FaultSet()
    parse_fault_spec("error=0.1:/nodes/*/qemu*@POST, latency=250, offline=pve3, reset=0.5, ticket-lifetime=90", faults)
    kinds = [(f.kind, f.path, f.method, f.rate) for f in faults.faults]
    assert kinds == [
        ("error", "/nodes/*/qemu*", "POST", 0.1),
        ("latency", "*", None, 1.0),
        ("offline_node", "*", None, 1.0),
        ("reset", "*", None, 0.5),
    ]
    assert faults.faults[1].delay_s == 0.25 and faults.offline_nodes == {"pve3"} and faults.ticket_lifetime == 90
    for bad in ("explode=1", "error=2", "offline"):
        with pytest.raises(ValueError):
            parse_fault_spec(bad, FaultSet())
    with pytest.raises(ValueError):
        FaultSet().add("meteor")


async def test_faults_from_constructor() -> None:
    async with (
        running_simulator(faults="offline=pve2,error=1:/version", task_speed=100) as sim,
        httpx2.AsyncClient(verify=ssl_context(sim), headers=token_header(sim.token_id, sim.token_secret)) as c,
    ):
        assert (await c.get(sim.url + "/version")).status_code == 500
        assert (await c.get(sim.url + "/nodes/pve2/status")).status_code == 595
        assert (await c.get(sim.url + "/nodes/pve1/status")).status_code == 200


async def test_losing_quorum_blocks_writes(sim: RunningSimulator, admin: Api) -> None:
    sim.faults.add("offline_node", node="pve2")
    assert (await admin.data("GET", "/cluster/status"))[0]["quorate"] == 1
    sim.faults.add("offline_node", node="pve3")
    assert (await admin.data("GET", "/cluster/status"))[0]["quorate"] == 0
    for path, data in (
        ("/nodes/pve1/qemu/9000/status/start", {}),
        ("/nodes/pve1/qemu/100/clone", {"newid": "500"}),
        ("/nodes/pve1/qemu", {"vmid": "500"}),
        ("/nodes/pve1/qemu/100/snapshot", {"snapname": "q1"}),
    ):
        r = await admin.post(path, data=data)
        assert (r.status_code, r.json()["message"]) == (500, "cluster not ready - no quorum?\n"), path
    assert (await admin.get("/nodes/pve1/qemu/100/config")).status_code == 200  # reads still work

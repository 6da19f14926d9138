"""Task waits against the simulator: progress, exit status, log tails, deadlines; guest resolution."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from pvemcp.core.pve.client import PveClient
from pvemcp.core.pve.errors import PveError
from pvemcp.dialect.upid import parse_upid

from .conftest import needs_sim
from .simhelp import pick_guest, token_config

pytestmark = [pytest.mark.anyio, needs_sim]


class Progress:
    def __init__(self) -> None:
        self.calls: list[tuple[float, float | None, str]] = []

    async def __call__(self, progress: float, total: float | None, message: str) -> None:
        self.calls.append((progress, total, message))

    def strictly_increasing(self) -> bool:
        values = [p for p, _, _ in self.calls]
        return all(b > a for a, b in itertools.pairwise(values))


async def test_start_waits_until_stopped_with_progress(sim: Any) -> None:
    progress = Progress()
    async with PveClient(token_config(sim)) as pve:
        guest = await pick_guest(pve, type="qemu", status="stopped")
        upid = await pve.post("/nodes/{node}/qemu/{vmid}/status/start", path={"node": guest.node, "vmid": guest.vmid})
        u = parse_upid(upid)
        assert u.node == guest.node and u.type == "qmstart" and u.id == str(guest.vmid)
        result = await pve.wait_task(upid, deadline_s=60, on_progress=progress)
        assert result.ok and result.exitstatus == "OK" and result.status == "stopped" and not result.timed_out
        assert result.log_tail == ()
        assert progress.calls and progress.strictly_increasing()
        assert (await pve.resolve_guest(guest.vmid)).status == "running"  # our mutation invalidated the cache


async def test_clone_progress_from_log_percentages(sim: Any) -> None:
    progress = Progress()
    async with PveClient(token_config(sim)) as pve:
        guest = await pick_guest(pve, type="qemu", status="stopped")
        newid = int(await pve.get("/cluster/nextid"))
        upid = await pve.post(
            "/nodes/{node}/qemu/{vmid}/clone",
            path={"node": guest.node, "vmid": guest.vmid},
            data={"newid": newid, "full": True, "name": "clone-by-client-test"},
        )
        result = await pve.wait_task(upid, deadline_s=120, on_progress=progress)
        assert result.ok, result
        assert progress.strictly_increasing()
        percent_calls = [c for c in progress.calls if c[1] == 100.0]
        assert percent_calls, progress.calls  # progress came from "transferred X of Y (NN%)" lines
        assert percent_calls[-1][0] == 100.0
        clone = await pve.resolve_guest(newid)
        assert clone.name == "clone-by-client-test" and clone.node == guest.node


async def test_failed_task_returns_exitstatus_and_log_tail(sim: Any) -> None:
    async with PveClient(token_config(sim)) as pve:
        guest = await pick_guest(pve, type="qemu", status="running")
        upid = await pve.post("/nodes/{node}/qemu/{vmid}/status/start", path={"node": guest.node, "vmid": guest.vmid})
        result = await pve.wait_task(upid, deadline_s=60)
    assert not result.ok and result.status == "stopped"
    assert result.exitstatus == f"VM {guest.vmid} already running"
    assert result.log_tail and result.log_tail[-1] == f"TASK ERROR: VM {guest.vmid} already running"
    assert len(result.log_tail) <= 20


async def test_deadline_leaves_task_running() -> None:
    from pvemcp.sim import running_simulator

    async with running_simulator(seed=2, nodes=2, guests=6, task_speed=0.001) as slow:
        progress = Progress()
        async with PveClient(token_config(slow)) as pve:
            guest = await pick_guest(pve, type="qemu", status="stopped")
            newid = int(await pve.get("/cluster/nextid"))
            upid = await pve.post(
                "/nodes/{node}/qemu/{vmid}/clone",
                path={"node": guest.node, "vmid": guest.vmid},
                data={"newid": newid, "full": True},
            )
            result = await pve.wait_task(upid, deadline_s=0.5, on_progress=progress)
            assert result.timed_out and result.status == "running" and result.exitstatus is None and not result.ok
            status = await pve.get("/nodes/{node}/tasks/{upid}/status", path={"node": result.node, "upid": upid})
            assert status["status"] == "running"  # honest: it really is still running
            assert progress.strictly_increasing()


async def test_resolve_guest_and_unknown_vmid(sim: Any) -> None:
    async with PveClient(token_config(sim)) as pve:
        guests = await pve.list_guests()
        assert {g.type for g in guests} == {"qemu", "lxc"}
        for g in guests[:3]:
            ref = await pve.resolve_guest(g.vmid)
            kind = "qemu-server" if ref.type == "qemu" else "lxc"
            assert sim.state is not None and ref.node and kind
        missing = max(g.vmid for g in guests) + 1000
        with pytest.raises(PveError) as info:
            await pve.resolve_guest(missing)
    assert info.value.message == f"no guest with vmid {missing} in the cluster"


async def test_volume_id_with_slash_reaches_the_volume(sim: Any) -> None:
    # pve-storage's content subtree takes the rest of the path as the volume id (fragmentDelimiter '')
    volid = "local:vztmpl/alpine-3.22-default_20250617_amd64.tar.xz"
    where = {"node": "pve1", "storage": "local", "volume": volid}
    async with PveClient(token_config(sim)) as pve:
        info = await pve.get("/nodes/{node}/storage/{storage}/content/{volume}", path=where)
        assert info["path"] == "/var/lib/vz/template/cache/alpine-3.22-default_20250617_amd64.tar.xz"
        upid = (await pve.request("DELETE", "/nodes/{node}/storage/{storage}/content/{volume}", path=where)).data
        assert (await pve.wait_task(upid, deadline_s=60)).exitstatus == "OK"
        with pytest.raises(PveError):
            await pve.get("/nodes/{node}/storage/{storage}/content/{volume}", path=where)

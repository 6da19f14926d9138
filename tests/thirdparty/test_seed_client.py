"""The seed guide's own minimal Python client against the simulator, exactly as the guide prints it.

The client is read from ``../shared/seed/PROXMOX_API_LLM_GUIDE.md`` at test time (skipped cleanly when
../shared is absent) and run unmodified: it logs in with a ticket, hard-codes port 8006 and sends form
bodies with ``requests``. The simulator therefore listens on port 8006 of a loopback address of its own
(127.0.0.0/8), which the guide's ``host`` argument names. The guide's VM-creation, container-creation and
batch patterns then run as written (the guide's VMIDs exist in the seeded cluster, so its creations must
come back with PVE's own error envelope, and fresh VMIDs must succeed).
"""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from pvemcp.sim import RunningSimulator, running_simulator

pytestmark = pytest.mark.anyio


def _seed_client(shared: Path) -> type:
    guide = (shared / "seed" / "PROXMOX_API_LLM_GUIDE.md").read_text(encoding="utf-8")
    match = re.search(r"### Python Minimal Client\n```python\n(.*?)```", guide, flags=re.S)
    assert match, "the seed guide no longer has its Python minimal client"
    namespace: dict[str, Any] = {}
    exec(compile(match.group(1), "PROXMOX_API_LLM_GUIDE.md", "exec"), namespace)  # the guide's code, as printed
    client: type = namespace["ProxmoxAPI"]
    return client


@pytest.fixture
async def sim_8006() -> AsyncIterator[tuple[RunningSimulator, str]]:
    host = f"127.0.{random.randint(1, 250)}.{random.randint(2, 250)}"  # port 8006, as the guide hard-codes
    async with running_simulator(seed=1, task_speed=200.0, host=host, port=8006) as running:
        yield running, host


async def _wait(api: Any, node: str, upid: str) -> dict[str, Any]:
    for _ in range(400):
        status = await anyio.to_thread.run_sync(api.get, f"/nodes/{node}/tasks/{upid}/status")
        if status["data"]["status"] == "stopped":
            return dict(status["data"])
        await anyio.sleep(0.02)
    raise AssertionError(f"task {upid} did not finish")


async def test_the_seed_guides_client_and_patterns_work_unmodified(
    shared_dir: Path, sim_8006: tuple[RunningSimulator, str]
) -> None:
    sim, host = sim_8006
    client = _seed_client(shared_dir)
    api = await anyio.to_thread.run_sync(client, host, sim.user, sim.password)
    node = "pve1"

    # VM creation pattern, as printed: VMID 100 exists in the seeded cluster -> PVE's error envelope
    vm_config = {"vmid": 100, "name": "test-vm", "memory": 2048, "cores": 2, "net0": "virtio,bridge=vmbr0"}
    vm_config |= {"scsi0": "local-lvm:32", "ostype": "l26"}
    taken = await anyio.to_thread.run_sync(api.post, f"/nodes/{node}/qemu", vm_config)
    assert taken["data"] is None and "already exists" in taken["message"]
    created = await anyio.to_thread.run_sync(api.post, f"/nodes/{node}/qemu", {**vm_config, "vmid": 300})
    assert (await _wait(api, node, created["data"]))["exitstatus"] == "OK"
    assert str(sim.state.guests[300].config["scsi0"]).startswith("local-lvm:vm-300-disk-0")

    # Container creation pattern: the guide's Debian 11 template is not on this cluster -> PVE's words
    ct_config = {"vmid": 200, "hostname": "test-ct", "memory": 512, "rootfs": "local-lvm:8"}
    ct_config |= {"ostemplate": "local:vztmpl/debian-11-standard_11.3-1_amd64.tar.zst"}
    ct_config |= {"net0": "name=eth0,bridge=vmbr0,ip=dhcp"}
    missing = await anyio.to_thread.run_sync(api.post, f"/nodes/{node}/lxc", ct_config)
    if missing.get("data"):  # the template check runs inside the worker in PVE (create_vm -> restore_archive)
        assert (await _wait(api, node, missing["data"]))["exitstatus"] != "OK"
    else:
        assert "debian-11" in str(missing.get("message", "")) + str(missing.get("errors", ""))
    assert 200 not in sim.state.guests

    # Batch operations pattern: start, then read each status
    vms = [300]
    for vmid in vms:
        started = await anyio.to_thread.run_sync(api.post, f"/nodes/{node}/qemu/{vmid}/status/start")
        assert (await _wait(api, node, started["data"]))["exitstatus"] == "OK"
    statuses = {
        vmid: (await anyio.to_thread.run_sync(api.get, f"/nodes/{node}/qemu/{vmid}/status/current"))["data"]["status"]
        for vmid in vms
    }
    assert statuses == {300: "running"} == {v: sim.state.guests[v].status for v in vms}

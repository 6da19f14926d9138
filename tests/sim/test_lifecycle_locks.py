"""Power actions and locks where PVE checks them (and where it does not).

qemu-server ``QemuServer.pm`` ``_do_vm_stop`` (returns before ``check_lock`` when the VM is not running);
pve-container ``API2/LXC/Status.pm`` ``vm_shutdown``/``vm_suspend``/``vm_resume``; pve-guest-common
``AbstractConfig.pm`` ``snapshot_delete`` (``set_lock`` checks the lock, ``force`` or not).
"""

from __future__ import annotations

from typing import Any

import pytest

from pvemcp.sim import RunningSimulator

from .conftest import Api

pytestmark = pytest.mark.anyio


async def _task(api: Api, path: str, data: dict[str, str] | None = None) -> dict[str, Any]:
    r = await api.post(path, data=data)
    assert r.status_code == 200, (r.status_code, r.text)
    return await api.wait_task(r.json()["data"])


async def test_stopping_a_stopped_locked_vm_is_ok(sim: RunningSimulator, admin: Api) -> None:
    sim.state.guests[105].config["lock"] = "backup"
    assert (await _task(admin, "/nodes/pve3/qemu/105/status/stop"))["exitstatus"] == "OK"
    assert (await _task(admin, "/nodes/pve3/qemu/105/status/shutdown"))["exitstatus"] == "OK"
    sim.state.guests[100].config["lock"] = "backup"
    assert (await _task(admin, "/nodes/pve1/qemu/100/status/stop"))["exitstatus"] == "VM is locked (backup)"


async def test_locked_container_shutdown_fails_in_the_task(sim: RunningSimulator, admin: Api) -> None:
    sim.state.guests[107].config["lock"] = "backup"
    st = await _task(admin, "/nodes/pve1/lxc/107/status/shutdown")
    assert st["exitstatus"] == "CT is locked (backup)"
    assert (await admin.data("GET", "/nodes/pve1/lxc/107/status/current"))["status"] == "running"


async def test_container_suspend_checkpoints_and_resume_needs_it_stopped(admin: Api) -> None:
    r = await admin.post("/nodes/pve1/lxc/107/status/resume")
    assert (r.status_code, r.json()["message"]) == (500, "CT 107 already running\n")
    assert (await _task(admin, "/nodes/pve1/lxc/107/status/suspend"))["exitstatus"] == "OK"
    assert (await admin.data("GET", "/nodes/pve1/lxc/107/status/current"))["status"] == "stopped"
    assert (await _task(admin, "/nodes/pve1/lxc/107/status/resume"))["exitstatus"] == "OK"
    assert (await admin.data("GET", "/nodes/pve1/lxc/107/status/current"))["status"] == "running"


async def test_forced_snapshot_delete_keeps_another_lock(sim: RunningSimulator, admin: Api) -> None:
    sim.state.guests[102].config["lock"] = "backup"
    r = await admin.delete("/nodes/pve1/qemu/102/snapshot/pre_upgrade", force="1")
    st = await admin.wait_task(r.json()["data"])
    assert st["exitstatus"] == "VM is locked (backup)"
    cfg = await admin.data("GET", "/nodes/pve1/qemu/102/config")
    assert cfg["lock"] == "backup"
    assert "pre_upgrade" in [s["name"] for s in await admin.data("GET", "/nodes/pve1/qemu/102/snapshot")]


async def test_locked_container_reboot_is_not_lock_checked(sim: RunningSimulator, admin: Api) -> None:
    # pve-container LXC.pm vm_reboot: vm_stop + vm_start under the config lock, no check_lock
    sim.state.guests[107].config["lock"] = "backup"
    assert (await _task(admin, "/nodes/pve1/lxc/107/status/reboot"))["exitstatus"] == "OK"
    sim.state.guests[100].config["lock"] = "backup"
    assert (await _task(admin, "/nodes/pve1/qemu/100/status/reboot"))["exitstatus"] == "VM is locked (backup)"

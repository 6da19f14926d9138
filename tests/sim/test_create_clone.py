"""Clone and container-create rules as the PVE source has them.

qemu-server ``API2/Qemu.pm`` ``clone_vm`` (``$load_and_check``, ``$check_storage_access_clone``),
pve-container ``API2/LXC.pm`` ``clone_vm`` and ``create_vm``, ``LXC/Config.pm`` ``parse_lxc_network``,
pve-storage ``volume_has_feature`` (``LvmThinPlugin.pm``, ``Plugin.pm``).
"""

from __future__ import annotations

from typing import Any

import pytest

from pvemcp.sim import RunningSimulator

from .conftest import Api

pytestmark = pytest.mark.anyio

TMPL = "local:vztmpl/debian-12-standard_12.12-1_amd64.tar.zst"


async def _task(api: Api, method: str, path: str, data: dict[str, str]) -> dict[str, Any]:
    r = await api.client.request(method, api.sim.url + path, data=data)
    assert r.status_code == 200, (r.status_code, r.text)
    return await api.wait_task(r.json()["data"])


async def test_vm_with_local_disks_never_clones_to_another_node(admin: Api) -> None:
    # the VM's own storages decide; 'storage' only names where the copies go
    r = await admin.post("/nodes/pve1/qemu/100/clone", data={"newid": "300", "target": "pve2", "storage": "nfs-shared"})
    assert r.json()["message"] == "can't clone VM to node 'pve2' (VM uses local storage)\n"
    r = await admin.post("/nodes/pve1/qemu/106/clone", data={"newid": "300", "target": "pve2", "storage": "local-lvm"})
    assert r.json()["message"] == "can't clone to non-shared storage 'local-lvm'\n"
    r = await admin.post("/nodes/pve1/qemu/100/clone", data={"newid": "300", "target": "pve9"})
    assert r.json()["message"] == "no such cluster node 'pve9'\n"
    st = await _task(admin, "POST", "/nodes/pve1/qemu/106/clone", {"newid": "300", "target": "pve2"})
    assert st["exitstatus"] == "OK"
    cfg = await admin.data("GET", "/nodes/pve2/qemu/300/config")
    assert str(cfg["scsi0"]).startswith("nfs-shared:300/vm-300-disk-0.qcow2")


async def test_linked_clone_of_an_lvmthin_snapshot(admin: Api) -> None:
    # LvmThinPlugin volume_has_feature: clone => { base => 1, snap => 1 }
    data = {"newid": "301", "full": "0", "snapname": "pre_upgrade"}
    st = await _task(admin, "POST", "/nodes/pve1/qemu/102/clone", data)
    assert st["exitstatus"] == "OK"
    cfg = await admin.data("GET", "/nodes/pve1/qemu/301/config")
    assert str(cfg["scsi0"]).startswith("local-lvm:vm-301-disk-0,")
    r = await admin.post("/nodes/pve1/qemu/106/clone", data={"newid": "302", "full": "0", "snapname": "nope"})
    assert r.json()["message"] == "snapshot 'nope' does not exist\n"


async def test_container_clone_rules(admin: Api) -> None:
    r = await admin.post("/nodes/pve1/lxc/107/clone", data={"newid": "310"})
    assert r.json()["message"] == "Full clone of a running container is only possible from a snapshot\n"
    r = await admin.post("/nodes/pve3/lxc/109/clone", data={"newid": "310", "target": "pve1"})
    assert r.json()["message"] == "can't clone CT to node 'pve1' (CT uses local storage)\n"
    r = await admin.post("/nodes/pve3/lxc/109/clone", data={"newid": "310", "full": "0"})
    assert r.json()["message"] == "Linked clone feature for 'local-lvm:vm-109-disk-0' is not available\n"
    # for a CT the target storage counts: copies onto shared storage may go to another node
    data = {"newid": "310", "target": "pve1", "storage": "nfs-shared", "full": "1"}
    st = await _task(admin, "POST", "/nodes/pve3/lxc/109/clone", data)
    assert st["exitstatus"] == "OK"


async def test_lxc_create_bare_rootfs_size_and_veth(sim: RunningSimulator, admin: Api) -> None:
    data = {"vmid": "320", "ostemplate": TMPL, "storage": "local-lvm", "rootfs": "8", "net0": "name=eth0,bridge=vmbr0"}
    st = await _task(admin, "POST", "/nodes/pve1/lxc", data)
    assert st["exitstatus"] == "OK"
    cfg = await admin.data("GET", "/nodes/pve1/lxc/320/config")
    assert cfg["rootfs"] == "local-lvm:vm-320-disk-0,size=8G"
    assert sim.state.find_volume("local-lvm:vm-320-disk-0", "pve1") is not None
    assert cfg["net0"].startswith("name=eth0,bridge=vmbr0,hwaddr=BC:24:11:") and cfg["net0"].endswith(",type=veth")
    assert cfg["unprivileged"] == 1
    r = await admin.put("/nodes/pve1/lxc/320/config", data={"unprivileged": "1"})
    assert r.json()["message"] == "unable to modify read-only option: 'unprivileged'\n"
    # privileged: 'unprivileged' is simply not written; a bare size on the default storage ('local') is a 400
    st = await _task(
        admin,
        "POST",
        "/nodes/pve1/lxc",
        {"vmid": "321", "ostemplate": TMPL, "rootfs": "local-lvm:4", "unprivileged": "0"},
    )
    assert "unprivileged" not in await admin.data("GET", "/nodes/pve1/lxc/321/config")
    r = await admin.post("/nodes/pve1/lxc", data={"vmid": "322", "ostemplate": TMPL, "rootfs": "8"})
    assert r.status_code == 400
    assert r.json()["errors"] == {"storage": "storage 'local' does not support container directories"}
    r = await admin.post("/nodes/pve1/lxc", data={"vmid": "322", "ostemplate": TMPL, "mp0": "local-lvm:2,mp=/x"})
    assert r.json()["message"] == "mount points configured, but 'rootfs' not set - aborting\n"


async def test_container_full_clone_to_storage_without_rootdir_fails_in_the_task(admin: Api) -> None:
    st = await _task(admin, "POST", "/nodes/pve3/lxc/109/clone", {"newid": "330", "storage": "local", "full": "1"})
    assert st["exitstatus"] == "clone failed: content type 'rootdir' is not available or configured on storage 'local'"
    r = await admin.get("/nodes/pve3/lxc/330/config")
    assert r.status_code == 500  # the new CT's placeholder config is gone again


async def test_container_clone_locks_the_source_with_disk(sim: RunningSimulator, admin: Api) -> None:
    r = await admin.post("/nodes/pve3/lxc/109/clone", data={"newid": "331", "full": "1"})
    upid = r.json()["data"]
    assert sim.state.guests[109].lock == "disk" and sim.state.guests[331].lock == "create"
    r = await admin.post("/nodes/pve3/lxc/109/status/start")  # the 'disk' lock holds off a start
    assert (await admin.wait_task(r.json()["data"]))["exitstatus"] == "CT is locked (disk)"
    st = await admin.wait_task(upid)
    assert st["exitstatus"] == "OK"
    assert sim.state.guests[109].lock is None and sim.state.guests[331].lock is None
    assert "create full clone of mountpoint rootfs (local-lvm:vm-109-disk-0)" in await admin.log(upid)

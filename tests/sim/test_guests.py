"""Guest lifecycle: power actions, create, clone, destroy, config with digest and locks (notes §1.7, §4)."""

from __future__ import annotations

import pytest

from pvemcp.sim import RunningSimulator

from .conftest import Api

pytestmark = pytest.mark.anyio

# seeded cluster (seed 1): 100 web-01 qemu running pve1 · 102 db-01 qemu running pve1 (snapshots)
# 103 dns-01 lxc running pve3 · 105 dev-box qemu stopped pve3 · 106 ci-runner qemu on shared NFS, pve1
# 108 legacy-app qemu running pve2, ignores ACPI · 109 build-cache lxc stopped pve3 · 9000 template pve1


async def _task(api: Api, method: str, path: str, data: dict[str, str] | None = None) -> tuple[str, dict[str, str]]:
    r = await api.client.request(method, api.sim.url + path, data=data)
    assert r.status_code == 200, (r.status_code, r.text)
    upid = r.json()["data"]
    assert upid.startswith("UPID:")
    return upid, await api.wait_task(upid)


async def _status(api: Api, node: str, kind: str, vmid: int) -> dict[str, object]:
    data: dict[str, object] = await api.data("GET", f"/nodes/{node}/{kind}/{vmid}/status/current")
    return data


async def test_qemu_stop_start_cycle(admin: Api) -> None:
    _, st = await _task(admin, "POST", "/nodes/pve1/qemu/100/status/stop")
    assert st["exitstatus"] == "OK" and st["type"] == "qmstop" and st["id"] == "100"
    cur = await _status(admin, "pve1", "qemu", 100)
    assert cur["status"] == "stopped" and cur["qmpstatus"] == "stopped" and "pid" not in cur
    # stopping a stopped VM is TASK OK
    _, st = await _task(admin, "POST", "/nodes/pve1/qemu/100/status/stop")
    assert st["exitstatus"] == "OK"
    _, st = await _task(admin, "POST", "/nodes/pve1/qemu/100/status/start")
    assert st["exitstatus"] == "OK"
    cur = await _status(admin, "pve1", "qemu", 100)
    assert cur["status"] == "running" and isinstance(cur["pid"], int) and cur["running-qemu"]


async def test_qemu_start_while_running_fails_in_the_task(admin: Api) -> None:
    upid, st = await _task(admin, "POST", "/nodes/pve1/qemu/100/status/start")
    assert st["exitstatus"] == "VM 100 already running"
    assert (await admin.log(upid))[-1] == "TASK ERROR: VM 100 already running"


async def test_qemu_start_of_missing_vm_fails_in_the_task(admin: Api) -> None:
    _, st = await _task(admin, "POST", "/nodes/pve2/qemu/100/status/start")
    assert st["exitstatus"] == "Configuration file 'nodes/pve2/qemu-server/100.conf' does not exist"


async def test_template_cannot_start(admin: Api) -> None:
    _, st = await _task(admin, "POST", "/nodes/pve1/qemu/9000/status/start")
    assert st["exitstatus"] == "you can't start a vm if it's a template"


async def test_lxc_state_errors_are_synchronous(admin: Api) -> None:
    r = await admin.post("/nodes/pve3/lxc/103/status/start")
    assert (r.status_code, r.json()["message"]) == (500, "CT 103 already running\n")
    for action in ("stop", "shutdown", "suspend"):
        r = await admin.post(f"/nodes/pve3/lxc/109/status/{action}")
        assert (r.status_code, r.json()["message"]) == (500, "CT 109 not running\n"), action
    r = await admin.post("/nodes/pve3/lxc/109/status/reboot")
    assert r.json()["message"] == "VM 109 not running\n"
    _, st = await _task(admin, "POST", "/nodes/pve3/lxc/109/status/start")
    assert st["exitstatus"] == "OK" and st["type"] == "vzstart"
    assert (await _status(admin, "pve3", "lxc", 109))["status"] == "running"


async def test_qemu_not_running_errors(admin: Api) -> None:
    for action in ("reboot", "reset", "suspend", "resume"):
        r = await admin.post(f"/nodes/pve3/qemu/105/status/{action}")
        assert (r.status_code, r.json()["message"]) == (500, "VM 105 not running\n"), action
    r = await admin.post("/nodes/pve3/qemu/100/status/reboot")
    assert r.json()["message"] == "unable to find configuration file for VM 100 on node 'pve3'\n"


async def test_shutdown_timeout_and_force_stop(admin: Api) -> None:
    _, st = await _task(admin, "POST", "/nodes/pve2/qemu/108/status/shutdown", {"timeout": "10"})
    assert st["exitstatus"] == "VM quit/powerdown failed - got timeout"
    assert (await _status(admin, "pve2", "qemu", 108))["status"] == "running"
    upid, st = await _task(admin, "POST", "/nodes/pve2/qemu/108/status/shutdown", {"timeout": "5", "forceStop": "1"})
    assert st["exitstatus"] == "OK"
    assert "VM still running - terminating now with SIGTERM" in await admin.log(upid)
    assert (await _status(admin, "pve2", "qemu", 108))["status"] == "stopped"


async def test_clean_shutdown_and_reboot(admin: Api) -> None:
    _, st = await _task(admin, "POST", "/nodes/pve2/qemu/101/status/reboot")
    assert st["exitstatus"] == "OK" and st["type"] == "qmreboot"
    assert (await _status(admin, "pve2", "qemu", 101))["status"] == "running"
    _, st = await _task(admin, "POST", "/nodes/pve2/qemu/101/status/shutdown")
    assert st["exitstatus"] == "OK"
    assert (await _status(admin, "pve2", "qemu", 101))["status"] == "stopped"


async def test_suspend_resume_and_paused_shutdown(admin: Api) -> None:
    _, st = await _task(admin, "POST", "/nodes/pve1/qemu/100/status/suspend")
    assert st["type"] == "qmpause" and st["exitstatus"] == "OK"
    cur = await _status(admin, "pve1", "qemu", 100)
    assert (cur["status"], cur["qmpstatus"]) == ("running", "paused")
    r = await admin.post("/nodes/pve1/qemu/100/status/shutdown")
    assert r.json()["message"] == "VM is paused - cannot shutdown\n"
    r = await admin.post("/nodes/pve1/qemu/100/status/reboot")
    assert r.json()["message"] == "VM is paused - cannot shutdown\n"
    _, st = await _task(admin, "POST", "/nodes/pve1/qemu/100/status/resume")
    assert (await _status(admin, "pve1", "qemu", 100))["qmpstatus"] == "running"


async def test_hibernate_and_start_resumes(admin: Api) -> None:
    _, st = await _task(admin, "POST", "/nodes/pve1/qemu/100/status/suspend", {"todisk": "1"})
    assert st["type"] == "qmsuspend" and st["exitstatus"] == "OK"
    cur = await _status(admin, "pve1", "qemu", 100)
    assert cur["status"] == "stopped" and cur["lock"] == "suspended"
    _, st = await _task(admin, "POST", "/nodes/pve1/qemu/100/status/start")
    assert st["exitstatus"] == "OK"
    cur = await _status(admin, "pve1", "qemu", 100)
    assert cur["status"] == "running" and "lock" not in cur


async def test_config_digest_and_update(admin: Api) -> None:
    cfg = await admin.data("GET", "/nodes/pve1/qemu/100/config")
    assert "vmid" not in cfg and len(cfg["digest"]) == 40 and cfg["memory"] == "4096"
    r = await admin.put("/nodes/pve1/qemu/100/config", data={"cores": "4", "digest": cfg["digest"]})
    assert r.json() == {"data": None}
    r = await admin.put("/nodes/pve1/qemu/100/config", data={"cores": "8", "digest": cfg["digest"]})
    assert (r.status_code, r.json()["message"]) == (500, "checksum mismatch (file change by other user?)\n")
    new = await admin.data("GET", "/nodes/pve1/qemu/100/config")
    assert new["cores"] == 4 and new["digest"] != cfg["digest"]
    r = await admin.put("/nodes/pve1/qemu/100/config", data={"delete": "tags", "tags": "x"})
    assert r.status_code == 400 and "delete" in r.json()["errors"]
    await admin.data("PUT", "/nodes/pve1/qemu/100/config", data={"delete": "tags"})
    assert "tags" not in await admin.data("GET", "/nodes/pve1/qemu/100/config")


async def test_async_config_post_returns_upid(admin: Api) -> None:
    _, st = await _task(admin, "POST", "/nodes/pve1/qemu/100/config", {"scsi1": "local-lvm:4"})
    assert st["type"] == "qmconfig" and st["exitstatus"] == "OK"
    cfg = await admin.data("GET", "/nodes/pve1/qemu/100/config")
    assert cfg["scsi1"] == "local-lvm:vm-100-disk-1,size=4G"
    r = await admin.post("/nodes/pve1/qemu/100/config", data={"cores": "3", "background_delay": "5"})
    assert r.json() == {"data": None}
    assert (await admin.data("GET", "/nodes/pve1/qemu/100/config"))["cores"] == 3


async def test_locked_config_rejects_edits_during_backup(sim: RunningSimulator, admin: Api) -> None:
    r = await admin.post("/nodes/pve1/vzdump", data={"vmid": "102", "storage": "nfs-shared"})
    upid = r.json()["data"]
    cfg = await admin.data("GET", "/nodes/pve1/qemu/102/config")
    assert cfg["lock"] == "backup"
    r = await admin.put("/nodes/pve1/qemu/102/config", data={"description": "x"})
    assert (r.status_code, r.json()["message"]) == (500, "VM is locked (backup)\n")
    r = await admin.post("/nodes/pve1/qemu/102/clone", data={"newid": "300"})
    assert r.json()["message"] == "VM is locked (backup)\n"
    _, st = await _task(admin, "POST", "/nodes/pve1/qemu/102/status/stop")
    assert st["exitstatus"] == "VM is locked (backup)"
    st = await admin.wait_task(upid)
    assert st["exitstatus"] == "OK"
    assert "lock" not in await admin.data("GET", "/nodes/pve1/qemu/102/config")


async def test_create_qemu(admin: Api) -> None:
    r = await admin.post(
        "/nodes/pve2/qemu",
        data={
            "vmid": "120",
            "name": "new-vm",
            "memory": "2048",
            "cores": "2",
            "scsi0": "local-lvm:16",
            "net0": "virtio,bridge=vmbr0",
            "ide2": "nfs-shared:iso/debian-13.2.0-amd64-netinst.iso,media=cdrom",
        },
    )
    upid = r.json()["data"]
    assert ":qmcreate:120:root@pam!pvemcp:" in upid
    cfg = await admin.data("GET", "/nodes/pve2/qemu/120/config")
    assert cfg["lock"] == "create"
    st = await admin.wait_task(upid)
    assert st["exitstatus"] == "OK"
    cfg = await admin.data("GET", "/nodes/pve2/qemu/120/config")
    assert "lock" not in cfg and cfg["name"] == "new-vm" and cfg["memory"] == "2048"
    assert cfg["scsi0"] == "local-lvm:vm-120-disk-0,size=16G"
    assert cfg["net0"].startswith("virtio=BC:24:11:") and cfg["net0"].endswith(",bridge=vmbr0")
    assert cfg["boot"] == "order=scsi0;ide2;net0"
    assert cfg["meta"].startswith("creation-qemu=") and cfg["smbios1"].startswith("uuid=")
    r = await admin.post("/nodes/pve2/qemu", data={"vmid": "100"})
    assert r.json()["message"] == "unable to create VM 100 - VM 100 already exists on node 'pve1'\n"


async def test_create_lxc_from_template(admin: Api) -> None:
    tmpl = "local:vztmpl/debian-12-standard_12.12-1_amd64.tar.zst"
    r = await admin.post(
        "/nodes/pve3/lxc",
        data={
            "vmid": "130",
            "ostemplate": tmpl,
            "hostname": "ct-new",
            "rootfs": "local-lvm:8",
            "net0": "name=eth0,bridge=vmbr0,ip=dhcp",
            "password": "s3cret-pass",
        },
    )
    upid, st = r.json()["data"], None
    st = await admin.wait_task(upid)
    assert st["exitstatus"] == "OK" and st["type"] == "vzcreate"
    log = await admin.log(upid)
    assert any(line.startswith("extracting archive '/var/lib/vz/template/cache/debian-12") for line in log)
    cfg = await admin.data("GET", "/nodes/pve3/lxc/130/config")
    assert cfg["hostname"] == "ct-new" and cfg["unprivileged"] == 1 and cfg["ostype"] == "debian"
    assert cfg["rootfs"] == "local-lvm:vm-130-disk-0,size=8G" and "hwaddr=BC:24:11:" in cfg["net0"]
    assert "password" not in cfg
    r = await admin.post("/nodes/pve3/lxc", data={"vmid": "131", "ostemplate": "local:vztmpl/nope.tar.zst"})
    assert r.json()["message"] == "volume 'local:vztmpl/nope.tar.zst' does not exist\n"
    r = await admin.post("/nodes/pve3/lxc", data={"vmid": "103", "ostemplate": tmpl})
    assert r.json()["message"] == "CT 103 already exists on node 'pve3'\n"
    # pve-container API2/LXC.pm create_vm $check_and_activate_storage: raise_param_exc (400)
    r = await admin.post("/nodes/pve3/lxc", data={"vmid": "132", "ostemplate": tmpl})
    assert r.status_code == 400
    assert r.json()["errors"] == {"storage": "storage 'local' does not support container directories"}


async def test_destroy_rules(sim: RunningSimulator, admin: Api) -> None:
    r = await admin.delete("/nodes/pve1/qemu/100")
    assert r.json()["message"] == "VM 100 is running - destroy failed\n"
    r = await admin.delete("/nodes/pve3/lxc/103")
    assert r.json()["message"] == "unable to destroy CT 103 - container is running\n"
    await admin.data("PUT", "/nodes/pve3/qemu/105/config", data={"protection": "1"})
    r = await admin.delete("/nodes/pve3/qemu/105")
    assert r.json()["message"] == "can't remove VM 105 - protection mode enabled\n"
    await admin.data("PUT", "/nodes/pve3/qemu/105/config", data={"delete": "protection"})
    _, st = await _task(admin, "DELETE", "/nodes/pve3/qemu/105")
    assert st["exitstatus"] == "OK" and st["type"] == "qmdestroy"
    r = await admin.get("/nodes/pve3/qemu/105/config")
    assert r.json()["message"] == "Configuration file 'nodes/pve3/qemu-server/105.conf' does not exist\n"
    assert not [v for v in sim.state.volumes.values() if v.vmid == 105 and v.content == "images"]
    _, st = await _task(admin, "DELETE", "/nodes/pve3/lxc/103?force=1&purge=1")
    assert st["exitstatus"] == "OK"


async def test_destroy_with_purge_cleans_backup_jobs(sim: RunningSimulator, admin: Api) -> None:
    await _task(admin, "POST", "/nodes/pve2/qemu/101/status/stop")
    _, st = await _task(admin, "DELETE", "/nodes/pve2/qemu/101?purge=1")
    assert st["exitstatus"] == "OK"
    jobs = await admin.data("GET", "/cluster/backup")
    assert all("101" not in str(j.get("vmid", "")).split(",") for j in jobs)
    assert 101 not in sim.state.pools["prod"].vmids


async def test_full_clone_defaults(admin: Api) -> None:
    upid, st = await _task(admin, "POST", "/nodes/pve1/qemu/100/clone", {"newid": "200"})
    assert st["type"] == "qmclone" and st["id"] == "100" and st["exitstatus"] == "OK"
    log = await admin.log(upid)
    assert log[0] == "create full clone of drive scsi0 (local-lvm:vm-100-disk-0)"
    assert "transferred 32.0 GiB of 32.0 GiB (100.00%)" in log
    cfg = await admin.data("GET", "/nodes/pve1/qemu/200/config")
    src = await admin.data("GET", "/nodes/pve1/qemu/100/config")
    assert cfg["name"] == "Copy-of-VM-web-01"
    assert cfg["scsi0"] == "local-lvm:vm-200-disk-0,iothread=1,size=32G"
    assert cfg["net0"] != src["net0"] and cfg["smbios1"] != src["smbios1"]
    r = await admin.post("/nodes/pve1/qemu/100/clone", data={"newid": "200"})
    assert r.json()["message"] == "unable to create VM 200: config file already exists\n"


async def test_clone_lock_is_visible_while_running(sim: RunningSimulator, admin: Api) -> None:
    r = await admin.post("/nodes/pve1/qemu/102/clone", data={"newid": "201", "name": "db-copy"})
    upid = r.json()["data"]
    cfg = await admin.data("GET", "/nodes/pve1/qemu/201/config")
    assert cfg["lock"] == "clone"
    st = await admin.wait_task(upid)
    assert st["exitstatus"] == "OK"
    cfg = await admin.data("GET", "/nodes/pve1/qemu/201/config")
    assert cfg["name"] == "db-copy" and "lock" not in cfg and "parent" not in cfg


async def test_linked_clone_rules(admin: Api) -> None:
    r = await admin.post("/nodes/pve1/qemu/100/clone", data={"newid": "210", "full": "0"})
    assert r.json()["message"] == "Linked clone feature is not supported for 'local-lvm:vm-100-disk-0' (scsi0)\n"
    r = await admin.post("/nodes/pve1/qemu/9000/clone", data={"newid": "210", "storage": "local-lvm"})
    assert r.json()["message"] == "parameter 'storage' not allowed for linked clones\n"
    r = await admin.post("/nodes/pve1/qemu/9000/clone", data={"newid": "210", "target": "pve2"})
    assert r.json()["message"] == "can't clone VM to node 'pve2' (VM uses local storage)\n"
    upid, st = await _task(admin, "POST", "/nodes/pve1/qemu/9000/clone", {"newid": "210", "name": "from-tmpl"})
    assert st["exitstatus"] == "OK"
    assert (await admin.log(upid))[0] == "create linked clone of drive scsi0 (local-lvm:base-9000-disk-0)"
    cfg = await admin.data("GET", "/nodes/pve1/qemu/210/config")
    assert cfg["scsi0"].startswith("local-lvm:base-9000-disk-0/vm-210-disk-0,")
    assert "template" not in cfg
    _, st = await _task(admin, "DELETE", "/nodes/pve1/qemu/9000")
    assert st["exitstatus"] == "base volume 'local-lvm:base-9000-disk-0' is still in use by linked cloned"


async def test_clone_to_other_node_from_shared_storage(admin: Api) -> None:
    _, st = await _task(admin, "POST", "/nodes/pve1/qemu/106/clone", {"newid": "220", "target": "pve2"})
    assert st["exitstatus"] == "OK"
    cfg = await admin.data("GET", "/nodes/pve2/qemu/220/config")
    assert cfg["scsi0"].startswith("nfs-shared:220/vm-220-disk-0.qcow2,")


async def test_lxc_running_full_clone_needs_snapshot(admin: Api) -> None:
    r = await admin.post("/nodes/pve3/lxc/103/clone", data={"newid": "230"})
    assert r.json()["message"] == "Full clone of a running container is only possible from a snapshot\n"
    _, st = await _task(admin, "POST", "/nodes/pve3/lxc/109/clone", {"newid": "231", "hostname": "cache-2"})
    assert st["type"] == "vzclone" and st["exitstatus"] == "OK"
    cfg = await admin.data("GET", "/nodes/pve3/lxc/231/config")
    assert cfg["hostname"] == "cache-2"


async def test_template_conversion_rules(admin: Api) -> None:
    r = await admin.post("/nodes/pve1/qemu/100/template")
    assert r.json()["message"] == "you can't convert a VM to template if VM is running\n"
    r = await admin.post("/nodes/pve3/qemu/105/template")
    assert r.json()["message"] == "unable to create template, because VM contains snapshots\n"
    _, st = await _task(admin, "POST", "/nodes/pve3/qemu/110/template")
    assert st["type"] == "qmtemplate" and st["exitstatus"] == "OK"
    cfg = await admin.data("GET", "/nodes/pve3/qemu/110/config")
    assert cfg["template"] == 1 and cfg["scsi0"].startswith("local-lvm:base-110-disk-0,")


async def test_guest_listings(shared_admin: Api) -> None:
    qemu = {g["vmid"]: g for g in await shared_admin.data("GET", "/nodes/pve1/qemu")}
    assert set(qemu) == {100, 102, 106, 9000}
    assert "type" not in qemu[100] and qemu[9000]["template"] == 1 and "template" not in qemu[100]
    assert "pid" in qemu[100] and "pid" not in qemu[9000]
    assert qemu[100]["memhost"] > 0 and "pressurecpusome" in qemu[100]
    lxc = {g["vmid"]: g for g in await shared_admin.data("GET", "/nodes/pve3/lxc")}
    assert set(lxc) == {103, 109} and lxc[103]["type"] == "lxc" and isinstance(lxc[103]["vmid"], int)


async def test_create_on_storage_without_images_is_a_400(admin: Api) -> None:
    # qemu-server API2/Qemu.pm $check_storage_access runs before the worker: raise_param_exc, nothing created
    r = await admin.post("/nodes/pve1/qemu", data={"vmid": "140", "scsi0": "local:8"})
    assert r.status_code == 400
    assert r.json()["errors"] == {"storage": "storage 'local' does not support vm images"}
    r = await admin.get("/nodes/pve1/qemu/140/config")
    assert r.status_code == 500
    r = await admin.post("/nodes/pve1/qemu/100/clone", data={"newid": "141", "storage": "local"})
    assert r.status_code == 400
    assert r.json()["errors"] == {"storage": "storage 'local' does not support vm images"}

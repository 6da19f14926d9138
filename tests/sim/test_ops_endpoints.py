"""Guest agent exec/info, container interfaces, resize, migrate, restore and RRD data of the simulator.

Each behaviour is read from the PVE source named in the handler modules (``sim/handlers/agent.py``,
``disk_resize.py``, ``migrate.py``, ``restore.py``, ``rrd.py``); the texts asserted here are PVE's.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from pvemcp.sim.state import config_digest

from .conftest import Api

pytestmark = pytest.mark.anyio


async def _run(api: Api, method: str, path: str, data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    return await _task(api, await api.client.request(method, api.sim.url + path, data=data))


async def _task(api: Api, r: Any) -> tuple[dict[str, Any], list[str]]:
    assert r.status_code == 200, r.text
    upid = r.json()["data"]
    status = await api.wait_task(upid)
    return status, await api.log(upid)


# ------------------------------------------------------------------------------------------- agent


async def test_agent_exec_runs_and_reports_output(admin: Api) -> None:
    r = await admin.post("/nodes/pve1/qemu/100/agent/exec", data={"command": ["sh", "-c", "sleep 3"]})
    pid = r.json()["data"]["pid"]
    assert await admin.data("GET", "/nodes/pve1/qemu/100/agent/exec-status", params={"pid": pid}) == {"exited": 0}
    admin.sim.advance_clock(4)
    done = await admin.data("GET", "/nodes/pve1/qemu/100/agent/exec-status", params={"pid": pid})
    assert done == {"exited": 1, "exitcode": 0}
    r = await admin.post("/nodes/pve1/qemu/100/agent/exec", data={"command": ["hostname"]})
    admin.sim.advance_clock(1)
    out = await admin.data("GET", "/nodes/pve1/qemu/100/agent/exec-status", params={"pid": r.json()["data"]["pid"]})
    assert out["exited"] == 1 and out["exitcode"] == 0 and out["out-data"] == "web-01\n"


async def test_agent_exec_failures_use_pve_texts(admin: Api) -> None:
    r = await admin.post("/nodes/pve2/qemu/108/agent/exec", data={"command": ["true"]})
    assert r.status_code == 500 and r.json()["message"] == "No QEMU guest agent configured\n"
    r = await admin.post("/nodes/pve3/qemu/105/agent/exec", data={"command": ["true"]})
    assert r.json()["message"] == "VM 105 is not running\n"
    admin.sim.sim.guest_agents.silent.add(100)
    r = await admin.post("/nodes/pve1/qemu/100/agent/exec", data={"command": ["true"]})
    assert r.json()["message"] == "QEMU guest agent is not running\n"
    r = await admin.get("/nodes/pve1/qemu/100/agent/network-get-interfaces")
    assert r.json()["message"] == "QEMU guest agent is not running\n"
    admin.sim.sim.guest_agents.silent.clear()
    r = await admin.post("/nodes/pve1/qemu/100/agent/exec", data={"command": ["no-such-program"]})
    assert r.status_code == 500
    assert r.json()["message"].startswith("VM 100 qga command 'guest-exec' failed - Failed to execute child process")
    r = await admin.get("/nodes/pve1/qemu/100/agent/exec-status", pid=4242)
    assert r.status_code == 500 and "Invalid parameter 'pid'" in r.json()["message"]


async def test_agent_info_lists_commands(admin: Api) -> None:
    info = await admin.data("GET", "/nodes/pve1/qemu/100/agent/info")
    names = {c["name"] for c in info["result"]["supported_commands"]}
    assert {"guest-exec", "guest-get-osinfo", "guest-network-get-interfaces"} <= names


async def test_lxc_interfaces_running_and_stopped(admin: Api) -> None:
    ifaces = await admin.data("GET", "/nodes/pve3/lxc/103/interfaces")
    by_name = {i["name"]: i for i in ifaces}
    assert by_name["lo"]["inet"] == "127.0.0.1/8"
    eth0 = by_name["eth0"]
    mac = str(admin.sim.state.guests[103].config["net0"]).split("hwaddr=")[1].split(",")[0].lower()
    assert eth0["hwaddr"] == eth0["hardware-address"] == mac
    assert eth0["ip-addresses"][0]["ip-address-type"] == "inet" and eth0["inet"].endswith("/24")
    # a stopped CT (and an unknown one): get_interfaces returns undef -> null
    r = await admin.get("/nodes/pve3/lxc/109/interfaces")
    assert r.status_code == 200 and r.json()["data"] is None


# ------------------------------------------------------------------------------------------- resize


async def test_qemu_resize_grows_and_refuses_shrink_in_task(admin: Api) -> None:
    status, _ = await _task(
        admin, await admin.put("/nodes/pve1/qemu/100/resize", data={"disk": "scsi0", "size": "+20G"})
    )
    assert status["exitstatus"] == "OK"
    guest = admin.sim.state.guests[100]
    assert "size=52G" in str(guest.config["scsi0"])
    volume = admin.sim.state.find_volume("local-lvm:vm-100-disk-0", "pve1")
    assert volume is not None and volume.size == 52 * 1024**3
    status, _ = await _task(
        admin, await admin.put("/nodes/pve1/qemu/100/resize", data={"disk": "scsi0", "size": "40G"})
    )
    assert status["exitstatus"] == "shrinking disks is not supported"
    status, _ = await _task(
        admin, await admin.put("/nodes/pve1/qemu/100/resize", data={"disk": "scsi5", "size": "+1G"})
    )
    assert status["exitstatus"] == "disk 'scsi5' does not exist"
    status, _ = await _run(admin, "PUT", "/nodes/pve1/qemu/100/resize", {"disk": "ide2", "size": "+1G"})
    assert status["exitstatus"] == "disk 'ide2' has no associated volume"  # ide2: none,media=cdrom
    status, _ = await _task(
        admin, await admin.put("/nodes/pve1/qemu/100/resize", data={"disk": "scsi0", "size": "52G"})
    )
    assert status["exitstatus"] == "OK" and "size=52G" in str(guest.config["scsi0"])


async def test_lxc_resize_checks_before_forking(admin: Api) -> None:
    r = await admin.put("/nodes/pve3/lxc/103/resize", data={"disk": "rootfs", "size": "4G"})
    assert r.status_code == 500 and r.json()["message"] == "unable to shrink disk size\n"
    r = await admin.put("/nodes/pve3/lxc/103/resize", data={"disk": "rootfs", "size": "8G"})
    assert r.json()["message"] == "disk is already at specified size\n"
    status, _ = await _task(
        admin, await admin.put("/nodes/pve3/lxc/103/resize", data={"disk": "rootfs", "size": "+2G"})
    )
    assert status["exitstatus"] == "OK" and "size=10G" in str(admin.sim.state.guests[103].config["rootfs"])


# ------------------------------------------------------------------------------------------- migrate


async def test_qemu_precondition_lists_local_disks(admin: Api) -> None:
    pre = await admin.data("GET", "/nodes/pve1/qemu/100/migrate")
    assert pre["running"] == 1 and sorted(pre["allowed_nodes"]) == ["pve2", "pve3"]
    assert [d["volid"] for d in pre["local_disks"]] == ["local-lvm:vm-100-disk-0"]
    assert pre["local_disks"][0]["is_attached"] == 1 and pre["local_disks"][0]["size"] == 32 * 1024**3
    assert pre["local_resources"] == [] and pre["not_allowed_nodes"] == {}
    ct = await admin.data("GET", "/nodes/pve3/lxc/103/migrate")
    assert ct == {"running": 1, "allowed-nodes": ["pve1", "pve2"], "not-allowed-nodes": {}}
    shared = await admin.data("GET", "/nodes/pve1/qemu/106/migrate")
    assert shared["local_disks"] == []  # ci-runner lives on the shared NFS store


async def test_qemu_migrate_rules(admin: Api) -> None:
    r = await admin.post("/nodes/pve1/qemu/100/migrate", data={"target": "pve1"})
    assert r.status_code == 400 and r.json()["errors"] == {"target": "target is local node."}
    r = await admin.post("/nodes/pve1/qemu/100/migrate", data={"target": "pve2"})
    assert r.status_code == 500 and r.json()["message"] == "can't migrate running VM without --online\n"
    r = await admin.post("/nodes/pve1/qemu/100/migrate", data={"target": "pve9"})
    assert r.json()["message"] == "no such cluster node 'pve9'\n"
    status, log = await _task(
        admin, await admin.post("/nodes/pve1/qemu/100/migrate", data={"target": "pve2", "online": 1})
    )
    assert status["exitstatus"] == "migration aborted"
    assert any("can't live migrate attached local disks without with-local-disks option" in line for line in log)
    assert admin.sim.state.guests[100].node == "pve1"


async def test_qemu_online_migration_moves_guest_and_disks(admin: Api) -> None:
    r = await admin.post("/nodes/pve1/qemu/100/migrate", data={"target": "pve2", "online": 1, "with-local-disks": 1})
    assert admin.sim.state.guests[100].lock == "migrate"
    status, log = await _task(admin, r)
    assert status["exitstatus"] == "OK", log
    guest = admin.sim.state.guests[100]
    assert guest.node == "pve2" and guest.status == "running" and guest.lock is None
    assert admin.sim.state.find_volume("local-lvm:vm-100-disk-0", "pve2") is not None
    assert admin.sim.state.find_volume("local-lvm:vm-100-disk-0", "pve1") is None
    assert any("migration finished successfully" in line for line in log)


async def test_local_disks_with_snapshots_do_not_migrate(admin: Api) -> None:
    """scan_local_volumes: live with snapshots never; offline only where snapshots live in the volume."""
    data = {"target": "pve2", "online": 1, "with-local-disks": 1}
    status, log = await _run(admin, "POST", "/nodes/pve1/qemu/102/migrate", data)
    assert status["exitstatus"] == "migration aborted"
    assert any("online storage migration not possible if non-replicated snapshot exists" in line for line in log)
    admin.sim.state.guests[102].status = "stopped"
    status, log = await _run(admin, "POST", "/nodes/pve1/qemu/102/migrate", {"target": "pve2"})
    assert status["exitstatus"] == "migration aborted"
    assert any("non-migratable snapshot exists" in line for line in log)
    assert admin.sim.state.guests[102].node == "pve1" and admin.sim.state.guests[102].lock is None


async def test_lxc_migrate_rules(admin: Api) -> None:
    r = await admin.post("/nodes/pve3/lxc/103/migrate", data={"target": "pve1"})
    assert r.json()["message"] == "can't migrate running container without --online or --restart\n"
    status, _ = await _task(
        admin, await admin.post("/nodes/pve3/lxc/103/migrate", data={"target": "pve1", "online": 1})
    )
    assert status["exitstatus"] == "migration aborted"
    status, _ = await _task(
        admin, await admin.post("/nodes/pve3/lxc/103/migrate", data={"target": "pve1", "restart": 1})
    )
    assert status["exitstatus"] == "OK"
    ct = admin.sim.state.guests[103]
    assert ct.node == "pve1" and ct.status == "running"


async def test_migrate_to_offline_node_fails_in_task(admin: Api) -> None:
    admin.sim.faults.add("offline_node", node="pve2")
    admin.sim.sim.sync_faults()
    status, log = await _run(admin, "POST", "/nodes/pve3/qemu/105/migrate", {"target": "pve2"})
    assert status["exitstatus"] == "migration aborted"
    assert any("Can't connect to destination address using public key" in line for line in log)


# ------------------------------------------------------------------------------------------- restore


def _archives(api: Api, vmid: int) -> list[str]:
    return sorted(v.volid for v in api.sim.state.volumes.values() if v.content == "backup" and v.vmid == vmid)


async def test_qemu_restore_to_new_vmid(admin: Api) -> None:
    archive = _archives(admin, 100)[-1]
    r = await admin.post("/nodes/pve2/qemu", data={"vmid": 120, "archive": archive, "storage": "local-lvm"})
    assert ":qmrestore:120:" in r.json()["data"]
    assert admin.sim.state.guests[120].lock == "create"
    status, _ = await _task(admin, r)
    assert status["exitstatus"] == "OK"
    restored = admin.sim.state.guests[120]
    assert restored.node == "pve2" and restored.config["name"] == "web-01" and restored.lock is None
    assert str(restored.config["scsi0"]).startswith("local-lvm:vm-120-disk-0,")
    assert admin.sim.state.find_volume("local-lvm:vm-120-disk-0", "pve2") is not None


async def test_qemu_restore_over_existing(admin: Api) -> None:
    archive = _archives(admin, 100)[0]
    r = await admin.post("/nodes/pve1/qemu", data={"vmid": 100, "archive": archive})
    assert (
        r.status_code == 500
        and r.json()["message"] == "unable to restore VM 100 - VM 100 already exists on node 'pve1'\n"
    )
    status, _ = await _task(
        admin, await admin.post("/nodes/pve1/qemu", data={"vmid": 100, "archive": archive, "force": 1})
    )
    assert status["exitstatus"] == "unable to restore VM 100 - vm is running"
    admin.sim.state.guests[100].status = "stopped"
    admin.sim.state.guests[100].config["memory"] = "999"
    status, _ = await _task(
        admin, await admin.post("/nodes/pve1/qemu", data={"vmid": 100, "archive": archive, "force": 1})
    )
    assert status["exitstatus"] == "OK"
    assert admin.sim.state.guests[100].config["memory"] == "4096"
    r = await admin.post("/nodes/pve1/qemu", data={"vmid": 121, "archive": archive, "scsi0": "local-lvm:4"})
    assert r.status_code == 400 and r.json()["errors"] == {"scsi0": "option conflicts with option 'archive'"}


async def test_lxc_restore(admin: Api) -> None:
    archive = _archives(admin, 103)[-1]
    r = await admin.post("/nodes/pve3/lxc", data={"vmid": 103, "ostemplate": archive, "restore": 1, "force": 1})
    assert r.status_code == 500 and r.json()["message"] == "can't overwrite running container\n"
    data = {"vmid": 130, "ostemplate": archive, "restore": 1, "storage": "local-lvm"}
    status, _ = await _task(admin, await admin.post("/nodes/pve1/lxc", data=data))
    assert status["exitstatus"] == "OK"
    ct = admin.sim.state.guests[130]
    assert (
        ct.type == "lxc"
        and ct.config["hostname"] == "dns-01"
        and str(ct.config["rootfs"]).startswith("local-lvm:vm-130")
    )


async def test_new_backups_carry_the_config_a_restore_needs(admin: Api) -> None:
    before = config_digest(admin.sim.state.guests[105])
    status, _ = await _run(admin, "POST", "/nodes/pve3/vzdump", {"vmid": 105, "storage": "local"})
    assert status["exitstatus"] == "OK"
    archive = next(v for v in admin.sim.state.volumes.values() if v.content == "backup" and v.vmid == 105)
    assert archive.guest_config is not None and archive.guest_config["name"] == "dev-box"
    assert config_digest(admin.sim.state.guests[105]) == before


# ------------------------------------------------------------------------------------------- rrd


async def test_rrddata_shapes(admin: Api) -> None:
    rows = await admin.data("GET", "/nodes/pve1/qemu/100/rrddata", params={"timeframe": "hour"})
    assert len(rows) == 60 and all(b["time"] - a["time"] == 60 for a, b in itertools.pairwise(rows))
    assert rows[-1]["time"] < admin.sim.state.clock.now()
    assert 0 < rows[-1]["cpu"] <= 1 and rows[-1]["maxmem"] == 4096 * 1024**2 and rows[-1]["netin"] > 0
    again = await admin.data("GET", "/nodes/pve1/qemu/100/rrddata", params={"timeframe": "hour"})
    assert again == rows  # deterministic
    peak = await admin.data("GET", "/nodes/pve1/qemu/100/rrddata", params={"timeframe": "hour", "cf": "MAX"})
    assert peak[-1]["cpu"] >= rows[-1]["cpu"]
    stopped = await admin.data("GET", "/nodes/pve3/qemu/105/rrddata", params={"timeframe": "day"})
    assert {r["cpu"] for r in stopped} == {0} and stopped[1]["time"] - stopped[0]["time"] == 60
    node = await admin.data("GET", "/nodes/pve2/rrddata", params={"timeframe": "week"})
    assert len(node) == 336 and node[-1]["memtotal"] > node[-1]["memused"] > 0
    r = await admin.get("/nodes/pve1/qemu/4242/rrddata", timeframe="hour")
    assert r.status_code == 500 and r.json()["message"].startswith(
        "RRD error: opening '/var/lib/rrdcached/db/pve-vm-9.0/4242'"
    )
    r = await admin.get("/nodes/pve1/qemu/100/rrddata", timeframe="decade")
    assert r.status_code == 400 and "timeframe" in r.json()["errors"]

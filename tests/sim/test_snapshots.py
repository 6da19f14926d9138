"""Snapshots: tree listing with the trailing ``current`` entry, create/rollback/delete (notes §4.6)."""

from __future__ import annotations

import pytest

from .conftest import Api

pytestmark = pytest.mark.anyio


async def _run(api: Api, method: str, path: str, data: dict[str, str] | None = None) -> dict[str, str]:
    r = await api.client.request(method, api.sim.url + path, data=data)
    assert r.status_code == 200, r.text
    return await api.wait_task(r.json()["data"])


async def test_list_is_a_tree_ending_with_current(shared_admin: Api) -> None:
    snaps = await shared_admin.data("GET", "/nodes/pve1/qemu/102/snapshot")
    assert [s["name"] for s in snaps][-1] == "current"
    by_name = {s["name"]: s for s in snaps}
    assert "parent" not in by_name["pre_upgrade"]
    assert by_name["post_upgrade"]["parent"] == "pre_upgrade"
    current = by_name["current"]
    assert current["description"] == "You are here!" and current["parent"] == "post_upgrade"
    assert current["running"] == 1 and len(current["digest"]) == 40 and "snaptime" not in current
    assert isinstance(by_name["pre_upgrade"]["snaptime"], int) and by_name["pre_upgrade"]["vmstate"] == 0
    lxc = await shared_admin.data("GET", "/nodes/pve1/lxc/107/snapshot")
    assert [s["name"] for s in lxc] == ["before_grafana_12", "current"] and "vmstate" not in lxc[0]


async def test_no_snapshots_lists_only_current(shared_admin: Api) -> None:
    snaps = await shared_admin.data("GET", "/nodes/pve1/qemu/100/snapshot")
    assert snaps == [{"name": "current", "description": "You are here!", "digest": snaps[0]["digest"], "running": 1}]


async def test_create_sets_parent_and_lock(admin: Api) -> None:
    r = await admin.post("/nodes/pve1/qemu/102/snapshot", data={"snapname": "third", "description": "3rd"})
    upid = r.json()["data"]
    assert ":qmsnapshot:102:" in upid
    cfg = await admin.data("GET", "/nodes/pve1/qemu/102/config")
    assert cfg["lock"] == "snapshot"
    st = await admin.wait_task(upid)
    assert st["exitstatus"] == "OK"
    snaps = {s["name"]: s for s in await admin.data("GET", "/nodes/pve1/qemu/102/snapshot")}
    assert snaps["third"]["parent"] == "post_upgrade" and snaps["third"]["description"] == "3rd"
    assert snaps["current"]["parent"] == "third"
    assert "lock" not in await admin.data("GET", "/nodes/pve1/qemu/102/config")
    snapcfg = await admin.data("GET", "/nodes/pve1/qemu/102/snapshot/third/config")
    assert snapcfg["snaptime"] == snaps["third"]["snaptime"] and snapcfg["name"] == "db-01"


async def test_create_with_vmstate(admin: Api) -> None:
    st = await _run(admin, "POST", "/nodes/pve1/qemu/100/snapshot", {"snapname": "with_ram", "vmstate": "1"})
    assert st["exitstatus"] == "OK"
    snaps = {s["name"]: s for s in await admin.data("GET", "/nodes/pve1/qemu/100/snapshot")}
    assert snaps["with_ram"]["vmstate"] == 1


async def test_create_failures(admin: Api) -> None:
    for name in ("current", "pending"):
        r = await admin.post("/nodes/pve1/qemu/100/snapshot", data={"snapname": name})
        assert (r.status_code, r.json()["message"]) == (500, f"unable to use snapshot name '{name}' (reserved name)\n")
    r = await admin.post("/nodes/pve1/lxc/107/snapshot", data={"snapname": "vzdump"})
    assert r.json()["message"] == "unable to use snapshot name 'vzdump' (reserved name)\n"
    st = await _run(admin, "POST", "/nodes/pve1/qemu/102/snapshot", {"snapname": "pre_upgrade"})
    assert st["exitstatus"] == "snapshot name 'pre_upgrade' already used"
    st = await _run(admin, "POST", "/nodes/pve1/qemu/9000/snapshot", {"snapname": "x1"})
    assert st["exitstatus"] == "you can't take a snapshot if it's a template"
    r = await admin.post("/nodes/pve1/qemu/4444/snapshot", data={"snapname": "x1"})
    assert r.json()["message"] == "Configuration file 'nodes/pve1/qemu-server/4444.conf' does not exist\n"


async def test_rollback_stops_the_vm(admin: Api) -> None:
    await admin.data("PUT", "/nodes/pve1/qemu/102/config", data={"cores": "16"})
    st = await _run(admin, "POST", "/nodes/pve1/qemu/102/snapshot/pre_upgrade/rollback")
    assert st["type"] == "qmrollback" and st["exitstatus"] == "OK"
    cur = await admin.data("GET", "/nodes/pve1/qemu/102/status/current")
    assert cur["status"] == "stopped"
    cfg = await admin.data("GET", "/nodes/pve1/qemu/102/config")
    assert cfg["cores"] == 4 and cfg["parent"] == "pre_upgrade"
    st = await _run(admin, "POST", "/nodes/pve1/qemu/102/snapshot/post_upgrade/rollback", {"start": "1"})
    assert (await admin.data("GET", "/nodes/pve1/qemu/102/status/current"))["status"] == "running"
    st = await _run(admin, "POST", "/nodes/pve1/qemu/102/snapshot/nope/rollback")
    assert st["exitstatus"] == "snapshot 'nope' does not exist"


async def test_delete_repoints_children(admin: Api) -> None:
    st = await _run(admin, "DELETE", "/nodes/pve1/qemu/102/snapshot/pre_upgrade")
    assert st["type"] == "qmdelsnapshot" and st["exitstatus"] == "OK"
    snaps = {s["name"]: s for s in await admin.data("GET", "/nodes/pve1/qemu/102/snapshot")}
    assert set(snaps) == {"post_upgrade", "current"} and "parent" not in snaps["post_upgrade"]
    st = await _run(admin, "DELETE", "/nodes/pve1/qemu/102/snapshot/post_upgrade")
    snaps = {s["name"]: s for s in await admin.data("GET", "/nodes/pve1/qemu/102/snapshot")}
    assert set(snaps) == {"current"} and "parent" not in snaps["current"]
    st = await _run(admin, "DELETE", "/nodes/pve1/qemu/102/snapshot/post_upgrade")
    assert st["exitstatus"] == "snapshot 'post_upgrade' does not exist"


async def test_snapshot_config_errors_and_description_update(admin: Api) -> None:
    r = await admin.get("/nodes/pve1/qemu/102/snapshot/nope/config")
    assert r.json()["message"] == "snapshot 'nope' does not exist\n"
    await admin.data("PUT", "/nodes/pve1/qemu/102/snapshot/pre_upgrade/config", data={"description": "renamed"})
    snaps = {s["name"]: s for s in await admin.data("GET", "/nodes/pve1/qemu/102/snapshot")}
    assert snaps["pre_upgrade"]["description"] == "renamed"
    cfg = await admin.data("GET", "/nodes/pve1/qemu/102/config", params={"snapshot": "pre_upgrade"})
    assert cfg["description"] == "renamed"

"""Listings as PVE builds them: task list limits, storage config and status, pools in cluster resources.

pve-manager ``PVE/API2/Tasks.pm`` ``node_tasks``; pve-storage ``API2/Storage/Config.pm`` ``index``,
``Storage/Plugin.pm`` ``parse_config`` (``@SHARED_STORAGE``), ``API2/Storage/Status.pm`` ``index``;
pve-manager ``PVE/API2/Cluster.pm`` ``resources``.
"""

from __future__ import annotations

import pytest

from pvemcp.sim import RunningSimulator

from .conftest import Api

pytestmark = pytest.mark.anyio


async def test_task_list_limit_zero_lists_nothing(shared_admin: Api) -> None:
    assert await shared_admin.data("GET", "/nodes/pve1/tasks", params={"limit": "0"}) == []
    assert len(await shared_admin.data("GET", "/nodes/pve1/tasks", params={"limit": "3"})) == 3


async def test_storage_config_marks_nfs_shared(shared_admin: Api) -> None:
    cfg = {s["storage"]: s for s in await shared_admin.data("GET", "/storage")}
    assert cfg["nfs-shared"]["shared"] == 1
    assert "shared" not in cfg["local"] and "shared" not in cfg["local-lvm"]


async def test_node_storage_target_keeps_storages_shared_with_the_target(shared_admin: Api) -> None:
    everything = await shared_admin.data("GET", "/nodes/pve1/storage")
    assert {s["storage"] for s in everything} == {"local", "local-lvm", "nfs-shared"}
    both = await shared_admin.data("GET", "/nodes/pve1/storage", params={"target": "pve2"})
    assert [s["storage"] for s in both] == ["nfs-shared"]
    same = await shared_admin.data("GET", "/nodes/pve1/storage", params={"target": "pve1"})
    assert len(same) == len(everything)  # the local node as target is no target


async def test_storage_outside_its_nodes_is_listed_disabled(sim: RunningSimulator, admin: Api) -> None:
    sim.state.storages["local-lvm"].nodes = ("pve2",)
    sim.state.touch()
    entry = {s["storage"]: s for s in await admin.data("GET", "/nodes/pve1/storage")}["local-lvm"]
    assert (entry["enabled"], entry["active"], entry["total"]) == (0, 0, 0)
    images = await admin.data("GET", "/nodes/pve1/storage", params={"content": "images"})
    assert [s["storage"] for s in images] == ["nfs-shared"]


async def test_pools_lead_cluster_resources_with_member_totals(shared_admin: Api) -> None:
    everything = await shared_admin.data("GET", "/cluster/resources")
    pools = [e for e in everything if e["type"] == "pool"]
    assert everything[: len(pools)] == pools and {p["pool"] for p in pools} == {"prod", "infra", "dev"}
    # 9.1's schema knows only vm/storage/node/sdn as 'type': pools come with the unfiltered list alone
    r = await shared_admin.get("/cluster/resources", type="pool")
    assert r.status_code == 400 and "type" in r.json()["errors"]
    prod = next(p for p in pools if p["pool"] == "prod")
    members = [e for e in everything if e.get("pool") == "prod" and e["type"] in ("qemu", "lxc") and e["uptime"]]
    assert prod["maxmem"] == sum(m["maxmem"] for m in members)
    assert prod["maxcpu"] == sum(m["maxcpu"] for m in members)
    assert prod["uptime"] == max(m["uptime"] for m in members)

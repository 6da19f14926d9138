"""Nodes, cluster views, storage and pools (notes §4.8–§4.10)."""

from __future__ import annotations

from urllib.parse import quote

import httpx2
import pytest

from pvemcp.sim import RunningSimulator, running_simulator

from .conftest import Api, ssl_context, token_header

pytestmark = pytest.mark.anyio


async def test_cluster_resources_types_and_order(shared_admin: Api) -> None:
    res = await shared_admin.data("GET", "/cluster/resources")
    types = [e["type"] for e in res]
    assert set(types) == {"qemu", "lxc", "node", "storage", "pool", "network"}
    vms = [e for e in res if e["type"] in ("qemu", "lxc")]
    assert [str(e["vmid"]) for e in vms] == sorted(str(e["vmid"]) for e in vms)
    assert types.index("node") > max(i for i, t in enumerate(types) if t in ("qemu", "lxc"))
    web = next(e for e in vms if e["vmid"] == 100)
    assert web["id"] == "qemu/100" and web["template"] == 0 and web["pool"] == "prod" and web["tags"] == "prod;web"
    assert web["memhost"] == web["mem"] > 0 and web["maxcpu"] == 2
    ct = next(e for e in vms if e["vmid"] == 103)
    assert "memhost" not in ct and ct["id"] == "lxc/103"
    tmpl = next(e for e in vms if e["vmid"] == 9000)
    assert tmpl["template"] == 1 and tmpl["status"] == "stopped"
    storage = next(e for e in res if e["id"] == "storage/pve2/local-lvm")
    assert storage["plugintype"] == "lvmthin" and storage["shared"] == 0 and storage["status"] == "available"
    nfs = [e for e in res if e["type"] == "storage" and e["storage"] == "nfs-shared"]
    assert len(nfs) == 3 and {e["shared"] for e in nfs} == {1}
    node = next(e for e in res if e["id"] == "node/pve1")
    assert node["cgroup-mode"] == 2 and node["level"] == "" and node["status"] == "online"


async def test_cluster_resources_type_filter(shared_admin: Api) -> None:
    for rtype, expected in (("vm", {"qemu", "lxc"}), ("node", {"node"}), ("storage", {"storage"})):
        res = await shared_admin.data("GET", "/cluster/resources", params={"type": rtype})
        assert {e["type"] for e in res} == expected
    assert await shared_admin.data("GET", "/cluster/resources", params={"type": "sdn"}) == []


async def test_nodes_and_status(shared_admin: Api) -> None:
    nodes = await shared_admin.data("GET", "/nodes")
    assert [n["node"] for n in nodes] == ["pve1", "pve2", "pve3"]
    pve1 = nodes[0]
    assert pve1["ssl_fingerprint"] == shared_admin.sim.fingerprint and pve1["type"] == "node"
    st = await shared_admin.data("GET", "/nodes/pve2/status")
    assert st["pveversion"].startswith("pve-manager/9.1.1/")
    assert all(isinstance(x, str) for x in st["loadavg"]) and st["cpuinfo"]["hvm"] == "1"
    assert st["boot-info"]["mode"] == "efi" and st["current-kernel"]["sysname"] == "Linux"
    assert st["memory"]["total"] == st["memory"]["used"] + st["memory"]["free"]
    cs = await shared_admin.data("GET", "/cluster/status")
    assert cs[0] == {"type": "cluster", "id": "cluster", "name": "pvemcp-sim", "nodes": 3, "version": 4, "quorate": 1}
    local = [e["name"] for e in cs[1:] if e["local"] == 1]
    assert local == ["pve1"]


async def test_standalone_node_has_no_cluster_entry() -> None:
    import httpx2

    from pvemcp.sim import running_simulator

    from .conftest import ssl_context, token_header

    async with (
        running_simulator(nodes=1, guests=3) as one,
        httpx2.AsyncClient(verify=ssl_context(one), headers=token_header(one.token_id, one.token_secret)) as c,
    ):
        cs = (await c.get(one.url + "/cluster/status")).json()["data"]
    assert [e["type"] for e in cs] == ["node"] and cs[0]["nodeid"] == 0


async def test_storage_views(shared_admin: Api) -> None:
    cfg = {s["storage"]: s for s in await shared_admin.data("GET", "/storage")}
    assert cfg["local"]["path"] == "/var/lib/vz" and cfg["local-lvm"]["thinpool"] == "data"
    assert cfg["nfs-shared"]["server"] == "10.10.10.50" and len(cfg["local"]["digest"]) == 40
    st = await shared_admin.data("GET", "/nodes/pve1/storage")
    assert {s["storage"] for s in st} == {"local", "local-lvm", "nfs-shared"}
    s0 = st[0]
    assert s0["used"] + s0["avail"] == s0["total"] and 0 < s0["used_fraction"] < 1 and s0["active"] == 1
    iso = await shared_admin.data("GET", "/nodes/pve1/storage", params={"content": "vztmpl"})
    assert {s["storage"] for s in iso} == {"local", "nfs-shared"}
    images = await shared_admin.data("GET", "/nodes/pve1/storage", params={"content": "images"})
    assert {s["storage"] for s in images} == {"local-lvm", "nfs-shared"}


async def test_storage_content(shared_admin: Api) -> None:
    local = await shared_admin.data("GET", "/nodes/pve1/storage/local/content")
    kinds = {c["content"]: c for c in local}
    assert kinds["iso"]["format"] == "iso" and kinds["iso"]["volid"].startswith("local:iso/")
    tmpl = [c for c in local if c["content"] == "vztmpl"]
    assert {c["format"] for c in tmpl} == {"tzst", "txz"}
    lvm = await shared_admin.data("GET", "/nodes/pve1/storage/local-lvm/content")
    disk = next(c for c in lvm if c["volid"] == "local-lvm:vm-100-disk-0")
    assert (
        disk["content"] == "images" and disk["format"] == "raw" and disk["vmid"] == 100 and disk["size"] == 32 * 1024**3
    )
    ct = await shared_admin.data("GET", "/nodes/pve1/storage/local-lvm/content", params={"vmid": 107})
    assert [c["content"] for c in ct] == ["rootdir"]
    assert all(c["vmid"] != 101 for c in lvm)  # 101 lives on pve2's local-lvm
    only_iso = await shared_admin.data("GET", "/nodes/pve2/storage/nfs-shared/content", params={"content": "iso"})
    assert len(only_iso) == 3
    r = await shared_admin.get("/nodes/pve1/storage/nope/content")
    assert r.json()["message"] == "storage 'nope' does not exist\n"


async def test_delete_volume(sim: RunningSimulator, admin: Api) -> None:
    backups = await admin.data("GET", "/nodes/pve1/storage/nfs-shared/content", params={"content": "backup"})
    volid = backups[0]["volid"]
    upid = await admin.data("DELETE", f"/nodes/pve1/storage/nfs-shared/content/{quote(volid, safe='')}")
    assert ":imgdel:" in upid
    await admin.wait_task(upid)
    after = await admin.data("GET", "/nodes/pve1/storage/nfs-shared/content", params={"content": "backup"})
    assert volid not in {c["volid"] for c in after}
    r = await admin.delete("/nodes/pve1/storage/local-lvm/content/local-lvm%3Avm-100-disk-0")
    assert r.status_code == 500 and "still in use" in r.json()["message"]


async def test_pools(shared_admin: Api) -> None:
    pools = await shared_admin.data("GET", "/pools")
    assert [p["poolid"] for p in pools] == ["dev", "infra", "prod"]
    prod = await shared_admin.data("GET", "/pools/prod")
    assert sorted(m["vmid"] for m in prod["members"]) == [100, 101, 102] and prod["comment"]
    one = await shared_admin.data("GET", "/pools", params={"poolid": "infra", "type": "lxc"})
    assert {m["type"] for m in one[0]["members"]} == {"lxc"}
    r = await shared_admin.get("/pools/nope")
    assert r.json()["message"] == "pool 'nope' does not exist\n"


async def test_version_and_domains(shared_admin: Api, anon: Api) -> None:
    v = await shared_admin.data("GET", "/version")
    assert v["version"] == "9.1.1" and len(v["repoid"]) == 16
    realms = await anon.data("GET", "/access/domains")
    assert {r["realm"] for r in realms} == {"pam", "pve"}


async def test_large_cluster() -> None:
    async with running_simulator(guests=10000, nodes=5) as big:
        headers = token_header(big.token_id, big.token_secret)
        async with httpx2.AsyncClient(verify=ssl_context(big), headers=headers, timeout=30) as c:
            res = (await c.get(big.url + "/cluster/resources", params={"type": "vm"})).json()["data"]
            assert len(res) == 10000 and len({e["vmid"] for e in res}) == 10000
            assert {e["node"] for e in res} == {f"pve{i}" for i in range(1, 6)}
            nxt = (await c.get(big.url + "/cluster/nextid")).json()["data"]
            assert nxt == "111"

"""Guest resolution: cached briefly, invalidated by our own mutations, clear error for unknown vmids."""

from __future__ import annotations

from typing import Any

import anyio
import httpx2
import pytest

from pvemcp.core.pve.client import PveClient
from pvemcp.core.pve.config import ClientConfig
from pvemcp.core.pve.errors import PveError
from pvemcp.core.pve.resolve import check_vmid, guest_from_resource

CFG = ClientConfig(url="https://pve.test", token_id="root@pam!mcp", token_secret="s3cr3t-token-value")
RESOURCES: list[dict[str, Any]] = [
    {"id": "qemu/100", "type": "qemu", "vmid": 100, "node": "pve1", "name": "web", "status": "running", "template": 0,
     "tags": "prod;web", "pool": "apps"},
    {"id": "lxc/101", "type": "lxc", "vmid": 101, "node": "pve2", "name": "dns", "status": "stopped", "template": 0},
    {"id": "qemu/9000", "type": "qemu", "vmid": 9000, "node": "pve1", "name": "tmpl", "status": "stopped",
     "template": 1, "lock": "backup"},
    {"id": "node/pve1", "type": "node", "node": "pve1", "status": "online"},
]  # fmt: skip


class Cluster:
    def __init__(self) -> None:
        self.resources = [dict(r) for r in RESOURCES]
        self.fetches = 0

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/cluster/resources"):
            assert request.url.params.get("type") == "vm"
            self.fetches += 1
            return httpx2.Response(200, json={"data": self.resources})
        return httpx2.Response(200, json={"data": None})


def test_guest_from_resource() -> None:
    ref = guest_from_resource(RESOURCES[0])
    assert ref is not None
    assert (ref.vmid, ref.node, ref.type, ref.name, ref.status) == (100, "pve1", "qemu", "web", "running")
    assert ref.tags == ("prod", "web") and ref.pool == "apps" and not ref.template
    tmpl = guest_from_resource(RESOURCES[2])
    assert tmpl is not None and tmpl.template and tmpl.lock == "backup"
    assert guest_from_resource(RESOURCES[3]) is None
    assert ref.to_dict()["tags"] == ["prod", "web"]


@pytest.mark.parametrize("bad", [99, 0, -1, "abc", "1e3", True, 1_000_000_000, None])
def test_check_vmid_refuses(bad: object) -> None:
    with pytest.raises(PveError) as info:
        check_vmid(bad)
    assert info.value.kind == "params" and "vmid" in info.value.errors


@pytest.mark.anyio
async def test_cached_and_single_flight() -> None:
    cluster = Cluster()
    async with PveClient(CFG, transport=httpx2.MockTransport(cluster.handler)) as pve:
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(pve.resolve_guest, 100)
        ref = await pve.resolve_guest("101")
        assert ref.type == "lxc" and ref.node == "pve2"
        assert [g.vmid for g in await pve.list_guests()] == [100, 101, 9000]
    assert cluster.fetches == 1


@pytest.mark.anyio
async def test_ttl_expiry_and_mutation_invalidate() -> None:
    cluster = Cluster()
    now = {"t": 0.0}
    async with PveClient(CFG, transport=httpx2.MockTransport(cluster.handler), clock=lambda: now["t"]) as pve:
        await pve.resolve_guest(100)
        now["t"] += 4.0
        await pve.resolve_guest(100)
        assert cluster.fetches == 1
        now["t"] += 2.0  # past the 5 s TTL
        await pve.resolve_guest(100)
        assert cluster.fetches == 2
        # our own migration moves the guest: the next lookup must see it
        cluster.resources[0]["node"] = "pve3"
        await pve.post("/nodes/{node}/qemu/{vmid}/migrate", path={"node": "pve1", "vmid": 100}, data={"target": "pve3"})
        assert (await pve.resolve_guest(100)).node == "pve3"
        assert cluster.fetches == 3


@pytest.mark.anyio
async def test_unknown_vmid_rechecks_once_then_clear_error() -> None:
    cluster = Cluster()
    async with PveClient(CFG, transport=httpx2.MockTransport(cluster.handler)) as pve:
        await pve.resolve_guest(100)
        cluster.resources.append({"type": "qemu", "vmid": 150, "node": "pve1", "name": "new", "status": "stopped"})
        assert (await pve.resolve_guest(150)).name == "new"  # created by someone else: cache miss → refetch
        assert cluster.fetches == 2
        with pytest.raises(PveError) as info:
            await pve.resolve_guest(4242)
    assert cluster.fetches == 3
    assert info.value.kind == "not_found_or_state"
    assert info.value.message == "no guest with vmid 4242 in the cluster"


@pytest.mark.anyio
async def test_a_failed_fetch_is_shared_by_the_calls_that_waited_for_it() -> None:
    """Twenty lookups during one failing fetch send one request and all get its error; the next call retries."""
    cluster = Cluster()
    broken = {"on": True}

    def handler(request: httpx2.Request) -> httpx2.Response:
        if broken["on"] and request.url.path.endswith("/cluster/resources"):
            cluster.fetches += 1
            return httpx2.Response(403, json={"data": None})  # a 403 is not retried
        return cluster.handler(request)

    errors: list[PveError] = []

    async def lookup() -> None:
        try:
            await pve.resolve_guest(100)
        except PveError as exc:
            errors.append(exc)

    async with PveClient(CFG, transport=httpx2.MockTransport(handler)) as pve:
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(lookup)
        assert len(errors) == 20 and cluster.fetches == 1
        broken["on"] = False
        assert (await pve.resolve_guest(100)).node == "pve1"
    assert cluster.fetches == 2


@pytest.mark.anyio
async def test_guest_entries_are_the_raw_guests_sorted_by_vmid() -> None:
    cluster = Cluster()
    cluster.resources.insert(0, cluster.resources.pop(1))  # 101 before 100, as an unsorted answer may be
    async with PveClient(CFG, transport=httpx2.MockTransport(cluster.handler)) as pve:
        entries = await pve.guest_entries()
        assert [e["vmid"] for e in entries] == [100, 101, 9000]  # the node entry is not a guest
        assert entries[0]["tags"] == "prod;web"  # raw fields, as Proxmox sent them
        await pve.resolve_guest(101)
    assert cluster.fetches == 1

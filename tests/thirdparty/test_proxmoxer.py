"""A third-party client against the simulator: proxmoxer drives the seed guide's operations unmodified.

proxmoxer (PyPI) builds its URLs, envelopes, form bodies and ticket/CSRF handling its own way — a routing
or envelope regression in the simulator (such as a volume id with ``/`` in ``content(volid).delete()``)
fails here the way it would fail a user. The client is synchronous, so each scenario runs in a worker
thread while the simulator keeps serving on the test's event loop; tasks are awaited with proxmoxer's own
``Tasks.blocking_status`` (the simulator runs tasks 200x faster than real time).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest
from proxmoxer import ProxmoxAPI, ResourceException
from proxmoxer.tools import Tasks

from pvemcp.sim import RunningSimulator
from simenv import DEFAULT_SIM, SimOptions

pytestmark = pytest.mark.anyio

TMPL = "local:vztmpl/debian-12-standard_12.12-1_amd64.tar.zst"


@pytest.fixture
def sim_options() -> SimOptions:
    return {**DEFAULT_SIM, "task_speed": 200.0}


def _client(sim: RunningSimulator, *, token: bool) -> Any:
    where = urlsplit(sim.url)
    common: dict[str, Any] = {"port": where.port, "verify_ssl": sim.ca_file, "timeout": 20}
    if token:
        user, name = sim.token_id.split("!", 1)
        return ProxmoxAPI(where.hostname, user=user, token_name=name, token_value=sim.token_secret, **common)
    return ProxmoxAPI(where.hostname, user=sim.user, password=sim.password, **common)


def _wait(px: Any, upid: str) -> dict[str, Any]:
    status = Tasks.blocking_status(px, upid, timeout=60, polling_interval=0.02)
    assert status is not None, f"task {upid} did not finish"
    return dict(status)


def _ok(px: Any, upid: str) -> None:
    status = _wait(px, upid)
    assert status["exitstatus"] == "OK", (status, Tasks.decode_log(px.nodes(status["node"]).tasks(upid).log.get()))


async def _run(scenario: Callable[[Any], None], sim: RunningSimulator, *, token: bool = False) -> None:
    await anyio.to_thread.run_sync(lambda: scenario(_client(sim, token=token)))


async def test_ticket_login_and_monitoring(sim: RunningSimulator) -> None:
    def scenario(px: Any) -> None:
        assert px.version.get()["release"] == "9.1"
        assert {n["node"] for n in px.nodes.get()} == {"pve1", "pve2", "pve3"}
        assert px.nodes("pve1").status.get()["pveversion"].startswith("pve-manager/9.1")
        assert any(item["type"] == "cluster" for item in px.cluster.status.get())
        assert isinstance(px.nodes("pve1").tasks.get(limit=5), list)

    await _run(scenario, sim)


async def test_vm_lifecycle(sim: RunningSimulator) -> None:
    def scenario(px: Any) -> None:
        node = px.nodes("pve1")
        assert 100 in [vm["vmid"] for vm in node.qemu.get()]
        _ok(px, node.qemu.post(vmid=500, name="px-vm", memory="1024", scsi0="local-lvm:4", net0="virtio,bridge=vmbr0"))
        vm = node.qemu(500)
        assert vm.status.current.get()["status"] == "stopped"
        _ok(px, vm.status.start.post())
        assert vm.status.current.get()["status"] == "running"
        vm.config.put(cores=2, description="driven by proxmoxer")
        assert vm.config.get(current=1)["cores"] == 1  # cold change of a running VM: pending
        assert vm.config.get()["cores"] == 2
        _ok(px, vm.status.reboot.post())
        assert vm.config.get(current=1)["cores"] == 2
        _ok(px, vm.status.shutdown.post())
        _ok(px, vm.status.start.post())
        _ok(px, vm.status.stop.post())
        _ok(px, vm.clone.post(newid=501, name="px-clone"))
        assert node.qemu(501).config.get()["name"] == "px-clone"
        _ok(px, node.qemu(501).delete())
        _ok(px, vm.delete(purge=1))
        assert 500 not in [v["vmid"] for v in node.qemu.get()]

    await _run(scenario, sim, token=True)


async def test_container_lifecycle(sim: RunningSimulator) -> None:
    def scenario(px: Any) -> None:
        node = px.nodes("pve2")
        assert 104 in [ct["vmid"] for ct in node.lxc.get()]
        upid = node.lxc.post(vmid=600, ostemplate=TMPL, hostname="px-ct", storage="local-lvm", rootfs="4")
        _ok(px, upid)
        ct = node.lxc(600)
        assert ct.config.get()["rootfs"] == "local-lvm:vm-600-disk-0,size=4G"
        _ok(px, ct.status.start.post())
        assert ct.status.current.get()["status"] == "running"
        _ok(px, ct.status.stop.post())
        assert ct.status.current.get()["status"] == "stopped"

    await _run(scenario, sim)


async def test_storage_and_volume_ids_with_slashes(sim: RunningSimulator) -> None:
    def scenario(px: Any) -> None:
        assert {s["storage"] for s in px.storage.get()} == {"local", "local-lvm", "nfs-shared"}
        assert {s["storage"] for s in px.nodes("pve1").storage.get()} >= {"local", "nfs-shared"}
        local = px.nodes("pve1").storage("local")
        volids = [c["volid"] for c in local.content.get(content="vztmpl")]
        assert TMPL in volids
        assert local.content(TMPL).get()["path"] == "/var/lib/vz/template/cache/" + TMPL.split("/", 1)[1]
        _ok(px, local.content(TMPL).delete())  # proxmoxer sends the '/' of the volid as a path separator
        assert TMPL not in [c["volid"] for c in local.content.get(content="vztmpl")]
        with pytest.raises(ResourceException) as info:
            local.content("local:vztmpl/nope.tar.zst").get()
        assert info.value.status_code == 500

    await _run(scenario, sim)


async def test_snapshots_and_backups(sim: RunningSimulator) -> None:
    def scenario(px: Any) -> None:
        vm = px.nodes("pve3").qemu(105)
        assert "clean_install" in [s["name"] for s in vm.snapshot.get()]
        _ok(px, vm.snapshot.post(snapname="px_snap", description="proxmoxer"))
        vm.config.put(cores=8)
        _ok(px, vm.snapshot("px_snap").rollback.post())
        assert vm.config.get()["cores"] == 2
        jobs = px.cluster.backup.get()
        assert jobs and all("next-run" in job for job in jobs)
        px.cluster.backup.post(id="px-job", schedule="sun 01:00", vmid="105", storage="nfs-shared")
        assert px.cluster.backup("px-job").get()["schedule"] == "sun 01:00"
        upid = px.nodes("pve3").vzdump.post(vmid=105, storage="nfs-shared", compress="zstd")
        _ok(px, upid)
        backups = px.nodes("pve3").storage("nfs-shared").content.get(content="backup", vmid=105)
        newest = max(backups, key=lambda b: b["ctime"])
        _ok(px, px.nodes("pve3").storage("nfs-shared").content(newest["volid"]).delete())

    await _run(scenario, sim)


async def test_errors_reach_the_client_in_pve_words(sim: RunningSimulator) -> None:
    def scenario(px: Any) -> None:
        with pytest.raises(ResourceException) as info:
            px.nodes("pve1").qemu(100).config.put(delete="nosuchkey")
        assert info.value.status_code == 400 and info.value.errors == {"delete": "unknown option 'nosuchkey'"}
        with pytest.raises(ResourceException) as info:
            px.nodes("pve1").qemu(100).clone.post(newid=700, target="pve2")
        assert "can't clone VM to node 'pve2' (VM uses local storage)" in str(info.value)

    await _run(scenario, sim, token=True)

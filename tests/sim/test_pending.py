"""Pending config: what a running guest takes at once, what waits for its next start, and how it shows.

Read in qemu-server ``API2/Qemu.pm`` (``$update_vm_api``, ``vm_config``, ``vm_pending``) and ``QemuServer.pm``
(``vmconfig_hotplug_pending``, ``vmconfig_apply_pending``, ``vm_start_nolock``); pve-container
``LXC/Config.pm`` (``update_pct_config``, ``vmconfig_hotplug_pending``) and ``LXC.pm`` (``vm_start``);
pve-guest-common ``AbstractConfig.pm`` (``load_current_config``, ``cleanup_pending``) and ``GuestHelpers.pm``
(``config_with_pending_array``).
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Api

pytestmark = pytest.mark.anyio

VM = "/nodes/pve1/qemu/100"  # running, hotplug unset (network,disk,usb)
CT = "/nodes/pve1/lxc/107"  # running


def _by_key(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["key"]: item for item in items}


async def _task(api: Api, method: str, path: str, data: dict[str, str] | None = None) -> dict[str, Any]:
    upid = await api.data(method, path, data=data)
    return await api.wait_task(upid)


async def test_cold_change_of_a_running_vm_stays_pending_until_reboot(admin: Api) -> None:
    await admin.data("PUT", f"{VM}/config", data={"cores": "8", "name": "web-01-renamed"})
    cfg = await admin.data("GET", f"{VM}/config")
    current = await admin.data("GET", f"{VM}/config", params={"current": "1"})
    assert cfg["cores"] == 8 and current["cores"] == 2  # cores is not hot-pluggable without the cpu feature
    assert cfg["name"] == current["name"] == "web-01-renamed"  # name is a fast-plug option
    pend = _by_key(await admin.data("GET", f"{VM}/pending"))
    assert pend["cores"] == {"key": "cores", "value": "2", "pending": "8"}
    assert "pending" not in pend["name"] and pend["name"]["value"] == "web-01-renamed"
    assert cfg["digest"] == current["digest"]  # one file, with its [PENDING] section

    st = await _task(admin, "POST", f"{VM}/status/reboot")
    assert st["exitstatus"] == "OK"
    current = await admin.data("GET", f"{VM}/config", params={"current": "1"})
    assert current["cores"] == 8
    assert all("pending" not in i and "delete" not in i for i in await admin.data("GET", f"{VM}/pending"))


async def test_stop_and_start_applies_pending_and_deletions(admin: Api) -> None:
    await admin.data("PUT", f"{VM}/config", data={"memory": "8192", "delete": "ide2"})
    pend = _by_key(await admin.data("GET", f"{VM}/pending"))
    assert pend["memory"]["pending"] == "8192" and pend["ide2"]["delete"] == 1  # IDE never hot-unplugs
    assert "ide2" not in await admin.data("GET", f"{VM}/config")  # the pending view drops it already
    assert "ide2" in await admin.data("GET", f"{VM}/config", params={"current": "1"})
    await _task(admin, "POST", f"{VM}/status/stop")
    assert "ide2" in await admin.data("GET", f"{VM}/config", params={"current": "1"})  # stop alone applies nothing
    await _task(admin, "POST", f"{VM}/status/start")
    current = await admin.data("GET", f"{VM}/config", params={"current": "1"})
    assert current["memory"] == "8192" and "ide2" not in current


async def test_revert_drops_a_pending_change(admin: Api) -> None:
    await admin.data("PUT", f"{VM}/config", data={"sockets": "2"})
    await admin.data("PUT", f"{VM}/config", data={"revert": "sockets"})
    assert (await admin.data("GET", f"{VM}/config"))["sockets"] == 1
    assert "pending" not in _by_key(await admin.data("GET", f"{VM}/pending"))["sockets"]


async def test_stopped_vm_takes_changes_at_once(admin: Api) -> None:
    path = "/nodes/pve3/qemu/105"
    await admin.data("PUT", f"{path}/config", data={"cores": "6"})
    assert (await admin.data("GET", f"{path}/config", params={"current": "1"}))["cores"] == 6


async def test_snapshot_and_current_together_are_refused(admin: Api) -> None:
    r = await admin.get("/nodes/pve1/qemu/102/config", snapshot="pre_upgrade", current="1")
    assert r.status_code == 400
    assert r.json()["errors"]["current"] == "cannot use 'snapshot' parameter with 'current'"


async def test_container_cold_change_waits_and_hot_change_applies(admin: Api) -> None:
    await admin.data("PUT", f"{CT}/config", data={"swap": "1024", "timezone": "Europe/Vienna"})
    current = await admin.data("GET", f"{CT}/config", params={"current": "1"})
    assert current["swap"] == 1024 and "timezone" not in current
    pend = _by_key(await admin.data("GET", f"{CT}/pending"))
    assert pend["timezone"] == {"key": "timezone", "pending": "Europe/Vienna"}
    await _task(admin, "POST", f"{CT}/status/stop")
    await _task(admin, "POST", f"{CT}/status/start")
    assert (await admin.data("GET", f"{CT}/config", params={"current": "1"}))["timezone"] == "Europe/Vienna"


async def test_update_checks(admin: Api) -> None:
    r = await admin.put(f"{VM}/config", data={"digest": "0" * 40})
    assert (r.status_code, r.json()["message"]) == (500, "no options specified\n")
    r = await admin.put(f"{VM}/config", data={"delete": "nosuchkey"})
    assert r.status_code == 400 and r.json()["errors"] == {"delete": "unknown option 'nosuchkey'"}
    r = await admin.put(f"{VM}/config", data={"revert": "bogus"})
    assert r.status_code == 400 and r.json()["errors"] == {"revert": "unknown option 'bogus'"}
    r = await admin.put(f"{VM}/config", data={"boot": "order=scsi0;virtio7"})
    assert (r.status_code, r.json()["message"]) == (500, "invalid bootorder: device 'virtio7' does not exist'\n")
    r = await admin.put(f"{VM}/config", data={"boot": "order=scsi0;ide2", "delete": "ide2"})
    assert r.json()["message"] == "invalid bootorder: device 'ide2' does not exist'\n"
    r = await admin.put(f"{VM}/config", data={"balloon": "99999"})
    assert r.json()["message"] == "balloon value too large (must be smaller than assigned memory)\n"
    # a key that is not set is skipped (PVE warns), the rest of the update goes through
    r = await admin.put(f"{VM}/config", data={"delete": "hookscript", "description": "x"})
    assert r.status_code == 200
    r = await admin.post(f"{VM}/config", data={"boot": "order=net5"})
    assert r.status_code == 200  # the async variant fails in its task
    st = await admin.wait_task(r.json()["data"])
    assert st["exitstatus"] == "invalid bootorder: device 'net5' does not exist'"


async def test_container_update_checks(admin: Api) -> None:
    r = await admin.put(f"{CT}/config", data={"unprivileged": "0"})
    assert (r.status_code, r.json()["message"]) == (500, "unable to modify read-only option: 'unprivileged'\n")
    r = await admin.put(f"{CT}/config", data={"delete": "memory"})
    assert r.json()["message"] == "unable to delete required option 'memory'\n"
    r = await admin.put(f"{CT}/config", data={"delete": "nope"})
    assert r.status_code == 400 and r.json()["errors"] == {"delete": "unknown option 'nope'"}
    r = await admin.put(f"{CT}/config", data={"digest": "0" * 40, "description": "x"})
    assert r.json()["message"] == "detected modified configuration - file changed by other user? Try again.\n"
    r = await admin.put(f"{CT}/config", data={"mp0": "local:8,mp=/data"})
    assert r.json()["message"] == "storage 'local' does not allow content type 'rootdir' (Container)\n"


async def test_deleting_the_saved_state_drops_the_suspended_lock(admin: Api) -> None:
    st = await _task(admin, "POST", f"{VM}/status/suspend", {"todisk": "1"})
    assert st["exitstatus"] == "OK"
    cfg = await admin.data("GET", f"{VM}/config")
    assert cfg["lock"] == "suspended" and "vmstate" in cfg
    r = await admin.put(f"{VM}/config", data={"cores": "3"})
    assert r.json()["message"] == "VM is locked (suspended)\n"
    await admin.data("PUT", f"{VM}/config", data={"delete": "vmstate"})
    cfg = await admin.data("GET", f"{VM}/config")
    assert "lock" not in cfg and "vmstate" not in cfg


async def test_agent_switch_waits_but_fstrim_option_applies(admin: Api) -> None:
    # qemu-server vmconfig_update_agent: only fstrim_cloned_disks is hot-pluggable
    await admin.data("PUT", f"{VM}/config", data={"agent": "1,fstrim_cloned_disks=1"})
    assert (await admin.data("GET", f"{VM}/config", params={"current": "1"}))["agent"] == "1,fstrim_cloned_disks=1"
    await admin.data("PUT", f"{VM}/config", data={"agent": "0"})
    assert (await admin.data("GET", f"{VM}/config", params={"current": "1"}))["agent"] == "1,fstrim_cloned_disks=1"
    assert _by_key(await admin.data("GET", f"{VM}/pending"))["agent"]["pending"] == "0"

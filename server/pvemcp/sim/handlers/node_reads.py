"""Node host reads: disks (list, SMART, LVM, thin pools, ZFS), systemd services, pending updates, DNS, time.

Data comes from :mod:`pvemcp.sim.hostinfo`; the answers follow the real handlers:
pve-storage ``PVE/API2/Disks.pm`` (``list``, ``smart``), ``PVE/API2/Disks/{LVM,LVMThin,ZFS}.pm`` over
``PVE/Diskmanage.pm`` (``get_disks``, ``get_smart_data``, ``verify_blockdev_path``); pve-manager
``PVE/API2/Services.pm`` (``index``, ``service_state``), ``PVE/API2/APT.pm`` (``list_updates``) and
``PVE/API2/Nodes.pm`` (``dns``, ``time``).
"""

from __future__ import annotations

from typing import Any

from pvemcp.sim.errors import fail
from pvemcp.sim.handlers.common import node_of
from pvemcp.sim.hostinfo import THIN_META_BYTES, Disk, NodeHost
from pvemcp.sim.routing import Call, route
from pvemcp.sim.state import Storage


def _host(call: Call) -> NodeHost:
    node = node_of(call)
    return call.sim.hosts[node.name]


# ---- disks -------------------------------------------------------------------------------------------------


def _disk_entry(disk: Disk, skipsmart: bool, include_partitions: bool) -> dict[str, Any]:
    """``get_disks``' hash for a whole disk: SMART health and wear unless ``skipsmart``."""
    smart = not skipsmart
    entry: dict[str, Any] = {
        "vendor": disk.vendor,
        "model": disk.model,
        "size": disk.size,
        "serial": disk.serial,
        "gpt": disk.gpt,
        "rpm": disk.rpm,
        "type": disk.kind,
        "wwn": disk.wwn,
        "health": "PASSED" if smart else "UNKNOWN",
        "devpath": disk.devpath,
        "wearout": disk.wearout if smart and disk.wearout is not None else "N/A",
        "by_id_link": disk.by_id_link,
        "osdid": -1,
        "osdid-list": None,
    }
    # without partitions listed, a disk shows the usage of its first partition; with them, 'partitions'
    if disk.partitions:
        entry["used"] = "partitions" if include_partitions else disk.partitions[0].used
    return entry


@route("GET", "/nodes/{node}/disks/list")
def disks_list(call: Call) -> list[dict[str, Any]]:
    host = _host(call)
    include_partitions = call.flag("include-partitions")
    entries: dict[str, dict[str, Any]] = {}
    for disk in host.disks:
        entries[disk.name] = _disk_entry(disk, call.flag("skipsmart"), include_partitions)
        if include_partitions:
            for part in disk.partitions:
                entries[part.devpath.removeprefix("/dev/")] = {
                    "devpath": part.devpath,
                    "parent": part.parent,
                    "gpt": disk.gpt,
                    "type": "partition",
                    "size": part.size,
                    "used": part.used,
                    "osdid": -1,
                    "osdid-list": None,
                }
    wanted = call.text("type") or ""
    out: list[dict[str, Any]] = []
    for name in sorted(entries):
        entry = entries[name]
        used = entry.get("used")
        if wanted == "unused" and used:
            continue
        if wanted == "journal_disks" and used and not ((used == "partitions" and entry["gpt"]) or used == "LVM"):
            continue
        out.append(entry)
    return out


def _smart(disk: Disk) -> dict[str, Any]:
    """``get_smart_data``: NVMe disks give smartctl's text section, ATA disks the attribute table."""
    if disk.kind == "nvme":
        used_pct = 100 - (disk.wearout or 100)
        written_units = disk.power_on_hours * 9_100  # ~4.6 GB an hour in 512,000-byte data units
        # the lines after the health verdict (which get_smart_data takes out), blank line included
        lines = [
            "",
            "SMART/Health Information (NVMe Log 0x02)",
            "Critical Warning:                   0x00",
            "Temperature:                        38 Celsius",
            "Available Spare:                    100%",
            "Available Spare Threshold:          10%",
            f"Percentage Used:                    {used_pct}%",
            f"Data Units Read:                    {written_units * 3:,}",
            f"Data Units Written:                 {written_units:,}",
            f"Power Cycles:                       {disk.power_on_hours // 700 + 3}",
            f"Power On Hours:                     {disk.power_on_hours:,}",
            "Unsafe Shutdowns:                   12",
            "Media and Data Integrity Errors:    0",
            "Error Information Log Entries:      0",
            "",
        ]
        return {"health": "PASSED", "type": "text", "text": "\n".join(lines) + "\n", "wearout": disk.wearout}
    rows = (
        ("1", "Raw_Read_Error_Rate", "POSR--", 83, 64, "044", "-", "214837456"),
        ("5", "Reallocated_Sector_Ct", "PO--CK", 100, 100, "010", "-", "0"),
        ("9", "Power_On_Hours", "-O--CK", 80, 80, "000", "-", str(disk.power_on_hours)),
        ("194", "Temperature_Celsius", "-O---K", 34, 46, "000", "-", "34 (0 18 0 0 0)"),
        ("197", "Current_Pending_Sector", "-O--C-", 100, 100, "000", "-", "0"),
        ("199", "UDMA_CRC_Error_Count", "-OSRCK", 200, 200, "000", "-", "0"),
    )
    attributes = [
        {
            "name": name,
            "flags": flags,
            "value": value,
            "normalized": value,
            "worst": worst,
            "threshold": int(thresh),
            "fail": failed,
            "raw": raw,
            "id": f"{ident:>3}",
        }
        for ident, name, flags, value, worst, thresh, failed, raw in rows
    ]
    return {"health": "PASSED", "type": "ata", "attributes": attributes}


@route("GET", "/nodes/{node}/disks/smart")
def disks_smart(call: Call) -> dict[str, Any]:
    host = _host(call)
    disk = host.find_device(call.req("disk"))
    if disk is None:  # Diskmanage::assert_blockdev, called by verify_blockdev_path
        raise fail("not a valid block device")
    if call.flag("healthonly"):
        return {"health": "PASSED"}
    return _smart(disk)


def _thin_storage(call: Call, node: str) -> Storage | None:
    """The lvmthin storage backed by the node's ``pve/data`` pool (``local-lvm``)."""
    for storage in call.sim.state.storages.values():
        if (
            storage.type == "lvmthin"
            and storage.options.get("vgname") == "pve"
            and storage.options.get("thinpool") == "data"
            and storage.available_on(node)
        ):
            return storage
    return None


def _thinpool(call: Call, host: NodeHost) -> tuple[int, int]:
    """(lv_size, used) of the ``data`` thin pool: the size and use ``local-lvm`` reports on this node."""
    storage = _thin_storage(call, host.node)
    if storage is None:
        return 0, 0
    return storage.total, min(storage.total, call.sim.state.storage_used(storage, host.node))


@route("GET", "/nodes/{node}/disks/lvm")
def disks_lvm(call: Call) -> dict[str, Any]:
    host = _host(call)
    size = host.vg_size()
    pool_size, _ = _thinpool(call, host)
    free = max(0, size - host.lvs_size(pool_size))
    vg = {
        "name": "pve",
        "size": size,
        "free": free,
        "lvcount": 3 if pool_size else 2,
        "leaf": 0,
        "children": [{"name": host.pv.devpath, "size": size, "free": free, "leaf": 1}],
    }
    return {"leaf": 0, "children": [vg]}


@route("GET", "/nodes/{node}/disks/lvmthin")
def disks_lvmthin(call: Call) -> list[dict[str, Any]]:
    host = _host(call)
    pool_size, used = _thinpool(call, host)
    if not pool_size:
        return []
    # lvm_list_volumes derives metadata use from metadata_percent; thin metadata grows with mapped data
    meta_used = int(THIN_META_BYTES * (0.011 + 0.09 * used / pool_size))
    return [
        {
            "lv": "data",
            "vg": "pve",
            "lv_size": pool_size,
            "used": used,
            "metadata_size": THIN_META_BYTES,
            "metadata_used": meta_used,
            "lv_state": "a",
            "lv_type": "t",
            "ctime": host.installed,
        }
    ]


@route("GET", "/nodes/{node}/disks/zfs")
def disks_zfs(call: Call) -> list[dict[str, Any]]:
    _host(call)
    return []  # ext4/LVM installs: `zpool list` has no pools


@route("GET", "/nodes/{node}/disks/zfs/{name}")
def disks_zfs_detail(call: Call) -> dict[str, Any]:
    _host(call)
    # Disks/ZFS.pm 'detail' runs `zpool status -P <name>` via run_command, which dies with its exit code
    raise fail(f"command '/sbin/zpool status -P {call.req('name')}' failed: exit code 1")


# ---- services, updates, resolver, clock -------------------------------------------------------------------


def _service_entry(host: NodeHost, service: str) -> dict[str, Any]:
    state = host.services[service]
    return {
        "service": service,
        "name": service,
        "desc": state.desc,
        "state": state.sub,
        "unit-state": state.unit,
        "active-state": state.active,
    }


@route("GET", "/nodes/{node}/services")
def services(call: Call) -> list[dict[str, Any]]:
    host = _host(call)
    return [_service_entry(host, name) for name in sorted(host.services)]


@route("GET", "/nodes/{node}/services/{service}/state")
def service_state(call: Call) -> dict[str, Any]:
    host = _host(call)
    return _service_entry(host, call.req("service"))  # the schema's enum already rejected unknown names


@route("GET", "/nodes/{node}/apt/update")
def apt_updates(call: Call) -> list[dict[str, Any]]:
    host = _host(call)
    return [u.entry() for u in host.updates]


@route("GET", "/nodes/{node}/dns")
def dns(call: Call) -> dict[str, Any]:
    host = _host(call)
    out: dict[str, Any] = {"search": host.search_domain}
    for i, server in enumerate(host.nameservers[:3], start=1):
        out[f"dns{i}"] = server
    return out


@route("GET", "/nodes/{node}/time")
def node_time(call: Call) -> dict[str, Any]:
    host = _host(call)
    now = int(call.sim.state.clock.now())
    return {"timezone": host.timezone, "time": now, "localtime": now}  # UTC: local time is UTC time

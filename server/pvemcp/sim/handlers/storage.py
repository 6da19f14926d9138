"""Storage configuration, per-node storage status and storage contents (notes §4.10)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pvemcp.sim.errors import fail, param_error
from pvemcp.sim.handlers.common import node_of
from pvemcp.sim.routing import Call, route
from pvemcp.sim.state import ClusterState, Storage, Volume
from pvemcp.sim.tasks import Task, TaskContext, Worker

# pve-storage PVE/Storage/Plugin.pm @SHARED_STORAGE
SHARED_STORAGE_TYPES = frozenset({"iscsi", "nfs", "cifs", "rbd", "cephfs", "iscsidirect", "zfs", "drbd", "pbs"})


def _storage_cfg(storage: Storage, digest: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "storage": storage.storage,
        "type": storage.type,
        "content": ",".join(storage.content),
        "digest": digest,
    }
    # pve-storage Plugin.pm parse_config sets 'shared' for the @SHARED_STORAGE types; others only when configured
    if storage.shared or storage.type in SHARED_STORAGE_TYPES:
        entry["shared"] = 1
    for key, value in storage.options.items():
        if not key.startswith("_"):
            entry[key] = value
    if storage.nodes is not None:
        entry["nodes"] = ",".join(storage.nodes)
    if not storage.enabled:
        entry["disable"] = 1
    return entry


def _cfg_digest(state: ClusterState) -> str:
    text = json.dumps({k: (v.type, v.content, v.options, v.nodes) for k, v in state.storages.items()}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()


@route("GET", "/storage")
def storage_index(call: Call) -> list[dict[str, Any]]:
    state = call.sim.state
    digest = _cfg_digest(state)
    wanted = call.text("type")
    return [
        _storage_cfg(s, digest)
        for s in state.storages.values()
        if (wanted is None or s.type == wanted) and call.ident.has("Datastore.Audit")
    ]


def _get_storage(state: ClusterState, storage_id: str) -> Storage:
    storage = state.storages.get(storage_id)
    if storage is None:
        raise fail(f"storage '{storage_id}' does not exist")
    return storage


@route("GET", "/storage/{storage}")
def storage_get(call: Call) -> dict[str, Any]:
    state = call.sim.state
    return _storage_cfg(_get_storage(state, call.req("storage")), _cfg_digest(state))


def _status_entry(state: ClusterState, storage: Storage, node: str) -> dict[str, Any]:
    """One storage as ``PVE::Storage::storage_info`` reports it: a storage not enabled on the node is listed
    with ``enabled``/``active`` 0 and no usage figures."""
    enabled = storage.available_on(node)
    entry: dict[str, Any] = {
        "storage": storage.storage,
        "type": storage.type,
        "content": ",".join(storage.content),
        "shared": 1 if storage.shared else 0,
        "enabled": 1 if enabled else 0,
        "active": 1 if enabled else 0,
        "total": 0,
        "used": 0,
        "avail": 0,
    }
    if enabled:
        used = state.storage_used(storage, node)
        entry.update(total=storage.total, used=used, avail=max(0, storage.total - used))
        if storage.total:
            entry["used_fraction"] = used / storage.total
    return entry


@route("GET", "/nodes/{node}/storage")
def node_storage_index(call: Call) -> list[dict[str, Any]]:
    """pve-storage ``API2/Storage/Status.pm`` ``index`` over ``PVE::Storage::storage_info``.

    A ``content`` filter keeps only storages enabled here that take one of the types; ``enabled`` drops
    storages disabled in storage.cfg; ``target`` (another node) keeps shared storages available on both.
    """
    state = call.sim.state
    node = node_of(call)
    only = call.text("storage")
    if only is not None and only not in state.storages:
        raise param_error({"storage": "No such storage."})
    contents = {c for c in (call.text("content") or "").split(",") if c}
    enabled_only = call.flag("enabled")
    target = call.text("target")
    if target in (node.name, "localhost"):
        target = None
    out = []
    for storage in state.storages.values():
        if contents and not (contents & set(storage.content) and storage.available_on(node.name)):
            continue
        if not call.ident.has("Datastore.Audit"):
            continue
        if only is not None and storage.storage != only:
            continue
        if enabled_only and not storage.enabled:
            continue
        if target is not None:
            on_both = all(storage.nodes is None or n in storage.nodes for n in (node.name, target))
            if not storage.shared or not on_both:
                continue
        out.append(_status_entry(state, storage, node.name))
    return out


@route("GET", "/nodes/{node}/storage/{storage}")
def node_storage_dir(call: Call) -> list[dict[str, str]]:
    _get_storage(call.sim.state, call.req("storage"))
    return [
        {"subdir": s}
        for s in (
            "content",
            "download-url",
            "file-restore",
            "import-metadata",
            "prunebackups",
            "rrd",
            "rrddata",
            "status",
            "upload",
        )
    ]


@route("GET", "/nodes/{node}/storage/{storage}/status")
def node_storage_status(call: Call) -> dict[str, Any]:
    state = call.sim.state
    node = node_of(call)
    storage = _get_storage(state, call.req("storage"))
    if not storage.available_on(node.name):
        raise fail(f"storage '{storage.storage}' is not available on node '{node.name}'")
    entry = _status_entry(state, storage, node.name)
    del entry["storage"]
    entry.pop("used_fraction", None)
    return entry


def content_entry(vol: Volume) -> dict[str, Any]:
    """An item of ``…/storage/{storage}/content`` with PVE's optional fields."""
    entry: dict[str, Any] = {
        "volid": vol.volid,
        "content": vol.content,
        "format": vol.format,
        "size": vol.size,
        "ctime": vol.ctime,
    }
    if vol.vmid is not None:
        entry["vmid"] = vol.vmid
    if vol.content in ("images", "rootdir"):
        entry["used"] = vol.used if vol.used is not None else int(vol.size * 0.31)
    if vol.parent:
        entry["parent"] = vol.parent
    if vol.notes is not None:
        entry["notes"] = vol.notes
    if vol.content == "backup":
        entry["protected"] = 1 if vol.protected else 0
        if vol.subtype:
            entry["subtype"] = vol.subtype
    return entry


@route("GET", "/nodes/{node}/storage/{storage}/content")
def storage_content(call: Call) -> list[dict[str, Any]]:
    state = call.sim.state
    node = node_of(call)
    storage = _get_storage(state, call.req("storage"))
    if not storage.available_on(node.name):
        raise fail(f"storage '{storage.storage}' is not available on node '{node.name}'")
    content = call.text("content")
    vmid = call.integer("vmid")
    out = []
    for vol in state.volumes_in(storage, node.name):
        if content is not None and vol.content != content:
            continue
        if vmid is not None and vol.vmid != vmid:
            continue
        out.append(content_entry(vol))
    out.sort(key=lambda e: str(e["volid"]))
    return out


def _find(call: Call) -> tuple[Storage, Volume]:
    state = call.sim.state
    node = node_of(call)
    storage = _get_storage(state, call.req("storage"))
    volume = call.req("volume")
    volid = volume if ":" in volume else f"{storage.storage}:{volume}"
    vol = state.find_volume(volid, node.name)
    if vol is None or vol.storage != storage.storage:
        raise fail(f"can't find volume '{volid}'" if ":" in volume else f"volume '{volid}' does not exist")
    return storage, vol


# pve-storage ``PVE/Storage/Plugin.pm`` ``$vtype_subdirs``: where a file-based storage keeps each content type
_VTYPE_SUBDIRS = {
    "images": "images",
    "iso": "template/iso",
    "vztmpl": "template/cache",
    "backup": "dump",
    "snippets": "snippets",
    "import": "import",
}


def volume_path(storage: Storage, volid: str) -> str:
    """The volume's path on the node, as ``PVE::Storage::path`` computes it.

    File-based storages (``Plugin.pm`` ``filesystem_path``/``parse_volname``): ``<vmid>/<name>`` (and a linked
    clone's ``<basevmid>/<base>/<vmid>/<name>``) lives in ``<path>/images/<vmid>/<name>``, the other types in
    their ``$vtype_subdirs`` folder. LVM and LVM-thin (``LvmThinPlugin.pm`` ``filesystem_path``):
    ``/dev/<vgname>/<name>``, the last part of a linked clone's volume name.
    """
    volname = volid.split(":", 1)[1]
    parts = volname.split("/")
    if storage.file_based:
        root = str(storage.options.get("path", f"/mnt/pve/{storage.storage}"))
        if parts[0].isdigit():
            return f"{root}/images/{parts[-2]}/{parts[-1]}"
        return f"{root}/{_VTYPE_SUBDIRS.get(parts[0], parts[0])}/{'/'.join(parts[1:])}"
    if storage.type in ("lvmthin", "lvm"):
        return f"/dev/{storage.options.get('vgname', 'pve')}/{parts[-1]}"
    if storage.type == "zfspool" and not parts[-1].startswith("subvol-"):
        return f"/dev/zvol/{storage.options.get('pool', 'rpool/data')}/{parts[-1]}"  # ZFSPoolPlugin.pm path
    # other plugins (RBD, iSCSI, ZFS subvolumes, …) are not seeded; their paths are not modelled
    raise fail(f"path of volume '{volid}' on a '{storage.type}' storage is not modelled by the simulator")


@route("GET", "/nodes/{node}/storage/{storage}/content/{volume}")
def storage_volume_get(call: Call) -> dict[str, Any]:
    storage, vol = _find(call)
    entry: dict[str, Any] = {
        "path": volume_path(storage, vol.volid),
        "size": vol.size,
        "used": vol.used or 0,
        "format": vol.format,
    }
    if vol.notes is not None:
        entry["notes"] = vol.notes
    if vol.content == "backup":
        entry["protected"] = 1 if vol.protected else 0
    return entry


@route("DELETE", "/nodes/{node}/storage/{storage}/content/{volume}")
def storage_volume_delete(call: Call) -> Task:
    state = call.sim.state
    storage, vol = _find(call)
    if vol.protected:
        raise fail(f"volume '{vol.volid}' is protected")
    if vol.vmid is not None and vol.content in ("images", "rootdir"):
        guest = state.guests.get(vol.vmid)
        if guest is not None and any(str(v).split(",", 1)[0] == vol.volid for v in guest.config.values()):
            raise fail(f"unable to delete '{vol.volid}' - volume is still in use (guest {vol.vmid})")
    wid = f"{vol.vmid}@{storage.storage}" if vol.vmid is not None else storage.storage

    def worker(ctx: TaskContext) -> Worker:
        yield 0.5
        ctx.log(f"Removed volume '{vol.volid}'")
        state.remove_volume(vol)

    return call.sim.tasks.start(call.node, "imgdel", wid, call.ident.authid, worker)

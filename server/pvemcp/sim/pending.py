"""Pending configuration changes: what a running guest takes at once and what waits for its next start.

PVE writes every config change to the ``[PENDING]`` section first, then either applies all of it (guest
stopped: ``vmconfig_apply_pending``) or only what can be hot-plugged into the running guest
(``vmconfig_hotplug_pending``); the rest stays pending until the guest is started again (``vm_start``
applies it, so a reboot or a stop+start does). Sources, read for each rule below:

* qemu-server ``src/PVE/QemuServer.pm``: ``$fast_plug_option``, ``vmconfig_hotplug_pending``,
  ``vmconfig_update_net``, ``vmconfig_update_disk``, ``vmconfig_apply_pending``,
  ``vmconfig_delete_or_detach_drive``, ``vmconfig_register_unused_drive``, ``parse_hotplug_features``
  (default ``network,disk,usb``); ``vm_start_nolock`` applies pending changes.
* pve-container ``src/PVE/LXC/Config.pm``: ``$LXC_FASTPLUG_OPTIONS``, ``vmconfig_hotplug_pending``,
  ``vmconfig_apply_pending``; ``src/PVE/LXC.pm`` ``vm_start`` applies pending changes.
* pve-guest-common ``src/PVE/AbstractConfig.pm``: ``cleanup_pending``, ``load_current_config``,
  ``add_to_pending_delete``; ``src/PVE/GuestHelpers.pm`` ``config_with_pending_array``.

Not modelled: hot-plug *errors* (PVE reports them as ``hotplug problem - …`` parameter errors), the
cloud-init bookkeeping, and the USB/qemu-version condition beyond the guest's ``ostype``.
"""

from __future__ import annotations

import re
from typing import Any

from pvemcp.sim.state import LXC_DISK_RE, QEMU_DISK_RE, ClusterState, Config, ConfigValue, Guest, split_property_string

# qemu-server QemuServer.pm $fast_plug_option, plus every cloud-init option ($confdesc_cloudinit)
QEMU_FAST_PLUG = frozenset(
    {
        "description",
        "hookscript",
        "lock",
        "migrate_downtime",
        "migrate_speed",
        "name",
        "onboot",
        "protection",
        "shares",
        "startup",
        "tags",
        "vmstatestorage",
        "citype",
        "ciuser",
        "cipassword",
        "ciupgrade",
        "cicustom",
        "searchdomain",
        "nameserver",
        "sshkeys",
    }
)
_IPCONFIG = re.compile(r"^ipconfig\d+$")
# pve-container LXC/Config.pm $LXC_FASTPLUG_OPTIONS
LXC_FAST_PLUG = frozenset(
    {"description", "onboot", "startup", "protection", "hostname", "hookscript", "cores", "tags", "lock"}
)
# qemu-server $confdesc->{hotplug}->{default}
DEFAULT_HOTPLUG = frozenset({"network", "disk", "usb"})
# vmconfig_update_disk: options of an existing disk that cannot change while the VM runs
_COLD_DISK_OPTS = ("aio", "discard", "iothread", "queues", "product", "cache", "ssd", "vendor", "ro")


def hotplug_features(cfg: Config) -> frozenset[str]:
    """``parse_hotplug_features``: ``0`` none, ``1`` (or unset) the default set, else the listed ones."""
    text = str(cfg.get("hotplug", "1"))
    if text == "0":
        return frozenset()
    if text == "1":
        return DEFAULT_HOTPLUG
    return frozenset(f for f in re.split(r"[,;\s]+", text) if f)


def _is_cdrom(value: ConfigValue | None) -> bool:
    return value is not None and "media=cdrom" in str(value)


def _is_cloudinit(value: ConfigValue | None) -> bool:
    return value is not None and "cloudinit" in str(value).split(",", 1)[0]


def _usb_hotplug(guest: Guest, features: frozenset[str]) -> bool:
    """``$is_usb_hotplug_supported`` (the running QEMU is always ≥ 7.1 here): usb feature, Linux or Windows 8+."""
    ostype = str(guest.config.get("ostype", ""))
    m = re.match(r"^win(\d+)$", ostype)
    return "usb" in features and (ostype == "l26" or (m is not None and int(m.group(1)) > 7))


def _qemu_net_hotplugs(old: ConfigValue | None, new: ConfigValue, features: frozenset[str]) -> bool:
    """``vmconfig_update_net``: model/MAC/queues/MTU changes need the network feature; bridge/tag need none."""
    if "network" in features or old is None:
        return "network" in features
    _, old_opts = split_property_string(str(old))
    _, new_opts = split_property_string(str(new))

    def model(opts: dict[str, str], text: str) -> tuple[str, str]:
        head = text.split(",", 1)[0]
        name, _, mac = head.partition("=")
        return (opts.get("model", name), opts.get("macaddr", mac))

    same_device = model(old_opts, str(old)) == model(new_opts, str(new)) and all(
        old_opts.get(k) == new_opts.get(k) for k in ("queues", "mtu")
    )
    return same_device and "bridge" in old_opts and "bridge" in new_opts


def _qemu_disk_hotplugs(key: str, old: ConfigValue | None, new: ConfigValue, features: frozenset[str]) -> bool:
    """``vmconfig_update_disk`` (efidisk0/tpmstate0 and cloud-init drives are skipped before it)."""
    if key in ("efidisk0", "tpmstate0") or _is_cloudinit(new):
        return False
    if old is not None:
        if _is_cdrom(old):
            return True  # change_medium
        old_file, old_opts = split_property_string(str(old))
        new_file, new_opts = split_property_string(str(new))
        if old_file != new_file:
            return "disk" in features
        return all(old_opts.get(k) == new_opts.get(k) for k in _COLD_DISK_OPTS)
    return "disk" in features and not re.match(r"^(ide|sata)\d+$", key)


def _agent_options(value: ConfigValue) -> dict[str, str]:
    head, opts = split_property_string(str(value))
    if head is not None:
        opts.setdefault("enabled", head)
    return opts


def _agent_hotplugs(old: ConfigValue | None, new: ConfigValue) -> bool:
    """``vmconfig_update_agent``: only ``fstrim_cloned_disks`` changes while running, and only if set before."""
    if old is None:
        return False
    before, after = _agent_options(old), _agent_options(new)
    keys = (set(before) | set(after)) - {"fstrim_cloned_disks"}
    return all(before.get(k) == after.get(k) for k in keys)


def hotplugs_change(guest: Guest, key: str, new: ConfigValue) -> bool:
    """Whether a running guest takes the change of ``key`` to ``new`` at once."""
    cfg = guest.config
    old = cfg.get(key)
    if guest.type == "lxc":
        # vmconfig_hotplug_pending (pve-container): fast-plug, cgroup limits, NICs, new mount points/devices
        if key in LXC_FAST_PLUG or key in ("cpulimit", "cpuunits", "memory", "swap") or re.match(r"^net\d+$", key):
            return True
        return bool(re.match(r"^(mp|dev)\d+$", key)) and old is None
    features = hotplug_features(cfg)
    if key in QEMU_FAST_PLUG or _IPCONFIG.match(key) or key in ("cpuunits", "cpulimit"):
        return True
    if key == "agent":
        return _agent_hotplugs(old, new)
    if key == "hotplug":
        return not re.search(r"memory|cpu", f"{new} {cfg.get('hotplug', '')}")
    gated = _feature_gated(guest, key, features)
    if gated is not None:
        return gated
    if key == "balloon":
        old_on = old is None or str(old) != "0"
        return old_on == (str(new) != "0")
    if re.match(r"^net\d+$", key):
        return _qemu_net_hotplugs(old, new, features)
    if QEMU_DISK_RE.match(key) or re.match(r"^(ide|sata|scsi|virtio)\d+$", key):
        return _qemu_disk_hotplugs(key, old, new, features)
    return False


def _feature_gated(guest: Guest, key: str, features: frozenset[str]) -> bool | None:
    """Whether a QEMU key that only one ``hotplug`` feature governs plugs at once, whether set or deleted.

    ``None`` for any other key. The same answer for both halves of ``vmconfig_hotplug_pending``.
    """
    if key == "tablet":
        return "usb" in features
    if re.match(r"^usb\d+$", key):
        return _usb_hotplug(guest, features)
    if key == "vcpus":
        return "cpu" in features
    if key == "memory":
        return "memory" in features
    return None


def hotplugs_delete(guest: Guest, key: str) -> bool:
    """Whether a running guest loses ``key`` at once (the deletion half of ``vmconfig_hotplug_pending``)."""
    cfg = guest.config
    if guest.type == "lxc":
        return (
            key in LXC_FAST_PLUG or key in ("swap", "cpulimit", "cpuunits") or bool(re.match(r"^(unused|net)\d+$", key))
        )
    features = hotplug_features(cfg)
    if key in QEMU_FAST_PLUG or _IPCONFIG.match(key) or key in ("cpuunits", "cpulimit"):
        return True
    if key == "hotplug":
        return not re.search(r"memory|cpu", str(cfg.get("hotplug", "")))
    gated = _feature_gated(guest, key, features)
    if gated is not None:
        return gated
    if key == "balloon":
        return str(cfg.get("balloon", "")) != "0"
    if re.match(r"^net\d+$", key):
        return "network" in features
    if re.match(r"^(ide|sata|scsi|virtio|efidisk|tpmstate)\d+$", key):
        return "disk" in features and not re.match(r"^(efidisk|ide|sata|tpmstate)\d+$", key)
    return False


# ---------------------------------------------------------------------------------------------- applying


def _disk_pattern(guest: Guest) -> re.Pattern[str]:
    return QEMU_DISK_RE if guest.type == "qemu" else LXC_DISK_RE


def add_unused(guest: Guest, volid: str) -> None:
    """``add_unused_volume``: the first free ``unusedN`` (nothing if the volume is already listed)."""
    if any(k.startswith("unused") and str(v) == volid for k, v in guest.config.items()):
        return
    n = 0
    while f"unused{n}" in guest.config:
        n += 1
    guest.config[f"unused{n}"] = volid


def _release_drive(state: ClusterState, guest: Guest, value: ConfigValue, force: bool) -> None:
    """A drive leaves the config: cloud-init and forced deletions free the volume, disks become unused.

    ``vmconfig_register_unused_drive`` / ``vmconfig_delete_or_detach_drive`` (qemu-server); containers'
    mount points go to ``unusedN`` (``vmconfig_apply_pending``, pve-container).
    """
    volid = str(value).split(",", 1)[0]
    if _is_cdrom(value) or ":" not in volid:
        return
    if force or _is_cloudinit(value):
        vol = state.find_volume(volid, guest.node)
        if vol is not None:
            state.remove_volume(vol)
        return
    add_unused(guest, volid)


def _apply_delete(state: ClusterState, guest: Guest, key: str) -> None:
    force = guest.pending_delete.pop(key, False)
    old = guest.config.pop(key, None)
    if old is None:
        return
    if key.startswith("unused"):
        vol = state.find_volume(str(old), guest.node)
        if vol is not None:
            state.remove_volume(vol)
    elif _disk_pattern(guest).match(key) or re.match(r"^(ide|sata|scsi|virtio)\d+$", key):
        _release_drive(state, guest, old, force)


def _apply_change(state: ClusterState, guest: Guest, key: str) -> None:
    new = guest.pending.pop(key)
    old = guest.config.get(key)
    if old is not None and _disk_pattern(guest).match(key) and str(old).split(",", 1)[0] != str(new).split(",", 1)[0]:
        _release_drive(state, guest, old, False)
    guest.config[key] = new


def cleanup_pending(guest: Guest) -> None:
    """``cleanup_pending``: drop pending values equal to the current ones and deletions of absent keys."""
    for key in [k for k, v in guest.pending.items() if k in guest.config and str(guest.config[k]) == str(v)]:
        del guest.pending[key]
    for key in [k for k in guest.pending_delete if k not in guest.config]:
        del guest.pending_delete[key]


def _sort(guest: Guest) -> None:
    guest.config = dict(sorted(guest.config.items()))
    guest.pending = dict(sorted(guest.pending.items()))


def apply_pending(state: ClusterState, guest: Guest) -> None:
    """``vmconfig_apply_pending``: everything pending becomes the config (stopped guest, or at start)."""
    for key in sorted(guest.pending_delete):
        _apply_delete(state, guest, key)
    cleanup_pending(guest)
    for key in sorted(guest.pending):
        _apply_change(state, guest, key)
    _sort(guest)
    state.touch()


def hotplug_pending(state: ClusterState, guest: Guest, selection: set[str]) -> None:
    """``vmconfig_hotplug_pending`` for the options this update touched; the rest stays pending."""
    for key in sorted(k for k in guest.pending_delete if k in selection):
        if hotplugs_delete(guest, key):
            _apply_delete(state, guest, key)
    for key in sorted(k for k in guest.pending if k in selection):
        if hotplugs_change(guest, key, guest.pending[key]):
            _apply_change(state, guest, key)
    _sort(guest)
    state.touch()


def settle_update(state: ClusterState, guest: Guest, modified: set[str]) -> None:
    """The end of a config update in qemu-server and pve-container alike, once ``[PENDING]`` is written.

    ``cleanup_pending``, then ``vmconfig_hotplug_pending`` for the ``modified`` options of a running
    guest, or ``vmconfig_apply_pending`` for a stopped one.
    """
    cleanup_pending(guest)
    if guest.status == "running":
        hotplug_pending(state, guest, modified)
    else:
        apply_pending(state, guest)


def effective_config(guest: Guest, current: bool) -> Config:
    """``load_current_config``: the config with pending values taken in, unless ``current`` is set."""
    cfg = dict(guest.config)
    if current:
        return cfg
    cfg.update(guest.pending)
    for key in guest.pending_delete:
        cfg.pop(key, None)
    return cfg


def pending_items(guest: Guest) -> list[dict[str, Any]]:
    """``config_with_pending_array``: every key with ``value``, ``pending`` and ``delete`` (1, 2 when forced)."""
    out: list[dict[str, Any]] = []
    for key, value in guest.config.items():
        if key == "lxc" and guest.type == "lxc":
            continue
        item: dict[str, Any] = {"key": key, "value": _shown(key, value)}
        if key in guest.pending:
            item["pending"] = _shown(key, guest.pending[key], pending=True)
        if key in guest.pending_delete:
            item["delete"] = 2 if guest.pending_delete[key] else 1
        out.append(item)
    out += [
        {"key": k, "pending": _shown(k, v, pending=True)} for k, v in guest.pending.items() if k not in guest.config
    ]
    out += [{"key": k, "delete": 2 if f else 1} for k, f in guest.pending_delete.items() if k not in guest.config]
    return out


def _shown(key: str, value: ConfigValue, pending: bool = False) -> str:
    # vm_pending masks the cloud-init password ('********** ' with a trailing blank for the pending one)
    if key == "cipassword":
        return "********** " if pending else "**********"
    return str(value)

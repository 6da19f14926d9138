"""The simulated cluster: nodes, storages, volumes, guests with configs and snapshots, pools, backup jobs.

The model keeps what a real cluster keeps on disk (pmxcfs config files, storage contents) so that the
handlers can answer like PVE does: guest configs are ordered key/value maps with PVE's JSON types
(integers and booleans as numbers, everything else as strings), their ``digest`` is the SHA-1 of the
rendered config file (as ``PVE::Tools::get_digest`` of ``/etc/pve/…/<vmid>.conf``), and the cluster-wide
vmid index lives in one dict so that ``/cluster/resources`` with 10,000 guests stays cheap.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from pvemcp.dialect.propstring import split_property_string as split_property_string  # the handlers import it from here
from pvemcp.sim.clock import SimClock

GuestType = Literal["qemu", "lxc"]
ConfigValue = str | int | float
Config = dict[str, ConfigValue]

PVE_VERSION = "9.1.1"
PVE_RELEASE = "9.1"
PVE_REPOID = "42d3de5ba8d3e2f4"
KERNEL_RELEASE = "6.17.2-1-pve"
KERNEL_VERSION = "#1 SMP PREEMPT_DYNAMIC PMX 6.17.2-1 (2025-11-06T09:17Z)"
QEMU_VERSION = "10.1.2"

GIB = 1024**3
MIB = 1024**2

_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)([KMGT]?)$")
_SIZE_UNITS = {"": 1, "K": 1024, "M": MIB, "G": GIB, "T": 1024**4}

# disk keys of each guest type, in PVE's config-file order preference for the "boot disk"
QEMU_DISK_RE = re.compile(r"^(scsi|virtio|sata|ide|efidisk|tpmstate)\d+$")
LXC_DISK_RE = re.compile(r"^(rootfs|mp\d+)$")


def parse_size(text: str) -> int:
    """``32G`` → bytes, as PVE's ``parse_size`` (bare numbers are bytes)."""
    m = _SIZE_RE.match(text.strip())
    if not m:
        raise ValueError(f"unable to parse size '{text}'")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2)])


def format_size(num: int) -> str:
    """Bytes → the largest exact PVE size unit (``34359738368`` → ``32G``), as ``format_size`` does."""
    for unit in ("T", "G", "M", "K"):
        mul = _SIZE_UNITS[unit]
        if num >= mul and num % mul == 0:
            return f"{num // mul}{unit}"
    return str(num)


@dataclass
class Node:
    """A cluster member; ``online`` false makes pveproxy answer 595 for requests proxied to it."""

    name: str
    nodeid: int
    ip: str
    maxcpu: int
    maxmem: int
    maxdisk: int
    boot_epoch: float
    cpu_model: str
    mhz: str
    sockets: int
    ssl_fingerprint: str
    online: bool = True
    level: str = ""
    mem_used: int = 0
    disk_used: int = 0
    cpu_load: float = 0.01


@dataclass
class Storage:
    """One entry of ``storage.cfg``; ``nodes`` None means available on every node."""

    storage: str
    type: str
    content: list[str]
    shared: bool
    total: int
    options: dict[str, ConfigValue] = field(default_factory=dict)
    nodes: tuple[str, ...] | None = None
    enabled: bool = True

    def available_on(self, node: str) -> bool:
        return self.enabled and (self.nodes is None or node in self.nodes)

    @property
    def supports_linked_clone(self) -> bool:
        """Whether the plugin has the ``clone`` feature for base images (lvmthin, zfs, file qcow2)."""
        return self.type in ("lvmthin", "zfspool", "dir", "nfs", "cifs", "rbd")

    @property
    def file_based(self) -> bool:
        return self.type in ("dir", "nfs", "cifs", "cephfs")


@dataclass
class Volume:
    """A volume in a storage: disk image, ISO, container template or backup archive."""

    volid: str
    storage: str
    content: str
    format: str
    size: int
    ctime: int
    node: str | None = None  # the node holding it on non-shared storage
    vmid: int | None = None
    parent: str | None = None
    notes: str | None = None
    protected: bool = False
    subtype: str | None = None
    used: int | None = None
    guest_config: Config | None = None  # a backup archive's guest config (what a restore brings back)


def volume_key(volid: str, node: str | None) -> str:
    """Key of a volume in :attr:`ClusterState.volumes`: the volid, prefixed by its node when local."""
    return volid if node is None else f"{node}|{volid}"


@dataclass
class Snapshot:
    """A ``[name]`` section of a guest config."""

    name: str
    snaptime: int
    description: str
    config: Config
    parent: str | None = None
    vmstate: bool = False
    snapstate: str | None = None


@dataclass
class Guest:
    """A VM or container with its config file, runtime status and snapshots."""

    vmid: int
    type: GuestType
    node: str
    config: Config
    status: str = "stopped"  # running | stopped
    qmpstatus: str = "stopped"  # running | paused | stopped (qemu)
    started_at: float | None = None
    pid: int | None = None
    snapshots: dict[str, Snapshot] = field(default_factory=dict)
    # the config file's ``[PENDING]`` section: changes waiting for the next start, and keys waiting to be
    # deleted (value: forced, ``!key`` in PVE's ``delete:`` line) — see :mod:`pvemcp.sim.pending`
    pending: Config = field(default_factory=dict)
    pending_delete: dict[str, bool] = field(default_factory=dict)
    pool: str | None = None
    # seconds the guest OS needs to power off on ACPI shutdown; None = ignores ACPI (hung guest)
    shutdown_seconds: float | None = 4.0
    cpu_load: float = 0.02
    mem_fraction: float = 0.4
    net_rate: int = 20000
    disk_rate: int = 50000

    @property
    def kind(self) -> str:
        """``VM`` or ``CT`` — the word PVE uses in lock and config messages."""
        return "VM" if self.type == "qemu" else "CT"

    @property
    def name(self) -> str:
        key = "name" if self.type == "qemu" else "hostname"
        value = self.config.get(key)
        return str(value) if value is not None else f"{'VM' if self.type == 'qemu' else 'CT'} {self.vmid}"

    @property
    def template(self) -> bool:
        return bool(self.config.get("template"))

    @property
    def lock(self) -> str | None:
        value = self.config.get("lock")
        return str(value) if value is not None else None

    @property
    def maxmem(self) -> int:
        raw = self.config.get("memory", 512 if self.type == "lxc" else 2048)
        text = str(raw)
        if "=" in text:
            _, opts = split_property_string(text)
            text = opts.get("current", "2048")
        return int(text) * MIB

    @property
    def maxcpu(self) -> float:
        if self.type == "qemu":
            return float(int(self.config.get("cores", 1)) * int(self.config.get("sockets", 1)))
        return float(int(self.config.get("cores", 1)))

    def disks(self) -> Iterator[tuple[str, str]]:
        """(config key, property string) of every disk, CD-ROMs and cloud-init drives excluded."""
        pattern = QEMU_DISK_RE if self.type == "qemu" else LXC_DISK_RE
        for key, value in self.config.items():
            if pattern.match(key) and "media=cdrom" not in str(value) and "cloudinit" not in str(value):
                yield key, str(value)

    @property
    def maxdisk(self) -> int:
        for key, value in self.disks():
            if key.startswith(("efidisk", "tpmstate")):
                continue
            _, opts = split_property_string(value)
            if "size" in opts:
                return parse_size(opts["size"])
        return 0

    def uptime(self, now: float) -> int:
        if self.status != "running" or self.started_at is None:
            return 0
        return max(0, int(now - self.started_at))

    def config_path(self) -> str:
        """The pmxcfs path PVE names in ``Configuration file '…' does not exist``."""
        sub = "qemu-server" if self.type == "qemu" else "lxc"
        return f"nodes/{self.node}/{sub}/{self.vmid}.conf"


def render_config(guest: Guest) -> str:
    """The guest's config file as pmxcfs stores it (description as ``#`` lines, then snapshot sections)."""

    def section(cfg: Config) -> list[str]:
        lines: list[str] = []
        desc = cfg.get("description")
        if desc is not None:
            lines += [f"#{line}" for line in str(desc).split("\n")]
        for key, value in cfg.items():
            if key == "description":
                continue
            if key == "lxc" and guest.type == "lxc":
                continue
            lines.append(f"{key}: {value}")
        return lines

    out = section(guest.config)
    if guest.pending or guest.pending_delete:
        out += ["", "[PENDING]"]
        out += section(guest.pending)
        if guest.pending_delete:
            out.append("delete: " + ",".join(("!" if f else "") + k for k, f in sorted(guest.pending_delete.items())))
    for snap in guest.snapshots.values():
        out.append("")
        out.append(f"[{snap.name}]")
        out += section(snap.config)
    return "\n".join(out) + "\n"


def archived_config(guest: Guest) -> Config:
    """The config vzdump puts into an archive: the guest's current one, without lock or snapshot link."""
    return {k: v for k, v in guest.config.items() if k not in ("lock", "parent")}


def config_digest(guest: Guest) -> str:
    """SHA-1 hex of the rendered config file — what GET config returns as ``digest``."""
    return hashlib.sha1(render_config(guest).encode()).hexdigest()


@dataclass
class Pool:
    """A resource pool (``user.cfg``): guests and storages grouped for permissions and overview."""

    poolid: str
    comment: str = ""
    vmids: set[int] = field(default_factory=set)
    storages: set[str] = field(default_factory=set)


@dataclass
class ClusterState:
    """Everything the simulated cluster knows, plus a deterministic RNG for new ids (MACs, UUIDs)."""

    clock: SimClock
    rng: random.Random
    cluster_name: str
    nodes: dict[str, Node]
    storages: dict[str, Storage]
    volumes: dict[str, Volume] = field(default_factory=dict)
    guests: dict[int, Guest] = field(default_factory=dict)
    pools: dict[str, Pool] = field(default_factory=dict)
    backup_jobs: dict[str, Config] = field(default_factory=dict)
    version: int = 0  # bumped on every change; caches of derived listings key on it
    next_pid: int = 4000

    def touch(self) -> None:
        """Record a change (invalidates cached listings)."""
        self.version += 1

    # ---- lookups -------------------------------------------------------------------------------

    def guests_on(self, node: str, kind: GuestType | None = None) -> list[Guest]:
        return [g for g in self.guests.values() if g.node == node and (kind is None or g.type == kind)]

    def volumes_in(self, storage: Storage, node: str) -> list[Volume]:
        return [v for v in self.volumes.values() if v.storage == storage.storage and (storage.shared or v.node == node)]

    def storage_used(self, storage: Storage, node: str) -> int:
        base = int(storage.options.get("_base_used", 0))
        return base + sum(v.size for v in self.volumes_in(storage, node))

    def add_volume(self, vol: Volume) -> None:
        """Store a volume; local-storage volumes are per node (``local:iso/x.iso`` exists on each)."""
        self.volumes[volume_key(vol.volid, vol.node)] = vol
        self.touch()

    def find_volume(self, volid: str, node: str) -> Volume | None:
        """The volume ``volid`` as seen from ``node`` (shared storage or that node's local storage)."""
        return self.volumes.get(volid) or self.volumes.get(volume_key(volid, node))

    def remove_volume(self, vol: Volume) -> None:
        self.volumes.pop(volume_key(vol.volid, vol.node), None)
        self.touch()

    def alloc_pid(self) -> int:
        self.next_pid += self.rng.randint(3, 97)
        return self.next_pid

    def new_mac(self) -> str:
        """A MAC in Proxmox's default OUI ``BC:24:11`` (what the GUI and API generate since 8.x)."""
        return "BC:24:11:" + ":".join(f"{self.rng.randrange(256):02X}" for _ in range(3))

    def new_uuid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[self.rng.randrange(4)]}{h[17:20]}-{h[20:32]}"

    def next_disk_index(self, storage: str, vmid: int) -> int:
        """Next free ``vm-<vmid>-disk-N`` index on a storage (PVE's ``find_free_diskname``)."""
        used = set()
        pat = re.compile(rf"^{re.escape(storage)}:(?:\d+/)?(?:vm|base|subvol)-{vmid}-disk-(\d+)")
        for vol in self.volumes.values():
            m = pat.match(vol.volid)
            if m:
                used.add(int(m.group(1)))
        n = 0
        while n in used:
            n += 1
        return n

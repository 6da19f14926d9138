"""What each simulated node is made of below the API: disks, LVM, systemd services, resolver, packages.

One :class:`NodeHost` per node, derived from the seed and the node's name so the same seed gives the same
hardware. It is consistent with the rest of the cluster: the boot disk carries the ``pve`` volume group
whose thin pool ``data`` *is* the ``local-lvm`` storage (its size is that storage's ``total``, its use is
what the storage reports as used), the root LV is the node's ``/`` (the ``local`` storage), and the spare
data disks show as unused. There is no ZFS pool and no Ceph: the nodes were installed on ext4/LVM.

Shapes follow pve-storage ``PVE::Diskmanage::get_disks`` / ``get_smart_data``, ``LVMPlugin::lvm_vgs`` /
``lvm_list_volumes`` and pve-manager ``PVE::API2::Services`` (``$service_state``: ``SubState``,
``UnitFileState`` — ``not-found`` when the unit is not installed — and ``ActiveState``).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from pvemcp.sim.state import GIB, MIB, ClusterState, Node

# partition type GUIDs get_disks maps to a usage ('BIOS boot', 'EFI'); the third partition is an LVM PV
_BOOT_DISK_BYTES = 1_920_383_410_176  # a 1.92 TB datacenter NVMe
_BIOS_BOOT_BYTES = 1_031_168
_ESP_BYTES = GIB
_EXTENT = 4 * MIB
SWAP_LV_BYTES = 8 * GIB
ROOT_LV_BYTES = 100 * GIB
THIN_META_BYTES = 8_489_271_296  # the installer's metadata size for a pool of this size (~1 %)


@dataclass(frozen=True)
class Partition:
    """A partition as ``get_disks(include_partitions)`` lists it."""

    devpath: str
    parent: str
    size: int
    used: str


@dataclass(frozen=True)
class Disk:
    """A whole block device; ``kind`` is get_disks' ``type`` (``nvme``, ``ssd``, ``hdd``)."""

    devpath: str
    kind: str
    vendor: str
    model: str
    serial: str
    wwn: str
    size: int
    rpm: int
    wearout: int | None  # percent left; None for spinning disks ('N/A')
    partitions: tuple[Partition, ...] = ()
    power_on_hours: int = 0

    @property
    def name(self) -> str:
        return self.devpath.removeprefix("/dev/")

    @property
    def gpt(self) -> int:
        return 1 if self.partitions else 0

    @property
    def by_id_link(self) -> str:
        prefix = "nvme" if self.kind == "nvme" else "ata"
        return f"/dev/disk/by-id/{prefix}-{self.model.replace(' ', '_')}_{self.serial}"


@dataclass(frozen=True)
class ServiceState:
    """One systemd unit as ``systemctl show`` reports it (Description, ActiveState, SubState, UnitFileState)."""

    desc: str
    active: str = "active"
    sub: str = "running"
    unit: str = "enabled"


@dataclass(frozen=True)
class PackageUpdate:
    """An entry of the cached ``apt-get update`` result (pve-manager ``APT.pm`` ``$assemble_pkginfo``)."""

    package: str
    title: str
    description: str
    old_version: str
    version: str
    origin: str
    section: str
    arch: str = "amd64"
    priority: str = "optional"

    def entry(self) -> dict[str, str]:
        return {
            "Package": self.package,
            "Title": self.title,
            "Description": self.description,
            "OldVersion": self.old_version,
            "Version": self.version,
            "Origin": self.origin,
            "Section": self.section,
            "Arch": self.arch,
            "Priority": self.priority,
        }


# pve-manager PVE/API2/Services.pm $service_name_list, with what a PVE 9.1 node on Debian 13 reports:
# chrony replaces systemd-timesyncd, and trixie no longer installs rsyslog (syslog.service).
_SERVICES: dict[str, ServiceState] = {
    "chrony": ServiceState("chrony, an NTP client/server"),
    "corosync": ServiceState("Corosync Cluster Engine"),
    "cron": ServiceState("Regular background program processing daemon"),
    "ksmtuned": ServiceState("Kernel Samepage Merging (KSM) Tuning Daemon"),
    "lxcfs": ServiceState("FUSE filesystem for LXC"),
    "postfix": ServiceState("Postfix Mail Transport Agent", sub="exited"),
    "proxmox-firewall": ServiceState("Proxmox nftables firewall", active="inactive", sub="dead"),
    "pve-cluster": ServiceState("The Proxmox VE cluster filesystem"),
    "pve-firewall": ServiceState("Proxmox VE firewall"),
    "pve-ha-crm": ServiceState("PVE Cluster HA Resource Manager Daemon"),
    "pve-ha-lrm": ServiceState("PVE Local HA Resource Manager Daemon"),
    "pve-lxc-syscalld": ServiceState("Proxmox VE LXC Syscall Daemon"),
    "pvedaemon": ServiceState("PVE API Daemon"),
    "pvefw-logger": ServiceState("Proxmox VE firewall logger"),
    "pveproxy": ServiceState("PVE API Proxy Server"),
    "pvescheduler": ServiceState("Proxmox VE scheduler"),
    "pvestatd": ServiceState("PVE Status Daemon"),
    "qmeventd": ServiceState("PVE Qemu Event Daemon"),
    "spiceproxy": ServiceState("PVE SPICE Proxy Server"),
    "sshd": ServiceState("OpenBSD Secure Shell server"),
    "syslog": ServiceState("syslog.service", active="inactive", sub="dead", unit="not-found"),
    "systemd-journald": ServiceState("Journal Service", unit="static"),
    "systemd-timesyncd": ServiceState("systemd-timesyncd.service", active="inactive", sub="dead", unit="not-found"),
}
# without /etc/corosync/corosync.conf (a single node) corosync's ConditionPathExists keeps it dead
_STANDALONE_COROSYNC = ServiceState("Corosync Cluster Engine", active="inactive", sub="dead")

_UPDATES: tuple[PackageUpdate, ...] = (
    PackageUpdate(
        "pve-qemu-kvm",
        "Full virtualization on x86 hardware",
        "Virtualization, also known as virtual machine (VM), is an emulation of a computer system.",
        "10.1.2-1",
        "10.1.2-4",
        "Proxmox",
        "admin",
    ),
    PackageUpdate(
        "libpve-storage-perl",
        "Proxmox VE storage management library",
        "This package contains the storage management library used by Proxmox VE.",
        "9.1.0",
        "9.1.1",
        "Proxmox",
        "perl",
        arch="all",
    ),
    PackageUpdate(
        "tzdata",
        "time zone and daylight-saving time data",
        "This package contains data required for the implementation of standard local time for many "
        "representative locations around the globe.",
        "2025b-4",
        "2025b-4+deb13u1",
        "Debian",
        "localization",
        arch="all",
        priority="required",
    ),
)

_HDD_MODEL = "ST4000NM000A-2HZ100"
_NVME_MODEL = "Micron_7450_MTFDKBA1T9TFR"


@dataclass
class NodeHost:
    """One node's host-level facts."""

    node: str
    disks: tuple[Disk, ...]
    services: dict[str, ServiceState] = field(default_factory=dict)
    search_domain: str = "pvemcp.lan"
    nameservers: tuple[str, ...] = ()
    timezone: str = "UTC"
    updates: tuple[PackageUpdate, ...] = ()
    installed: str = ""  # creation time of the installer's LVs, as `lvs -o time` prints it
    daemon_pid: int = 0  # the pvedaemon worker that logs task starts and ends to the cluster log

    @property
    def boot_disk(self) -> Disk:
        return self.disks[0]

    @property
    def pv(self) -> Partition:
        """The LVM physical volume of the ``pve`` volume group (third partition of the boot disk)."""
        return self.boot_disk.partitions[-1]

    def find_device(self, devpath: str) -> Disk | None:
        """The disk at ``devpath``, or the disk holding the partition at ``devpath``."""
        for disk in self.disks:
            if disk.devpath == devpath or any(p.devpath == devpath for p in disk.partitions):
                return disk
        return None

    def vg_size(self) -> int:
        return self.pv.size // _EXTENT * _EXTENT

    def lvs_size(self, thinpool_size: int) -> int:
        """Space the LVs take in the VG: swap, root, the thin pool and its metadata plus the spare copy."""
        return SWAP_LV_BYTES + ROOT_LV_BYTES + thinpool_size + 2 * THIN_META_BYTES


def _serial(rng: random.Random, prefix: str, digits: int) -> str:
    return prefix + "".join(rng.choice("0123456789ABCDEF") for _ in range(digits))


def _boot_disk(rng: random.Random) -> Disk:
    dev = "/dev/nvme0n1"
    pv_size = _BOOT_DISK_BYTES - _BIOS_BOOT_BYTES - _ESP_BYTES - 2 * MIB  # GPT headers and alignment
    parts = (
        Partition(f"{dev}p1", dev, _BIOS_BOOT_BYTES, "BIOS boot"),
        Partition(f"{dev}p2", dev, _ESP_BYTES, "EFI"),
        Partition(f"{dev}p3", dev, pv_size, "LVM"),
    )
    return Disk(
        devpath=dev,
        kind="nvme",
        vendor="unknown",  # NVMe devices have no sysfs device/vendor
        model=_NVME_MODEL,
        serial=_serial(rng, "2233", 8),
        wwn=f"eui.000000000000000100a075{rng.getrandbits(40):010x}",
        size=_BOOT_DISK_BYTES,
        rpm=0,
        wearout=rng.randint(93, 99),
        partitions=parts,
        power_on_hours=rng.randint(3000, 20000),
    )


def _data_disk(rng: random.Random, letter: str) -> Disk:
    return Disk(
        devpath=f"/dev/sd{letter}",
        kind="hdd",
        vendor="ATA     ",  # the sysfs vendor of SATA disks, space-padded as the kernel reports it
        model=_HDD_MODEL,
        serial=_serial(rng, "WFN", 5),
        wwn=f"0x5000c500{rng.getrandbits(32):08x}",
        size=4_000_787_030_016,
        rpm=7200,
        wearout=None,
        power_on_hours=rng.randint(2000, 30000),
    )


def _host(state: ClusterState, node: Node, seed: int) -> NodeHost:
    rng = random.Random(f"{seed}:{node.name}:host")
    disks = [_boot_disk(rng)]
    for letter in "ab"[: rng.randint(0, 2)]:
        disks.append(_data_disk(rng, letter))
    services = dict(_SERVICES)
    if len(state.nodes) == 1:
        services["corosync"] = _STANDALONE_COROSYNC
    gateway = ".".join([*node.ip.split(".")[:3], "1"])
    installed = time.strftime("%Y-%m-%d %H:%M:%S +0000", time.gmtime(node.boot_epoch - rng.randint(90, 400) * 86400))
    return NodeHost(
        node=node.name,
        disks=tuple(disks),
        services=services,
        nameservers=(gateway, "1.1.1.1"),
        updates=_UPDATES,
        installed=installed,
        daemon_pid=rng.randint(1100, 1900),
    )


def build_hosts(state: ClusterState, seed: int) -> dict[str, NodeHost]:
    """The host facts of every node of ``state``."""
    return {name: _host(state, node, seed) for name, node in state.nodes.items()}

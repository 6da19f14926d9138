"""The seeded cluster: what ``pvemcp sim --seed N`` starts with.

The default cluster is a small but realistic homelab/SMB setup: nodes ``pve1..pveN`` with ``local`` (dir:
ISOs, templates, backups), ``local-lvm`` (lvmthin: disks) and a shared NFS store; a dozen guests with
names, tags and pools — running and stopped VMs and containers, a VM that ignores ACPI shutdown, a
template, snapshot trees — two backup jobs, ISO images, container templates, earlier backups and a task
history. Everything is derived from one ``random.Random(seed)`` so the same seed gives the same cluster.
``guests`` beyond the catalog are generated (vmid 1000+) for scale tests; building 10,000 takes well
under a second.
"""

from __future__ import annotations

import calendar
import random
import time
from dataclasses import dataclass

from pvemcp.sim.clock import SimClock
from pvemcp.sim.state import (
    GIB,
    QEMU_VERSION,
    ClusterState,
    Config,
    Guest,
    GuestType,
    Node,
    Pool,
    Snapshot,
    Storage,
    Volume,
    archived_config,
)
from pvemcp.sim.tasks import TaskManager


@dataclass(frozen=True)
class _Spec:
    vmid: int
    type: GuestType
    name: str
    node: int
    running: bool
    tags: str
    pool: str | None
    cores: int
    memory: int  # MiB
    disk_gib: int
    storage: str = "local-lvm"
    template: bool = False
    ostype: str = ""
    acpi_ok: bool = True
    snapshots: tuple[tuple[str, str], ...] = ()


CATALOG: tuple[_Spec, ...] = (
    _Spec(100, "qemu", "web-01", 0, True, "prod;web", "prod", 2, 4096, 32),
    _Spec(101, "qemu", "web-02", 1, True, "prod;web", "prod", 2, 4096, 32),
    _Spec(
        102,
        "qemu",
        "db-01",
        0,
        True,
        "db;prod",
        "prod",
        4,
        8192,
        64,
        snapshots=(("pre_upgrade", "before PostgreSQL 17 upgrade"), ("post_upgrade", "PostgreSQL 17 running")),
    ),
    _Spec(103, "lxc", "dns-01", 2, True, "infra", "infra", 1, 512, 8),
    _Spec(104, "lxc", "proxy-01", 1, True, "infra;web", "infra", 2, 1024, 8),
    _Spec(105, "qemu", "dev-box", 2, False, "dev", "dev", 2, 2048, 32, snapshots=(("clean_install", ""),)),
    _Spec(106, "qemu", "ci-runner", 0, True, "ci;dev", "dev", 4, 8192, 64, storage="nfs-shared"),
    _Spec(
        107,
        "lxc",
        "monitoring",
        0,
        True,
        "infra;monitoring",
        "infra",
        2,
        2048,
        16,
        snapshots=(("before_grafana_12", "Grafana 11.6"),),
    ),
    _Spec(108, "qemu", "legacy-app", 1, True, "legacy", None, 1, 2048, 20, ostype="other", acpi_ok=False),
    _Spec(109, "lxc", "build-cache", 2, False, "ci;dev", "dev", 2, 1024, 16),
    _Spec(110, "qemu", "win-test", 2, False, "dev;windows", "dev", 4, 8192, 64, ostype="win11"),
    _Spec(9000, "qemu", "debian-12-template", 0, False, "template", None, 2, 2048, 8, template=True),
)

ISOS = (
    ("debian-13.2.0-amd64-netinst.iso", 754974720),
    ("ubuntu-24.04.3-live-server-amd64.iso", 3213064192),
    ("virtio-win-0.1.271.iso", 709656576),
)
CT_TEMPLATES = (
    ("debian-12-standard_12.12-1_amd64.tar.zst", "tzst", 126458240),
    ("alpine-3.22-default_20250617_amd64.tar.xz", "txz", 3326148),
)
SHARED_CT_TEMPLATES = (("ubuntu-24.04-standard_24.04-2_amd64.tar.zst", "tzst", 141033472),)

CPU_MODELS = (
    ("AMD EPYC 7302P 16-Core Processor", "3000.000", 32),
    ("Intel(R) Xeon(R) E-2388G CPU @ 3.20GHz", "3200.000", 16),
    ("AMD Ryzen 9 7950X 16-Core Processor", "4500.000", 32),
)

_EXTRA_TAGS = ("prod", "staging", "dev", "web", "db", "batch", "ci", "infra")


def _fingerprint(rng: random.Random) -> str:
    return ":".join(f"{rng.randrange(256):02X}" for _ in range(32))


def _tags(text: str) -> str:
    return ";".join(sorted(t for t in text.split(";") if t))


def build_cluster(
    seed: int = 1,
    nodes: int = 3,
    guests: int = 12,
    clock: SimClock | None = None,
    cluster_name: str = "pvemcp-sim",
) -> ClusterState:
    """Build the seeded cluster. ``guests`` counts the catalog first, then generated guests."""
    if nodes < 1:
        raise ValueError("a cluster needs at least one node")
    if guests < 0:
        raise ValueError("guests must be >= 0")
    clock = clock or SimClock()
    rng = random.Random(seed)
    now = clock.now()

    node_objs: dict[str, Node] = {}
    for i in range(nodes):
        model, mhz, cpus = CPU_MODELS[i % len(CPU_MODELS)]
        name = f"pve{i + 1}"
        node_objs[name] = Node(
            name=name,
            nodeid=i + 1,
            ip=f"10.10.10.{11 + i}",
            maxcpu=cpus,
            maxmem=128 * GIB if cpus >= 32 else 64 * GIB,
            maxdisk=98 * GIB,
            boot_epoch=now - rng.randint(5, 60) * 86400 - rng.randint(0, 86399),
            cpu_model=model,
            mhz=mhz,
            sockets=1,
            ssl_fingerprint=_fingerprint(rng),
            mem_used=rng.randint(8, 24) * GIB,
            disk_used=rng.randint(6, 14) * GIB,
            cpu_load=round(rng.uniform(0.01, 0.2), 4),
        )
    node_names = list(node_objs)

    storages = {
        "local": Storage(
            "local",
            "dir",
            ["iso", "vztmpl", "backup", "import"],
            shared=False,
            total=98 * GIB,
            options={"path": "/var/lib/vz", "_base_used": 9 * GIB},
        ),
        "local-lvm": Storage(
            "local-lvm",
            "lvmthin",
            ["rootdir", "images"],
            shared=False,
            total=832 * GIB,
            options={"vgname": "pve", "thinpool": "data"},
        ),
        "nfs-shared": Storage(
            "nfs-shared",
            "nfs",
            ["images", "rootdir", "iso", "vztmpl", "backup"],
            shared=True,
            total=4096 * GIB,
            options={
                "server": "10.10.10.50",
                "export": "/export/pve",
                "path": "/mnt/pve/nfs-shared",
                "options": "vers=4.2",
                "prune-backups": "keep-daily=7,keep-weekly=4",
                "_base_used": 310 * GIB,
            },
        ),
    }
    state = ClusterState(clock=clock, rng=rng, cluster_name=cluster_name, nodes=node_objs, storages=storages)

    ctime0 = int(now) - 200 * 86400
    for n in node_names:
        for fname, fmt, size in CT_TEMPLATES:
            state.add_volume(Volume(f"local:vztmpl/{fname}", "local", "vztmpl", fmt, size, ctime0, node=n))
    first = node_names[0]
    for fname, size in ISOS[:1]:
        state.add_volume(Volume(f"local:iso/{fname}", "local", "iso", "iso", size, ctime0 + 3600, node=first))
    for fname, size in ISOS:
        state.add_volume(Volume(f"nfs-shared:iso/{fname}", "nfs-shared", "iso", "iso", size, ctime0 + 7200))
    for fname, fmt, size in SHARED_CT_TEMPLATES:
        state.add_volume(Volume(f"nfs-shared:vztmpl/{fname}", "nfs-shared", "vztmpl", fmt, size, ctime0 + 7300))

    state.pools = {
        "prod": Pool("prod", "Production services"),
        "infra": Pool("infra", "DNS, proxy, monitoring"),
        "dev": Pool("dev", "Development and CI", storages={"nfs-shared"}),
    }

    specs = list(CATALOG[:guests])
    extra = guests - len(specs)
    taken = {s.vmid for s in specs}
    vmid = 999
    for i in range(max(0, extra)):
        vmid += 1
        while vmid in taken:
            vmid += 1
        is_ct = rng.random() < 0.25
        tags = _tags(";".join(rng.sample(_EXTRA_TAGS, rng.randint(0, 2))))
        specs.append(
            _Spec(
                vmid,
                "lxc" if is_ct else "qemu",
                f"{'ct' if is_ct else 'vm'}-{vmid}",
                i % nodes,
                rng.random() < 0.6,
                tags,
                rng.choice(("prod", "dev", None, None)),
                rng.choice((1, 2, 4)),
                rng.choice((512, 1024, 2048, 4096)) if is_ct else rng.choice((1024, 2048, 4096, 8192)),
                rng.choice((8, 16, 32)),
            )
        )

    for spec in specs:
        _add_guest(state, spec, node_names[spec.node % nodes], now)

    _seed_backup_jobs(state)
    _seed_backups(state, now)
    return state


def _add_guest(state: ClusterState, spec: _Spec, node: str, now: float) -> None:
    rng = state.rng
    ctime = int(now) - rng.randint(30, 400) * 86400
    storage = state.storages[spec.storage]
    disk_prefix = "base" if spec.template else "vm"
    if spec.type == "qemu":
        if storage.file_based:
            volid = f"{spec.storage}:{spec.vmid}/{disk_prefix}-{spec.vmid}-disk-0.qcow2"
            fmt = "qcow2"
        else:
            volid = f"{spec.storage}:{disk_prefix}-{spec.vmid}-disk-0"
            fmt = "raw"
        config: Config = {
            "agent": "1",
            "boot": "order=scsi0;ide2;net0",
            "cores": spec.cores,
            "cpu": "x86-64-v2-AES",
            "ide2": "none,media=cdrom",
            "memory": str(spec.memory),
            "meta": f"creation-qemu={QEMU_VERSION},ctime={ctime}",
            "name": spec.name,
            "net0": f"virtio={state.new_mac()},bridge=vmbr0,firewall=1",
            "numa": 0,
            "onboot": 1 if spec.running else 0,
            "ostype": spec.ostype or "l26",
            "scsi0": f"{volid},iothread=1,size={spec.disk_gib}G",
            "scsihw": "virtio-scsi-single",
            "smbios1": f"uuid={state.new_uuid()}",
            "sockets": 1,
            "vmgenid": state.new_uuid(),
        }
        if spec.ostype == "win11":
            config["bios"] = "ovmf"
            config["machine"] = "pc-q35-10.1"
            config["efidisk0"] = f"local-lvm:vm-{spec.vmid}-disk-1,efitype=4m,pre-enrolled-keys=1,size=4M"
            config["tpmstate0"] = f"local-lvm:vm-{spec.vmid}-disk-2,size=4M,version=v2.0"
            config["ide0"] = "nfs-shared:iso/virtio-win-0.1.271.iso,media=cdrom,size=693024K"
            del config["agent"]
        if spec.ostype == "other":
            del config["agent"]
        if spec.template:
            config["serial0"] = "socket"  # cloud-image templates get a serial console
            config["vga"] = "serial0"
        content = "images"
    else:
        volid = f"{spec.storage}:{disk_prefix}-{spec.vmid}-disk-0"
        fmt = "raw"
        config = {
            "arch": "amd64",
            "cores": spec.cores,
            "features": "nesting=1",
            "hostname": spec.name,
            "memory": spec.memory,
            "net0": f"name=eth0,bridge=vmbr0,firewall=1,hwaddr={state.new_mac()},ip=dhcp,type=veth",
            "onboot": 1 if spec.running else 0,
            "ostype": "debian" if spec.vmid % 2 else "alpine",
            "rootfs": f"{volid},size={spec.disk_gib}G",
            "swap": 512,
            "unprivileged": 1,
        }
        content = "rootdir"
    if spec.tags:
        config["tags"] = _tags(spec.tags)
    if spec.template:
        config["template"] = 1
    config = dict(sorted(config.items()))

    vol_node = None if storage.shared else node
    size = spec.disk_gib * GIB
    vol = Volume(volid, spec.storage, content, fmt, size, ctime, node=vol_node, vmid=spec.vmid)
    state.add_volume(vol)
    for key in ("efidisk0", "tpmstate0"):
        if key in config:
            extra_volid = str(config[key]).split(",", 1)[0]
            state.add_volume(
                Volume(extra_volid, "local-lvm", "images", "raw", 4 * 1024**2, ctime, node=node, vmid=spec.vmid)
            )

    guest = Guest(vmid=spec.vmid, type=spec.type, node=node, config=config)
    guest.cpu_load = round(rng.uniform(0.005, 0.35), 6)
    guest.mem_fraction = round(rng.uniform(0.2, 0.85), 4)
    guest.net_rate = rng.randint(2_000, 400_000)
    guest.disk_rate = rng.randint(5_000, 900_000)
    guest.shutdown_seconds = rng.choice((3.0, 4.0, 6.0, 8.0)) if spec.acpi_ok else None
    if spec.running:
        guest.status = "running"
        guest.qmpstatus = "running"
        guest.started_at = now - rng.randint(600, 40 * 86400)
        guest.pid = state.alloc_pid()
    if spec.pool:
        guest.pool = spec.pool
        state.pools[spec.pool].vmids.add(spec.vmid)

    parent: str | None = None
    for idx, (sname, desc) in enumerate(spec.snapshots):
        snaptime = int(now) - (len(spec.snapshots) - idx) * rng.randint(3, 20) * 86400
        snap_cfg = dict(config)
        snap = Snapshot(
            name=sname,
            snaptime=snaptime,
            description=desc,
            config=snap_cfg,
            parent=parent,
            vmstate=False,
        )
        if parent is not None:
            snap_cfg["parent"] = parent
        snap_cfg["snaptime"] = snaptime
        if desc:
            snap_cfg["description"] = desc
        guest.snapshots[sname] = snap
        parent = sname
    if parent is not None:
        guest.config["parent"] = parent
    state.guests[spec.vmid] = guest


def _seed_backup_jobs(state: ClusterState) -> None:
    rng = state.rng
    prod = [str(v) for v in (100, 101, 102) if v in state.guests]

    def job_id() -> str:
        h = f"{rng.getrandbits(48):012x}"
        return f"backup-{h[:8]}-{h[8:12]}"

    nightly: Config = {
        "type": "vzdump",
        "schedule": "02:00",
        "storage": "nfs-shared",
        "mode": "snapshot",
        "compress": "zstd",
        "enabled": 1,
        "notes-template": "{{guestname}}",
        "comment": "Nightly backup of production VMs",
        "notification-mode": "notification-system",
        "vmid": ",".join(prod) if prod else "100",
    }
    weekly: Config = {
        "type": "vzdump",
        "schedule": "sat 03:00",
        "storage": "nfs-shared",
        "mode": "snapshot",
        "compress": "zstd",
        "enabled": 1,
        "all": 1,
        "exclude": "9000",
        "notes-template": "{{guestname}}",
        "comment": "Weekly backup of all guests",
        "notification-mode": "notification-system",
        "prune-backups": "keep-last=2,keep-weekly=4",
    }
    state.backup_jobs[job_id()] = nightly
    state.backup_jobs[job_id()] = weekly


def _seed_backups(state: ClusterState, now: float) -> None:
    """Earlier backup archives on the shared store, as the nightly job would have left them."""
    for vmid in (100, 101, 102, 103):
        guest = state.guests.get(vmid)
        if guest is None:
            continue
        for days in (1, 2):
            t = time.gmtime(int(now) - days * 86400)
            stamp = time.strftime("%Y_%m_%d-02_00_", t) + f"{(vmid * 7) % 60:02d}"
            ext = "vma.zst" if guest.type == "qemu" else "tar.zst"
            volid = f"nfs-shared:backup/vzdump-{guest.type}-{vmid}-{stamp}.{ext}"
            ctime = calendar.timegm(time.strptime(stamp, "%Y_%m_%d-%H_%M_%S"))
            state.add_volume(
                Volume(
                    volid,
                    "nfs-shared",
                    "backup",
                    ext,
                    int(guest.maxdisk * 0.31),
                    ctime,
                    vmid=vmid,
                    notes=guest.name,
                    subtype=guest.type,
                    guest_config=archived_config(guest),
                )
            )


def seed_task_history(state: ClusterState, tasks: TaskManager) -> None:
    """A few finished tasks per node, so task listings are not empty on a fresh simulator."""
    now = int(state.clock.now())
    for i, node in enumerate(state.nodes):
        base = now - 86400 - i * 600
        tasks.add_finished(
            node,
            "aptupdate",
            "",
            "root@pam",
            base - 3 * 3600,
            14,
            ["starting apt-get update", "Hit:1 http://deb.debian.org/debian trixie InRelease"],
        )
        tasks.add_finished(
            node,
            "srvreload",
            "networking",
            "root@pam",
            base - 2 * 3600,
            1,
            [],
        )
        mine = sorted(v for v, g in state.guests.items() if g.node == node and not g.template)[:3]
        if not mine:
            continue
        start = base
        lines = [
            f"INFO: starting new backup job: vzdump {' '.join(map(str, mine))} --storage nfs-shared "
            "--mode snapshot --compress zstd --notes-template '{{guestname}}'"
        ]
        for vmid in mine:
            g = state.guests[vmid]
            lines += [
                f"INFO: Starting Backup of VM {vmid} ({g.type})",
                f"INFO: Finished Backup of VM {vmid} (00:00:{10 + vmid % 40:02d})",
            ]
        lines.append("INFO: Backup job finished successfully")
        tasks.add_finished(node, "vzdump", "" if len(mine) > 1 else str(mine[0]), "root@pam", start, 95, lines)

"""Every guest and node a Proxmox call touches, read from the operation and its arguments.

Scope must hold for *every* target of *every* call, the generic API tool included, where the model
can reach any operation with any arguments. Guests hide in many places: the path (``{vmid}``), the
body of a create (``vmid``, new), a clone (``newid``, new; ``target`` node), a migration
(``target`` node), ``move_disk`` (``target-vmid``), lists (``vms`` of ``stopall`` and bulk actions,
``vmid`` of ``vzdump``), HA ids (``vm:100``), replication job ids (``100-0``), volumes of another
guest attached by a config update (``scsi1=local-lvm:vm-600-disk-0``), another guest's backup restored
under a new VMID (``archive=...vzdump-qemu-600-...``), a volume's owner (``.../content/local-lvm:vm-600-disk-0``),
a task's guest (the UPID's id), a backup job's selection (looked up by the App, see ``backup_jobs``) — and
some calls touch guests without naming them (``stopall`` without ``vms``, ``vzdump --all``, a prune
without ``vmid``, and every operation in the node- and cluster-wide table beside the risk rules,
:func:`pvemcp.core.policy.risk.reach_of`).

:func:`extract_targets` turns ``(method, template, params)`` into a :class:`CallTargets`;
:func:`check_call` checks it against a :class:`~pvemcp.core.policy.scope.Scope` with an inventory of
:class:`~pvemcp.core.pve.resolve.GuestRef` (from ``GET /cluster/resources``).
Values that cannot be read (a non-numeric VMID) are reported rather than skipped, and a guest the
inventory does not know cannot pass a scope that needs facts about it: both fail closed.

``params`` are the call's parameters with the path parameters merged in (``{"node": "pve1",
"vmid": 100, ...}``), as the generic tool and the spec's input schemas present them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pvemcp.core.policy.risk import DISK_KEY, normalize_path, reach_of
from pvemcp.dialect.propstring import pve_true

if TYPE_CHECKING:
    from pvemcp.core.pve.resolve import GuestRef
from pvemcp.core.policy.scope import (
    Scope,
    ScopeViolation,
    check_new_guest,
    check_node,
    check_target,
    check_unlisted_guest,
    parse_tags,
)

__all__ = ["CallTargets", "backup_selection", "check_call", "extract_targets", "merge_targets"]


@dataclass(frozen=True)
class CallTargets:
    """What a call acts on. Empty for calls that touch no guest or node (e.g. ``/access``)."""

    guests: frozenset[int] = frozenset()
    """Existing guests acted on (path ``{vmid}``, ``vms`` lists, ``target-vmid``, HA ids ...)."""
    new_guests: frozenset[int] = frozenset()
    """VMIDs a guest will be created under (create/restore ``vmid``, clone ``newid``)."""
    new_guest_node: str | None = None
    new_guest_pool: str | None = None
    new_guest_tags: frozenset[str] | None = None
    clone_of: int | None = None
    """Source of a clone: the clone inherits its tags."""
    nodes: frozenset[str] = frozenset()
    """Nodes acted on or sent to (path ``{node}``, ``target``, ``target_node``, HA ``node``)."""
    node_wide: frozenset[str] = frozenset()
    """Nodes on which the call touches every guest (``stopall`` without ``vms``, node reboot ...)."""
    cluster_wide: bool = False
    """The call touches every guest of the cluster (bulk actions without ``vms``, backup ``all``)."""
    pools: frozenset[str] = frozenset()
    """The call touches every member of these pools (``vzdump --pool``)."""
    unresolved: tuple[str, ...] = field(default=())
    """Argument values naming a target that could not be read; they make the scope check fail."""
    backup_jobs: frozenset[str] = frozenset()
    """Backup jobs changed or removed: their *current* selection is looked up by the App (one GET) and
    merged in with :func:`merge_targets`, so disabling a job that backs up foreign guests is theirs too."""
    volumes: tuple[tuple[str, int | None], ...] = ()
    """Volumes named by the call, with the guest that owns them (from the volume id) if any."""
    tasks: tuple[tuple[str, int | None], ...] = ()
    """Tasks named by the call (UPID), with the guest they belong to if any."""
    reach: str = ""
    """Why the call is node- or cluster-wide (from the table in :mod:`pvemcp.core.policy.risk`)."""


# --------------------------------------------------------------------------------------------


def _segments(template: str) -> list[str]:
    return normalize_path(template).strip("/").split("/")


def _as_vmid(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _vmid_list(value: Any) -> tuple[list[int], list[str]]:
    items: list[Any]
    if value is None:
        return [], []
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
    else:
        items = [s for s in re.split(r"[,;\s]+", str(value)) if s]
    good: list[int] = []
    bad: list[str] = []
    for item in items:
        vmid = _as_vmid(item)
        if vmid is None:
            bad.append(str(item))
        else:
            good.append(vmid)
    return good, bad


def _ha_vmid(sid: Any) -> int | None:
    """VMID of an HA resource id: ``vm:100``, ``ct:100`` or a bare ``100``."""
    text = str(sid).strip()
    if ":" in text:
        kind, _, rest = text.partition(":")
        if kind.lower() not in ("vm", "ct"):
            return None
        text = rest
    return _as_vmid(text)


def _replication_vmid(job_id: Any) -> int | None:
    """VMID of a replication job id ``<vmid>-<n>``."""
    m = re.fullmatch(r"\s*(\d+)-\d+\s*", str(job_id))
    return int(m.group(1)) if m else None


_VOLUME_OWNER = re.compile(r"(?<![\w-])(?:vm|base|subvol|basevol)-(\d+)-", re.IGNORECASE)
_BACKUP_OWNER = re.compile(r"(?:vzdump-(?:qemu|lxc|openvz)-(\d+)-|(?<![\w-])(?:vm|ct)/(\d+)/)", re.IGNORECASE)


def _volume_owners(value: str) -> set[int]:
    """VMIDs owning volumes named in a disk value (``local-lvm:vm-600-disk-0,size=8G`` -> 600)."""
    return {int(m.group(1)) for m in _VOLUME_OWNER.finditer(value)}


def _backup_owners(value: str) -> set[int]:
    """VMIDs whose backup an archive names (``vzdump-qemu-600-...``, PBS ``backup/vm/600/...``)."""
    return {int(m.group(1) or m.group(2)) for m in _BACKUP_OWNER.finditer(value)}


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


class _Builder:
    def __init__(self) -> None:
        self.guests: set[int] = set()
        self.new_guests: set[int] = set()
        self.nodes: set[str] = set()
        self.node_wide: set[str] = set()
        self.pools: set[str] = set()
        self.unresolved: list[str] = []
        self.cluster_wide = False
        self.new_node: str | None = None
        self.new_pool: str | None = None
        self.new_tags: frozenset[str] | None = None
        self.clone_of: int | None = None
        self.backup_jobs: set[str] = set()
        self.volumes: list[tuple[str, int | None]] = []
        self.tasks: list[tuple[str, int | None]] = []
        self.reach = ""

    def guest(self, name: str, value: Any, parse: Callable[[Any], int | None] = _as_vmid) -> int | None:
        """An existing guest named by argument ``name`` (read with ``parse``: plain, HA id, job id)."""
        return self._vmid(self.guests, name, value, parse)

    def new_guest(self, name: str, value: Any) -> None:
        """The VMID a guest will be created under (create/restore ``vmid``, clone ``newid``)."""
        self._vmid(self.new_guests, name, value, _as_vmid)

    def _vmid(self, into: set[int], name: str, value: Any, parse: Callable[[Any], int | None]) -> int | None:
        """Every VMID a call names goes through here: read it, or report ``name=value`` unresolved.

        One place, so that no argument form can be skipped silently instead of failing closed.
        """
        vmid = parse(value)
        if vmid is None:
            self.unresolved.append(f"{name}={value!r}")
        else:
            into.add(vmid)
        return vmid

    def guest_list(self, name: str, value: Any) -> int:
        good, bad = _vmid_list(value)
        self.guests.update(good)
        self.unresolved.extend(f"{name}={b!r}" for b in bad)
        return len(good) + len(bad)

    def node(self, value: Any) -> None:
        text = _text(value)
        if text is not None:
            self.nodes.add(text)

    def build(self) -> CallTargets:
        return CallTargets(
            guests=frozenset(self.guests),
            new_guests=frozenset(self.new_guests),
            new_guest_node=self.new_node,
            new_guest_pool=self.new_pool,
            new_guest_tags=self.new_tags,
            clone_of=self.clone_of,
            nodes=frozenset(self.nodes),
            node_wide=frozenset(self.node_wide),
            cluster_wide=self.cluster_wide,
            pools=frozenset(self.pools),
            unresolved=tuple(self.unresolved),
            backup_jobs=frozenset(self.backup_jobs),
            volumes=tuple(self.volumes),
            tasks=tuple(self.tasks),
            reach=self.reach,
        )


_NODE_BULK = {"startall", "stopall", "suspendall", "migrateall"}


def extract_targets(method: str, template: str, params: Mapping[str, Any] | None) -> CallTargets:
    """Every guest and node ``METHOD template`` with ``params`` acts on (see module docstring)."""
    p: Mapping[str, Any] = params or {}
    m = method.strip().upper()
    segs = [s.lower() for s in _segments(template)]
    raw_segs = _segments(template)
    b = _Builder()

    has_node = len(segs) >= 2 and segs[0] == "nodes"
    node = _text(p.get("node")) if has_node else None
    if has_node:
        if node is None:
            b.unresolved.append("node (missing)")
        else:
            b.nodes.add(node)

    guest_path = has_node and len(segs) >= 4 and segs[2] in ("qemu", "lxc")
    tail = segs[4:] if guest_path else []

    # -- guests addressed by path: /nodes/{node}/qemu|lxc/{vmid}/...
    source: int | None = None
    if guest_path:
        source = b.guest("vmid", p.get("vmid", raw_segs[3] if not raw_segs[3].startswith("{") else None))

    # -- create / restore: POST /nodes/{node}/qemu|lxc  (the vmid is new; it may overwrite with force)
    if has_node and len(segs) == 3 and segs[2] in ("qemu", "lxc") and m == "POST":
        b.new_guest("vmid", p.get("vmid"))
        b.new_node = node
        b.new_pool = _text(p.get("pool"))
        b.new_tags = parse_tags(p.get("tags"))

    # -- volumes and backups of *other* guests, named inside disk keys or a restore archive
    creating = has_node and len(segs) == 3 and segs[2] in ("qemu", "lxc") and m == "POST"
    configuring = guest_path and tail[:1] == ["config"] and m in ("POST", "PUT")
    if creating or configuring:
        own = _as_vmid(p.get("vmid"))
        for key, value in p.items():
            if isinstance(key, str) and isinstance(value, str):
                if DISK_KEY.match(key):
                    owners = _volume_owners(value)
                elif key in ("archive", "ostemplate"):
                    owners = _backup_owners(value)
                else:
                    continue
                b.guests.update(v for v in owners if v != own)

    if guest_path and tail:
        action = tail[0]
        if action == "clone":
            b.new_guest("newid", p.get("newid"))
            b.node(p.get("target"))
            b.new_node = _text(p.get("target")) or node
            b.new_pool = _text(p.get("pool"))
            b.clone_of = source
        elif action == "migrate":
            b.node(p.get("target"))
        elif action in ("move_disk", "move_volume") and p.get("target-vmid") not in (None, ""):
            b.guest("target-vmid", p.get("target-vmid"))

    # -- node-wide actions
    if has_node and len(segs) == 3 and m == "POST":
        action = segs[2]
        if action in _NODE_BULK:
            if not b.guest_list("vms", p.get("vms")) and node is not None:
                b.node_wide.add(node)
            if action == "migrateall":
                b.node(p.get("target"))
        elif action == "vzdump":
            _backup_targets(b, p, node)
            if pve_true(p.get("stop")) and node is not None:  # aborts every backup running on the node
                b.node_wide.add(node)
                b.reach = "aborts the backups running on the node (stop)"

    if has_node and len(segs) >= 4 and segs[2] == "replication":
        b.guest("id", p.get("id", raw_segs[3]), _replication_vmid)

    if has_node and len(segs) >= 5 and segs[2] == "storage" and segs[4] == "content":
        b.node(p.get("target_node"))
    if has_node and "vmid" in p and not guest_path and not (len(segs) == 3 and segs[2] in ("qemu", "lxc", "vzdump")):
        # /nodes/{node}/storage/{storage}/content?vmid=, /tasks?vmid=, prunebackups: a guest filter/owner
        b.guest("vmid", p.get("vmid"))

    # -- a volume belongs to the guest its id names (vm-600-disk-0, vzdump-qemu-600-...); any method,
    #    so that reading or deleting another guest's volume or backup is that guest's business
    if has_node and len(segs) >= 6 and segs[2] == "storage" and segs[4] == "content":
        volid = str(p.get("volume", raw_segs[5]))
        owners = _volume_owners(volid) | _backup_owners(volid)
        b.guests.update(owners)
        b.volumes.append((volid, min(owners) if owners else None))

    # -- prune without a guest: every guest with backups on the (possibly shared) storage
    prune = has_node and segs[2:3] == ["storage"] and segs[4:] == ["prunebackups"] and m == "DELETE"
    if prune and p.get("vmid") in (None, ""):
        b.cluster_wide = True
        b.reach = "prunes the backups of every guest on the storage"

    # -- a task belongs to the guest its UPID names (qmstart:105, vzdump:105); a guest-less task
    #    (a backup of many guests, a service restart) stopped is node-wide
    if has_node and len(segs) >= 4 and segs[2] == "tasks":
        upid = str(p.get("upid", raw_segs[3]))
        owner = _task_guest(upid)
        b.tasks.append((upid, owner))
        if owner is not None:
            b.guests.add(owner)
        elif m != "GET" and node is not None:
            b.node_wide.add(node)
            b.reach = "stops a task that is not one guest's"

    # -- cluster-level operations naming guests
    if segs[:1] == ["cluster"]:
        _cluster_targets(b, m, segs, raw_segs, p)
    if segs[:1] == ["pools"] and m == "PUT":
        b.guest_list("vms", p.get("vms"))

    # -- node- and cluster-wide operations (the table beside the risk rules)
    reach = reach_of(m, template)
    if reach is not None:
        kind, why = reach
        b.reach = why
        if kind == "cluster":
            b.cluster_wide = True
        elif node is not None:
            b.node_wide.add(node)

    return b.build()


def _task_guest(upid: str) -> int | None:
    """The guest of a task: the UPID's id when it is a VMID (``UPID:pve1:...:qmstart:105:root@pam:``)."""
    from pvemcp.dialect.upid import parse_upid

    try:
        return _as_vmid(parse_upid(upid).id)
    except ValueError:
        return None


def merge_targets(a: CallTargets, b: CallTargets) -> CallTargets:
    """Both calls' targets (e.g. a backup job's body and its current selection)."""
    return CallTargets(
        guests=a.guests | b.guests,
        new_guests=a.new_guests | b.new_guests,
        new_guest_node=a.new_guest_node or b.new_guest_node,
        new_guest_pool=a.new_guest_pool or b.new_guest_pool,
        new_guest_tags=a.new_guest_tags if a.new_guest_tags is not None else b.new_guest_tags,
        clone_of=a.clone_of if a.clone_of is not None else b.clone_of,
        nodes=a.nodes | b.nodes,
        node_wide=a.node_wide | b.node_wide,
        cluster_wide=a.cluster_wide or b.cluster_wide,
        pools=a.pools | b.pools,
        unresolved=a.unresolved + b.unresolved,
        backup_jobs=a.backup_jobs | b.backup_jobs,
        volumes=a.volumes + b.volumes,
        tasks=a.tasks + b.tasks,
        reach=a.reach or b.reach,
    )


def backup_selection(job: Mapping[str, Any]) -> CallTargets:
    """The guests a backup job selects, as PVE does in ``get_included_guests``
    (proxmox/pve-manager, PVE/VZDump.pm): ``pool`` first, else ``vmid``, else ``all`` (limited to
    the job's ``node`` if set). ``exclude`` is ignored here: counting excluded guests can only refuse more."""
    b = _Builder()
    node = _text(job.get("node"))
    b.node(node)
    if _text(job.get("pool")) is not None:
        b.pools.add(str(job["pool"]))
    elif job.get("vmid") not in (None, ""):
        b.guest_list("vmid", job.get("vmid"))
    elif pve_true(job.get("all")) or job.get("exclude") not in (None, ""):
        if node is not None:
            b.node_wide.add(node)
        else:
            b.cluster_wide = True
    return b.build()


def _backup_targets(b: _Builder, p: Mapping[str, Any], node: str | None) -> None:
    b.guest_list("vmid", p.get("vmid"))
    pool = _text(p.get("pool"))
    if pool is not None:
        b.pools.add(pool)
    if pve_true(p.get("all")):
        if node is not None:
            b.node_wide.add(node)
        else:
            b.cluster_wide = True


def _cluster_targets(b: _Builder, m: str, segs: list[str], raw: list[str], p: Mapping[str, Any]) -> None:
    if segs[1:3] == ["bulk-action", "guest"] and m == "POST":
        if not b.guest_list("vms", p.get("vms")):
            b.cluster_wide = True
        b.node(p.get("target"))
    elif segs[1:2] == ["backup"] and m in ("POST", "PUT", "DELETE"):
        node = _text(p.get("node"))
        b.node(node)
        _backup_targets(b, p, node)
        job = p.get("id", raw[2] if len(raw) > 2 and not raw[2].startswith("{") else None)
        if len(segs) > 2 and job is not None:
            b.backup_jobs.add(str(job))
    elif segs[1:3] == ["ha", "resources"]:
        sid = p.get("sid", raw[3] if len(raw) > 3 and not raw[3].startswith("{") else None)
        if sid is not None:
            b.guest("sid", sid, _ha_vmid)
        if len(segs) > 4:  # .../{sid}/migrate|relocate: "node" is the destination
            b.node(p.get("node"))
    elif segs[1:3] == ["ha", "rules"] and p.get("resources") is not None:
        for sid in re.split(r"[,;\s]+", str(p.get("resources"))):
            if sid:
                b.guest("resources", sid, _ha_vmid)
    elif segs[1:2] == ["replication"]:
        job = p.get("id", raw[2] if len(raw) > 2 and not raw[2].startswith("{") else None)
        if job is not None:
            b.guest("id", job, _replication_vmid)
        b.node(p.get("target"))
    elif segs[1:3] == ["sdn", "vnets"] and p.get("vmid") is not None:
        b.guest("vmid", p.get("vmid"))


# --------------------------------------------------------------------------------------------


def _names(values: Iterable[str]) -> str:
    return ", ".join(sorted(values))


def _as_inventory(inventory: Mapping[int, GuestRef] | Iterable[GuestRef] | None) -> dict[int, GuestRef] | None:
    if inventory is None:
        return None
    if isinstance(inventory, Mapping):
        return dict(inventory)
    return {g.vmid: g for g in inventory}


def check_call(
    scope: Scope,
    targets: CallTargets,
    inventory: Mapping[int, GuestRef] | Iterable[GuestRef] | None = None,
) -> list[ScopeViolation]:
    """All scope violations of one call (or of a batch, given merged targets); empty = in scope.

    ``inventory`` is every guest of the cluster (from ``/cluster/resources``); without it, any
    check that needs facts fails closed.
    """
    if scope.unrestricted:
        return []
    inv = _as_inventory(inventory)
    out: dict[str, ScopeViolation] = {}

    def add(v: ScopeViolation | None) -> None:
        if v is not None and v.subject not in out:
            out[v.subject] = v

    for text in targets.unresolved:
        add(
            ScopeViolation(
                text,
                ("unresolved",),
                f"cannot tell which guest or node {text} refers to, so the scope cannot be checked.",
            )
        )
    for node in sorted(targets.nodes):
        add(check_node(scope, node))

    only_vmids = scope.nodes is None and scope.pools is None and scope.tags is None
    for vmid in sorted(targets.guests):
        facts = inv.get(vmid) if inv is not None else None
        if facts is not None:
            add(check_target(scope, facts))
        elif only_vmids:
            add(check_unlisted_guest(scope, vmid))
        else:
            add(
                ScopeViolation(
                    f"guest {vmid}",
                    ("unknown",),
                    f"guest {vmid} was not found, so its scope cannot be checked.",
                    vmid=vmid,
                )
            )

    for vmid in sorted(targets.new_guests):
        existing = inv.get(vmid) if inv is not None else None
        if existing is not None:  # restore over an existing guest: it must be in scope too
            add(check_target(scope, existing))
        tags = targets.new_guest_tags
        if targets.clone_of is not None and inv is not None and targets.clone_of in inv:
            tags = inv[targets.clone_of].tag_set
        add(check_new_guest(scope, vmid, node=targets.new_guest_node, pool=targets.new_guest_pool, tags=tags))

    if targets.cluster_wide and scope.nodes is not None:
        why = f" ({targets.reach})" if targets.reach else ""
        add(
            ScopeViolation(
                "the cluster",
                ("node",),
                f"the call acts on the whole cluster{why}, but nodes are restricted to {_names(scope.nodes)}.",
            )
        )
    wide = sorted(targets.node_wide)
    if (wide or targets.cluster_wide or targets.pools) and inv is None:
        what = (
            "every guest of the cluster"
            if targets.cluster_wide
            else "every guest on " + ", ".join(wide or targets.pools)
        )
        add(
            ScopeViolation(
                what, ("unknown",), f"the call acts on {what}, which cannot be checked without the guest list."
            )
        )
    elif inv is not None:
        for facts in sorted(inv.values(), key=lambda g: g.vmid):
            if (
                targets.cluster_wide
                or facts.node in targets.node_wide
                or (facts.pool is not None and facts.pool in targets.pools)
            ):
                add(check_target(scope, facts))
    return list(out.values())
